"""Production gunicorn settings; every knob is an environment variable with a sane default.

Run:  gunicorn -c config/gunicorn.conf.py 'bff:create_app()'
The master validates the settings before any worker forks: a bad value is one line and exit 1.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from typing import Any

from gunicorn import util as gunicorn_util  # type: ignore[import-untyped]
from gunicorn.glogging import Logger  # type: ignore[import-untyped]

from bff.errors import SettingsError
from bff.server_settings import load_server_settings, remember, remembered

if os.environ.get("BFF_ENV", "").strip() == "development":
    # Development defaults (public secrets, plain-http upstreams) exist only under
    # `python -m bff`; this is the production entry point.
    print(  # noqa: T201
        "bff: configuration error: BFF_ENV=development is for `python -m bff` only; "
        "the production entry point (gunicorn) needs BFF_ENV=production",
        file=sys.stderr,
    )
    sys.exit(1)
try:
    _settings, _server = load_server_settings()  # bff's variables and the GUNICORN_* ones
    remember(_settings, _server)  # the workers forked from now on build their app from it
except SettingsError as exc:
    _previous = remembered()
    if _previous is None:  # at start: one line, exit 1, no worker forks
        print(f"bff: configuration error: {exc}", file=sys.stderr)  # noqa: T201
        sys.exit(1)
    # A SIGHUP (this file runs again) with a bad BFF_APPS_FILE: the apps that run keep running,
    # and the new workers get the configuration that last validated.
    print(  # noqa: T201
        json.dumps(
            {
                "level": "ERROR",
                "logger": "bff.config",
                "message": "configuration error on reload: the running configuration stays",
                "error": str(exc),
            }
        ),
        file=sys.stderr,
        flush=True,
    )
    _settings, _server = _previous

# Metrics from every worker, aggregated on scrape (prometheus-client multiprocess mode).
_default_metrics_dir = os.path.join(tempfile.gettempdir(), "bff-metrics")
_metrics_dir = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", _default_metrics_dir)
os.makedirs(_metrics_dir, exist_ok=True)

bind = _server.bind
workers = _server.workers
# I/O-bound: each request mostly waits on the IDaaS. gthread: threads per worker; gevent:
# greenlets per worker (worker_connections). docs/performance.md measures both.
worker_class = _server.worker_class
threads = _server.threads
worker_connections = _server.worker_connections
# Above what one request can take (the lock wait, the IDaaS call and a JWKS fetch, each call
# under its connect + read deadline), so bff's own 504 fires first.
timeout = _server.timeout
graceful_timeout = _server.graceful_timeout  # SIGTERM: drain, then finish what is in flight
keepalive = _server.keepalive
max_requests = _server.max_requests
max_requests_jitter = _server.max_requests_jitter
limit_request_field_size = 8190  # huge headers: 400 from gunicorn before they reach us
preload_app = False  # each worker builds its own Redis and HTTP pools: nothing shared across fork
accesslog = None  # bff logs its own JSON request line


class _NoAccessLog(Logger):  # type: ignore[misc]
    """gunicorn's logger without its access line: bff writes its own JSON request line.

    With ``logconfig_dict`` set, gunicorn would otherwise build the access-log atoms of every
    request (headers, times) and hand them to a logger with no handler: measured with py-spy
    under `make bench` (docs/performance.md), for nothing.
    """

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        return None


logger_class = _NoAccessLog
errorlog = "-"
loglevel = _server.log_level
# gunicorn's own lines (boot, worker exits) as JSON too: one object per line on stdout/stderr.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "bff.observability.JsonLines"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"handlers": ["stderr"], "level": "WARNING"},
    "loggers": {
        "gunicorn.error": {"handlers": ["stderr"], "level": loglevel.upper(), "propagate": False},
        "gunicorn.access": {"handlers": [], "propagate": False},
    },
}
# gunicorn trusts no forwarding header from anyone: ProxyFix (TRUSTED_PROXY_COUNT) alone picks
# the client IP, and a client must never rewrite SCRIPT_NAME/PATH_INFO (e.g. to reach /metrics).
forwarded_allow_ips = ""
forwarder_headers = ""
proc_name = "bff"
# gunicorn 25.1+ listens on a control socket by default (worker counts, reload, shutdown);
# bff has no use for it, and nothing local should steer the server through it.
control_socket_disable = True


def _json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's own refusals (bad request line, CR/LF or oversized headers: 400/414/431, and
    its 500) in bff's one error envelope instead of an HTML page. ``mesg`` may quote the
    offending header, so it is not echoed."""
    code = "BFF.INTERNAL" if status_int >= 500 else "BFF.VALIDATION"
    request_id = uuid.uuid4().hex  # the request was not parsed: no X-Request-ID to reuse
    body = json.dumps(
        {"error_code": code, "error_msg": reason.lower(), "request_id": request_id}
    ).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"X-Request-ID: {request_id}\r\nCache-Control: no-store\r\n\r\n"
    )
    gunicorn_util.write_nonblock(sock, head.encode("latin-1") + body)


gunicorn_util.write_error = _json_error


def on_starting(server: Any) -> None:
    """Once, in the master, before any worker (not on a SIGHUP reload): drop the metric files
    of a previous run so its counters are not added in. Only our *.db files are removed."""
    for name in os.listdir(_metrics_dir):
        if name.endswith(".db"):
            os.remove(os.path.join(_metrics_dir, name))


_STOPS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
_stopped_while_booting: list[int] = []


def post_fork(server: Any, worker: Any) -> None:
    """In a new worker, first thing: until the worker installs its own signal handlers (after
    gevent's monkey-patching), a stop signal would run the master's handler, inherited, which
    only queues it in this process's copy of the master: the worker would ignore the master's
    SIGTERM and serve on until SIGKILLed after the whole graceful timeout. Note it instead."""
    for sig in _STOPS:
        signal.signal(sig, lambda sig, frame: _stopped_while_booting.append(sig))


def post_worker_init(worker: Any) -> None:
    """A stop signal that came while the worker booted stops it now (it has served nothing).

    Else SIGTERM first drains: for GUNICORN_DRAIN_S the worker keeps serving while /readyz
    answers 503 (the load balancer stops sending), then it stops accepting and finishes what is
    in flight (gunicorn's own SIGTERM handling), all within GUNICORN_GRACEFUL_TIMEOUT."""
    if _stopped_while_booting:
        worker.alive = False  # its run loop returns at once: "Worker exiting"
        return
    if _server.drain_s <= 0:
        return
    from bff.web.views.ops import start_draining

    stop = worker.handle_exit

    def drain_then_stop(sig: int, frame: Any) -> None:
        if start_draining():  # the first SIGTERM only
            time.sleep(_server.drain_s)
            stop(sig, frame)

    def on_sigterm(sig: int, frame: Any) -> None:
        # Out of the signal handler: gevent forbids blocking calls there (gunicorn's own
        # gevent worker spawns its SIGQUIT handling the same way).
        if "ggevent" in type(worker).__module__:  # the class running, -k on the command line too
            import gevent

            gevent.spawn(drain_then_stop, sig, frame)
        else:
            threading.Thread(target=drain_then_stop, args=(sig, frame), daemon=True).start()

    signal.signal(signal.SIGTERM, on_sigterm)


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges from the multiprocess metrics."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
