"""What the harness reads around a step: CPU seconds of processes, Redis counters, the machine."""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from bench.procs import KEY_PREFIX, tool

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# What bff's pending bind holds (SessionStore.save_pending): the state token and the status.
PENDING_VALUE = json.dumps({"state_token": "bench-state-token", "status": "SOCIAL_BIND"})
PENDING_TTL_S = 900  # outlives any step


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of ``pids`` from /proc/<pid>/stat (a pid that is gone counts 0)."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15
    return total / CLOCK_TICKS


@dataclass(frozen=True)
class RedisSnapshot:
    commands: dict[str, int]  # command → calls, from INFO commandstats
    reads: int  # read events processed: one per client round trip (a pipeline is one)

    def minus(self, before: RedisSnapshot) -> RedisSnapshot:
        names = set(self.commands) | set(before.commands)
        delta = {n: self.commands.get(n, 0) - before.commands.get(n, 0) for n in names}
        return RedisSnapshot({n: d for n, d in delta.items() if d}, self.reads - before.reads)


class RedisProbe:
    """Reads the counters of the harness's own redis-server; its own calls are subtracted."""

    # INFO commandstats and INFO stats: the two calls between a pair of snapshots.
    OWN_READS = 2

    def __init__(self, port: int) -> None:
        self.client = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)

    def snapshot(self) -> RedisSnapshot:
        stats: dict[str, Any] = self.client.info("commandstats")  # type: ignore[assignment]
        commands = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}
        server: dict[str, Any] = self.client.info("stats")  # type: ignore[assignment]
        reads = int(server["total_reads_processed"])
        return RedisSnapshot(commands, reads)

    def delta(self, before: RedisSnapshot) -> RedisSnapshot:
        after = self.snapshot().minus(before)
        own = {"info": 2}
        commands = {k: v - own.get(k, 0) for k, v in after.commands.items()}
        return RedisSnapshot({k: v for k, v in commands.items() if v}, after.reads - self.OWN_READS)

    def count(self, kind: str) -> int:
        """How many ``{prefix}:{kind}:*`` keys there are (``session``: one per SUCCESS)."""
        return sum(1 for _ in self.client.scan_iter(match=f"{KEY_PREFIX}:{kind}:*", count=5000))

    def seed_pending(self, openids: Iterable[str]) -> int:
        """A pending bind for each openid, as bff's login leaves one; how many were written."""
        written = 0
        with self.client.pipeline(transaction=False) as pipe:
            for openid in openids:
                pipe.set(f"{KEY_PREFIX}:pending:{openid}", PENDING_VALUE, ex=PENDING_TTL_S)
                written += 1
                if written % 5000 == 0:
                    pipe.execute()
            pipe.execute()
        return written

    def clear(self) -> None:
        """Drop every benchmark key (the harness's own server holds nothing else)."""
        for key in self.client.scan_iter(match=f"{KEY_PREFIX}:*", count=5000):
            self.client.unlink(key)

    def close(self) -> None:
        self.client.close()


def _first_line(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else "?"


def machine() -> dict[str, str]:
    """The facts a reader needs to compare their numbers with ours."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    meminfo = Path("/proc/meminfo").read_text()
    mem_kb = re.search(r"^MemTotal:\s*(\d+)", meminfo, re.M)
    import gunicorn  # type: ignore[import-untyped]

    try:
        from importlib.metadata import version

        gevent = version("gevent")
    except Exception:  # not installed: only the worker comparison and the floor need it
        gevent = "not installed"

    return {
        "nproc": str(os.cpu_count()),
        "cpu": model.group(1).strip() if model else "?",
        "memory": f"{int(mem_kb.group(1)) / 1024 / 1024:.1f} GiB" if mem_kb else "?",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "gunicorn": gunicorn.__version__,
        "gevent": gevent,
        "nginx": _first_line([tool("nginx"), "-v"]),
        "wrk": _first_line([tool("wrk"), "--version"]).split(" Copyright")[0],
        "redis": _first_line([tool("redis-server"), "--version"]),
    }


def rss_mib(pid: int) -> float | None:
    """VmRSS of ``pid`` in MiB (shared pages included, as top shows it); None when gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = re.search(r"^VmRSS:\s*(\d+) kB", status, re.M)
    return round(int(found.group(1)) / 1024, 1) if found else None


def busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all but idle and iowait), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def children_seconds() -> float:
    """CPU seconds of this process's finished children (the load drivers we waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def code_state(root: Path) -> dict[str, str]:
    """Which bff was measured: HEAD and the files under bff/ and config/ that differ from it.

    Read-only (``--no-optional-locks``: not even the index is refreshed).
    """
    git = ["git", "--no-optional-locks", "-C", str(root)]
    head = _first_line([*git, "rev-parse", "--short=12", "HEAD"])
    status = subprocess.run(  # noqa: S603
        [*git, "status", "--porcelain", "--", "bff", "config"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    changed = sorted(line[3:] for line in status.splitlines() if line.strip())
    return {"commit": head, "uncommitted": ", ".join(changed) or "none"}
