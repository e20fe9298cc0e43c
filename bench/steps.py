"""One measured step: a load driver against one system, with CPU and Redis read around it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench import drivers
from bench.measure import RedisProbe, busy_seconds, children_seconds, cpu_seconds
from bench.procs import Bff, children

SYSTEMS = ("floor", "nginx", "bff")
# The machine may be shared: CPU used by processes that are not ours during a step is "foreign".
# A step with more than this many foreign cores is measured again (at most RETRIES times).
NOISE_LIMIT_CORES = 0.3
RETRIES = 2


@dataclass
class Rig:
    """Everything running for one upstream latency: where each system listens, whose CPU."""

    latency_ms: int
    ports: dict[str, int]  # system → port
    stub_pid: int
    nginx_pid: int
    redis_pid: int
    bff: Bff
    probe: RedisProbe
    log: Callable[[str], None] = print
    results: list[dict[str, Any]] = field(default_factory=list)
    quiet_budget_s: float = 60.0  # how long, in all, to wait for others' load to pass
    retries: int = RETRIES
    retry_budget_s: float = 90.0  # how long, in all, re-measuring may add to the run
    restart_bff: Callable[[], Bff] | None = None  # a fresh bff after an overloaded step

    def own_pids(self) -> list[int]:
        """Every server process of ours (the load drivers are counted as our children)."""
        bff = [self.bff.proc.pid, *self.bff.workers()]
        return [self.stub_pid, self.redis_pid, self.nginx_pid, *children(self.nginx_pid), *bff]

    def foreign_cores(self, seconds: float) -> float:
        """Cores used by other processes over ``seconds`` while ours idle."""
        own, busy = cpu_seconds(self.own_pids()), busy_seconds()
        time.sleep(seconds)
        return (busy_seconds() - busy - (cpu_seconds(self.own_pids()) - own)) / seconds

    def settle(self, limit_s: float = 15.0) -> None:
        """Wait until our own servers are idle: after wrk stops, bff still works off the
        requests it had queued, and that work must not be charged to the next step."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            own = cpu_seconds(self.own_pids())
            time.sleep(0.3)
            if cpu_seconds(self.own_pids()) - own < 0.3 * 0.05:  # under 5 % of a core
                return

    def wait_quiet(self) -> None:
        """Wait (within the run's budget) until other processes leave the CPUs to us."""
        self.settle()
        while self.quiet_budget_s > 0:
            if self.foreign_cores(0.5) < NOISE_LIMIT_CORES / 2:
                return
            self.quiet_budget_s -= 2.5
            time.sleep(2.0)

    def pids(self, system: str) -> list[int]:
        """The processes whose CPU a request of ``system`` is charged to (the stub excluded)."""
        if system == "floor":
            return [self.stub_pid]
        if system == "nginx":
            return children(self.nginx_pid)
        return self.bff.workers()

    def path(self, system: str) -> str:
        return drivers.BFF_PATH if system == "bff" else drivers.IDAAS_PATH

    def measure(self, kind: str, system: str, drive: Callable[[], dict[str, Any]]) -> None:
        """Run ``drive``; again if others' load disturbed it; record the least disturbed run."""
        best: dict[str, Any] | None = None
        for attempt in range(1 + self.retries):
            self.wait_quiet()
            started = time.monotonic()
            result = self._once(system, drive)
            if attempt:
                self.retry_budget_s -= time.monotonic() - started
            if system == "bff" and result.get("errors") and self.restart_bff is not None:
                # Requests an overloaded bff still holds would slow what follows: start anew.
                self.bff = self.restart_bff()
                self.ports["bff"] = self.bff.port
            if best is None or result["foreign_cores"] < best["foreign_cores"]:
                best = result
            quiet = result["foreign_cores"] <= NOISE_LIMIT_CORES
            if quiet or attempt == self.retries or self.retry_budget_s <= 0:
                break
            self.log(f"  (others used {result['foreign_cores']} cores: attempt {attempt + 2})")
        assert best is not None  # noqa: S101
        best.update(kind=kind, system=system, latency=self.latency_ms)
        self.results.append(best)
        self.log(describe(best))

    def _once(self, system: str, drive: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        if system == "bff":
            self.probe.client.flushdb()  # sessions a previous step's backlog wrote late
        pids, own = self.pids(system), self.own_pids()
        cpu_before, own_before = cpu_seconds(pids), cpu_seconds(own)
        kids_before = children_seconds()
        busy_before, started = busy_seconds(), time.monotonic()
        redis_cpu_before = cpu_seconds([self.redis_pid])
        redis_before = self.probe.snapshot()
        result = drive()
        wall = time.monotonic() - started
        ours = cpu_seconds(own) - own_before + children_seconds() - kids_before
        result["foreign_cores"] = round(max(0.0, busy_seconds() - busy_before - ours) / wall, 2)
        # Per request of all the server answered, warm-up included (it did that work too).
        ok = max(1, int(result["ok"]) + int(result.get("warmup_ok", 0)))
        result["cpu_ms_per_req"] = round((cpu_seconds(pids) - cpu_before) / ok * 1000, 3)
        if system == "bff":
            delta = self.probe.delta(redis_before)
            result["redis_round_trips_per_login"] = round(delta.reads / ok, 3)
            result["redis_commands_per_login"] = {
                name: round(calls / ok, 3) for name, calls in sorted(delta.commands.items())
            }
            result["redis_cpu_ms_per_login"] = round(
                (cpu_seconds([self.redis_pid]) - redis_cpu_before) / ok * 1000, 3
            )
            result["sessions_stored"] = self.probe.sessions()
            self.probe.client.flushdb()  # the harness's own server: only our keys live there
        return result

    def fixed_rate(self, system: str, rate: float, duration: float, warmup: float) -> None:
        path = self.path(system)  # the port is read at each attempt: bff may have restarted
        self.measure(
            "fixed_rate",
            system,
            lambda: drivers.open_loop(self.ports[system], path, rate, duration, warmup),
        )

    def max_throughput(self, system: str, connections: int, duration: float) -> None:
        path = self.path(system)
        self.measure(
            "max_throughput",
            system,
            lambda: drivers.closed_loop(self.ports[system], path, connections, duration),
        )


def describe(r: dict[str, Any]) -> str:
    lat = r["latency_ms"]
    what = f"wrk c={r['connections']}" if r["kind"] == "max_throughput" else f"{r['rate']:.0f}/s"
    rps = r.get("achieved_rps", r.get("rps"))
    line = (
        f"  upstream {r['latency']:>2} ms  {r['system']:<5} {what:<11} ok={r['ok']:<6} "
        f"rps={rps:<8} p50={lat['p50']:.2f} p90={lat['p90']:.2f} p99={lat['p99']:.2f} ms "
        f"cpu={r['cpu_ms_per_req']:.3f} ms/req foreign={r['foreign_cores']}"
    )
    if r.get("errors"):
        line += f" errors={r['errors']}"
    if r["system"] == "bff":
        line += f" redis_rt={r['redis_round_trips_per_login']} stored={r['sessions_stored']}"
    return line


def problems(results: list[dict[str, Any]]) -> list[str]:
    """What makes a run unusable: errors, or a 200 that did not store a session."""
    found = []
    for r in results:
        name = f"{r['system']} {r['kind']} upstream={r['latency']}ms"
        if r.get("errors"):
            found.append(f"{name}: errors {r['errors']}")
        if r["system"] == "bff" and r["sessions_stored"] < r["ok"] + r.get("warmup_ok", 0):
            found.append(f"{name}: {r['ok']} answers but {r['sessions_stored']} sessions stored")
        if r["ok"] == 0:
            found.append(f"{name}: no successful request")
    return found
