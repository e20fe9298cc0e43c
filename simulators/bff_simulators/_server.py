"""Shared plumbing for the bundled upstream simulators: threaded HTTP server, recording, faults."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import signal
import socket
import struct
import sys
import threading
import time
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

from ._types import (
    CONTROL_PREFIX,
    FAULT_KINDS,
    OVERSIZE_BYTES,
    Fault,
    Handler,
    RecordedRequest,
    Reply,
    Response,
    check_fault,
    control_body,
    control_error,
    json_response,
    parse_json,
)

__all__ = [
    "FAULT_KINDS",
    "Fault",
    "Handler",
    "RecordedRequest",
    "Reply",
    "Response",
    "SimServer",
    "cli_parser",
    "control_body",
    "control_error",
    "json_response",
    "serve_until_signalled",
]
logger = logging.getLogger(__name__)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default listen backlog is 5: under a few dozen concurrent callers the kernel
    # drops SYNs and bff sees connect timeouts the real IDaaS would never cause.
    request_queue_size = 128
    sim: SimServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (e.g. timed out during a latency fault) is not an error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            logger.exception("simulator connection failed")


class _RequestHandler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.0"
    server_version = "upstream-sim/1"

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: no per-request logging."""

    def _serve(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        body = self.rfile.read(length) if length > 0 else b""
        response = self.server.sim.handle_request(self.command, self.path, self.headers, body)
        if response is None:
            self._reset_connection()
            return
        self.send_response(response.status)
        if response.content_type:
            self.send_header("Content-Type", response.content_type)
        if response.sized:
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if response.drip_s <= 0:
            self.wfile.write(response.body)
            return
        for i in range(len(response.body)):  # a slow-loris upstream: every byte in time
            self.wfile.write(response.body[i : i + 1])
            self.wfile.flush()
            time.sleep(response.drip_s)

    def _reset_connection(self) -> None:
        """Abort with a TCP RST: linger (1, 0), then close without writing anything."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # drop the makefile reference so close() really closes the socket
        self.connection.close()


class SimServer:
    """A real HTTP server on a real TCP socket, served from a daemon thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.lock = threading.RLock()
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self._routes: dict[tuple[str, str], Handler] = {}
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.route("POST", "/_sim/faults", self._http_add_fault)
        self.route("DELETE", "/_sim/faults", self._http_clear_faults)
        self.route("POST", "/_sim/reset", self._http_reset)

    # lifecycle -----------------------------------------------------------------------------
    def start(self) -> Self:
        """Bind (port 0: an ephemeral port, kept for later restarts) and serve in a thread."""
        if self._httpd is not None:
            return self
        httpd = _HTTPServer((self.host, self.port), _RequestHandler)
        httpd.sim = self
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"{type(self).__name__}:{self.port}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket (idempotent)."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def running(self) -> bool:
        """True while the server is serving."""
        return self._httpd is not None

    @property
    def base_url(self) -> str:
        """`http://HOST:PORT` of the running server."""
        if self.port == 0:
            raise RuntimeError("simulator not started")
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # routes and state ----------------------------------------------------------------------
    def route(self, method: str, path: str, handler: Handler) -> None:
        """Register `handler` for `method path` (exact path match)."""
        self._routes[(method.upper(), path)] = handler

    def reset_state(self) -> None:
        """Forget recorded requests and faults; subclasses also reset their own state."""
        with self.lock:
            self.requests.clear()
            self.faults.clear()

    def add_fault(
        self, kind: str, path: str | None = None, count: int | None = 1, seconds: float = 0.0
    ) -> None:
        """Script a fault for the next `count` matching requests (`path=None`: any path).

        `seconds` delays the fault's effect (for `latency`, then the request is answered).
        """
        check_fault(kind, count, seconds)
        with self.lock:
            self.faults.append(Fault(kind, path, count, float(seconds)))

    def clear_faults(self) -> None:
        """Remove every scripted fault."""
        with self.lock:
            self.faults.clear()

    def fault_status500(self) -> Response:
        """The answer of a `status500` fault (subclasses override)."""
        return Response(500, b"Internal Server Error", "text/plain")

    def fault_status429(self) -> Response:
        """The answer of a `status429` fault, throttled (subclasses override)."""
        return Response(429, b"Too Many Requests", "text/plain")

    # request handling ----------------------------------------------------------------------
    def handle_request(
        self, method: str, raw_path: str, headers: Message, body: bytes
    ) -> Response | None:
        """Record, apply faults, route. None means: reset the connection."""
        split = urlsplit(raw_path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        req = RecordedRequest(method, split.path, query, headers, body, parse_json(body))
        if req.path.startswith(CONTROL_PREFIX):
            return self._dispatch(req)
        with self.lock:
            self.requests.append(req)
        fault = self._take_fault(req.path)
        if fault is None:
            return self._dispatch(req)
        if fault.kind == "drip":
            return dataclasses.replace(self._dispatch(req), drip_s=fault.seconds or 1.0)
        if fault.kind == "oversize":
            return _oversize(self._dispatch(req))
        if fault.seconds > 0:
            time.sleep(fault.seconds)
        if fault.kind == "reset":
            return None
        if fault.kind == "latency":
            return self._dispatch(req)
        return self._fault_response(fault.kind)

    def _take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.path is None or fault.path == path:
                    if fault.count is not None:
                        fault.count -= 1
                        if fault.count <= 0:
                            self.faults.remove(fault)
                    return fault
        return None

    def _fault_response(self, kind: str) -> Response:
        canned = {
            "bad_gateway": Response(
                502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"
            ),
            "garbage": Response(200, b"<html>not json", "application/json"),
            "malformed": json_response({"hello": "world"}),
        }
        if kind == "status429":
            return self.fault_status429()
        return canned.get(kind) or self.fault_status500()

    def _dispatch(self, req: RecordedRequest) -> Response:
        handler = self._routes.get((req.method, req.path))
        if handler is None:
            if any(path == req.path for _, path in self._routes):
                return json_response({"error": "method not allowed"}, 405)
            return json_response({"error": "not found"}, 404)
        try:
            return handler(req)
        except Reply as reply:
            return reply.response
        except Exception:
            logger.exception("simulator handler failed: %s %s", req.method, req.path)
            return Response(500, b"simulator internal error", "text/plain")

    # control endpoints ---------------------------------------------------------------------
    def _http_add_fault(self, req: RecordedRequest) -> Response:
        body = control_body(req)
        try:
            self.add_fault(
                str(body.get("kind")),
                body.get("path"),
                body.get("count", 1),
                body.get("seconds", 0.0),
            )
        except ValueError as exc:
            raise control_error(str(exc)) from None
        return json_response({"ok": True})

    def _http_clear_faults(self, req: RecordedRequest) -> Response:
        self.clear_faults()
        return json_response({"ok": True})

    def _http_reset(self, req: RecordedRequest) -> Response:
        self.reset_state()
        return json_response({"ok": True})


def _oversize(answer: Response) -> Response:
    """The answer, still valid JSON, padded to OVERSIZE_BYTES and sent without Content-Length."""
    try:
        obj = json.loads(answer.body)
    except ValueError:
        obj = {}
    obj = obj if isinstance(obj, dict) else {}
    obj["padding"] = "x" * OVERSIZE_BYTES
    return Response(answer.status, json.dumps(obj).encode(), answer.content_type, sized=False)


def cli_parser(description: str, default_port: int) -> argparse.ArgumentParser:
    """An argument parser with the common --host/--port options."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=default_port, help="port (0: ephemeral)")
    return parser


def serve_until_signalled(sim: SimServer) -> None:
    """Start `sim`, print its base URL, serve until SIGINT or SIGTERM."""
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    sim.start()
    print(sim.base_url, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
