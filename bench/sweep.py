"""gunicorn workers x threads for bff alone.

``python -m bench.run --sweep`` (about 4 minutes): for each configuration, bff's maximum
throughput under wrk and its latency at a fixed 200 logins/s, both with a 50 ms upstream.
This is the evidence behind the defaults in config/gunicorn.conf.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.run import Stack

SWEEP_LATENCY = 50
# (workers, threads); the default and the best are measured twice, to show the run-to-run spread
CONFIGS = ((2, 16), (4, 8), (2, 8), (2, 64), (4, 16), (8, 4), (1, 32), (2, 16), (4, 8))
WHATIFS = ("",)
CONNECTIONS = 512
SECONDS = 6.0
RATE = 200


def sweep(st: Stack, log: Callable[[str], None]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for whatif in WHATIFS:
        for workers, threads in CONFIGS:
            env = {"GUNICORN_WORKERS": str(workers), "GUNICORN_THREADS": str(threads)}
            log(f"workers={workers} threads={threads} whatif={whatif or '-'}")
            rig = st.rig(SWEEP_LATENCY, env, whatif, retries=2)
            rig.max_throughput("bff", CONNECTIONS, SECONDS)
            if rig.results[-1]["rps"] >= RATE * 1.1:  # else it could only pile up timeouts
                rig.fixed_rate("bff", RATE, SECONDS, 1.0)
            for r in st.done(rig):
                r.update(workers=workers, threads=threads, whatif=whatif)
                results.append(r)
    return results
