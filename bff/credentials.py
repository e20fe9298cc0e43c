"""What a user proves on a bind or register route: one type per kind of proof.

The web layer turns a request body into one of these; the flows and the IDaaS client take it as
it is. Only the IDaaS client knows where each goes and how the IDaaS spells its fields.
Imports nothing of bff.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class UsernamePassword:
    """An existing IDaaS account's user name and password, as typed."""

    user_name: str
    password: str = field(repr=False)

    route = "username-password"

    @property
    def account(self) -> str:
        return self.user_name


@dataclass(frozen=True)
class WechatPhone:
    """The code of WeChat's phone-number button: the account of that number.

    ``create_account``: the register route, which creates the account if there is none."""

    phone_code: str = field(repr=False)
    create_account: bool = False

    @property
    def route(self) -> str:
        return "register-wechat-phone" if self.create_account else "wechat-phone"

    @property
    def account(self) -> None:
        return None  # the IDaaS learns the number from WeChat: nothing names an account here


@dataclass(frozen=True)
class VerifiedContact:
    """A mobile number or e-mail address (exactly one) and the code the IDaaS sent to it."""

    verify_code: str = field(repr=False)
    mobile: str | None = None
    email: str | None = None
    create_account: bool = False

    @property
    def route(self) -> str:
        return "register-verification-code" if self.create_account else "verification-code"

    @property
    def account(self) -> str | None:
        return self.mobile or self.email


@dataclass(frozen=True)
class SliderAnswer:
    """A solved slider captcha, as the mini program's widget produced it."""

    token: str
    point_json: str


@dataclass(frozen=True)
class CodeRequest:
    """A verification code to send: over ``channel`` (sms, email) ``to`` a mobile or address,
    for the pending bind (``purpose`` bind) or registration (``register``)."""

    channel: str
    to: str
    purpose: str
    captcha: SliderAnswer


BindCredential = UsernamePassword | WechatPhone | VerifiedContact
