"""Request/response schema pairs of the mini-program API (the upstreams' own answer schemas
live with their clients, in bff/clients/).

Requests keep ``unknown=RAISE``: a smuggled ``openid`` is a 400. The OpenAPI document is
generated from these same classes.
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# ASCII digits only: \d would take fullwidth or Arabic-Indic digits, one number spelled many ways.
MOBILE = re.compile(r"^\+[0-9]{1,4}-[0-9]{5,15}$")
# What _not_blank accepts, for the OpenAPI document: no control character, one non-space at least.
TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"
EMAIL_MAX = 254
# marshmallow's Email wants a top-level domain of two characters at least ("a@b.c" is refused).
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[A-Za-z0-9-]{2,}\.?$"


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("must not be blank")
    if _CONTROL.search(value):
        raise ValidationError("must not contain control characters")


def text(max_len: int, **kwargs: Any) -> fields.String:
    """A non-empty, non-blank string of at most ``max_len`` characters, kept exactly as typed."""
    metadata = {**kwargs.pop("metadata", {}), "pattern": TEXT_PATTERN}
    return fields.String(
        validate=[validate.Length(min=1, max=max_len), _not_blank], metadata=metadata, **kwargs
    )


# Codes (wx.login, phone button, SMS, slider token) are printable ASCII: anything else is not a
# code, and a lone surrogate could not even be put in WeChat's query string.
CODE_PATTERN = r"^[\x21-\x7e]+$"
POINT_PATTERN = r"^[\x20-\x7e]*[\x21-\x7e][\x20-\x7e]*$"  # a JSON text: spaces allowed


def code_field(max_len: int = 512, pattern: str = CODE_PATTERN, **kwargs: Any) -> fields.String:
    """A code as the client got it: 1..max_len printable ASCII characters, forwarded as is."""
    metadata = {**kwargs.pop("metadata", {}), "pattern": pattern}
    return fields.String(
        validate=[
            validate.Length(min=1, max=max_len),
            validate.Regexp(pattern, error="must be printable ASCII"),
        ],
        metadata=metadata,
        **kwargs,
    )


class _Request(Schema):
    class Meta:
        unknown = RAISE


# ----------------------------------------------------------------- mini-program requests


class WechatSessionRequest(_Request):
    wx_code = code_field(required=True, metadata={"description": "a wx.login code"})


class LoginRequest(_Request):
    code = code_field(required=True, metadata={"description": "a fresh wx.login code"})


class BindUsernamePasswordRequest(_Request):
    user_name = text(256, required=True)
    password = text(1024, required=True, load_only=True)


class EmptyRequest(_Request):
    """Endpoints without a body accept none (or ``{}``); any field is rejected."""


class PhoneCodeRequest(_Request):
    phone_code = code_field(required=True, metadata={"description": "getPhoneNumber code"})


class _MobileOrEmail(_Request):
    # Cross-field rules, for the OpenAPI document (the validators below enforce them).
    openapi_extra = {"oneOf": [{"required": ["mobile"]}, {"required": ["email"]}]}

    mobile = fields.String(
        validate=validate.Regexp(MOBILE, error="must look like +86-13800000000"),
        metadata={"example": "+86-13800000000"},
    )
    email = fields.Email(
        validate=validate.Length(max=EMAIL_MAX), metadata={"pattern": EMAIL_PATTERN}
    )

    @validates_schema
    def _exactly_one(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("mobile" in data) == ("email" in data):
            raise ValidationError("exactly one of mobile or email is required", "_schema")


class VerificationBindRequest(_MobileOrEmail):
    verify_code = code_field(required=True)


class CaptchaAnswer(_Request):
    token = code_field(required=True)
    point_json = code_field(pattern=POINT_PATTERN, required=True)


class VerificationCodesRequest(_Request):
    openapi_extra = {
        "oneOf": [
            {
                "properties": {
                    "channel": {"enum": ["sms"]},
                    "to": {"pattern": MOBILE.pattern},
                }
            },
            {
                "properties": {
                    "channel": {"enum": ["email"]},
                    "to": {"format": "email", "maxLength": EMAIL_MAX, "pattern": EMAIL_PATTERN},
                }
            },
        ]
    }

    channel = fields.String(required=True, validate=validate.OneOf(("sms", "email")))
    to = text(254, required=True, metadata={"description": "+86-13800000000 or an email"})
    purpose = fields.String(required=True, validate=validate.OneOf(("bind", "register")))
    captcha = fields.Nested(CaptchaAnswer, required=True)

    @validates_schema
    def _destination(self, data: dict[str, Any], **kwargs: Any) -> None:
        to, channel = data.get("to"), data.get("channel")
        if channel == "sms" and to and not MOBILE.match(to):
            raise ValidationError("must look like +86-13800000000 for sms", "to")
        if channel == "email" and to:
            try:
                validate.Email()(to)
            except ValidationError:
                raise ValidationError("must be an email address for email", "to") from None


# ----------------------------------------------------------------- mini-program responses


class WechatSessionResponse(Schema):
    handle = fields.String(required=True)
    expires_in = fields.Integer(required=True)


class LoginResponse(Schema):
    status = fields.String(required=True, metadata={"example": "SUCCESS"})
    expire = fields.Integer(metadata={"description": "seconds the session lives (SUCCESS)"})
    id_token = fields.String(metadata={"description": "verified JWT (SUCCESS)"})
    flows = fields.List(fields.String(), metadata={"description": "SOCIAL_BIND/USER_REGISTER"})


class RefreshResponse(Schema):
    id_token = fields.String(required=True)
    expires_in = fields.Integer(required=True)


class SessionStatusResponse(Schema):
    active = fields.Boolean(required=True)
    expires_in = fields.Integer()


class CaptchaResponse(Schema):
    token = fields.String(required=True)
    original_image_base64 = fields.String()
    jigsaw_image_base64 = fields.String()
    secret_key = fields.String()


class ErrorResponse(Schema):
    error_code = fields.String(required=True)
    error_msg = fields.String(required=True)
    request_id = fields.String(required=True)
    errors = fields.Dict(metadata={"description": "per-field problems (BFF.VALIDATION)"})
    checks = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={"description": "each dependency's state (BFF.NOT_READY, /readyz)"},
    )


class HealthResponse(Schema):
    status = fields.String(required=True)
    checks = fields.Dict(keys=fields.String(), values=fields.String())
