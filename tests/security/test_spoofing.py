"""Spoofing: a client cannot choose its openid, client id, state token or IP, in either mode.

In ``wechat`` mode the openid comes from the handle; in ``gateway`` mode from the gateway's
headers, honoured only with the right secret. Whatever the client adds (body fields, query
strings, other headers) changes neither whose session is written nor what the IDaaS receives.
"""

from __future__ import annotations

import ast
import inspect
import json
import secrets

import pytest

from bff.web import identity
from tests.support.app import (
    CLIENT_ID,
    GATEWAY_SECRET,
    PASSWORD,
    AuthActions,
    GatewayCaller,
    last_call,
)
from tests.support.http import assert_envelope

LOGIN = "/api/v2/sdk/login/wechat-miniprogram"
BIND = "/api/v2/sdk/social/username-password-bind"
REFRESH = "/api/v2/sdk/sso/session-token/id-token"


@pytest.fixture(params=["wechat", "gateway"])
def caller(request, make_app, wechat_sim, idaas_sim) -> AuthActions:
    client = make_app(IDENTITY_SOURCE=request.param).test_client()
    kind = GatewayCaller if request.param == "gateway" else AuthActions
    return kind(client, wechat_sim, idaas_sim)


@pytest.fixture
def victim(redis, key_prefix) -> str:
    """Someone else's openid, with nothing stored: it must stay that way."""
    openid = "o_victim_" + secrets.token_hex(6)
    yield openid
    for kind in ("session", "pending", "handle"):
        assert not redis.keys(f"{key_prefix}:{kind}:{openid}*")


def _session(redis, key_prefix: str, openid: str) -> dict | None:
    raw = redis.get(f"{key_prefix}:session:{openid}")
    return json.loads(raw) if raw else None


def test_openid_in_the_body_is_refused(caller, idaas_sim, victim):
    for path, body in (
        ("/api/v1/login", {"code": caller.wx_code(), "openid": victim}),
        ("/api/v1/login", {"code": caller.wx_code(), "unionid": victim}),
        ("/api/v1/bind/username-password", {"user_name": "a", "password": "b", "openid": victim}),
    ):
        resp = caller.client.post(path, json=body, headers=caller.headers())
        assert set(assert_envelope(resp, 400, "BFF.VALIDATION")["errors"]) & {"openid", "unionid"}
    assert not idaas_sim.requests


def test_openid_in_query_or_other_headers_is_ignored(caller, redis, key_prefix, victim):
    spoof = {
        "X-WX-OPENID": victim,
        "X-Openid": victim,
        "X-Forwarded-User": victim,
        "Cookie": f"openid={victim}",
    }
    if isinstance(caller, GatewayCaller):
        del spoof["X-WX-OPENID"]  # the gateway's own header: it sets it, by design trusted
    headers = caller.headers(**spoof)
    url = f"/api/v1/login?openid={victim}&unionid={victim}"
    resp = caller.client.post(url, json={"code": caller.wx_code()}, headers=headers)
    assert resp.json["status"] == "SOCIAL_BIND"
    resp = caller.client.post(
        f"/api/v1/bind/username-password?openid={victim}",
        json={"user_name": "alice", "password": PASSWORD},
        headers=headers,
    )
    assert resp.json["status"] == "SUCCESS"
    token = _session(redis, key_prefix, caller.openid)["session_token"]
    assert caller.idaas.sessions[token].openid == caller.openid


def test_client_id_and_state_token_are_the_servers(caller, idaas_sim, redis, key_prefix):
    spoof = {"X-client-id": "evil-client", "X-state-token": "evil-state", "Authorization": None}
    headers = {k: v for k, v in caller.headers(**spoof).items() if v is not None}
    if not isinstance(caller, GatewayCaller):
        headers["Authorization"] = caller.headers()["Authorization"]
    # No pending bind: a client-supplied state token does not stand in for one.
    resp = caller.client.post(
        "/api/v1/bind/username-password",
        json={"user_name": "alice", "password": PASSWORD},
        headers=headers,
    )
    assert_envelope(resp, 409, "BFF.NO_PENDING_BIND")
    assert not idaas_sim.requests
    caller.client.post("/api/v1/login", json={"code": caller.wx_code()}, headers=headers)
    pending = json.loads(redis.get(f"{key_prefix}:pending:{caller.openid}"))["state_token"]
    caller.client.post(
        "/api/v1/bind/username-password",
        json={"user_name": "alice", "password": PASSWORD},
        headers=headers,
    )
    login, bind = last_call(idaas_sim, LOGIN), last_call(idaas_sim, BIND)
    for sent in (login, bind):
        assert sent.headers.get_all("X-client-id") == [CLIENT_ID]
        for name in ("Authorization", "Cookie", "X-Gateway-Secret", "X-WX-OPENID"):
            assert name not in sent.headers
    assert "X-state-token" not in login.headers
    assert bind.headers.get_all("X-state-token") == [pending]
    resp = caller.client.post(
        "/api/v1/session/refresh", headers={**headers, "session-token": "stolen"}
    )
    assert resp.status_code == 200
    assert last_call(idaas_sim, REFRESH).headers.get_all("session-token") == [
        _session(redis, key_prefix, caller.openid)["session_token"]
    ]


@pytest.mark.parametrize("count", [0, 1, 2])
def test_ip_seen_by_the_idaas_is_not_the_clients_say_so(make_app, wechat_sim, idaas_sim, count):
    """X-device-ip, X-Real-IP and X-Forwarded-For entries past the trusted depth are ignored."""
    for mode, kind in (("wechat", AuthActions), ("gateway", GatewayCaller)):
        client = make_app(IDENTITY_SOURCE=mode, TRUSTED_PROXY_COUNT=str(count)).test_client()
        client.environ_base["REMOTE_ADDR"] = "10.0.0.1"
        caller = kind(client, wechat_sim, idaas_sim)
        chain = "1.1.1.1, 2.2.2.2, 3.3.3.3, 4.4.4.4"  # the client wrote the first two
        headers = caller.headers(
            **{"X-Forwarded-For": chain, "X-Real-IP": "1.1.1.1", "X-device-ip": "1.1.1.1"}
        )
        resp = client.post("/api/v1/login", json={"code": caller.wx_code()}, headers=headers)
        assert resp.status_code == 200, resp.json
        sent = idaas_sim.requests[-1].headers
        assert sent.get_all("X-device-ip") == [["10.0.0.1", "4.4.4.4", "3.3.3.3"][count]]
        assert "X-Forwarded-For" not in sent and "X-Real-IP" not in sent


NOT_AN_IP = ["not-an-ip", "x" * 3000, "1.2.3.4.5", "999.1.1.1", "<script>", "1.1.1.1 ; 2.2.2.2"]


@pytest.mark.parametrize("claimed", NOT_AN_IP, ids=lambda c: c[:12])
def test_a_trusted_entry_that_is_no_ip_is_replaced_by_the_peer(
    make_app, wechat_sim, idaas_sim, redis, key_prefix, claimed
):
    """The trusted X-Forwarded-For entry becomes the client IP, the limiter's key and the
    IDaaS's X-device-ip: only a valid IP address may."""
    client = make_app(TRUSTED_PROXY_COUNT="1").test_client()
    client.environ_base["REMOTE_ADDR"] = "10.0.0.9"
    caller = AuthActions(client, wechat_sim, idaas_sim)
    headers = caller.headers(**{"X-Forwarded-For": claimed})
    resp = client.post("/api/v1/login", json={"code": caller.wx_code()}, headers=headers)
    assert resp.status_code == 200, resp.json
    assert idaas_sim.requests[-1].headers.get_all("X-device-ip") == ["10.0.0.9"]
    assert not [k for k in redis.scan_iter(f"{key_prefix}:*", count=1000) if claimed in k]


@pytest.mark.parametrize("address", ["203.0.113.7", "2001:db8::7"])
def test_a_trusted_entry_that_is_an_ip_is_the_client_ip(make_app, wechat_sim, idaas_sim, address):
    client = make_app(TRUSTED_PROXY_COUNT="1").test_client()
    caller = AuthActions(client, wechat_sim, idaas_sim)
    headers = caller.headers(**{"X-Forwarded-For": f"198.51.100.1, {address}"})
    assert (
        client.post("/api/v1/login", json={"code": caller.wx_code()}, headers=headers).status_code
        == 200
    )
    assert idaas_sim.requests[-1].headers.get_all("X-device-ip") == [address]


BAD_SECRETS = {
    "missing": None,
    "empty": "",
    "wrong": "not-the-gateway-secret-at-all",
    "prefix": GATEWAY_SECRET[:-1],
    "longer": GATEWAY_SECRET + "x",
    "padded": GATEWAY_SECRET + " ",
    "case": GATEWAY_SECRET.upper(),
}


@pytest.mark.parametrize("kind", sorted(BAD_SECRETS))
def test_gateway_secret_wrong_or_missing_is_401(make_app, wechat_sim, idaas_sim, kind, victim):
    client = make_app(IDENTITY_SOURCE="gateway").test_client()
    caller = GatewayCaller(client, wechat_sim, idaas_sim)
    caller.openid = victim
    headers = caller.headers()
    if BAD_SECRETS[kind] is None:
        del headers["X-Gateway-Secret"]
        headers["X-Gateway-Secret-2"] = GATEWAY_SECRET  # the right value, the wrong header
    else:
        headers["X-Gateway-Secret"] = BAD_SECRETS[kind]
    for method, path in (("post", "/api/v1/login"), ("get", "/api/v1/session")):
        resp = getattr(client, method)(
            f"{path}?X-Gateway-Secret={GATEWAY_SECRET}", json={"code": "c"}, headers=headers
        )
        assert_envelope(resp, 401, "BFF.UNAUTHENTICATED")
    assert not idaas_sim.requests


def test_gateway_mode_has_no_wechat_session(make_app, wechat_sim, idaas_sim):
    client = make_app(IDENTITY_SOURCE="gateway").test_client()
    resp = client.post("/api/v1/wechat/session", json={"wx_code": wechat_sim.issue_code("o_x")})
    assert_envelope(resp, 404, "BFF.NOT_FOUND")
    assert not wechat_sim.requests


def test_gateway_secret_is_compared_in_constant_time():
    """Read the code, not the clock: hmac.compare_digest against the current and the previous
    secret, both always (unconditional statements of the function), and no == on a secret."""
    function = ast.parse(inspect.getsource(identity._gateway_secret_matches)).body[0]
    assert isinstance(function, ast.FunctionDef)
    calls = [
        node
        for node in ast.walk(function)
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "hmac.compare_digest"
    ]
    assert sorted(sorted(ast.unparse(a) for a in c.args) for c in calls) == [
        ["expected", "offered"],
        ["offered", "previous"],
    ]
    unconditional = [
        node
        for statement in function.body
        if isinstance(statement, ast.Assign)
        for node in ast.walk(statement)
        if node in calls
    ]
    assert len(unconditional) == 2  # neither compare waits on the other's answer
    for node in ast.walk(function):
        if isinstance(node, ast.Compare):
            names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            assert not names & {"offered", "expected", "previous"}, ast.unparse(node)
