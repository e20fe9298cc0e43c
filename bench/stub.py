"""A fast IDaaS stub: the SUCCESS login and bind answers and the JWKS, after a fixed latency.

Run:  python -m bench.stub --listen 50:18050 --listen 0:18000
Each ``LATENCY_MS:PORT`` pair is one listening socket on 127.0.0.1 whose answers wait
``LATENCY_MS``. Every port has its own id_token, pre-signed once at start (RS256, ``iss`` =
``http://127.0.0.1:PORT/api/v1/oauth2``, ``aud`` = ``--client-id``, ``exp`` in ten years), so
answering costs a dictionary lookup and a write. A raw asyncio protocol on uvloop keeps the
stub far from being the bottleneck (see the *stub* rows of a run's report). The login path and
the username-password bind path get the same SUCCESS answer (a session_token, ``expire`` and the
id_token); the stub checks neither the code nor the state token.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from typing import Any, cast

import jwt
import uvloop
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

LOGIN_PATH = b"/api/v2/sdk/login/wechat-miniprogram"
BIND_PATH = b"/api/v2/sdk/social/username-password-bind"
JWKS_PATH = b"/api/v1/oauth2/keys"
KID = "bench-key"
SESSION_EXPIRE_S = 432000
TEN_YEARS_S = 10 * 365 * 24 * 3600
MAX_HEADER_BYTES = 65536


def _response(status: str, body: dict[str, Any]) -> bytes:
    payload = json.dumps(body, separators=(",", ":")).encode()
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


def build_answers(base_url: str, client_id: str, key: rsa.RSAPrivateKey) -> dict[bytes, bytes]:
    """Path → the whole pre-rendered HTTP response."""
    now = int(time.time())
    claims = {
        "iss": f"{base_url}/api/v1/oauth2",
        "aud": client_id,
        "sub": "bench-user",
        "iat": now,
        "nbf": now - 60,
        "exp": now + TEN_YEARS_S,
    }
    id_token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": KID})
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.pop("key_ops", None)  # the vendor publishes `use`, not `key_ops`
    jwk.update(kid=KID, use="sig", alg="RS256")
    login = {
        "status": "SUCCESS",
        "session_token": "bench-session-token",
        "expire": SESSION_EXPIRE_S,
        "id_token": id_token,
    }
    return {
        LOGIN_PATH: _response("200 OK", login),
        BIND_PATH: _response("200 OK", login),
        JWKS_PATH: _response("200 OK", {"keys": [jwk]}),
    }


NOT_FOUND = _response("404 Not Found", {"error_code": "NOT_FOUND", "error_msg": "no such path"})


class StubProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive, one request at a time per connection (no client here pipelines)."""

    def __init__(self, answers: dict[bytes, bytes], delay_s: float) -> None:
        self._answers = answers
        self._delay_s = delay_s
        self._buf = bytearray()
        self._busy = False
        self._close_after = False
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if not self._busy:
            self._next()

    def _next(self) -> None:
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > MAX_HEADER_BYTES and self._transport is not None:
                self._transport.close()
            return
        head = bytes(self._buf[:end]).lower()
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and b"close" in value:
                self._close_after = True
        if len(self._buf) < end + 4 + length:
            return  # the body is still on its way
        path = head.split(b" ", 2)[1].split(b"?", 1)[0]
        del self._buf[: end + 4 + length]
        answer = self._answers.get(path, NOT_FOUND)
        self._busy = True
        if self._delay_s > 0:
            asyncio.get_running_loop().call_later(self._delay_s, self._send, answer)
        else:
            self._send(answer)

    def _send(self, answer: bytes) -> None:
        self._busy = False
        if self._transport is None:
            return
        self._transport.write(answer)
        if self._close_after:
            self._transport.close()
            return
        if self._buf:
            self._next()


async def serve(listen: list[tuple[int, int]], client_id: str) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    loop = asyncio.get_running_loop()
    servers = []
    for latency_ms, port in listen:
        answers = build_answers(f"http://127.0.0.1:{port}", client_id, key)
        delay_s = latency_ms / 1000.0

        def factory(answers: dict[bytes, bytes] = answers, delay: float = delay_s) -> StubProtocol:
            return StubProtocol(answers, delay)

        servers.append(await loop.create_server(factory, "127.0.0.1", port, backlog=4096))
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("stub ready", flush=True)
    await stop.wait()
    for server in servers:
        server.close()


def _pair(text: str) -> tuple[int, int]:
    latency, _, port = text.partition(":")
    return int(latency), int(port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=_pair, action="append", required=True)
    parser.add_argument("--client-id", default="bench-client")
    args = parser.parse_args()
    uvloop.run(serve(args.listen, args.client_id))


if __name__ == "__main__":
    main()
