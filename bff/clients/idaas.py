"""IdaasClient: every IDaaS path, request body and answer schema; the server-held headers.

Callers pass typed values (a credential, a code, a session token); this module alone knows
where each goes on the IDaaS and how its body is spelled. Every answer is validated here: a 4xx
is an :class:`~bff.errors.IdaasError`, anything malformed a 502.
"""

from __future__ import annotations

import json
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, pre_load, validate

from bff.clients.http import Answer, Upstream
from bff.clients.idaas_account import AccountCalls, parse_policy
from bff.clients.idaas_account import load_answer as _load
from bff.credentials import BindCredential, UsernamePassword, VerifiedContact, WechatPhone
from bff.errors import IdaasError, bad_response
from bff.models import PASSWORD_STATUSES, Captcha, Device, IdaasAnswer

LOGIN_PATH = "/api/v2/sdk/login/wechat-miniprogram"
LOGIN_PHONE_PATH = "/api/v2/sdk/login/wechat-mini-program-mobile"
REFRESH_PATH = "/api/v2/sdk/sso/session-token/id-token"
CAPTCHA_PATH = "/api/v2/sdk/captcha"
CAPTCHA_VERIFY_PATH = "/api/v2/sdk/captcha/verify"
SEND_CODE_PATHS = {"sms": "/api/v2/sdk/sms/send", "email": "/api/v2/sdk/email/send"}
JWKS_PATH = "/api/v1/oauth2/keys"
# The routes that spend the pending state token, by what the user proves (bind, or register).
PASSWORD_BIND_PATH = "/api/v2/sdk/social/username-password-bind"  # noqa: S105 (a path)
PHONE_PATHS = (
    "/api/v2/sdk/social/wechat-mobile-bind",
    "/api/v2/sdk/social/wechat-mobile-register-bind",
)
CODE_PATHS = ("/api/v2/sdk/social/bind", "/api/v2/sdk/social/register-bind")
# (channel, purpose) -> the ``type`` of a verification code the IDaaS sends.
CODE_TYPES = {
    ("sms", "bind"): "BIND_MOBILE_SMS",
    ("sms", "register"): "REGISTER_SMS",
    ("email", "bind"): "BIND_EMAIL_EMS",
    ("email", "register"): "REGISTER_EMS",
}


def bind_call(credential: BindCredential) -> tuple[str, dict[str, str]]:
    """The IDaaS path and body that spend a state token on ``credential``."""
    match credential:
        case UsernamePassword(user_name, password):
            return PASSWORD_BIND_PATH, {"user_name": user_name, "password": password}
        case WechatPhone(phone_code, create_account):
            # The IDaaS calls it ``wechat_code`` (its docs' table misspells it ``wchat_code``;
            # its example, which we follow, does not).
            return PHONE_PATHS[create_account], {"wechat_code": phone_code}
        case VerifiedContact(verify_code, mobile, email, create_account):
            contact = {"mobile": mobile} if mobile else {"email": email or ""}
            return CODE_PATHS[create_account], {**contact, "verify_code": verify_code}
    raise TypeError(f"not a bind credential: {type(credential).__name__}")


# ----------------------------------------------------------------- answers


class _Answer(Schema):
    class Meta:
        unknown = EXCLUDE  # the IDaaS may add fields; we read only ours


class FlowAnswer(_Answer):
    """A 200 from login, bind or refresh. ``status`` is normalised; ``data`` parsed to ``flows``."""

    status = fields.String(load_default=None)
    session_token = fields.String(load_default=None, validate=validate.Length(min=1))
    expire = fields.Integer(load_default=None, strict=False, validate=validate.Range(min=1))
    id_token = fields.String(load_default=None, validate=validate.Length(min=1))
    state_token = fields.String(load_default=None, validate=validate.Length(min=1))
    data = fields.Raw(load_default=None, allow_none=True)

    @pre_load
    def _normalise(self, raw: Any, **kwargs: Any) -> Any:
        if isinstance(raw, dict) and isinstance(raw.get("status"), str):
            raw = {**raw, "status": raw["status"].strip().upper()}  # the vendor's have spaces
        return raw

    @post_load
    def _answer(self, data: dict[str, Any], **kwargs: Any) -> IdaasAnswer:
        raw = data.pop("data")
        if data["status"] in PASSWORD_STATUSES:  # its data is the password policy
            return IdaasAnswer(**data, policy=parse_policy(raw))
        return IdaasAnswer(**data, flows=tuple(parse_flows(raw)))


def parse_flows(data: Any) -> list[str]:
    """``socialBindOrRegisterFlow`` from the IDaaS ``data`` field: a JSON string, or null."""
    if data is None or data == "":
        return []
    try:
        parsed = json.loads(data) if isinstance(data, str) else data
    except ValueError:
        raise ValidationError("data is not JSON", "data") from None
    flows = parsed.get("socialBindOrRegisterFlow") if isinstance(parsed, dict) else None
    if flows is None:
        return []
    if not isinstance(flows, list) or not all(isinstance(f, str) for f in flows):
        raise ValidationError("socialBindOrRegisterFlow is not a list of strings", "data")
    return [f.strip() for f in flows]


class ErrorAnswer(_Answer):
    error_code = fields.String(required=True, validate=validate.Length(min=1, max=128))
    error_msg = fields.String(load_default="", validate=validate.Length(max=1024))


class CaptchaAnswer(_Answer):
    token = fields.String(required=True, validate=validate.Length(min=1))
    original_image_base64 = fields.String(data_key="originalImageBase64", load_default=None)
    jigsaw_image_base64 = fields.String(data_key="jigsawImageBase64", load_default=None)
    secret_key = fields.String(data_key="secretKey", load_default=None)

    @post_load
    def _captcha(self, data: dict[str, Any], **kwargs: Any) -> Captcha:
        return Captcha(**data)


class CaptchaTokenAnswer(_Answer):
    captcha_token = fields.String(required=True, validate=validate.Length(min=1))


# Built once and shared: loading with a schema is safe across threads, building one is not free.
_ERROR = ErrorAnswer()
_FLOW = FlowAnswer()
_CAPTCHA = CaptchaAnswer()
_CAPTCHA_TOKEN = CaptchaTokenAnswer()


# ----------------------------------------------------------------- the client


class IdaasClient(AccountCalls):
    """One method per IDaaS call; every answer validated, every 4xx an :class:`IdaasError`.
    The calls of a login's next step and of the user's binding: :class:`AccountCalls`."""

    def __init__(self, http: Upstream, client_id: str, session_token_header: str) -> None:
        self._http = http
        self._client_id = client_id
        self._session_token_header = session_token_header

    def _call(
        self,
        method: str,
        path: str,
        device: Device,
        *,
        body: object = None,
        extra: dict[str, str] | None = None,
    ) -> Answer:
        # Only the allow-listed headers: nothing else from the client is forwarded, and the
        # client id is ours whatever the client sent.
        headers = {
            **device.headers(),
            **(extra or {}),
            "X-client-id": self._client_id,
            "Content-Type": "application/json",
        }
        answer = self._http.send(method, path, headers=headers, body=body)
        if answer.status >= 400:
            err = _load(_ERROR, answer.body)
            raise IdaasError(answer.status, err["error_code"], err["error_msg"])
        return answer

    def _flow(
        self, path: str, device: Device, body: object, extra: dict[str, str], method: str = "POST"
    ) -> IdaasAnswer:
        answer: IdaasAnswer = _load(
            _FLOW, self._call(method, path, device, body=body, extra=extra).body
        )
        return answer

    def login(self, code: str, device: Device) -> IdaasAnswer:
        """Mini-program login with a wx.login code."""
        return self._flow(LOGIN_PATH, device, {"code": code}, {})

    def login_with_phone(self, phone_code: str, device: Device) -> IdaasAnswer:
        """Mini-program login with the WeChat phone-number button's code."""
        return self._flow(LOGIN_PHONE_PATH, device, {"code": phone_code}, {})

    def bind(self, credential: BindCredential, state_token: str, device: Device) -> IdaasAnswer:
        """Spend the pending state token on the route ``credential`` proves."""
        path, body = bind_call(credential)
        return self._flow(path, device, body, {"X-state-token": state_token})

    def refresh(self, session_token: str, device: Device) -> IdaasAnswer:
        """A new id_token (and maybe a rotated session_token) from the cached session token."""
        extra = {self._session_token_header: session_token}
        answer: IdaasAnswer = _load(
            _FLOW, self._call("POST", REFRESH_PATH, device, extra=extra).body
        )
        return answer

    def captcha(self, device: Device) -> Captcha:
        puzzle: Captcha = _load(_CAPTCHA, self._call("GET", CAPTCHA_PATH, device).body)
        return puzzle

    def verify_captcha(self, token: str, point_json: str, sender: str, device: Device) -> str:
        """The ``captcha_token`` a solved slider earns (it never leaves bff)."""
        body = {"point_json": point_json, "token": token, "sender": sender}
        answer = self._call("POST", CAPTCHA_VERIFY_PATH, device, body=body)
        return str(_load(_CAPTCHA_TOKEN, answer.body)["captcha_token"])

    def send_code(
        self, channel: str, purpose: str, to: str, captcha_token: str, device: Device
    ) -> None:
        field = "mobile" if channel == "sms" else "email"
        body = {field: to, "type": CODE_TYPES[channel, purpose], "captcha_token": captcha_token}
        self._call("POST", SEND_CODE_PATHS[channel], device, body=body)

    def jwks(self) -> dict[str, Any]:
        """The IDaaS signing keys (no device headers: a server-to-server fetch)."""
        answer = self._http.send("GET", JWKS_PATH)
        if answer.status != 200 or not isinstance(answer.body, dict):
            raise bad_response()
        return answer.body
