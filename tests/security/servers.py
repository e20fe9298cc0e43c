"""Helpers of the security suite: a gunicorn-served bff, raw HTTP over a socket, the envelope."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from tests.conftest import CLIENT_ID
from tests.test_gunicorn import Gunicorn

ENVELOPE = {"error_code", "error_msg", "request_id"}


def gunicorn_env(idaas: Any, wechat: Any, redis_url: str, prefix: str, **extra: str) -> dict:
    return {
        "BFF_ENV": "production",
        "IDAAS_BASE_URL": idaas.base_url,
        "IDAAS_CLIENT_ID": CLIENT_ID,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
        "WECHAT_APPID": "wx-sim-appid",
        "WECHAT_SECRET": "wx-sim-secret",
        "WECHAT_API_BASE": wechat.base_url,
        "LOG_LEVEL": "DEBUG",
        "RATE_LIMIT_LOGIN": "100000/minute",
        "RATE_LIMIT_BIND": "100000/minute",
        "RATE_LIMIT_CODES": "100000/minute",
        **extra,
    }


def start_gunicorn(log_dir: Path, env: dict[str, str]) -> Gunicorn:
    return Gunicorn(env, log_dir / "server.log").start()


def raw_request(port: int, head: list[bytes], body: bytes = b"", timeout: float = 10) -> bytes:
    """Send bytes no HTTP client would (CR/LF inside a value, obs-fold); return the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"\r\n".join(head) + b"\r\n\r\n" + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def assert_envelope(resp: Any, status: int, code: str | None = None) -> dict:
    """The one error shape, with the request_id it echoes as X-Request-ID."""
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert ENVELOPE <= set(body) <= ENVELOPE | {"errors"}, body
    assert body["request_id"] == resp.headers["X-Request-ID"] and body["error_msg"]
    if code is not None:
        assert body["error_code"] == code, body
    return body
