"""What one variable alone cannot say: secrets by identity mode, TLS in production, and which
Redis topology (standalone, Cluster or Sentinel) the variables describe."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

IDP_EVENT_KEYS = {  # the receiver of the IdP's events is on when all three are set
    "idp_events_token": "IDP_EVENTS_TOKEN",
    "idp_events_encryption_key": "IDP_EVENTS_ENCRYPTION_KEY",
    "idp_events_signature_key": "IDP_EVENTS_SIGNATURE_KEY",
}


def _tls_or_loopback(url: str) -> bool:
    """Passwords, tokens and the WeChat secret travel in these calls: TLS, or this very host."""
    parts = urlsplit(url)
    return parts.scheme == "https" or (
        parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
    )


def _redis_checks(data: Mapping[str, Any]) -> dict[str, str]:
    """Sentinel mode (``REDIS_SENTINELS`` set) is neither Cluster nor a Unix socket."""
    problems: dict[str, str] = {}
    if not data.get("redis_sentinels"):
        return problems
    if data.get("redis_cluster"):
        problems["REDIS_SENTINELS"] = (
            "set together with REDIS_CLUSTER=true: Redis Sentinel or Redis Cluster, not both "
            "(unset REDIS_SENTINELS or REDIS_CLUSTER)"
        )
    if str(data.get("redis_url", "")).startswith("unix://"):
        problems["REDIS_URL"] = (
            "unix:// with REDIS_SENTINELS: in Sentinel mode REDIS_URL gives the master's "
            "database, user, password and TLS (redis:// or rediss://), the sentinels its address"
        )
    return problems


def cross_checks(data: Mapping[str, Any]) -> dict[str, str]:
    """Every problem of the loaded ``data`` that takes two variables to see, by variable."""
    problems: dict[str, str] = {**_redis_checks(data), **_paired_secrets(data)}
    if data.get("identity_source") == "wechat":
        for key, name in (("wechat_appid", "WECHAT_APPID"), ("wechat_secret", "WECHAT_SECRET")):
            if not data.get(key):
                problems[name] = "required when IDENTITY_SOURCE=wechat"
    if data.get("identity_source") == "gateway" and not data.get("gateway_secret"):
        problems["GATEWAY_SECRET"] = "required when IDENTITY_SOURCE=gateway"  # noqa: S105
    if data.get("bff_env") == "production":
        for key, name in (
            ("idaas_base_url", "IDAAS_BASE_URL"),
            ("wechat_api_base", "WECHAT_API_BASE"),
        ):
            if key in data and not _tls_or_loopback(data[key] or ""):
                problems[name] = "must be https:// in production (plain http: loopback only)"
    return problems


def _paired_secrets(data: Mapping[str, Any]) -> dict[str, str]:
    """The WebHook's keys come all three or none; a previous secret only beside its current."""
    problems: dict[str, str] = {}
    missing = [name for field, name in IDP_EVENT_KEYS.items() if not data.get(field)]
    if 0 < len(missing) < len(IDP_EVENT_KEYS):
        for name in missing:
            problems[name] = "required when another IDP_EVENTS_* key is set"
    for previous, current in (
        ("GATEWAY_SECRET", "gateway_secret"),
        ("LOG_HASH_KEY", "log_hash_key"),
    ):
        if data.get(current + "_previous") and not data.get(current):
            problems[previous + "_PREVIOUS"] = f"set only beside {previous} (the new value)"
    return problems
