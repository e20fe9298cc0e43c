"""GET /api/v1/auth, the gateway's check: the identity as headers, no IdP call while the id_token
is fresh, one renewal when it is not; refusals in 401/403 only, the code in X-BFF-Error."""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.parse

import jwt
import pytest

from tests.support.app import DEVICE

REFRESH = "/api/v2/sdk/sso/session-token/id-token"


def _refreshes(idaas_sim) -> int:
    return sum(1 for r in idaas_sim.requests if r.path == REFRESH)


def _check(auth, method="GET", path="/api/v1/auth", **headers):
    return auth.client.open(path, method=method, headers={**auth.headers(), **headers})


def test_a_signed_in_handle_gets_its_identity_as_headers_and_no_idp_call(auth, idaas_sim):
    auth.signed_in()
    before = _refreshes(idaas_sim)
    resp = _check(auth)
    assert resp.status_code == 200 and resp.data == b""  # headers only: see the next test
    assert resp.headers["X-BFF-Openid"] == auth.openid
    assert resp.headers["X-BFF-Unionid"] == auth.unionid
    assert resp.headers["X-BFF-Subject"] == "alice"
    assert resp.headers["X-BFF-App"] == "default"
    assert "Authorization" not in resp.headers  # FORWARD_AUTH_ID_TOKEN is off by default
    assert resp.headers["Cache-Control"] == "no-store"
    assert _refreshes(idaas_sim) == before  # the id_token of the sign-in is fresh


def test_a_subject_beyond_ascii_is_percent_encoded_utf8(auth, idaas_sim):
    """A header value is bytes the gateway copies as they are, and gunicorn refuses one beyond
    Latin-1 (a 500, every check of that user): a subject such as a Chinese user name arrives
    percent-encoded as UTF-8, and ``%`` itself too; printable ASCII is unchanged."""
    name = "张三% x-" + secrets.token_hex(2)
    idaas_sim.add_user(name, "pw-" + name)
    auth.pending_bind()
    assert auth.bind(user_name=name, password="pw-" + name).status_code == 200
    sent = _check(auth).headers["X-BFF-Subject"]
    assert sent.isascii() and sent.startswith("%E5%BC%A0%E4%B8%89%25 x-")  # the space stays
    assert urllib.parse.unquote(sent) == name


@pytest.mark.parametrize("method", ["HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_any_method_and_any_path_below_is_the_same_check(auth, method):
    auth.signed_in()
    resp = _check(auth, method, "/api/v1/auth/orders/42?x=1")
    assert resp.status_code == 200 and resp.headers["X-BFF-Openid"] == auth.openid


def test_the_id_token_is_passed_on_where_switched_on(make_app, idaas_sim, wechat_sim, auth):
    auth.client = make_app(FORWARD_AUTH_ID_TOKEN="true").test_client()
    auth.signed_in()
    resp = _check(auth)
    scheme, _, token = resp.headers["Authorization"].partition(" ")
    assert scheme == "Bearer" and token == idaas_sim.id_tokens[-1]
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == "alice"


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"Authorization": ""}, "BFF.UNAUTHENTICATED"),
        ({"Authorization": "Bearer " + "A" * 43}, "BFF.UNAUTHENTICATED"),
        ({"Authorization": "Basic abc"}, "BFF.UNAUTHENTICATED"),
    ],
)
def test_no_or_an_unknown_handle_is_401_with_www_authenticate(auth, headers, code):
    resp = _check(auth, **headers)
    assert resp.status_code == 401
    assert resp.json["error_code"] == code == resp.headers["X-BFF-Error"]
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="bff"'
    assert set(resp.json) == {"error_code", "error_msg", "request_id"}


def test_a_handle_with_no_signed_in_session_is_401_session_expired(auth):
    resp = _check(auth)  # a handle, but no login yet
    assert resp.status_code == 401 and resp.headers["X-BFF-Error"] == "BFF.SESSION_EXPIRED"


def test_after_logout_on_another_device_the_check_is_revoked(auth):
    phone = auth.signed_in()
    tablet_handle = auth.open_session()  # the same user on a second device
    assert auth.client.delete("/api/v1/session", headers=auth.headers()).status_code == 204
    for headers in (phone, {"Authorization": f"Bearer {tablet_handle}"}):
        resp = auth.client.get("/api/v1/auth", headers=headers)
        assert resp.status_code == 401 and resp.headers["X-BFF-Error"] == "BFF.SESSION_REVOKED"


def test_a_store_outage_fails_closed_as_403(make_app, own_redis, idaas_sim, wechat_sim, auth):
    auth.client = make_app(REDIS_URL=own_redis.url).test_client()
    auth.signed_in()
    own_redis.stop()
    resp = _check(auth)
    assert resp.status_code == 403
    assert resp.headers["X-BFF-Error"] == "BFF.SESSION_STORE_UNAVAILABLE"
    assert "X-BFF-Openid" not in resp.headers


def test_a_gone_session_the_store_cannot_drop_is_not_served(make_app, own_redis, idaas_sim, auth):
    """The IDaaS says the session is gone and Redis fails as bff drops it: the check fails
    closed (403), it does not serve the token as it would for an IDaaS that is merely down."""
    idaas_sim.id_token_ttl_s = 30
    auth.client = make_app(REDIS_URL=own_redis.url).test_client()
    auth.signed_in()
    for entry in idaas_sim.sessions.values():  # the IdP no longer knows it: PARAM.0023
        entry.valid = False
    idaas_sim.add_fault("latency", REFRESH, seconds=1.5)
    outage = threading.Timer(0.3, own_redis.stop)  # while the renewal is in flight
    outage.start()
    try:
        resp = _check(auth)
    finally:
        outage.join()
    assert resp.status_code == 403, resp.headers
    assert resp.headers["X-BFF-Error"] == "BFF.SESSION_STORE_UNAVAILABLE"


def test_a_token_near_its_exp_is_renewed_once_and_kept(auth, idaas_sim, redis, key_prefix):
    idaas_sim.id_token_ttl_s = 30  # the sign-in's id_token: within a minute of its exp
    auth.signed_in()
    idaas_sim.id_token_ttl_s = 300
    before = _refreshes(idaas_sim)
    for _ in range(3):
        assert _check(auth).status_code == 200
    assert _refreshes(idaas_sim) == before + 1
    cached = json.loads(redis.get(f"{key_prefix}:session:{auth.openid}"))
    assert cached["id_token"] == idaas_sim.id_tokens[-1]
    assert 290 < cached["id_token_exp"] - time.time() <= 300
    sent = [r for r in idaas_sim.requests if r.path == REFRESH][-1]
    assert sent.headers["X-device-fingerprint"] == DEVICE["X-device-fingerprint"]


def test_the_handles_device_is_sent_when_the_gateway_forwards_none(
    auth, idaas_sim, redis, key_prefix
):
    opened = auth.client.post(  # the mini program opens its session with its device headers
        "/api/v1/wechat/session", json={"wx_code": auth.wx_code()}, headers=DEVICE
    )
    auth.handle = opened.json["handle"]
    idaas_sim.id_token_ttl_s = 30
    auth.signed_in()
    idaas_sim.id_token_ttl_s = 300
    resp = auth.client.get("/api/v1/auth", headers={"Authorization": f"Bearer {auth.handle}"})
    assert resp.status_code == 200
    sent = [r for r in idaas_sim.requests if r.path == REFRESH][-1]
    assert sent.headers["X-device-fingerprint"] == DEVICE["X-device-fingerprint"]
    assert sent.headers["X-operating-sys-version"] == DEVICE["X-operating-sys-version"]


def test_concurrent_checks_of_one_user_renew_once(make_app, auth, idaas_sim):
    """Threads of one process here; across workers through nginx in test_gateway_nginx."""
    idaas_sim.id_token_ttl_s = 30
    auth.signed_in()
    idaas_sim.id_token_ttl_s = 300
    idaas_sim.add_fault("latency", REFRESH, count=None, seconds=0.3)  # the others arrive meanwhile
    app = auth.client.application
    before, statuses = _refreshes(idaas_sim), []
    start = threading.Barrier(20)
    headers = auth.headers()

    def check() -> None:
        start.wait()
        statuses.append(app.test_client().get("/api/v1/auth", headers=headers).status_code)

    threads = [threading.Thread(target=check) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert statuses == [200] * 20
    assert _refreshes(idaas_sim) == before + 1


def test_an_expired_token_waits_for_the_renewal_then_serves_it(auth, idaas_sim, redis, key_prefix):
    auth.signed_in()
    key = f"{key_prefix}:session:{auth.openid}"
    cached = json.loads(redis.get(key))
    redis.set(key, json.dumps({**cached, "id_token_exp": int(time.time()) - 1}), keepttl=True)
    before = _refreshes(idaas_sim)
    resp = _check(auth)
    assert resp.status_code == 200 and _refreshes(idaas_sim) == before + 1


@pytest.mark.parametrize("fault", ["status500", "status429"])
def test_the_idp_down_or_refusing_serves_a_still_valid_token(auth, idaas_sim, fault):
    """Down (5xx) or refusing the renewal (a 4xx other than "session gone", e.g. throttled):
    the token the IDaaS gave is still good until it runs out."""
    idaas_sim.id_token_ttl_s = 30
    auth.signed_in()
    idaas_sim.add_fault(fault, REFRESH, count=None)
    resp = _check(auth)
    assert resp.status_code == 200 and resp.headers["X-BFF-Openid"] == auth.openid


def test_the_idp_down_with_the_token_run_out_is_403_upstream(auth, idaas_sim, redis, key_prefix):
    auth.signed_in()
    key = f"{key_prefix}:session:{auth.openid}"
    cached = json.loads(redis.get(key))
    redis.set(key, json.dumps({**cached, "id_token_exp": int(time.time()) - 1}), keepttl=True)
    idaas_sim.add_fault("status500", REFRESH, count=None)
    resp = _check(auth)
    assert resp.status_code == 403 and resp.headers["X-BFF-Error"].startswith("BFF.UPSTREAM_")


def test_a_session_kept_before_it_had_an_id_token_gets_one(auth, idaas_sim, redis, key_prefix):
    auth.signed_in()
    key = f"{key_prefix}:session:{auth.openid}"
    cached = json.loads(redis.get(key))
    del cached["id_token"], cached["id_token_exp"]
    redis.set(key, json.dumps(cached), keepttl=True)
    assert _check(auth).status_code == 200
    assert json.loads(redis.get(key))["id_token"] == idaas_sim.id_tokens[-1]


def test_a_revoked_session_token_is_401_session_expired(auth, idaas_sim, redis, key_prefix):
    idaas_sim.id_token_ttl_s = 30
    auth.signed_in()
    for entry in idaas_sim.sessions.values():  # the IdP no longer knows it: PARAM.0023
        entry.valid = False
    resp = _check(auth)
    assert resp.status_code == 401 and resp.headers["X-BFF-Error"] == "BFF.SESSION_EXPIRED"
    assert not redis.exists(f"{key_prefix}:session:{auth.openid}")


def test_a_passed_check_is_logged_at_debug_and_a_refusal_at_info(auth, caplog):
    """A check runs once per call to the company's APIs: passes stay out of the INFO log."""
    auth.signed_in()
    caplog.set_level("INFO", logger="bff.request")
    assert _check(auth).status_code == 200
    assert _check(auth, Authorization="Bearer not-a-handle").status_code == 401
    lines = [r for r in caplog.records if r.name == "bff.request" and r.levelname == "INFO"]
    checks = [(r.route, r.status) for r in lines if r.route.startswith("/api/v1/auth")]
    assert checks == [("/api/v1/auth", 401)]


def test_a_check_survives_redis_forgetting_its_script(auth, redis):
    """The check runs its script by SHA (EVALSHA); a Redis that restarted, or was told SCRIPT
    FLUSH, has forgotten it, and the check loads it again rather than failing."""
    auth.signed_in()
    assert _check(auth).status_code == 200
    redis.script_flush()
    resp = _check(auth)
    assert resp.status_code == 200 and resp.headers["X-BFF-Openid"] == auth.openid
