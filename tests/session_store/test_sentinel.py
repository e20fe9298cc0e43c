"""REDIS_SENTINELS: bff on the master that three real sentinels name, through a failover.

A master, two replicas and three sentinels (quorum 2, down-after-milliseconds 1000) on spare
ports. Sign-ins (wechat/session, login, bind through the simulators) run in a loop from a few
threads while the master is SIGKILLed. Every answer is a success or a documented error (503
``BFF.SESSION_STORE_UNAVAILABLE``, 409 ``BFF.REQUEST_IN_PROGRESS``); every SUCCESS has its
session on the master the sentinels name after the failover (the writes WAIT for a replica);
the service answers SUCCESS again within ``RECOVERY_BOUND_S`` of the kill.

``make test-sentinel`` runs the failover test longer: more threads, several failovers in a row
(``BFF_SENTINEL_THREADS``, ``BFF_SENTINEL_FAILOVERS``).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

import pytest
import redis

from bff.services import build_services
from bff.settings import REDIS_MAX_CONNECTIONS, load_settings
from tests.support.app import AuthActions
from tests.support.processes import RedisProcess, RedisSentinelProcesses
from tests.test_services import crowd

THREADS = int(os.environ.get("BFF_SENTINEL_THREADS", "4"))
FAILOVERS = int(os.environ.get("BFF_SENTINEL_FAILOVERS", "1"))
RECOVERY_BOUND_S = 30.0  # a correctness bound (it comes back), not a performance figure
DOCUMENTED = {(503, "BFF.SESSION_STORE_UNAVAILABLE"), (409, "BFF.REQUEST_IN_PROGRESS")}
SUCCESSES = {"wechat/session": (201, None), "login": (200, "SOCIAL_BIND"), "bind": (200, "SUCCESS")}


@dataclass(frozen=True)
class Answer:
    step: str
    status: int
    code: str | None  # the error code, or the sign-in status of a 200
    openid: str
    started: float
    ended: float

    @property
    def ok(self) -> bool:
        return SUCCESSES[self.step] == (self.status, self.code)


def sign_in(auth: AuthActions) -> list[Answer]:
    """One mini program's first sign-in; it stops at the first answer that is no success."""
    answers = []
    for step in SUCCESSES:
        started = time.monotonic()
        if step == "wechat/session":
            resp = auth.client.post("/api/v1/wechat/session", json={"wx_code": auth.wx_code()})
            auth.handle = (resp.json or {}).get("handle")
        else:
            resp = auth.login() if step == "login" else auth.bind()
        body = resp.json or {}
        code = body.get("status") if resp.status_code == 200 else body.get("error_code")
        answers.append(Answer(step, resp.status_code, code, auth.openid, started, time.monotonic()))
        if not answers[-1].ok:
            break
    return answers


class Load:
    """``THREADS`` threads signing new users in, each with its own test client, until stopped."""

    def __init__(self, app, wechat_sim, idaas_sim) -> None:
        self.answers: list[Answer] = []
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(app.test_client(), wechat_sim, idaas_sim))
            for _ in range(THREADS)
        ]

    def _run(self, client, wechat_sim, idaas_sim) -> None:
        while not self.stop.is_set():
            answers = sign_in(AuthActions(client, wechat_sim, idaas_sim))
            with self._lock:
                self.answers.extend(answers)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def first_success_after(self, moment: float) -> float | None:
        """When the first bind started after ``moment`` answered SUCCESS (None: none yet)."""
        with self._lock:
            ends = [a.ended for a in self.answers if a.ok and a.step == "bind"]
            starts = [a.started for a in self.answers if a.ok and a.step == "bind"]
        return min((e for e, s in zip(ends, starts, strict=True) if s > moment), default=None)


@pytest.fixture(scope="module")
def sentinel_set():
    """A set the module's last test may take replicas from; the failover test has its own."""
    nodes = RedisSentinelProcesses(replicas=2).start()
    yield nodes
    nodes.close()


@pytest.fixture
def fresh_set():
    nodes = RedisSentinelProcesses(replicas=2).start()
    yield nodes
    nodes.close()


def sentinel_app(make_app, nodes: RedisSentinelProcesses, **overrides: str):
    """The app in Sentinel mode: REDIS_URL's host is not asked (the sentinels name the master)."""
    return make_app(
        REDIS_SENTINELS=nodes.addresses, REDIS_URL="redis://not-asked.invalid:1/0", **overrides
    )


def node_on(nodes: RedisSentinelProcesses, port: int) -> RedisProcess:
    return next(node for node in nodes.data_nodes if node.port == port)


def test_sign_in_on_the_master_the_sentinels_name(
    sentinel_set, make_app, wechat_sim, idaas_sim, key_prefix
):
    client = sentinel_app(make_app, sentinel_set).test_client()
    assert client.get("/readyz").json["checks"] == {"redis": "ok"}
    auth = AuthActions(client, wechat_sim, idaas_sim)
    auth.signed_in()
    # the handle's script (EVALSHA) runs on the master client: refresh authenticates with it
    assert client.post("/api/v1/session/refresh", headers=auth.headers()).status_code == 200
    session_key = f"{key_prefix}:session:{auth.openid}"
    for node in sentinel_set.data_nodes:  # on the master, and (WAIT) already on a replica
        with redis.Redis(port=node.port, decode_responses=True) as reader:
            if reader.info("replication")["role"] == "master":
                assert reader.exists(session_key)
    assert client.delete("/api/v1/session", headers=auth.headers()).status_code == 204


def test_the_master_client_has_the_bounded_waiting_pool(sentinel_set, env):
    """As standalone (tests/test_services.py): more callers than connections wait for one."""
    settings = load_settings({**env, "REDIS_SENTINELS": sentinel_set.addresses})
    admin = redis.Redis(port=sentinel_set.master_port() or 0)
    failures, clients = crowd(build_services(settings), admin)
    assert failures == []
    assert 0 < clients <= REDIS_MAX_CONNECTIONS


def test_sentinels_unreachable_fail_closed_and_starts_anyway(make_app, wechat_sim, idaas_sim):
    app = make_app(REDIS_SENTINELS="127.0.0.1:1,127.0.0.1:2")  # nothing listens
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    resp = client.get("/readyz")
    assert resp.status_code == 503 and resp.json["checks"] == {"redis": "unavailable"}
    resp = client.post("/api/v1/wechat/session", json={"wx_code": "any"})
    assert resp.status_code == 503 and resp.json["error_code"] == "BFF.SESSION_STORE_UNAVAILABLE"


def fail_over(nodes: RedisSentinelProcesses, load: Load) -> tuple[float, RedisProcess]:
    """SIGKILL the master under ``load``: the seconds until a sign-in started after the kill
    answered SUCCESS, and the node killed."""
    old = node_on(nodes, nodes.master_port() or 0)
    time.sleep(1.5)  # sign-ins in flight
    killed_at = time.monotonic()
    old.stop()  # SIGKILL
    while (back := load.first_success_after(killed_at)) is None:
        assert time.monotonic() - killed_at < RECOVERY_BOUND_S, "no SUCCESS after the kill"
        time.sleep(0.05)
    recovered_s = back - killed_at
    assert nodes.master_port() not in (None, old.port)
    return recovered_s, old


def test_a_failover_under_load_loses_no_success(
    fresh_set, make_app, wechat_sim, idaas_sim, key_prefix, capsys
):
    sentinel_set = fresh_set
    app = sentinel_app(make_app, sentinel_set)
    with Load(app, wechat_sim, idaas_sim) as load:
        windows: list[float] = []
        while len(windows) < FAILOVERS:
            recovered_s, killed = fail_over(sentinel_set, load)
            windows.append(recovered_s)
            if len(windows) < FAILOVERS:  # back as a replica of the new master (10-20 s)
                killed.start()
                sentinel_set.wait_in_sync()
        time.sleep(0.5)
    with capsys.disabled():  # the window measured, shown by make test and make test-sentinel
        back = ", ".join(f"{w:.1f}" for w in windows)
        print(f"\nsentinel failover ({THREADS} threads): SUCCESS again {back} s after the kill")
    strays = [a for a in load.answers if not a.ok and (a.status, a.code) not in DOCUMENTED]
    assert not strays, strays[:5]
    signed_in = {a.openid for a in load.answers if a.ok and a.step == "bind"}
    assert signed_in and any(not a.ok for a in load.answers)  # the kill was seen
    with redis.Redis(port=sentinel_set.master_port() or 0, decode_responses=True) as master:
        with master.pipeline(transaction=False) as pipe:
            for openid in sorted(signed_in):
                pipe.exists(f"{key_prefix}:session:{openid}")
            kept = pipe.execute()
    lost = [openid for openid, found in zip(sorted(signed_in), kept, strict=True) if not found]
    assert not lost, f"{len(lost)} of {len(signed_in)} SUCCESS sessions missing on the new master"
    assert app.test_client().get("/readyz").json["checks"] == {"redis": "ok"}


def test_without_a_replica_writes_answer_503_not_success(
    sentinel_set, make_app, wechat_sim, idaas_sim
):
    """REDIS_SENTINEL_WAIT_REPLICAS=1 and no replica left: no write is answered as kept;
    readiness reports the master, which is up (reads, forward-auth checks, still work)."""
    for replica in sentinel_set.replicas:
        replica.stop()
    client = sentinel_app(make_app, sentinel_set).test_client()
    assert client.get("/readyz").json["checks"] == {"redis": "ok"}
    auth = AuthActions(client, wechat_sim, idaas_sim)
    resp = client.post("/api/v1/wechat/session", json={"wx_code": auth.wx_code()})
    assert resp.status_code == 503 and resp.json["error_code"] == "BFF.SESSION_STORE_UNAVAILABLE"
    # REDIS_SENTINEL_WAIT_REPLICAS=0: acknowledged by the master alone
    client = sentinel_app(make_app, sentinel_set, REDIS_SENTINEL_WAIT_REPLICAS="0").test_client()
    AuthActions(client, wechat_sim, idaas_sim).signed_in()
