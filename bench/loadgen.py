"""An open-loop, constant-rate HTTP load generator (uvloop), bounded in requests and time.

Run:  python -m bench.loadgen --port 8000 --path /api/v1/login --rate 200 --duration 10

Request ``i`` is due at ``start + i / rate`` whether or not earlier ones have been answered
(open loop: a slow server is not allowed to slow the load down, unlike wrk's closed loop).
Latency is measured from the time the request was *due*, so time spent waiting for a free
connection or for a late timer counts against the server (no coordinated omission); the time
from the actual write is reported too, as ``service``. Every request is a POST of ``--body``
with a fresh sequential ``X-WX-OPENID``: ``{openid-prefix}{worker}_{n}``, n = 0, 1, 2, ... over
the warm-up and the measured phase (the harness seeds a pending bind for each one before a bind
step; bench/wrk.lua names wrk's requests the same way). With ``--handles FILE`` every request
is instead a forward-auth check: a GET with ``Authorization: Bearer`` cycling through the file's
handles (bench/auth.py). Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any, cast

import uvloop

LOGIN_BODY = '{"code":"bench-wx-code"}'
TEMPLATE = (
    "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
    "Content-Length: {length}\r\nX-Gateway-Secret: {secret}\r\nX-WX-OPENID: {{openid}}\r\n"
    "X-operating-sys-version: iOS 17.4\r\nX-device-fingerprint: bench-fingerprint\r\n"
    "User-Agent: bench/1.0\r\n\r\n"
)
# --handles: a GET with no body and ``Authorization: Bearer`` cycling through the handles given
# (forward-auth checks, bench/auth.py); the openids are then the handles' business.
CHECK_TEMPLATE = (
    "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {{handle}}\r\n"
    "X-operating-sys-version: iOS 17.4\r\nX-device-fingerprint: bench-fingerprint\r\n"
    "User-Agent: bench/1.0\r\n\r\n"
)


@dataclass
class Tally:
    due_ms: list[float] = field(default_factory=list)  # from the time the request was due
    service_ms: list[float] = field(default_factory=list)  # from the actual write
    statuses: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


class Conn(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self, gen: Generator) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.due = 0.0
        self.sent = 0.0
        self.recording = False
        self.busy = False
        self.dead = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def send(self, request: bytes, due: float, recording: bool) -> None:
        assert self.transport is not None  # noqa: S101
        self.busy, self.due, self.recording = True, due, recording
        self.sent = time.perf_counter()
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0 or not self.busy:
            return
        head = bytes(self.buf[:end]).lower()
        length = -1
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name == b"content-length":
                length = int(value)
        if length < 0:
            self.fail("no_content_length")
            return
        if len(self.buf) < end + 4 + length:
            return
        status = head[9:12].decode()
        del self.buf[: end + 4 + length]
        self.busy = False
        self.gen.answered(self, status)

    def connection_lost(self, exc: Exception | None) -> None:
        busy, self.busy = self.busy, False
        self.gen.lost(self, "read" if busy else None)
        self.transport = None

    def fail(self, kind: str) -> None:
        self.busy = False
        self.gen.lost(self, kind)
        if self.transport is not None:
            self.transport.close()


class Generator:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.loop = asyncio.get_running_loop()
        self.body = args.body.encode()
        self.template = TEMPLATE.format(
            path=args.path, port=args.port, length=len(self.body), secret=args.gateway_secret
        )
        self.openid_head = f"{args.openid_prefix}{args.worker}_"
        self.handles: list[str] = []
        if args.handles:
            with open(args.handles) as handles:
                self.handles = [line.strip() for line in handles if line.strip()]
            self.body = b""
            self.template = CHECK_TEMPLATE.format(path=args.path, port=args.port)
        self.sequence = 0  # the next openid's n
        self.idle: list[Conn] = []
        self.open = 0
        self.in_flight: set[Conn] = set()
        self.tally = Tally()
        self.outstanding = 0
        self.warmup_ok = 0  # answered during the warm-up (the server did the work all the same)

    def request(self) -> bytes:
        if self.handles:
            handle = self.handles[self.sequence % len(self.handles)]
            self.sequence += 1
            return self.template.format(handle=handle).encode()
        openid = f"{self.openid_head}{self.sequence}"
        self.sequence += 1
        return self.template.format(openid=openid).encode() + self.body

    def fire(self, due: float, recording: bool) -> None:
        if recording:
            self.outstanding += 1
        if self.idle:
            self._send(self.idle.pop(), due, recording)
        elif self.open < self.args.max_connections:
            self.open += 1
            self.loop.create_task(self._connect_and_send(due, recording))
        elif recording:
            self.outstanding -= 1
            self.tally.error("no_free_connection")

    async def _connect_and_send(self, due: float, recording: bool) -> None:
        try:
            _, conn = await self.loop.create_connection(
                lambda: Conn(self), "127.0.0.1", self.args.port
            )
        except OSError:
            self.open -= 1
            if recording:
                self.outstanding -= 1
                self.tally.error("connect")
            return
        self._send(conn, due, recording)

    def _send(self, conn: Conn, due: float, recording: bool) -> None:
        self.in_flight.add(conn)
        conn.send(self.request(), due, recording)

    def answered(self, conn: Conn, status: str) -> None:
        self.in_flight.discard(conn)
        if conn.recording:
            now = time.perf_counter()
            self.outstanding -= 1
            self.tally.statuses[status] = self.tally.statuses.get(status, 0) + 1
            self.tally.due_ms.append((now - conn.due) * 1000)
            self.tally.service_ms.append((now - conn.sent) * 1000)
        elif status.startswith("2"):
            self.warmup_ok += 1
        self.idle.append(conn)

    def lost(self, conn: Conn, kind: str | None) -> None:
        """``conn`` is closed; ``kind`` names the error when a request was on it."""
        self.in_flight.discard(conn)
        if not conn.dead:
            conn.dead = True
            self.open -= 1
        if conn in self.idle:
            self.idle.remove(conn)
        if kind is not None and conn.recording:
            self.outstanding -= 1
            self.tally.error(kind)

    def expire(self, timeout_s: float) -> None:
        now = time.perf_counter()
        for conn in [c for c in self.in_flight if now - c.sent > timeout_s]:
            conn.fail("timeout")

    async def phase(self, rate: float, duration: float, recording: bool) -> None:
        """Fire ``rate * duration`` requests, each at its due time."""
        count = int(rate * duration)
        start = time.perf_counter() + 0.005
        i = 0
        while i < count:
            now = time.perf_counter()
            due = start + i / rate
            if due > now:
                await asyncio.sleep(due - now)
                continue
            while i < count and start + i / rate <= now:
                self.fire(start + i / rate, recording)
                i += 1
            self.expire(self.args.timeout)

    async def drain(self) -> None:
        deadline = time.perf_counter() + self.args.timeout
        while self.outstanding > 0 and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
            self.expire(self.args.timeout)
        self.tally.errors["unanswered"] = self.outstanding


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    out = {f"p{q}": round(percentile(ordered, q), 3) for q in (50, 90, 99)}
    out["max"] = round(ordered[-1], 3) if ordered else float("nan")
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    gen = Generator(args)
    if args.warmup > 0:
        await gen.phase(args.rate, args.warmup, recording=False)
    started = time.perf_counter()
    await gen.phase(args.rate, args.duration, recording=True)
    await gen.drain()
    elapsed = time.perf_counter() - started
    ok = sum(n for status, n in gen.tally.statuses.items() if status.startswith("2"))
    sent = int(args.rate * args.duration)
    return {
        "rate": args.rate,
        "duration_s": args.duration,
        "sent": sent,
        "ok": ok,
        "warmup_ok": gen.warmup_ok,
        "statuses": gen.tally.statuses,
        "errors": {k: v for k, v in gen.tally.errors.items() if v}
        | {f"http_{status}": n for status, n in gen.tally.statuses.items() if status[0] != "2"},
        "achieved_rps": round(ok / elapsed, 1) if elapsed > 0 else 0.0,
        "latency_ms": summary(gen.tally.due_ms),
        "service_ms": summary(gen.tally.service_ms),
        "connections": gen.open,
        "openids_used": gen.sequence,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/api/v1/login")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--duration", type=float, required=True, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=0.0, help="seconds not measured")
    parser.add_argument("--timeout", type=float, default=5.0, help="per request, seconds")
    parser.add_argument("--max-connections", type=int, default=1024)
    parser.add_argument("--gateway-secret", default="")
    parser.add_argument("--body", default=LOGIN_BODY, help="the JSON body of every request")
    parser.add_argument("--openid-prefix", default="o_b")
    parser.add_argument("--worker", type=int, default=0, help="the openids' worker number")
    parser.add_argument("--handles", help="a file of handles, one a line: GET checks, no body")
    args = parser.parse_args()
    if args.rate * (args.duration + args.warmup) > 1_000_000:
        sys.exit("loadgen: refusing more than 1,000,000 requests")
    result = uvloop.run(run(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
