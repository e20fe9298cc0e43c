"""WeChat code2Session simulator (GET /sns/jscode2session, as api.weixin.qq.com answers it).

Run standalone: `python -m bff_simulators.wechat --port 8102`.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ._server import (
    RecordedRequest,
    Response,
    SimServer,
    cli_parser,
    control_body,
    control_error,
    json_response,
    serve_until_signalled,
)

__all__ = [
    "DEFAULT_WECHAT_BASE_URL",
    "ERRMSG",
    "SIM_APPID",
    "SIM_SECRET",
    "WeChatSimulator",
    "WxCode",
    "main",
]

DEFAULT_PORT = 8102  # = the dev server's WECHAT_API_BASE port
DEFAULT_WECHAT_BASE_URL = f"http://127.0.0.1:{DEFAULT_PORT}"  # the standalone simulator's URL
SIM_APPID = "wx-sim-appid"
SIM_SECRET = "wx-sim-secret"  # noqa: S105 - the simulator's well-known dev/test value

ERRMSG = {
    -1: "system error",
    40002: "invalid grant_type",
    40029: "invalid code",
    40125: "invalid appsecret",
    40163: "code been used",
    40226: "invalid user, high risk user",
    41008: "missing code",
    45011: "api minute-quota reach limit  mustslower  retry next minute",
}


@dataclass
class WxCode:
    """What a wx.login code stands for (monotonic expiry)."""

    openid: str
    unionid: str | None
    expires_at: float
    used: bool = False
    appid: str = ""  # the mini program whose wx.login issued it


def _wx_answer(body: dict[str, object]) -> Response:
    """WeChat answers JSON labelled text/plain, HTTP 200 even for errors."""
    return Response(200, json.dumps(body).encode(), "text/plain")


def _wx_error(errcode: int) -> Response:
    message = ERRMSG.get(errcode, "simulated error")
    rid = f"{secrets.token_hex(4)}-{secrets.token_hex(4)}-{secrets.token_hex(4)}"
    return _wx_answer({"errcode": errcode, "errmsg": f"{message}, rid: {rid}"})


class WeChatSimulator(SimServer):
    """`GET /sns/jscode2session` with single-use, expiring codes issued by `issue_code`."""

    def __init__(
        self,
        appid: str = SIM_APPID,
        secret: str = SIM_SECRET,
        host: str = "127.0.0.1",
        port: int = 0,
        code_ttl_s: float = 300.0,
    ) -> None:
        super().__init__(host, port)
        self.appid = appid
        self.secret = secret
        self.apps: dict[str, str] = {appid: secret}  # appid -> secret; add_app adds more
        self._default_code_ttl_s = code_ttl_s
        self._init_state()
        self.route("GET", "/sns/jscode2session", self._code2session)
        self.route("POST", "/_sim/wx-login", self._http_wx_login)
        self.route("POST", "/_sim/fail-next", self._http_fail_next)

    def _init_state(self) -> None:
        self.code_ttl_s = self._default_code_ttl_s
        self.codes: dict[str, WxCode] = {}
        self.session_keys: list[str] = []
        self.forced_errcodes: list[int] = []

    def reset_state(self) -> None:
        """Forget requests, faults, codes, session keys and forced failures."""
        with self.lock:
            super().reset_state()
            self._init_state()

    def add_app(self, appid: str, secret: str) -> None:
        """Another mini program: its codes redeem only with its own appid and secret."""
        with self.lock:
            self.apps[appid] = secret

    def issue_code(
        self, openid: str | None = None, unionid: str | None = None, appid: str | None = None
    ) -> str:
        """Simulate wx.login on a device of mini program `appid` (default: the first one): a
        fresh code for `openid` (random when None)."""
        code = secrets.token_urlsafe(24)
        openid = openid or "o_" + secrets.token_urlsafe(21)
        expires_at = time.monotonic() + self.code_ttl_s
        with self.lock:
            self.codes[code] = WxCode(openid, unionid, expires_at, appid=appid or self.appid)
        return code

    def fail_next(self, errcode: int, count: int = 1) -> None:
        """The next `count` code2Session calls answer `errcode` without spending the code."""
        with self.lock:
            self.forced_errcodes.extend([errcode] * count)

    def redeem(self, code: str, appid: str | None = None) -> tuple[str, str | None] | int:
        """Spend `code`: (openid, unionid), or the errcode (40029 unknown/expired or another
        mini program's, 40163 used)."""
        with self.lock:
            entry = self.codes.get(code)
            if entry is None or (appid is not None and entry.appid != appid):
                return 40029
            if entry.used:
                return 40163
            if time.monotonic() >= entry.expires_at:
                return 40029
            entry.used = True
            return entry.openid, entry.unionid

    def _pop_forced(self) -> int | None:
        with self.lock:
            return self.forced_errcodes.pop(0) if self.forced_errcodes else None

    def _code2session(self, req: RecordedRequest) -> Response:
        forced = self._pop_forced()
        if forced is not None:
            return _wx_error(forced)
        query = req.query
        appid = query.get("appid", "")
        expected = self.apps.get(appid, "")
        secret_ok = secrets.compare_digest(query.get("secret", "").encode(), expected.encode())
        if not (expected and secret_ok):
            return _wx_error(40125)
        if query.get("grant_type") != "authorization_code":
            return _wx_error(40002)
        if not query.get("js_code"):
            return _wx_error(41008)
        result = self.redeem(query["js_code"], appid)
        if isinstance(result, int):
            return _wx_error(result)
        openid, unionid = result
        session_key = base64.b64encode(secrets.token_bytes(16)).decode()
        with self.lock:
            self.session_keys.append(session_key)
        body: dict[str, object] = {"session_key": session_key, "openid": openid}
        if unionid is not None:
            body["unionid"] = unionid
        return _wx_answer(body)

    def _http_wx_login(self, req: RecordedRequest) -> Response:
        body = control_body(req)
        openid, unionid = body.get("openid"), body.get("unionid")
        if not all(v is None or (isinstance(v, str) and v) for v in (openid, unionid)):
            raise control_error("openid and unionid must be non-empty strings")
        return json_response({"code": self.issue_code(openid, unionid)})

    def _http_fail_next(self, req: RecordedRequest) -> Response:
        body = control_body(req)
        errcode, count = body.get("errcode"), body.get("count", 1)
        if not isinstance(errcode, int) or not isinstance(count, int) or count < 1:
            raise control_error("errcode (int) is required; count must be a positive int")
        self.fail_next(errcode, count)
        return json_response({"ok": True})


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the WeChat simulator until SIGINT/SIGTERM."""
    parser = cli_parser("Bundled WeChat code2Session simulator (development only).", DEFAULT_PORT)
    parser.add_argument("--appid", default=SIM_APPID)
    parser.add_argument("--secret", default=SIM_SECRET)
    parser.add_argument("--code-ttl", type=float, default=300.0, help="code lifetime, seconds")
    args = parser.parse_args(argv)
    sim = WeChatSimulator(args.appid, args.secret, args.host, args.port, args.code_ttl)
    serve_until_signalled(sim)


if __name__ == "__main__":
    main()
