"""The benchmark harness (bench/): what it leaves behind when it is stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# A harness run in miniature: the entry point's signal set-up, then a child under Procs.
RUN = """
import sys, time
from pathlib import Path
from bench.procs import Procs, exit_on_sigterm
exit_on_sigterm()
with Procs(Path(sys.argv[1])) as procs:
    print(procs._start("sleeper", ["sleep", "60"]).pid, flush=True)
    time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait() is missing


def test_sigterm_stops_what_the_harness_started(tmp_path: Path) -> None:
    """Python's default SIGTERM ends the process at once, and every stub, Redis, nginx and
    gunicorn the harness started kept running (seen: `kill` of a `make bench-workers`)."""
    harness = subprocess.Popen(
        [sys.executable, "-c", RUN, str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert harness.stdout is not None
        child = int(harness.stdout.readline())
        harness.send_signal(signal.SIGTERM)
        assert harness.wait(timeout=30) != 0
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child)
    finally:
        harness.kill()
        harness.wait()
        if "child" in locals() and _alive(child):
            os.kill(child, signal.SIGKILL)
