"""Two apps with different appids and client ids served by one gunicorn (two workers), end to
end over real sockets: sign-in, bind, refresh, the forward-auth check and logout, each on its own
IDaaS and WeChat simulators; nothing shared between them but the process and Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from bff_simulators.idaas import IdaasSimulator
from bff_simulators.wechat import WeChatSimulator
from tests.support.app import CLIENT_ID, DEVICE, PASSWORD, REDIS_URL, app_idaas
from tests.support.gunicorn import Gunicorn, gunicorn_env

SHOP_APPID, SHOP_SECRET, SHOP_CLIENT = "wx-shop-gu", "shop-gu-wechat-secret", "shop-gu-client"


@pytest.fixture(scope="module")
def shop() -> Iterator[tuple[WeChatSimulator, IdaasSimulator]]:
    with WeChatSimulator(appid=SHOP_APPID, secret=SHOP_SECRET) as wechat:
        with app_idaas(wechat, SHOP_APPID, SHOP_SECRET, SHOP_CLIENT) as idaas:
            idaas.add_user("alice", PASSWORD)
            yield wechat, idaas


def _sign_in(base: str, wechat: WeChatSimulator, openid: str, appid: str | None) -> str:
    s = requests.Session()
    body = {"wx_code": wechat.issue_code(openid), **({"appid": appid} if appid else {})}
    r = s.post(base + "/api/v1/wechat/session", json=body, headers=DEVICE, timeout=10)
    assert r.status_code == 201, r.text
    handle = r.json()["handle"]
    h = {"Authorization": f"Bearer {handle}", **DEVICE}
    r = s.post(base + "/api/v1/login", json={"code": wechat.issue_code(openid)}, headers=h)
    assert r.json()["status"] == "SOCIAL_BIND", r.text
    body = {"user_name": "alice", "password": PASSWORD}
    r = s.post(base + "/api/v1/bind/username-password", json=body, headers=h, timeout=10)
    assert r.json().get("status") == "SUCCESS", r.text
    assert s.post(base + "/api/v1/session/refresh", headers=h, timeout=10).status_code == 200
    return handle


def test_two_apps_under_one_gunicorn_sign_in_bind_refresh_and_log_out_apart(
    tmp_path, shop, idaas_sim, wechat_sim, redis, key_prefix
):
    shop_wechat, shop_idaas = shop
    apps = tmp_path / "apps.toml"
    apps.write_text(
        f'[apps.shop]\nwechat_api_base = "{shop_wechat.base_url}"\n'
        f'wechat_appid = "{SHOP_APPID}"\nwechat_secret = {{ env = "SHOP_WECHAT_SECRET" }}\n'
        f'idaas_base_url = "{shop_idaas.base_url}"\nidaas_client_id = "{SHOP_CLIENT}"\n'
    )
    prefix = key_prefix + "ag"
    env = gunicorn_env(
        idaas_sim,
        wechat_sim,
        REDIS_URL,
        prefix,
        BFF_APPS_FILE=str(apps),
        SHOP_WECHAT_SECRET=SHOP_SECRET,
        HOME=str(tmp_path / "home"),
    )
    server = Gunicorn(env, tmp_path / "server.log").start()
    try:
        openid = "o_two_apps_gu"  # one openid string in both apps: still two users
        default_handle = _sign_in(server.base, wechat_sim, openid, None)
        shop_handle = _sign_in(server.base, shop_wechat, openid, SHOP_APPID)
        assert shop_handle.startswith("shop.") and "." not in default_handle
        assert redis.exists(f"{prefix}:session:{openid}", f"{prefix}.shop:session:{openid}") == 2
        for handle, app in ((default_handle, "default"), (shop_handle, "shop")):
            check = requests.get(
                server.base + "/api/v1/auth",
                headers={"Authorization": f"Bearer {handle}"},
                timeout=10,
            )
            assert check.status_code == 200 and check.headers["X-BFF-App"] == app
        calls = {r.headers.get("X-client-id") for r in shop_idaas.requests if r.path != "/"}
        assert calls - {None} == {SHOP_CLIENT}
        assert SHOP_CLIENT not in {r.headers.get("X-client-id") for r in idaas_sim.requests}
        assert CLIENT_ID in {r.headers.get("X-client-id") for r in idaas_sim.requests}
        out = requests.delete(
            server.base + "/api/v1/session",
            headers={"Authorization": f"Bearer {shop_handle}"},
            timeout=10,
        )
        assert out.status_code == 204
        assert not redis.exists(f"{prefix}.shop:session:{openid}")
        assert redis.exists(f"{prefix}:session:{openid}")  # the other app's user stays signed in
        status = requests.get(
            server.base + "/api/v1/session",
            headers={"Authorization": f"Bearer {default_handle}"},
            timeout=10,
        )
        assert status.json()["active"] is True
    finally:
        server.stop()
        for key in redis.scan_iter(f"{prefix}*"):
            redis.delete(key)
