"""A changed BFF_APPS_FILE takes effect on gunicorn's SIGHUP: new workers serve the new apps while
a request in flight finishes on its old worker; a bad file leaves the running apps serving."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests

from tests.support.app import DEVICE, GATEWAY_SECRET, PASSWORD
from tests.support.gunicorn import Gunicorn, gunicorn_env

BIND = "/api/v2/sdk/social/username-password-bind"


def _app(name: str) -> str:
    return (
        f'[apps.{name}]\nwechat_appid = "wx-{name}"\nidaas_client_id = "test-client"\n'
        'identity_source = "gateway"\n'
    )


def _headers(appid: str, openid: str) -> dict[str, str]:
    return {
        "X-WX-OPENID": openid,
        "X-WX-APPID": appid,
        "X-Gateway-Secret": GATEWAY_SECRET,
        **DEVICE,
    }


def _login(server: Gunicorn, wechat: Any, appid: str, openid: str) -> requests.Response:
    body = {"code": wechat.issue_code(openid)}
    return requests.post(
        server.base + "/api/v1/login", json=body, headers=_headers(appid, openid), timeout=10
    )


@pytest.mark.usefixtures("one_window")
@pytest.mark.window_margin(40)
def test_a_sighup_serves_the_new_apps_and_keeps_the_old_ones_on_a_bad_file(
    tmp_path, idaas_server, wechat_server, key_prefix
):
    idaas_server.reset_state()
    idaas_server.add_user("alice", PASSWORD)
    apps = tmp_path / "apps.toml"
    apps.write_text(_app("shop"))
    env = gunicorn_env(
        idaas_server,
        wechat_server,
        "redis://127.0.0.1:6379/0",
        key_prefix + "hup",
        IDENTITY_SOURCE="gateway",
        GATEWAY_SECRET=GATEWAY_SECRET,
        BFF_APPS_FILE=str(apps),
        GUNICORN_DRAIN_S="0",
    )
    server = Gunicorn(env, tmp_path / "server.log").start()
    try:
        assert _login(server, wechat_server, "wx-shop", "o_hup_1").json()["status"] == "SOCIAL_BIND"
        assert _login(server, wechat_server, "wx-blog", "o_hup_2").status_code == 404
        # A bind in flight on an old worker when the apps change: it finishes there.
        idaas_server.add_fault("latency", path=BIND, seconds=2.0)
        answers: list[requests.Response] = []
        body = {"user_name": "alice", "password": PASSWORD}
        flight = threading.Thread(
            target=lambda: answers.append(
                requests.post(
                    server.base + "/api/v1/bind/username-password",
                    json=body,
                    headers=_headers("wx-shop", "o_hup_1"),
                    timeout=20,
                )
            )
        )
        flight.start()
        time.sleep(0.5)  # the bind is at the IDaaS
        apps.write_text(_app("shop") + _app("blog"))
        server.reload()
        flight.join(20)
        assert answers and answers[0].json()["status"] == "SUCCESS", answers
        assert _login(server, wechat_server, "wx-blog", "o_hup_2").json()["status"] == "SOCIAL_BIND"
        # A bad file: an error line, and the apps that ran go on running.
        apps.write_text("this is not TOML [")
        server.reload()
        assert server.proc is not None and server.proc.poll() is None
        for appid, openid in (("wx-shop", "o_hup_3"), ("wx-blog", "o_hup_4")):
            assert _login(server, wechat_server, appid, openid).status_code == 200
        log = server.log_path.read_text()
        assert "configuration error on reload: the running configuration stays" in log
        assert "BFF_APPS_FILE: file: not TOML" in log
    finally:
        server.stop()
