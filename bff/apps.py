"""The apps one deployment serves: the default one (the environment's variables, as a single-app
deployment has always been configured) and those of ``BFF_APPS_FILE``.

An app is one WeChat mini program (its appid and secret) signing in at one IDaaS app (a base
URL and client id; two apps may share a tenant), with its own identity mode, sign-in routes,
limits and Redis key prefix. The file is TOML, read with the standard library::

    [apps.shop]
    wechat_appid = "wx0123456789abcdef"
    wechat_secret = { env = "SHOP_WECHAT_SECRET" }    # or { file = "/run/secrets/shop-wechat" }
    idaas_client_id = "shop-client"
    # optional, each defaulting to the environment's:
    idaas_base_url = "https://shop.tenant.example.com"
    wechat_api_base = "https://api.weixin.qq.com"      # WeChat's, or an egress proxy's
    identity_source = "wechat"
    routes = ["login", "bind/username-password"]
    rate_limit_bind = "openid=5/minute,ip=30/minute,account=4/15minutes"
    redis_key_prefix = "bff.shop"                      # default: REDIS_KEY_PREFIX + "." + name

Secrets are never written in the file: a secret is ``{env = NAME}`` or ``{file = PATH}``.
:mod:`bff.apps_file` reads the file; :mod:`bff.settings` builds every app with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bff.limits import Limits, Scope

DEFAULT_APP = "default"
APP_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
PREFIX = re.compile(r"^[A-Za-z0-9_.{}-]{1,64}$")
WECHAT_APPID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
IDENTITY_SOURCES = ("wechat", "gateway")
# The sign-in routes an app may switch off (below /api/v1); the session routes are always on.
SIGN_IN_ROUTES = (
    "login",
    "login/phone",
    "bind/username-password",
    "bind/wechat-phone",
    "bind/verification-code",
    "register/wechat-phone",
    "register/verification-code",
    "captcha",
    "verification-codes",
)
RATE_LIMITS = {  # the key in the file -> the scopes it may name
    "rate_limit_bind": (Scope.OPENID, Scope.IP, Scope.ACCOUNT),
    "rate_limit_login": (Scope.OPENID, Scope.IP),
    "rate_limit_codes": (Scope.DESTINATION, Scope.OPENID, Scope.IP),
    "rate_limit_session": (Scope.OPENID,),
}
TEXT_KEYS = (
    "idaas_base_url",
    "idaas_client_id",
    "identity_source",
    "idaas_session_token_header",
    "wechat_appid",
    "wechat_api_base",
    "redis_key_prefix",
)
KNOWN_KEYS = {*TEXT_KEYS, "wechat_secret", "routes", "idaas_verify_id_token", *RATE_LIMITS}


@dataclass(frozen=True)
class AppSettings:
    """One app: who it is on WeChat and at the IDaaS, and how it signs users in."""

    name: str
    redis_key_prefix: str
    identity_source: str
    idaas_base_url: str
    idaas_client_id: str
    idaas_session_token_header: str
    idaas_verify_id_token: bool
    wechat_appid: str | None
    wechat_secret: str | None = field(repr=False)
    wechat_api_base: str
    rate_limit_bind: Limits
    rate_limit_login: Limits
    rate_limit_session: Limits
    rate_limit_codes: Limits
    routes: frozenset[str] = frozenset(SIGN_IN_ROUTES)

    def redacted(self) -> dict[str, Any]:
        """What the start-up line and ``bff-admin check-config`` show: no secret, no URL."""
        return {
            "name": self.name,
            "redis_key_prefix": self.redis_key_prefix,
            "identity_source": self.identity_source,
            "idaas_host": urlsplit(self.idaas_base_url).hostname,
            "idaas_client_id": self.idaas_client_id,
            "wechat_appid": self.wechat_appid,
            "wechat_secret": "***" if self.wechat_secret else None,
            "routes": sorted(self.routes),
        }
