"""The value types every layer shares. Plain frozen dataclasses; this module imports nothing of bff.

Who is calling (:class:`WechatIdentity`, :class:`Caller`), from which device (:class:`Device`),
what bff keeps for them in Redis (:class:`CachedSession`, :class:`PendingBind`,
:class:`HandleIndex`), what the IDaaS answered (:class:`IdaasAnswer`) and what the mini program
is told (:class:`Outcome`). The credentials of the bind routes are in :mod:`bff.credentials`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# What an openid or unionid is, whoever vouches for it (code2Session or the gateway); anything
# else is refused before it becomes part of a Redis key.
WECHAT_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


@dataclass(frozen=True)
class WechatIdentity:
    """Who the caller is on WeChat: what code2Session answered, or the gateway's headers."""

    openid: str
    unionid: str | None


@dataclass(frozen=True)
class HandleRecord:
    """``{prefix}:handle:{sha256}``: whose a handle is, and the device it was issued to (what
    ``GET /api/v1/sessions`` lists, and what a refresh bff starts itself sends the IDaaS)."""

    openid: str
    unionid: str | None
    issued_at: int = 0  # unix seconds; 0 for a handle issued before bff kept it
    last_used: int = 0  # unix seconds, updated at most once a minute
    device_os: str | None = None
    agent: str | None = None
    fingerprint: str | None = field(default=None, repr=False)
    ip: str | None = None  # masked: 203.0.113.*, 2001:db8:1::*


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
class WechatSession:
    """A new handle for a wx.login code: what ``POST /api/v1/wechat/session`` answers."""

    handle: str = field(repr=False)
    expires_in: int


@dataclass(frozen=True)
class RefreshedToken:
    """A fresh id_token, and the seconds until its ``exp``."""

    id_token: str = field(repr=False)
    expires_in: int


@dataclass(frozen=True)
class CachedSession:
    """``{prefix}:session:{openid}``: the IDaaS session, server-side only."""

    session_token: str = field(repr=False)
    expire_at: int  # unix seconds
    unionid: str | None
    id_token_sub: str | None
    id_token: str | None = field(default=None, repr=False)  # the current one, verified
    id_token_exp: int | None = None  # its exp (unix seconds)


@dataclass(frozen=True)
class PendingBind:
    """``{prefix}:pending:{openid}``: the state token the next step will spend: a bind or
    register route (SOCIAL_BIND, USER_REGISTER), the second factor (MFA_AUTH) or a password
    step (PASSWORD_WARN, PASSWORD_EXPIRED, with the tenant's policy when it sent one)."""

    state_token: str = field(repr=False)
    status: str
    policy: PasswordPolicy | None = None


@dataclass(frozen=True)
class HandleIndex:
    """``{prefix}:handles:{openid}``: the digests of every live handle of one WeChat user."""

    digests: tuple[str, ...]


@dataclass(frozen=True)
class IdToken:
    """What bff reads from a verified id_token."""

    subject: str | None
    exp: int


# The statuses that mean "this WeChat account is not bound yet": a state token to spend follows.
BIND_STATUSES = ("SOCIAL_BIND", "USER_REGISTER")
PASSWORD_STATUSES = ("PASSWORD_WARN", "PASSWORD_EXPIRED")


@dataclass(frozen=True)
class PasswordPolicy:
    """The tenant's password rules, from the ``data`` of a password step (any may be absent)."""

    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None  # a regular expression the password must match (re.search)


@dataclass(frozen=True)
class IdaasAnswer:
    """A 200 from an IDaaS login, bind or refresh, validated; ``status`` normalised."""

    status: str | None
    session_token: str | None = field(default=None, repr=False)
    expire: int | None = None  # seconds the session_token lives
    id_token: str | None = field(default=None, repr=False)
    state_token: str | None = field(default=None, repr=False)
    flows: tuple[str, ...] = ()  # socialBindOrRegisterFlow, parsed from ``data``
    policy: PasswordPolicy | None = None  # a password step's ``data``


@dataclass(frozen=True)
class Outcome:
    """What a login or bind answers the mini program: the IDaaS answer, trimmed. No token but
    the verified id_token ever leaves: the session and state tokens stay in Redis."""

    status: str
    expire: int | None = None  # a session was cached: seconds it lives
    id_token: str | None = field(default=None, repr=False)
    flows: tuple[str, ...] | None = None  # SOCIAL_BIND and USER_REGISTER only
    password_policy: PasswordPolicy | None = None  # PASSWORD_WARN and PASSWORD_EXPIRED only


@dataclass(frozen=True)
class Captcha:
    """A slider puzzle for a verification code; the fields the IDaaS left null are None."""

    token: str
    original_image_base64: str | None
    jigsaw_image_base64: str | None
    secret_key: str | None
