"""Development server: ``BFF_ENV=development python -m bff`` (what ``make run`` does).

With nothing configured it starts, on loopback, an in-process Redis stand-in (fakeredis), the
IDaaS simulator and the WeChat simulator, then serves bff and prints a walk-through of the flow.
Whatever is configured (``REDIS_URL``, ``IDAAS_BASE_URL``, ``WECHAT_API_BASE``) is used instead.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

from werkzeug.serving import run_simple

from bff.errors import SettingsError
from bff.settings import DEV_DEFAULTS, DEV_PORTS, load_settings

DEMO_USER, DEMO_PASSWORD, DEMO_MOBILE = "alice", "demo-password-1", "+86-13800000000"

WALKTHROUGH = """
bff (development) on http://127.0.0.1:{bff}  -  IDaaS simulator :{idaas}, WeChat simulator :{wechat}
Demo IDaaS account: {user} / {password} (mobile {mobile}). Paste, step by step, into a shell:

  B=http://127.0.0.1:{bff}/api/v1; J='Content-Type: application/json'
  D=(-H 'X-operating-sys-version: iOS 17.4' -H 'X-device-fingerprint: demo-device-1')
  code() {{ curl -s -XPOST http://127.0.0.1:{wechat}/_sim/wx-login -H "$J" \\
           -d "{{\\"openid\\":\\"${{OID:-o_demo}}\\"}}" \\
           | python3 -c 'import json,sys; print(json.load(sys.stdin)["code"])'; }}
  # 1. wx.login -> an opaque handle (code2Session happens server-side)
  H=$(curl -s -XPOST $B/wechat/session -H "$J" -d "{{\\"wx_code\\":\\"$(code)\\"}}" \\
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["handle"])'); A="Authorization: Bearer $H"
  # 2. login with a fresh code -> SOCIAL_BIND (the state token stays on the server)
  curl -s -XPOST $B/login -H "$J" -H "$A" "${{D[@]}}" -d "{{\\"code\\":\\"$(code)\\"}}"; echo
  # 3a. bind with username + password -> SUCCESS with an id_token (no session_token)
  curl -s -XPOST $B/bind/username-password -H "$J" -H "$A" "${{D[@]}}" \\
       -d '{{"user_name":"{user}","password":"{password}"}}'; echo
  # 4. refresh the id_token from the server-held session, check it, log out
  curl -s -XPOST $B/session/refresh -H "$A" "${{D[@]}}"; echo
  curl -s $B/session -H "$A"; echo
  curl -s -XDELETE $B/session -H "$A" -o /dev/null -w '%{{http_code}}\\n'

Second path, 3b instead of 3a: bind by SMS code. It needs a WeChat user with nothing bound yet:
  OID=o_demo2  # then steps 1 and 2 again (-> SOCIAL_BIND), then:
  CAP=$(curl -s $B/captcha -H "$A" "${{D[@]}}")  # the slider; its answer is on the simulator:
  TOK=$(echo "$CAP" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  PT=$(curl -s http://127.0.0.1:{idaas}/_sim/captcha-answers \\
       | python3 -c "import json,sys; print(json.dumps(json.load(sys.stdin)['$TOK']))")
  curl -s -XPOST $B/verification-codes -H "$J" -H "$A" "${{D[@]}}" -w '%{{http_code}}\\n' \\
       -d "{{\\"channel\\":\\"sms\\",\\"to\\":\\"{mobile}\\",\\"purpose\\":\\"bind\\",\\"captcha\\":{{\\"token\\":\\"$TOK\\",\\"point_json\\":$PT}}}}"
  VC=$(curl -s http://127.0.0.1:{idaas}/_sim/inbox \\
       | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["code"])')
  curl -s -XPOST $B/bind/verification-code -H "$J" -H "$A" "${{D[@]}}" \\
       -d "{{\\"mobile\\":\\"{mobile}\\",\\"verify_code\\":\\"$VC\\"}}"; echo

Also: GET http://127.0.0.1:{bff}/openapi.json, /metrics, /readyz.  Ctrl-C stops everything.
"""


def _start_redis_stand_in(port: int) -> Any:
    try:
        from fakeredis import TcpFakeServer
    except ImportError:
        sys.exit("bff: the in-process Redis stand-in needs fakeredis: pip install '.[dev]'")
    server = TcpFakeServer(("127.0.0.1", port), server_type="redis")
    threading.Thread(target=server.serve_forever, daemon=True, name="fakeredis").start()
    return server


def _start_embedded(env: dict[str, str]) -> None:
    """Start what is not configured; everything listens on 127.0.0.1 only."""
    from bff.simulators.idaas import IdaasSimulator
    from bff.simulators.wechat import WeChatSimulator

    if "REDIS_URL" not in env:
        _start_redis_stand_in(DEV_PORTS["redis"])
    wechat_base = env.get("WECHAT_API_BASE")
    if wechat_base is None:
        wechat_base = WeChatSimulator(port=DEV_PORTS["wechat"]).start().base_url
    if "IDAAS_BASE_URL" not in env:
        idaas = IdaasSimulator(
            client_id=env.get("IDAAS_CLIENT_ID", DEV_DEFAULTS["IDAAS_CLIENT_ID"]),
            wechat_base_url=wechat_base,
            port=DEV_PORTS["idaas"],
        ).start()
        idaas.add_user(DEMO_USER, DEMO_PASSWORD, mobile=DEMO_MOBILE, email="alice@example.com")


def main() -> None:
    env = {k: v for k, v in os.environ.items() if v}
    if env.get("BFF_ENV") != "development":
        sys.exit("bff: python -m bff is the development server; set BFF_ENV=development")
    try:
        settings = load_settings(env, defaults=DEV_DEFAULTS)  # a bad value stops here
        _start_embedded(env)
    except (SettingsError, OSError) as exc:
        sys.exit(f"bff: {exc}")
    from bff import create_app

    app = create_app(settings)
    print(  # noqa: T201 - the walk-through is for the developer's terminal
        WALKTHROUGH.format(
            bff=DEV_PORTS["bff"],
            idaas=DEV_PORTS["idaas"],
            wechat=DEV_PORTS["wechat"],
            user=DEMO_USER,
            password=DEMO_PASSWORD,
            mobile=DEMO_MOBILE,
        ),
        flush=True,
    )
    run_simple("127.0.0.1", DEV_PORTS["bff"], app, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
