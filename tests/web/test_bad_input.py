"""Every bad request gets the one envelope with its status and code; nothing reaches the IDaaS."""

from __future__ import annotations

import pytest

from tests.support.app import DEVICE, PASSWORD

BIND_URL = "/api/v1/bind/username-password"
GOOD = {"user_name": "alice", "password": PASSWORD}


def _assert_envelope(resp, status, code):
    assert resp.status_code == status, resp.json
    assert resp.json["error_code"] == code
    assert resp.json["request_id"] == resp.headers["X-Request-ID"]
    assert isinstance(resp.json["error_msg"], str) and resp.json["error_msg"]


BAD_BODIES = [
    ({}, "user_name"),
    ({"user_name": "a"}, "password"),
    ({"user_name": "a", "password": "x", "openid": "spoof"}, "openid"),
    ({"user_name": "a", "password": "x", "unionid": "spoof"}, "unionid"),
    ({"user_name": "", "password": "x"}, "user_name"),
    ({"user_name": "   ", "password": "x"}, "user_name"),
    ({"user_name": "a" * 257, "password": "x"}, "user_name"),
    ({"user_name": "a", "password": "x" * 1025}, "password"),
    ({"user_name": 42, "password": "x"}, "user_name"),
    ({"user_name": ["a"], "password": "x"}, "user_name"),
    ({"user_name": None, "password": "x"}, "user_name"),
    ({"user_name": "a\x00b", "password": "x"}, "user_name"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
def test_bind_rejects_bad_body(auth, idaas_sim, body, field):
    headers = auth.pending_bind()
    before = len(idaas_sim.requests)
    resp = auth.client.post(BIND_URL, json=body, headers=headers)
    _assert_envelope(resp, 400, "BFF.VALIDATION")
    assert field in resp.json["errors"]
    assert len(idaas_sim.requests) == before


def test_bounds_are_inclusive(auth):
    auth.pending_bind()
    resp = auth.client.post(
        BIND_URL, json={"user_name": "a" * 256, "password": "x" * 1024}, headers=auth.headers()
    )
    assert resp.status_code == 400 and resp.json["error_code"].endswith("LOGIN.1005")


RAW_BODIES = [
    (b'{"user_name": "a", "user_name": "b", "password": "x"}', "application/json", 400),
    (b'{"user_name": "a", "password": "\xff\xfe"}', "application/json", 400),
    (b'{"user_name": "a", "password": ', "application/json", 400),
    (b"[1, 2]", "application/json", 400),
    (b'"just a string"', "application/json", 400),
    (b"", "application/json", 400),
    (b'{"user_name": NaN, "password": "x"}', "application/json", 400),
    (b"[" * 5000 + b"]" * 5000, "application/json", 400),
    (b'{"a":' * 40 + b"1" + b"}" * 40, "application/json", 400),
    (b"user_name=a&password=x", "application/x-www-form-urlencoded", 415),
    (b'{"user_name": "a", "password": "x"}', "text/plain", 415),
]


@pytest.mark.parametrize(("raw", "ctype", "status"), RAW_BODIES)
def test_bind_rejects_malformed_bodies(auth, idaas_sim, raw, ctype, status):
    headers = {**auth.pending_bind(), "Content-Type": ctype}
    before = len(idaas_sim.requests)
    resp = auth.client.post(BIND_URL, data=raw, headers=headers)
    code = "BFF.VALIDATION" if status == 400 else "BFF.UNSUPPORTED_MEDIA_TYPE"
    _assert_envelope(resp, status, code)
    assert len(idaas_sim.requests) == before


def test_oversized_body_is_413(auth, idaas_sim):
    headers = auth.pending_bind()
    resp = auth.client.post(
        BIND_URL, json={"user_name": "a", "password": "x" * 20000}, headers=headers
    )
    _assert_envelope(resp, 413, "BFF.PAYLOAD_TOO_LARGE")


def test_content_type_with_charset_is_fine(auth):
    headers = {**auth.pending_bind(), "Content-Type": "application/json; charset=utf-8"}
    resp = auth.client.post(
        BIND_URL,
        data=b'{"user_name": "alice", "password": "%s"}' % PASSWORD.encode(),
        headers=headers,
    )
    assert resp.status_code == 200


@pytest.mark.parametrize("missing", ["X-operating-sys-version", "X-device-fingerprint"])
def test_missing_device_header_is_named(auth, idaas_sim, missing):
    headers = {k: v for k, v in auth.pending_bind().items() if k != missing}
    before = len(idaas_sim.requests)
    resp = auth.client.post(BIND_URL, json=GOOD, headers=headers)
    _assert_envelope(resp, 400, "BFF.VALIDATION")
    assert list(resp.json["errors"]) == [missing]
    assert len(idaas_sim.requests) == before


def test_user_agent_stands_in_for_x_agent(auth, idaas_sim):
    headers = {k: v for k, v in auth.headers().items() if k != "X-agent"}
    headers["User-Agent"] = "WeChat/8.0 MiniProgram"
    auth.client.post("/api/v1/login", json={"code": auth.wx_code()}, headers=headers)
    assert idaas_sim.requests[-1].headers["X-agent"] == "WeChat/8.0 MiniProgram"


AUTH_HEADERS = [
    {},
    {"Authorization": "Bearer"},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer not-a-handle"},
    {"Authorization": "Bearer " + "A" * 43},  # well-formed, unknown
    {
        "Authorization": "Bearer "
        + "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    },
]


@pytest.mark.parametrize("headers", AUTH_HEADERS)
def test_bad_handle_is_401(client, idaas_sim, headers):
    for method, url in (("post", "/api/v1/login"), ("get", "/api/v1/session")):
        resp = getattr(client, method)(url, json={"code": "x"}, headers={**headers, **DEVICE})
        _assert_envelope(resp, 401, "BFF.UNAUTHENTICATED")
    assert not idaas_sim.requests


def test_unknown_path_and_method(client):
    _assert_envelope(client.get("/api/v1/nope"), 404, "BFF.NOT_FOUND")
    resp = client.get("/api/v1/login")
    _assert_envelope(resp, 405, "BFF.METHOD_NOT_ALLOWED")
    assert "POST" in resp.headers["Allow"]


def test_request_id_is_echoed_when_sane(client):
    resp = client.get("/healthz", headers={"X-Request-ID": "gw-123.abc_DEF"})
    assert resp.headers["X-Request-ID"] == "gw-123.abc_DEF"
    for bad in ("x" * 129, "has space", "semi;colon", "ünï"):
        resp = client.get("/api/v1/nope", headers={"X-Request-ID": bad})
        assert resp.headers["X-Request-ID"] != bad
        assert resp.json["request_id"] == resp.headers["X-Request-ID"]


def test_wechat_session_bad_code(client, wechat_sim):
    resp = client.post("/api/v1/wechat/session", json={"wx_code": "never-issued"})
    _assert_envelope(resp, 400, "BFF.WECHAT_CODE_INVALID")
    code = wechat_sim.issue_code("o_x")
    assert client.post("/api/v1/wechat/session", json={"wx_code": code}).status_code == 201
    resp = client.post("/api/v1/wechat/session", json={"wx_code": code})
    _assert_envelope(resp, 400, "BFF.WECHAT_CODE_INVALID")


def test_wechat_session_rejects_smuggled_openid(client, wechat_sim):
    code = wechat_sim.issue_code("o_x")
    resp = client.post("/api/v1/wechat/session", json={"wx_code": code, "openid": "o_victim"})
    _assert_envelope(resp, 400, "BFF.VALIDATION")
    assert "openid" in resp.json["errors"]


def test_refresh_rejects_body_fields(auth):
    resp = auth.client.post("/api/v1/session/refresh", json={"openid": "x"}, headers=auth.headers())
    _assert_envelope(resp, 400, "BFF.VALIDATION")


@pytest.mark.parametrize("wx_code", ["\ud800", "has space", "中文码", "x" * 513])
def test_non_ascii_codes_are_400_and_never_open_the_breaker(make_app, wechat_sim, wx_code):
    client = make_app(CIRCUIT_FAILURES="2").test_client()
    for _ in range(3):
        resp = client.post("/api/v1/wechat/session", json={"wx_code": wx_code})
        _assert_envelope(resp, 400, "BFF.VALIDATION")
    assert not wechat_sim.requests
    ok = client.post("/api/v1/wechat/session", json={"wx_code": wechat_sim.issue_code("o_ok")})
    assert ok.status_code == 201


def test_options_is_an_enveloped_405(client):
    resp = client.open("/api/v1/login", method="OPTIONS")
    _assert_envelope(resp, 405, "BFF.METHOD_NOT_ALLOWED")


def test_corrupt_cached_session_is_ignored_not_a_500(auth, redis, key_prefix):
    auth.signed_in()
    key = f"{key_prefix}:session:{auth.openid}"
    redis.set(key, '{"session_token": "t", "expire_at": "soon"}', ex=60)
    resp = auth.client.get("/api/v1/session", headers=auth.headers())
    assert resp.status_code == 200 and resp.json == {"active": False}
