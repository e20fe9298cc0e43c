"""gunicorn's gthread worker against its gevent worker, for the floor and bff.

``python -m bench.run --workers`` (about 5 minutes): 2 workers of each class, with N = 64 and
256 connections in flight (wrk) and a 50 ms and a 500 ms IDaaS. gthread gets ``--threads N``
(a thread per connection in flight), gevent ``--worker-connections N``; both on gunicorn's
command line, which overrides bff's config file. Per configuration: the maximum throughput
(wrk), CPU per request and errors; at 50 ms also the latency at a fixed 200/s; the RSS of each
worker after it; the warnings and tracebacks the apps logged.

Read the gevent rows knowing what ``--worker-connections`` counts: open connections, idle
keep-alive ones included (each holds its greenlet until gunicorn's keep-alive timeout). wrk opens
exactly N; the open-loop generator opens more when the server falls behind, and those wait in the
listen backlog until a slot frees (timeouts). gthread accepts up to its own worker_connections
(1000) and queues them for its N threads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bench.drivers import SCENARIOS
from bench.steps import APPS

if TYPE_CHECKING:
    from bench.run import Stack

LATENCIES = (50, 500)
CONNECTIONS = (64, 256)
CLASSES = ("gthread", "gevent")
SECONDS = 6.0
RATE = 200  # open loop, at the 50 ms IDaaS only (500 ms: 200/s needs 100 in flight)


def worker_args(worker_class: str, n: int) -> tuple[str, ...]:
    if worker_class == "gthread":
        return ("-w", "2", "-k", "gthread", "--threads", str(n))
    return ("-w", "2", "-k", "gevent", "--worker-connections", str(n))


def compare(st: Stack, log: Callable[[str], None], scenario_name: str) -> dict[str, Any]:
    scenario = SCENARIOS[scenario_name]
    outcome: dict[str, Any] = {"workers_scenario": scenario_name}
    for latency in LATENCIES:
        for n in CONNECTIONS:
            for worker_class in CLASSES:
                log(f"IDaaS {latency} ms, {worker_class} N={n}")
                args = worker_args(worker_class, n)
                tags = {"worker_class": worker_class, "worker_n": n}
                rig = st.rig(latency, bff_args=args, floor_args=args, tags=tags)
                outcome.setdefault("answers", []).extend(rig.check_answers((scenario_name,)))
                rig.warm(proxies=False)
                for system in APPS:
                    rig.max_throughput(scenario, system, n, SECONDS)
                if latency == 50:
                    for system in APPS:
                        rig.fixed_rate(scenario, system, RATE, SECONDS, 1.0)
                st.done(rig, outcome)
    return outcome
