"""A login's next step, finished over sockets against the IDaaS simulator: the second factor
(MFA_AUTH), the password steps (PASSWORD_WARN: skip or change; PASSWORD_EXPIRED: change), and
unbinding WeChat (every handle of the caller then answers 401 BFF.SESSION_REVOKED)."""

from __future__ import annotations

import json
import logging

import pytest

from tests.support.app import PASSWORD, assert_signed_in, last_call
from tests.support.signin import ALICE_MOBILE, SMS_SEND, calls, code_sent_to, solve_captcha

MASKED = "+86-138****0000"
MFA_CHECK = "/api/v2/sdk/mfa/sms"
PWD_UPDATE = "/api/v2/sdk/pwd/update"
SOCIAL = "/api/v2/sdk/social"
UNBIND = "/api/v2/sdk/social/unbind-account"
NEW_PASSWORD = "n3w-Passw0rd-42"


def _error(resp, status, code):
    assert resp.status_code == status, resp.json
    assert resp.json["error_code"] == code, resp.json


def _at_step(auth, idaas_sim, step: str) -> dict:
    """A bound user whose next login answers ``step``: its answer."""
    auth.signed_in()
    idaas_sim.next_step = step
    resp = auth.login()
    assert resp.status_code == 200 and resp.json["status"] == step, resp.json
    return resp.json


def _pending(redis, key_prefix, auth) -> dict | None:
    raw = redis.get(f"{key_prefix}:pending:{auth.openid}")
    return json.loads(raw) if raw else None


def test_login_mfa_code_success(auth, idaas_sim, redis, key_prefix):
    assert _at_step(auth, idaas_sim, "MFA_AUTH") == {"status": "MFA_AUTH"}
    state_token = _pending(redis, key_prefix, auth)["state_token"]
    info = auth.client.get("/api/v1/mfa", headers=auth.headers())
    assert info.status_code == 200 and info.json == {"factor": "sms", "destination": MASKED}

    sent = auth.client.post(
        "/api/v1/mfa/codes", json={"captcha": solve_captcha(auth)}, headers=auth.headers()
    )
    assert sent.status_code == 204, sent.json
    send = last_call(idaas_sim, SMS_SEND)
    assert send.json["type"] == "MFA_AUTH_SMS" and send.json["mobile"] == MASKED
    assert send.headers["X-state-token"] == state_token  # the server's, never the client's

    code = code_sent_to(auth, ALICE_MOBILE)
    resp = auth.client.post(
        "/api/v1/mfa/verify", json={"verify_code": code}, headers=auth.headers()
    )
    assert_signed_in(resp, auth, idaas_sim, redis, key_prefix)
    assert last_call(idaas_sim, MFA_CHECK).headers["X-state-token"] == state_token


def test_a_wrong_mfa_code_keeps_the_step_for_another_try(auth, idaas_sim, redis, key_prefix):
    _at_step(auth, idaas_sim, "MFA_AUTH")
    auth.client.post(
        "/api/v1/mfa/codes", json={"captcha": solve_captcha(auth)}, headers=auth.headers()
    )
    wrong = auth.client.post(
        "/api/v1/mfa/verify", json={"verify_code": "000000"}, headers=auth.headers()
    )
    assert wrong.status_code == 400 and wrong.json["error_code"].endswith("SMS.1003")
    assert _pending(redis, key_prefix, auth)["status"] == "MFA_AUTH"
    code = code_sent_to(auth, ALICE_MOBILE)
    resp = auth.client.post(
        "/api/v1/mfa/verify", json={"verify_code": code}, headers=auth.headers()
    )
    assert_signed_in(resp, auth, idaas_sim, redis, key_prefix)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/mfa", None),
        ("POST", "/api/v1/mfa/verify", {"verify_code": "123456"}),
        ("POST", "/api/v1/password/skip", {}),
        (
            "POST",
            "/api/v1/password/change",
            {"old_password": PASSWORD, "new_password": "x1y2z3w4v5"},
        ),
    ],
)
def test_no_such_step_pending_is_409(method, path, body, auth, idaas_sim):
    auth.pending_bind()  # a bind is pending: not a second factor, not a password step
    resp = auth.client.open(path, method=method, json=body, headers=auth.headers())
    _error(resp, 409, "BFF.NO_PENDING_STEP")
    assert not calls(idaas_sim, MFA_CHECK) and not calls(idaas_sim, PWD_UPDATE)


@pytest.mark.parametrize("path", ["/api/v1/mfa", "/api/v1/mfa/codes"])
def test_an_mfa_step_the_idaas_spent_is_409_and_dropped(path, auth, idaas_sim, redis, key_prefix):
    """Its state token spent or expired at the IDaaS: the destination and the code routes say
    so as mfa/verify does (409 BFF.NO_PENDING_STEP: sign in again), and the dead step goes."""
    _at_step(auth, idaas_sim, "MFA_AUTH")
    with idaas_sim.lock:
        for state in idaas_sim.states.values():
            state.used = True
    if path.endswith("codes"):
        resp = auth.client.post(path, json={"captcha": solve_captcha(auth)}, headers=auth.headers())
    else:
        resp = auth.client.get(path, headers=auth.headers())
    _error(resp, 409, "BFF.NO_PENDING_STEP")
    assert _pending(redis, key_prefix, auth) is None
    assert not calls(idaas_sim, SMS_SEND)


def test_a_bind_route_does_not_spend_an_mfa_step(auth, idaas_sim, redis, key_prefix):
    _at_step(auth, idaas_sim, "MFA_AUTH")
    _error(auth.bind(), 409, "BFF.NO_PENDING_BIND")
    assert _pending(redis, key_prefix, auth)["status"] == "MFA_AUTH"  # still there


def test_password_warn_gives_the_policy_and_skip_signs_in(auth, idaas_sim, redis, key_prefix):
    answer = _at_step(auth, idaas_sim, "PASSWORD_WARN")
    assert answer == {
        "status": "PASSWORD_WARN",
        "password_policy": {
            "min_length": 8,
            "max_length": 20,
            "pattern": idaas_sim.password_policy["regEx"],
        },
    }
    assert _pending(redis, key_prefix, auth)["policy"]["min_length"] == 8
    resp = auth.client.post("/api/v1/password/skip", json={}, headers=auth.headers())
    assert_signed_in(resp, auth, idaas_sim, redis, key_prefix)


def test_password_expired_cannot_be_skipped_only_changed(auth, idaas_sim, redis, key_prefix):
    _at_step(auth, idaas_sim, "PASSWORD_EXPIRED")
    _error(
        auth.client.post("/api/v1/password/skip", json={}, headers=auth.headers()),
        409,
        "BFF.NO_PENDING_STEP",
    )
    body = {"old_password": PASSWORD, "new_password": NEW_PASSWORD}
    resp = auth.client.post("/api/v1/password/change", json=body, headers=auth.headers())
    assert_signed_in(resp, auth, idaas_sim, redis, key_prefix)
    assert last_call(idaas_sim, PWD_UPDATE).json == body
    assert idaas_sim.users["alice"].password == NEW_PASSWORD


@pytest.mark.parametrize(
    ("new", "broken"),
    [
        ("short1", ["at least 8 characters"]),
        ("a" * 19 + "123", ["at most 20 characters"]),
        ("lettersonly", ["does not match the required pattern"]),
        (PASSWORD, ["must differ from the old password"]),
    ],
)
def test_a_new_password_that_breaks_the_policy_is_refused_before_any_call(
    new, broken, auth, idaas_sim, redis, key_prefix
):
    _at_step(auth, idaas_sim, "PASSWORD_EXPIRED")
    body = {"old_password": PASSWORD, "new_password": new}
    resp = auth.client.post("/api/v1/password/change", json=body, headers=auth.headers())
    _error(resp, 400, "BFF.PASSWORD_POLICY")
    assert resp.json["errors"] == {"new_password": broken}
    assert new not in json.dumps(resp.json)  # never echoed
    assert not calls(idaas_sim, PWD_UPDATE)
    assert _pending(redis, key_prefix, auth)["status"] == "PASSWORD_EXPIRED"


def test_no_password_in_any_log_line_of_a_change(auth, idaas_sim, caplog):
    caplog.set_level(logging.DEBUG)
    _at_step(auth, idaas_sim, "PASSWORD_WARN")
    for new in ("short1", NEW_PASSWORD):
        body = {"old_password": PASSWORD, "new_password": new}
        auth.client.post("/api/v1/password/change", json=body, headers=auth.headers())
    logged = caplog.text + "".join(repr(r.__dict__) for r in caplog.records)
    for secret in (PASSWORD, NEW_PASSWORD, "short1"):
        assert secret not in logged


def test_a_step_answers_in_the_users_language(auth, idaas_sim):
    auth.pending_bind()
    resp = auth.client.get("/api/v1/mfa", headers=auth.headers(**{"X-L": "zh-CN"}))
    _error(resp, 409, "BFF.NO_PENDING_STEP")
    assert "二次验证" in resp.json["error_msg"]
    resp = auth.client.get("/api/v1/mfa", headers=auth.headers(**{"X-L": "en"}))
    assert resp.json["error_msg"].startswith("this sign-in has no such step pending")


def test_unbind_ends_every_handle_of_the_caller(auth, idaas_sim, redis, key_prefix):
    auth.signed_in()
    phone = auth.headers()
    tablet_handle = auth.open_session()  # a second device of the same WeChat user
    tablet = auth.headers()
    assert phone != tablet
    resp = auth.client.delete("/api/v1/wechat-binding", headers=tablet)
    assert resp.status_code == 204, resp.json
    id_token = json.loads(redis.get(f"{key_prefix}:session:{auth.openid}") or "null")
    assert id_token is None  # the session is gone
    listed = last_call(idaas_sim, SOCIAL)
    assert listed.headers["Authorization"] == f"Bearer {idaas_sim.id_tokens[-1]}"
    assert last_call(idaas_sim, UNBIND).json["id"]
    for headers in (phone, tablet):
        _error(auth.client.get("/api/v1/session", headers=headers), 401, "BFF.SESSION_REVOKED")
    assert tablet_handle
    auth.handle = None  # the mini program signs in again: WeChat is no longer bound
    resp = auth.login()
    assert resp.status_code == 200 and resp.json["status"] == "SOCIAL_BIND"


def test_unbind_without_a_session_is_401_and_calls_nothing(auth, idaas_sim):
    auth.pending_bind()
    _error(
        auth.client.delete("/api/v1/wechat-binding", headers=auth.headers()),
        401,
        "BFF.SESSION_EXPIRED",
    )
    assert not calls(idaas_sim, SOCIAL)


def test_unbind_of_an_account_the_idaas_no_longer_binds_is_409(auth, idaas_sim, redis, key_prefix):
    auth.signed_in()
    idaas_sim.bindings.clear()  # unbound at the IdP meanwhile (e.g. by an administrator)
    resp = auth.client.delete("/api/v1/wechat-binding", headers=auth.headers())
    _error(resp, 409, "BFF.NOT_BOUND")
    assert not calls(idaas_sim, UNBIND)
    assert redis.exists(f"{key_prefix}:session:{auth.openid}")  # nothing ended


def test_an_unbind_that_fails_keeps_the_session_token_its_renewal_rotated(
    auth, idaas_sim, redis, key_prefix
):
    """The id_token nearly out of date is renewed first, which may rotate the session token;
    the unbind then refused (409 BFF.NOT_BOUND: nothing ended), the new token is kept, not the
    old one the IDaaS no longer knows."""
    auth.signed_in()
    key = f"{key_prefix}:session:{auth.openid}"
    cached = json.loads(redis.get(key))
    redis.set(
        key, json.dumps({**cached, "id_token_exp": cached["id_token_exp"] - 10**9}), keepttl=True
    )
    idaas_sim.rotate_session_token = True
    idaas_sim.bindings.clear()
    _error(
        auth.client.delete("/api/v1/wechat-binding", headers=auth.headers()), 409, "BFF.NOT_BOUND"
    )
    assert json.loads(redis.get(key))["session_token"] == idaas_sim.session_tokens[-1]
    resp = auth.client.post("/api/v1/session/refresh", headers=auth.headers())
    assert resp.status_code == 200, resp.json
