"""IdaasClient: the server-held headers, one call per IDaaS endpoint, validated answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from marshmallow import Schema, ValidationError

from bff.clients._http import BAD, Answer, Upstream
from bff.errors import BffError, upstream_error
from bff.schemas import IdaasAnswer, IdaasCaptcha, IdaasCaptchaToken, IdaasErrorBody

LOGIN_PATH = "/api/v2/sdk/login/wechat-miniprogram"
LOGIN_PHONE_PATH = "/api/v2/sdk/login/wechat-mini-program-mobile"
BIND_PASSWORD_PATH = "/api/v2/sdk/social/username-password-bind"  # noqa: S105 (a path)
BIND_WECHAT_PHONE_PATH = "/api/v2/sdk/social/wechat-mobile-bind"
BIND_CODE_PATH = "/api/v2/sdk/social/bind"
REGISTER_WECHAT_PHONE_PATH = "/api/v2/sdk/social/wechat-mobile-register-bind"
REGISTER_CODE_PATH = "/api/v2/sdk/social/register-bind"
REFRESH_PATH = "/api/v2/sdk/sso/session-token/id-token"
CAPTCHA_PATH = "/api/v2/sdk/captcha"
CAPTCHA_VERIFY_PATH = "/api/v2/sdk/captcha/verify"
SEND_CODE_PATHS = {"sms": "/api/v2/sdk/sms/send", "email": "/api/v2/sdk/email/send"}
JWKS_PATH = "/api/v1/oauth2/keys"


class IdaasError(BffError):
    """An IDaaS 4xx business error, passed on with its status and code (SPEC §4)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, code, message)

    @property
    def suffix(self) -> str:
        """``LOGIN.1005`` from ``IDAAS.SDK.LOGIN.1005`` (CIAM) or ``SDK.LOGIN.1005`` (EIAM)."""
        return code_suffix(self.code)


def code_suffix(code: str) -> str:
    parts = code.split(".")
    return ".".join(parts[-2:]) if len(parts) >= 2 else code


@dataclass(frozen=True)
class Device:
    """The device headers the IDaaS requires, as the mini program sent them, plus our IP.

    ``os_version`` and ``fingerprint`` are None only where the BFF does not require them
    (``GET /api/v1/captcha``): a header that is absent is not sent.
    """

    os_version: str | None
    fingerprint: str | None
    agent: str | None
    lang: str | None
    ip: str | None

    def headers(self) -> dict[str, str]:
        named = (
            ("X-operating-sys-version", self.os_version),
            ("X-device-fingerprint", self.fingerprint),
            ("X-agent", self.agent),
            ("X-L", self.lang),
            ("X-device-ip", self.ip),
        )
        return {name: value for name, value in named if value}


# Built once and shared: loading with a schema is safe across threads, building one is not free.
_ERROR_BODY = IdaasErrorBody()
_ANSWER = IdaasAnswer()
_CAPTCHA = IdaasCaptcha()
_CAPTCHA_TOKEN = IdaasCaptchaToken()


def _load(schema: Schema, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise upstream_error(502, BAD)
    try:
        loaded: dict[str, Any] = schema.load(body)
    except ValidationError as exc:
        raise upstream_error(502, BAD) from exc
    return loaded


class IdaasClient:
    """One method per IDaaS call; every answer validated, every 4xx an :class:`IdaasError`."""

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
        # Only the allow-listed headers: nothing else from the client is forwarded.
        headers = {
            **device.headers(),
            **(extra or {}),
            "X-client-id": self._client_id,
            "Content-Type": "application/json",
        }
        answer = self._http.send(method, path, headers=headers, body=body)
        if answer.status >= 400:
            err = _load(_ERROR_BODY, answer.body)
            raise IdaasError(answer.status, err["error_code"], err["error_msg"])
        return answer

    def _flow(
        self, path: str, device: Device, body: object, state_token: str | None
    ) -> dict[str, Any]:
        extra = {"X-state-token": state_token} if state_token else None
        answer = self._call("POST", path, device, body=body, extra=extra)
        return _load(_ANSWER, answer.body)

    def login(self, path: str, code: str, device: Device) -> dict[str, Any]:
        """Mini-program login (``code`` from wx.login, or a phone-number code)."""
        return self._flow(path, device, {"code": code}, None)

    def bind(
        self, path: str, body: dict[str, Any], state_token: str, device: Device
    ) -> dict[str, Any]:
        """Any route that spends the pending state token (username-password, phone, code)."""
        return self._flow(path, device, body, state_token)

    def refresh(self, session_token: str, device: Device) -> dict[str, Any]:
        """A new id_token (and maybe a rotated session_token) from the cached session token."""
        answer = self._call(
            "POST", REFRESH_PATH, device, extra={self._session_token_header: session_token}
        )
        return _load(_ANSWER, answer.body)

    def captcha(self, device: Device) -> dict[str, Any]:
        return _load(_CAPTCHA, self._call("GET", CAPTCHA_PATH, device).body)

    def verify_captcha(self, token: str, point_json: str, sender: str, device: Device) -> str:
        body = {"point_json": point_json, "token": token, "sender": sender}
        answer = self._call("POST", CAPTCHA_VERIFY_PATH, device, body=body)
        return str(_load(_CAPTCHA_TOKEN, answer.body)["captcha_token"])

    def send_code(
        self, channel: str, to: str, code_type: str, captcha_token: str, device: Device
    ) -> None:
        field = "mobile" if channel == "sms" else "email"
        body = {field: to, "type": code_type, "captcha_token": captcha_token}
        self._call("POST", SEND_CODE_PATHS[channel], device, body=body)

    def jwks(self) -> dict[str, Any]:
        """The IDaaS signing keys (no device headers: a server-to-server fetch)."""
        answer = self._http.send("GET", JWKS_PATH)
        if answer.status != 200 or not isinstance(answer.body, dict):
            raise upstream_error(502, BAD)
        return answer.body
