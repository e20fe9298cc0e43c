"""The BffError family and the one error envelope (SPEC §7)."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, g, jsonify
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

log = logging.getLogger("bff.errors")

# Flask/werkzeug statuses we answer ourselves, mapped to our codes.
_HTTP_CODES = {
    400: "BFF.VALIDATION",
    401: "BFF.UNAUTHENTICATED",
    404: "BFF.NOT_FOUND",
    405: "BFF.METHOD_NOT_ALLOWED",
    413: "BFF.PAYLOAD_TOO_LARGE",
    415: "BFF.UNSUPPORTED_MEDIA_TYPE",
    431: "BFF.VALIDATION",
}
_HTTP_MESSAGES = {
    400: "the request is malformed",
    404: "no such endpoint",
    405: "method not allowed on this endpoint",
    413: "the request body is too large",
    415: "the request body must be application/json",
    431: "the request headers are too large",
}


class BffError(Exception):
    """An error answered with the envelope: HTTP status, our (or the IDaaS's) code, a message."""

    status = 500
    code = "BFF.INTERNAL"
    message = "internal error"

    def __init__(
        self,
        status: int | None = None,
        code: str | None = None,
        message: str | None = None,
        *,
        errors: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status or self.status
        self.code = code or self.code
        self.message = message or self.message
        self.errors = errors
        self.headers = dict(headers or {})
        super().__init__(self.code)

    @property
    def outcome(self) -> str:
        """What the request log records as the outcome."""
        return self.code


class BadRequest(BffError):
    status, code, message = 400, "BFF.VALIDATION", "the request is invalid"


class Unauthenticated(BffError):
    status, code, message = 401, "BFF.UNAUTHENTICATED", "missing or invalid credentials"


class NotFound(BffError):
    status, code, message = 404, "BFF.NOT_FOUND", "no such endpoint"


class NoPendingBind(BffError):
    status, code = 409, "BFF.NO_PENDING_BIND"
    message = "no bind is pending for this WeChat account; start again with login"


class SessionExpired(BffError):
    status, code, message = 401, "BFF.SESSION_EXPIRED", "the session has expired; log in again"


class SessionStoreUnavailable(BffError):
    status, code, message = 503, "BFF.SESSION_STORE_UNAVAILABLE", "the session store is unavailable"


class RateLimited(BffError):
    status, code, message = 429, "BFF.RATE_LIMITED", "too many requests; retry later"


class UpstreamError(BffError):
    """An upstream (IDaaS or WeChat) failure, already mapped to our status and code."""

    status, code, message = 502, "BFF.UPSTREAM_BAD_RESPONSE", "the identity provider answered badly"


UPSTREAM_MESSAGES = {
    "BFF.UPSTREAM_BAD_RESPONSE": "the identity provider answered badly",
    "BFF.UPSTREAM_TIMEOUT": "the identity provider did not answer in time",
    "BFF.UPSTREAM_UNAVAILABLE": "the identity provider is unavailable",
}


def upstream_error(status: int, code: str) -> UpstreamError:
    """A mapped upstream failure with its standard message."""
    return UpstreamError(status, code, UPSTREAM_MESSAGES[code])


def envelope(
    status: int,
    code: str,
    message: str,
    *,
    errors: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    """The one error shape: ``{"error_code", "error_msg", "request_id"}`` (+ ``errors``)."""
    body: dict[str, Any] = {
        "error_code": code,
        "error_msg": message,
        "request_id": g.get("request_id", ""),
    }
    if errors:
        body["errors"] = errors
    body.update(extra or {})
    g.outcome = code
    resp = jsonify(body)
    resp.status_code = status
    resp.headers.update(headers or {})
    return resp


def _from_bff(exc: BffError) -> Response:
    return envelope(exc.status, exc.code, exc.message, errors=exc.errors, headers=exc.headers)


def _from_validation(exc: ValidationError) -> Response:
    messages = exc.normalized_messages()  # type: ignore[no-untyped-call]
    return envelope(400, "BFF.VALIDATION", "the request is invalid", errors=messages)


def _from_http(exc: HTTPException) -> Response:
    status = exc.code or 500
    code = _HTTP_CODES.get(status)
    if code is None:  # an HTTP status we never meant to answer: treat as internal
        return envelope(500, "BFF.INTERNAL", "internal error")
    allow = getattr(exc, "valid_methods", None)
    message = _HTTP_MESSAGES.get(status, "the request is invalid")
    return envelope(status, code, message, headers={"Allow": ", ".join(allow)} if allow else None)


def _internal(exc: Exception) -> Response:
    # No stack trace and no exception message in the log (SPEC §7: a message may quote a token
    # or a URL with a secret): the type and where it was raised, joined by the request_id.
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else None
    log.error("unhandled error", extra={"error_type": type(exc).__name__, "where": where})
    return envelope(500, "BFF.INTERNAL", "internal error")


def register_error_handlers(app: Flask) -> None:
    """Route every error, ours or Flask's, through the one envelope."""
    app.register_error_handler(BffError, _from_bff)
    app.register_error_handler(ValidationError, _from_validation)
    app.register_error_handler(HTTPException, _from_http)
    app.register_error_handler(Exception, _internal)
