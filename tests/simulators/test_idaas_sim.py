"""IDaaS simulator: common checks, mini-program login, username-password bind, refresh, JWKS."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from bff_simulators import IdaasSimulator, WeChatSimulator
from tests.support.processes import reap

TIMEOUT = 5
CLIENT = "test-client"
HEADERS = {
    "X-client-id": CLIENT,
    "X-operating-sys-version": "ios17.1",
    "X-device-fingerprint": "fp-123",
    "X-agent": "MiniProgram/1.0",
}
LOGIN = "/api/v2/sdk/login/wechat-miniprogram"
BIND = "/api/v2/sdk/social/username-password-bind"
REFRESH = "/api/v2/sdk/sso/session-token/id-token"
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def idp(idp_server: IdaasSimulator, wx: WeChatSimulator) -> IdaasSimulator:
    wx.reset_state()
    idp_server.reset_state()
    idp_server.wechat_base_url = wx.base_url
    idp_server.add_user("alice", "alice-pw", mobile="+86-13800000001", email="alice@example.com")
    return idp_server


def call(
    idp: IdaasSimulator,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    method: str = "POST",
) -> requests.Response:
    return requests.request(
        method,
        idp.base_url + path,
        json=body,
        headers={**HEADERS, **(headers or {})},
        timeout=TIMEOUT,
    )


def error_code(resp: requests.Response, status: int = 400) -> str:
    assert resp.status_code == status, resp.text
    body: dict[str, str] = resp.json()
    assert set(body) == {"error_code", "error_msg"}
    return body["error_code"]


def login(idp: IdaasSimulator, wx: WeChatSimulator, openid: str) -> dict[str, Any]:
    resp = call(idp, LOGIN, {"code": wx.issue_code(openid)})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def state_token(idp: IdaasSimulator, wx: WeChatSimulator, openid: str = "o_new") -> str:
    token: str = login(idp, wx, openid)["state_token"]
    return token


def bind(idp: IdaasSimulator, token: str, user: str = "alice", pw: str = "alice-pw") -> Any:
    body = {"user_name": user, "password": pw}
    return call(idp, BIND, body, {"X-state-token": token})


def decode(idp: IdaasSimulator, token: str) -> dict[str, Any]:
    keys = requests.get(idp.base_url + "/api/v1/oauth2/keys", timeout=TIMEOUT).json()
    jwk = jwt.PyJWKSet.from_dict(keys)[jwt.get_unverified_header(token)["kid"]]
    claims: dict[str, Any] = jwt.decode(
        token, jwk.key, algorithms=["RS256"], audience=CLIENT, issuer=idp.issuer
    )
    return claims


# common checks -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"X-client-id": ""}, "IDAAS.SDK.COMMON.1001"),
        ({"X-client-id": "someone-else"}, "IDAAS.SDK.COMMON.1012"),
        ({"X-operating-sys-version": ""}, "IDAAS.SDK.COMMON.1003"),
        ({"X-device-fingerprint": ""}, "IDAAS.SDK.COMMON.1003"),
        ({"X-agent": ""}, "IDAAS.SDK.COMMON.1003"),
    ],
)
@pytest.mark.parametrize("path", [LOGIN, BIND, REFRESH])
def test_common_header_checks(
    idp: IdaasSimulator, path: str, headers: dict[str, str], code: str
) -> None:
    sent = {k: v for k, v in {**HEADERS, **headers}.items() if v}
    resp = requests.post(idp.base_url + path, json={}, headers=sent, timeout=TIMEOUT)
    assert error_code(resp) == code


def test_body_must_be_a_json_object(idp: IdaasSimulator) -> None:
    resp = requests.post(idp.base_url + LOGIN, data=b"code=1", headers=HEADERS, timeout=TIMEOUT)
    assert error_code(resp) == "IDAAS.SDK.PARAM.0001"
    assert error_code(call(idp, LOGIN, ["code"])) == "IDAAS.SDK.PARAM.0001"
    assert error_code(call(idp, LOGIN, {"code": ""})) == "IDAAS.SDK.PARAM.0001"


def test_eiam_code_prefix(idp: IdaasSimulator) -> None:
    idp.code_prefix = "SDK."
    assert error_code(call(idp, LOGIN, {}, {"X-client-id": "x"})) == "SDK.COMMON.1012"


# mini-program login --------------------------------------------------------------------------
def test_unbound_login_answers_social_bind(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    body = login(idp, wx, "o_new")
    assert body["status"] == "SOCIAL_BIND "
    assert json.loads(body["data"]) == {"socialBindOrRegisterFlow": ["VERIFY_PHONE"]}
    assert "session_token" not in body and idp.state_tokens == [body["state_token"]]
    assert body["state_token"].count(".") == 2
    (redeemed,) = wx.requests
    assert redeemed.query["appid"] == "wx-sim-appid" and redeemed.query["secret"] == wx.secret


def test_unbound_login_knobs(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    idp.tenant_status, idp.flows, idp.pad_status = "USER_REGISTER", None, False
    body = login(idp, wx, "o_new")
    assert (body["status"], body["data"]) == ("USER_REGISTER", None)
    idp.flows = ["VERIFY_PHONE", "VERIFY_EMAIL"]
    assert json.loads(login(idp, wx, "o_new")["data"])["socialBindOrRegisterFlow"] == [
        "VERIFY_PHONE",
        "VERIFY_EMAIL",
    ]


def test_state_remembers_openid_and_unionid(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    resp = call(idp, LOGIN, {"code": wx.issue_code("o_u", unionid="u_1")})
    state = idp.states[resp.json()["state_token"]]
    assert (state.openid, state.unionid, state.status) == ("o_u", "u_1", "SOCIAL_BIND")


def test_bound_login_succeeds(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    idp.bindings["o_alice"] = "alice"
    body = login(idp, wx, "o_alice")
    assert body["status"] == " SUCCESS" and body["expire"] == 432000
    assert idp.session_tokens == [body["session_token"]] and idp.id_tokens == [body["id_token"]]
    claims = decode(idp, body["id_token"])
    assert claims["sub"] == "alice" and claims["exp"] - claims["iat"] == 300


@pytest.mark.parametrize("reuse", [False, True])
def test_bad_wechat_code(idp: IdaasSimulator, wx: WeChatSimulator, reuse: bool) -> None:
    code = wx.issue_code() if reuse else "nonsense"
    if reuse:
        wx.redeem(code)
    assert error_code(call(idp, LOGIN, {"code": code})) == "IDAAS.SDK.LOGIN.1009"


def test_wechat_errors(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    wx.fail_next(-1)
    assert error_code(call(idp, LOGIN, {"code": wx.issue_code()})) == "IDAAS.SDK.LOGIN.1010"
    idp.wechat_secret = "wrong"
    assert error_code(call(idp, LOGIN, {"code": wx.issue_code()})) == "IDAAS.SDK.LOGIN.1010"
    idp.wechat_secret = wx.secret
    wx.add_fault("garbage")
    assert error_code(call(idp, LOGIN, {"code": wx.issue_code()}), 500) == "IDAAS.SDK.COMMON.1008"
    idp.wechat_base_url = "http://127.0.0.1:9"
    assert error_code(call(idp, LOGIN, {"code": wx.issue_code()}), 500) == "IDAAS.SDK.COMMON.1008"


@pytest.mark.parametrize(
    ("override", "keys"),
    [
        ("MFA_AUTH", {"status", "state_token", "data"}),
        ("ACCESS_DENIED", {"status"}),
        ("PASSWORD_WARN", {"status", "session_token", "expire", "id_token"}),
    ],
)
def test_login_status_override(
    idp: IdaasSimulator, wx: WeChatSimulator, override: str, keys: set[str]
) -> None:
    idp.bindings["o_alice"] = "alice"
    idp.login_status_override = override
    body = login(idp, wx, "o_alice")
    assert set(body) == keys and body["status"].strip() == override


def test_locked_bound_user_cannot_log_in(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    idp.bindings["o_alice"] = "alice"
    idp.locked_users.add("alice")
    assert (
        error_code(call(idp, LOGIN, {"code": wx.issue_code("o_alice")})) == "IDAAS.SDK.LOGIN.1003"
    )


# username-password bind ----------------------------------------------------------------------
def test_bind_success_binds_and_consumes(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    token = state_token(idp, wx, "o_new")
    resp = bind(idp, token)
    assert resp.status_code == 200 and resp.json()["status"] == " SUCCESS"
    assert decode(idp, resp.json()["id_token"])["sub"] == "alice"
    assert idp.bindings == {"o_new": "alice"}
    assert error_code(bind(idp, token)) == "IDAAS.SDK.PARAM.0014"
    assert login(idp, wx, "o_new")["status"] == " SUCCESS"
    assert idp.requests[1].headers["x-state-token"] == token


def test_bind_state_token_errors(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    assert error_code(call(idp, BIND, {"user_name": "alice", "password": "alice-pw"})) == (
        "IDAAS.SDK.COMMON.1007"
    )
    assert error_code(bind(idp, "eyJ.unknown.token")) == "IDAAS.SDK.COMMON.1007"
    idp.state_token_ttl_s = 0
    assert error_code(bind(idp, state_token(idp, wx))) == "IDAAS.SDK.COMMON.1005"


def test_wrong_password_keeps_the_state_token(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    token = state_token(idp, wx)
    resp = bind(idp, token, pw="nope")
    assert error_code(resp) == "IDAAS.SDK.LOGIN.1005"
    assert resp.json()["error_msg"] == "wrong username or password, 4 attempts left"
    assert error_code(bind(idp, token, user="nobody")) == "IDAAS.SDK.LOGIN.1005"
    assert bind(idp, token).status_code == 200


def test_password_failures_lock_the_account(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    token = state_token(idp, wx)
    idp.max_password_attempts = 2
    messages = [bind(idp, token, pw="x").json()["error_msg"] for _ in range(2)]
    assert messages[-1].endswith("0 attempts left") and "alice" in idp.locked_users
    assert error_code(bind(idp, token)) == "IDAAS.SDK.LOGIN.1003"
    idp.max_password_attempts = None
    assert bind(idp, token, user="bob", pw="x").json()["error_msg"] == "wrong username or password"


def test_bind_body_and_route_switch(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    token = state_token(idp, wx)
    assert error_code(call(idp, BIND, {"user_name": "alice"}, {"X-state-token": token})) == (
        "IDAAS.SDK.PARAM.0001"
    )
    idp.allowed_routes.discard("username_password_bind")
    assert error_code(bind(idp, token)) == "IDAAS.SDK.LOGIN.1011"


# refresh --------------------------------------------------------------------------------------
def session(idp: IdaasSimulator, wx: WeChatSimulator) -> str:
    idp.bindings["o_alice"] = "alice"
    token: str = login(idp, wx, "o_alice")["session_token"]
    return token


def refresh(idp: IdaasSimulator, token: str, header: str = "session-token") -> requests.Response:
    return call(idp, REFRESH, headers={header: token})


def test_refresh_echoes_the_session_token(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    token = session(idp, wx)
    body = refresh(idp, token).json()
    assert set(body) == {"session_token", "expire", "id_token"}
    assert body["session_token"] == token and 431990 <= body["expire"] <= 432000
    assert decode(idp, body["id_token"])["sub"] == "alice" and len(idp.id_tokens) == 2


def test_refresh_rotation(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    idp.rotate_session_token = True
    old = session(idp, wx)
    body = refresh(idp, old).json()
    assert body["session_token"] != old and body["expire"] == 432000
    assert error_code(refresh(idp, old)) == "IDAAS.SDK.PARAM.0023"
    assert refresh(idp, body["session_token"]).status_code == 200


def test_refresh_errors(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    assert error_code(refresh(idp, "unknown")) == "IDAAS.SDK.PARAM.0023"
    assert error_code(call(idp, REFRESH)) == "IDAAS.SDK.PARAM.0023"
    token = session(idp, wx)
    idp.invalidate_session(token)
    assert error_code(refresh(idp, token)) == "IDAAS.SDK.PARAM.0023"
    idp.session_expire_s = 0
    assert error_code(refresh(idp, session(idp, wx))) == "IDAAS.SDK.PARAM.0023"


def test_refresh_header_name(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    idp.session_token_header = "X-session-token"
    token = session(idp, wx)
    assert error_code(refresh(idp, token)) == "IDAAS.SDK.PARAM.0023"
    assert refresh(idp, token, "X-session-token").status_code == 200


# JWKS and id_token modes -----------------------------------------------------------------------
def test_jwks(idp: IdaasSimulator) -> None:
    resp = requests.get(idp.jwks_url, timeout=TIMEOUT)
    (key,) = resp.json()["keys"]
    assert set(key) == {"kty", "kid", "use", "alg", "n", "e"}
    assert (key["kty"], key["use"], key["alg"], key["kid"]) == (
        "RSA",
        "sig",
        "RS256",
        idp.minter.key.kid,
    )
    assert idp.jwks_fetches == 1


def id_token_in_mode(idp: IdaasSimulator, wx: WeChatSimulator, mode: str) -> str:
    idp.id_token_mode = mode
    idp.bindings["o_alice"] = "alice"
    token: str = login(idp, wx, "o_alice")["id_token"]
    return token


def test_api_claim_mode(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    claims = decode(idp, id_token_in_mode(idp, wx, "api_claim"))
    assert "sub" not in claims and json.loads(claims["api"]) == {"userName": "alice"}


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("expired", jwt.ExpiredSignatureError),
        ("not_yet_valid", jwt.ImmatureSignatureError),
        ("wrong_aud", jwt.InvalidAudienceError),
        ("wrong_iss", jwt.InvalidIssuerError),
        ("forged", jwt.InvalidSignatureError),
        ("not_jwt", jwt.DecodeError),
    ],
)
def test_broken_id_tokens_are_rejected(
    idp: IdaasSimulator, wx: WeChatSimulator, mode: str, error: type[Exception]
) -> None:
    token = id_token_in_mode(idp, wx, mode)
    key = idp.minter.key.private_key.public_key()
    with pytest.raises(error):
        jwt.decode(token, key, algorithms=["RS256"], audience=CLIENT, issuer=idp.issuer, leeway=60)


def test_unknown_kid_until_published(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    token = id_token_in_mode(idp, wx, "unknown_kid")
    with pytest.raises(KeyError):
        decode(idp, token)
    idp.publish_extra_key = True
    assert decode(idp, token)["sub"] == "alice"
    assert idp.jwks_fetches == 2


def test_status500_fault_is_the_idaas_busy_answer(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    idp.add_fault("status500", path=LOGIN)
    assert error_code(call(idp, LOGIN, {"code": "c"}), 500) == "IDAAS.SDK.COMMON.1008"
    assert idp.requests[0].json == {"code": "c"}
    idp.add_fault("reset", path=BIND)
    with pytest.raises(requests.ConnectionError):
        bind(idp, "t")


def test_standalone_cli(wx: WeChatSimulator) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "simulators")}
    cmd = [
        sys.executable,
        "-m",
        "bff_simulators.idaas",
        "--port",
        "0",
        "--wechat-base-url",
        wx.base_url,
        "--user",
        "carol:pw:+86-13800000009",
        "--tenant-status",
        "USER_REGISTER",
        "--client-id",
        CLIENT,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base_url)  # the first line: the URL
        config = requests.get(base_url + "/_sim/config", timeout=TIMEOUT).json()
        assert config["tenant_status"] == "USER_REGISTER"
        code = requests.post(base_url + "/_sim/phone-code", timeout=TIMEOUT).json()["code"]
        resp = requests.post(
            base_url + "/api/v2/sdk/login/wechat-mini-program-mobile",
            json={"code": code},
            headers=HEADERS,
            timeout=TIMEOUT,
        )
        assert resp.json()["status"] == " SUCCESS"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        assert proc.stderr is not None and proc.stderr.read() == ""  # no runpy RuntimeWarning
    finally:
        reap(proc)


def test_a_second_client_of_the_tenant_has_its_own_tokens(idp: IdaasSimulator, wx: WeChatSimulator):
    idp.add_client("client-two", "wx-two", "wx-two-secret")
    wx.add_app("wx-two", "wx-two-secret")
    other = {"X-client-id": "client-two"}
    code = wx.issue_code("o_two", appid="wx-two")
    answer = call(idp, LOGIN, {"code": code}, other).json()
    assert answer["status"].strip() == "SOCIAL_BIND"
    # its state token is refused with the first client's id, and the first app's code with its
    token = {"X-state-token": answer["state_token"]}
    body = {"user_name": "alice", "password": "alice-password"}
    assert error_code(call(idp, BIND, body, token)) == "IDAAS.SDK.COMMON.1007"
    stray = call(idp, LOGIN, {"code": wx.issue_code("o_two")}, other)
    assert error_code(stray) == "IDAAS.SDK.LOGIN.1009"  # WeChat 40029: not its code
