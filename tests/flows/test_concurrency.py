"""No double-spend: concurrent binds for one openid never send the same state token twice."""

from __future__ import annotations

import threading

from tests.support.app import PASSWORD, AuthActions
from tests.support.gunicorn import answered_within

BIND = "/api/v2/sdk/social/username-password-bind"


def _concurrently(calls):
    results = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(i, call):
        barrier.wait()
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def test_two_concurrent_binds_spend_the_state_token_once(app, auth, idaas_sim, redis, key_prefix):
    headers = auth.pending_bind()
    state_token = idaas_sim.state_tokens[-1]
    idaas_sim.add_fault("latency", path=BIND, seconds=0.3)  # the first bind is slow
    body = {"user_name": "alice", "password": PASSWORD}

    def bind():
        return app.test_client().post("/api/v1/bind/username-password", json=body, headers=headers)

    first, second = _concurrently([bind, bind])
    outcomes = sorted(
        (r.status_code, r.json.get("status") or r.json.get("error_code")) for r in (first, second)
    )
    assert outcomes == [(200, "SUCCESS"), (409, "BFF.NO_PENDING_BIND")]
    sent = [r for r in idaas_sim.requests if r.path == BIND]
    assert [r.headers["X-state-token"] for r in sent] == [state_token]  # reached the IDaaS once
    assert redis.exists(f"{key_prefix}:session:{auth.openid}")


def test_loser_waits_then_retries_after_a_wrong_password(app, auth, idaas_sim):
    headers = auth.pending_bind()
    idaas_sim.add_fault("latency", path=BIND, seconds=0.3)

    def bind(password):
        body = {"user_name": "alice", "password": password}
        return lambda: app.test_client().post(
            "/api/v1/bind/username-password", json=body, headers=headers
        )

    results = _concurrently([bind("wrong"), bind(PASSWORD)])
    codes = sorted(r.status_code for r in results)
    # Serialised by the lock: whichever ran first, the state token was never sent twice at once.
    assert codes in ([200, 400], [200, 409])
    assert len([r for r in idaas_sim.requests if r.path == BIND]) in (1, 2)


def test_lock_wait_is_bounded(make_app, wechat_sim, idaas_sim, redis, key_prefix):
    app = make_app(IDAAS_CONNECT_TIMEOUT_S="0.1", IDAAS_READ_TIMEOUT_S="0.1")
    auth = AuthActions(app.test_client(), wechat_sim, idaas_sim)
    auth.pending_bind()
    redis.set(f"{key_prefix}:lock:{auth.openid}", "held-by-a-stuck-peer", px=60_000)
    try:
        resp = auth.bind()
    finally:
        redis.delete(f"{key_prefix}:lock:{auth.openid}")
    assert resp.status_code == 409 and resp.json["error_code"] == "BFF.REQUEST_IN_PROGRESS"
    assert auth.bind().status_code == 200


def test_logout_during_a_bind_never_leaves_a_session_behind(
    app, auth, idaas_sim, redis, key_prefix
):
    """A logout that arrives while a bind is at the IDaaS is refused (409, retry), never a 204
    with the bind's session written after it; the retried logout then ends the session."""
    headers = auth.pending_bind()
    idaas_sim.add_fault("latency", path=BIND, seconds=0.3)
    body = {"user_name": "alice", "password": PASSWORD}

    def bind():
        return app.test_client().post("/api/v1/bind/username-password", json=body, headers=headers)

    def logout():
        import time

        time.sleep(0.1)  # start while the bind is at the IDaaS
        return app.test_client().delete("/api/v1/session", headers=headers)

    bound, out = _concurrently([bind, logout])
    assert bound.status_code == 200
    assert out.status_code == 409 and out.json["error_code"] == "BFF.REQUEST_IN_PROGRESS"
    assert redis.exists(f"{key_prefix}:session:{auth.openid}")  # the bind went through
    assert app.test_client().delete("/api/v1/session", headers=headers).status_code == 204
    assert not redis.exists(f"{key_prefix}:session:{auth.openid}")


def test_audit_lines_carry_the_request_id(make_app, wechat_sim, idaas_sim, capsys):
    import json

    auth = AuthActions(make_app().test_client(), wechat_sim, idaas_sim)  # logs to this capsys
    auth.pending_bind()
    resp = auth.bind(password="wrong")
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    audit = [x for x in lines if x.get("logger") == "bff.audit"]
    assert audit and audit[-1]["request_id"] == resp.headers["X-Request-ID"]
    assert audit[-1]["openid_hash"] and auth.openid not in json.dumps(lines)


def _hold_lock(redis, key_prefix, openid, seconds=60):
    """Another request holds the openid's lock (what a slow IDaaS call looks like)."""
    redis.set(f"{key_prefix}:lock:{openid}", "someone-else", px=int(seconds * 1000))


def test_refresh_and_logout_do_not_wait_on_a_held_lock(app, auth, redis, key_prefix):
    """Many refreshes of one handle waiting on one user's lock would tie up every worker, so
    they answer 409 with Retry-After instead of waiting."""
    headers = auth.signed_in()
    _hold_lock(redis, key_prefix, auth.openid)
    for method, path in (("POST", "/api/v1/session/refresh"), ("DELETE", "/api/v1/session")):
        resp = answered_within(
            lambda m=method, p=path: app.test_client().open(p, method=m, headers=headers), 5
        )
        assert resp is not None, f"{method} {path} waited on the lock"
        assert resp.status_code == 409 and resp.json["error_code"] == "BFF.REQUEST_IN_PROGRESS"
        assert 1 <= int(resp.headers["Retry-After"]) <= 10


def test_login_and_bind_wait_about_a_second_at_most(app, auth, redis, key_prefix):
    headers = auth.pending_bind()
    _hold_lock(redis, key_prefix, auth.openid)
    body = {"user_name": "alice", "password": PASSWORD}
    for path, payload in (
        ("/api/v1/bind/username-password", body),
        ("/api/v1/login", {"code": auth.wx_code()}),
    ):
        resp = answered_within(
            lambda p=path, b=payload: app.test_client().post(p, json=b, headers=headers), 5
        )
        assert resp is not None, f"{path} waited on the lock"
        assert resp.status_code == 409 and resp.json["error_code"] == "BFF.REQUEST_IN_PROGRESS"
        assert "Retry-After" in resp.headers
