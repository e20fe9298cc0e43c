"""A soak: a steady rate for minutes with faults sprinkled in; do resources stay flat?

Run:  python -m bench.soak --duration 600 [--signins 10] [--checks 4]   (make soak; SOAK_S=120)

The stack of ``make faults`` (tests/support/cluster_stack.py: three bff instances, 2 workers
each, on a Redis Cluster of three masters with a replica each, behind nginx; the simulators in
this process). ``--signins`` new users a second sign in through nginx (wechat/session, login,
bind), and for each, ``--checks`` forward-auth checks and one refresh of a signed-in user.
Faults at fixed points of the run: at 30 % an IDaaS 5xx burst (the next 30 logins), at 50 %
CLIENT KILL of every client on every master, at 70 % one gunicorn worker SIGKILLed (its master
starts another). Every ``--sample`` seconds: RSS and open fds (/proc/<pid>/fd) of every worker,
and Redis connected_clients summed over the nodes.

Flat means, over the samples after the warm-up (the first 10 %, at least 15 s), split in thirds:
the last third's maximum is within the margin of the first third's (MARGINS: RSS +10 % + 8 MiB
for the largest worker, fds +8 for the worker with most, Redis clients +25 % + 6). Nothing lost
means every answer documented, every SUCCESS's session in the cluster, no state_token sent
twice. Prints a summary and writes bench/out/soak.json; exit 1 if anything is not flat or lost.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import redis

from bench.faults import OUT, run_on_stack, something_lost
from bench.procs import children
from tests.support.app import PASSWORD
from tests.support.cluster_stack import (
    ClusterStack,
    Traffic,
    lost_sessions,
    outcomes,
    state_tokens_sent_twice,
    undocumented,
)

LOGIN = "/api/v2/sdk/login/wechat-miniprogram"
# metric: (relative, absolute) allowance of the last third's max over the first third's
MARGINS = {"rss_mib": (0.10, 8.0), "fds": (0.0, 8.0), "redis_clients": (0.25, 6.0)}


class Pacer:
    """Hands out start times ``1 / rate`` apart to any number of threads; a thread that falls
    more than a second behind does not make up for it in a burst."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next = time.monotonic()
        self.lock = threading.Lock()

    def __call__(self) -> None:
        with self.lock:
            now = time.monotonic()
            self.next = max(self.next, now - 1.0)
            due, self.next = self.next, self.next + self.interval
        if due > now:
            time.sleep(due - now)


def _proc_figures(pid: int) -> tuple[float, int] | None:
    """A process's RSS (MiB) and open file descriptors; None if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return kib / 1024, fds


def sample(stack: ClusterStack, nodes: dict[int, redis.Redis], start: float) -> dict[str, Any]:
    workers = {}
    for g in stack.live_instances():
        for pid in children(g.proc.pid if g.proc else 0):
            figures = _proc_figures(pid)
            if figures is not None:
                workers[pid] = figures
    clients = 0
    for port, client in nodes.items():
        if any(n.port == port for n in stack.cluster.live()):
            try:
                clients += int(client.info("clients")["connected_clients"])
            except redis.RedisError:
                pass
    return {
        "t": round(time.monotonic() - start, 1),
        "rss_mib": round(max((w[0] for w in workers.values()), default=0.0), 1),
        "fds": max((w[1] for w in workers.values()), default=0),
        "redis_clients": clients,
        "workers": len(workers),
        "per_worker": {
            str(pid): {"rss_mib": round(r, 1), "fds": f} for pid, (r, f) in workers.items()
        },
    }


def flatness(samples: list[dict[str, Any]], warmup_s: float) -> dict[str, Any]:
    """Each metric's max in the first and last third after the warm-up, and whether it held."""
    kept = [s for s in samples if s["t"] >= warmup_s]
    third = max(len(kept) // 3, 1)
    first, last = kept[:third], kept[-third:]
    out = {}
    for metric, (rel, absolute) in MARGINS.items():
        a = max(s[metric] for s in first)
        b = max(s[metric] for s in last)
        limit = a * (1 + rel) + absolute
        out[metric] = {"first_third_max": a, "last_third_max": b, "limit": round(limit, 1)}
        out[metric]["flat"] = b <= limit
    return out


def _faults(stack: ClusterStack, idaas: Any, duration: float, start: float) -> list[str]:
    """The script of faults, each at its fraction of the run; what was done, when."""
    done: list[str] = []

    def burst() -> str:
        idaas.add_fault("status500", path=LOGIN, count=30)
        return "IDaaS 5xx burst: the next 30 logins answered 500"

    def client_kill() -> str:
        killed = 0
        for node in stack.cluster.master_nodes():
            with redis.Redis(port=node.port, socket_timeout=2) as c:
                killed += int(
                    c.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
                )
        return f"CLIENT KILL TYPE normal on every master: {killed} connections"

    def worker_kill() -> str:
        g = stack.live_instances()[0]
        pid = g.worker_pids()[0]
        os.kill(pid, 9)
        return f"SIGKILL worker {pid} of instance :{g.port}"

    for at, fault in ((0.3, burst), (0.5, client_kill), (0.7, worker_kill)):
        time.sleep(max(0.0, start + at * duration - time.monotonic()))
        done.append(f"t={time.monotonic() - start:.0f}s {fault()}")
    return done


def run(args: argparse.Namespace, tmp: Path, wechat: Any, idaas: Any) -> dict[str, Any]:
    idaas.add_user("alice", PASSWORD)
    stack = ClusterStack(tmp, idaas, wechat, "bffsoak").start()
    nodes = {n.port: redis.Redis(port=n.port, socket_timeout=2) for n in stack.cluster.nodes}
    try:
        traffic = Traffic(stack, threads=args.threads, checks=args.checks)
        traffic.pace = Pacer(args.signins)
        start = time.monotonic()
        traffic.start()
        done: list[str] = []
        script = threading.Thread(
            target=lambda: done.extend(_faults(stack, idaas, args.duration, start)), daemon=True
        )
        script.start()
        samples = []
        while time.monotonic() - start < args.duration:
            samples.append(sample(stack, nodes, start))
            time.sleep(args.sample)
        traffic.finish()
        script.join(timeout=10)
        elapsed = time.monotonic() - start
        warmup = max(15.0, 0.1 * args.duration)
        return _summary(args, stack, traffic, idaas, samples, done, elapsed, warmup)
    finally:
        for client in nodes.values():
            client.close()
        stack.close()


def _summary(
    args: argparse.Namespace,
    stack: ClusterStack,
    traffic: Traffic,
    idaas: Any,
    samples: list[dict[str, Any]],
    done: list[str],
    elapsed: float,
    warmup: float,
) -> dict[str, Any]:
    answers = traffic.answers
    kinds = outcomes(answers)
    checks = sum(n for k, n in kinds.items() if k.startswith("check "))
    flat = flatness(samples, warmup)
    return {
        "duration_s": round(elapsed),
        "target": {"signins_per_s": args.signins, "checks_per_s": args.signins * args.checks},
        "achieved": {
            "signin_attempts_per_s": round(sum(1 for a in answers if a.kind == "wx") / elapsed, 1),
            "signins_per_s": round(len(traffic.successes) / elapsed, 1),
            "checks_per_s": round(checks / elapsed, 1),
            "requests_per_s": round(len(traffic.answers) / elapsed, 1),
        },
        "faults": done,
        "flatness": flat,
        "outcomes": kinds,
        "undocumented": undocumented(traffic.answers)[:20],
        "lost_sessions": lost_sessions(stack, traffic.successes)[:20],
        "state_tokens_sent_twice": state_tokens_sent_twice(idaas),
        "samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds (SOAK_S)")
    parser.add_argument("--signins", type=float, default=10.0, help="new sign-ins a second")
    parser.add_argument("--checks", type=int, default=4, help="checks per sign-in")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--sample", type=float, default=3.0, help="seconds between samples")
    report = run_on_stack("soak", parser.parse_args(), run)
    print(json.dumps({k: v for k, v in report.items() if k != "samples"}, indent=2))
    flat = all(m["flat"] for m in report["flatness"].values())
    lost = something_lost(report)
    verdict = "ok" if flat and not lost else "FAILED" + (" (not flat)" if not flat else "")
    print(f"soak: {verdict}; {len(report['samples'])} samples in {OUT / 'soak.json'}")
    sys.exit(0 if verdict == "ok" else 1)


if __name__ == "__main__":
    main()
