"""IDENTITY_SOURCE=gateway: identity from the gateway's headers, only with the right secret."""

from __future__ import annotations

import json

import pytest

from tests.support.app import DEVICE, GATEWAY_SECRET, PASSWORD, last_call

LOGIN = "/api/v2/sdk/login/wechat-miniprogram"


@pytest.fixture
def gw_client(make_app, idaas_sim, wechat_sim):
    return make_app(IDENTITY_SOURCE="gateway", WECHAT_APPID="", WECHAT_SECRET="").test_client()


def _headers(openid="o_gw_user", secret=GATEWAY_SECRET, **extra):
    headers = {"X-WX-OPENID": openid, "X-WX-UNIONID": "u_gw", **DEVICE, **extra}
    if secret is not None:
        headers["X-Gateway-Secret"] = secret
    return headers


def test_gateway_flow_end_to_end(gw_client, wechat_sim, idaas_sim, redis, key_prefix):
    openid = "o_gw_flow"
    code = wechat_sim.issue_code(openid)
    resp = gw_client.post("/api/v1/login", json={"code": code}, headers=_headers(openid))
    assert resp.json["status"] == "SOCIAL_BIND"
    body = {"user_name": "alice", "password": PASSWORD}
    resp = gw_client.post("/api/v1/bind/username-password", json=body, headers=_headers(openid))
    assert resp.status_code == 200 and resp.json["status"] == "SUCCESS"
    cached = json.loads(redis.get(f"{key_prefix}:session:{openid}"))
    assert cached["unionid"] == "u_gw"
    resp = gw_client.delete("/api/v1/session", headers=_headers(openid))
    assert resp.status_code == 204 and not redis.exists(f"{key_prefix}:session:{openid}")


@pytest.mark.parametrize(
    "secret", [None, "", "wrong-secret", GATEWAY_SECRET + "x", GATEWAY_SECRET[:-1]]
)
def test_wrong_or_missing_secret_is_401(gw_client, idaas_sim, secret):
    resp = gw_client.post("/api/v1/login", json={"code": "c"}, headers=_headers(secret=secret))
    assert resp.status_code == 401 and resp.json["error_code"] == "BFF.UNAUTHENTICATED"
    assert not idaas_sim.requests


@pytest.mark.parametrize("openid", ["", "has space", "x" * 129, "o\u00e9"])
def test_bad_openid_header_is_401(gw_client, openid):
    resp = gw_client.get("/api/v1/session", headers=_headers(openid=openid))
    assert resp.status_code == 401


def test_wechat_session_is_404_in_gateway_mode(gw_client):
    resp = gw_client.post("/api/v1/wechat/session", json={"wx_code": "c"})
    assert resp.status_code == 404 and resp.json["error_code"] == "BFF.NOT_FOUND"
    resp = gw_client.post("/api/v1/wechat/session", data=b"not json", content_type="text/plain")
    assert resp.status_code == 404  # whatever the body


def test_handle_is_ignored_in_gateway_mode(gw_client, redis, key_prefix):
    resp = gw_client.get("/api/v1/session", headers={"Authorization": "Bearer " + "a" * 43})
    assert resp.status_code == 401


def test_custom_header_names(make_app, idaas_sim, wechat_sim):
    client = make_app(
        IDENTITY_SOURCE="gateway",
        GATEWAY_OPENID_HEADER="X-User-Openid",
        GATEWAY_SECRET_HEADER="X-Edge-Auth",
    ).test_client()
    ok = {"X-User-Openid": "o_custom", "X-Edge-Auth": GATEWAY_SECRET}
    assert client.get("/api/v1/session", headers=ok).json == {"active": False}
    spoof = {"X-WX-OPENID": "o_custom", "X-Gateway-Secret": GATEWAY_SECRET}
    assert client.get("/api/v1/session", headers=spoof).status_code == 401


def test_body_openid_is_never_trusted(gw_client, wechat_sim, idaas_sim):
    code = wechat_sim.issue_code("o_real")
    resp = gw_client.post(
        "/api/v1/login", json={"code": code, "openid": "o_victim"}, headers=_headers("o_real")
    )
    assert resp.status_code == 400 and "openid" in resp.json["errors"]


@pytest.mark.parametrize(
    ("count", "xff", "expected"),
    [
        ("0", "1.1.1.1, 2.2.2.2", "10.0.0.9"),
        ("1", "1.1.1.1, 2.2.2.2", "2.2.2.2"),
        ("2", "1.1.1.1, 2.2.2.2", "1.1.1.1"),
        ("2", "2.2.2.2", "10.0.0.9"),  # fewer entries than trusted hops: the socket peer
    ],
)
def test_device_ip_from_trusted_proxy_depth(make_app, idaas_sim, wechat_sim, count, xff, expected):
    client = make_app(IDENTITY_SOURCE="gateway", TRUSTED_PROXY_COUNT=count).test_client()
    code = wechat_sim.issue_code("o_ip")
    client.post(
        "/api/v1/login",
        json={"code": code},
        headers=_headers("o_ip", **{"X-Forwarded-For": xff, "X-device-ip": "9.9.9.9"}),
        environ_base={"REMOTE_ADDR": "10.0.0.9"},
    )
    sent = last_call(idaas_sim, LOGIN)
    assert sent.headers["X-device-ip"] == expected
    assert "X-Forwarded-For" not in sent.headers
