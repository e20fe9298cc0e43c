"""Every error bff answers, and every code it uses: one home, no Flask.

A :class:`BffError` is answered with the one envelope ``{"error_code", "error_msg",
"request_id"}`` by the web layer (``bff/web/errors.py``). Our codes start with ``BFF.``; an IDaaS
business error keeps the IDaaS's own status and code (:class:`IdaasError`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Upstream failures (IDaaS and WeChat), mapped to our codes.
BAD_RESPONSE = "BFF.UPSTREAM_BAD_RESPONSE"
TIMEOUT = "BFF.UPSTREAM_TIMEOUT"
UNAVAILABLE = "BFF.UPSTREAM_UNAVAILABLE"
UPSTREAM_MESSAGES = {
    BAD_RESPONSE: "the identity provider answered badly",
    TIMEOUT: "the identity provider did not answer in time",
    UNAVAILABLE: "the identity provider is unavailable",
}

# IDaaS error codes, matched by suffix (``IDAAS.SDK.COMMON.1007`` on CIAM, ``SDK.COMMON.1007``
# on EIAM): the state token is spent, invalid or expired; the session token is gone.
STATE_TOKEN_GONE = frozenset({"COMMON.1007", "PARAM.0014", "COMMON.1005"})
SESSION_TOKEN_GONE = frozenset({"PARAM.0023"})

# The statuses Flask/werkzeug answer by themselves, as our codes and messages.
HTTP_CODES = {
    400: ("BFF.VALIDATION", "the request is malformed"),
    401: ("BFF.UNAUTHENTICATED", "missing or invalid credentials"),
    404: ("BFF.NOT_FOUND", "no such endpoint"),
    405: ("BFF.METHOD_NOT_ALLOWED", "method not allowed on this endpoint"),
    413: ("BFF.PAYLOAD_TOO_LARGE", "the request body is too large"),
    415: ("BFF.UNSUPPORTED_MEDIA_TYPE", "the request body must be application/json"),
    431: ("BFF.VALIDATION", "the request headers are too large"),
}
INTERNAL = ("BFF.INTERNAL", "internal error")
NOT_READY = "BFF.NOT_READY"


class SettingsError(Exception):
    """A missing or malformed setting; the message names the variable."""


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


class BadRequest(BffError):
    status, code, message = 400, "BFF.VALIDATION", "the request is invalid"


class Unauthenticated(BffError):
    status, code, message = 401, "BFF.UNAUTHENTICATED", "missing or invalid credentials"


class NotFound(BffError):
    status, code, message = 404, "BFF.NOT_FOUND", "no such endpoint"


class NoPendingBind(BffError):
    status, code = 409, "BFF.NO_PENDING_BIND"
    message = "no bind is pending for this WeChat account; start again with login"


class RequestInProgress(BffError):
    status, code = 409, "BFF.REQUEST_IN_PROGRESS"
    message = "another login or bind for this WeChat account is in progress; retry shortly"


class SessionExpired(BffError):
    status, code, message = 401, "BFF.SESSION_EXPIRED", "the session has expired; log in again"


class SessionStoreUnavailable(BffError):
    status, code, message = 503, "BFF.SESSION_STORE_UNAVAILABLE", "the session store is unavailable"


class RateLimited(BffError):
    status, code, message = 429, "BFF.RATE_LIMITED", "too many requests; retry later"


class WechatCodeInvalid(BffError):
    status, code = 400, "BFF.WECHAT_CODE_INVALID"
    message = "the wx.login code is invalid or already used; call wx.login again"


class UpstreamError(BffError):
    """An upstream (IDaaS or WeChat) failure, already mapped to our status and code."""

    status, code, message = 502, BAD_RESPONSE, UPSTREAM_MESSAGES[BAD_RESPONSE]


def upstream_error(status: int, code: str) -> UpstreamError:
    """A mapped upstream failure with its standard message."""
    return UpstreamError(status, code, UPSTREAM_MESSAGES[code])


def bad_response() -> UpstreamError:
    """``502 BFF.UPSTREAM_BAD_RESPONSE``: 5xx, not JSON, malformed, or a token that fails."""
    return upstream_error(502, BAD_RESPONSE)


class IdaasError(BffError):
    """An IDaaS 4xx business error, passed on with its status and code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, code, message)

    @property
    def suffix(self) -> str:
        """``LOGIN.1005`` from ``IDAAS.SDK.LOGIN.1005`` (CIAM) or ``SDK.LOGIN.1005`` (EIAM)."""
        return code_suffix(self.code)


def code_suffix(code: str) -> str:
    parts = code.split(".")
    return ".".join(parts[-2:]) if len(parts) >= 2 else code
