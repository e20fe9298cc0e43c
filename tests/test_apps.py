"""BFF_APPS_FILE: the apps one deployment serves besides the environment's, every problem of
every app reported at start-up at once, no secret written in the file."""

from __future__ import annotations

import pytest

from bff.apps import DEFAULT_APP, SIGN_IN_ROUTES
from bff.errors import SettingsError
from bff.limits import Rate, Scope
from bff.settings import load_settings

BASE = {
    "IDAAS_BASE_URL": "https://tenant.example.com",
    "IDAAS_CLIENT_ID": "cid",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "WECHAT_APPID": "wxapp",
    "WECHAT_SECRET": "wxsecret",
}
SHOP = """
[apps.shop]
wechat_appid = "wx-shop"
wechat_secret = { env = "SHOP_WECHAT_SECRET" }
idaas_client_id = "shop-client"
rate_limit_bind = "openid=1/minute"
routes = ["login", "bind/username-password"]
"""


def _load(tmp_path, text: str, **env: str):
    path = tmp_path / "apps.toml"
    path.write_text(text)
    return load_settings({**BASE, "BFF_APPS_FILE": str(path), **env})


def test_without_a_file_the_environment_is_the_only_app():
    settings = load_settings(BASE)
    (app,) = settings.apps
    assert app.name == DEFAULT_APP and app.redis_key_prefix == "bff"  # today's keys
    assert app.wechat_appid == "wxapp" and app.idaas_client_id == "cid"
    assert app.routes == frozenset(SIGN_IN_ROUTES)


def test_an_app_takes_the_environments_values_unless_it_sets_its_own(tmp_path):
    settings = _load(tmp_path, SHOP, SHOP_WECHAT_SECRET="shop-secret")
    default, shop = settings.apps
    assert default.name == DEFAULT_APP and shop.name == "shop"
    assert shop.redis_key_prefix == "bff.shop"  # namespaced under the deployment's prefix
    assert shop.idaas_base_url == BASE["IDAAS_BASE_URL"]  # two apps may share a tenant
    assert shop.idaas_client_id == "shop-client" and shop.wechat_secret == "shop-secret"
    assert shop.rate_limit_bind == {Scope.OPENID: (Rate(1, 60),)}
    assert shop.rate_limit_login == default.rate_limit_login
    assert shop.routes == {"login", "bind/username-password"}
    shown = str(settings.redacted())
    assert "shop-secret" not in shown and "wxsecret" not in shown


def test_a_secret_can_come_from_a_file(tmp_path):
    secret = tmp_path / "shop-wechat"
    secret.write_text("from-a-file\n")
    text = SHOP.replace('{ env = "SHOP_WECHAT_SECRET" }', f'{{ file = "{secret}" }}')
    assert _load(tmp_path, text).apps[1].wechat_secret == "from-a-file"


def test_every_problem_of_every_app_is_named_at_once(tmp_path):
    text = """
[apps.shop]
wechat_appid = "wxapp"
wechat_secret = "written-in-the-file"
idaas_client_id = "shop-client"
colour = "blue"

[apps.Blog]
wechat_appid = "wx-blog"

[apps.news]
wechat_appid = "wx-news"
wechat_secret = { env = "NEWS_SECRET" }
idaas_client_id = "news"
idaas_base_url = "http://news.example.com"
routes = ["login", "teleport"]
rate_limit_bind = "five a minute"
"""
    with pytest.raises(SettingsError) as caught:
        _load(tmp_path, text)
    message = str(caught.value)
    assert message.startswith("BFF_APPS_FILE: ")
    for expected in (
        "apps.Blog: not an app name",
        "apps.shop.colour: unknown key",
        "apps.shop.wechat_secret: write { env = NAME } or { file = PATH }: no secret in this file",
        "apps.shop.wechat_appid: shop and default share it",
        "apps.news.wechat_secret: the variable NEWS_SECRET is not set",
        "apps.news.idaas_base_url: must be https:// in production",
        "apps.news.routes: unknown routes ['teleport']",
        "apps.news.rate_limit_bind: not a rate limit",
    ):
        assert expected in message, (expected, message)
    assert "written-in-the-file" not in message


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("this is not toml", "BFF_APPS_FILE: file: not TOML"),
        ("[other]\nx = 1\n", "unknown tables ['other']"),
        ("", "declares no app"),
    ],
)
def test_a_file_that_is_not_an_apps_file_is_refused(tmp_path, text, problem):
    with pytest.raises(SettingsError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        _load(tmp_path, text)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(SettingsError, match="^BFF_APPS_FILE: file: cannot be read"):
        load_settings({**BASE, "BFF_APPS_FILE": str(tmp_path / "nowhere.toml")})


def test_a_gateway_app_needs_the_gateway_secret(tmp_path):
    text = (
        '[apps.shop]\nwechat_appid = "wx-shop"\nidaas_client_id = "c"\n'
        'identity_source = "gateway"\n'
    )
    with pytest.raises(SettingsError, match="an app in gateway mode needs GATEWAY_SECRET"):
        _load(tmp_path, text)
    settings = _load(tmp_path, text, GATEWAY_SECRET="g" * 20)
    assert settings.apps[1].identity_source == "gateway" and settings.apps[1].wechat_secret is None
