"""The processes under test, each started on 127.0.0.1 and stopped by its pid.

:class:`Procs` is a context manager: every process started through it is stopped (SIGTERM,
then SIGKILL after a grace period) when the ``with`` block ends, also on error, Ctrl-C or SIGTERM
(:func:`exit_on_sigterm`, which ``bench.run`` installs first).
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from gunicorn import config as gunicorn_config  # type: ignore[import-untyped]

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


# The floor as the targets were set against it: gunicorn's gevent worker, 2 workers; idle
# keep-alive connections kept 5 s as bff's config does (gunicorn's default, 2 s, closes them
# sooner, and a request the load generator sends just then fails as a read error).
FLOOR_WORKER_ARGS = ("-w", "2", "-k", "gevent", "--worker-connections", "1000", "--keep-alive", "5")
# gunicorn ≥ 24 opens a control socket in ~/.gunicorn/ by default, one path shared by every
# gunicorn on the machine: ours (several at once) open none.
_NO_CONTROL = ("--no-control-socket",) if hasattr(gunicorn_config, "ControlSocketDisable") else ()
NOTABLE = re.compile(r"WARNING|ERROR|CRITICAL|Traceback|Warning:|Error:|Exception")


@dataclass
class App:
    """A gunicorn we started: bff or the floor (bench/floor.py)."""

    name: str  # "bff" or "floor"
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    worker_args: tuple[str, ...]  # on gunicorn's command line (they override the config file)

    def workers(self) -> list[int]:
        return children(self.proc.pid)

    def notable_lines(self, kinds: int = 5) -> dict[str, Any]:
        """Warnings, errors and tracebacks in its log: how many lines, and the commonest kinds
        (a JSON line by level, logger and message; any other line with its digits masked)."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return {"lines": 0, "kinds": {}}
        found: Counter[str] = Counter()
        for line in text.splitlines():
            if NOTABLE.search(line):
                found[_kind(line)] += 1
        return {"lines": sum(found.values()), "kinds": dict(found.most_common(kinds))}


def _kind(line: str) -> str:
    try:
        record = json.loads(line)
    except ValueError:
        record = None
    if isinstance(record, dict) and "message" in record:
        return f"{record.get('level', '?')} {record.get('logger', '?')}: {record['message']}"[:300]
    return re.sub(r"\d+", "N", line.strip())[:300]


def exit_on_sigterm() -> None:
    """SIGTERM and SIGHUP end a run as Ctrl-C does: the ``with`` blocks unwind and stop every
    process they started. (Python's default ends the process at once and leaves them running.)"""

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)


class Procs:
    """Starts the stub, Redis, nginx, the floor and bff; stops every one of them on exit."""

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
        servers = proxy_servers({ports[k]: v for k, v in upstreams.items()})
        self.nginx_servers(servers, list(ports.values()))
        return ports

    def nginx_servers(self, servers: str, ports: list[int]) -> int:
        """nginx running ``servers`` (``server``/``upstream`` blocks) until every one of
        ``ports`` listens; its master's pid."""
        conf = self.workdir / "nginx.conf"
        (self.workdir / "nginx-temp").mkdir(exist_ok=True)
        conf.write_text(nginx_conf(self.workdir, servers))
        argv = [tool("nginx"), "-p", str(self.workdir), "-c", str(conf), "-e", "stderr"]
        kwargs: dict[str, Any] = {}
        if os.geteuid() == 0:  # run it unprivileged: its own files belong to nobody
            nobody = pwd.getpwnam("nobody")
            for path in (self.workdir, conf, self.workdir / "nginx-temp"):
                os.chown(path, nobody.pw_uid, nobody.pw_gid)
            kwargs = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
        proc = self._start("nginx", argv, **kwargs)
        for port in ports:
            wait_for_port(port, proc)
        return proc.pid

    def _gunicorn(
        self, name: str, argv: list[str], env: dict[str, str], args: tuple[str, ...]
    ) -> App:
        port = int(env["GUNICORN_BIND"].rsplit(":", 1)[1])
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        full = [gunicorn, *argv[:-1], "-b", env["GUNICORN_BIND"], *_NO_CONTROL, *args, argv[-1]]
        proc = self._start(f"{name}-{port}", full, cwd=ROOT, env=env)
        app = App(name, proc, port, self.workdir / f"{name}-{port}.log", args)
        wait_for_port(port, proc)
        _wait_answering(port, proc, "/readyz" if name == "bff" else "/")
        return app

    def _env(self, idaas_port: int, redis_port: int) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "IDAAS_BASE_URL": f"http://127.0.0.1:{idaas_port}",
            "IDAAS_CLIENT_ID": CLIENT_ID,
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "REDIS_KEY_PREFIX": KEY_PREFIX,
            "GATEWAY_SECRET": GATEWAY_SECRET,
            "GUNICORN_BIND": f"127.0.0.1:{free_port()}",
        }

    def bff(
        self, idaas_port: int, redis_port: int, env: dict[str, str], args: tuple[str, ...] = ()
    ) -> App:
        """bff as production starts it: ``gunicorn -c config/gunicorn.conf.py 'bff:create_app()'``
        on a loopback port; ``args`` (e.g. ``-k gevent``) go on the command line after ``-c``."""
        full_env = self._env(idaas_port, redis_port)
        port = full_env["GUNICORN_BIND"].rsplit(":", 1)[1]
        full_env.update(
            {
                "BFF_ENV": "production",
                "IDENTITY_SOURCE": "gateway",
                # Every request comes from 127.0.0.1: the limiter still counts each login and
                # bind (same Redis work as in production), but with limits no benchmark reaches.
                "RATE_LIMIT_LOGIN": "1000000000/minute",
                "RATE_LIMIT_BIND": "1000000000/minute",
                "GUNICORN_GRACEFUL_TIMEOUT": "5",
                "GUNICORN_DRAIN_S": "0",  # stopped between steps: no draining
                "PROMETHEUS_MULTIPROC_DIR": str(self.workdir / f"metrics-{port}"),
                **env,
            }
        )
        config = str(ROOT / "config" / "gunicorn.conf.py")
        return self._gunicorn("bff", ["-c", config, "bff:create_app()"], full_env, args)

    def authfloor(self, redis_port: int) -> App:
        """bench/authfloor.py (the forward-auth check's floor) under gunicorn, FLOOR_WORKER_ARGS."""
        env = self._env(0, redis_port)
        argv = ["--graceful-timeout", "5", "bench.authfloor:app"]
        return self._gunicorn("authfloor", argv, env, FLOOR_WORKER_ARGS)

    def floor(self, idaas_port: int, redis_port: int, args: tuple[str, ...] = ()) -> App:
        """bench/floor.py under gunicorn: FLOOR_WORKER_ARGS, then ``args`` (later ones win)."""
        env = self._env(idaas_port, redis_port)
        argv = ["--graceful-timeout", "5", "bench.floor:app"]
        return self._gunicorn("floor", argv, env, (*FLOOR_WORKER_ARGS, *args))


def _wait_answering(port: int, proc: subprocess.Popen[bytes], path: str) -> None:
    """Until a worker answers ``path`` with anything but a 5xx (the floor has no /readyz: its
    404 is an answer)."""
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as resp:  # noqa: S310
                if resp.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{proc.args!r} did not answer {path}")


def proxy_servers(listen_to_upstream: dict[int, int]) -> str:
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
    return "".join(servers)


def nginx_conf(workdir: Path, servers: str) -> str:
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
{servers}
}}
"""
