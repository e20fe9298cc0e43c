"""CPU per call of each piece of a SUCCESS bind, bff's and the floor's, in one process.

Run by bench/run.py as ``python -m bench.micro --idaas-port P --redis-port R`` against the
stub (no latency) and the harness's Redis; prints one JSON object. Each piece runs alone,
single-threaded, after a warm-up, and is timed with ``time.process_time`` (CPU, not wall).
The pieces reach into bff's objects, which are being rewritten: a piece whose object is gone
is reported as ``n/a`` with the reason, and the others are still measured.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import random
import time
from collections.abc import Callable
from typing import Any

from bench.procs import CLIENT_ID, GATEWAY_SECRET, KEY_PREFIX

ROUNDS = 400


def cpu_us(fn: Callable[[], object], rounds: int = ROUNDS) -> float:
    for _ in range(rounds // 10):
        fn()
    started = time.process_time()
    for _ in range(rounds):
        fn()
    return round((time.process_time() - started) / rounds * 1e6, 1)


def _openid() -> str:
    return f"wm{random.getrandbits(64):016x}"


def measure(idaas_port: int, redis_port: int) -> dict[str, float | str]:
    os.environ.update(
        BFF_ENV="production",
        IDAAS_BASE_URL=f"http://127.0.0.1:{idaas_port}",
        IDAAS_CLIENT_ID=CLIENT_ID,
        REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        REDIS_KEY_PREFIX=KEY_PREFIX,
        IDENTITY_SOURCE="gateway",
        GATEWAY_SECRET=GATEWAY_SECRET,
        RATE_LIMIT_LOGIN="1000000000/minute",
        RATE_LIMIT_BIND="1000000000/minute",
    )
    from bff import create_app

    app = create_app()
    devnull = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)
    for handler in logging.getLogger("bff").handlers:
        if hasattr(handler, "setStream"):
            handler.setStream(devnull)
    svc = app.extensions["bff"]
    out: dict[str, float | str] = {}
    for name, build in PIECES.items():
        try:
            out[name] = cpu_us(build(svc, app, (idaas_port, redis_port)))
        except Exception as exc:  # bff's internals moved: say so, measure the rest
            out[name] = f"n/a ({type(exc).__name__}: {str(exc)[:80]})"
    return out


BIND_BODY = b'{"user_name":"bench-user","password":"bench-password"}'
PENDING = json.dumps({"state_token": "bench-state-token", "status": "SOCIAL_BIND"})


def _bind_environ(openid: str) -> dict[str, Any]:
    """A gateway-mode SUCCESS bind as WSGI sees it (no gunicorn, no test client around it)."""
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v1/bind/username-password",
        "SERVER_NAME": "bench",
        "SERVER_PORT": "80",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(BIND_BODY)),
        "HTTP_X_GATEWAY_SECRET": GATEWAY_SECRET,
        "HTTP_X_WX_OPENID": openid,
        "HTTP_X_OPERATING_SYS_VERSION": "iOS 17.4",
        "HTTP_X_DEVICE_FINGERPRINT": "bench-fingerprint",
        "HTTP_USER_AGENT": "bench/1.0",
        "wsgi.input": io.BytesIO(BIND_BODY),
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def _wsgi_bind(wsgi: Any, ports: tuple[int, int]) -> Callable[[], object]:
    """One SUCCESS bind through ``wsgi``, each for a fresh openid with a pending bind."""
    import redis

    store = redis.Redis(host="127.0.0.1", port=ports[1])

    def once() -> None:
        openid = _openid()
        store.set(f"{KEY_PREFIX}:pending:{openid}", PENDING, ex=60)  # not the app's CPU
        status: list[str] = []
        b"".join(wsgi(_bind_environ(openid), lambda s, h, e=None: status.append(s)))
        assert status[0].startswith("200"), status  # noqa: S101

    return once


def _bff_bind(svc: Any, app: Any, ports: tuple[int, int]) -> Callable[[], object]:
    return _wsgi_bind(app, ports)


def _floor_bind(svc: Any, app: Any, ports: tuple[int, int]) -> Callable[[], object]:
    from bench import floor

    return _wsgi_bind(floor.app, ports)


def _seed_cost(svc: Any, app: Any, ports: tuple[int, int]) -> Callable[[], object]:
    """What the two rows above include that is not the app's: the pending bind written."""
    import redis

    store = redis.Redis(host="127.0.0.1", port=ports[1])
    return lambda: store.set(f"{KEY_PREFIX}:pending:{_openid()}", PENDING, ex=60)


def _device() -> Any:
    from bff.models import Device

    return Device("iOS 17.4", "bench-fingerprint", "bench/1.0", None, "127.0.0.1")


def _idaas_bind(svc: Any, app: Any, ports: tuple[int, int]) -> Callable[[], object]:
    from bff.credentials import UsernamePassword

    device, credential = _device(), UsernamePassword("bench-user", "bench-password")
    return lambda: svc.idaas.bind(credential, "bench-state-token", device)


def _requests_post(svc: Any, app: Any, ports: tuple[int, int]) -> Callable[[], object]:
    import requests

    session = requests.Session()
    url = f"http://127.0.0.1:{ports[0]}/api/v2/sdk/social/username-password-bind"
    headers = {"X-client-id": CLIENT_ID, "Content-Type": "application/json"}
    body = json.dumps({"user_name": "bench-user", "password": "bench-password"})
    return lambda: json.loads(session.post(url, data=body, headers=headers, timeout=(2, 8)).content)


def _verify(svc: Any, app: Any, ports: tuple[int, int]) -> Callable[[], object]:
    token = svc.idaas.login("bench", _device()).id_token
    return lambda: svc.verifier.verify(token)


def _two_round_trips(svc: Any, app: Any, ports: tuple[int, int]) -> Callable[[], object]:
    from bff.limits import Scope
    from bff.models import CachedSession, PendingBind
    from bff.ratelimit import Route

    session = CachedSession("bench-session-token", 1, None, "bench-user")

    def once() -> None:
        openid = _openid()
        who = {Scope.IP: "127.0.0.1", Scope.OPENID: openid, Scope.ACCOUNT: "a" * 32}
        hits = svc.limiter.hits(Route.BIND, who, fail_open=False)
        with svc.store.lock(openid, hits, wait_s=1.0, read=(PendingBind,)) as user:
            user.get(PendingBind)
            user.save_session(session, 60)
            user.commit()

    return once


def _floor_redis(svc: Any, app: Any, ports: tuple[int, int]) -> Callable[[], object]:
    import redis

    store = redis.Redis(host="127.0.0.1", port=ports[1])

    def once() -> None:
        openid = _openid()
        store.get(f"{KEY_PREFIX}:pending:{openid}")
        with store.pipeline(transaction=False) as pipe:
            pipe.set(f"{KEY_PREFIX}:session:{openid}", "{}", ex=60)
            pipe.delete(f"{KEY_PREFIX}:pending:{openid}")
            pipe.execute()

    return once


def _request_load(svc: Any, app: Any, ports: tuple[int, int]) -> Callable[[], object]:
    from bff.web.schemas import BindUsernamePasswordRequest

    schema, body = BindUsernamePasswordRequest(), {"user_name": "u", "password": "p"}
    return lambda: schema.load(body)


def _answer_load(svc: Any, app: Any, ports: tuple[int, int]) -> Callable[[], object]:
    from bff.clients.idaas import FlowAnswer

    upstream = {"status": "SUCCESS", "session_token": "t", "expire": 5, "id_token": "x"}
    schema = FlowAnswer()
    return lambda: schema.load(upstream)


def _log_line(svc: Any, app: Any, ports: tuple[int, int]) -> Callable[[], object]:
    request_log = logging.getLogger("bff.request")
    fields: dict[str, Any] = {"request_id": "r" * 32, "method": "POST", "status": 200}
    fields.update(route="/api/v1/bind/username-password", duration_ms=1.0, outcome="SUCCESS")
    return lambda: request_log.info("request", extra=fields)


def _metrics(svc: Any, app: Any, ports: tuple[int, int]) -> Callable[[], object]:
    from bff import observability as o

    def once() -> None:
        o.REQUESTS.labels("/api/v1/bind/username-password", "200").inc()
        o.REQUEST_DURATION.labels("/api/v1/bind/username-password").observe(0.06)
        o.record_upstream("idaas", "ok", 0.05)
        o.LOGIN_OUTCOMES.labels("SUCCESS").inc()

    return once


def _redis_get(svc: Any, app: Any, ports: tuple[int, int]) -> Callable[[], object]:
    import redis

    client = redis.Redis(host="127.0.0.1", port=ports[1])
    return lambda: client.get("bench-none")


# Name → a builder of the call to time, given bff's services, its app and (IDaaS, Redis) ports.
PIECES: dict[str, Callable[[Any, Any, tuple[int, int]], Callable[[], object]]] = {
    "bff: a whole SUCCESS bind (WSGI call, no gunicorn)": _bff_bind,
    "floor: a whole SUCCESS bind (WSGI call, no gunicorn)": _floor_bind,
    "(in both rows: writing the pending bind, 1 round trip)": _seed_cost,
    "bff: IdaasClient.bind (deadline, breaker, requests, answer schema)": _idaas_bind,
    "floor: requests Session.post + json.loads": _requests_post,
    "bff: IdTokenVerifier.verify (RS256)": _verify,
    "bff: limits + lock + pending, then session + release (2 round trips)": _two_round_trips,
    "floor: GET pending, then SET session + DEL pending (2 round trips)": _floor_redis,
    "bff: request schema load (marshmallow)": _request_load,
    "bff: IDaaS answer schema load (marshmallow)": _answer_load,
    "bff: one JSON log line": _log_line,
    "bff: a request's metrics (4 updates, multiprocess files off)": _metrics,
    "redis-py GET (1 round trip, for scale)": _redis_get,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idaas-port", type=int, required=True)
    parser.add_argument("--redis-port", type=int, required=True)
    args = parser.parse_args()
    print(json.dumps(measure(args.idaas_port, args.redis_port)))


if __name__ == "__main__":
    main()
