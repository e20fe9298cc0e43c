"""The benchmark: upstream alone (the floor), nginx proxy_pass and bff, side by side.

    python -m bench.run                  # the full run (`make bench`): docs/benchmark-results.*
    python -m bench.run --smoke          # seconds, same code path, no charts; exit 1 on any error
    python -m bench.run --whatif breaker # the same with a proposed bff change patched in
    python -m bench.run --sweep          # gunicorn workers x threads, bff only

Everything listens on 127.0.0.1: the IDaaS stub (bench/stub.py) with a fixed latency per port,
a redis-server of our own on a spare port, nginx as an unprivileged process with a temp-dir
config, and bff under config/gunicorn.conf.py (IDENTITY_SOURCE=gateway). Each process started
here is stopped by its pid when the run ends, also on error.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bench import drivers, report
from bench.measure import RedisProbe, busy_seconds, children_seconds, code_state, machine
from bench.procs import ROOT, Bff, Procs
from bench.profile import profile_worker
from bench.steps import SYSTEMS, Rig, problems
from bench.sweep import SWEEP_LATENCY, sweep


@dataclass(frozen=True)
class Plan:
    latencies: tuple[int, ...]  # upstream latencies (ms), one bff start each
    rates: dict[int, tuple[int, ...]]  # upstream latency → open-loop rates (req/s)
    duration: float  # seconds measured per open-loop step
    warmup: float  # seconds sent first, not measured
    wrk_duration: float
    wrk_connections: dict[int, int]  # upstream latency → wrk connections
    sustain_latency: int | None  # re-run bff open-loop at 90 % of its wrk maximum here
    profile_seconds: float  # py-spy on one bff worker under wrk (0: no profile)
    charts: bool
    quiet_budget_s: float  # in all, waiting for other processes' load to pass (shared machine)
    retries: int  # re-measurements of a step that other processes disturbed
    micro: bool  # bench/micro.py: CPU per call of each piece of a login, in one process
    bff_env: dict[str, str] = field(default_factory=dict)
    whatif: str = ""  # bench/whatif.py patches (experiments; the default run has none)


FULL = Plan(
    latencies=(50, 20, 0),
    rates={50: (25, 100, 200, 400, 800), 20: (200,), 0: (200,)},
    duration=8.0,
    warmup=1.0,
    wrk_duration=8.0,
    wrk_connections={50: 512, 20: 256, 0: 64},
    sustain_latency=50,
    profile_seconds=8.0,
    charts=True,
    quiet_budget_s=45.0,
    retries=2,
    micro=True,
)
SMOKE = Plan(
    latencies=(5,),
    rates={5: (20,)},
    duration=1.0,
    warmup=0.2,
    wrk_duration=1.0,
    wrk_connections={5: 4},
    sustain_latency=None,
    profile_seconds=0.0,
    charts=False,
    quiet_budget_s=0.0,
    retries=0,
    micro=False,
)


def log(line: str) -> None:
    print(line, flush=True)


@dataclass
class Stack:
    """What stays up for the whole run: the stub, nginx and Redis."""

    procs: Procs
    stub_ports: dict[int, int]
    nginx_ports: dict[int, int]
    redis_port: int
    probe: RedisProbe
    quiet_budget_s: float
    retry_budget_s: float = 90.0

    def rig(self, latency: int, env: dict[str, str], whatif: str, retries: int) -> Rig:
        """bff started for ``latency``; the Rig measures it beside the floor and nginx."""

        def start_bff() -> Bff:
            return self.procs.bff(self.stub_ports[latency], self.redis_port, env, whatif)

        def restart_bff() -> Bff:
            self.procs.stop(rig.bff.proc)
            return start_bff()

        bff = start_bff()
        ports = {"floor": self.stub_ports[latency], "nginx": self.nginx_ports[latency]}
        rig = Rig(
            latency_ms=latency,
            ports={**ports, "bff": bff.port},
            stub_pid=self.procs.pid_of("stub"),
            nginx_pid=self.procs.pid_of("nginx"),
            redis_pid=self.procs.pid_of("redis"),
            bff=bff,
            probe=self.probe,
            log=log,
            quiet_budget_s=self.quiet_budget_s,
            retries=retries,
            retry_budget_s=self.retry_budget_s,
            restart_bff=restart_bff,
        )
        return rig

    def done(self, rig: Rig) -> list[dict[str, Any]]:
        self.procs.stop(rig.bff.proc)
        self.quiet_budget_s = rig.quiet_budget_s
        self.retry_budget_s = rig.retry_budget_s
        return rig.results


@contextmanager
def stack(workdir: Path, latencies: tuple[int, ...], quiet_budget_s: float) -> Iterator[Stack]:
    with Procs(workdir) as procs:
        stub_ports = procs.stub(list(latencies))
        nginx_ports = procs.nginx(stub_ports)
        redis_port = procs.redis()
        probe = RedisProbe(redis_port)
        try:
            yield Stack(procs, stub_ports, nginx_ports, redis_port, probe, quiet_budget_s)
        finally:
            probe.client.flushdb()
            probe.close()


def run(plan: Plan, workdir: Path) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    extra: dict[str, Any] = {}
    with stack(workdir, plan.latencies, plan.quiet_budget_s) as st:
        for latency in plan.latencies:
            log(f"upstream latency {latency} ms")
            rig = st.rig(latency, plan.bff_env, plan.whatif, plan.retries)
            _measure(rig, plan, latency)
            if plan.profile_seconds and latency == plan.sustain_latency:
                extra["profile"] = _profile(rig, plan, workdir)
            results += st.done(rig)
        if plan.micro:
            log("in-process CPU per piece of a login (bench/micro.py)")
            busy, kids = busy_seconds(), children_seconds()
            started = time.monotonic()
            extra["micro_us"] = drivers.micro(st.stub_ports[min(plan.latencies)], st.redis_port)
            foreign = busy_seconds() - busy - (children_seconds() - kids)
            extra["micro_foreign_cores"] = round(foreign / (time.monotonic() - started), 2)
    return {"results": results, **extra}


def _measure(rig: Rig, plan: Plan, latency: int) -> None:
    for system in SYSTEMS:  # warm every pool (and bff's JWKS cache) before measuring
        drivers.open_loop(rig.ports[system], rig.path(system), 20, 0.5, 0)
    rig.probe.client.flushdb()
    for rate in plan.rates[latency]:
        for system in SYSTEMS:
            rig.fixed_rate(system, rate, plan.duration, plan.warmup)
    for system in SYSTEMS:
        rig.max_throughput(system, plan.wrk_connections[latency], plan.wrk_duration)
    if latency == plan.sustain_latency:
        best = rig.results[-1]["rps"]
        rate = max(10, round(best * 0.9 / 10) * 10)
        log(f"  sustained check: bff at {rate}/s (90 % of its wrk maximum)")
        rig.measure(
            "sustained",
            "bff",
            lambda: drivers.open_loop(rig.ports["bff"], drivers.BFF_PATH, rate, 8.0, 1.0),
        )


def _profile(rig: Rig, plan: Plan, workdir: Path) -> dict[str, Any]:
    worker = rig.bff.workers()[0]
    log(f"  py-spy on worker {worker} for {plan.profile_seconds:.0f} s under wrk")
    connections = plan.wrk_connections[rig.latency_ms]
    port = rig.ports["bff"]
    return profile_worker(
        worker,
        plan.profile_seconds,
        workdir,
        lambda: drivers.closed_loop(port, drivers.BFF_PATH, connections, plan.profile_seconds + 1),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a few seconds, no charts")
    parser.add_argument("--sweep", action="store_true", help="gunicorn workers x threads")
    parser.add_argument("--whatif", default="", help="bench/whatif.py patches, comma separated")
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where results go")
    parser.add_argument("--bff-env", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    plan = SMOKE if args.smoke else FULL
    env = dict(kv.split("=", 1) for kv in args.bff_env)
    plan = replace(plan, bff_env=env, whatif=args.whatif)
    given = argv if argv is not None else sys.argv[1:]
    _raise_priority()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bff-bench-") as tmp:
        if args.sweep:
            with stack(Path(tmp), (SWEEP_LATENCY,), plan.quiet_budget_s) as st:
                outcome = {"results": sweep(st, log)}
        else:
            outcome = run(plan, Path(tmp))
    data: dict[str, Any] = {
        "command": shlex.join(["python", "-m", "bench.run", *given]),
        "machine": machine(),
        "code": code_state(ROOT),
        "plan": {**asdict(plan), "rates": {str(k): v for k, v in plan.rates.items()}},
        "elapsed_s": round(time.monotonic() - started, 1),
        **outcome,
    }
    found = problems(data["results"])
    if args.smoke:
        log(f"smoke: {len(data['results'])} steps in {data['elapsed_s']} s")
    else:
        name = "benchmark-sweep" if args.sweep else "benchmark-results"
        suffix = f"-whatif-{args.whatif.replace(',', '-')}" if args.whatif else ""
        write(data, args.out, name + suffix, charts=plan.charts and not args.sweep)
    for problem in found:
        log(f"{'PROBLEM' if args.smoke else 'note'}: {problem}")
    return 1 if found and args.smoke else 0


def _raise_priority() -> None:
    """On a shared machine, others' jobs disturb the numbers less at nice -10 (inherited by
    every process started here). Only root may do this; otherwise it is skipped."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, -10)
    except OSError:
        log("note: could not raise the harness's priority (not root); numbers may be noisier")


def write(data: dict[str, Any], out: Path, name: str, *, charts: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(data, indent=1) + "\n")
    sweep_run = name.startswith("benchmark-sweep")
    text = report.sweep_markdown(data) if sweep_run else report.markdown(data)
    (out / f"{name}.md").write_text(text)
    if charts:
        report.charts(data, out / "img", name.removeprefix("benchmark-results"))
    log(f"wrote {out}/{name}.md in {data['elapsed_s']} s")


if __name__ == "__main__":
    sys.exit(main())
