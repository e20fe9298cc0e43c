"""Data kept by the IDaaS simulator."""

from __future__ import annotations

from dataclasses import dataclass

ROUTE_NAMES = frozenset(
    {
        "username_password_bind",
        "login_mobile",
        "wechat_mobile_bind",
        "bind",
        "register_bind",
        "wechat_mobile_register_bind",
    }
)
STATE_TOKEN_STATUSES = frozenset({"MFA_AUTH", "PASSWORD_EXPIRED"})  # answered with a state_token
NO_TOKEN_STATUSES = frozenset({"ACCESS_DENIED"})  # answered with no token at all
# next_step: the step a would-be SUCCESS answer asks for instead (idaas_steps.py finishes it)
NEXT_STEPS = frozenset({"MFA_AUTH", "PASSWORD_WARN", "PASSWORD_EXPIRED"})
PASSWORD_STEPS = frozenset({"PASSWORD_WARN", "PASSWORD_EXPIRED"})  # answered with the policy
DEFAULT_PASSWORD_POLICY = {"minLength": 8, "maxLength": 20, "regEx": r"^(?=.*[A-Za-z])(?=.*\d).+$"}
DEVICE_HEADERS = ("X-operating-sys-version", "X-device-fingerprint", "X-agent")


@dataclass
class SimUser:
    """An IDaaS account."""

    user_name: str
    password: str
    mobile: str | None = None
    email: str | None = None


@dataclass
class PendingState:
    """What a state_token stands for (monotonic expiry)."""

    openid: str | None
    unionid: str | None
    status: str
    expires_at: float
    user_name: str | None = None
    used: bool = False
    client_id: str = ""  # the IDaaS app it was issued to


@dataclass
class SessionEntry:
    """What a session_token stands for (monotonic expiry)."""

    user_name: str
    openid: str | None
    expires_at: float
    valid: bool = True
    client_id: str = ""  # the IDaaS app it was issued to


@dataclass
class SentCode:
    """A verification code "sent" by SMS or e-mail (`sent_at`: wall-clock seconds)."""

    channel: str
    to: str
    type: str
    code: str
    sent_at: float
    used: bool = False


@dataclass
class OneTime:
    """A single-use, expiring token bound to `value` (a mobile, a sender...)."""

    value: str
    expires_at: float
    used: bool = False
