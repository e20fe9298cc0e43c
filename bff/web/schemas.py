"""Request/response schema pairs of the mini-program API (the upstreams' own answer schemas
live with their clients, in bff/clients/).

Requests keep ``unknown=RAISE``: a smuggled ``openid`` is a 400. The OpenAPI document is
generated from these same classes; ``openapi_examples`` (name -> body) are its examples.
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_dump,
    post_load,
    validate,
    validates_schema,
)

from bff.credentials import CodeRequest, SliderAnswer

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


_WX_CODE = "0c1Xl3Ga1ohFwJ0Zb1Ha1HqjXl3Xl3GT"
_PHONE_CODE = "f3a7e5d1c9b24e68a0b1c2d3e4f50617"
_ID_TOKEN = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"  # noqa: S105
_PNG = (  # one pixel
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJRU5ErkJggg=="
)


class WechatSessionRequest(_Request):
    openapi_examples = {"wx_code": {"wx_code": _WX_CODE}}

    wx_code = code_field(required=True, metadata={"description": "a wx.login code"})
    appid = fields.String(
        validate=validate.Regexp(r"^[A-Za-z0-9_-]{1,64}$", error="not a WeChat appid"),
        metadata={
            "description": "the mini program's appid (wx.getAccountInfoSync().miniProgram.appId)"
            " when the deployment serves several; absent: its default app",
            "example": "wx0123456789abcdef",
        },
    )


class LoginRequest(_Request):
    openapi_examples = {"code": {"code": _WX_CODE}}

    code = code_field(required=True, metadata={"description": "a fresh wx.login code"})


class BindUsernamePasswordRequest(_Request):
    openapi_examples = {"password": {"user_name": "alice", "password": "correct horse battery"}}

    user_name = text(256, required=True)
    password = text(1024, required=True, load_only=True)


class EmptyRequest(_Request):
    """Endpoints without a body accept none (or ``{}``); any field is rejected."""


class PhoneCodeRequest(_Request):
    openapi_examples = {"phone_code": {"phone_code": _PHONE_CODE}}

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
    openapi_examples = {"mobile": {"mobile": "+86-13800000000", "verify_code": "493027"}}

    verify_code = code_field(required=True)


class CaptchaAnswer(_Request):
    token = code_field(required=True)
    point_json = code_field(pattern=POINT_PATTERN, required=True)

    @post_load
    def _answer(self, data: dict[str, Any], **kwargs: Any) -> SliderAnswer:
        return SliderAnswer(**data)


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
    openapi_examples = {
        "sms": {
            "channel": "sms",
            "to": "+86-13800000000",
            "purpose": "bind",
            "captcha": {"token": "c2a9e0b6f1d84f7e", "point_json": '{"x":121.5,"y":5.0}'},
        }
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

    @post_load
    def _request(self, data: dict[str, Any], **kwargs: Any) -> CodeRequest:
        return CodeRequest(**data)


# ----------------------------------------------------------------- mini-program responses


class _Response(Schema):
    """Dumps an answer's value (a flow's dataclass); fields it leaves None are left out."""

    @post_dump
    def _present(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {name: value for name, value in data.items() if value is not None}


class WechatSessionResponse(Schema):
    openapi_examples = {
        "handle": {"handle": "q8Xb2hT1cZ0mWkP5nV7rJ3yL6dF9sA4eG1uH8iK2oQw", "expires_in": 604800}
    }

    handle = fields.String(required=True)
    expires_in = fields.Integer(required=True)


class PasswordPolicySchema(_Response):
    min_length = fields.Integer()
    max_length = fields.Integer()
    pattern = fields.String(metadata={"description": "a regular expression it must match"})


class LoginResponse(_Response):
    openapi_examples = {
        "success": {"status": "SUCCESS", "expire": 432000, "id_token": _ID_TOKEN},
        "social_bind": {"status": "SOCIAL_BIND", "flows": ["VERIFY_PHONE", "USERNAME_PASSWORD"]},
        "mfa": {"status": "MFA_AUTH"},
        "password_warn": {
            "status": "PASSWORD_WARN",
            "password_policy": {"min_length": 8, "max_length": 20, "pattern": "^(?=.*\\d).+$"},
        },
    }

    status = fields.String(required=True, metadata={"example": "SUCCESS"})
    expire = fields.Integer(metadata={"description": "seconds the session lives (SUCCESS)"})
    id_token = fields.String(metadata={"description": "verified JWT (SUCCESS)"})
    flows = fields.List(fields.String(), metadata={"description": "SOCIAL_BIND/USER_REGISTER"})
    password_policy = fields.Nested(PasswordPolicySchema)  # PASSWORD_WARN/PASSWORD_EXPIRED


class RefreshResponse(Schema):
    openapi_examples = {"id_token": {"id_token": _ID_TOKEN, "expires_in": 3599}}

    id_token = fields.String(required=True)
    expires_in = fields.Integer(required=True)


class SessionStatusResponse(Schema):
    openapi_examples = {"active": {"active": True, "expires_in": 431000}, "none": {"active": False}}

    active = fields.Boolean(required=True)
    expires_in = fields.Integer()


class CaptchaResponse(_Response):
    openapi_examples = {
        "slider": {
            "token": "c2a9e0b6f1d84f7e",
            "original_image_base64": _PNG,
            "jigsaw_image_base64": _PNG,
            "secret_key": "k7Q2mX9pL4sW1vB8",
        }
    }

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
    openapi_examples = {
        "healthz": {"status": "ok", "version": "0.1.0"},
        "readyz": {"status": "ok", "checks": {"redis": "ok"}},
    }

    status = fields.String(required=True)
    version = fields.String(metadata={"description": "bff's version (/healthz)"})
    checks = fields.Dict(keys=fields.String(), values=fields.String())
