"""Every error, ours or Flask's, answered with the one envelope (the classes live in bff.errors)."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, current_app, has_request_context, jsonify, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from bff.errors import CODES, HTTP_CODES, INTERNAL, BffError, gateway_status
from bff.messages import language, localize
from bff.observability import current_request, note_outcome

log = logging.getLogger("bff.errors")


def request_language() -> str:
    """The language of the request's messages, read here, not from the parsed device (an error
    may come before it): ``X-L``; absent, ``Accept-Language``; unknown, ``DEFAULT_LANGUAGE``."""
    deployment = current_app.extensions.get("bff")
    default = deployment.settings.default_language if deployment is not None else "en"
    if not has_request_context():
        return default
    tag = request.headers.get("X-L")
    if tag:
        return language(tag) or default
    found = (language(value) for value, _ in request.accept_languages)
    return next((lang for lang in found if lang), default)


def envelope(
    status: int,
    code: str,
    message: str,
    *,
    errors: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    """The one error shape: ``{"error_code", "error_msg", "request_id"}`` (+ ``errors``).

    ``message`` is bff's English one; ``error_msg`` is it in the request's language
    (:mod:`bff.messages`; an IDaaS code's message goes out untouched).
    """
    record = current_request()
    body: dict[str, Any] = {
        "error_code": code,
        "error_msg": localize(code, message, request_language()),
        "request_id": record.request_id if record is not None else "",
    }
    if errors:
        body["errors"] = errors
    body.update(extra or {})
    note_outcome(code)
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
    if status not in HTTP_CODES:  # an HTTP status we never meant to answer: treat as internal
        return envelope(500, INTERNAL, CODES[INTERNAL][1])
    code, message = HTTP_CODES[status]
    allow = getattr(exc, "valid_methods", None)
    return envelope(status, code, message, headers={"Allow": ", ".join(allow)} if allow else None)


def _internal(exc: Exception) -> Response:
    # The exception's type and every frame (file:line:function), joined by the request_id, so
    # a 500 can be found; never its message or any value (either may quote a token, a password
    # or a URL with a secret).
    frames = [
        f"{'/'.join(f.filename.rsplit('/', 2)[-2:])}:{f.lineno}:{f.name}"
        for f in traceback.extract_tb(exc.__traceback__)
    ]
    log.error("unhandled error", extra={"error_type": type(exc).__name__, "frames": frames})
    return envelope(500, INTERNAL, CODES[INTERNAL][1])


def gateway_refusal(exc: Exception) -> Response:
    """A forward-auth refusal: the envelope ``exc`` earns anywhere else, in the status a gateway
    understands (401: sign in again; else 403), the code also in ``X-BFF-Error``."""
    if isinstance(exc, BffError):
        resp, code = _from_bff(exc), exc.code
    elif isinstance(exc, HTTPException) and (exc.code or 500) in HTTP_CODES:
        resp, code = _from_http(exc), HTTP_CODES[exc.code or 500][0]
    else:
        resp, code = _internal(exc), INTERNAL
    resp.status_code = gateway_status(code)
    resp.headers["X-BFF-Error"] = code
    if resp.status_code == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="bff"'
    return resp


def register_error_handlers(app: Flask) -> None:
    """Route every error, ours or Flask's, through the one envelope."""
    app.register_error_handler(BffError, _from_bff)
    app.register_error_handler(ValidationError, _from_validation)
    app.register_error_handler(HTTPException, _from_http)
    app.register_error_handler(Exception, _internal)
