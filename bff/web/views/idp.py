"""The IDaaS tenant's WebHook: events about its users, some of which end their sessions.

Not a mini program's endpoint: no handle is looked up (``Authorization: Bearer`` carries the
tenant's security token, compared with ``IDP_EVENTS_TOKEN``), the event's signature is the other
credential, and the gateway routes this path from the IdP's addresses only (docs/gateway.md).
Off (404, as an unknown path) until the three ``IDP_EVENTS_*`` keys are set.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, request
from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate

from bff import flows
from bff.errors import (
    NOT_FOUND,
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


class Timestamp(fields.Field):  # type: ignore[type-arg]
    """An integer (the vendor's), or its digits in a string; kept as its digits (signed so)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10**16:
            return str(value)
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 16:
            return value
        raise ValidationError("not a timestamp (an integer)")


ALIASES = {"eventType": "event", "signature": "sign"}  # the OEM's names [oem] -> the vendor's


class IdpEventRequest(Schema):
    """The tenant's body [doc]; fields it may add besides are ignored (the signature does not
    cover them)."""

    class Meta:
        unknown = EXCLUDE

    openapi_examples = {
        "USER_DISABLE": {
            "nonce": "6f1c2a9e",
            "timestamp": 1764806400,
            "event": "USER_DISABLE",
            "data": "q83vEjRWeJASNFZ4kKvN7w==",
            "sign": "dGhlIEhNQUMtU0hBMjU2IG9mIHRoZSBldmVudCwgYmFzZTY0IQ==",
        }
    }

    nonce = _ascii(128)
    timestamp = Timestamp(  # documented as the vendor sends it; its digits in a string pass too
        required=True,
        metadata={
            "type": "integer",
            "minimum": 1,
            "maximum": 10**16 - 1,
            "description": "since the epoch, in seconds or milliseconds",
        },
    )
    event = _ascii(64, r"^[A-Z0-9_]+$")
    data = _ascii(8192, r"^[A-Za-z0-9+/]+={0,2}$")  # base64 of the AES-256-ECB ciphertext
    sign = _ascii(128, r"^[A-Za-z0-9+/]+={0,2}$")  # base64 of an HMAC-SHA256

    @pre_load
    def _vendor_names(self, data: Any, **kwargs: Any) -> Any:
        """``eventType`` and ``signature`` (the OEM's) stand for ``event`` and ``sign``."""
        if isinstance(data, dict):
            data = dict(data)
            for alias, name in ALIASES.items():
                if alias in data and name not in data:
                    data[name] = data.pop(alias)
        return data


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
        NOT_FOUND,  # the receiver is off
    ),
    device_required=False,
    offered=_receiving,
)
def idp_event(svc: Services, caller: Any, body: dict[str, str]) -> flows.EventReceipt:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    presented = token.strip() if scheme.lower() == "bearer" else None
    return flows.receive_event(current_app.extensions["bff"], presented, body)
