"""IDaaS simulator: mini-program login, username-password bind, id_token refresh, JWKS.

The other routes: idaas_bind.py (phone login, other binds), idaas_captcha.py (captcha, codes),
idaas_steps.py (MFA and password steps), idaas_social.py (self-service with the id_token);
`send_event` pushes a WebHook event (webhook.py).

Run standalone: `python -m bff_simulators.idaas --port 8101 --user alice:secret`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence

import requests

from ._idaas_control import CONTROL_ROUTES
from ._idaas_core import IdaasCore, RouteTable
from ._idaas_models import ROUTE_NAMES, OneTime, PendingState, SentCode, SessionEntry, SimUser
from ._server import RecordedRequest, Response, cli_parser, json_response, serve_until_signalled
from ._tokens import ID_TOKEN_MODES
from .idaas_bind import BIND_ROUTES
from .idaas_captcha import CAPTCHA_ROUTES
from .idaas_social import SOCIAL_ROUTES
from .idaas_steps import STEP_ROUTES
from .webhook import event_headers, seal_event
from .wechat import DEFAULT_WECHAT_BASE_URL, SIM_APPID, SIM_SECRET

__all__ = [
    "ID_TOKEN_MODES",
    "ROUTE_NAMES",
    "IdaasSimulator",
    "OneTime",
    "PendingState",
    "SentCode",
    "SessionEntry",
    "SimUser",
    "main",
]
WECHAT_TIMEOUT_S = 2.0
EVENT_TIMEOUT_S = 5.0
_WECHAT_BAD_CODE = frozenset({40029, 40163})


def _code2session(sim: IdaasCore, code: str) -> tuple[str, str | None]:
    """Redeem a wx.login code at the (simulated) WeChat, as the real IDaaS does."""
    appid, secret = sim.wechat_app()  # the mini program of the request's IDaaS app
    params = {
        "appid": appid,
        "secret": secret,
        "js_code": code,
        "grant_type": "authorization_code",
    }
    url = f"{sim.wechat_base_url}/sns/jscode2session"
    try:
        with requests.Session() as http:
            http.trust_env = False  # never route the call to 127.0.0.1 through a proxy
            answer = http.get(url, params=params, timeout=WECHAT_TIMEOUT_S)
        data = answer.json() if answer.status_code == 200 else None
    except (requests.RequestException, ValueError):
        data = None
    if not isinstance(data, dict):
        raise sim.error("COMMON.1008", "system busy", 500)
    errcode = data.get("errcode") or 0
    if errcode in _WECHAT_BAD_CODE:
        raise sim.error("LOGIN.1009", "invalid wechat code")
    openid, unionid = data.get("openid"), data.get("unionid")
    if errcode or not isinstance(openid, str) or not openid:
        raise sim.error("LOGIN.1010", f"wechat login failed: {errcode}")
    return openid, unionid if isinstance(unionid, str) else None


def login_wechat(sim: IdaasCore, req: RecordedRequest) -> Response:
    """POST /api/v2/sdk/login/wechat-miniprogram {"code"}."""
    body = sim.check_common(req)
    (code,) = sim.require(body, "code")
    openid, unionid = _code2session(sim, code)
    with sim.lock:
        user_name = sim.bindings.get(sim.binding_key(openid))
    if user_name is None:
        return sim.unbound_answer(openid, unionid)
    return sim.login_answer(user_name, openid)


def _check_password(sim: IdaasCore, user_name: str, password: str) -> None:
    with sim.lock:
        if user_name in sim.locked_users:
            raise sim.error("LOGIN.1003", "account locked")
        user = sim.users.get(user_name)
        if user is not None and secrets.compare_digest(user.password.encode(), password.encode()):
            sim.password_failures.pop(user_name, None)
            return
        failures = sim.password_failures.get(user_name, 0) + 1
        sim.password_failures[user_name] = failures
        limit = sim.max_password_attempts
        if limit is None:
            raise sim.error("LOGIN.1005", "wrong username or password")
        left = max(limit - failures, 0)
        if left == 0 and user is not None:
            sim.locked_users.add(user_name)
        raise sim.error("LOGIN.1005", f"wrong username or password, {left} attempts left")


def username_password_bind(sim: IdaasCore, req: RecordedRequest) -> Response:
    """POST /api/v2/sdk/social/username-password-bind {"user_name", "password"}."""
    body = sim.check_common(req)
    sim.check_route("username_password_bind")
    token = sim.take_state(req)
    user_name, password = sim.require(body, "user_name", "password")
    _check_password(sim, user_name, password)
    return sim.complete_bind(token, user_name)


def refresh_id_token(sim: IdaasCore, req: RecordedRequest) -> Response:
    """POST /api/v2/sdk/sso/session-token/id-token, token in `session_token_header`."""
    sim.check_common(req, needs_body=False)
    token = req.headers.get(sim.session_token_header) or ""
    now = time.monotonic()
    with sim.lock:
        entry = sim.sessions.get(token)
        if entry is not None and entry.client_id != sim.current_client():  # another app's
            entry = None
        if entry is None or not entry.valid or now >= entry.expires_at:
            raise sim.error("PARAM.0023", "Invalid or expired session token")
        if sim.rotate_session_token:
            entry.valid = False
            return json_response(sim.issue_session(entry.user_name, entry.openid))
        remaining = int(entry.expires_at - now)
        id_token = sim.mint_id_token(entry.user_name)
    return json_response({"session_token": token, "expire": remaining, "id_token": id_token})


def jwks(sim: IdaasCore, req: RecordedRequest) -> Response:
    """GET /api/v1/oauth2/keys."""
    with sim.lock:
        sim.jwks_fetches += 1
    return json_response(sim.minter.jwks(sim.publish_extra_key))


MAIN_ROUTES: RouteTable = [
    ("POST", "/api/v2/sdk/login/wechat-miniprogram", login_wechat),
    ("POST", "/api/v2/sdk/social/username-password-bind", username_password_bind),
    ("POST", "/api/v2/sdk/sso/session-token/id-token", refresh_id_token),
    ("GET", "/api/v1/oauth2/keys", jwks),
]


class IdaasSimulator(IdaasCore):
    """The Bamboocloud IDaaS as the BFF sees it; knobs are plain attributes."""

    def route_table(self) -> RouteTable:
        return [
            *MAIN_ROUTES,
            *BIND_ROUTES,
            *CAPTCHA_ROUTES,
            *STEP_ROUTES,
            *SOCIAL_ROUTES,
            *CONTROL_ROUTES,
        ]

    def send_event(
        self,
        url: str,
        event_type: str,
        user_name_or_subject: str,
        *,
        security_token: str,
        encryption_key: str,
        signature_key: str,
        timeout: float = EVENT_TIMEOUT_S,
    ) -> requests.Response:
        """POST a sealed WebHook event (webhook.seal_event) about a user (a name of this
        simulator's, sent as its subject, or a subject as is) to `url`, the security token as
        `Authorization: Bearer` (the vendor's documented scheme, webhook.py)."""
        with self.lock:
            known = user_name_or_subject in self.users
        subject = self.subject_of(user_name_or_subject) if known else user_name_or_subject
        body = seal_event(
            event_type,
            subject,
            security_token=security_token,
            encryption_key=encryption_key,
            signature_key=signature_key,
        )
        with requests.Session() as http:
            http.trust_env = False  # never route the call to 127.0.0.1 through a proxy
            return http.post(url, json=body, headers=event_headers(security_token), timeout=timeout)


def _add_cli_user(sim: IdaasSimulator, spec: str) -> None:
    parts = spec.split(":")
    if len(parts) < 2 or len(parts) > 4 or not parts[0] or not parts[1]:
        raise SystemExit(f"--user wants NAME:PASSWORD[:MOBILE[:EMAIL]], got {spec!r}")
    mobile = parts[2] if len(parts) > 2 and parts[2] else None
    email = parts[3] if len(parts) > 3 and parts[3] else None
    sim.add_user(parts[0], parts[1], mobile, email)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the IDaaS simulator until SIGINT/SIGTERM."""
    parser = cli_parser("Bundled IDaaS simulator (development only).", 8101)
    parser.add_argument("--client-id", default="dev-client")
    parser.add_argument("--wechat-base-url", default=DEFAULT_WECHAT_BASE_URL)
    parser.add_argument("--wechat-appid", default=SIM_APPID)
    parser.add_argument("--wechat-secret", default=SIM_SECRET)
    parser.add_argument(
        "--tenant-status", choices=("SOCIAL_BIND", "USER_REGISTER"), default="SOCIAL_BIND"
    )
    parser.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="NAME:PASSWORD[:MOBILE[:EMAIL]]",
        help="create an account (repeatable)",
    )
    args = parser.parse_args(argv)
    sim = IdaasSimulator(
        args.client_id,
        wechat_base_url=args.wechat_base_url,
        wechat_appid=args.wechat_appid,
        wechat_secret=args.wechat_secret,
        host=args.host,
        port=args.port,
    )
    sim.tenant_status = args.tenant_status
    for spec in args.user:
        _add_cli_user(sim, spec)
    serve_until_signalled(sim)


if __name__ == "__main__":
    main()
