"""Several instances, one store, faults: the long form of tests/gateway/test_instances_faults.py.

Run:  python -m bench.faults [--phase 45] [--threads 6]   (make faults: about 3-4 min)

Three bff instances (gunicorn, 2 workers each) on one Redis Cluster (three masters, a replica
each) behind nginx (config/nginx/forward-auth.conf, the three in one upstream), the IDaaS and
WeChat simulators in this process. ``--threads`` threads sign new users in, refresh and make
forward-auth checks through nginx, as fast as they are answered, for four phases of ``--phase``
seconds: all three instances; after one instance is SIGKILLed (master and workers); after one
Redis master is SIGKILLed (its replica takes over; the phase starts once the cluster is ok
again); and the same again (steady state on the survivors). Prints and writes
bench/out/faults.json: 2xx answers per second in each phase, what was answered, the invariants
(every answer documented, no session lost, no state_token sent twice). Exit 1 if one fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.procs import ROOT, exit_on_sigterm
from bff_simulators.idaas import IdaasSimulator
from bff_simulators.wechat import WeChatSimulator
from tests.support.app import CLIENT_ID, PASSWORD
from tests.support.cluster_stack import (
    ClusterStack,
    Traffic,
    lost_sessions,
    outcomes,
    state_tokens_sent_twice,
    throughput,
    undocumented,
)

OUT = ROOT / "bench" / "out"


def run(args: argparse.Namespace, tmp: Path, wechat: Any, idaas: Any) -> dict[str, Any]:
    idaas.add_user("alice", PASSWORD)
    stack = ClusterStack(tmp, idaas, wechat, "bfffaults").start()
    marks: dict[str, float] = {}
    try:
        traffic = Traffic(stack, threads=args.threads).start()
        time.sleep(3)  # warm-up: connections, the first JWKS fetch
        marks["three"] = time.monotonic()
        time.sleep(args.phase)
        marks["instance_killed"] = time.monotonic()
        stack.kill_instance(1)
        time.sleep(args.phase)
        marks["master_killed"] = time.monotonic()
        port = stack.kill_master()
        failover_s = stack.cluster.wait_ok(timeout=60)
        marks["failed_over"] = time.monotonic()
        time.sleep(2 * args.phase)
        marks["end"] = time.monotonic()
        traffic.finish()
        return _report(stack, traffic, idaas, marks, failover_s, port)
    finally:
        stack.close()


def _report(
    stack: ClusterStack,
    traffic: Traffic,
    idaas: Any,
    marks: dict[str, float],
    failover_s: float,
    port: int,
) -> dict[str, Any]:
    answers = traffic.answers
    windows = {
        "three_instances": ("three", "instance_killed"),
        "two_instances": ("instance_killed", "master_killed"),
        "during_failover": ("master_killed", "failed_over"),
        "two_instances_after_failover": ("failed_over", "end"),
    }
    per_s = {
        name: round(throughput(answers, marks[a], marks[b]), 1) for name, (a, b) in windows.items()
    }
    return {
        "ok_per_s": per_s,
        "failover_s": round(failover_s, 1),
        "killed_master_port": port,
        "answers": len(answers),
        "sign_ins": len(traffic.successes),
        "outcomes": outcomes(answers),
        "undocumented": undocumented(answers)[:20],
        "lost_sessions": lost_sessions(stack, traffic.successes)[:20],
        "state_tokens_sent_twice": state_tokens_sent_twice(idaas),
    }


Run = Callable[[argparse.Namespace, Path, Any, Any], dict[str, Any]]


def run_on_stack(name: str, args: argparse.Namespace, run: Run) -> dict[str, Any]:
    """``run`` with the simulators and a temporary directory of its own (every process it
    starts stopped at the end, also on SIGTERM); its report written to bench/out/{name}.json."""
    exit_on_sigterm()
    with (
        WeChatSimulator() as wechat,
        IdaasSimulator(client_id=CLIENT_ID, wechat_base_url=wechat.base_url) as idaas,
        tempfile.TemporaryDirectory(prefix=f"bff-{name}-") as tmp,
    ):
        report = run(args, Path(tmp), wechat, idaas)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def something_lost(report: dict[str, Any]) -> bool:
    """An answer not documented, a session lost, or a state token sent twice."""
    return bool(
        report["undocumented"] or report["lost_sessions"] or report["state_tokens_sent_twice"]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase", type=float, default=45.0, help="seconds per phase")
    parser.add_argument("--threads", type=int, default=6)
    report = run_on_stack("faults", parser.parse_args(), run)
    print(json.dumps(report, indent=2))
    bad = something_lost(report)
    print(f"faults: {'FAILED' if bad else 'ok'}; written to {OUT / 'faults.json'}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
