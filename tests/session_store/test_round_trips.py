"""Redis round trips and commands per SUCCESS login and bind, gateway mode, counted by a real
Redis server of the test's own (``INFO stats`` and ``INFO commandstats``, which also counts the
commands a script runs).

Two round trips: one before the IDaaS call (every limit counter, the per-openid lock, the
pending bind), one after (the session, the pending bind's removal, the lock's release). At most
eight commands: an ``INCR`` per counter (and a ``SET ... NX`` giving a counter its expiry the
first time this worker meets it in its window), ``SET NX`` for the lock, ``GET`` of the pending
bind, ``SET`` of the session, one ``DEL`` of the pending bind and the lock. In wechat mode the
handle lookup comes first and is a third round trip.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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


def _used(proc: RedisProcess, call: Callable[[], Any]) -> tuple[int, dict[str, int]]:
    """The round trips (reads the server processed; a pipeline is one) and the commands run
    during ``call``, less the probe's own; the probe's connection is made before."""
    probe = redis.Redis(port=proc.port, decode_responses=True)
    try:
        before = probe.info("commandstats"), int(probe.info("stats")["total_reads_processed"])
        call()
        reads = int(probe.info("stats")["total_reads_processed"]) - before[1] - 1
        after = probe.info("commandstats")
    finally:
        probe.close()
    names = {k.removeprefix("cmdstat_"): v["calls"] for k, v in after.items()}
    old = {k.removeprefix("cmdstat_"): v["calls"] for k, v in before[0].items()}
    commands = {k: n - old.get(k, 0) for k, n in names.items()}
    commands["info"] -= 3  # the probe's own: the first snapshot's, and both INFO stats
    return reads, {k: n for k, n in commands.items() if n}


def _caller(app, wechat, idaas) -> GatewayCaller:
    return GatewayCaller(app.test_client(), wechat, idaas)


def _warm(app, wechat, idaas):
    """Every pool has its connections, and this worker has met the per-IP and per-account
    counters of this window (the first use of a connection costs extra reads)."""
    for _ in range(2):
        caller = _caller(app, wechat, idaas)
        caller.pending_bind()
        assert caller.bind().status_code == 200


def _first_bind(make_app, counted, wechat_sim, idaas_sim, **env: str) -> tuple[int, dict]:
    """The round trips and commands of a SUCCESS bind of a new openid, in a warm worker."""
    app = make_app(REDIS_URL=counted.url, IDENTITY_SOURCE="gateway", **env)
    _warm(app, wechat_sim, idaas_sim)
    caller = _caller(app, wechat_sim, idaas_sim)
    caller.pending_bind()
    resp = []
    trips, commands = _used(counted, lambda: resp.append(caller.bind(password=PASSWORD)))
    assert resp[0].status_code == 200 and resp[0].json["status"] == "SUCCESS"
    return trips, commands


def test_a_first_success_bind_is_two_round_trips_and_eleven_commands(
    make_app, counted, wechat_sim, idaas_sim
):
    trips, commands = _first_bind(make_app, counted, wechat_sim, idaas_sim)
    assert trips == 2, trips
    # The openid's bind counter is new in this window: it is created with its expiry first. The
    # session is listed under its IDaaS subject (ZADD, and EXPIREAT NX then GT: the index lives
    # as long as its longest session), in the same pipeline.
    assert commands == {"incr": 3, "set": 3, "get": 1, "del": 1, "zadd": 1, "expireat": 2}


def test_a_success_login_is_two_round_trips_and_eight_commands(
    make_app, counted, wechat_sim, idaas_sim
):
    app = make_app(REDIS_URL=counted.url, IDENTITY_SOURCE="gateway")
    _warm(app, wechat_sim, idaas_sim)
    caller = _caller(app, wechat_sim, idaas_sim)
    caller.pending_bind()
    assert caller.bind().status_code == 200  # bound: the next login is a SUCCESS
    resp = []
    trips, commands = _used(counted, lambda: resp.append(caller.login()))
    assert resp[0].status_code == 200 and resp[0].json["status"] == "SUCCESS"
    assert trips == 2, trips
    assert commands == {"incr": 2, "set": 2, "del": 1, "zadd": 1, "expireat": 2}, commands


def test_with_the_audit_stream_a_bind_is_still_two_round_trips(
    make_app, counted, wechat_sim, idaas_sim
):
    """The bind's audit record rides its commit: one XADD more, no round trip more."""
    env = {"AUDIT_STREAM_MAXLEN": "1000"}
    trips, commands = _first_bind(make_app, counted, wechat_sim, idaas_sim, **env)
    assert trips == 2, trips
    assert commands.pop("xadd") == 1
    assert commands == {"incr": 3, "set": 3, "get": 1, "del": 1, "zadd": 1, "expireat": 2}
