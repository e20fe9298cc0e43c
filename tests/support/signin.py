"""What a mini program does on the bind/register routes: slider, code, phone button."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from tests.support.app import AuthActions

ALICE_MOBILE = "+86-13800000000"  # conftest's alice
ALICE_EMAIL = "alice@example.com"
CAPTCHA = "/api/v2/sdk/captcha"
CAPTCHA_VERIFY = "/api/v2/sdk/captcha/verify"
SMS_SEND = "/api/v2/sdk/sms/send"
EMAIL_SEND = "/api/v2/sdk/email/send"
PHONE_LOGIN = "/api/v2/sdk/login/wechat-mini-program-mobile"


@dataclass(frozen=True)
class Route:
    path: str  # ours
    upstream: str  # the IDaaS's
    kind: str  # "phone" or "code"
    purpose: str  # "bind" or "register"

    @property
    def tenant(self) -> str:
        """A tenant status under which the IDaaS accepts this route."""
        return "USER_REGISTER" if self.purpose == "register" else "SOCIAL_BIND"


ROUTES = [
    Route("/api/v1/bind/wechat-phone", "/api/v2/sdk/social/wechat-mobile-bind", "phone", "bind"),
    Route("/api/v1/bind/verification-code", "/api/v2/sdk/social/bind", "code", "bind"),
    Route(
        "/api/v1/register/wechat-phone",
        "/api/v2/sdk/social/wechat-mobile-register-bind",
        "phone",
        "register",
    ),
    Route(
        "/api/v1/register/verification-code", "/api/v2/sdk/social/register-bind", "code", "register"
    ),
]
ROUTE_IDS = [r.path.removeprefix("/api/v1/") for r in ROUTES]


def random_mobile() -> str:
    """A destination no other test uses (rate-limit counters are shared through Redis)."""
    return f"+86-139{secrets.randbelow(10**8):08d}"


def pending(auth: AuthActions, status: str = "SOCIAL_BIND") -> dict[str, str]:
    """Log in as an unbound WeChat user under a tenant answering ``status``; the headers."""
    auth.idaas.tenant_status = status
    resp = auth.login()
    assert resp.status_code == 200 and resp.json["status"] == status, resp.json
    return auth.headers()


def solve_captcha(auth: AuthActions, **headers: str) -> dict[str, str]:
    """GET /captcha, then the answer only the simulator (and the user's finger) knows."""
    resp = auth.client.get("/api/v1/captcha", headers=auth.headers(**headers))
    assert resp.status_code == 200, resp.json
    token = resp.json["token"]
    return {"token": token, "point_json": auth.idaas.captcha_answers[token]}


def send_code(
    auth: AuthActions,
    to: str,
    purpose: str = "bind",
    captcha: dict[str, str] | None = None,
    **headers: str,
) -> Any:
    """POST /verification-codes for ``to`` (sms or email from its shape), slider solved."""
    body = {
        "channel": "email" if "@" in to else "sms",
        "to": to,
        "purpose": purpose,
        "captcha": captcha or solve_captcha(auth, **headers),
    }
    return auth.client.post(
        "/api/v1/verification-codes", json=body, headers=auth.headers(**headers)
    )


def code_sent_to(auth: AuthActions, to: str) -> str:
    """The last code the simulator "sent" to ``to``."""
    codes = [sent.code for sent in auth.idaas.inbox if sent.to == to]
    assert codes, f"no code sent to {to}"
    return codes[-1]


def body_for(route: Route, auth: AuthActions, mobile: str = ALICE_MOBILE) -> dict[str, str]:
    """A body the IDaaS accepts for ``route``: a fresh phone code, or a code sent through us."""
    if route.kind == "phone":
        return {"phone_code": auth.idaas.issue_phone_code(mobile)}
    resp = send_code(auth, mobile, route.purpose)
    assert resp.status_code == 204, resp.json
    return {"mobile": mobile, "verify_code": code_sent_to(auth, mobile)}


def upstream_body(route: Route, body: dict[str, str]) -> dict[str, str]:
    """What the IDaaS must receive for ``body`` on ``route``."""
    if route.kind == "phone":
        return {"wechat_code": body["phone_code"]}
    return body


def calls(sim: Any, path: str) -> list[Any]:
    return [r for r in sim.requests if r.path == path]
