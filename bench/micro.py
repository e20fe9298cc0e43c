"""CPU per call of each piece of a login, in one process, with bff's own objects.

Run by bench/run.py as ``python -m bench.micro --idaas-port P --redis-port R`` against the
stub (no latency) and the harness's Redis; prints one JSON object. Each piece runs alone,
single-threaded, after a warm-up, and is timed with ``time.process_time`` (CPU, not wall).
The pieces reach into bff's objects, which are being rewritten: a piece whose object is gone
is reported as ``n/a`` with the reason, and the others are still measured.
"""

from __future__ import annotations

import argparse
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
    )
    from bff import create_app

    app = create_app()
    devnull = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)
    for handler in logging.getLogger("bff").handlers:
        if hasattr(handler, "setStream"):
            handler.setStream(devnull)
    client = app.test_client()
    login_headers = {"X-Gateway-Secret": GATEWAY_SECRET, "X-operating-sys-version": "iOS 17.4"}
    login_headers["X-device-fingerprint"] = "bench-fingerprint"
    svc = app.extensions["bff"]
    whole: dict[str, Callable[[Any, tuple[int, int]], Callable[[], object]]] = {
        "whole login (Flask test client, no gunicorn)": lambda *_: (
            lambda: client.post(
                "/api/v1/login",
                json={"code": "bench"},
                headers={**login_headers, "X-WX-OPENID": _openid()},
            )
        ),
        "GET /healthz (Flask test client)": lambda *_: lambda: client.get("/healthz"),
    }
    out: dict[str, float | str] = {}
    for name, build in {**whole, **PIECES}.items():
        try:
            out[name] = cpu_us(build(svc, (idaas_port, redis_port)))
        except Exception as exc:  # bff's internals moved: say so, measure the rest
            out[name] = f"n/a ({type(exc).__name__}: {str(exc)[:80]})"
    return out


def _device() -> Any:
    from bff.clients.idaas import Device

    return Device("iOS 17.4", "bench-fingerprint", "bench/1.0", None, "127.0.0.1")


def _idaas_login(svc: Any, ports: tuple[int, int]) -> Callable[[], object]:
    from bff.clients.idaas import LOGIN_PATH

    device = _device()
    return lambda: svc.idaas.login(LOGIN_PATH, "bench", device)


def _requests_post(svc: Any, ports: tuple[int, int]) -> Callable[[], object]:
    import requests

    session = requests.Session()
    url = f"http://127.0.0.1:{ports[0]}/api/v2/sdk/login/wechat-miniprogram"
    headers = {"X-client-id": CLIENT_ID, "Content-Type": "application/json"}
    return lambda: session.post(url, json={"code": "bench"}, headers=headers, timeout=(2, 8))


def _verify(svc: Any, ports: tuple[int, int]) -> Callable[[], object]:
    from bff.clients.idaas import LOGIN_PATH

    token = svc.idaas.login(LOGIN_PATH, "bench", _device())["id_token"]
    return lambda: svc.verifier.verify(token)


def _limiter(svc: Any, ports: tuple[int, int]) -> Callable[[], object]:
    limits = svc.settings.rate_limit_login
    return lambda: svc.limiter.check(
        "login", [("ip", "127.0.0.1"), ("openid", _openid())], limits, fail_open=True
    )


def _lock(svc: Any, ports: tuple[int, int]) -> Callable[[], object]:
    def once() -> None:
        with svc.store.openid_lock(_openid(), 15.0, 12.0):
            pass

    return once


def _save_session(svc: Any, ports: tuple[int, int]) -> Callable[[], object]:
    from bff.session_store import CachedSession

    return lambda: svc.store.save_session(_openid(), CachedSession("t", 1, None, "s"), 60)


def _redis_get(svc: Any, ports: tuple[int, int]) -> Callable[[], object]:
    import redis

    client = redis.Redis(host="127.0.0.1", port=ports[1])
    return lambda: client.get("bench-none")


def _answer_load(svc: Any, ports: tuple[int, int]) -> Callable[[], object]:
    from bff.schemas import IdaasAnswer

    upstream = {"status": "SUCCESS", "session_token": "t", "expire": 5, "id_token": "x"}
    schema = IdaasAnswer()
    return lambda: schema.load(upstream)


def _log_line(svc: Any, ports: tuple[int, int]) -> Callable[[], object]:
    request_log = logging.getLogger("bff.request")
    fields: dict[str, Any] = {"request_id": "r" * 32, "method": "POST", "status": 200}
    fields.update(route="/api/v1/login", duration_ms=1.0, outcome="SUCCESS")
    return lambda: request_log.info("request", extra=fields)


# Name → a builder of the call to time, given bff's services and (IDaaS port, Redis port).
PIECES: dict[str, Callable[[Any, tuple[int, int]], Callable[[], object]]] = {
    "IdaasClient.login (breaker + HTTP client + schema)": _idaas_login,
    "requests Session.post to the stub (the floor's call)": _requests_post,
    "IdTokenVerifier.verify (RS256)": _verify,
    "Limiter.check ip + openid": _limiter,
    "openid_lock acquire + release": _lock,
    "SessionStore.save_session": _save_session,
    "redis-py GET (1 round trip, for scale)": _redis_get,
    "IdaasAnswer.load (marshmallow)": _answer_load,
    "one JSON request log line": _log_line,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idaas-port", type=int, required=True)
    parser.add_argument("--redis-port", type=int, required=True)
    args = parser.parse_args()
    print(json.dumps(measure(args.idaas_port, args.redis_port)))


if __name__ == "__main__":
    main()
