"""request_id, one JSON log line per request, and the SPEC §10 metrics."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import sys
import time
import uuid

from flask import Flask, Response, current_app, g, has_request_context, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from pythonjsonlogger.json import JsonFormatter

from bff.settings import Settings

log = logging.getLogger("bff.request")

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REQUESTS = Counter("bff_requests_total", "Requests answered", ["route", "status"])
REQUEST_DURATION = Histogram(
    "bff_request_duration_seconds", "Request duration", ["route"], buckets=_LATENCY_BUCKETS
)
UPSTREAM_REQUESTS = Counter(
    "bff_upstream_requests_total", "Calls to the IDaaS and WeChat", ["upstream", "outcome"]
)
UPSTREAM_DURATION = Histogram(
    "bff_upstream_duration_seconds",
    "Upstream call duration",
    ["upstream"],
    buckets=_LATENCY_BUCKETS,
)
LOGIN_OUTCOMES = Counter("bff_login_outcomes_total", "Login and bind outcomes", ["status"])
SESSION_STORE_ERRORS = Counter("bff_session_store_errors_total", "Failed session-store calls")
LOCK_LEASES_LOST = Counter(
    "bff_lock_leases_lost_total", "Per-openid locks whose lease ran out before release"
)
RATE_LIMITER_FAIL_OPEN = Counter(
    "bff_rate_limiter_fail_open_total", "Requests let through because the limiter was down"
)

_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


# ----------------------------------------------------------------- logging


class _RequestContext(logging.Filter):
    """Every line logged during a request carries its request_id and hashed openid."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            for name in ("request_id", "openid_hash"):
                if getattr(record, name, None) is None:
                    setattr(record, name, g.get(name))
        return True


def configure_logging(settings: Settings) -> None:
    """JSON lines on stdout for every ``bff.*`` logger (idempotent)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(_RequestContext())
    handler.setFormatter(
        JsonFormatter(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
        )
    )
    root = logging.getLogger("bff")
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    root.propagate = False


def log_hash_key(settings: Settings) -> bytes:
    """``LOG_HASH_KEY``, or one derived from the configured secrets (alike on every instance)."""
    if settings.log_hash_key:
        return settings.log_hash_key.encode()
    material = "\0".join(
        s or "" for s in (settings.idaas_client_id, settings.wechat_secret, settings.gateway_secret)
    )
    return hashlib.sha256(b"bff-log-hash\0" + material.encode()).digest()


def hash_openid(openid: str) -> str:
    """A short keyed hash of an openid: the same openid hashes alike, and cannot be reversed."""
    key: bytes = current_app.config["BFF_LOG_HASH_KEY"]
    return hmac.new(key, openid.encode(), hashlib.sha256).hexdigest()[:16]


def note_openid(openid: str) -> None:
    """Attach the caller's hashed openid to this request's log line."""
    g.openid_hash = hash_openid(openid)


def note_outcome(outcome: str) -> None:
    g.outcome = outcome


# ----------------------------------------------------------------- upstream timing


def record_upstream(upstream: str, outcome: str, seconds: float) -> None:
    """Count one upstream call and add its time to this request's ``upstream_ms``."""
    UPSTREAM_REQUESTS.labels(upstream, outcome).inc()
    UPSTREAM_DURATION.labels(upstream).observe(seconds)
    if has_request_context():
        g.upstream_ms = g.get("upstream_ms", 0.0) + seconds * 1000


# ----------------------------------------------------------------- request hooks


def _route() -> str:
    rule = request.url_rule
    return rule.rule if rule is not None else "unmatched"  # no raw paths: bounded labels


def _start() -> None:
    g.started = time.perf_counter()
    g.upstream_ms = 0.0
    offered = request.headers.get("X-Request-ID", "")
    g.request_id = offered if _SANE_REQUEST_ID.match(offered) else uuid.uuid4().hex


def _finish(resp: Response) -> Response:
    resp.headers["X-Request-ID"] = g.get("request_id", "")
    elapsed = time.perf_counter() - g.get("started", time.perf_counter())
    route = _route()
    REQUESTS.labels(route, str(resp.status_code)).inc()
    REQUEST_DURATION.labels(route).observe(elapsed)
    log.info(
        "request",
        extra={
            "request_id": g.get("request_id"),
            "method": request.method,
            "route": route,
            "status": resp.status_code,
            "duration_ms": round(elapsed * 1000, 2),
            "upstream_ms": round(g.get("upstream_ms", 0.0), 2),
            "outcome": g.get("outcome"),
            "openid_hash": g.get("openid_hash"),
        },
    )
    return resp


def register_request_hooks(app: Flask) -> None:
    """First of all hooks: later logs and errors carry the request_id."""
    app.before_request(_start)
    app.after_request(_finish)


def metrics_response() -> Response:
    """Prometheus text; aggregated over gunicorn workers when multiprocess mode is on."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = REGISTRY
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
