"""A real nginx (Debian's nginx-light: auth_request) running config/nginx/forward-auth.conf in
front of bff, and the company API it guards: an upstream that echoes what it received."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parent.parent.parent
CONFIG = ROOT / "config" / "nginx" / "forward-auth.conf"
NGINX_HELP = "apt-get install nginx-light (auth_request); .ci/run installs it"


def nginx_binary() -> str:
    """nginx's path; the calling test is skipped, saying why, without one."""
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        pytest.skip(f"nginx is not installed: the gateway tests run a real one ({NGINX_HELP})")
    return found


class EchoUpstream:
    """The company's API: answers 200 with the method, path and headers it received."""

    def __init__(self) -> None:
        self.received: list[dict[str, object]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = {"method": self.command, "path": self.path, "headers": dict(self.headers)}
                outer.received.append({**seen, "body": body.decode(errors="replace")})
                data = json.dumps(seen).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Nginx:
    """nginx in the foreground of a temporary prefix, the shipped configuration filled in."""

    def __init__(self, bff: str | list[str], upstream: str, workers: int = 1) -> None:
        self.binary = nginx_binary()
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.dir = Path(tempfile.mkdtemp(prefix="bff-nginx-"))
        server = CONFIG.read_text()
        if not isinstance(bff, str):  # several instances: one `server` line each
            bff = "; server ".join(bff)
        for name, value in (("@BFF@", bff), ("@UPSTREAM@", upstream)):
            server = server.replace(name, value)
        server = server.replace("@LISTEN@", f"127.0.0.1:{self.port}")
        (self.dir / "logs").mkdir()
        (self.dir / "nginx.conf").write_text(
            f"worker_processes {workers};\n"
            "daemon off;\n"
            f"pid {self.dir}/nginx.pid;\n"
            f"error_log {self.dir}/logs/error.log warn;\n"
            "events { worker_connections 1024; }\n"
            "http {\n"
            f"  access_log off;\n"
            f"  client_body_temp_path {self.dir}/body;\n"
            f"  proxy_temp_path {self.dir}/proxy;\n"
            f"  fastcgi_temp_path {self.dir}/fastcgi;\n"
            f"  uwsgi_temp_path {self.dir}/uwsgi;\n"
            f"  scgi_temp_path {self.dir}/scgi;\n"
            f"{server}\n"
            "}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Nginx:
        conf = str(self.dir / "nginx.conf")
        test = subprocess.run(
            [self.binary, "-t", "-p", str(self.dir), "-c", conf],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert test.returncode == 0, test.stderr
        self.proc = subprocess.Popen(
            [self.binary, "-p", str(self.dir), "-c", conf],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                requests.get(self.base + "/_nothing", timeout=2)
                return self
            except requests.ConnectionError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx did not start: " + self.error_log())

    def error_log(self) -> str:
        path = self.dir / "logs" / "error.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)
