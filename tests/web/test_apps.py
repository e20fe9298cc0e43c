"""Two apps (mini programs) served by one deployment, end to end over real sockets: each on its
own IDaaS and WeChat simulators, nothing shared between them but the process and Redis."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import pytest

from bff_simulators.idaas import IdaasSimulator
from bff_simulators.wechat import WeChatSimulator
from tests.support.app import (
    DEVICE,
    GATEWAY_SECRET,
    PASSWORD,
    AppCaller,
    AuthActions,
    GatewayCaller,
    app_idaas,
    apps_file,
)

SHOP_APPID, SHOP_SECRET, SHOP_CLIENT = "wx-shop", "shop-wechat-secret", "shop-client"


@pytest.fixture(scope="module")
def shop_wechat() -> Iterator[WeChatSimulator]:
    with WeChatSimulator(appid=SHOP_APPID, secret=SHOP_SECRET) as sim:
        yield sim


@pytest.fixture(scope="module")
def shop_idaas_server(shop_wechat: WeChatSimulator) -> Iterator[IdaasSimulator]:
    with app_idaas(shop_wechat, SHOP_APPID, SHOP_SECRET, SHOP_CLIENT) as sim:
        yield sim


@pytest.fixture
def shop_idaas(shop_idaas_server: IdaasSimulator) -> IdaasSimulator:
    shop_idaas_server.reset_state()
    shop_idaas_server.add_user("alice", PASSWORD)
    return shop_idaas_server


def _shop(shop_idaas: IdaasSimulator, extra: str = "") -> str:
    return f"""
[apps.shop]
wechat_api_base = "{shop_idaas.wechat_base_url}"
wechat_appid = "{SHOP_APPID}"
wechat_secret = {{ env = "SHOP_WECHAT_SECRET" }}
idaas_base_url = "{shop_idaas.base_url}"
idaas_client_id = "{SHOP_CLIENT}"
{extra}
"""


@pytest.fixture
def two_apps(make_app, tmp_path, shop_idaas, idaas_sim, wechat_sim):
    path = apps_file(tmp_path / "apps.toml", _shop(shop_idaas))
    return make_app(BFF_APPS_FILE=path, SHOP_WECHAT_SECRET=SHOP_SECRET)


def _signed_in(caller: AuthActions) -> dict[str, str]:
    headers = caller.signed_in()
    assert caller.client.post("/api/v1/session/refresh", headers=headers).status_code == 200
    return headers


def test_two_apps_sign_in_bind_refresh_and_log_out_apart(
    two_apps, shop_wechat, shop_idaas, wechat_sim, idaas_sim, redis, key_prefix
):
    shop = AppCaller(two_apps.test_client(), shop_wechat, shop_idaas, SHOP_APPID)
    default = AuthActions(two_apps.test_client(), wechat_sim, idaas_sim)
    default.openid = shop.openid  # one person, one openid string in both: still two users
    shop_headers, default_headers = _signed_in(shop), _signed_in(default)
    assert shop.handle.startswith("shop.") and "." not in default.handle
    shop_session = json.loads(redis.get(f"{key_prefix}.shop:session:{shop.openid}"))
    default_session = json.loads(redis.get(f"{key_prefix}:session:{default.openid}"))
    assert shop_session["session_token"] in shop_idaas.session_tokens
    assert default_session["session_token"] in idaas_sim.session_tokens
    # each IDaaS saw its own client id only, and only its own app's calls
    assert {
        r.headers["X-client-id"] for r in shop_idaas.requests if r.path.startswith("/api/v2")
    } == {SHOP_CLIENT}
    assert SHOP_CLIENT not in {r.headers.get("X-client-id") for r in idaas_sim.requests}
    assert shop.client.delete("/api/v1/session", headers=shop_headers).status_code == 204
    assert not redis.exists(f"{key_prefix}.shop:session:{shop.openid}")
    assert redis.exists(f"{key_prefix}:session:{default.openid}")  # the other app's stays
    status = default.client.get("/api/v1/session", headers=default_headers)
    assert status.json["active"] is True
    assert shop.client.get("/api/v1/session", headers=shop_headers).status_code == 401


def test_a_handle_serves_only_its_own_app(two_apps, shop_wechat, shop_idaas, redis, key_prefix):
    shop = AppCaller(two_apps.test_client(), shop_wechat, shop_idaas, SHOP_APPID)
    handle = shop.open_session()
    token = handle.removeprefix("shop.")
    for forged in (token, f"default.{token}", f"blog.{token}"):  # its token under another app
        resp = shop.client.get("/api/v1/session", headers={"Authorization": f"Bearer {forged}"})
        assert resp.status_code == 401 and resp.json["error_code"] == "BFF.UNAUTHENTICATED"
    assert list(redis.scan_iter(f"{key_prefix}.shop:handle:*"))


def test_a_pending_bind_of_one_app_is_not_spent_by_the_other(
    two_apps, shop_wechat, shop_idaas, wechat_sim, idaas_sim
):
    shop = AppCaller(two_apps.test_client(), shop_wechat, shop_idaas, SHOP_APPID)
    shop.pending_bind()
    default = AuthActions(two_apps.test_client(), wechat_sim, idaas_sim)
    default.openid = shop.openid
    resp = default.bind()
    assert resp.status_code == 409 and resp.json["error_code"] == "BFF.NO_PENDING_BIND"
    assert (
        shop.bind().json["status"] == "SUCCESS"
    )  # the shop's state token went to the shop's IDaaS
    assert not [r for r in idaas_sim.requests if r.path.endswith("/username-password-bind")]


def test_each_app_counts_against_its_own_limits(
    make_app,
    tmp_path,
    shop_wechat,
    shop_idaas,
    wechat_sim,
    idaas_sim,
    redis,
    key_prefix,
    one_window,
):
    path = apps_file(
        tmp_path / "apps.toml", _shop(shop_idaas, 'rate_limit_bind = "openid=1/minute"')
    )
    app = make_app(BFF_APPS_FILE=path, SHOP_WECHAT_SECRET=SHOP_SECRET)
    shop = AppCaller(app.test_client(), shop_wechat, shop_idaas, SHOP_APPID)
    shop.pending_bind()
    assert shop.bind(password="wrong").status_code == 400
    assert shop.bind().status_code == 429
    default = AuthActions(app.test_client(), wechat_sim, idaas_sim)
    default.openid = shop.openid  # the same openid string, the default app's own budget
    default.pending_bind()
    assert [default.bind(password="wrong").status_code for _ in range(2)] == [400, 400]
    assert list(redis.scan_iter(f"{key_prefix}.shop:rl:bind:openid:*"))


def test_a_route_an_app_switched_off_is_404_for_it_only(
    make_app, tmp_path, shop_wechat, shop_idaas, wechat_sim, idaas_sim
):
    path = apps_file(tmp_path / "apps.toml", _shop(shop_idaas, 'routes = ["login"]'))
    app = make_app(BFF_APPS_FILE=path, SHOP_WECHAT_SECRET=SHOP_SECRET)
    shop = AppCaller(app.test_client(), shop_wechat, shop_idaas, SHOP_APPID)
    shop.pending_bind()
    resp = shop.bind()
    assert resp.status_code == 404 and resp.json["error_code"] == "BFF.NOT_FOUND"
    assert AuthActions(app.test_client(), wechat_sim, idaas_sim).signed_in()


def test_an_unknown_appid_is_404(two_apps, wechat_sim):
    body = {"wx_code": wechat_sim.issue_code(), "appid": "wx-nobody"}
    resp = two_apps.test_client().post("/api/v1/wechat/session", json=body)
    assert resp.status_code == 404 and resp.json["error_code"] == "BFF.UNKNOWN_APP"


def test_the_gateway_names_the_app_by_appid(
    make_app, tmp_path, shop_wechat, shop_idaas, wechat_sim, idaas_sim, redis, key_prefix
):
    path = apps_file(tmp_path / "apps.toml", _shop(shop_idaas, 'identity_source = "gateway"'))
    app = make_app(BFF_APPS_FILE=path, SHOP_WECHAT_SECRET=SHOP_SECRET, IDENTITY_SOURCE="gateway")
    shop = GatewayCaller(app.test_client(), shop_wechat, shop_idaas)
    appid = {"X-WX-APPID": SHOP_APPID}
    assert (
        shop.client.post(
            "/api/v1/login", json={"code": shop.wx_code()}, headers=shop.headers(**appid)
        ).json["status"]
        == "SOCIAL_BIND"
    )
    body = {"user_name": "alice", "password": PASSWORD}
    resp = shop.client.post(
        "/api/v1/bind/username-password", json=body, headers=shop.headers(**appid)
    )
    assert resp.json["status"] == "SUCCESS"
    assert redis.exists(f"{key_prefix}.shop:session:{shop.openid}")
    unknown = shop.client.get(
        "/api/v1/session", headers=shop.headers(**{"X-WX-APPID": "wx-nobody"})
    )
    assert unknown.status_code == 404 and unknown.json["error_code"] == "BFF.UNKNOWN_APP"
    forged = {**shop.headers(**appid), "X-Gateway-Secret": "wrong-" + GATEWAY_SECRET}
    resp = shop.client.get("/api/v1/session", headers=forged)
    assert resp.status_code == 401  # no app is named without the gateway's secret


def test_metrics_and_log_lines_carry_the_app(make_app, tmp_path, shop_wechat, shop_idaas, capsys):
    path = apps_file(tmp_path / "apps.toml", _shop(shop_idaas))
    two_apps = make_app(BFF_APPS_FILE=path, SHOP_WECHAT_SECRET=SHOP_SECRET)  # logs to capsys
    shop = AppCaller(two_apps.test_client(), shop_wechat, shop_idaas, SHOP_APPID)
    shop.pending_bind()
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    requests = [x for x in lines if x.get("message") == "request" and x["route"] == "/api/v1/login"]
    assert requests and requests[-1]["app"] == "shop"
    text = two_apps.test_client().get("/metrics").get_data(as_text=True)
    assert 'bff_requests_total{app="shop",route="/api/v1/login",status="200"}' in text
    assert 'bff_upstream_requests_total{app="shop",outcome="ok",upstream="idaas"}' in text


def test_the_document_says_how_an_app_is_named(two_apps):
    doc = two_apps.test_client().get("/openapi.json").json
    assert "appid" in doc["components"]["schemas"]["WechatSessionRequest"]["properties"]
    assert "X-WX-APPID" in doc["info"]["description"]
    assert "BFF.UNKNOWN_APP" in json.dumps(
        doc["paths"]["/api/v1/login"]["post"]["responses"]["404"]
    )


def test_device_headers_and_client_ip_reach_the_apps_own_idaas(two_apps, shop_wechat, shop_idaas):
    shop = AppCaller(two_apps.test_client(), shop_wechat, shop_idaas, SHOP_APPID)
    shop.pending_bind()
    sent = [r for r in shop_idaas.requests if r.path.endswith("/wechat-miniprogram")][-1]
    assert sent.headers["X-device-fingerprint"] == DEVICE["X-device-fingerprint"]


# --- two apps on ONE IDaaS tenant and ONE WeChat simulator: two client ids, two appids --------

ONE_APPID, ONE_SECRET, ONE_CLIENT = "wx-shop-one", "shop-one-wechat-secret", "shop-one-client"


class OneSimCaller(AppCaller):
    """A user of the second app on the shared simulators: its wx.login codes are its appid's."""

    def wx_code(self) -> str:
        return self.wechat.issue_code(self.openid, self.unionid, appid=self.appid)


def _one_sim_apps(make_app, tmp_path, idaas_sim, wechat_sim, **env: str):
    """The default app and ``shop`` on the same IDaaS tenant and WeChat simulator."""
    idaas_sim.add_client(ONE_CLIENT, ONE_APPID, ONE_SECRET)
    wechat_sim.add_app(ONE_APPID, ONE_SECRET)
    text = (
        f'[apps.shop]\nwechat_appid = "{ONE_APPID}"\n'
        f'wechat_secret = {{ env = "SHOP_WECHAT_SECRET" }}\nidaas_client_id = "{ONE_CLIENT}"\n'
    )
    path = apps_file(tmp_path / "apps.toml", text)
    return make_app(BFF_APPS_FILE=path, SHOP_WECHAT_SECRET=ONE_SECRET, **env)


@pytest.fixture
def one_sim_apps(make_app, tmp_path, idaas_sim, wechat_sim):
    return _one_sim_apps(make_app, tmp_path, idaas_sim, wechat_sim)


def test_two_apps_on_one_simulator_keep_their_tokens_apart(
    one_sim_apps, idaas_sim, wechat_sim, redis, key_prefix
):
    import jwt

    shop = OneSimCaller(one_sim_apps.test_client(), wechat_sim, idaas_sim, ONE_APPID)
    default = AuthActions(one_sim_apps.test_client(), wechat_sim, idaas_sim)
    default.openid = shop.openid  # one openid string in both mini programs: two users
    shop.pending_bind()
    # the default app's user has nothing pending: the shop's state token is never used for it
    default.open_session()
    resp = default.bind()
    assert resp.status_code == 409 and resp.json["error_code"] == "BFF.NO_PENDING_BIND"
    shop_headers = {**shop.headers()}
    assert shop.bind().json["status"] == "SUCCESS"
    default_headers = _signed_in(default)
    assert shop.client.post("/api/v1/session/refresh", headers=shop_headers).status_code == 200
    # every IDaaS call carried the client id of the app it was for, with that app's tokens
    shop_session = json.loads(redis.get(f"{key_prefix}.shop:session:{shop.openid}"))
    default_session = json.loads(redis.get(f"{key_prefix}:session:{default.openid}"))
    assert idaas_sim.sessions[shop_session["session_token"]].client_id == ONE_CLIENT
    assert idaas_sim.sessions[default_session["session_token"]].client_id == "test-client"
    for session, client in ((shop_session, ONE_CLIENT), (default_session, "test-client")):
        claims = jwt.decode(session["id_token"], options={"verify_signature": False})
        assert claims["aud"] == client
    for r in idaas_sim.requests:
        state = idaas_sim.states.get(r.headers.get("X-state-token") or "")
        if state is not None:
            assert state.client_id == r.headers["X-client-id"]
    # code2Session was asked with each mini program's own appid
    assert {r.query.get("appid") for r in wechat_sim.requests} >= {ONE_APPID, "wx-sim-appid"}
    assert shop.client.delete("/api/v1/session", headers=shop_headers).status_code == 204
    assert default.client.get("/api/v1/session", headers=default_headers).json["active"] is True


@pytest.mark.usefixtures("one_window")
def test_apps_of_one_tenant_share_an_accounts_guesses(make_app, tmp_path, idaas_sim, wechat_sim):
    """An IDaaS account is its tenant's, whichever mini program names it: its bind budget is
    counted once for every app on that tenant, not once per app (N apps, N times the guesses
    that the limit is there to stop)."""
    limited = {"RATE_LIMIT_BIND": "account=2/minute"}
    app = _one_sim_apps(make_app, tmp_path, idaas_sim, wechat_sim, **limited)
    default = AuthActions(app.test_client(), wechat_sim, idaas_sim)
    shop = OneSimCaller(app.test_client(), wechat_sim, idaas_sim, ONE_APPID)
    name = "guessed-" + secrets.token_hex(4)  # an account of this test alone: its own counter
    idaas_sim.add_user(name, PASSWORD)
    for caller in (default, shop):
        caller.pending_bind()
    guesses = [default.bind(password="wrong", user_name=name).status_code for _ in range(2)]
    assert guesses == [400, 400]
    refused = shop.bind(password="wrong", user_name=name)
    assert refused.status_code == 429 and refused.json["error_code"] == "BFF.RATE_LIMITED"
