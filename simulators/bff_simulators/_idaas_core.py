"""State, knobs and shared checks of the IDaaS simulator (routes live in idaas*.py)."""

from __future__ import annotations

import contextvars
import json
import secrets
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from ._idaas_models import (
    DEFAULT_PASSWORD_POLICY,
    DEVICE_HEADERS,
    NO_TOKEN_STATUSES,
    ROUTE_NAMES,
    STATE_TOKEN_STATUSES,
    OneTime,
    PendingState,
    SentCode,
    SessionEntry,
    SimUser,
)
from ._idaas_steps import step_answer
from ._server import RecordedRequest, Reply, Response, SimServer, json_response
from ._tokens import TokenMinter
from .wechat import DEFAULT_WECHAT_BASE_URL, SIM_APPID, SIM_SECRET

# The client id of the request being handled (set by check_common): one tenant serves several
# IDaaS apps, each its own client id and WeChat mini program; its tokens are bound to it.
_CLIENT: contextvars.ContextVar[str] = contextvars.ContextVar("client")

IdaasHandler = Callable[["IdaasCore", RecordedRequest], Response]
RouteTable = list[tuple[str, str, IdaasHandler]]


def _now() -> float:
    return time.monotonic()


class IdaasCore(SimServer):
    """State, knobs and checks shared by every IDaaS route."""

    def __init__(
        self,
        client_id: str = "test-client",
        wechat_base_url: str = DEFAULT_WECHAT_BASE_URL,
        wechat_appid: str = SIM_APPID,
        wechat_secret: str = SIM_SECRET,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self.client_id = client_id
        self.wechat_base_url = wechat_base_url.rstrip("/")
        self.wechat_appid = wechat_appid
        self.wechat_secret = wechat_secret
        # client id -> its WeChat mini program (appid, secret); add_client adds more (the first
        # client's are wechat_appid and wechat_secret)
        self.clients: dict[str, tuple[str, str]] = {client_id: (wechat_appid, wechat_secret)}
        self.minter = TokenMinter()
        self._init_state()
        for method, path, handler in self.route_table():
            self.route(method, path, partial(handler, self))

    def route_table(self) -> RouteTable:
        """The routes this simulator serves (the full simulator lists them all)."""
        return []

    def _init_state(self) -> None:
        # knobs (tests set them directly; reset_state restores these defaults)
        self.tenant_status = "SOCIAL_BIND"
        self.flows: list[str] | None = ["VERIFY_PHONE"]
        self.pad_status = True
        self.login_status_override: str | None = None
        self.code_prefix = "IDAAS.SDK."
        self.state_token_ttl_s: float = 600
        self.session_expire_s: float = 432000
        self.id_token_ttl_s: float = 300
        self.rotate_session_token = False
        self.session_token_header = "session-token"
        self.id_token_mode = "ok"
        self.publish_extra_key = False
        self.allowed_routes: set[str] = set(ROUTE_NAMES)
        self.max_password_attempts: int | None = 5
        self.phone_code_ttl_s: float = 300
        self.verify_code_ttl_s: float = 300
        self.captcha_token_ttl_s: float = 120
        self.next_step: str | None = None  # one of NEXT_STEPS: a SUCCESS asks for it instead
        self.password_policy: dict[str, Any] = dict(DEFAULT_PASSWORD_POLICY)
        self.mfa_mobile_in_clear = False
        # state
        self.users: dict[str, SimUser] = {}
        self.locked_users: set[str] = set()
        self.bindings: dict[str, str] = {}
        self.password_failures: dict[str, int] = {}
        self.session_tokens: list[str] = []
        self.state_tokens: list[str] = []
        self.id_tokens: list[str] = []
        self.jwks_fetches = 0
        self.states: dict[str, PendingState] = {}
        self.sessions: dict[str, SessionEntry] = {}
        self.phone_codes: dict[str, OneTime] = {}
        self.captcha_answers: dict[str, str] = {}
        self.captcha_tokens: dict[str, OneTime] = {}
        self.inbox: list[SentCode] = []

    def reset_state(self) -> None:
        """Forget requests, faults, users, tokens, and restore every knob's default."""
        with self.lock:
            super().reset_state()
            self._init_state()

    # public helpers --------------------------------------------------------------------------
    @property
    def issuer(self) -> str:
        """The id_token `iss`: `{base_url}/api/v1/oauth2`."""
        return f"{self.base_url}/api/v1/oauth2"

    @property
    def jwks_url(self) -> str:
        """Where the JWKS is served."""
        return f"{self.issuer}/keys"

    @property
    def register_allowed(self) -> bool:
        """Registration routes are refused while the tenant answers SOCIAL_BIND."""
        return self.tenant_status.strip() != "SOCIAL_BIND"

    def add_user(
        self, user_name: str, password: str, mobile: str | None = None, email: str | None = None
    ) -> SimUser:
        """Create (or replace) an account."""
        user = SimUser(user_name, password, mobile, email)
        with self.lock:
            self.users[user_name] = user
        return user

    def find_user(self, *, mobile: str | None = None, email: str | None = None) -> SimUser | None:
        """The account with that mobile (or e-mail), if any."""
        with self.lock:
            for user in self.users.values():
                if (mobile is not None and user.mobile == mobile) or (
                    email is not None and user.email == email
                ):
                    return user
        return None

    def issue_phone_code(self, mobile: str) -> str:
        """Simulate the WeChat phone-number button: a single-use code for `mobile`."""
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.phone_codes[code] = OneTime(mobile, _now() + self.phone_code_ttl_s)
        return code

    def invalidate_session(self, session_token: str | None = None) -> None:
        """Make one session_token (default: every one) invalid at the IdP."""
        with self.lock:
            for token, entry in self.sessions.items():
                if session_token is None or token == session_token:
                    entry.valid = False

    # answers ---------------------------------------------------------------------------------
    def error(self, suffix: str, message: str, status: int = 400) -> Reply:
        """An IDaaS error answer, ready to raise."""
        body = {"error_code": self.code_prefix + suffix, "error_msg": message}
        return Reply(json_response(body, status))

    def fault_status500(self) -> Response:
        """The IDaaS's "system busy" answer."""
        return self.error("COMMON.1008", "system busy", 500).response

    def fault_status429(self) -> Response:
        """The IDaaS's throttling answer: a business error, as its 4xx are."""
        return self.error("COMMON.1009", "too many requests", 429).response

    def pad(self, status: str) -> str:
        """The status as the vendor sends it (with stray whitespace when `pad_status`)."""
        if not self.pad_status:
            return status
        return f" {status}" if status == "SUCCESS" else f"{status} "

    def add_client(self, client_id: str, wechat_appid: str, wechat_secret: str) -> None:
        """Another IDaaS app of this tenant: its client id and its WeChat mini program."""
        with self.lock:
            self.clients[client_id] = (wechat_appid, wechat_secret)

    def current_client(self) -> str:
        """The client id of the request being handled."""
        return _CLIENT.get(self.client_id)

    def binding_key(self, openid: str) -> str:
        """Where the binding of `openid` is kept: an openid is unique only within its mini
        program, so another client's bindings are apart (`client/openid`)."""
        client = self.current_client()
        return openid if client == self.client_id else f"{client}/{openid}"

    def wechat_app(self) -> tuple[str, str]:
        """The WeChat (appid, secret) of the request's client."""
        client = self.current_client()
        if client == self.client_id:  # the first app's, as its attributes say now
            return self.wechat_appid, self.wechat_secret
        return self.clients[client]

    def subject_of(self, user_name: str) -> str:
        """The `sub` of `user_name`'s id_tokens (the IDaaS user id; here the user name)."""
        return user_name

    def mint_id_token(self, user_name: str) -> str:
        """An id_token for `user_name` per `id_token_mode` (recorded), for the request's
        client (its `aud`)."""
        subject, client = self.subject_of(user_name), self.current_client()
        token = self.minter.id_token(
            self.id_token_mode, self.issuer, client, subject, self.id_token_ttl_s
        )
        with self.lock:
            self.id_tokens.append(token)
        return token

    def issue_session(self, user_name: str, openid: str | None) -> dict[str, Any]:
        """A new session: `{"session_token", "expire", "id_token"}` (recorded)."""
        token = secrets.token_urlsafe(32)
        with self.lock:
            entry = SessionEntry(user_name, openid, _now() + self.session_expire_s)
            entry.client_id = self.current_client()
            self.sessions[token] = entry
            self.session_tokens.append(token)
        expire = int(self.session_expire_s)
        return {"session_token": token, "expire": expire, "id_token": self.mint_id_token(user_name)}

    def issue_state(
        self, openid: str | None, unionid: str | None, status: str, user_name: str | None = None
    ) -> str:
        """A new single-use state_token (recorded)."""
        token = self.minter.state_token(self.state_token_ttl_s)
        with self.lock:
            expires_at = _now() + self.state_token_ttl_s
            state = PendingState(openid, unionid, status, expires_at, user_name)
            state.client_id = self.current_client()
            self.states[token] = state
            self.state_tokens.append(token)
        return token

    def unbound_answer(self, openid: str, unionid: str | None) -> Response:
        """SOCIAL_BIND / USER_REGISTER with a state_token and the `data` JSON string."""
        status = self.tenant_status.strip()
        data = None
        if self.flows is not None:
            data = json.dumps({"socialBindOrRegisterFlow": self.flows}, separators=(",", ":"))
        token = self.issue_state(openid, unionid, status)
        return json_response({"status": self.pad(status), "state_token": token, "data": data})

    def login_answer(self, user_name: str, openid: str | None) -> Response:
        """The answer for a known user: SUCCESS unless locked or overridden."""
        if user_name in self.locked_users:
            raise self.error("LOGIN.1003", "account locked")
        status = (self.login_status_override or "SUCCESS").strip()
        if status in NO_TOKEN_STATUSES:
            return json_response({"status": self.pad(status)})
        if status in STATE_TOKEN_STATUSES:
            token = self.issue_state(openid, None, status, user_name)
            return json_response({"status": self.pad(status), "state_token": token, "data": None})
        if status == "SUCCESS" and self.next_step is not None:
            return step_answer(self, user_name, openid, self.next_step)
        return json_response({"status": self.pad(status), **self.issue_session(user_name, openid)})

    def complete_bind(self, state_token: str, user_name: str) -> Response:
        """Consume the state_token, bind its openid to `user_name`, answer like a login."""
        with self.lock:
            state = self.states.get(state_token)
            if state is None or state.used:
                raise self.error("PARAM.0014", "invalid state token")
            if user_name in self.locked_users:
                raise self.error("LOGIN.1003", "account locked")
            state.used = True
            if state.openid is not None:
                self.bindings[self.binding_key(state.openid)] = user_name
            return self.login_answer(user_name, state.openid)

    # checks ----------------------------------------------------------------------------------
    def check_common(self, req: RecordedRequest, needs_body: bool = True) -> dict[str, Any]:
        """Client id, device headers, JSON body; returns the body (or `{}`)."""
        client_id = req.headers.get("X-client-id")
        if not client_id:
            raise self.error("COMMON.1001", "client_id is blank")
        if client_id not in self.clients:
            raise self.error("COMMON.1012", "client_id does not exist")
        _CLIENT.set(client_id)
        missing = [name for name in DEVICE_HEADERS if not req.headers.get(name)]
        if missing:
            raise self.error("COMMON.1003", "device info incomplete: " + ", ".join(missing))
        if not needs_body:
            return {}
        if not isinstance(req.json, dict):
            raise self.error("PARAM.0001", "request body must be a JSON object")
        return req.json

    def check_route(self, name: str, register: bool = False) -> None:
        """Tenant switches: the route must be allowed (and registration, if it registers)."""
        if name not in self.allowed_routes:
            raise self.error("LOGIN.1011", "operation not allowed for this tenant")
        if register and not self.register_allowed:
            raise self.error("SOCIAL.1002", "registration not allowed")

    def require(self, body: dict[str, Any], *fields: str) -> list[str]:
        """The values of required non-empty string fields."""
        values = []
        for name in fields:
            value = body.get(name)
            if not isinstance(value, str) or not value:
                raise self.error("PARAM.0001", f"parameter {name} is required")
            values.append(value)
        return values

    def take_state(self, req: RecordedRequest) -> str:
        """The request's valid state_token (not consumed yet)."""
        token = req.headers.get("X-state-token") or ""
        with self.lock:
            state = self.states.get(token)
            if state is None or state.client_id != self.current_client():  # another app's
                raise self.error("COMMON.1007", "state_token parameter error")
            if state.used:
                raise self.error("PARAM.0014", "invalid state token")
            if _now() >= state.expires_at:
                raise self.error("COMMON.1005", "state token expired")
        return token

    def redeem_phone_code(self, code: str) -> str:
        """The mobile behind a phone-number code (spent even if the call then fails)."""
        with self.lock:
            entry = self.phone_codes.get(code)
            if entry is None or entry.used or _now() >= entry.expires_at:
                raise self.error("LOGIN.1009", "invalid wechat code")
            entry.used = True
            return entry.value
