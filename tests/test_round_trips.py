"""Redis round trips per SUCCESS login and bind, gateway mode, counted by a real Redis server.

Two: one before the IDaaS call (every limit counter, the per-openid lock, the pending bind),
one after (the session, the pending bind's removal, the lock's release). In wechat mode the
handle lookup comes first and is the third.
"""

from __future__ import annotations

import pytest
import redis

from tests.support.app import PASSWORD, GatewayCaller
from tests.support.processes import RedisProcess


@pytest.fixture
def counted():
    """A redis-server of this test's own: nothing else talks to it."""
    proc = RedisProcess().start()
    yield proc
    proc.close()


def _round_trips(proc: RedisProcess, call) -> int:
    """The reads the server processed during ``call`` (a pipeline is one read), less the
    probe's own second INFO; the probe's connection is made before."""
    probe = redis.Redis(port=proc.port)
    try:
        before = int(probe.info("stats")["total_reads_processed"])
        call()
        return int(probe.info("stats")["total_reads_processed"]) - before - 1
    finally:
        probe.close()


def _warm(app, wechat, idaas):
    """Every pool has its connections (the first use of a connection costs extra reads)."""
    for _ in range(2):
        caller = GatewayCaller(app.test_client(), wechat, idaas)
        caller.pending_bind()
        assert caller.bind().status_code == 200


def test_a_success_bind_is_two_round_trips(make_app, counted, wechat_sim, idaas_sim):
    app = make_app(REDIS_URL=counted.url, IDENTITY_SOURCE="gateway")
    _warm(app, wechat_sim, idaas_sim)
    caller = GatewayCaller(app.test_client(), wechat_sim, idaas_sim)
    caller.pending_bind()
    resp = []
    trips = _round_trips(counted, lambda: resp.append(caller.bind(password=PASSWORD)))
    assert resp[0].status_code == 200 and resp[0].json["status"] == "SUCCESS"
    assert trips <= 2, trips


def test_a_success_login_is_two_round_trips(make_app, counted, wechat_sim, idaas_sim):
    app = make_app(REDIS_URL=counted.url, IDENTITY_SOURCE="gateway")
    _warm(app, wechat_sim, idaas_sim)
    caller = GatewayCaller(app.test_client(), wechat_sim, idaas_sim)
    caller.pending_bind()
    assert caller.bind().status_code == 200  # bound: the next login is a SUCCESS
    resp = []
    trips = _round_trips(counted, lambda: resp.append(caller.login()))
    assert resp[0].status_code == 200 and resp[0].json["status"] == "SUCCESS"
    assert trips <= 2, trips
