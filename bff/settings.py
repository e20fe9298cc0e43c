"""Typed settings, parsed and validated once from the environment (SPEC §9)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import fields as dc_fields
from typing import Any
from urllib.parse import urlsplit

from limits import RateLimitItem, parse_many
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

ENVS = ("development", "production")
IDENTITY_SOURCES = ("wechat", "gateway")
SECRET_FIELDS = ("wechat_secret", "gateway_secret", "log_hash_key")
URL_FIELDS = ("idaas_base_url", "wechat_api_base", "redis_url")  # logged as their host only
RATE_SCOPES = {
    "RATE_LIMIT_BIND": ("openid", "ip"),
    "RATE_LIMIT_LOGIN": ("openid", "ip"),
    "RATE_LIMIT_CODES": ("destination", "openid", "ip"),
}

# Fixed loopback ports so that `make run`'s walk-through can be pasted as printed.
DEV_PORTS = {"bff": 8000, "idaas": 8101, "wechat": 8102, "redis": 6399}
DEV_DEFAULTS: dict[str, str] = {
    "IDAAS_BASE_URL": f"http://127.0.0.1:{DEV_PORTS['idaas']}",
    "IDAAS_CLIENT_ID": "dev-client",
    "REDIS_URL": f"redis://127.0.0.1:{DEV_PORTS['redis']}/0",
    "WECHAT_APPID": "wx-sim-appid",
    "WECHAT_SECRET": "wx-sim-secret",
    "WECHAT_API_BASE": f"http://127.0.0.1:{DEV_PORTS['wechat']}",
    "GATEWAY_SECRET": "dev-gateway-secret",
    "LOG_LEVEL": "INFO",
}

_HEADER_NAME = validate.Regexp(r"^[A-Za-z0-9-]{1,64}$", error="not a valid HTTP header name")


def _tls_or_loopback(url: str) -> bool:
    """Passwords, tokens and the WeChat secret travel in these calls: TLS, or this very host."""
    parts = urlsplit(url)
    return parts.scheme == "https" or (
        parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
    )


class SettingsError(Exception):
    """A missing or malformed setting; the message names the variable."""


RateLimits = dict[str, tuple[RateLimitItem, ...]]


def parse_rate_limits(value: str, scopes: tuple[str, ...]) -> RateLimits:
    """Parse ``"openid=5/minute ip=30/minute"``; a bare ``"20/minute"`` applies to every scope.

    Within a scope, several limits are separated by ``;`` (``1/minute;5/hour``).
    """
    groups = value.split()
    if not groups:
        raise ValueError("empty rate limit")
    parsed: RateLimits = {}
    for group in groups:
        scope, sep, spec = group.rpartition("=")
        targets = (scope,) if sep else scopes
        if sep and scope not in scopes:
            raise ValueError(f"unknown scope {scope!r} (one of {', '.join(scopes)})")
        items = tuple(parse_many(spec))
        for target in targets:
            parsed[target] = parsed.get(target, ()) + items
    return parsed


class _RateLimitField(fields.Field):  # type: ignore[type-arg]
    def __init__(self, scopes: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scopes = scopes

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> RateLimits:
        try:
            return parse_rate_limits(str(value), self.scopes)
        except ValueError as exc:
            raise ValidationError(f"not a rate limit like '5/minute': {exc}") from None


def _positive(**kw: Any) -> fields.Float:
    return fields.Float(validate=validate.Range(min=0, min_inclusive=False), **kw)


def _count(minimum: int = 1, **kw: Any) -> fields.Integer:
    return fields.Integer(strict=False, validate=validate.Range(min=minimum), **kw)


def _rate(name: str, default: str) -> _RateLimitField:
    scopes = RATE_SCOPES[name]  # marshmallow does not deserialize defaults: parse it here
    return _RateLimitField(scopes, data_key=name, load_default=parse_rate_limits(default, scopes))


class _Env(Schema):
    class Meta:
        unknown = EXCLUDE  # the environment holds far more than ours

    bff_env = fields.String(
        data_key="BFF_ENV", load_default="production", validate=validate.OneOf(ENVS)
    )
    idaas_base_url = fields.Url(data_key="IDAAS_BASE_URL", required=True, require_tld=False)
    idaas_client_id = fields.String(
        data_key="IDAAS_CLIENT_ID", required=True, validate=validate.Length(min=1, max=256)
    )
    idaas_connect_timeout_s = _positive(data_key="IDAAS_CONNECT_TIMEOUT_S", load_default=2.0)
    idaas_read_timeout_s = _positive(data_key="IDAAS_READ_TIMEOUT_S", load_default=8.0)
    idaas_session_token_header = fields.String(
        data_key="IDAAS_SESSION_TOKEN_HEADER", load_default="session-token", validate=_HEADER_NAME
    )
    idaas_verify_id_token = fields.Boolean(data_key="IDAAS_VERIFY_ID_TOKEN", load_default=True)
    redis_url = fields.String(
        data_key="REDIS_URL",
        required=True,
        validate=validate.Regexp(
            r"^(redis|rediss|unix)://", error="must start with redis://, rediss:// or unix://"
        ),
    )
    redis_cluster = fields.Boolean(data_key="REDIS_CLUSTER", load_default=False)
    redis_key_prefix = fields.String(
        data_key="REDIS_KEY_PREFIX",
        load_default="bff",
        validate=validate.Regexp(r"^[A-Za-z0-9_.{}-]{1,64}$"),
    )
    identity_source = fields.String(
        data_key="IDENTITY_SOURCE", load_default="wechat", validate=validate.OneOf(IDENTITY_SOURCES)
    )
    wechat_appid = fields.String(data_key="WECHAT_APPID", load_default=None)
    wechat_secret = fields.String(data_key="WECHAT_SECRET", load_default=None)
    wechat_api_base = fields.Url(
        data_key="WECHAT_API_BASE", load_default="https://api.weixin.qq.com", require_tld=False
    )
    wechat_connect_timeout_s = _positive(data_key="WECHAT_CONNECT_TIMEOUT_S", load_default=2.0)
    wechat_read_timeout_s = _positive(data_key="WECHAT_READ_TIMEOUT_S", load_default=5.0)
    handle_ttl_s = _count(data_key="HANDLE_TTL_S", load_default=604800)
    state_token_ttl_s = _count(data_key="STATE_TOKEN_TTL_S", load_default=600)
    gateway_openid_header = fields.String(
        data_key="GATEWAY_OPENID_HEADER", load_default="X-WX-OPENID", validate=_HEADER_NAME
    )
    gateway_unionid_header = fields.String(
        data_key="GATEWAY_UNIONID_HEADER", load_default="X-WX-UNIONID", validate=_HEADER_NAME
    )
    gateway_secret_header = fields.String(
        data_key="GATEWAY_SECRET_HEADER", load_default="X-Gateway-Secret", validate=_HEADER_NAME
    )
    gateway_secret = fields.String(
        data_key="GATEWAY_SECRET", load_default=None, validate=validate.Length(min=16)
    )
    trusted_proxy_count = _count(minimum=0, data_key="TRUSTED_PROXY_COUNT", load_default=1)
    max_body_bytes = _count(minimum=64, data_key="MAX_BODY_BYTES", load_default=16384)
    rate_limit_bind = _rate("RATE_LIMIT_BIND", "openid=5/minute ip=30/minute")
    rate_limit_login = _rate("RATE_LIMIT_LOGIN", "20/minute")
    rate_limit_codes = _rate(
        "RATE_LIMIT_CODES", "destination=1/minute;5/hour openid=10/day ip=20/hour"
    )
    circuit_failures = _count(data_key="CIRCUIT_FAILURES", load_default=5)
    circuit_reset_s = _positive(data_key="CIRCUIT_RESET_S", load_default=30.0)
    log_level = fields.String(
        data_key="LOG_LEVEL",
        load_default="INFO",
        validate=validate.OneOf(("DEBUG", "INFO", "WARNING", "ERROR")),
    )
    log_hash_key = fields.String(data_key="LOG_HASH_KEY", load_default=None)

    @validates_schema
    def _mode_secrets(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("identity_source") == "wechat":
            for key, name in (("wechat_appid", "WECHAT_APPID"), ("wechat_secret", "WECHAT_SECRET")):
                if not data.get(key):
                    raise ValidationError("required when IDENTITY_SOURCE=wechat", name)
        if data.get("identity_source") == "gateway" and not data.get("gateway_secret"):
            raise ValidationError("required when IDENTITY_SOURCE=gateway", "GATEWAY_SECRET")
        if data.get("bff_env") == "production":
            for key, name in (
                ("idaas_base_url", "IDAAS_BASE_URL"),
                ("wechat_api_base", "WECHAT_API_BASE"),
            ):
                if not _tls_or_loopback(data.get(key) or ""):
                    raise ValidationError(
                        "must be https:// in production (plain http: loopback only)", name
                    )


@dataclass(frozen=True)
class Settings:
    """Every SPEC §9 variable, typed. Built by :func:`load_settings`."""

    bff_env: str
    idaas_base_url: str
    idaas_client_id: str
    idaas_connect_timeout_s: float
    idaas_read_timeout_s: float
    idaas_session_token_header: str
    idaas_verify_id_token: bool
    redis_url: str
    redis_cluster: bool
    redis_key_prefix: str
    identity_source: str
    wechat_appid: str | None
    wechat_secret: str | None
    wechat_api_base: str
    wechat_connect_timeout_s: float
    wechat_read_timeout_s: float
    handle_ttl_s: int
    state_token_ttl_s: int
    gateway_openid_header: str
    gateway_unionid_header: str
    gateway_secret_header: str
    gateway_secret: str | None
    trusted_proxy_count: int
    max_body_bytes: int
    rate_limit_bind: RateLimits
    rate_limit_login: RateLimits
    rate_limit_codes: RateLimits
    circuit_failures: int
    circuit_reset_s: float
    log_level: str
    log_hash_key: str | None

    @property
    def idaas_timeout(self) -> tuple[float, float]:
        return (self.idaas_connect_timeout_s, self.idaas_read_timeout_s)

    @property
    def wechat_timeout(self) -> tuple[float, float]:
        return (self.wechat_connect_timeout_s, self.wechat_read_timeout_s)

    def redacted(self) -> dict[str, Any]:
        """The effective settings for the start-up log line, secrets as ``***``."""
        out: dict[str, Any] = {}
        for f in dc_fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS and value:
                value = "***"
            elif f.name in URL_FIELDS:
                value = urlsplit(value).hostname or urlsplit(value).scheme  # no URL, no password
            elif isinstance(value, dict):
                value = {k: ";".join(str(i) for i in v) for k, v in value.items()}
            out[f.name] = value
        return out


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from a mapping (default ``os.environ``).

    :raises SettingsError: naming the first variable that is missing or malformed.
    """
    env = dict(os.environ if environ is None else environ)
    env = {k: v for k, v in env.items() if v != ""}  # an empty variable counts as unset
    if env.get("BFF_ENV") == "development":
        env = {**DEV_DEFAULTS, **env}  # simulators + in-process Redis stand-in
    try:
        return Settings(**_Env().load(env))
    except ValidationError as exc:
        messages = exc.normalized_messages()  # type: ignore[no-untyped-call]
        name, problems = next(iter(sorted(messages.items())))
        problem = problems[0] if isinstance(problems, list) else problems
        raise SettingsError(f"{name}: {problem}") from None
