"""The processes under test, each started on 127.0.0.1 and stopped by its pid.

:class:`Procs` is a context manager: every process started through it is stopped (SIGTERM,
then SIGKILL after a grace period) when the ``with`` block ends, also on error or Ctrl-C.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
GATEWAY_SECRET = "bench-gateway-secret-0123456789"  # noqa: S105 (a throwaway local secret)
CLIENT_ID = "bench-client"
KEY_PREFIX = "bffbench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (gunicorn and nginx workers)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if not found:
        raise RuntimeError(f"{name} is missing: run bench/setup.sh")
    return found


@dataclass
class Bff:
    proc: subprocess.Popen[bytes]
    port: int

    def workers(self) -> list[int]:
        return children(self.proc.pid)


class Procs:
    """Starts the stub, Redis, nginx and bff; stops every one of them on exit."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._procs: list[subprocess.Popen[bytes]] = []
        self._named: dict[str, int] = {}
        self._logs: list[IO[bytes]] = []

    def __enter__(self) -> Procs:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        for proc in reversed(self._procs):
            self.stop(proc)
        for log in self._logs:
            log.close()
        if ev is not None:  # say why: the tail of every log before the temp dir goes
            for path in sorted(self.workdir.glob("*.log")):
                tail = path.read_bytes()[-1500:].decode(errors="replace")
                print(f"--- {path.name} (tail)\n{tail}", file=sys.stderr)

    def _start(self, name: str, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 (closed in __exit__)
        self._logs.append(log)
        proc: subprocess.Popen[bytes] = subprocess.Popen(  # noqa: S603
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, **kwargs
        )
        self._procs.append(proc)
        self._named[name] = proc.pid
        return proc

    def pid_of(self, name: str) -> int:
        return self._named[name]

    def stop(self, proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc in self._procs:
            self._procs.remove(proc)

    def stub(self, latencies_ms: list[int]) -> dict[int, int]:
        """One stub process; latency (ms) → its port."""
        ports = {latency: free_port() for latency in latencies_ms}
        argv = [sys.executable, "-m", "bench.stub", "--client-id", CLIENT_ID]
        for latency, port in ports.items():
            argv += ["--listen", f"{latency}:{port}"]
        proc = self._start("stub", argv, cwd=ROOT)
        for port in ports.values():
            wait_for_port(port, proc)
        return ports

    def redis(self) -> int:
        port = free_port()
        argv = [tool("redis-server"), "--port", str(port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        wait_for_port(port, self._start("redis", argv))
        return port

    def nginx(self, upstreams: dict[int, int]) -> dict[int, int]:
        """nginx ``proxy_pass`` with a keep-alive upstream pool; latency → nginx port."""
        ports = {latency: free_port() for latency in upstreams}
        conf = self.workdir / "nginx.conf"
        (self.workdir / "nginx-temp").mkdir(exist_ok=True)
        conf.write_text(nginx_conf(self.workdir, {ports[k]: v for k, v in upstreams.items()}))
        argv = [tool("nginx"), "-p", str(self.workdir), "-c", str(conf), "-e", "stderr"]
        kwargs: dict[str, Any] = {}
        if os.geteuid() == 0:  # run it unprivileged: its own files belong to nobody
            nobody = pwd.getpwnam("nobody")
            for path in (self.workdir, conf, self.workdir / "nginx-temp"):
                os.chown(path, nobody.pw_uid, nobody.pw_gid)
            kwargs = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
        proc = self._start("nginx", argv, **kwargs)
        for port in ports.values():
            wait_for_port(port, proc)
        return ports

    def bff(self, idaas_port: int, redis_port: int, env: dict[str, str], whatif: str = "") -> Bff:
        """bff under config/gunicorn.conf.py (its production settings), on a loopback port.

        ``whatif``: patches from bench/whatif.py applied in each worker (experiments only).
        """
        port = free_port()
        metrics = self.workdir / f"metrics-{port}"
        full_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "BFF_ENV": "production",
            "IDAAS_BASE_URL": f"http://127.0.0.1:{idaas_port}",
            "IDAAS_CLIENT_ID": CLIENT_ID,
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "REDIS_KEY_PREFIX": KEY_PREFIX,
            "IDENTITY_SOURCE": "gateway",
            "GATEWAY_SECRET": GATEWAY_SECRET,
            # Every request comes from 127.0.0.1: the limiter still counts each login (same
            # Redis work as in production), but with limits no benchmark reaches.
            "RATE_LIMIT_LOGIN": "1000000000/minute",
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "GUNICORN_GRACEFUL_TIMEOUT": "5",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics),
            "BENCH_WHATIF": whatif,
            **env,
        }
        config = ROOT / "bench" / "whatif.py" if whatif else ROOT / "config" / "gunicorn.conf.py"
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        argv = [gunicorn, "-c", str(config), "bff:create_app()"]
        proc = self._start(f"bff-{port}", argv, cwd=ROOT, env=full_env)
        wait_for_port(port, proc)
        bff = Bff(proc, port)
        _wait_ready(port, proc)
        return bff


def _wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"bff exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as resp:  # noqa: S310
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("bff did not become ready")


def nginx_conf(workdir: Path, listen_to_upstream: dict[int, int]) -> str:
    servers = []
    for listen, upstream in listen_to_upstream.items():
        servers.append(
            f"""
    upstream stub{upstream} {{ server 127.0.0.1:{upstream}; keepalive 512; }}
    server {{
        listen 127.0.0.1:{listen} backlog=4096;
        location / {{
            proxy_pass http://stub{upstream};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}"""
        )
    temp = workdir / "nginx-temp"
    return f"""
daemon off;
worker_processes auto;
pid {workdir}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    keepalive_requests 100000;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
{"".join(servers)}
}}
"""
