"""The bodies and answers of a login's next step (second factor, password) and of unbinding."""

from __future__ import annotations

from marshmallow import Schema, fields

from bff.web.schemas import CaptchaAnswer, _Request, code_field, text


class MfaCodesRequest(_Request):
    openapi_examples = {"slider": {"captcha": {"token": "c2a9e0b6", "point_json": '{"x":118}'}}}

    captcha = fields.Nested(CaptchaAnswer, required=True)  # the solved slider of GET /captcha


class MfaVerifyRequest(_Request):
    openapi_examples = {"code": {"verify_code": "123456"}}

    verify_code = code_field(64, required=True, metadata={"description": "the SMS code"})


class PasswordChangeRequest(_Request):
    openapi_examples = {
        "change": {"old_password": "correct horse battery", "new_password": "staple 2 battery"}
    }

    old_password = text(1024, required=True, load_only=True)
    new_password = text(1024, required=True, load_only=True)


class MfaResponse(Schema):
    openapi_examples = {"sms": {"factor": "sms", "destination": "+86-152****7124"}}

    factor = fields.String(required=True, metadata={"description": "sms"})
    destination = fields.String(required=True, metadata={"description": "masked"})
