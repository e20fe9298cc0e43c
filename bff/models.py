"""The value types every layer shares. Plain frozen dataclasses; this module imports nothing of bff.

Who is calling (:class:`WechatIdentity`, :class:`Caller`), from which device (:class:`Device`),
and what bff keeps for them in Redis (:class:`CachedSession`, :class:`PendingBind`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# What an openid or unionid is, whoever vouches for it (code2Session or the gateway); anything
# else is refused before it becomes part of a Redis key.
WECHAT_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


@dataclass(frozen=True)
class WechatIdentity:
    """Who the caller is on WeChat: what code2Session answered, or the gateway's headers."""

    openid: str
    unionid: str | None


@dataclass(frozen=True)
class Caller:
    """An authenticated caller of the mini-program API."""

    openid: str
    unionid: str | None
    handle_sha256: str | None  # wechat mode: the key of the handle the request came with


@dataclass(frozen=True)
class Device:
    """The device headers the IDaaS requires, as the mini program sent them, plus the caller's IP.

    ``os_version`` and ``fingerprint`` are None only where bff does not require them
    (``GET /api/v1/captcha``): a header that is absent is not sent.
    """

    os_version: str | None
    fingerprint: str | None
    agent: str | None
    lang: str | None
    ip: str | None

    def headers(self) -> dict[str, str]:
        """The headers as the IDaaS names them; absent ones left out."""
        named = (
            ("X-operating-sys-version", self.os_version),
            ("X-device-fingerprint", self.fingerprint),
            ("X-agent", self.agent),
            ("X-L", self.lang),
            ("X-device-ip", self.ip),
        )
        return {name: value for name, value in named if value}


@dataclass(frozen=True)
class CachedSession:
    """``{prefix}:session:{openid}``: the IDaaS session, server-side only."""

    session_token: str
    expire_at: int  # unix seconds
    unionid: str | None
    id_token_sub: str | None


@dataclass(frozen=True)
class PendingBind:
    """``{prefix}:pending:{openid}``: the state token a bind or register route will spend."""

    state_token: str
    status: str


@dataclass(frozen=True)
class IdToken:
    """What bff reads from a verified id_token."""

    subject: str | None
    exp: int


@dataclass(frozen=True)
class Counter:
    """A rate-limit counter one request counts against: ``count`` hits per ``window_s``
    seconds on one scope (openid, IP, account, destination) of one route."""

    route: str
    scope: str
    ident: str  # an IP address, an openid, or a hash (accounts, destinations): key-safe
    count: int
    window_s: int

    @property
    def name(self) -> str:
        """The counter's part of its Redis key (the store adds the prefix)."""
        return f"{self.route}:{self.scope}:{self.ident}:{self.count}/{self.window_s}s"
