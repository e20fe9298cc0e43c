"""The fixed parts of the OpenAPI document: headers, security schemes, examples."""

from __future__ import annotations

from typing import Any

HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "the gateway's X-Request-ID when it is 1-128 of A-Za-z0-9._-, else a new "
        "one; also the request_id of an error and of the request's log lines",
        "required": True,
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,128}$"},
    },
    "Cache-Control": {
        "description": "no-store: no answer may be cached (handles and id_tokens travel in them)",
        "required": True,
        "schema": {"type": "string", "enum": ["no-store"], "example": "no-store"},
    },
}
SECURITY = {
    "wechat": (
        "handle",
        {
            "type": "http",
            "scheme": "bearer",
            "description": "the opaque handle POST /api/v1/wechat/session answered",
        },
    ),
    "gateway": (
        "gateway",
        {
            "type": "apiKey",
            "in": "header",
            "description": "the secret the gateway adds (GATEWAY_SECRET), with the caller's "
            "identity headers (GATEWAY_OPENID_HEADER, GATEWAY_UNIONID_HEADER) and, where the "
            "deployment serves several mini programs, the appid (GATEWAY_APPID_HEADER)",
        },
    ),
}
DEVICE_HEADERS = (
    ("X-operating-sys-version", True),
    ("X-device-fingerprint", True),
    ("X-agent", False),
    ("X-L", False),
)
_X_BFF_ERROR = {
    "description": "the error_code, for a gateway that keeps only the status (nginx)",
    "required": True,
    "schema": {"type": "string"},
}
CHECK_HEADERS: dict[str, dict[str, Any]] = {
    "401": {
        "X-BFF-Error": _X_BFF_ERROR,
        "WWW-Authenticate": {
            "description": "the scheme the handle is presented in",
            "required": True,
            "schema": {"type": "string", "enum": ['Bearer realm="bff"']},
        },
    },
    "403": {"X-BFF-Error": _X_BFF_ERROR},
}
IDENTITY_HEADERS: dict[str, dict[str, Any]] = {
    "X-BFF-Openid": {"description": "the caller's WeChat openid (in its app)", "required": True},
    "X-BFF-Unionid": {"description": "the caller's WeChat unionid, where WeChat gave one"},
    "X-BFF-Subject": {
        "description": "the IDaaS user (the id_token's sub); beyond printable ASCII, and"
        " % itself, percent-encoded as UTF-8"
    },
    "X-BFF-App": {"description": "the app (mini program) of the handle", "required": True},
    "Authorization": {
        "description": "Bearer <the caller's current id_token>, where FORWARD_AUTH_ID_TOKEN is on"
    },
}
METRICS_EXAMPLE = """\
# HELP bff_requests_total Requests answered
# TYPE bff_requests_total counter
bff_requests_total{route="/api/v1/login",status="200"} 42.0
"""
