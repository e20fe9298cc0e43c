"""bff under its production entry point, gunicorn with config/gunicorn.conf.py, on a spare port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from tests.support.app import CLIENT_ID
from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parent.parent.parent


class Gunicorn:
    def __init__(
        self, env: dict[str, str], log_path: Path, config: str = "config/gunicorn.conf.py"
    ) -> None:
        self.config = config
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "GUNICORN_WORKERS": "2",
            "GUNICORN_THREADS": "4",
            "PROMETHEUS_MULTIPROC_DIR": str(log_path.parent / "metrics"),
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Gunicorn:
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [gunicorn, "-c", self.config, "bff:create_app()"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()  # never leave a server behind, whatever went wrong
            raise
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(self.base + "/healthz", timeout=5).status_code == 200:
                    return
            except requests.RequestException:  # not listening yet, or a worker still booting
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not start:\n" + self.log_path.read_text())

    def worker_pids(self) -> list[int]:
        assert self.proc is not None
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.proc.pid)],
            capture_output=True,
            text=True,
            check=False,
        )
        return [int(p) for p in out.stdout.split()]

    def reload(self, workers: int = 2) -> None:
        """SIGHUP, as an operator reloads, then wait until every worker is a new one (each
        built from the configuration the master read again)."""
        assert self.proc is not None
        old = set(self.worker_pids())
        os.kill(self.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pids = set(self.worker_pids())
            if len(pids) == workers and not pids & old:
                return
            time.sleep(0.2)
        raise AssertionError("the workers were not replaced:\n" + self.log_path.read_text()[-3000:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def gunicorn_env(idaas: Any, wechat: Any, redis_url: str, prefix: str, **extra: str) -> dict:
    return {
        "BFF_ENV": "production",
        "IDAAS_BASE_URL": idaas.base_url,
        "IDAAS_CLIENT_ID": CLIENT_ID,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
        "WECHAT_APPID": "wx-sim-appid",
        "WECHAT_SECRET": "wx-sim-secret",
        "WECHAT_API_BASE": wechat.base_url,
        "LOG_LEVEL": "DEBUG",
        "RATE_LIMIT_LOGIN": "100000/minute",
        "RATE_LIMIT_BIND": "100000/minute",
        "RATE_LIMIT_CODES": "100000/minute",
        **extra,
    }


def start_gunicorn(log_dir: Path, env: dict[str, str]) -> Gunicorn:
    return Gunicorn(env, log_dir / "server.log").start()


def load_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """config/gunicorn.conf.py loaded as gunicorn's master loads it, with only ``env``."""
    return subprocess.run(
        [sys.executable, "-c", "import runpy; runpy.run_path('config/gunicorn.conf.py')"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def answered_within(call: Any, seconds: float) -> Any:
    """``call()``'s answer, or None if it was still running after ``seconds`` (it hung)."""
    import threading

    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    thread.join(timeout=seconds)
    return result[0] if result else None
