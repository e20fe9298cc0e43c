"""The two load drivers: our open-loop generator (fixed rates) and wrk (maximum throughput)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.procs import GATEWAY_SECRET, ROOT, tool

BFF_PATH = "/api/v1/login"
IDAAS_PATH = "/api/v2/sdk/login/wechat-miniprogram"
LUA = Path(__file__).with_name("login.lua")


def _json_line(out: str, what: str) -> dict[str, Any]:
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            parsed: dict[str, Any] = json.loads(line)
            return parsed
    raise RuntimeError(f"{what} printed no result:\n{out[-2000:]}")


def open_loop(port: int, path: str, rate: float, duration: float, warmup: float) -> dict[str, Any]:
    """``rate`` requests per second for ``duration`` seconds (after ``warmup`` unmeasured)."""
    argv = [sys.executable, "-m", "bench.loadgen", "--port", str(port), "--path", path]
    argv += ["--rate", str(rate), "--duration", str(duration), "--warmup", str(warmup)]
    argv += ["--gateway-secret", GATEWAY_SECRET]
    limit = duration + warmup + 30
    done = subprocess.run(  # noqa: S603
        argv, capture_output=True, text=True, cwd=ROOT, timeout=limit, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed ({done.returncode}): {done.stderr[-2000:]}")
    return _json_line(done.stdout, "loadgen")


def closed_loop(port: int, path: str, connections: int, duration: float) -> dict[str, Any]:
    """wrk with ``connections`` keep-alive connections as fast as the server answers."""
    threads = min(2, connections)
    argv = [
        tool("wrk"),
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{max(1, round(duration))}s",
    ]
    argv += ["--timeout", "5s", "-s", str(LUA), f"http://127.0.0.1:{port}"]
    env = {**os.environ, "BENCH_PATH": path, "BENCH_GATEWAY_SECRET": GATEWAY_SECRET}
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
    """bench/micro.py in its own process: CPU µs per call of each piece of a login."""
    argv = [sys.executable, "-m", "bench.micro", "--idaas-port", str(idaas_port)]
    argv += ["--redis-port", str(redis_port)]
    done = subprocess.run(  # noqa: S603
        argv, capture_output=True, text=True, cwd=ROOT, timeout=300, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.micro failed ({done.returncode}): {done.stderr[-2000:]}")
    return _json_line(done.stdout, "bench.micro")
