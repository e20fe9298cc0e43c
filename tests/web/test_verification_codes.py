"""POST /api/v1/verification-codes: slider + send in one call, limits that fail closed."""

from __future__ import annotations

import json
import secrets

import pytest
import redis as redis_lib

from tests.support.app import CLIENT_ID, DEVICE, PASSWORD, AuthActions, last_call
from tests.support.signin import (
    ALICE_EMAIL,
    ALICE_MOBILE,
    CAPTCHA_VERIFY,
    EMAIL_SEND,
    SMS_SEND,
    calls,
    code_sent_to,
    pending,
    random_mobile,
    send_code,
    solve_captcha,
)

pytestmark = pytest.mark.usefixtures("one_window")  # counts within one window


URL = "/api/v1/verification-codes"
# Counters live in the shared Redis: a scope under test gets a tight limit and a fresh identity
# (random number, new openid, random client IP); the others keep the suite's 10000/minute.
ONE_PER_DESTINATION = "destination=1/minute openid=10000/minute ip=10000/minute"
TYPES = [
    ("sms", "bind", "BIND_MOBILE_SMS"),
    ("sms", "register", "REGISTER_SMS"),
    ("email", "bind", "BIND_EMAIL_EMS"),
    ("email", "register", "REGISTER_EMS"),
]


def _error(resp, status, code):
    assert resp.status_code == status, resp.json
    assert resp.json["error_code"] == code


def _nothing_sent(sim):
    assert not calls(sim, CAPTCHA_VERIFY) and not calls(sim, SMS_SEND)
    assert not calls(sim, EMAIL_SEND) and not sim.inbox


@pytest.mark.parametrize(("channel", "purpose", "kind"), TYPES)
def test_sends_the_code_in_one_call(channel, purpose, kind, auth, idaas_sim):
    headers = pending(auth, "USER_REGISTER" if purpose == "register" else "SOCIAL_BIND")
    to = ALICE_MOBILE if channel == "sms" else ALICE_EMAIL
    captcha = solve_captcha(auth)
    body = {"channel": channel, "to": to, "purpose": purpose, "captcha": captcha}
    resp = auth.client.post(URL, json=body, headers=headers)
    assert resp.status_code == 204 and resp.data == b""
    verify = last_call(idaas_sim, CAPTCHA_VERIFY)
    assert verify.json == {
        "point_json": captcha["point_json"],
        "token": captcha["token"],
        "sender": to,
    }
    assert verify.headers["X-client-id"] == CLIENT_ID
    sent = last_call(idaas_sim, SMS_SEND if channel == "sms" else EMAIL_SEND)
    captcha_token = sent.json["captcha_token"]
    field = "mobile" if channel == "sms" else "email"
    assert sent.json == {field: to, "type": kind, "captcha_token": captcha_token}
    assert idaas_sim.captcha_tokens[captcha_token].value == to  # the one verify returned, spent
    assert idaas_sim.captcha_tokens[captcha_token].used
    assert sent.headers["X-device-fingerprint"] == DEVICE["X-device-fingerprint"]
    (code,) = idaas_sim.inbox
    assert (code.channel, code.to, code.type) == (channel, to, kind)


def test_no_pending_bind_is_409_and_nothing_is_sent(auth, idaas_sim, redis, key_prefix):
    captcha = solve_captcha(auth)  # auth only: no pending bind needed for the slider
    _error(send_code(auth, ALICE_MOBILE, captcha=captcha), 409, "BFF.NO_PENDING_BIND")
    pending(auth)
    redis.delete(f"{key_prefix}:pending:{auth.openid}")  # expired in the BFF
    _error(send_code(auth, ALICE_MOBILE, captcha=captcha), 409, "BFF.NO_PENDING_BIND")
    _nothing_sent(idaas_sim)
    assert captcha["token"] in idaas_sim.captcha_answers  # the slider was not even spent


def test_bad_slider_is_400_with_the_idaas_code(auth, idaas_sim):
    headers = pending(auth)
    captcha = {**solve_captcha(auth), "point_json": '{"x":-100.0,"y":5.0}'}
    resp = send_code(auth, ALICE_MOBILE, captcha=captcha)
    _error(resp, 400, "IDAAS.SDK.CAPTCHA.0002")
    assert set(resp.json) == {"error_code", "error_msg", "request_id"}
    assert calls(idaas_sim, CAPTCHA_VERIFY) and not calls(idaas_sim, SMS_SEND)
    assert not idaas_sim.inbox
    again = send_code(auth, ALICE_MOBILE, captcha={**captcha, "point_json": "{}"}, **headers)
    _error(again, 400, "IDAAS.SDK.CAPTCHA.0002")  # a slider is used once, right or wrong


def test_captcha_token_refused_at_send_passes_the_idaas_code(auth, idaas_sim):
    pending(auth)
    idaas_sim.captcha_token_ttl_s = 0  # the token verify returns is stale at once
    _error(send_code(auth, ALICE_MOBILE), 400, "IDAAS.SDK.CAPTCHA.0006")
    assert not idaas_sim.inbox


BAD_BODIES = [
    ({"channel": "sms", "to": ALICE_EMAIL}, "to"),
    ({"channel": "email", "to": ALICE_MOBILE}, "to"),
    ({"channel": "sms", "to": "13800000000"}, "to"),
    ({"channel": "fax"}, "channel"),
    ({"purpose": "login"}, "purpose"),
    ({"captcha": {"token": "t"}}, "captcha"),
    ({"captcha": None}, "captcha"),
    ({"openid": "spoof"}, "openid"),
    ({"captcha_token": "smuggled"}, "captcha_token"),
]


@pytest.mark.parametrize(("change", "field"), BAD_BODIES)
def test_bad_bodies_are_not_counted_or_sent(change, field, make_app, wechat_sim, idaas_sim):
    app = make_app(RATE_LIMIT_CODES=ONE_PER_DESTINATION)
    auth = AuthActions(app.test_client(), wechat_sim, idaas_sim)
    headers = pending(auth)
    to = random_mobile()
    body = {"channel": "sms", "to": to, "purpose": "bind", "captcha": solve_captcha(auth), **change}
    resp = auth.client.post(URL, json=body, headers=headers)
    _error(resp, 400, "BFF.VALIDATION")
    assert field in resp.json["errors"]
    _nothing_sent(idaas_sim)
    assert send_code(auth, to).status_code == 204  # the bad request spent no attempt


def test_missing_device_headers_are_400_before_anything_is_counted(make_app, wechat_sim, idaas_sim):
    app = make_app(RATE_LIMIT_CODES=ONE_PER_DESTINATION)
    auth = AuthActions(app.test_client(), wechat_sim, idaas_sim)
    pending(auth)
    to = random_mobile()
    body = {"channel": "sms", "to": to, "purpose": "bind", "captcha": solve_captcha(auth)}
    bare = {"Authorization": auth.headers()["Authorization"]}
    resp = auth.client.post(URL, json=body, headers=bare)
    _error(resp, 400, "BFF.VALIDATION")
    assert set(resp.json["errors"]) == {"X-operating-sys-version", "X-device-fingerprint"}
    _nothing_sent(idaas_sim)
    assert send_code(auth, to).status_code == 204


# ----------------------------------------------------------------- RATE_LIMIT_CODES


def _limited(resp, sim, verifies_before):
    _error(resp, 429, "BFF.RATE_LIMITED")
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    assert len(calls(sim, CAPTCHA_VERIFY)) == verifies_before  # the slider was not even checked


def test_limit_per_destination(make_app, wechat_sim, idaas_sim):
    """Counted once the slider is solved: the second code to one number is refused, unsent."""
    app = make_app(RATE_LIMIT_CODES=ONE_PER_DESTINATION)
    auth = AuthActions(app.test_client(), wechat_sim, idaas_sim)
    pending(auth)
    to = random_mobile()
    assert send_code(auth, to).status_code == 204
    _error(send_code(auth, to), 429, "BFF.RATE_LIMITED")
    other = AuthActions(app.test_client(), wechat_sim, idaas_sim)  # another user, same number
    pending(other)
    resp = send_code(other, to)
    _error(resp, 429, "BFF.RATE_LIMITED")
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    assert not calls(idaas_sim, EMAIL_SEND) and len(calls(idaas_sim, SMS_SEND)) == 1
    assert send_code(auth, random_mobile()).status_code == 204  # another number is fine
    assert len(idaas_sim.inbox) == 2


def test_a_failed_slider_spends_an_attempt(make_app, wechat_sim, idaas_sim):
    """Counted per openid before the slider is checked: failing it is no way around the limit."""
    app = make_app(RATE_LIMIT_CODES="destination=10000/minute openid=1/minute ip=10000/minute")
    auth = AuthActions(app.test_client(), wechat_sim, idaas_sim)
    pending(auth)
    to = random_mobile()
    bad = {**solve_captcha(auth), "point_json": '{"x":-1.0,"y":5.0}'}
    _error(send_code(auth, to, captcha=bad), 400, "IDAAS.SDK.CAPTCHA.0002")
    _limited(send_code(auth, to), idaas_sim, 1)
    assert not idaas_sim.inbox


def test_failed_sliders_do_not_spend_a_victims_number(make_app, wechat_sim, idaas_sim):
    """Without solving sliders nobody can use up (and lock) someone else's per-number budget."""
    app = make_app(RATE_LIMIT_CODES=ONE_PER_DESTINATION)
    attacker = AuthActions(app.test_client(), wechat_sim, idaas_sim)
    pending(attacker)
    victim_number = random_mobile()
    for _ in range(3):
        bad = {**solve_captcha(attacker), "point_json": '{"x":-1.0,"y":5.0}'}
        _error(send_code(attacker, victim_number, captcha=bad), 400, "IDAAS.SDK.CAPTCHA.0002")
    victim = AuthActions(app.test_client(), wechat_sim, idaas_sim)
    pending(victim)
    assert send_code(victim, victim_number).status_code == 204


def test_one_number_spelled_two_ways_shares_its_budget(make_app, wechat_sim, idaas_sim):
    app = make_app(RATE_LIMIT_CODES=ONE_PER_DESTINATION)
    auth = AuthActions(app.test_client(), wechat_sim, idaas_sim)
    pending(auth)
    number = random_mobile()  # +86-139...
    assert send_code(auth, number).status_code == 204
    respelled = number.replace("+86-", "+086-0")
    _error(send_code(auth, respelled), 429, "BFF.RATE_LIMITED")


def test_no_code_for_a_non_bind_step(auth, idaas_sim, redis, key_prefix):
    """A pending MFA step is no bind: nothing to finish with a code, nothing sent."""
    auth.signed_in()
    idaas_sim.login_status_override = "MFA_AUTH"
    assert auth.login().json == {"status": "MFA_AUTH"}
    _error(send_code(auth, ALICE_MOBILE), 409, "BFF.NO_PENDING_BIND")
    assert not calls(idaas_sim, SMS_SEND)


def test_limit_per_openid(make_app, wechat_sim, idaas_sim):
    app = make_app(RATE_LIMIT_CODES="destination=10000/minute openid=2/minute ip=10000/minute")
    auth = AuthActions(app.test_client(), wechat_sim, idaas_sim)
    pending(auth)
    assert [send_code(auth, random_mobile()).status_code for _ in range(2)] == [204, 204]
    _limited(send_code(auth, random_mobile()), idaas_sim, 2)
    other = AuthActions(app.test_client(), wechat_sim, idaas_sim)
    pending(other)
    assert send_code(other, random_mobile()).status_code == 204


def test_limit_per_ip(make_app, wechat_sim, idaas_sim):
    app = make_app(RATE_LIMIT_CODES="destination=10000/minute openid=10000/minute ip=2/minute")
    ip = f"198.51.100.{secrets.randbelow(250) + 1}"
    users = [AuthActions(app.test_client(), wechat_sim, idaas_sim) for _ in range(3)]
    for user in users:
        pending(user)
    statuses = [send_code(u, random_mobile(), **{"X-Forwarded-For": ip}).status_code for u in users]
    assert statuses[:2] == [204, 204] and statuses[2] == 429
    assert (
        send_code(users[2], random_mobile(), **{"X-Forwarded-For": "203.0.113.9"}).status_code
        == 204
    )
    assert len(idaas_sim.inbox) == 3


# ----------------------------------------------------------------- Redis: fail closed


def test_redis_down_is_503_and_no_code_is_sent(make_app, own_redis, wechat_sim, idaas_sim):
    app = make_app(REDIS_URL=own_redis.url)
    auth = AuthActions(app.test_client(), wechat_sim, idaas_sim)
    pending(auth)
    captcha = solve_captcha(auth)
    own_redis.stop()
    _error(send_code(auth, ALICE_MOBILE, captcha=captcha), 503, "BFF.SESSION_STORE_UNAVAILABLE")
    _nothing_sent(idaas_sim)


def test_the_code_and_bind_limiters_fail_closed_the_login_one_open(
    make_app, limiter_denied_redis, wechat_sim, idaas_sim, key_prefix, capsys
):
    app = make_app(REDIS_URL=limiter_denied_redis.url)
    auth = AuthActions(app.test_client(), wechat_sim, idaas_sim)
    pending(auth)  # the login limiter fails open: the login goes through
    _error(send_code(auth, ALICE_MOBILE), 503, "BFF.SESSION_STORE_UNAVAILABLE")
    _nothing_sent(idaas_sim)
    assert "rate limiter unavailable; refusing" in capsys.readouterr().out
    # A bind is a password guess: its limiter fails closed too (nothing reaches the IDaaS).
    _error(auth.bind(), 503, "BFF.SESSION_STORE_UNAVAILABLE")
    assert not calls(idaas_sim, "/api/v2/sdk/social/username-password-bind")
    client = redis_lib.Redis(port=limiter_denied_redis.port, decode_responses=True)
    assert client.exists(f"{key_prefix}:pending:{auth.openid}")  # the login's was stored


# ----------------------------------------------------------------- no secrets out


def test_no_captcha_token_code_or_number_in_answers_or_logs(
    make_app, wechat_sim, idaas_sim, capsys
):
    auth = AuthActions(make_app().test_client(), wechat_sim, idaas_sim)
    headers = pending(auth)
    answers = []
    bad = {**solve_captcha(auth), "point_json": '{"x":-1.0,"y":5.0}'}
    answers.append(send_code(auth, ALICE_MOBILE, captcha=bad))
    answers.append(send_code(auth, ALICE_EMAIL))
    answers.append(send_code(auth, ALICE_MOBILE))
    code = code_sent_to(auth, ALICE_MOBILE)
    body = {"mobile": ALICE_MOBILE, "verify_code": code}
    answers.append(auth.client.post("/api/v1/bind/verification-code", json=body, headers=headers))
    assert answers[-1].status_code == 200, answers[-1].json
    out = capsys.readouterr().out + "".join(r.get_data(as_text=True) for r in answers)
    secrets_ = [*idaas_sim.captcha_tokens, code_sent_to(auth, ALICE_EMAIL), code, PASSWORD]
    for value in (*secrets_, ALICE_MOBILE, "13800000000", ALICE_EMAIL):
        assert value not in out
    logged = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    sent = [line for line in logged if line.get("message") == "code_sent"]  # audit records
    assert [line["to"] for line in sent] == ["a***@example.com", "+86-138****0000"]
    refused = [line for line in logged if line.get("message") == "code_refused"]
    assert refused[0]["to"] == "+86-138****0000" and refused[0]["result"].endswith("0002")


def test_register_code_needs_a_user_register_step(auth, idaas_sim):
    pending(auth, "SOCIAL_BIND")
    resp = send_code(auth, ALICE_MOBILE, purpose="register")
    _error(resp, 400, "BFF.VALIDATION")
    assert "purpose" in resp.json["errors"]
    assert not calls(idaas_sim, SMS_SEND) and not idaas_sim.inbox  # nothing paid for


# "+86-13800000000" with its digits in other scripts: \d without re.ASCII accepted them, and
# each spelling got its own per-destination budget (review finding: SMS pumping).
NON_ASCII_NUMBERS = [
    "+86-\uff11\uff13\uff18\uff10\uff10\uff10\uff10\uff10\uff10\uff10\uff10",  # fullwidth
    "+86-\u0661\u0663\u0668\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660",  # Arabic-Indic
    "+\uff18\uff16-13800000000",  # the country code alone
]


@pytest.mark.parametrize("to", NON_ASCII_NUMBERS)
def test_non_ascii_digits_are_refused_not_sent(to, auth, idaas_sim):
    headers = pending(auth)
    captcha = solve_captcha(auth)
    idaas_sim.requests.clear()
    body = {"channel": "sms", "to": to, "purpose": "bind", "captcha": captcha}
    resp = auth.client.post(URL, json=body, headers=headers)
    _error(resp, 400, "BFF.VALIDATION")
    assert "to" in resp.json["errors"]
    _nothing_sent(idaas_sim)


@pytest.mark.parametrize("to", NON_ASCII_NUMBERS)
def test_non_ascii_digits_are_refused_on_the_code_routes(to, auth, idaas_sim):
    headers = pending(auth)
    resp = auth.client.post(
        "/api/v1/bind/verification-code",
        json={"mobile": to, "verify_code": "123456"},
        headers=headers,
    )
    _error(resp, 400, "BFF.VALIDATION")
    assert "mobile" in resp.json["errors"]
