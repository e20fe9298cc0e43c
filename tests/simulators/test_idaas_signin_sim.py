"""IDaaS simulator: phone login, bind/register routes, captcha, code sending, control endpoints."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from bff_simulators import IdaasSimulator, WeChatSimulator

from .test_idaas_sim import HEADERS, TIMEOUT, call, error_code, state_token

PHONE_LOGIN = "/api/v2/sdk/login/wechat-mini-program-mobile"
MOBILE_BIND = "/api/v2/sdk/social/wechat-mobile-bind"
MOBILE_REGISTER = "/api/v2/sdk/social/wechat-mobile-register-bind"
CODE_BIND = "/api/v2/sdk/social/bind"
CODE_REGISTER = "/api/v2/sdk/social/register-bind"
ALICE_MOBILE = "+86-13800000001"


@pytest.fixture
def idp(idp_server: IdaasSimulator, wx: WeChatSimulator) -> IdaasSimulator:
    wx.reset_state()
    idp_server.reset_state()
    idp_server.add_user("alice", "alice-pw", mobile=ALICE_MOBILE, email="alice@example.com")
    return idp_server


def with_state(token: str) -> dict[str, str]:
    return {"X-state-token": token}


def success(resp: requests.Response) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    assert body["status"] == " SUCCESS" and {"session_token", "expire", "id_token"} <= set(body)
    return body


def send_code(idp: IdaasSimulator, to: str, kind: str) -> str:
    """Solve a captcha, have a code sent to `to`, return it from the inbox."""
    puzzle = call(idp, "/api/v2/sdk/captcha", method="GET").json()
    answer = idp.captcha_answers[puzzle["token"]]
    verify = {"point_json": answer, "token": puzzle["token"], "sender": to}
    captcha_token = call(idp, "/api/v2/sdk/captcha/verify", verify).json()["captcha_token"]
    field, path = (
        ("email", "/api/v2/sdk/email/send") if "@" in to else ("mobile", "/api/v2/sdk/sms/send")
    )
    resp = call(idp, path, {field: to, "type": kind, "captcha_token": captcha_token})
    assert (resp.status_code, resp.content) == (200, b"")
    return idp.inbox[-1].code


# phone-number login and binds -----------------------------------------------------------------
def test_phone_login(idp: IdaasSimulator) -> None:
    code = idp.issue_phone_code(ALICE_MOBILE)
    assert success(call(idp, PHONE_LOGIN, {"code": code}))
    assert error_code(call(idp, PHONE_LOGIN, {"code": code})) == "IDAAS.SDK.LOGIN.1009"
    assert error_code(call(idp, PHONE_LOGIN, {"code": "bogus"})) == "IDAAS.SDK.LOGIN.1009"
    stranger = idp.issue_phone_code("+86-13900000000")
    assert error_code(call(idp, PHONE_LOGIN, {"code": stranger})) == "IDAAS.SDK.LOGIN.1002"
    idp.phone_code_ttl_s = 0
    expired = idp.issue_phone_code(ALICE_MOBILE)
    assert error_code(call(idp, PHONE_LOGIN, {"code": expired})) == "IDAAS.SDK.LOGIN.1009"
    idp.allowed_routes = {"bind"}
    assert error_code(call(idp, PHONE_LOGIN, {"code": "x"})) == "IDAAS.SDK.LOGIN.1011"


def test_wechat_mobile_bind(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    token = state_token(idp, wx, "o_phone")
    stranger = idp.issue_phone_code("+86-13900000000")
    resp = call(idp, MOBILE_BIND, {"wechat_code": stranger}, with_state(token))
    assert error_code(resp) == "IDAAS.SDK.LOGIN.1002"
    code = idp.issue_phone_code(ALICE_MOBILE)
    success(call(idp, MOBILE_BIND, {"wechat_code": code}, with_state(token)))
    assert idp.bindings == {"o_phone": "alice"}
    again = call(
        idp, MOBILE_BIND, {"wechat_code": idp.issue_phone_code(ALICE_MOBILE)}, with_state(token)
    )
    assert error_code(again) == "IDAAS.SDK.PARAM.0014"
    assert error_code(call(idp, MOBILE_BIND, {"wechat_code": code})) == "IDAAS.SDK.COMMON.1007"


def test_wechat_mobile_register_bind(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    token = state_token(idp, wx, "o_reg")
    body = {"wechat_code": idp.issue_phone_code("+86-13900000000")}
    assert error_code(call(idp, MOBILE_REGISTER, body, with_state(token))) == (
        "IDAAS.SDK.SOCIAL.1002"
    )
    idp.tenant_status = "USER_REGISTER"
    success(call(idp, MOBILE_REGISTER, body, with_state(token)))
    assert idp.users["+86-13900000000"].mobile == "+86-13900000000"
    assert idp.bindings == {"o_reg": "+86-13900000000"}
    token = state_token(idp, wx, "o_reg2")
    body = {"wechat_code": idp.issue_phone_code(ALICE_MOBILE)}
    success(call(idp, MOBILE_REGISTER, body, with_state(token)))
    assert idp.bindings["o_reg2"] == "alice"


@pytest.mark.parametrize(
    ("field", "to"), [("mobile", ALICE_MOBILE), ("email", "alice@example.com")]
)
def test_verification_code_bind(
    idp: IdaasSimulator, wx: WeChatSimulator, field: str, to: str
) -> None:
    kind = "BIND_MOBILE_SMS" if field == "mobile" else "BIND_EMAIL_EMS"
    code = send_code(idp, to, kind)
    token = state_token(idp, wx, "o_code")
    wrong = "000000" if code != "000000" else "111111"
    resp = call(idp, CODE_BIND, {field: to, "verify_code": wrong}, with_state(token))
    assert error_code(resp) == "IDAAS.SDK.SMS.1003"
    success(call(idp, CODE_BIND, {field: to, "verify_code": code}, with_state(token)))
    assert idp.bindings == {"o_code": "alice"} and idp.inbox[-1].used
    token = state_token(idp, wx, "o_code2")
    resp = call(idp, CODE_BIND, {field: to, "verify_code": code}, with_state(token))
    assert error_code(resp) == "IDAAS.SDK.SMS.1003"


def test_verification_code_bind_errors(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    token = state_token(idp, wx)
    register_code = send_code(idp, ALICE_MOBILE, "REGISTER_SMS")
    body = {"mobile": ALICE_MOBILE, "verify_code": register_code}
    assert error_code(call(idp, CODE_BIND, body, with_state(token))) == "IDAAS.SDK.SMS.1003"
    stranger = "+86-13900000000"
    body = {"mobile": stranger, "verify_code": send_code(idp, stranger, "BIND_MOBILE_SMS")}
    assert error_code(call(idp, CODE_BIND, body, with_state(token))) == "IDAAS.SDK.LOGIN.1002"
    both = {"mobile": ALICE_MOBILE, "email": "alice@example.com", "verify_code": "1"}
    assert error_code(call(idp, CODE_BIND, both, with_state(token))) == "IDAAS.SDK.PARAM.0001"
    idp.verify_code_ttl_s = 0
    body = {"mobile": ALICE_MOBILE, "verify_code": send_code(idp, ALICE_MOBILE, "BIND_MOBILE_SMS")}
    assert error_code(call(idp, CODE_BIND, body, with_state(token))) == "IDAAS.SDK.SMS.1003"
    idp.allowed_routes.discard("bind")
    assert error_code(call(idp, CODE_BIND, body, with_state(token))) == "IDAAS.SDK.LOGIN.1011"


def test_register_bind(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    to = "new@example.com"
    body = {"email": to, "verify_code": send_code(idp, to, "REGISTER_EMS")}
    token = state_token(idp, wx, "o_new")
    assert error_code(call(idp, CODE_REGISTER, body, with_state(token))) == "IDAAS.SDK.SOCIAL.1002"
    idp.tenant_status = "USER_REGISTER"
    token = state_token(idp, wx, "o_new")
    success(call(idp, CODE_REGISTER, body, with_state(token)))
    assert idp.users[to].email == to and idp.bindings == {"o_new": to}


# captcha and sending ---------------------------------------------------------------------------
def test_captcha_shape(idp: IdaasSimulator) -> None:
    body = call(idp, "/api/v2/sdk/captcha", method="GET").json()
    assert set(body) == {
        "token",
        "secretKey",
        "originalImageBase64",
        "jigsawImageBase64",
        "wordList",
        "pointList",
        "result",
    }
    assert body["wordList"] is None and body["pointList"] is None and body["result"] is None
    answer = json.loads(idp.captcha_answers[body["token"]])
    assert answer["y"] == 5.0 and isinstance(answer["x"], float)


def verify(idp: IdaasSimulator, token: str, x: float, sender: str = ALICE_MOBILE) -> Any:
    point = json.dumps({"x": x, "y": 5.0})
    return call(
        idp, "/api/v2/sdk/captcha/verify", {"point_json": point, "token": token, "sender": sender}
    )


def test_captcha_verify(idp: IdaasSimulator) -> None:
    token = call(idp, "/api/v2/sdk/captcha", method="GET").json()["token"]
    x = json.loads(idp.captcha_answers[token])["x"]
    assert error_code(verify(idp, token, x + 40)) == "IDAAS.SDK.CAPTCHA.0002"
    assert error_code(verify(idp, token, x)) == "IDAAS.SDK.CAPTCHA.0002"  # spent
    token = call(idp, "/api/v2/sdk/captcha", method="GET").json()["token"]
    x = json.loads(idp.captcha_answers[token])["x"]
    resp = verify(idp, token, x + 4.5)
    assert resp.status_code == 200 and set(resp.json()) == {"captcha_token"}
    assert error_code(verify(idp, "unknown", 1.0)) == "IDAAS.SDK.CAPTCHA.0002"
    bad = {"point_json": "not json", "token": "t", "sender": "s"}
    assert error_code(call(idp, "/api/v2/sdk/captcha/verify", bad)) == "IDAAS.SDK.CAPTCHA.0002"


def captcha_token(idp: IdaasSimulator, sender: str = ALICE_MOBILE) -> str:
    token = call(idp, "/api/v2/sdk/captcha", method="GET").json()["token"]
    x = json.loads(idp.captcha_answers[token])["x"]
    result: str = verify(idp, token, x, sender).json()["captcha_token"]
    return result


def sms(
    idp: IdaasSimulator, token: str, mobile: str = ALICE_MOBILE, kind: str = "BIND_MOBILE_SMS"
) -> requests.Response:
    body = {"mobile": mobile, "type": kind, "captcha_token": token}
    return call(idp, "/api/v2/sdk/sms/send", body)


def test_sms_send(idp: IdaasSimulator) -> None:
    token = captcha_token(idp)
    resp = sms(idp, token)
    assert (resp.status_code, resp.content) == (200, b"")
    (sent,) = idp.inbox
    assert (sent.channel, sent.to, sent.type, len(sent.code)) == (
        "sms",
        ALICE_MOBILE,
        "BIND_MOBILE_SMS",
        6,
    )
    assert error_code(sms(idp, token)) == "IDAAS.SDK.CAPTCHA.0006"
    assert error_code(sms(idp, "unknown")) == "IDAAS.SDK.CAPTCHA.0006"
    other = captcha_token(idp, sender="+86-13900000000")
    assert error_code(sms(idp, other)) == "IDAAS.SDK.CAPTCHA.0006"
    fresh = captcha_token(idp)
    assert error_code(sms(idp, fresh, kind="BIND_EMAIL_EMS")) == "IDAAS.SDK.PARAM.0001"
    assert error_code(sms(idp, fresh, mobile="13800000001")) == "IDAAS.SDK.PARAM.0001"
    assert sms(idp, fresh).status_code == 200  # invalid requests did not spend it
    idp.captcha_token_ttl_s = 0
    assert error_code(sms(idp, captcha_token(idp))) == "IDAAS.SDK.CAPTCHA.0006"


def test_email_send_and_http_inbox(idp: IdaasSimulator) -> None:
    to = "alice@example.com"
    body = {"email": to, "type": "REGISTER_EMS", "captcha_token": captcha_token(idp, to)}
    assert call(idp, "/api/v2/sdk/email/send", body).status_code == 200
    bad = {"email": "nope", "type": "REGISTER_EMS", "captcha_token": captcha_token(idp, to)}
    assert error_code(call(idp, "/api/v2/sdk/email/send", bad)) == "IDAAS.SDK.PARAM.0001"
    (entry,) = requests.get(idp.base_url + "/_sim/inbox", timeout=TIMEOUT).json()
    assert entry["channel"] == "email" and entry["to"] == to and entry["type"] == "REGISTER_EMS"
    assert entry["code"] == idp.inbox[0].code


# control endpoints -----------------------------------------------------------------------------
def test_control_endpoints(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    base = idp.base_url + "/_sim"
    user = {"user_name": "dave", "password": "pw", "mobile": "+86-13700000000"}
    assert requests.post(base + "/users", json=user, timeout=TIMEOUT).status_code == 200
    assert idp.users["dave"].mobile == "+86-13700000000"
    assert (
        requests.post(base + "/users", json={"user_name": "x"}, timeout=TIMEOUT).status_code == 400
    )
    code = requests.post(
        base + "/phone-code", json={"mobile": "+86-13700000000"}, timeout=TIMEOUT
    ).json()["code"]
    assert success(call(idp, PHONE_LOGIN, {"code": code}))
    code = requests.post(base + "/phone-code", timeout=TIMEOUT).json()["code"]  # first user's
    assert idp.phone_codes[code].value == ALICE_MOBILE
    idp.users.clear()
    assert requests.post(base + "/phone-code", timeout=TIMEOUT).status_code == 400
    token = call(idp, "/api/v2/sdk/captcha", method="GET").json()["token"]
    answers = requests.get(base + "/captcha-answers", timeout=TIMEOUT).json()
    assert answers == {token: idp.captcha_answers[token]}
    assert idp.requests and all(not r.path.startswith("/_sim") for r in idp.requests)


def test_put_config(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    url = idp.base_url + "/_sim/config"
    knobs = {
        "tenant_status": "USER_REGISTER",
        "flows": None,
        "pad_status": False,
        "id_token_mode": "expired",
        "allowed_routes": ["bind"],
        "rotate_session_token": True,
        "login_status_override": None,
        "code_prefix": "SDK.",
        "state_token_ttl_s": 5,
    }
    resp = requests.put(url, json=knobs, timeout=TIMEOUT)
    assert resp.status_code == 200 and resp.json()["allowed_routes"] == ["bind"]
    assert idp.allowed_routes == {"bind"} and idp.code_prefix == "SDK."
    assert state_token(idp, wx) and idp.id_token_mode == "expired"
    for bad in (
        {"nope": 1},
        {"id_token_mode": "weird"},
        {"allowed_routes": ["x"]},
        {"pad_status": "yes"},
        {"state_token_ttl_s": -1},
    ):
        assert requests.put(url, json=bad, timeout=TIMEOUT).status_code == 400
    assert idp.pad_status is False
    assert requests.get(url, timeout=TIMEOUT).json()["tenant_status"] == "USER_REGISTER"
    idp.reset_state()
    assert (
        idp.tenant_status == "SOCIAL_BIND" and idp.users == {} and idp.code_prefix == ("IDAAS.SDK.")
    )
    assert HEADERS["X-client-id"] == idp.client_id
