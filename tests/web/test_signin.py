"""Phone login, the four bind/register routes and the captcha, end to end.

Real app, real Redis, the IDaaS simulator over sockets; assertions on the answer, on Redis and on
what the simulator received. Code sending itself: test_verification_codes.py.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.support.app import CLIENT_ID, DEVICE, assert_signed_in, last_call
from tests.support.signin import (
    ALICE_EMAIL,
    ALICE_MOBILE,
    PHONE_LOGIN,
    ROUTE_IDS,
    ROUTES,
    body_for,
    calls,
    code_sent_to,
    pending,
    send_code,
    upstream_body,
)

CODE_ROUTES = [r for r in ROUTES if r.kind == "code"]
PHONE_ROUTES = [r for r in ROUTES if r.kind == "phone"]


def _error(resp, status, code):
    assert resp.status_code == status, resp.json
    assert resp.json["error_code"] == code
    assert set(resp.json) == {"error_code", "error_msg", "request_id"}


# ----------------------------------------------------------------- POST /api/v1/login/phone


def test_login_phone_success_caches_the_session(auth, idaas_sim, redis, key_prefix):
    code = idaas_sim.issue_phone_code(ALICE_MOBILE)
    resp = auth.client.post(
        "/api/v1/login/phone", json={"phone_code": code}, headers=auth.headers()
    )
    assert_signed_in(resp, auth, idaas_sim, redis, key_prefix)
    sent = last_call(idaas_sim, PHONE_LOGIN)
    assert sent.json == {"code": code}
    assert sent.headers["X-client-id"] == CLIENT_ID
    assert sent.headers["X-device-fingerprint"] == DEVICE["X-device-fingerprint"]
    assert "X-state-token" not in sent.headers and "Authorization" not in sent.headers


def test_login_phone_replaces_a_pending_bind(auth, idaas_sim, redis, key_prefix):
    headers = pending(auth)
    code = idaas_sim.issue_phone_code(ALICE_MOBILE)
    resp = auth.client.post("/api/v1/login/phone", json={"phone_code": code}, headers=headers)
    assert_signed_in(resp, auth, idaas_sim, redis, key_prefix)  # pending gone too
    assert "X-state-token" not in last_call(idaas_sim, PHONE_LOGIN).headers


def test_login_phone_unknown_phone_passes_the_idaas_refusal(auth, idaas_sim, redis, key_prefix):
    code = idaas_sim.issue_phone_code("+86-13912345678")  # no account has it
    resp = auth.client.post(
        "/api/v1/login/phone", json={"phone_code": code}, headers=auth.headers()
    )
    _error(resp, 400, "IDAAS.SDK.LOGIN.1002")
    assert not redis.exists(f"{key_prefix}:session:{auth.openid}")


def test_login_phone_spent_code_and_bad_input(auth, idaas_sim):
    code = idaas_sim.issue_phone_code(ALICE_MOBILE)
    url = "/api/v1/login/phone"
    assert (
        auth.client.post(url, json={"phone_code": code}, headers=auth.headers()).status_code == 200
    )
    again = auth.client.post(url, json={"phone_code": code}, headers=auth.headers())
    _error(again, 400, "IDAAS.SDK.LOGIN.1009")
    before = len(idaas_sim.requests)
    resp = auth.client.post(url, json={"code": code}, headers=auth.headers())
    assert resp.status_code == 400 and set(resp.json["errors"]) == {"code", "phone_code"}
    no_device = {"Authorization": auth.headers()["Authorization"]}
    resp = auth.client.post(url, json={"phone_code": "x"}, headers=no_device)
    assert resp.status_code == 400 and "X-device-fingerprint" in resp.json["errors"]
    assert len(idaas_sim.requests) == before


# ----------------------------------------------------------------- the bind/register rows


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_route_success_caches_the_session(route, auth, idaas_sim, redis, key_prefix):
    headers = pending(auth, route.tenant)
    state_token = idaas_sim.state_tokens[-1]
    body = body_for(route, auth)
    resp = auth.client.post(route.path, json=body, headers=headers)
    assert_signed_in(resp, auth, idaas_sim, redis, key_prefix)
    sent = last_call(idaas_sim, route.upstream)
    assert sent.json == upstream_body(route, body)
    assert sent.headers["X-state-token"] == state_token
    assert sent.headers["X-client-id"] == CLIENT_ID
    assert sent.headers["X-operating-sys-version"] == DEVICE["X-operating-sys-version"]
    assert idaas_sim.bindings[auth.openid] == "alice"
    assert auth.login().json["status"] == "SUCCESS"  # from now on WeChat login alone suffices


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_route_without_pending_bind_is_409(route, auth, idaas_sim, redis, key_prefix):
    body = (
        {"phone_code": idaas_sim.issue_phone_code(ALICE_MOBILE)}
        if route.kind == "phone"
        else {"mobile": ALICE_MOBILE, "verify_code": "123456"}
    )
    resp = auth.client.post(route.path, json=body, headers=auth.headers())
    _error(resp, 409, "BFF.NO_PENDING_BIND")
    assert not calls(idaas_sim, route.upstream)  # nothing sent upstream


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_route_twice_second_is_409(route, auth, idaas_sim):
    headers = pending(auth, route.tenant)
    body = body_for(route, auth)
    assert auth.client.post(route.path, json=body, headers=headers).status_code == 200
    sent = len(calls(idaas_sim, route.upstream))
    _error(auth.client.post(route.path, json=body, headers=headers), 409, "BFF.NO_PENDING_BIND")
    assert len(calls(idaas_sim, route.upstream)) == sent


def _spend_at_idaas(idaas_sim, redis, key):
    state = idaas_sim.states[json.loads(redis.get(key))["state_token"]]
    state.used = True  # as if another client had already spent it


def _expire_at_idaas(idaas_sim, redis, key):
    state = idaas_sim.states[json.loads(redis.get(key))["state_token"]]
    state.expires_at = time.monotonic() - 1


def _unknown_to_idaas(idaas_sim, redis, key):
    redis.set(key, json.dumps({"state_token": "never-issued", "status": "SOCIAL_BIND"}), ex=600)


GONE = {  # each provokes one of the IDaaS answers that mean "state token gone"
    "used": _spend_at_idaas,  # PARAM.0014
    "expired": _expire_at_idaas,  # COMMON.1005
    "unknown": _unknown_to_idaas,  # COMMON.1007
}


@pytest.mark.parametrize("how", sorted(GONE))
@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_state_token_gone_drops_the_pending_bind(route, how, auth, idaas_sim, redis, key_prefix):
    headers = pending(auth, route.tenant)
    key = f"{key_prefix}:pending:{auth.openid}"
    body = body_for(route, auth)
    GONE[how](idaas_sim, redis, key)
    resp = auth.client.post(route.path, json=body, headers=headers)
    _error(resp, 409, "BFF.NO_PENDING_BIND")
    assert calls(idaas_sim, route.upstream)  # the IDaaS said so
    assert not redis.exists(key) and not redis.exists(f"{key_prefix}:session:{auth.openid}")


@pytest.mark.parametrize("route", PHONE_ROUTES, ids=lambda r: r.path)
def test_bad_phone_code_keeps_the_pending_bind(route, auth, idaas_sim, redis, key_prefix):
    headers = pending(auth, route.tenant)
    resp = auth.client.post(route.path, json={"phone_code": "not-a-code"}, headers=headers)
    _error(resp, 400, "IDAAS.SDK.LOGIN.1009")
    assert redis.exists(f"{key_prefix}:pending:{auth.openid}")
    retry = auth.client.post(route.path, json=body_for(route, auth), headers=headers)
    assert retry.status_code == 200 and retry.json["status"] == "SUCCESS"


@pytest.mark.parametrize("route", CODE_ROUTES, ids=lambda r: r.path)
def test_wrong_code_keeps_the_pending_bind(route, auth, idaas_sim, redis, key_prefix):
    headers = pending(auth, route.tenant)
    body = body_for(route, auth)
    wrong = {**body, "verify_code": f"{(int(body['verify_code']) + 1) % 10**6:06d}"}
    _error(auth.client.post(route.path, json=wrong, headers=headers), 400, "IDAAS.SDK.SMS.1003")
    assert redis.exists(f"{key_prefix}:pending:{auth.openid}")
    assert not redis.exists(f"{key_prefix}:session:{auth.openid}")
    assert auth.client.post(route.path, json=body, headers=headers).status_code == 200


@pytest.mark.parametrize("route", CODE_ROUTES, ids=lambda r: r.path)
def test_expired_code_is_refused(route, auth, idaas_sim, redis, key_prefix):
    headers = pending(auth, route.tenant)
    body = body_for(route, auth)
    idaas_sim.verify_code_ttl_s = 0  # the sim's code lifetime knob: every code is now too old
    _error(auth.client.post(route.path, json=body, headers=headers), 400, "IDAAS.SDK.SMS.1003")
    assert redis.exists(f"{key_prefix}:pending:{auth.openid}")


@pytest.mark.parametrize("route", CODE_ROUTES, ids=lambda r: r.path)
def test_code_for_another_destination_or_purpose_is_refused(route, auth, idaas_sim):
    idaas_sim.add_user("bob", "bob-password", mobile="+86-13700000000")
    headers = pending(auth, route.tenant)
    body = body_for(route, auth)  # a code sent to alice's mobile for this purpose
    other = {**body, "mobile": "+86-13700000000"}
    _error(auth.client.post(route.path, json=other, headers=headers), 400, "IDAAS.SDK.SMS.1003")
    other_purpose = "bind" if route.purpose == "register" else "register"
    idaas_sim.tenant_status = "USER_REGISTER"  # a step that offers both purposes
    auth.login()
    headers = auth.headers()
    body = body_for(route, auth)
    assert send_code(auth, ALICE_MOBILE, other_purpose).status_code == 204
    crossed = {**body, "verify_code": code_sent_to(auth, ALICE_MOBILE)}
    _error(auth.client.post(route.path, json=crossed, headers=headers), 400, "IDAAS.SDK.SMS.1003")
    assert auth.client.post(route.path, json=body, headers=headers).status_code == 200


@pytest.mark.parametrize("route", CODE_ROUTES, ids=lambda r: r.path)
def test_email_code_route(route, auth, idaas_sim, redis, key_prefix):
    headers = pending(auth, route.tenant)
    assert send_code(auth, ALICE_EMAIL, route.purpose).status_code == 204
    body = {"email": ALICE_EMAIL, "verify_code": code_sent_to(auth, ALICE_EMAIL)}
    resp = auth.client.post(route.path, json=body, headers=headers)
    assert_signed_in(resp, auth, idaas_sim, redis, key_prefix)
    assert last_call(idaas_sim, route.upstream).json == body


@pytest.mark.parametrize("route", [r for r in ROUTES if r.purpose == "register"], ids=ROUTE_IDS[2:])
def test_register_creates_an_unknown_account(route, auth, idaas_sim, redis, key_prefix):
    newcomer = "+86-13611112222"
    headers = pending(auth, "USER_REGISTER")
    resp = auth.client.post(route.path, json=body_for(route, auth, newcomer), headers=headers)
    assert_signed_in(resp, auth, idaas_sim, redis, key_prefix, subject=newcomer)
    assert idaas_sim.find_user(mobile=newcomer) is not None


@pytest.mark.parametrize("route", [r for r in ROUTES if r.purpose == "register"], ids=ROUTE_IDS[2:])
def test_register_on_a_bind_only_tenant_passes_the_refusal(
    route, auth, idaas_sim, redis, key_prefix
):
    headers = pending(auth, "SOCIAL_BIND")  # the tenant admits registered users only
    # bff sends no register code while the step is SOCIAL_BIND (test_verification_codes), so a
    # code route arrives with a code the user got elsewhere; the IDaaS refuses the route itself.
    body = (
        body_for(route, auth)
        if route.kind == "phone"
        else {"mobile": ALICE_MOBILE, "verify_code": "123456"}
    )
    resp = auth.client.post(route.path, json=body, headers=headers)
    _error(resp, 400, "IDAAS.SDK.SOCIAL.1002")
    assert redis.exists(f"{key_prefix}:pending:{auth.openid}")  # bind routes remain open
    bind = next(r for r in ROUTES if r.kind == route.kind and r.purpose == "bind")
    assert (
        auth.client.post(bind.path, json=body_for(bind, auth), headers=headers).status_code == 200
    )


def test_route_disabled_by_the_tenant_passes_the_refusal(auth, idaas_sim, redis, key_prefix):
    idaas_sim.allowed_routes.discard("wechat_mobile_bind")
    headers = pending(auth)
    route = ROUTES[0]
    resp = auth.client.post(route.path, json=body_for(route, auth), headers=headers)
    _error(resp, 400, "IDAAS.SDK.LOGIN.1011")
    assert redis.exists(f"{key_prefix}:pending:{auth.openid}")


BAD_BIND_BODIES = [
    ({"mobile": ALICE_MOBILE, "email": ALICE_EMAIL, "verify_code": "1"}, "_schema"),
    ({"verify_code": "1"}, "_schema"),
    ({"mobile": "13800000000", "verify_code": "1"}, "mobile"),
    ({"email": "not-an-email", "verify_code": "1"}, "email"),
    ({"mobile": ALICE_MOBILE}, "verify_code"),
    ({"mobile": ALICE_MOBILE, "verify_code": " "}, "verify_code"),
    ({"mobile": ALICE_MOBILE, "verify_code": "1", "openid": "spoof"}, "openid"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BIND_BODIES)
def test_code_routes_reject_bad_bodies(body, field, auth, idaas_sim):
    headers = pending(auth)
    before = len(idaas_sim.requests)
    resp = auth.client.post("/api/v1/bind/verification-code", json=body, headers=headers)
    assert resp.status_code == 400 and resp.json["error_code"] == "BFF.VALIDATION"
    assert field in resp.json["errors"]
    assert len(idaas_sim.requests) == before
