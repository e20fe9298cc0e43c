"""CPU per call of each piece of a login, in one process, with bff's own objects.

Run by bench/run.py as ``python -m bench.micro --idaas-port P --redis-port R`` against the
stub (no latency) and the harness's Redis; prints one JSON object. Each piece runs alone,
single-threaded, after a warm-up, and is timed with ``time.process_time`` (CPU, not wall).
The side-by-side rows (``requests`` vs ``urllib3``, a schema built vs reused) measure what a
proposed change would save.
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


def measure(idaas_port: int, redis_port: int) -> dict[str, float]:
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
    import urllib3

    from bff import create_app
    from bff.clients.idaas import LOGIN_PATH
    from bff.clients.idaas import FlowAnswer as IdaasAnswer
    from bff.models import CachedSession, Device
    from bff.web.schemas import LoginRequest

    app = create_app()
    devnull = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)
    for handler in logging.getLogger("bff").handlers:
        handler.setStream(devnull)  # type: ignore[attr-defined]
    svc = app.extensions["bff"]
    device = Device("iOS 17.4", "bench-fingerprint", "bench/1.0", None, "127.0.0.1")
    answer = svc.idaas.login("bench", device)
    id_token: str = answer["id_token"]
    headers = {**device.headers(), "X-client-id": CLIENT_ID, "Content-Type": "application/json"}
    url = f"http://127.0.0.1:{idaas_port}{LOGIN_PATH}"
    session = svc.idaas._http._http
    pool = urllib3.HTTPConnectionPool("127.0.0.1", idaas_port, maxsize=4)
    body = json.dumps({"code": "bench"}).encode()

    def lock() -> None:
        with svc.store.openid_lock(_openid(), 15.0, 12.0):
            pass

    limits = svc.settings.rate_limit_login
    upstream = {"status": "SUCCESS", "session_token": "t", "expire": 5, "id_token": id_token}
    schema = IdaasAnswer()
    request_log = logging.getLogger("bff.request")
    log_fields: dict[str, Any] = {"request_id": "r" * 32, "method": "POST", "status": 200}
    log_fields.update(route="/api/v1/login", duration_ms=1.0, outcome="SUCCESS")
    client = app.test_client()
    login_headers = {"X-Gateway-Secret": GATEWAY_SECRET, "X-operating-sys-version": "iOS 17.4"}
    login_headers["X-device-fingerprint"] = "bench-fingerprint"
    return {
        "whole login (Flask test client, no gunicorn)": cpu_us(
            lambda: client.post(
                "/api/v1/login",
                json={"code": "bench"},
                headers={**login_headers, "X-WX-OPENID": _openid()},
            )
        ),
        "GET /healthz (Flask test client)": cpu_us(lambda: client.get("/healthz")),
        "IdaasClient.login (breaker + requests + schema)": cpu_us(
            lambda: svc.idaas.login("bench", device)
        ),
        "requests Session.post, same call": cpu_us(
            lambda: session.post(url, json={"code": "bench"}, headers=headers, timeout=(2, 8))
        ),
        "urllib3 pool.request, same call (proposal)": cpu_us(
            lambda: json.loads(pool.request("POST", LOGIN_PATH, body=body, headers=headers).data)
        ),
        "IdTokenVerifier.verify (PyJWT RS256)": cpu_us(lambda: svc.verifier.verify(id_token)),
        "Limiter.check ip + openid (2 round trips)": cpu_us(
            lambda: svc.limiter.check(
                "login", [("ip", "127.0.0.1"), ("openid", _openid())], limits, fail_open=True
            )
        ),
        "openid_lock acquire + release (2 round trips)": cpu_us(lock),
        "SessionStore.save_session (1 round trip)": cpu_us(
            lambda: svc.store.save_session(_openid(), CachedSession("t", 1, None, "s"), 60)
        ),
        "redis-py GET (1 round trip)": cpu_us(lambda: svc.store._redis.get("bench-none")),
        "IdaasAnswer() built per call": cpu_us(IdaasAnswer),
        "IdaasAnswer.load, schema reused": cpu_us(lambda: schema.load(upstream)),
        "LoginRequest().load": cpu_us(lambda: LoginRequest().load({"code": "bench"})),
        "one JSON request log line": cpu_us(lambda: request_log.info("request", extra=log_fields)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idaas-port", type=int, required=True)
    parser.add_argument("--redis-port", type=int, required=True)
    args = parser.parse_args()
    print(json.dumps(measure(args.idaas_port, args.redis_port)))


if __name__ == "__main__":
    main()
