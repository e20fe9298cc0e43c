"""The development server (``python -m bff``, what ``make run`` starts) as a process on spare ports.

Only the process started here is stopped, by its pid. Its stdout is read by a thread, line by
line, so that the pipe never fills; stderr goes to a file.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import coverage
import requests

from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parent.parent.parent
PORT_VARS = ("BFF_DEV_PORT", "BFF_DEV_IDAAS_PORT", "BFF_DEV_WECHAT_PORT", "BFF_DEV_REDIS_PORT")
# Nothing of the caller's own configuration reaches the servers the tests start.
OWN_VARIABLES = re.compile(
    r"^(BFF_|IDAAS_|REDIS_|WECHAT_|GATEWAY_|RATE_LIMIT_|LOG_|CIRCUIT_|HANDLE_|GUNICORN_|PROMETHEUS_)"
)
# ``python -m bff`` as where bff_simulators (simulators/, a distribution of its own) is not
# installed: None in sys.modules makes every ``import bff_simulators`` fail as a missing one does.
WITHOUT_SIMULATORS = (
    "import runpy, sys; sys.modules['bff_simulators'] = None;"
    " runpy.run_module('bff', run_name='__main__', alter_sys=True)"
)


def free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


def port_is_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:port now (bound as the servers bind)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def coverage_env() -> dict[str, str]:
    """When this run measures coverage, what makes a child Python measure itself too: it writes
    a ``.coverage.*`` file beside ours, which pytest-cov combines at the end."""
    if coverage.Coverage.current() is None:
        return {}
    return {
        "COVERAGE_PROCESS_START": str(ROOT / "setup.cfg"),
        "COVERAGE_FILE": str(ROOT / f".coverage.devserver.{uuid.uuid4().hex}"),
    }


def wait_ready(base: str, describe: Callable[[], str], timeout: float = 60) -> None:
    """Until ``base``/readyz answers 200; else fail with ``describe()`` (the server's log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(base + "/readyz", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{base}/readyz did not answer 200 within {timeout} s:\n{describe()}")


class DevServer:
    """``python -m bff``; with ``make=True``, ``make run`` in its own process group, as a
    terminal runs it (Ctrl-C there is SIGINT to the whole group: :meth:`interrupt_group`);
    with ``simulators=False``, as where bff_simulators is not installed."""

    def __init__(
        self, log_dir: Path, *, make: bool = False, simulators: bool = True, **env: str
    ) -> None:
        self.make = make
        self.simulators = simulators
        ports = free_ports(len(PORT_VARS))
        self.ports = dict(zip(PORT_VARS, ports, strict=True))
        base = {k: v for k, v in os.environ.items() if not OWN_VARIABLES.match(k)}
        self.env = {
            **base,
            **coverage_env(),
            "BFF_ENV": "development",
            **{name: str(port) for name, port in self.ports.items()},
            **env,
        }
        self.base = f"http://127.0.0.1:{self.ports['BFF_DEV_PORT']}"
        self.stderr_path = log_dir / f"dev-server-{uuid.uuid4().hex[:8]}.err"
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.proc: subprocess.Popen[str] | None = None
        self.reader: threading.Thread | None = None

    def start(self) -> DevServer:
        command = [sys.executable, "-m", "bff"]
        if not self.simulators:
            command = [sys.executable, "-c", WITHOUT_SIMULATORS]
        if self.make:  # the installed .venv as it is: -o, never re-install from a test
            bindir = Path(sys.executable).parent
            command = ["make", "-o", ".venv/.installed", "run", f"BIN={bindir}"]
        with self.stderr_path.open("w") as stderr:
            self.proc = subprocess.Popen(
                command,
                cwd=ROOT,
                start_new_session=self.make,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        self.reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self.reader.start()
        return self

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next_line(self, timeout: float = 60) -> str | None:
        """The next stdout line; None at end of output."""
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output within {timeout} s:\n{self.stderr()}") from None

    def read_until(self, pattern: str, timeout: float = 60) -> list[str]:
        """Lines up to and including the first that matches ``pattern``."""
        deadline = time.monotonic() + timeout
        lines: list[str] = []
        while True:
            line = self.next_line(max(0.1, deadline - time.monotonic()))
            if line is None:
                raise AssertionError(f"output ended before {pattern!r}:\n{self.stderr()}")
            lines.append(line)
            if re.search(pattern, line):
                return lines

    def wait_ready(self, timeout: float = 60) -> None:
        wait_ready(self.base, self.stderr, timeout)

    def wait(self, timeout: float = 30) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def signal(self, signum: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def interrupt_group(self) -> None:
        """Ctrl-C in a terminal: SIGINT to every process of the foreground group."""
        assert self.proc is not None and self.make
        os.killpg(self.proc.pid, signal.SIGINT)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> None:
        """Kill the process if a test left it running (by its pid), and close the pipe."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            if self.make:  # make and the server it started: the group we made, by its id
                os.killpg(self.proc.pid, signal.SIGKILL)
            else:
                self.proc.kill()
            self.proc.wait(timeout=10)
        if self.reader is not None:
            self.reader.join(timeout=10)  # it ends at the end of the output
        if self.proc.stdout is not None:
            self.proc.stdout.close()
