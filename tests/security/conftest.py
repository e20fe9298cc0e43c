"""The security suite's figures, printed in the terminal summary (docs/security.md quotes them)."""

from __future__ import annotations

import os
from typing import Any

from tests.support.figures import FIGURES

LINES = [
    (
        "schemathesis_cases",
        "schemathesis: {schemathesis_cases} cases with Redis up, 5xx among them:"
        " {schemathesis_5xx}; {schemathesis_cases_redis_down} cases with Redis down",
    ),
    (
        "load_requests",
        "faults under load: {load_requests} requests, {faults_injected} faults injected,"
        " {invariant_violations} invariant violations",
    ),
    (
        "leak_scans",
        "no leaks: {leak_scans} log lines and responses scanned for {leak_secrets} secrets,"
        " {leak_hits} hits",
    ),
]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    shown = [line.format_map(FIGURES) for key, line in LINES if key in FIGURES]
    if shown:
        terminalreporter.section("security suite")
        for line in shown:
            terminalreporter.write_line(line)


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    """`make fuzz` sets BFF_FUZZ_MIN_CASES: fewer cases in either condition fails the run."""
    wanted = int(os.environ.get("BFF_FUZZ_MIN_CASES", "0"))
    ran = min(FIGURES["schemathesis_cases"], FIGURES["schemathesis_cases_redis_down"])
    if wanted and ran < wanted:
        print(f"\nfuzz: only {ran} cases in one condition, {wanted} wanted")  # noqa: T201
        session.exitstatus = 1
