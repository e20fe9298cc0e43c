"""The IDaaS tenant's WebHook: events about its users, some of which end their sessions.

Not a mini program's endpoint: no handle is read (``Authorization`` is never looked at), the
event's own signature is its credential, and the gateway routes this path from the IdP's
addresses only (docs/gateway.md). Off (404, as an unknown path) until the three
``IDP_EVENTS_*`` keys are set.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app
from marshmallow import EXCLUDE, Schema, fields, validate

from bff import flows
from bff.errors import (
    PAYLOAD_TOO_LARGE,
    REQUEST_IN_PROGRESS,
    SESSION_STORE_UNAVAILABLE,
    UNAUTHENTICATED,
    UNSUPPORTED_MEDIA_TYPE,
    VALIDATION,
)
from bff.services import Deployment, Services
from bff.web.operations import Api

bp = Blueprint("idp", __name__, url_prefix="/api/v1")
api = Api(bp, "idp")


def _ascii(max_len: int, pattern: str = r"^[\x21-\x7e]+$") -> fields.String:
    return fields.String(
        required=True,
        validate=[validate.Length(min=1, max=max_len), validate.Regexp(pattern)],
    )


class IdpEventRequest(Schema):
    """The tenant's body [oem]; fields it may add besides are ignored (the signature does not
    cover them)."""

    class Meta:
        unknown = EXCLUDE

    openapi_examples = {
        "USER_DISABLE": {
            "nonce": "6f1c2a9e",
            "timestamp": "1764806400000",
            "eventType": "USER_DISABLE",
            "data": "q83vEjRWeJASNFZ4kKvN7w==",
            "signature": "0" * 64,
        }
    }

    nonce = _ascii(128)
    timestamp = _ascii(16, r"^[0-9]+$")  # milliseconds since the epoch
    eventType = _ascii(64, r"^[A-Z0-9_]+$")  # noqa: N815 (the tenant's name)
    data = _ascii(8192, r"^[A-Za-z0-9+/]+={0,2}$")  # base64 of the AES-256-ECB ciphertext
    signature = _ascii(64, r"^[0-9a-f]{64}$")  # lowercase hex of an HMAC-SHA256


class IdpEventResponse(Schema):
    openapi_examples = {
        "sessions ended": {"received": True, "event_type": "USER_DISABLE", "ended_sessions": 2}
    }

    received = fields.Boolean(required=True)
    event_type = fields.String(required=True)
    ended_sessions = fields.Integer(
        required=True, metadata={"description": "the user's openids signed out (in every app)"}
    )


def _receiving(deployment: Deployment) -> bool:
    return flows.event_keys(deployment.settings) is not None


@api.operation(
    "POST",
    "/idp/events",
    "The IdP's WebHook: an event about a user; USER_DISABLE, USER_DELETE, USER_UPDATE_PWD and "
    "USER_SOCIAL_UNBIND end every session of that user before the answer",
    request=IdpEventRequest,
    response=IdpEventResponse,
    auth=False,
    errors=(
        VALIDATION,
        PAYLOAD_TOO_LARGE,
        UNSUPPORTED_MEDIA_TYPE,
        UNAUTHENTICATED,
        SESSION_STORE_UNAVAILABLE,
        REQUEST_IN_PROGRESS,
    ),
    device_required=False,
    offered=_receiving,
)
def idp_event(svc: Services, caller: Any, body: dict[str, str]) -> flows.EventReceipt:
    return flows.receive_event(current_app.extensions["bff"], body)
