"""HTTP as no client library sends it (raw bytes over a socket), and the one error envelope."""

from __future__ import annotations

import socket
from typing import Any

ENVELOPE = {"error_code", "error_msg", "request_id"}


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
