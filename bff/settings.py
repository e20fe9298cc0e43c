"""Typed settings, parsed and validated once from the environment."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from typing import Any
from urllib.parse import urlsplit

from marshmallow import Schema, fields, validate

from bff.apps import IDENTITY_SOURCES, AppSettings
from bff.apps_file import apps_of
from bff.env_fields import (
    HostPorts,
    LogLevel,
    RateLimitField,
    check_environment,
    count,
    env_var,
    environment,
    from_files,
    header,
    parse_rate_limits,
    positive,
    secret_key,
    secret_var,
    settings_problem,
)
from bff.limits import Limits, Scope
from bff.messages import LANGUAGES
from bff.settings_checks import IDP_EVENT_KEYS, cross_checks

ENVS = ("development", "production")
SECRET_FIELDS = (
    "wechat_secret",
    "gateway_secret",
    "gateway_secret_previous",
    "log_hash_key",
    "log_hash_key_previous",
    "redis_sentinel_password",
    *IDP_EVENT_KEYS,
)
URL_FIELDS = ("idaas_base_url", "wechat_api_base", "redis_url")  # logged as their host only
OPENID, IP, ACCOUNT, DESTINATION = Scope.OPENID, Scope.IP, Scope.ACCOUNT, Scope.DESTINATION
RATE_SCOPES = {  # the scopes each limit setting may name
    "RATE_LIMIT_BIND": (OPENID, IP, ACCOUNT),
    "RATE_LIMIT_LOGIN": (OPENID, IP),
    "RATE_LIMIT_CODES": (DESTINATION, OPENID, IP),
    "RATE_LIMIT_SESSION": (OPENID,),
}

# Every Redis client bff makes (the session store and the rate limiter alike) uses these: one
# socket/connect timeout and one immediate retry of a connection that failed (not of a slow
# answer: bff.services.redis_client). A limiter with a shorter timeout than the store
# would fail open on a Redis slow enough to time it out yet fast enough to serve the store.
REDIS_TIMEOUT_S = 1.0
REDIS_RETRIES = 1
# Connections one worker keeps to Redis; a caller past them waits up to REDIS_TIMEOUT_S for one.
REDIS_MAX_CONNECTIONS = 64
# Sentinel mode: how long a sign-in's writes wait for REDIS_SENTINEL_WAIT_REPLICAS replicas
# (``WAIT``), below REDIS_TIMEOUT_S so that the socket does not time out first.
REDIS_WAIT_REPLICAS_MS = 500


def _rate(name: str, default: str) -> RateLimitField:
    scopes = RATE_SCOPES[name]  # marshmallow does not deserialize defaults: parse it here
    return RateLimitField(scopes, data_key=name, load_default=parse_rate_limits(default, scopes))


@dataclass(frozen=True)
class Settings:
    """Every variable, declared once: its type, its variable, its default and its checks.

    Built by :func:`load_settings`; the loading schema is made from these declarations.
    """

    bff_env: str = env_var(
        fields.String(data_key="BFF_ENV", load_default="production", validate=validate.OneOf(ENVS))
    )
    idaas_base_url: str = env_var(
        fields.Url(data_key="IDAAS_BASE_URL", required=True, require_tld=False)
    )
    idaas_client_id: str = env_var(
        fields.String(
            data_key="IDAAS_CLIENT_ID", required=True, validate=validate.Length(min=1, max=256)
        )
    )
    idaas_connect_timeout_s: float = env_var(positive("IDAAS_CONNECT_TIMEOUT_S", 2.0))
    idaas_read_timeout_s: float = env_var(positive("IDAAS_READ_TIMEOUT_S", 8.0))
    idaas_session_token_header: str = env_var(header("IDAAS_SESSION_TOKEN_HEADER", "session-token"))
    idaas_verify_id_token: bool = env_var(
        fields.Boolean(data_key="IDAAS_VERIFY_ID_TOKEN", load_default=True)
    )
    redis_url: str = secret_var(  # it may carry a password
        fields.String(
            data_key="REDIS_URL",
            required=True,
            validate=validate.Regexp(
                r"^(redis|rediss|unix)://", error="must start with redis://, rediss:// or unix://"
            ),
        )
    )
    redis_cluster: bool = env_var(fields.Boolean(data_key="REDIS_CLUSTER", load_default=False))
    redis_sentinels: tuple[tuple[str, int], ...] | None = env_var(
        HostPorts(data_key="REDIS_SENTINELS", load_default=None)
    )
    redis_sentinel_master: str = env_var(
        fields.String(
            data_key="REDIS_SENTINEL_MASTER",
            load_default="mymaster",
            validate=validate.Regexp(r"^[A-Za-z0-9_.:-]{1,128}$"),
        )
    )
    redis_sentinel_password: str | None = secret_var(
        fields.String(data_key="REDIS_SENTINEL_PASSWORD", load_default=None)
    )
    redis_sentinel_wait_replicas: int = env_var(count("REDIS_SENTINEL_WAIT_REPLICAS", 1, minimum=0))
    redis_key_prefix: str = env_var(
        fields.String(
            data_key="REDIS_KEY_PREFIX",
            load_default="bff",
            validate=validate.Regexp(r"^[A-Za-z0-9_.{}-]{1,64}$"),
        )
    )
    identity_source: str = env_var(
        fields.String(
            data_key="IDENTITY_SOURCE",
            load_default="wechat",
            validate=validate.OneOf(IDENTITY_SOURCES),
        )
    )
    wechat_appid: str | None = env_var(fields.String(data_key="WECHAT_APPID", load_default=None))
    wechat_secret: str | None = secret_var(
        fields.String(data_key="WECHAT_SECRET", load_default=None)
    )
    wechat_api_base: str = env_var(
        fields.Url(
            data_key="WECHAT_API_BASE", load_default="https://api.weixin.qq.com", require_tld=False
        )
    )
    wechat_connect_timeout_s: float = env_var(positive("WECHAT_CONNECT_TIMEOUT_S", 2.0))
    wechat_read_timeout_s: float = env_var(positive("WECHAT_READ_TIMEOUT_S", 5.0))
    handle_ttl_s: int = env_var(count("HANDLE_TTL_S", 604800))
    # The audit records also on a Redis Stream per app, about this many kept; 0: the log only.
    audit_stream_maxlen: int = env_var(count("AUDIT_STREAM_MAXLEN", 0, minimum=0))
    state_token_ttl_s: int = env_var(count("STATE_TOKEN_TTL_S", 600))
    gateway_openid_header: str = env_var(header("GATEWAY_OPENID_HEADER", "X-WX-OPENID"))
    gateway_unionid_header: str = env_var(header("GATEWAY_UNIONID_HEADER", "X-WX-UNIONID"))
    gateway_appid_header: str = env_var(header("GATEWAY_APPID_HEADER", "X-WX-APPID"))
    gateway_secret_header: str = env_var(header("GATEWAY_SECRET_HEADER", "X-Gateway-Secret"))
    gateway_secret: str | None = secret_var(
        fields.String(
            data_key="GATEWAY_SECRET", load_default=None, validate=validate.Length(min=16)
        ),
    )
    gateway_secret_previous: str | None = secret_var(  # accepted too, during a rotation
        fields.String(
            data_key="GATEWAY_SECRET_PREVIOUS", load_default=None, validate=validate.Length(min=16)
        )
    )
    forward_auth_id_token: bool = env_var(
        fields.Boolean(data_key="FORWARD_AUTH_ID_TOKEN", load_default=False)
    )
    trusted_proxy_count: int = env_var(count("TRUSTED_PROXY_COUNT", 1, minimum=0))
    max_body_bytes: int = env_var(count("MAX_BODY_BYTES", 16384, minimum=64))
    upstream_max_body_bytes: int = env_var(
        count("UPSTREAM_MAX_BODY_BYTES", 1024 * 1024, minimum=1024)
    )
    rate_limit_bind: Limits = env_var(
        _rate("RATE_LIMIT_BIND", "openid=5/minute,ip=30/minute,account=4/15minutes")
    )
    rate_limit_login: Limits = env_var(_rate("RATE_LIMIT_LOGIN", "20/minute"))
    rate_limit_session: Limits = env_var(_rate("RATE_LIMIT_SESSION", "60/minute"))
    rate_limit_codes: Limits = env_var(
        _rate(
            "RATE_LIMIT_CODES",
            "destination=1/minute,destination=5/hour,openid=10/day,ip=20/hour",
        )
    )
    circuit_failures: int = env_var(count("CIRCUIT_FAILURES", 5))
    circuit_reset_s: float = env_var(positive("CIRCUIT_RESET_S", 30.0))
    default_language: str = env_var(
        fields.String(
            data_key="DEFAULT_LANGUAGE", load_default="en", validate=validate.OneOf(LANGUAGES)
        )
    )
    log_level: str = env_var(LogLevel(data_key="LOG_LEVEL", load_default="INFO"))
    log_hash_key: str | None = secret_var(fields.String(data_key="LOG_HASH_KEY", load_default=None))
    log_hash_key_previous: str | None = secret_var(  # logged beside, during a rotation
        fields.String(data_key="LOG_HASH_KEY_PREVIOUS", load_default=None)
    )
    idp_events_token: str | None = secret_var(secret_key("IDP_EVENTS_TOKEN"))
    idp_events_encryption_key: str | None = secret_var(
        secret_key("IDP_EVENTS_ENCRYPTION_KEY", utf8_bytes=32)
    )
    idp_events_signature_key: str | None = secret_var(secret_key("IDP_EVENTS_SIGNATURE_KEY"))
    idp_events_max_age_s: int = env_var(count("IDP_EVENTS_MAX_AGE_S", 300))
    bff_apps_file: str | None = env_var(fields.String(data_key="BFF_APPS_FILE", load_default=None))
    # Every app served, the default one (these variables) first; built by collect_settings.
    apps: tuple[AppSettings, ...] = ()

    @property
    def default_app(self) -> AppSettings:
        return self.apps[0]

    @property
    def idaas_timeout(self) -> tuple[float, float]:
        return (self.idaas_connect_timeout_s, self.idaas_read_timeout_s)

    @property
    def wechat_timeout(self) -> tuple[float, float]:
        return (self.wechat_connect_timeout_s, self.wechat_read_timeout_s)

    @property
    def openid_hash_key(self) -> bytes:
        """``LOG_HASH_KEY``, or one derived from the configured secrets (alike on every
        instance of one deployment, so that one openid hashes alike in all their logs)."""
        if self.log_hash_key:
            return self.log_hash_key.encode()
        material = "\0".join(
            s or "" for s in (self.idaas_client_id, self.wechat_secret, self.gateway_secret)
        )
        return hashlib.sha256(b"bff-log-hash\0" + material.encode()).digest()

    @property
    def openid_hash_key_previous(self) -> bytes | None:
        """``LOG_HASH_KEY_PREVIOUS``: while set, lines carry ``openid_hash_previous`` too."""
        return self.log_hash_key_previous.encode() if self.log_hash_key_previous else None

    def redacted(self) -> dict[str, Any]:
        """The effective settings for the start-up log line, secrets as ``***``."""
        out: dict[str, Any] = {}
        for f in dataclass_fields(self):
            value = getattr(self, f.name)
            if f.name == "apps":
                out["apps"] = [app.redacted() for app in value]
                continue
            if f.name in SECRET_FIELDS and value:
                value = "***"
            elif f.name == "redis_sentinels" and value:
                value = ",".join(f"{host}:{port}" for host, port in value)
            elif f.name in URL_FIELDS:
                value = urlsplit(value).hostname or urlsplit(value).scheme  # no URL, no password
            elif isinstance(value, dict):  # a limit: its rates as the setting wrote them
                value = {k.value: ";".join(str(i) for i in v) for k, v in value.items()}
            out[f.name] = value
        return out


_ENV_SCHEMA = Schema.from_dict(
    {f.name: f.metadata["env"] for f in dataclass_fields(Settings) if "env" in f.metadata},
    name="Environment",
)()
# The variables that may come from a file instead, NAME_FILE: every secret's.
FILE_VARIABLES = tuple(
    f.metadata["env"].data_key for f in dataclass_fields(Settings) if f.metadata.get("file")
)


def collect_settings(env: Mapping[str, str]) -> tuple[Settings | None, dict[str, str]]:
    """Settings from ``env`` (each secret's ``NAME_FILE`` read first) and every problem found
    (None when there are any)."""
    env, file_problems = from_files(env, FILE_VARIABLES)
    data, problems = check_environment(_ENV_SCHEMA, env)
    problems = {**cross_checks(data), **problems, **file_problems}  # its own problem first
    if problems:
        return None, problems
    apps, problems = apps_of(data, env)
    return (None, problems) if problems else (Settings(**data, apps=apps), {})


def load_settings(
    environ: Mapping[str, str] | None = None, *, defaults: Mapping[str, str] | None = None
) -> Settings:
    """Build Settings from a mapping (default ``os.environ``).

    ``defaults`` fill in what the mapping lacks: only the development server passes any
    (:data:`DEV_DEFAULTS`); the production entry point has none, secrets included.

    :raises SettingsError: naming every variable that is missing or malformed, at once.
    """
    settings, problems = collect_settings(environment(environ, defaults))
    if settings is None:
        raise settings_problem(problems)
    return settings
