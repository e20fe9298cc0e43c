"""Several bff instances, one store: three gunicorns (2 workers each, wechat identity mode) on
one Redis Cluster (three masters, a replica each), behind a real nginx balancing them with the
shipped config/nginx/forward-auth.conf, and the traffic a few mini programs send through it.

Used by tests/gateway/test_instances_faults.py (short), bench/faults.py (``make faults``, long)
and bench/soak.py (``make soak``). Every process is started here and stopped by its pid.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import requests

from tests.support.app import DEVICE, PASSWORD
from tests.support.gunicorn import Gunicorn, gunicorn_env
from tests.support.http import ENVELOPE
from tests.support.nginx import EchoUpstream, Nginx
from tests.support.processes import RedisClusterProcesses

BIND = "/api/v2/sdk/social/username-password-bind"
# What a client may see through the gateway, faults or not: 2xx, or one of these in the envelope.
DOCUMENTED_ERRORS = frozenset({401, 403, 409, 429, 502, 503, 504})
CLIENT_TIMEOUT_S = 20.0
NGINX_UNREACHABLE = "no instance answered: try again"  # the error_msg of nginx's own 503


class ClusterStack:
    def __init__(self, tmp: Path, idaas: Any, wechat: Any, prefix: str, **env: str) -> None:
        self.tmp, self.idaas, self.wechat, self.prefix = tmp, idaas, wechat, prefix
        self.cluster = RedisClusterProcesses(replicas=1)
        self.extra_env = env
        self.instances: list[Gunicorn] = []
        self.upstream: EchoUpstream | None = None
        self.nginx: Nginx | None = None

    @property
    def base(self) -> str:
        assert self.nginx is not None
        return self.nginx.base

    def start(self, instances: int = 3) -> ClusterStack:
        try:
            self.cluster.start()
            self.instances = [self._gunicorn(i) for i in range(instances)]
            started = [threading.Thread(target=g.start) for g in self.instances]
            for thread in started:  # booting one after another takes three times as long
                thread.start()
            for thread in started:
                thread.join(timeout=90)
            for g in self.instances:
                assert g.proc is not None and g.proc.poll() is None, g.log_path.read_text()
            self.upstream = EchoUpstream()
            servers = [f"127.0.0.1:{g.port}" for g in self.instances]
            self.nginx = Nginx(servers, f"127.0.0.1:{self.upstream.port}", workers=1).start()
        except BaseException:
            self.close()
            raise
        return self

    def _gunicorn(self, i: int) -> Gunicorn:
        home = self.tmp / f"bff{i}"
        (home / "metrics").mkdir(parents=True, exist_ok=True)
        env = gunicorn_env(
            self.idaas,
            self.wechat,
            self.cluster.url,
            self.prefix,
            REDIS_CLUSTER="true",
            RATE_LIMIT_SESSION="100000/minute",
            LOG_LEVEL="INFO",
            HOME=str(home),
            IDAAS_READ_TIMEOUT_S="5",
            **self.extra_env,
        )
        return Gunicorn(env, home / "server.log")

    def kill_instance(self, i: int) -> list[int]:
        """SIGKILL instance ``i``: its workers and its master, nothing drained."""
        g = self.instances[i]
        assert g.proc is not None
        pids = [*g.worker_pids(), g.proc.pid]
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        g.proc.wait(timeout=10)
        return pids

    def kill_master(self) -> int:
        """SIGKILL one Redis master (that has a replica); its port."""
        node = self.cluster.master_nodes()[0]
        node.stop()
        return node.port

    def live_instances(self) -> list[Gunicorn]:
        return [g for g in self.instances if g.proc is not None and g.proc.poll() is None]

    def reader(self) -> redis.RedisCluster:
        live = self.cluster.live()[0]
        return redis.RedisCluster(host="127.0.0.1", port=live.port, decode_responses=True)

    def close(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        if self.upstream is not None:
            self.upstream.close()
        stopping = [threading.Thread(target=g.stop) for g in self.instances]
        for thread in stopping:  # each drains first (GUNICORN_DRAIN_S): all at once
            thread.start()
        for thread in stopping:
            thread.join(timeout=60)
        self.cluster.close()


@dataclass
class Answer:
    kind: str  # wx, login, bind, refresh, check
    status: int  # 0: no answer (connection failed, or no answer within the client timeout)
    body: Any
    at: float  # time.monotonic() when it arrived
    openid: str
    error: str | None = None


class Traffic:
    """Mini programs signing in, refreshing and calling the company's API through the gateway,
    from ``threads`` threads until stopped: each thread signs a new user in (wechat/session,
    login, bind), then makes ``checks`` forward-auth checks and one refresh for a user it signed
    in; ``pace``: called before each sign-in (a steady rate), or None (as fast as answered)."""

    def __init__(self, stack: ClusterStack, threads: int = 6, checks: int = 4) -> None:
        self.stack, self.threads, self.checks = stack, threads, checks
        self.answers: list[Answer] = []
        self.successes: list[str] = []  # openids whose bind answered SUCCESS
        self.stop = threading.Event()
        self.pace: Callable[[], None] | None = None
        self._workers: list[threading.Thread] = []

    def start(self) -> Traffic:
        for n in range(self.threads):
            thread = threading.Thread(target=self._run, args=(n,), daemon=True)
            thread.start()
            self._workers.append(thread)
        return self

    def finish(self) -> None:
        self.stop.set()
        for thread in self._workers:
            thread.join(timeout=CLIENT_TIMEOUT_S * 3 + 5)

    def _run(self, n: int) -> None:
        http = requests.Session()
        handles: list[str] = []
        i = 0
        while not self.stop.is_set():
            if self.pace is not None:
                self.pace()
            openid = f"o_{self.stack.prefix}_{n}_{i}"
            i += 1
            handle = self.sign_in(http, openid)
            if handle is not None:
                handles.append(handle)
                handles[:] = handles[-20:]
            if handles:
                self._use(http, handles[i % len(handles)], openid)

    def _use(self, http: requests.Session, handle: str, openid: str) -> None:
        auth = {"Authorization": f"Bearer {handle}"}
        for _ in range(self.checks):
            self._send(http, "check", "GET", "/company/orders", None, auth, openid)
        self._send(http, "refresh", "POST", "/api/v1/session/refresh", {}, auth, openid)

    def sign_in(self, http: requests.Session, openid: str) -> str | None:
        """A first sign-in; its handle when bind said SUCCESS."""
        body = {"wx_code": self.stack.wechat.issue_code(openid)}
        wx = self._send(http, "wx", "POST", "/api/v1/wechat/session", body, DEVICE, openid)
        if wx.status != 201:
            return None
        headers = {"Authorization": f"Bearer {wx.body['handle']}", **DEVICE}
        code = {"code": self.stack.wechat.issue_code(openid)}
        login = self._send(http, "login", "POST", "/api/v1/login", code, headers, openid)
        if login.status != 200 or login.body.get("status") != "SOCIAL_BIND":
            return None
        body = {"user_name": "alice", "password": PASSWORD}
        path = "/api/v1/bind/username-password"
        bind = self._send(http, "bind", "POST", path, body, headers, openid)
        if bind.status == 200 and bind.body.get("status") == "SUCCESS":
            self.successes.append(openid)
            return str(wx.body["handle"])
        return None

    def _send(
        self,
        http: requests.Session,
        kind: str,
        method: str,
        path: str,
        body: Any,
        headers: dict,
        openid: str,
    ) -> Answer:
        try:
            resp = http.request(
                method,
                self.stack.base + path,
                json=body,
                headers={**DEVICE, **headers},
                timeout=CLIENT_TIMEOUT_S,
            )
        except requests.RequestException as exc:
            answer = Answer(kind, 0, None, time.monotonic(), openid, type(exc).__name__)
        else:
            try:
                parsed = resp.json()
            except ValueError:
                parsed = resp.text[:200]
            answer = Answer(kind, resp.status_code, parsed, time.monotonic(), openid)
        self.answers.append(answer)
        return answer


def undocumented(answers: list[Answer]) -> list[str]:
    """Answers that are neither 2xx nor a documented error status in the one envelope."""
    found = []
    for a in answers:
        if 200 <= a.status < 300:
            continue
        if a.status not in DOCUMENTED_ERRORS:
            found.append(f"{a.kind} {a.status} {a.error or a.body!r}")
        elif not isinstance(a.body, dict) or not ENVELOPE <= set(a.body):
            found.append(f"{a.kind} {a.status}: not the envelope: {a.body!r}")
    return found


def lost_sessions(stack: ClusterStack, openids: list[str]) -> list[str]:
    """The openids whose bind answered SUCCESS but whose session is not in the cluster."""
    with stack.reader() as reader:
        return [o for o in openids if not reader.exists(f"{stack.prefix}:session:{o}")]


def state_tokens_sent_twice(idaas: Any) -> dict[str, int]:
    """state_tokens that reached the IDaaS's bind more than once (across every instance)."""
    with idaas.lock:
        sent = Counter(r.headers.get("X-state-token") for r in idaas.requests if r.path == BIND)
        used = {t for t, s in idaas.states.items() if s.used}
    assert used <= set(sent), "the simulator spent a token no bind sent"
    return {token: n for token, n in sent.items() if n > 1}


def outcomes(answers: list[Answer]) -> dict[str, int]:
    """How many of each (kind, status, code or status word) there were."""
    out: Counter[str] = Counter()
    for a in answers:
        body = a.body if isinstance(a.body, dict) else {}
        word = body.get("error_code") or body.get("status") or a.error or ""
        word += " (nginx)" if body.get("error_msg") == NGINX_UNREACHABLE else ""
        out[f"{a.kind} {a.status} {word}".strip()] += 1
    return dict(sorted(out.items()))


def throughput(answers: list[Answer], start: float, end: float) -> float:
    """2xx answers per second between ``start`` and ``end`` (monotonic)."""
    good = sum(1 for a in answers if start <= a.at < end and 200 <= a.status < 300)
    return good / max(end - start, 1e-9)
