"""The two load drivers: our open-loop generator (fixed rates) and wrk (maximum throughput),
and the two scenarios they drive: a SUCCESS login and a SUCCESS username-password bind."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.procs import GATEWAY_SECRET, ROOT, tool

LUA = Path(__file__).with_name("wrk.lua")
OPENID_PREFIX = "o_b"  # X-WX-OPENID = f"{OPENID_PREFIX}{worker}_{n}": loadgen is worker 0
WRK_THREADS = 2
# wrk is bounded in time, not in requests: for a bind, each wrk thread gets pending binds for
# this many requests per second (both threads together) over the step. No system here comes
# near it with a real upstream latency (the stub alone does, but it needs no pending bind).
WRK_SEED_RPS = 4000


@dataclass(frozen=True)
class Scenario:
    """A SUCCESS login or bind: bff's (and the floor's) URL, the IDaaS path it calls."""

    name: str
    path: str  # bff and the floor
    idaas_path: str  # the stub and nginx get this path, with the same headers and body
    body: str
    pending: bool  # every openid needs a pending bind in Redis (seeded by the harness)


SCENARIOS = {
    "login": Scenario(
        "login",
        "/api/v1/login",
        "/api/v2/sdk/login/wechat-miniprogram",
        '{"code":"bench-wx-code"}',
        pending=False,
    ),
    "bind": Scenario(
        "bind",
        "/api/v1/bind/username-password",
        "/api/v2/sdk/social/username-password-bind",
        '{"user_name":"bench-user","password":"bench-password"}',
        pending=True,
    ),
}


def openid_range(workers: tuple[int, ...], count: int) -> Iterator[str]:
    """The openids a load uses: ``count`` per worker, as bench/loadgen.py and wrk.lua name them."""
    for worker in workers:
        for n in range(count):
            yield f"{OPENID_PREFIX}{worker}_{n}"


def open_loop_openids(rate: float, duration: float, warmup: float) -> int:
    """How many openids bench/loadgen.py uses at most (its two phases fire int(rate × s) each)."""
    return int(rate * warmup) + int(rate * duration)


def wrk_threads(connections: int) -> int:
    return min(WRK_THREADS, connections)


def closed_loop_openids(connections: int, duration: float) -> tuple[tuple[int, ...], int]:
    """wrk's thread numbers (1, 2) and how many openids each may use in ``duration``."""
    threads = wrk_threads(connections)
    seconds = max(1, round(duration))
    return tuple(range(1, threads + 1)), math.ceil(seconds * WRK_SEED_RPS / threads) + connections


def _json_line(out: str, what: str) -> dict[str, Any]:
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            parsed: dict[str, Any] = json.loads(line)
            return parsed
    raise RuntimeError(f"{what} printed no result:\n{out[-2000:]}")


def open_loop(
    port: int,
    path: str,
    body: str,
    rate: float,
    duration: float,
    warmup: float,
    handles: Path | None = None,
) -> dict[str, Any]:
    """``rate`` requests per second for ``duration`` seconds (after ``warmup`` unmeasured);
    with ``handles`` (a file, one a line), forward-auth GETs instead of POSTs of ``body``."""
    argv = [sys.executable, "-m", "bench.loadgen", "--port", str(port), "--path", path]
    argv += ["--rate", str(rate), "--duration", str(duration), "--warmup", str(warmup)]
    argv += ["--gateway-secret", GATEWAY_SECRET, "--body", body]
    argv += ["--openid-prefix", OPENID_PREFIX, "--worker", "0"]
    if handles is not None:
        argv += ["--handles", str(handles)]
    limit = duration + warmup + 30
    done = subprocess.run(  # noqa: S603
        argv, capture_output=True, text=True, cwd=ROOT, timeout=limit, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed ({done.returncode}): {done.stderr[-2000:]}")
    return _json_line(done.stdout, "loadgen")


def closed_loop(
    port: int,
    path: str,
    body: str,
    connections: int,
    duration: float,
    script: Path = LUA,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """wrk with ``connections`` keep-alive connections as fast as the server answers, running
    ``script`` (bench/wrk.lua; bench/wrk_auth.lua for checks) with ``env`` added to its own."""
    argv = [tool("wrk"), "-t", str(wrk_threads(connections)), "-c", str(connections)]
    argv += ["-d", f"{max(1, round(duration))}s"]
    argv += ["--timeout", "5s", "-s", str(script), f"http://127.0.0.1:{port}"]
    env = {
        **os.environ,
        "BENCH_PATH": path,
        "BENCH_BODY": body,
        "BENCH_GATEWAY_SECRET": GATEWAY_SECRET,
        "BENCH_OPENID_PREFIX": OPENID_PREFIX,
        **(env or {}),
    }
    done = subprocess.run(  # noqa: S603
        argv, capture_output=True, text=True, env=env, timeout=duration + 30, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr[-2000:]}")
    raw = _json_line(done.stdout, "wrk")
    errors = {k: raw[k] for k in ("connect", "read", "write", "status", "timeout") if raw[k]}
    seconds = raw["duration_us"] / 1e6
    ok = raw["requests"] - raw["status"]
    return {
        "connections": connections,
        "duration_s": round(seconds, 2),
        "requests": raw["requests"],
        "ok": ok,
        "errors": errors,
        "rps": round(ok / seconds, 1) if seconds else 0.0,
        "latency_ms": {q: round(raw[f"{q}_us"] / 1000, 3) for q in ("p50", "p90", "p99", "max")},
    }


def micro(idaas_port: int, redis_port: int) -> dict[str, Any]:
    """bench/micro.py in its own process: CPU µs per call of each piece of a login.

    It reaches into bff's objects, which change: a failure is reported, not raised."""
    argv = [sys.executable, "-m", "bench.micro", "--idaas-port", str(idaas_port)]
    argv += ["--redis-port", str(redis_port)]
    done = subprocess.run(  # noqa: S603
        argv, capture_output=True, text=True, cwd=ROOT, timeout=300, check=False
    )
    if done.returncode != 0:
        return {"error": f"bench.micro exited {done.returncode}: {done.stderr[-600:]}"}
    return _json_line(done.stdout, "bench.micro")
