"""The IDaaS client: faults map to the right 5xx, nothing is stored, no POST is sent twice;
the circuit breaker; only the allow-listed headers reach the IDaaS."""

from __future__ import annotations

import json

import pytest

from tests.support.app import AuthActions, GatewayCaller, last_call
from tests.support.gunicorn import answered_within

LOGIN = "/api/v2/sdk/login/wechat-miniprogram"
BIND = "/api/v2/sdk/social/username-password-bind"

FAULTS = [
    ("status500", 502, "BFF.UPSTREAM_BAD_RESPONSE"),
    ("bad_gateway", 502, "BFF.UPSTREAM_BAD_RESPONSE"),
    ("garbage", 502, "BFF.UPSTREAM_BAD_RESPONSE"),
    ("malformed", 502, "BFF.UPSTREAM_BAD_RESPONSE"),
    ("reset", 503, "BFF.UPSTREAM_UNAVAILABLE"),
]


def _count(sim, path):
    return sum(1 for r in sim.requests if r.path == path)


@pytest.mark.parametrize(("kind", "status", "code"), FAULTS)
def test_bind_fault_stores_nothing(auth, idaas_sim, redis, key_prefix, kind, status, code):
    auth.pending_bind()
    idaas_sim.add_fault(kind, path=BIND)
    resp = auth.bind()
    assert resp.status_code == status and resp.json["error_code"] == code
    assert not redis.exists(f"{key_prefix}:session:{auth.openid}")
    assert redis.exists(f"{key_prefix}:pending:{auth.openid}")
    assert _count(idaas_sim, BIND) == 1  # sent once, never re-sent
    assert "http" not in resp.json["error_msg"]


@pytest.mark.parametrize(("kind", "status", "code"), FAULTS)
def test_login_fault(auth, idaas_sim, redis, key_prefix, kind, status, code):
    auth.open_session()
    idaas_sim.add_fault(kind, path=LOGIN)
    resp = auth.login()
    assert resp.status_code == status and resp.json["error_code"] == code
    assert not redis.exists(f"{key_prefix}:pending:{auth.openid}")
    assert _count(idaas_sim, LOGIN) == 1


def test_read_timeout_is_504_and_not_resent(fast_client, wechat_sim, idaas_sim, redis, key_prefix):
    auth = AuthActions(fast_client, wechat_sim, idaas_sim)
    auth.pending_bind()
    idaas_sim.add_fault("latency", path=BIND, seconds=1.0)
    resp = auth.bind()
    assert resp.status_code == 504 and resp.json["error_code"] == "BFF.UPSTREAM_TIMEOUT"
    assert not redis.exists(f"{key_prefix}:session:{auth.openid}")
    assert _count(idaas_sim, BIND) == 1


def test_connection_refused_is_503(make_app, auth, redis, key_prefix):
    app = make_app(IDAAS_BASE_URL="http://127.0.0.1:9")  # discard port: nothing listens
    client = app.test_client()
    auth.client = client
    auth.open_session()
    resp = auth.login()
    assert resp.status_code == 503 and resp.json["error_code"] == "BFF.UPSTREAM_UNAVAILABLE"


def test_idaas_4xx_without_envelope_is_502(auth, idaas_sim):
    auth.pending_bind()
    idaas_sim.add_fault("malformed", path=BIND)
    assert auth.bind().json["error_code"] == "BFF.UPSTREAM_BAD_RESPONSE"


def test_success_without_session_token_is_502_nothing_stored(auth, idaas_sim, redis, key_prefix):
    auth.signed_in()
    redis.delete(f"{key_prefix}:session:{auth.openid}")
    idaas_sim.add_fault("malformed", path=LOGIN)
    resp = auth.login()
    assert resp.status_code == 502
    assert not redis.exists(f"{key_prefix}:session:{auth.openid}")


def test_circuit_opens_after_consecutive_failures(make_app, wechat_sim, idaas_sim):
    app = make_app(CIRCUIT_FAILURES="3", CIRCUIT_RESET_S="30")
    auth = AuthActions(app.test_client(), wechat_sim, idaas_sim)
    auth.open_session()
    idaas_sim.add_fault("status500", path=LOGIN, count=None)
    codes = [auth.login().json["error_code"] for _ in range(3)]
    assert codes == ["BFF.UPSTREAM_BAD_RESPONSE"] * 3
    sent = _count(idaas_sim, LOGIN)
    resp = auth.login()
    assert resp.status_code == 503 and resp.json["error_code"] == "BFF.UPSTREAM_UNAVAILABLE"
    assert _count(idaas_sim, LOGIN) == sent  # failed fast: nothing sent


def test_circuit_half_opens_after_the_reset_window(make_app, wechat_sim, idaas_sim):
    import time

    app = make_app(CIRCUIT_FAILURES="2", CIRCUIT_RESET_S="0.5")
    auth = AuthActions(app.test_client(), wechat_sim, idaas_sim)
    auth.open_session()
    idaas_sim.add_fault("reset", path=LOGIN, count=2)
    assert [auth.login().status_code for _ in range(3)] == [503, 503, 503]
    time.sleep(0.6)
    resp = auth.login()
    assert resp.status_code == 200 and resp.json["status"] == "SOCIAL_BIND"


def test_business_4xx_does_not_open_the_circuit(make_app, wechat_sim, idaas_sim):
    app = make_app(CIRCUIT_FAILURES="2")
    auth = AuthActions(app.test_client(), wechat_sim, idaas_sim)
    auth.pending_bind()
    for _ in range(3):
        assert auth.bind(password="wrong").status_code == 400
    assert auth.bind().status_code == 200


def test_upstream_received_exactly_the_allow_list(auth, idaas_sim):
    headers = auth.headers(**{"X-Forwarded-For": "6.6.6.6, 10.0.0.1", "X-Custom": "leak"})
    auth.client.post(
        "/api/v1/login",
        json={"code": auth.wx_code()},
        headers=headers,
        environ_base={"REMOTE_ADDR": "10.9.9.9"},
    )
    sent = last_call(idaas_sim, LOGIN)
    forwarded = {k.lower() for k in sent.headers.keys()}
    assert forwarded <= {
        "x-operating-sys-version",
        "x-device-fingerprint",
        "x-agent",
        "x-l",
        "x-device-ip",
        "x-client-id",
        "x-request-id",  # the request's own id, so the IDaaS's logs join bff's
        "content-type",
        "content-length",
        "host",
        "user-agent",
        "accept-encoding",
        "accept",
        "connection",
    }
    assert sent.headers["X-device-ip"] == "10.0.0.1"  # one trusted proxy: the right-most entry
    assert json.loads(sent.body) == {"code": sent.json["code"]}


def test_a_dripping_answer_meets_one_deadline_and_is_504(
    make_app, wechat_sim, idaas_sim, redis, key_prefix
):
    """An IDaaS that drips one byte inside every read timeout must not hold a bind past the
    lock's lease (a second bind would then send the same state token): one deadline a call."""
    app = make_app(IDAAS_CONNECT_TIMEOUT_S="0.5", IDAAS_READ_TIMEOUT_S="1")  # deadline 1.5 s
    auth = AuthActions(app.test_client(), wechat_sim, idaas_sim)
    auth.pending_bind()
    idaas_sim.add_fault("drip", path=BIND, seconds=0.2)  # every byte well inside the 1 s read
    resp = answered_within(auth.bind, 15)
    assert resp is not None, "the bind outlived its deadline"
    assert resp.status_code == 504 and resp.json["error_code"] == "BFF.UPSTREAM_TIMEOUT"
    assert not redis.exists(f"{key_prefix}:session:{auth.openid}")
    assert _count(idaas_sim, BIND) == 1  # not re-sent


@pytest.mark.parametrize("path", [LOGIN, BIND])
def test_an_oversized_answer_is_502_and_nothing_is_stored(
    make_app, wechat_sim, idaas_sim, redis, key_prefix, path
):
    """A huge answer must not take a worker's memory: answers are read up to
    UPSTREAM_MAX_BODY_BYTES, Content-Length or not."""
    app = make_app(UPSTREAM_MAX_BODY_BYTES="65536")
    auth = AuthActions(app.test_client(), wechat_sim, idaas_sim)
    auth.pending_bind() if path == BIND else auth.open_session()
    redis.delete(f"{key_prefix}:session:{auth.openid}")
    idaas_sim.add_fault("oversize", path=path)  # a valid SUCCESS, padded to 2 MiB
    resp = auth.bind() if path == BIND else auth.login()
    assert resp.status_code == 502 and resp.json["error_code"] == "BFF.UPSTREAM_BAD_RESPONSE"
    assert not redis.exists(f"{key_prefix}:session:{auth.openid}")


def test_an_answer_within_the_cap_is_read_whole(make_app, wechat_sim, idaas_sim):
    app = make_app(UPSTREAM_MAX_BODY_BYTES=str(4 * 1024 * 1024))
    auth = AuthActions(app.test_client(), wechat_sim, idaas_sim)
    auth.pending_bind()
    idaas_sim.add_fault("oversize", path=BIND)  # 2 MiB of padding is under 4 MiB
    resp = auth.bind()
    assert resp.status_code == 200 and resp.json["status"] == "SUCCESS"


def test_a_half_open_circuit_lets_exactly_one_trial_call_through(make_app, wechat_sim, idaas_sim):
    """After the reset window one trial call probes the IDaaS; the others answer 503 at once,
    so a still-broken IDaaS is not hit by every request in flight."""
    import threading
    import time

    app = make_app(CIRCUIT_FAILURES="2", CIRCUIT_RESET_S="0.5", IDENTITY_SOURCE="gateway")
    idaas_sim.add_fault("reset", path=LOGIN, count=2)
    callers = [GatewayCaller(app.test_client(), wechat_sim, idaas_sim) for _ in range(6)]
    assert [callers[0].login().status_code for _ in range(2)] == [503, 503]  # now open
    time.sleep(0.6)  # the reset window passed: half-open
    idaas_sim.add_fault("latency", path=LOGIN, seconds=0.5)  # the trial call takes a while
    sent = _count(idaas_sim, LOGIN)
    results = [None] * len(callers)
    barrier = threading.Barrier(len(callers))

    def run(i):
        barrier.wait()
        results[i] = callers[i].login()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(callers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert _count(idaas_sim, LOGIN) == sent + 1  # exactly one trial reached the IDaaS
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200] + [503] * (len(callers) - 1)
    assert callers[1].login().status_code == 200  # the trial succeeded: closed again
