"""IDaaS simulator: the next steps of a login (MFA_AUTH, PASSWORD_WARN, PASSWORD_EXPIRED)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import requests

from bff_simulators import IdaasSimulator, WeChatSimulator
from bff_simulators._idaas_steps import mask_mobile

from .test_idaas_signin_sim import send_code, success, with_state
from .test_idaas_sim import LOGIN, bind, call, error_code, login, state_token

ALICE_MOBILE = "+86-15212347124"
MASKED = "+86-152****7124"
MOBILE_BY_TOKEN = "/api/v2/sdk/mobile-by-token"
MFA_SMS = "/api/v2/sdk/mfa/sms"
MFA_EMAIL = "/api/v2/sdk/mfa/email"
SKIP = "/api/v2/sdk/pwd/skip-update"
UPDATE = "/api/v2/sdk/pwd/update"
SMS_SEND = "/api/v2/sdk/sms/send"
EMAIL_SEND = "/api/v2/sdk/email/send"
POLICY = {"minLength": 8, "maxLength": 20, "regEx": r"^(?=.*[A-Za-z])(?=.*\d).+$"}


@pytest.fixture
def idp(idp_server: IdaasSimulator, wx: WeChatSimulator) -> IdaasSimulator:
    wx.reset_state()
    idp_server.reset_state()
    idp_server.add_user("alice", "alice-pw1", mobile=ALICE_MOBILE, email="alice@example.com")
    idp_server.bindings["o_alice"] = "alice"
    return idp_server


def step(idp: IdaasSimulator, wx: WeChatSimulator, name: str) -> dict[str, Any]:
    """Log o_alice in with `next_step` set: the step's answer."""
    idp.next_step = name
    body = login(idp, wx, "o_alice")
    assert body["status"].strip() == name and set(body) == {"status", "state_token", "data"}
    return body


def get(idp: IdaasSimulator, path: str, token: str) -> requests.Response:
    return call(idp, path, method="GET", headers=with_state(token))


def mfa_code(idp: IdaasSimulator, token: str, to: str, kind: str = "MFA_AUTH_SMS") -> str:
    """Solve a captcha for `to`, send the MFA code with the state token; the code."""
    puzzle = call(idp, "/api/v2/sdk/captcha", method="GET").json()
    verify = {"point_json": idp.captcha_answers[puzzle["token"]], "token": puzzle["token"]}
    captcha = call(idp, "/api/v2/sdk/captcha/verify", {**verify, "sender": to}).json()
    field, path = ("email", EMAIL_SEND) if "@" in to else ("mobile", SMS_SEND)
    body = {field: to, "type": kind, "captcha_token": captcha["captcha_token"]}
    resp = call(idp, path, body, with_state(token))
    assert (resp.status_code, resp.content) == (200, b""), resp.text
    return idp.inbox[-1].code


# the step answers -----------------------------------------------------------------------------
def test_next_step_answers_and_stays(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    assert step(idp, wx, "MFA_AUTH")["data"] is None
    for name in ("PASSWORD_WARN", "PASSWORD_EXPIRED"):
        assert json.loads(step(idp, wx, name)["data"]) == POLICY
        assert json.loads(step(idp, wx, name)["data"]) == POLICY  # until set back to None
    state = idp.states[login(idp, wx, "o_alice")["state_token"]]
    assert (state.user_name, state.openid, state.status) == ("alice", "o_alice", "PASSWORD_EXPIRED")
    idp.next_step = None
    assert success(call(idp, LOGIN, {"code": wx.issue_code("o_alice")}))


def test_a_bind_asks_for_the_step_too(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    token = state_token(idp, wx, "o_new")  # unbound: SOCIAL_BIND, no step
    idp.next_step = "MFA_AUTH"
    body = bind(idp, token, pw="alice-pw1").json()
    assert body["status"].strip() == "MFA_AUTH" and idp.bindings["o_new"] == "alice"
    assert idp.states[body["state_token"]].openid == "o_new"


def test_login_status_override_wins(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    idp.next_step = "MFA_AUTH"
    idp.login_status_override = "PASSWORD_WARN"  # as before: a session with that status
    assert set(login(idp, wx, "o_alice")) == {"status", "session_token", "expire", "id_token"}
    idp.login_status_override = "ACCESS_DENIED"
    assert set(login(idp, wx, "o_alice")) == {"status"}


def test_config_knobs(idp: IdaasSimulator) -> None:
    put = requests.put(
        idp.base_url + "/_sim/config",
        json={"next_step": "PASSWORD_WARN", "mfa_mobile_in_clear": True},
        timeout=5,
    )
    config = put.json()
    assert (config["next_step"], config["mfa_mobile_in_clear"]) == ("PASSWORD_WARN", True)
    assert config["password_policy"] == POLICY
    bad_regex = {**POLICY, "regEx": "(unclosed"}
    bad_length = {**POLICY, "maxLength": True}
    for bad in (
        {"next_step": "SUCCESS"},
        {"mfa_mobile_in_clear": "yes"},
        {"password_policy": {"minLength": 8}},
        {"password_policy": bad_regex},
        {"password_policy": bad_length},
    ):
        assert requests.put(idp.base_url + "/_sim/config", json=bad, timeout=5).status_code == 400
    idp.reset_state()
    assert (idp.next_step, idp.mfa_mobile_in_clear, idp.password_policy) == (None, False, POLICY)


# MFA ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mobile", "masked"),
    [(ALICE_MOBILE, MASKED), ("13800001234", "138****1234"), ("+1-5551234", "+1-****1234")],
)
def test_mask_mobile(mobile: str, masked: str) -> None:
    assert mask_mobile(mobile) == masked


def test_mobile_by_token(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    token = step(idp, wx, "MFA_AUTH")["state_token"]
    assert get(idp, MOBILE_BY_TOKEN, token).json() == {"mobile": MASKED}
    idp.mfa_mobile_in_clear = True
    assert get(idp, MOBILE_BY_TOKEN, token).json() == {"mobile": ALICE_MOBILE}
    warn = step(idp, wx, "PASSWORD_WARN")["state_token"]
    assert error_code(get(idp, MOBILE_BY_TOKEN, warn)) == "IDAAS.SDK.COMMON.1007"
    assert error_code(get(idp, MOBILE_BY_TOKEN, "bogus")) == "IDAAS.SDK.COMMON.1007"
    idp.add_user("alice", "alice-pw1")  # no mobile any more
    assert error_code(get(idp, MOBILE_BY_TOKEN, token)) == "IDAAS.SDK.MFA.1001"


@pytest.mark.parametrize("to", [MASKED, ALICE_MOBILE])
def test_mfa_by_sms(idp: IdaasSimulator, wx: WeChatSimulator, to: str) -> None:
    token = step(idp, wx, "MFA_AUTH")["state_token"]
    code = mfa_code(idp, token, to)
    sent = idp.inbox[-1]
    assert (sent.channel, sent.to, sent.type) == ("sms", ALICE_MOBILE, "MFA_AUTH_SMS")
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    resp = call(idp, MFA_SMS, {"mobile": to, "verify_code": wrong}, with_state(token))
    assert error_code(resp) == "IDAAS.SDK.SMS.1003"  # the state token is kept
    body = success(call(idp, MFA_SMS, {"mobile": to, "verify_code": code}, with_state(token)))
    assert idp.sessions[body["session_token"]].user_name == "alice"
    again = call(idp, MFA_SMS, {"mobile": to, "verify_code": code}, with_state(token))
    assert error_code(again) == "IDAAS.SDK.PARAM.0014"
    idp.next_step = None  # the knob stays set until then
    fresh = step(idp, wx, "MFA_AUTH")["state_token"]
    spent = call(idp, MFA_SMS, {"mobile": to, "verify_code": code}, with_state(fresh))
    assert error_code(spent) == "IDAAS.SDK.SMS.1003"


def test_mfa_by_email(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    token = step(idp, wx, "MFA_AUTH")["state_token"]
    code = mfa_code(idp, token, "a***@example.com", "MFA_AUTH_EMS")
    assert (idp.inbox[-1].channel, idp.inbox[-1].to) == ("email", "alice@example.com")
    body = {"email": "alice@example.com", "verify_code": code}
    success(call(idp, MFA_EMAIL, body, with_state(token)))


def test_mfa_code_expires(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    token = step(idp, wx, "MFA_AUTH")["state_token"]
    code = mfa_code(idp, token, MASKED)
    idp.verify_code_ttl_s = 0
    resp = call(idp, MFA_SMS, {"mobile": MASKED, "verify_code": code}, with_state(token))
    assert error_code(resp) == "IDAAS.SDK.SMS.1003"


def test_mfa_send_checks(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    token = step(idp, wx, "MFA_AUTH")["state_token"]
    body = {"mobile": MASKED, "type": "MFA_AUTH_SMS", "captcha_token": "x"}
    no_state = call(idp, SMS_SEND, body)
    assert error_code(no_state) == "IDAAS.SDK.COMMON.1007"
    other = call(idp, SMS_SEND, {**body, "mobile": "+86-152****0000"}, with_state(token))
    assert error_code(other) == "IDAAS.SDK.PARAM.0001"
    no_captcha = call(idp, SMS_SEND, body, with_state(token))
    assert error_code(no_captcha) == "IDAAS.SDK.CAPTCHA.0006"
    # the other code types are as before: a masked number is no number
    bind_code = {**body, "type": "BIND_MOBILE_SMS"}
    assert error_code(call(idp, SMS_SEND, bind_code)) == "IDAAS.SDK.PARAM.0001"
    assert send_code(idp, ALICE_MOBILE, "BIND_MOBILE_SMS")


def test_mfa_token_only_finishes_mfa(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    token = step(idp, wx, "MFA_AUTH")["state_token"]
    assert error_code(get(idp, SKIP, token)) == "IDAAS.SDK.COMMON.1007"
    body = {"old_password": "alice-pw1", "new_password": "alice-pw2"}
    assert error_code(call(idp, UPDATE, body, with_state(token))) == "IDAAS.SDK.COMMON.1007"
    warn = step(idp, wx, "PASSWORD_WARN")["state_token"]
    mfa = {"mobile": MASKED, "verify_code": "123456"}
    assert error_code(call(idp, MFA_SMS, mfa, with_state(warn))) == "IDAAS.SDK.COMMON.1007"
    social_bind = state_token(idp, wx, "o_stranger")
    assert error_code(get(idp, SKIP, social_bind)) == "IDAAS.SDK.COMMON.1007"


# password steps -------------------------------------------------------------------------------
def test_skip_a_warning(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    token = step(idp, wx, "PASSWORD_WARN")["state_token"]
    success(get(idp, SKIP, token))
    assert error_code(get(idp, SKIP, token)) == "IDAAS.SDK.PARAM.0014"


def test_an_expired_password_cannot_be_skipped(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    token = step(idp, wx, "PASSWORD_EXPIRED")["state_token"]
    denied = get(idp, SKIP, token)
    assert (denied.status_code, denied.json()) == (200, {"status": "ACCESS_DENIED "})
    body = {"old_password": "alice-pw1", "new_password": "alice-pw2"}
    success(call(idp, UPDATE, body, with_state(token)))  # the token was kept for this


@pytest.mark.parametrize("name", ["PASSWORD_WARN", "PASSWORD_EXPIRED"])
def test_update_the_password(idp: IdaasSimulator, wx: WeChatSimulator, name: str) -> None:
    token = step(idp, wx, name)["state_token"]
    for old, new, code in [
        ("wrong-pw1", "alice-pw2", "IDAAS.SDK.LOGIN.1005"),
        ("alice-pw1", "alice-pw1", "IDAAS.SDK.PWD.1001"),  # the old one
        ("alice-pw1", "short1", "IDAAS.SDK.PWD.1001"),
        ("alice-pw1", "a1" * 11, "IDAAS.SDK.PWD.1001"),  # 22 > maxLength
        ("alice-pw1", "only-letters", "IDAAS.SDK.PWD.1001"),
        ("alice-pw1", "12345678", "IDAAS.SDK.PWD.1001"),
    ]:
        resp = call(idp, UPDATE, {"old_password": old, "new_password": new}, with_state(token))
        assert error_code(resp) == code
        assert idp.users["alice"].password == "alice-pw1"
    body = {"old_password": "alice-pw1", "new_password": "alice-pw2"}
    success(call(idp, UPDATE, body, with_state(token)))
    assert idp.users["alice"].password == "alice-pw2"
    assert error_code(call(idp, UPDATE, body, with_state(token))) == "IDAAS.SDK.PARAM.0014"
    assert "alice" not in idp.password_failures  # a wrong old password is not counted


def test_the_policy_is_a_knob(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    idp.password_policy = {"minLength": 3, "maxLength": 5, "regEx": "^[a-z]+$"}
    answer = step(idp, wx, "PASSWORD_WARN")
    assert json.loads(answer["data"]) == idp.password_policy
    assert re.fullmatch(r"\{.*\}", answer["data"])
    token = with_state(answer["state_token"])
    bad = {"old_password": "alice-pw1", "new_password": "abc1"}
    assert error_code(call(idp, UPDATE, bad, token)) == "IDAAS.SDK.PWD.1001"
    success(call(idp, UPDATE, {"old_password": "alice-pw1", "new_password": "abc"}, token))
