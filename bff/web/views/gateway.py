"""The gateway's half: forward-auth for the company's APIs, and the devices a user is signed in on.

``/api/v1/auth`` answers a gateway (nginx ``auth_request``, APISIX ``forward-auth``, Envoy
``ext_authz``, Traefik ``forwardAuth``; docs/gateway.md): 200 with the caller's identity in
response headers the gateway copies upstream, else 401 (sign in again) or 403, the code in
``X-BFF-Error``. The gateway must overwrite those headers on every request it passes on.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, current_app
from marshmallow import Schema, fields

from bff import flows
from bff.errors import (
    BAD_RESPONSE,
    IDAAS_ERRORS,
    NOT_FOUND,
    RATE_LIMITED,
    REQUEST_IN_PROGRESS,
    SESSION_EXPIRED,
    SESSION_REVOKED,
    SESSION_STORE_UNAVAILABLE,
    TIMEOUT,
    UNAUTHENTICATED,
    UNAVAILABLE,
    VALIDATION,
)
from bff.models import Caller
from bff.services import Deployment, Services
from bff.web.identity import optional_device, presented_handle
from bff.web.operations import AUTH, Api, require_caller

bp = Blueprint("gateway", __name__, url_prefix="/api/v1")
api = Api(bp, "gateway")

# The response headers of a good check: what the gateway copies to the upstream request.
IDENTITY_HEADERS = ("X-BFF-Openid", "X-BFF-Unionid", "X-BFF-Subject", "X-BFF-App")
# A header value is bytes the gateway copies as they are, and gunicorn refuses one beyond
# Latin-1: anything but printable ASCII, and the escape itself, is percent-encoded as UTF-8 (a
# subject may be a Chinese user name); an openid, a UUID or an e-mail address is unchanged.
HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")
CHECK_ERRORS = (
    UNAUTHENTICATED,
    SESSION_EXPIRED,
    SESSION_REVOKED,
    SESSION_STORE_UNAVAILABLE,
    REQUEST_IN_PROGRESS,
    VALIDATION,
    NOT_FOUND,
    BAD_RESPONSE,
    UNAVAILABLE,
    TIMEOUT,
    IDAAS_ERRORS,
)


class SessionInfoSchema(Schema):
    id = fields.String(required=True, metadata={"description": "names it in DELETE"})
    issued_at = fields.Integer(required=True, metadata={"description": "unix seconds"})
    last_used_at = fields.Integer(
        required=True, metadata={"description": "unix seconds, to within a minute"}
    )
    os = fields.String(allow_none=True, required=True)
    agent = fields.String(allow_none=True, required=True)
    ip = fields.String(
        allow_none=True, required=True, metadata={"description": "its network, not the address"}
    )
    current = fields.Boolean(required=True, metadata={"description": "the caller's own"})


class SessionsResponse(Schema):
    openapi_examples = {
        "two devices": {
            "sessions": [
                {
                    "id": "3f0c9a1b7d2e4c58",
                    "issued_at": 1764806400,
                    "last_used_at": 1764892800,
                    "os": "iOS 17.4",
                    "agent": "WeChat/8.0.47",
                    "ip": "203.0.113.0/24",
                    "current": True,
                },
                {
                    "id": "9b1d4e7a2c0f6e31",
                    "issued_at": 1764720000,
                    "last_used_at": 1764723600,
                    "os": "Android 14",
                    "agent": "WeChat/8.0.46",
                    "ip": "198.51.100.0/24",
                    "current": False,
                },
            ]
        }
    }

    sessions = fields.List(fields.Nested(SessionInfoSchema), required=True)


@api.operation(
    "GET",
    "/auth",
    "Forward-auth: the caller's identity as response headers for the gateway "
    "(also any other method, and any path below)",
    auth=False,
    errors=CHECK_ERRORS,
    device_required=False,
    identity_sources=("wechat",),
    forward_auth=True,
)
def forward_auth(svc: Services, caller: Caller | None, body: Any) -> Response:
    deployment: Deployment = current_app.extensions["bff"]
    svc, digest = presented_handle(deployment)
    identity = flows.forward_auth(svc, digest, optional_device)
    # Headers only: nginx auth_request discards a check's body, and an upstream connection
    # that sent one cannot carry the next check (it is closed, and the next one reopened).
    resp = Response(status=200)
    values = (identity.openid, identity.unionid, identity.subject, identity.app)
    resp.headers.update(
        {
            name: quote(v, safe=HEADER_SAFE)
            for name, v in zip(IDENTITY_HEADERS, values, strict=True)
            if v
        }
    )
    if deployment.settings.forward_auth_id_token:
        resp.headers["Authorization"] = f"Bearer {identity.id_token}"
    return resp


@api.operation(
    "GET",
    "/sessions",
    "The devices the caller is signed in on (their live handles; no handle shown)",
    response=SessionsResponse,
    errors=(*AUTH, RATE_LIMITED),
    identity_sources=("wechat",),
)
def list_sessions(svc: Services, caller: Caller | None, body: Any) -> dict[str, Any]:
    return {"sessions": flows.list_sessions(svc, require_caller(caller))}


@api.operation(
    "DELETE",
    "/sessions/<session_id>",
    "Sign one device out: its handle answers 401 BFF.SESSION_REVOKED from now on",
    status=204,
    errors=(*AUTH, RATE_LIMITED, NOT_FOUND),
    identity_sources=("wechat",),
)
def end_session(svc: Services, caller: Caller | None, body: Any, session_id: str = "") -> None:
    flows.end_session(svc, require_caller(caller), session_id)
