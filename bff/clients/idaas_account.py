"""The IDaaS calls that finish a login's next step and manage the user's WeChat binding.

Confidence, from what the vendor publishes: ``mobile-by-token``, the ``MFA_AUTH_SMS`` send,
``pwd/skip-update``, ``social`` and ``social/unbind-account`` are documented; ``mfa/sms`` is
the same product's under another name (Huawei Cloud OneAccess); ``pwd/update`` (its path and
body) is assumed. docs/api.md keeps the same list for users.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from bff.clients.http import Answer
from bff.errors import bad_response
from bff.models import Device, IdaasAnswer, PasswordPolicy

MFA_MOBILE_PATH = "/api/v2/sdk/mobile-by-token"
MFA_SMS_SEND_PATH = "/api/v2/sdk/sms/send"
MFA_SMS_TYPE = "MFA_AUTH_SMS"
MFA_SMS_CHECK_PATH = "/api/v2/sdk/mfa/sms"
SKIP_PASSWORD_PATH = "/api/v2/sdk/pwd/skip-update"  # noqa: S105 (a path)
UPDATE_PASSWORD_PATH = "/api/v2/sdk/pwd/update"  # noqa: S105 (a path)
SOCIAL_PATH = "/api/v2/sdk/social"
UNBIND_PATH = "/api/v2/sdk/social/unbind-account"


@dataclass(frozen=True)
class SocialAccount:
    """One social account bound to the IDaaS user: its record id and the WeChat openid."""

    id: str
    social_uid: str | None
    client_id: str | None


class _SocialRecord(Schema):
    class Meta:
        unknown = EXCLUDE

    id = fields.String(required=True, validate=validate.Length(min=1, max=256))
    socialUid = fields.String(load_default=None)  # noqa: N815 (the IDaaS's name)
    clientId = fields.String(load_default=None)  # noqa: N815


class _Mobile(Schema):
    class Meta:
        unknown = EXCLUDE

    mobile = fields.String(required=True, validate=validate.Length(min=1, max=64))


_SOCIAL = _SocialRecord(many=True)
_MOBILE = _Mobile()


def parse_policy(data: Any) -> PasswordPolicy | None:
    """The password policy in a password step's ``data`` (a JSON string: ``minLength``,
    ``maxLength``, ``regEx``); None when there is none or it cannot be read."""
    try:
        parsed = json.loads(data) if isinstance(data, str) else data
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None

    def number(name: str) -> int | None:
        value = parsed.get(name)
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    pattern = parsed.get("regEx")
    policy = PasswordPolicy(
        number("minLength"), number("maxLength"), pattern if isinstance(pattern, str) else None
    )
    return policy if policy != PasswordPolicy() else None


def load_answer(schema: Schema, body: Any) -> Any:
    """``body`` loaded with ``schema`` (a JSON object; a list for a ``many`` schema);
    :raises UpstreamError: 502 when it does not fit."""
    if not isinstance(body, list if schema.many else dict):
        raise bad_response()
    try:
        return schema.load(body)
    except ValidationError as exc:
        raise bad_response() from exc


class AccountCalls:
    """Mixed into :class:`~bff.clients.idaas.IdaasClient`: its ``_call`` and ``_flow``."""

    _call: Callable[..., Answer]  # IdaasClient's: the one call, its headers and 4xx
    _flow: Callable[..., IdaasAnswer]  # IdaasClient's: a login-like answer, validated

    def mfa_mobile(self, state_token: str, device: Device) -> str:
        """The mobile of the second factor (masked or in clear, as the tenant answers it)."""
        answer = self._call("GET", MFA_MOBILE_PATH, device, extra={"X-state-token": state_token})
        return str(load_answer(_MOBILE, answer.body)["mobile"])

    def send_mfa_code(
        self, mobile: str, captcha_token: str, state_token: str, device: Device
    ) -> None:
        body = {"mobile": mobile, "type": MFA_SMS_TYPE, "captcha_token": captcha_token}
        extra = {"X-state-token": state_token}
        self._call("POST", MFA_SMS_SEND_PATH, device, body=body, extra=extra)

    def verify_mfa(
        self, mobile: str, verify_code: str, state_token: str, device: Device
    ) -> IdaasAnswer:
        body = {"mobile": mobile, "verify_code": verify_code}
        return self._flow(MFA_SMS_CHECK_PATH, device, body, {"X-state-token": state_token})

    def skip_password_update(self, state_token: str, device: Device) -> IdaasAnswer:
        extra = {"X-state-token": state_token}
        return self._flow(SKIP_PASSWORD_PATH, device, None, extra, method="GET")

    def update_password(
        self, old_password: str, new_password: str, state_token: str, device: Device
    ) -> IdaasAnswer:
        body = {"old_password": old_password, "new_password": new_password}
        return self._flow(UPDATE_PASSWORD_PATH, device, body, {"X-state-token": state_token})

    def social_accounts(self, id_token: str, device: Device) -> list[SocialAccount]:
        extra = {"Authorization": f"Bearer {id_token}"}
        body = self._call("GET", SOCIAL_PATH, device, extra=extra).body
        if isinstance(body, dict):  # a tenant may wrap the list
            body = body.get("data")
        return [
            SocialAccount(r["id"], r["socialUid"], r["clientId"])
            for r in load_answer(_SOCIAL, body)
        ]

    def unbind_social(self, record_id: str, id_token: str, device: Device) -> None:
        extra = {"Authorization": f"Bearer {id_token}"}
        self._call("POST", UNBIND_PATH, device, body={"id": record_id}, extra=extra)
