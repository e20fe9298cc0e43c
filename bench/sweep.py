"""gunicorn workers x threads (gthread) for bff alone.

``python -m bench.run --sweep`` (about 4 minutes): for each configuration, bff's maximum
login throughput under wrk and its latency at a fixed 200 logins/s, both with a 50 ms upstream.
The configuration goes on gunicorn's command line (``-w W -k gthread --threads T``), after
bff's own ``-c config/gunicorn.conf.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bench.drivers import SCENARIOS

if TYPE_CHECKING:
    from bench.run import Stack

SWEEP_LATENCY = 50
# (workers, threads); the first is measured twice, to show the run-to-run spread
CONFIGS = ((2, 16), (4, 8), (2, 8), (2, 64), (4, 16), (8, 4), (1, 32), (2, 16))
CONNECTIONS = 512
SECONDS = 6.0
RATE = 200


def sweep(st: Stack, log: Callable[[str], None]) -> dict[str, Any]:
    outcome: dict[str, Any] = {
        "sweep_latency": SWEEP_LATENCY,
        "sweep_connections": CONNECTIONS,
        "sweep_rate": RATE,
    }
    login = SCENARIOS["login"]
    for workers, threads in CONFIGS:
        log(f"workers={workers} threads={threads}")
        args = ("-w", str(workers), "-k", "gthread", "--threads", str(threads))
        tags = {"workers": workers, "threads": threads}
        rig = st.rig(SWEEP_LATENCY, apps=("bff",), bff_args=args, tags=tags)
        rig.warm(proxies=False)
        top = rig.max_throughput(login, "bff", CONNECTIONS, SECONDS)
        if top["rps"] >= RATE * 1.1:  # else it could only pile up timeouts
            rig.fixed_rate(login, "bff", RATE, SECONDS, 1.0)
        st.done(rig, outcome)
    return outcome
