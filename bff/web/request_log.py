"""The request id, the one JSON log line per request and the request metrics."""

from __future__ import annotations

import logging
import re
import secrets
import time

from flask import Flask, Response, current_app, request

from bff.audit import drop_held, log_held
from bff.errors import SessionStoreUnavailable
from bff.observability import (
    begin_request,
    count_request,
    current_request,
    end_request,
)
from bff.web.identity import client_ip

log = logging.getLogger("bff.request")

_PROBES = frozenset({"/healthz", "/readyz", "/metrics"})
# Forward-auth runs once per call to the company's APIs, whose own access logs (and the
# gateway's) have the call: a check answered 200 is logged at DEBUG; a refusal, at INFO.
_CHECKS = frozenset({"/api/v1/auth", "/api/v1/auth/<path:original>"})
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
# W3C trace context, version 00: trace id and parent id not all zeros.
_TRACEPARENT = re.compile(r"^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")


def _route() -> str:
    rule = request.url_rule
    return rule.rule if rule is not None else "unmatched"  # no raw paths: bounded labels


def _start() -> None:
    offered = request.headers.get("X-Request-ID", "")
    traceparent = request.headers.get("traceparent", "")
    record = begin_request(
        offered if _SANE_REQUEST_ID.match(offered) else secrets.token_hex(16),
        traceparent if _TRACEPARENT.match(traceparent) else None,
    )
    record.client_ip = client_ip()  # the caller's, through the trusted proxies (audit: its network)


def _finish(resp: Response) -> Response:
    record = current_request()
    if record is None:  # a request that failed before _start ran
        record = begin_request(secrets.token_hex(16))
    resp.headers["X-Request-ID"] = record.request_id
    if record.held and resp.status_code < 400:  # events no pipeline confirmed: the answer does
        log_held()
    elif record.held:
        drop_held()
    if record.audit:  # audit records no pipeline of the request carried: one of their own
        _flush_audit()
    # Handles and id_tokens travel in answers: no cache (browser, proxy, CDN) keeps any.
    resp.headers["Cache-Control"] = "no-store"
    elapsed = time.perf_counter() - record.started
    route = _route()
    count_request(route, resp.status_code, elapsed, record.app)
    quiet = route in _PROBES or (route in _CHECKS and resp.status_code == 200)
    level = logging.DEBUG if quiet else logging.INFO  # probes, scrapes and passed checks: quiet
    if not log.isEnabledFor(level):
        return resp
    extra = {
        "request_id": record.request_id,
        "method": request.method,
        "route": route,
        "status": resp.status_code,
        "duration_ms": round(elapsed * 1000, 2),
        "upstream_ms": round(record.upstream_ms, 2),
        "outcome": record.outcome,
        "openid_hash": record.openid_hash,
        "app": record.app,
    }
    if record.openid_hash_previous is not None:  # during a rotation of LOG_HASH_KEY only
        extra["openid_hash_previous"] = record.openid_hash_previous
    if record.gateway_secret_previous:  # during a rotation of GATEWAY_SECRET only
        extra["gateway_secret_previous"] = True
    log.log(level, "request", extra=extra)
    return resp


def _flush_audit() -> None:
    deployment = current_app.extensions["bff"]
    try:
        next(iter(deployment.apps.values())).store.flush_audit()  # the apps share one Redis
    except SessionStoreUnavailable:
        log.warning("audit records not streamed: the session store is unavailable")


def _teardown(exc: BaseException | None) -> None:
    end_request()  # this thread (or greenlet) may serve another request next


def register_request_hooks(app: Flask) -> None:
    """First of all hooks: later logs and errors carry the request_id."""
    app.before_request(_start)
    app.after_request(_finish)
    app.teardown_request(_teardown)
