"""Development server: ``BFF_ENV=development python -m bff`` (what ``make run`` does).

With nothing configured it starts, on loopback, an in-process Redis stand-in (fakeredis), the
IDaaS simulator and the WeChat simulator, then serves bff and prints a walk-through of the flow.
Whatever is configured (``REDIS_URL``, ``IDAAS_BASE_URL``, ``WECHAT_API_BASE``) is used instead.

Ports: ``BFF_DEV_PORT`` (8000), ``BFF_DEV_IDAAS_PORT`` (8101), ``BFF_DEV_WECHAT_PORT`` (8102),
``BFF_DEV_REDIS_PORT`` (6399); a busy one stops the start with one line naming it. The first line
on stdout is ``bff: serving on http://127.0.0.1:PORT``. SIGINT (Ctrl-C) or SIGTERM stops every
part, closes every port and exits 0.

The simulators are ``bff_simulators``, a distribution of its own (``simulators/``, installed by
``make install``): imported here only when one is started, and only here in bff. Without it the
start stops with one line saying how to install it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

from werkzeug.serving import make_server

from bff.dev_settings import DEV_PORT_VARS, dev_defaults, dev_ports
from bff.errors import SettingsError
from bff.settings import load_settings

LOOPBACK = "127.0.0.1"
DEMO_USER, DEMO_PASSWORD, DEMO_MOBILE = "alice", "demo-password-1", "+86-13800000000"

# Shell lines are indented by two spaces; each step starts with "  # <step>. ". {name} fields are
# filled in by walkthrough(); every other brace is the shell's.
WALKTHROUGH = """
bff (development): IDaaS simulator {idaas}, WeChat simulator {wechat}, Redis {redis}.
Demo IDaaS account: {user} / {password} (mobile {mobile}). Paste into bash, step by step.
Repeat from step 1: each pass starts with a new WeChat user (OID). The limits are production's:
{user} takes 4 binds in 15 minutes (RATE_LIMIT_BIND); a 429 says when to retry (Retry-After).

  B={bff}/api/v1; W={wechat}; I={idaas}; J='Content-Type: application/json'
  D=(-H 'X-operating-sys-version: iOS 17.4' -H 'X-device-fingerprint: demo-device-1')
  code() { curl -s -XPOST $W/_sim/wx-login -H "$J" -d "{\\"openid\\":\\"$OID\\"}" \\
           | python3 -c 'import json,sys; print(json.load(sys.stdin)["code"])'; }
  # 1. a new WeChat user; wx.login -> an opaque handle (code2Session happens server-side)
  OID=o_demo_$RANDOM$RANDOM
  H=$(curl -s -XPOST $B/wechat/session -H "$J" -d "{\\"wx_code\\":\\"$(code)\\"}" \\
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["handle"])'); A="Authorization: Bearer $H"
  # 2. login with a fresh code -> SOCIAL_BIND (the state token stays on the server)
  curl -s -XPOST $B/login -H "$J" -H "$A" "${D[@]}" -d "{\\"code\\":\\"$(code)\\"}"
  # 3a. bind with username + password -> SUCCESS with an id_token (no session_token)
  curl -s -XPOST $B/bind/username-password -H "$J" -H "$A" "${D[@]}" \\
       -d '{"user_name":"{user}","password":"{password}"}'
  # 4. refresh the id_token from the server-held session, check it, log out (204)
  curl -s -XPOST $B/session/refresh -H "$A" "${D[@]}"
  curl -s $B/session -H "$A"
  curl -s -XDELETE $B/session -H "$A" -o /dev/null -w '%{http_code}\\n'

Second path: steps 1 and 2, then 3b instead of 3a, then 4. 3b binds by SMS code. A number gets one
code a minute (RATE_LIMIT_CODES), so each pass first makes a simulator account with its own mobile:
  # 3b. new account; slider (its answer is on the simulator); code sent (204); bind -> SUCCESS
  M=+86-139$((RANDOM % 9000 + 1000))$((RANDOM % 9000 + 1000))
  curl -s -XPOST $I/_sim/users -H "$J" \\
       -d "{\\"user_name\\":\\"sms-$OID\\",\\"password\\":\\"{password}\\",\\"mobile\\":\\"$M\\"}"; echo
  CAP=$(curl -s $B/captcha -H "$A" "${D[@]}")
  TOK=$(echo "$CAP" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  PT=$(curl -s $I/_sim/captcha-answers \\
       | python3 -c "import json,sys; print(json.dumps(json.load(sys.stdin)['$TOK']))")
  curl -s -XPOST $B/verification-codes -H "$J" -H "$A" "${D[@]}" -w '%{http_code}\\n' \\
       -d "{\\"channel\\":\\"sms\\",\\"to\\":\\"$M\\",\\"purpose\\":\\"bind\\",\\"captcha\\":{\\"token\\":\\"$TOK\\",\\"point_json\\":$PT}}"
  VC=$(curl -s $I/_sim/inbox \\
       | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["code"])')
  curl -s -XPOST $B/bind/verification-code -H "$J" -H "$A" "${D[@]}" \\
       -d "{\\"mobile\\":\\"$M\\",\\"verify_code\\":\\"$VC\\"}"

Third path, a second factor: steps 1 and 2, then 3c, then 4. The tenant asks for one (the
simulator's next_step), and each pass binds an account of its own mobile first:
  # 3c. new account, bound; MFA on; login -> MFA_AUTH; its mobile, masked; slider; code sent
  #     (204); code checked -> SUCCESS; MFA off again
  M=+86-137$((RANDOM % 9000 + 1000))$((RANDOM % 9000 + 1000)); U=mfa-$OID
  curl -s -XPOST $I/_sim/users -H "$J" -o /dev/null \\
       -d "{\\"user_name\\":\\"$U\\",\\"password\\":\\"{password}\\",\\"mobile\\":\\"$M\\"}"
  curl -s -XPOST $B/bind/username-password -H "$J" -H "$A" "${D[@]}" -o /dev/null \\
       -d "{\\"user_name\\":\\"$U\\",\\"password\\":\\"{password}\\"}"
  curl -s -XPUT $I/_sim/config -H "$J" -d '{"next_step":"MFA_AUTH"}' -o /dev/null
  curl -s -XPOST $B/login -H "$J" -H "$A" "${D[@]}" -d "{\\"code\\":\\"$(code)\\"}"
  curl -s $B/mfa -H "$A" "${D[@]}"
  TOK=$(curl -s $B/captcha -H "$A" "${D[@]}" \\
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  PT=$(curl -s $I/_sim/captcha-answers \\
       | python3 -c "import json,sys; print(json.dumps(json.load(sys.stdin)['$TOK']))")
  curl -s -XPOST $B/mfa/codes -H "$J" -H "$A" "${D[@]}" -w '%{http_code}\\n' \\
       -d "{\\"captcha\\":{\\"token\\":\\"$TOK\\",\\"point_json\\":$PT}}"
  VC=$(curl -s $I/_sim/inbox \\
       | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["code"])')
  curl -s -XPOST $B/mfa/verify -H "$J" -H "$A" "${D[@]}" -d "{\\"verify_code\\":\\"$VC\\"}"
  curl -s -XPUT $I/_sim/config -H "$J" -d '{"next_step":null}' -o /dev/null

Also: {bff}/openapi.json, /metrics, /readyz.  Ctrl-C stops everything.
"""


class DevServerError(Exception):
    """Why the development server cannot start: one line for the terminal, then exit 1."""


def walkthrough(urls: Mapping[str, str]) -> str:
    """The printed walk-through for these base URLs (keys: bff, idaas, wechat, redis)."""
    values = {**urls, "user": DEMO_USER, "password": DEMO_PASSWORD, "mobile": DEMO_MOBILE}
    text = WALKTHROUGH
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    return text


def _cannot_listen(part: str, port: int, exc: OSError) -> DevServerError:
    variable = DEV_PORT_VARS[part]
    if exc.errno == errno.EADDRINUSE:
        return DevServerError(
            f"port {port} is already in use: stop what listens there or set {variable}"
            " to a free port"
        )
    return DevServerError(f"cannot listen on {LOOPBACK}:{port} ({variable}): {exc.strerror}")


def _listen(part: str, port: int) -> socket.socket:
    """A listening socket on the loopback, bound as the servers bind (SO_REUSEADDR)."""
    sock = socket.socket()
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOOPBACK, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise _cannot_listen(part, port, exc) from None
    return sock


def _embedded_parts(env: Mapping[str, str]) -> list[str]:
    """bff, and every part whose variable is not set."""
    configured = {"redis": "REDIS_URL", "wechat": "WECHAT_API_BASE", "idaas": "IDAAS_BASE_URL"}
    return ["bff", *(part for part, name in configured.items() if name not in env)]


def _check_ports(ports: Mapping[str, int], parts: list[str]) -> None:
    """Every port we are about to listen on is free, and no two parts share one."""
    owner: dict[int, str] = {}
    for part in parts:
        port = ports[part]
        if port in owner:
            raise DevServerError(
                f"{DEV_PORT_VARS[owner[port]]} and {DEV_PORT_VARS[part]} are both {port}"
            )
        owner[port] = part
        _listen(part, port).close()


def _serve_in_thread(server: Any, name: str) -> Callable[[], None]:
    """serve_forever() in a thread; returns what stops it and closes the listening socket."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name=name)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)

    return stop


def _start_redis_stand_in(port: int) -> Callable[[], None]:
    try:
        from fakeredis import TcpFakeServer
    except ImportError:
        raise DevServerError(
            "the in-process Redis stand-in needs fakeredis: pip install '.[dev]'"
        ) from None
    try:
        server = TcpFakeServer((LOOPBACK, port), server_type="redis")
    except OSError as exc:
        raise _cannot_listen("redis", port, exc) from None
    return _serve_in_thread(server, "fakeredis")


def _require_simulators() -> None:
    """bff_simulators is importable; else one line saying how to install it."""
    try:
        import bff_simulators  # noqa: F401 - whether it imports, nothing more
    except ModuleNotFoundError as exc:
        if exc.name != "bff_simulators":
            raise
        raise DevServerError(
            "the simulators are not installed (bff_simulators):"
            " pip install -e ./simulators, or use make run"
        ) from None


def _start_simulator(stack: contextlib.ExitStack, part: str, sim: Any) -> str:
    try:
        stack.enter_context(sim)
    except OSError as exc:
        raise _cannot_listen(part, sim.port, exc) from None
    base_url: str = sim.base_url
    return base_url


def _start(env: Mapping[str, str], stack: contextlib.ExitStack) -> None:
    """Start every part, each stopped by ``stack`` (in reverse order) however this ends."""
    ports = dev_ports(env)
    settings = load_settings(env, defaults=dev_defaults(ports))  # a bad value stops here
    parts = _embedded_parts(env)
    if "wechat" in parts or "idaas" in parts:
        _require_simulators()
    _check_ports(ports, parts)
    listener = _listen("bff", ports["bff"])  # held from here on: nobody takes it meanwhile
    stack.callback(listener.close)
    urls = {
        "bff": f"http://{LOOPBACK}:{ports['bff']}",
        "redis": "from REDIS_URL",  # may hold a password: never printed
        "wechat": settings.wechat_api_base,
        "idaas": settings.idaas_base_url,
    }
    if "redis" in parts:
        stack.callback(_start_redis_stand_in(ports["redis"]))
        urls["redis"] = f"stand-in redis://{LOOPBACK}:{ports['redis']}/0"
    if "wechat" in parts:
        from bff_simulators.wechat import WeChatSimulator

        wechat = WeChatSimulator(port=ports["wechat"])
        urls["wechat"] = _start_simulator(stack, "wechat", wechat)
    if "idaas" in parts:
        from bff_simulators.idaas import IdaasSimulator

        idaas = IdaasSimulator(
            client_id=settings.idaas_client_id, wechat_base_url=urls["wechat"], port=ports["idaas"]
        )
        urls["idaas"] = _start_simulator(stack, "idaas", idaas)
        idaas.add_user(DEMO_USER, DEMO_PASSWORD, mobile=DEMO_MOBILE, email="alice@example.com")
    # The one machine-readable line, first on stdout: the socket already accepts connections.
    print(f"bff: serving on {urls['bff']}", flush=True)  # noqa: T201
    from bff import create_app

    app = create_app(settings)
    stack.callback(app.extensions["bff"].close)
    server = make_server(LOOPBACK, ports["bff"], app, threaded=True, fd=listener.fileno())
    stack.callback(_serve_in_thread(server, "bff"))
    print(walkthrough(urls), flush=True)  # noqa: T201 - for the developer's terminal


def main() -> None:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()  # the main thread shuts everything down

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    env = {k: v for k, v in os.environ.items() if v}
    if env.get("BFF_ENV") != "development":
        sys.exit("bff: python -m bff is the development server; set BFF_ENV=development")
    try:
        with contextlib.ExitStack() as stack:
            _start(env, stack)
            while not stop.wait(0.2):
                pass
            for signum in (signal.SIGINT, signal.SIGTERM):  # another Ctrl-C changes nothing now,
                signal.signal(signum, signal.SIG_IGN)  # also while the interpreter exits
    except (SettingsError, DevServerError) as exc:
        sys.exit(f"bff: {exc}")
    print("bff: stopped", file=sys.stderr, flush=True)  # noqa: T201


if __name__ == "__main__":
    main()
