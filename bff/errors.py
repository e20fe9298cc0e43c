"""Every error bff answers, and every code it uses: one home, no Flask.

A :class:`BffError` is answered with the one envelope ``{"error_code", "error_msg",
"request_id"}`` by the web layer (``bff/web/errors.py``). Our codes start with ``BFF.``; an IDaaS
business error keeps the IDaaS's own status and code (:class:`IdaasError`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Our codes. Each has one HTTP status and one standard message: the table CODES below.
VALIDATION = "BFF.VALIDATION"
WECHAT_CODE_INVALID = "BFF.WECHAT_CODE_INVALID"
UNAUTHENTICATED = "BFF.UNAUTHENTICATED"
SESSION_EXPIRED = "BFF.SESSION_EXPIRED"
SESSION_REVOKED = "BFF.SESSION_REVOKED"
NOT_FOUND = "BFF.NOT_FOUND"
UNKNOWN_APP = "BFF.UNKNOWN_APP"
METHOD_NOT_ALLOWED = "BFF.METHOD_NOT_ALLOWED"
NO_PENDING_BIND = "BFF.NO_PENDING_BIND"
NO_PENDING_STEP = "BFF.NO_PENDING_STEP"
PASSWORD_POLICY = "BFF.PASSWORD_POLICY"  # noqa: S105 (a code)
NOT_BOUND = "BFF.NOT_BOUND"
REQUEST_IN_PROGRESS = "BFF.REQUEST_IN_PROGRESS"
PAYLOAD_TOO_LARGE = "BFF.PAYLOAD_TOO_LARGE"
UNSUPPORTED_MEDIA_TYPE = "BFF.UNSUPPORTED_MEDIA_TYPE"
RATE_LIMITED = "BFF.RATE_LIMITED"
INTERNAL = "BFF.INTERNAL"
BAD_RESPONSE = "BFF.UPSTREAM_BAD_RESPONSE"  # upstream failures (IDaaS and WeChat), mapped
UNAVAILABLE = "BFF.UPSTREAM_UNAVAILABLE"
TIMEOUT = "BFF.UPSTREAM_TIMEOUT"
SESSION_STORE_UNAVAILABLE = "BFF.SESSION_STORE_UNAVAILABLE"
NOT_READY = "BFF.NOT_READY"

# code -> (HTTP status, standard message): the error classes below, Flask's own errors
# (HTTP_CODES) and the OpenAPI document (the codes each operation declares) read this one table.
CODES: dict[str, tuple[int, str]] = {
    VALIDATION: (400, "the request is invalid"),
    WECHAT_CODE_INVALID: (400, "the wx.login code is invalid or already used; call wx.login again"),
    UNAUTHENTICATED: (401, "missing or invalid credentials"),
    SESSION_EXPIRED: (401, "the session has expired; log in again"),
    SESSION_REVOKED: (401, "this device was signed out (on another device, or by an operator)"),
    NOT_FOUND: (404, "no such endpoint"),
    UNKNOWN_APP: (404, "this deployment serves no mini program with that appid"),
    METHOD_NOT_ALLOWED: (405, "method not allowed on this endpoint"),
    NO_PENDING_BIND: (409, "no bind is pending for this WeChat account; start again with login"),
    NO_PENDING_STEP: (
        409,
        "this sign-in has no such step pending (second factor or password); log in again",
    ),
    PASSWORD_POLICY: (400, "the new password does not meet the password policy"),
    NOT_BOUND: (409, "this WeChat account is not bound to an IDaaS account"),
    REQUEST_IN_PROGRESS: (
        409,
        "another login or bind for this WeChat account is in progress; retry shortly",
    ),
    PAYLOAD_TOO_LARGE: (413, "the request body is too large"),
    UNSUPPORTED_MEDIA_TYPE: (415, "the request body must be application/json"),
    RATE_LIMITED: (429, "too many requests; retry later"),
    INTERNAL: (500, "internal error"),
    BAD_RESPONSE: (502, "the identity provider answered badly"),
    UNAVAILABLE: (503, "the identity provider is unavailable"),
    SESSION_STORE_UNAVAILABLE: (503, "the session store is unavailable"),
    NOT_READY: (503, "not ready"),
    TIMEOUT: (504, "the identity provider did not answer in time"),
}
# Not a code: stands, in an operation's declared errors, for any IDaaS business error passed on
# with the IDaaS's own 4xx status and code (``IDAAS.SDK.LOGIN.1005`` on CIAM, ``SDK.LOGIN.1005``
# on EIAM): see :class:`IdaasError`.
IDAAS_ERRORS = "IDAAS.*"
UPSTREAM_MESSAGES = {code: CODES[code][1] for code in (BAD_RESPONSE, TIMEOUT, UNAVAILABLE)}

# Forward-auth (``/api/v1/auth``) answers a gateway, and nginx ``auth_request`` passes on only
# 2xx, 401 and 403: the caller must sign in (again) is 401, any other refusal is 403; the real
# code travels in the ``X-BFF-Error`` header and the envelope.
SIGN_IN_AGAIN = frozenset({UNAUTHENTICATED, SESSION_EXPIRED, SESSION_REVOKED})


def gateway_status(code: str) -> int:
    """The status forward-auth answers a refusal with ``code`` in."""
    return 401 if code in SIGN_IN_AGAIN else 403


# IDaaS error codes, matched by suffix (``IDAAS.SDK.COMMON.1007`` on CIAM, ``SDK.COMMON.1007``
# on EIAM): the state token is spent, invalid or expired; the session token is gone.
STATE_TOKEN_GONE = frozenset({"COMMON.1007", "PARAM.0014", "COMMON.1005"})
SESSION_TOKEN_GONE = frozenset({"PARAM.0023"})

# The statuses Flask/werkzeug answer by themselves, as our codes and messages.
HTTP_CODES = {
    CODES[code][0]: (code, CODES[code][1])
    for code in (
        UNAUTHENTICATED,
        NOT_FOUND,
        METHOD_NOT_ALLOWED,
        PAYLOAD_TOO_LARGE,
        UNSUPPORTED_MEDIA_TYPE,
    )
}
HTTP_CODES[400] = (VALIDATION, "the request is malformed")
HTTP_CODES[431] = (VALIDATION, "the request headers are too large")


class SettingsError(Exception):
    """A missing or malformed setting; the message names the variable."""


class BffError(Exception):
    """An error answered with the envelope: HTTP status, our (or the IDaaS's) code, a message."""

    code = INTERNAL
    status, message = CODES[code]

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
    code = VALIDATION
    status, message = CODES[code]


class Unauthenticated(BffError):
    code = UNAUTHENTICATED
    status, message = CODES[code]


class NotFound(BffError):
    code = NOT_FOUND
    status, message = CODES[code]


class UnknownApp(BffError):
    code = UNKNOWN_APP
    status, message = CODES[code]


class NoPendingBind(BffError):
    code = NO_PENDING_BIND
    status, message = CODES[code]


class NoPendingStep(BffError):
    code = NO_PENDING_STEP
    status, message = CODES[code]


class PasswordPolicyError(BffError):
    code = PASSWORD_POLICY
    status, message = CODES[code]


class NotBound(BffError):
    code = NOT_BOUND
    status, message = CODES[code]


class RequestInProgress(BffError):
    code = REQUEST_IN_PROGRESS
    status, message = CODES[code]


class SessionExpired(BffError):
    code = SESSION_EXPIRED
    status, message = CODES[code]


class SessionRevoked(BffError):
    code = SESSION_REVOKED
    status, message = CODES[code]


class SessionStoreUnavailable(BffError):
    code = SESSION_STORE_UNAVAILABLE
    status, message = CODES[code]


class RateLimited(BffError):
    code = RATE_LIMITED
    status, message = CODES[code]


class WechatCodeInvalid(BffError):
    code = WECHAT_CODE_INVALID
    status, message = CODES[code]


class UpstreamError(BffError):
    """An upstream (IDaaS or WeChat) failure, already mapped to our status and code."""

    code = BAD_RESPONSE
    status, message = CODES[code]


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
