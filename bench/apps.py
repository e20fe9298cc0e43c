"""What serving several apps costs a bind: one build with one app beside the same build with twelve.

    python -m bench.apps     # `make bench-apps`: about 20 s; prints one JSON object last

Both apps are built in one process, in gateway mode, against one IDaaS stub (no latency) and
one Redis: the single-app one from the environment alone; the other with a BFF_APPS_FILE of
twelve apps, each bind naming the seventh by its appid (``X-WX-APPID``), so that it takes the
lookups a named app takes (the app by appid, its own store, limiter and clients). A SUCCESS bind
runs as WSGI sees it, each for a fresh openid whose pending bind the harness writes first (not
counted: both sides pay it alike). Rounds alternate between the two builds, and which goes
first; CPU per bind (``time.process_time``) is the median over the rounds. The stub and Redis
are this harness's own, on spare loopback ports, stopped by pid at the end.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.micro import PENDING, _bind_environ, _openid
from bench.procs import CLIENT_ID, GATEWAY_SECRET, KEY_PREFIX, Procs

APPS = 12
NAMED = 7  # the app the binds name (any but the default)
ROUNDS = 30
BINDS_PER_ROUND = 150
TARGET = 1.05  # at most 5 % more CPU per bind than with one app


def apps_toml(count: int) -> str:
    """``count`` apps sharing the tenant (one client id each), all in gateway mode."""
    return "".join(
        f'[apps.app{n:02d}]\nwechat_appid = "wx-app{n:02d}"\nidaas_client_id = "{CLIENT_ID}"\n'
        'identity_source = "gateway"\n\n'
        for n in range(1, count + 1)
    )


def _env(idaas_port: int, redis_port: int) -> dict[str, str]:
    return {
        "BFF_ENV": "production",
        "IDAAS_BASE_URL": f"http://127.0.0.1:{idaas_port}",
        "IDAAS_CLIENT_ID": CLIENT_ID,
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "REDIS_KEY_PREFIX": KEY_PREFIX,
        "IDENTITY_SOURCE": "gateway",
        "GATEWAY_SECRET": GATEWAY_SECRET,
        "RATE_LIMIT_LOGIN": "1000000000/minute",
        "RATE_LIMIT_BIND": "1000000000/minute",
        "LOG_LEVEL": "WARNING",
    }


def _binder(app: Any, redis_port: int, prefix: str, appid: str | None) -> Callable[[], None]:
    import redis

    store = redis.Redis(host="127.0.0.1", port=redis_port)

    def once() -> None:
        openid = _openid()
        store.set(f"{prefix}:pending:{openid}", PENDING, ex=60)
        environ = _bind_environ(openid)
        if appid:
            environ["HTTP_X_WX_APPID"] = appid
        status: list[str] = []
        b"".join(app(environ, lambda s, h, e=None: status.append(s)))
        assert status[0].startswith("200"), status  # noqa: S101

    return once


def _cpu_us(fn: Callable[[], None], count: int) -> float:
    started = time.process_time()
    for _ in range(count):
        fn()
    return (time.process_time() - started) / count * 1e6


def measure(idaas_port: int, redis_port: int, workdir: Path) -> dict[str, Any]:
    from bff import create_app
    from bff.settings import load_settings

    env = _env(idaas_port, redis_port)
    apps_file = workdir / "apps.toml"
    apps_file.write_text(apps_toml(APPS))
    one = create_app(load_settings(env))
    many = create_app(load_settings({**env, "BFF_APPS_FILE": str(apps_file)}))
    name = f"app{NAMED:02d}"
    binders = {
        "one app": _binder(one, redis_port, KEY_PREFIX, None),
        f"{APPS + 1} apps, a bind naming {name}": _binder(
            many, redis_port, f"{KEY_PREFIX}.{name}", f"wx-{name}"
        ),
    }
    for fn in binders.values():  # warm: connections, the JWKS, the pools
        for _ in range(50):
            fn()
    rounds: dict[str, list[float]] = {k: [] for k in binders}
    order = list(binders)
    for _ in range(ROUNDS):
        for label in order:
            rounds[label].append(_cpu_us(binders[label], BINDS_PER_ROUND))
        order.reverse()  # neither build always runs first (caches, the allocator's state)
    medians = {k: round(statistics.median(v), 1) for k, v in rounds.items()}
    first, second = medians.values()
    ratio = round(second / first, 3)
    return {
        "cpu_us_per_bind_median": medians,
        "rounds": ROUNDS,
        "binds_per_round": BINDS_PER_ROUND,
        "ratio": ratio,
        "target": f"<= {TARGET}",
        "met": ratio <= TARGET,
    }


def main() -> int:
    from bench.procs import exit_on_sigterm

    exit_on_sigterm()
    with tempfile.TemporaryDirectory(prefix="bench-apps-") as tmp:
        workdir = Path(tmp)
        with Procs(workdir) as procs:
            idaas_port = procs.stub([0])[0]
            redis_port = procs.redis()
            os.environ.pop("BFF_APPS_FILE", None)
            result = measure(idaas_port, redis_port, workdir)
    for label, us in result["cpu_us_per_bind_median"].items():
        print(f"{label:40s} {us:8.1f} µs CPU per bind (median of {ROUNDS} rounds)")
    verdict = "met" if result["met"] else "NOT met"
    print(f"ratio {result['ratio']} (target {result['target']}): {verdict}")
    print(json.dumps(result))
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
