"""The benchmark: the IDaaS stub alone, nginx proxy_pass, the stack floor and bff, side by side.

    python -m bench.run               # the full run (`make bench`): bench/out/benchmark-results.*
    python -m bench.run --publish     # the same, and its page and charts copied to docs/
    python -m bench.run --smoke       # seconds, same code path, no charts; exit 1 on any problem
    python -m bench.run --workers     # gthread against gevent, floor and bff (bench/workers.py)
    python -m bench.run --sweep       # gunicorn workers x threads, bff only (bench/sweep.py)
    python -m bench.run --render bench/out/benchmark-results.json [--publish]
                                      # the page (and charts) again from a run's JSON

Everything listens on 127.0.0.1: the IDaaS stub (bench/stub.py) with a fixed latency per port,
a redis-server of our own on a spare port, nginx as an unprivileged process with a temp-dir
config, the floor (bench/floor.py under gunicorn) and bff under config/gunicorn.conf.py
(IDENTITY_SOURCE=gateway). Two scenarios: a SUCCESS login and a SUCCESS username-password bind
(the harness seeds a pending bind for every openid the load will use). Each process started
here is stopped by its pid when the run ends, also on error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bench import drivers, report
from bench.drivers import SCENARIOS
from bench.measure import RedisProbe, busy_seconds, children_seconds, code_state, machine
from bench.procs import ROOT, App, Procs, exit_on_sigterm
from bench.profile import profile_worker
from bench.steps import APPS, SYSTEMS, Rig, problems
from bench.sweep import SWEEP_LATENCY, sweep
from bench.workers import LATENCIES as WORKER_LATENCIES
from bench.workers import compare

OUT = ROOT / "bench" / "out"  # git-ignored: raw results never land in docs/
DOCS = ROOT / "docs"


@dataclass(frozen=True)
class Plan:
    latencies: tuple[int, ...]  # upstream latencies (ms): the floor and bff started for each
    scenarios: tuple[str, ...]  # "bind", "login"
    rates: dict[int, tuple[int, ...]]  # upstream latency → open-loop rates (req/s)
    duration: float  # seconds measured per open-loop step
    warmup: float  # seconds sent first, not measured
    wrk_duration: float
    wrk_connections: dict[int, tuple[int, ...]]  # upstream latency → wrk connections
    # Where the ratios and the targets are read: this upstream, this rate, this many connections.
    headline_latency: int
    headline_rate: int
    headline_connections: int
    sustain: bool  # re-run bff open-loop at 90 % of its wrk maximum (headline upstream)
    profile_seconds: float  # py-spy on one bff worker under wrk (0: no profile)
    charts: bool
    quiet_budget_s: float  # in all, waiting for other processes' load to pass (shared machine)
    retries: int  # re-measurements of a step that other processes disturbed
    micro: bool  # bench/micro.py: CPU per call of each piece of a bind, in one process
    warm: bool = True  # a few logins through every system before the first step
    settle_s: float = 0.3  # how long our servers must be idle before a step starts
    bff_env: dict[str, str] = field(default_factory=dict)


FULL = Plan(
    latencies=(50, 0),
    scenarios=("bind", "login"),
    rates={50: (50, 200, 400), 0: ()},
    duration=6.0,
    warmup=1.0,
    wrk_duration=6.0,
    wrk_connections={50: (64,), 0: (64,)},
    headline_latency=50,
    headline_rate=200,
    headline_connections=64,
    sustain=True,
    profile_seconds=6.0,
    charts=True,
    quiet_budget_s=45.0,
    retries=2,
    micro=True,
)
SMOKE = Plan(
    latencies=(5,),
    scenarios=("bind", "login"),
    rates={5: (40,)},
    duration=0.25,
    warmup=0.1,
    wrk_duration=1.0,
    wrk_connections={5: (4,)},
    headline_latency=5,
    headline_rate=40,
    headline_connections=4,
    sustain=False,
    profile_seconds=0.0,
    charts=False,
    quiet_budget_s=0.0,
    retries=0,
    micro=False,
    warm=False,  # the answer check before it opens the apps' pools
    settle_s=0.1,
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
    retries: int = 2
    settle_s: float = 0.3
    retry_budget_s: float = 90.0

    def rig(
        self,
        latency: int,
        *,
        apps: tuple[str, ...] = APPS,
        bff_env: dict[str, str] | None = None,
        bff_args: tuple[str, ...] = (),
        floor_args: tuple[str, ...] = (),
        tags: dict[str, Any] | None = None,
    ) -> Rig:
        """The floor and bff started for ``latency``; the Rig measures them beside the stub
        and nginx."""

        def start(system: str) -> App:
            idaas = self.stub_ports[latency]
            if system == "bff":
                return self.procs.bff(idaas, self.redis_port, bff_env or {}, bff_args)
            return self.procs.floor(idaas, self.redis_port, floor_args)

        def stop(app: App) -> None:
            self.procs.stop(app.proc)

        started: dict[str, App] = {}
        try:
            for system in apps:
                started[system] = start(system)
        except BaseException:
            for app in started.values():
                stop(app)
            raise
        return Rig(
            latency_ms=latency,
            stub_port=self.stub_ports[latency],
            nginx_port=self.nginx_ports[latency],
            stub_pid=self.procs.pid_of("stub"),
            nginx_pid=self.procs.pid_of("nginx"),
            redis_pid=self.procs.pid_of("redis"),
            apps=started,
            probe=self.probe,
            start_app=start,
            stop_app=stop,
            log=log,
            tags=tags or {},
            quiet_budget_s=self.quiet_budget_s,
            retries=self.retries,
            settle_s=self.settle_s,
            retry_budget_s=self.retry_budget_s,
        )

    def done(self, rig: Rig, outcome: dict[str, Any]) -> None:
        """Read what is left to read (worker RSS, the apps' logs), stop the apps, keep it all."""
        for system, mibs in rig.rss().items():
            entry = {"system": system, "latency": rig.latency_ms, "workers_mib": mibs}
            outcome.setdefault("rss", []).append({**entry, **rig.tags})
        for app in rig.started:
            self.procs.stop(app.proc)
            entry = {"system": app.name, "latency": rig.latency_ms, **app.notable_lines()}
            entry["args"] = shlex.join(app.worker_args) or "as configured"
            outcome.setdefault("app_logs", []).append({**entry, **rig.tags})
        outcome.setdefault("results", []).extend(rig.results)
        self.quiet_budget_s = rig.quiet_budget_s
        self.retry_budget_s = rig.retry_budget_s


@contextmanager
def stack(workdir: Path, latencies: tuple[int, ...], plan: Plan) -> Iterator[Stack]:
    with Procs(workdir) as procs:
        stub_ports = procs.stub(list(latencies))
        nginx_ports = procs.nginx(stub_ports)
        redis_port = procs.redis()
        probe = RedisProbe(redis_port)
        try:
            yield Stack(
                procs,
                stub_ports,
                nginx_ports,
                redis_port,
                probe,
                plan.quiet_budget_s,
                plan.retries,
                plan.settle_s,
            )
        finally:
            probe.close()


def run(plan: Plan, workdir: Path) -> dict[str, Any]:
    outcome: dict[str, Any] = {"results": [], "answers": []}
    with stack(workdir, plan.latencies, plan) as st:
        for latency in plan.latencies:
            log(f"upstream latency {latency} ms")
            rig = st.rig(latency, bff_env=plan.bff_env)
            try:
                outcome["answers"] += rig.check_answers(plan.scenarios)
                if plan.warm:
                    rig.warm()
                _measure(rig, plan, latency)
                if plan.profile_seconds and latency == plan.headline_latency:
                    outcome["profile"] = _profile(rig, plan, workdir)
            finally:
                st.done(rig, outcome)
        if plan.micro:
            log("in-process CPU per piece of a bind, bff and floor (bench/micro.py)")
            busy, kids = busy_seconds(), children_seconds()
            started = time.monotonic()
            outcome["micro_us"] = drivers.micro(st.stub_ports[min(plan.latencies)], st.redis_port)
            foreign = busy_seconds() - busy - (children_seconds() - kids)
            outcome["micro_foreign_cores"] = round(foreign / (time.monotonic() - started), 2)
    return outcome


def _measure(rig: Rig, plan: Plan, latency: int) -> None:
    for name in plan.scenarios:
        scenario = SCENARIOS[name]
        for rate in plan.rates[latency]:
            for system in SYSTEMS:
                rig.fixed_rate(scenario, system, rate, plan.duration, plan.warmup)
        for connections in plan.wrk_connections.get(latency, ()):
            for system in SYSTEMS:
                rig.max_throughput(scenario, system, connections, plan.wrk_duration)
        tops = [
            r["rps"]
            for r in rig.results
            if r["kind"] == "max_throughput" and r["system"] == "bff" and r["scenario"] == name
        ]
        if plan.sustain and latency == plan.headline_latency and tops:
            rate = max(10, round(tops[-1] * 0.9 / 10) * 10)
            log(f"  sustained check: bff {name} at {rate}/s (90 % of its wrk maximum)")
            rig.fixed_rate(scenario, "bff", rate, plan.duration, plan.warmup, kind="sustained")


def _profile(rig: Rig, plan: Plan, workdir: Path) -> dict[str, Any]:
    """py-spy on one worker of bff, then of the floor, each under the same wrk load."""
    return {system: _profile_one(rig, plan, workdir, system) for system in ("bff", "floor")}


def _profile_one(rig: Rig, plan: Plan, workdir: Path, system: str) -> dict[str, Any]:
    scenario = SCENARIOS[plan.scenarios[0]]
    worker = rig.apps[system].workers()[0]
    seconds = plan.profile_seconds + 1  # wrk runs a little longer than py-spy samples
    log(f"  py-spy on {system} worker {worker} for {plan.profile_seconds:.0f} s under wrk")
    connections = plan.headline_connections
    rig.settle()
    rig.probe.client.flushdb()
    if scenario.pending:
        workers, count = drivers.closed_loop_openids(connections, seconds)
        rig.probe.seed_pending(drivers.openid_range(workers, count))
    port = rig.port(system)
    result = profile_worker(
        worker,
        plan.profile_seconds,
        workdir,
        lambda: drivers.closed_loop(port, scenario.path, scenario.body, connections, seconds),
        own="bff" if system == "bff" else "bench",
    )
    return {**result, "scenario": scenario.name}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--smoke", action="store_true", help="a few seconds, no charts")
    mode.add_argument("--workers", action="store_true", help="gthread against gevent")
    mode.add_argument("--sweep", action="store_true", help="gunicorn workers x threads, bff")
    mode.add_argument("--render", type=Path, metavar="JSON", help="no run: pages from its JSON")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="bind", help="--workers")
    parser.add_argument("--out", type=Path, default=OUT, help="where results go (JSON, page)")
    parser.add_argument(
        "--publish", action="store_true", help="also copy the page and its charts to docs/"
    )
    parser.add_argument("--bff-env", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    if args.render:
        data = json.loads(args.render.read_text())
        return render(data, args.out, args.publish, charts=data["plan"].get("charts", True))
    plan = SMOKE if args.smoke else FULL
    plan = replace(plan, bff_env=dict(kv.split("=", 1) for kv in args.bff_env))
    given = argv if argv is not None else sys.argv[1:]
    exit_on_sigterm()  # a killed run still stops what it started
    _raise_priority()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bff-bench-") as tmp:
        if args.sweep:
            with stack(Path(tmp), (SWEEP_LATENCY,), plan) as st:
                outcome = sweep(st, log)
        elif args.workers:
            with stack(Path(tmp), WORKER_LATENCIES, plan) as st:
                outcome = compare(st, log, args.scenario)
        else:
            outcome = run(plan, Path(tmp))
    data: dict[str, Any] = {
        "command": shlex.join(["python", "-m", "bench.run", *given]),
        "machine": machine(),
        "code": code_state(ROOT),
        "plan": {
            **asdict(plan),
            "rates": {str(k): v for k, v in plan.rates.items()},
            "wrk_connections": {str(k): v for k, v in plan.wrk_connections.items()},
        },
        "elapsed_s": round(time.monotonic() - started, 1),
        **outcome,
    }
    data["mode"] = "sweep" if args.sweep else "workers" if args.workers else "run"
    if args.smoke:
        for line in report.terminal(data):
            log(line)
        log(f"smoke: {len(data['results'])} steps in {data['elapsed_s']} s")
        found = problems(data)
        for problem in found:
            log(f"PROBLEM: {problem}")
        return 1 if found else 0
    return render(data, args.out, args.publish, charts=plan.charts)


def render(data: dict[str, Any], out: Path, publish: bool, charts: bool = True) -> int:
    """Print the summary, write the JSON, the page (and charts); note every problem."""
    mode = data.get("mode", "run")
    if mode == "sweep":
        write(data, out, "benchmark-sweep", report.sweep_markdown(data), publish)
    elif mode == "workers":
        for line in report.workers_terminal(data):
            log(line)
        write(data, out, "benchmark-workers", report.workers_markdown(data), publish)
    else:
        for line in report.terminal(data):
            log(line)
        write(data, out, "benchmark-results", report.markdown(data), publish, charts=charts)
    for problem in problems(data):
        log(f"note: {problem}")
    return 0


def _raise_priority() -> None:
    """On a shared machine, others' jobs disturb the numbers less at nice -10 (inherited by
    every process started here). Only root may do this; otherwise it is skipped."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, -10)
    except OSError:
        log("note: could not raise the harness's priority (not root); numbers may be noisier")


def write(
    data: dict[str, Any], out: Path, name: str, page: str, publish: bool, charts: bool = False
) -> None:
    """The JSON and the page to ``out``; with ``publish``, the page and charts to docs/ too."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(data, indent=1) + "\n")
    (out / f"{name}.md").write_text(page)
    if charts:
        report.charts(data, out / "img")
    log(f"wrote {out}/{name}.md (+ .json) in {data['elapsed_s']} s")
    if publish:
        (DOCS / f"{name}.md").write_text(page)
        if charts:
            for png in (out / "img").glob("bench-*.png"):
                shutil.copy2(png, DOCS / "img" / png.name)
        log(f"published {DOCS}/{name}.md" + (" and its charts in docs/img/" if charts else ""))


if __name__ == "__main__":
    sys.exit(main())
