"""Every secret may come from a file, NAME_FILE: read once, in the settings layer, before any
check; its value checked, used and masked as the variable's; a problem names NAME_FILE and the
path, never the content."""

from __future__ import annotations

import json
import secrets

import pytest

from bff import create_app
from bff.admin import main as admin
from bff.dev_settings import DEV_DEFAULTS
from bff.errors import SettingsError
from bff.observability import hash_openid
from bff.settings import FILE_VARIABLES, load_settings
from tests.support.gunicorn import load_config

MINIMAL = {
    "IDAAS_BASE_URL": "https://tenant.example.com",
    "IDAAS_CLIENT_ID": "cid",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "WECHAT_APPID": "wxapp",
    "WECHAT_SECRET": "wxsecret",
}
ATTRIBUTE = {
    "REDIS_URL": "redis_url",
    "WECHAT_SECRET": "wechat_secret",
    "GATEWAY_SECRET": "gateway_secret",
    "GATEWAY_SECRET_PREVIOUS": "gateway_secret_previous",
    "LOG_HASH_KEY": "log_hash_key",
    "LOG_HASH_KEY_PREVIOUS": "log_hash_key_previous",
    "IDP_EVENTS_TOKEN": "idp_events_token",
    "IDP_EVENTS_ENCRYPTION_KEY": "idp_events_encryption_key",
    "IDP_EVENTS_SIGNATURE_KEY": "idp_events_signature_key",
    "REDIS_SENTINEL_PASSWORD": "redis_sentinel_password",
}
IDP_KEYS = {name: secrets.token_hex(16) for name in ATTRIBUTE if name.startswith("IDP_")}


def _value(name: str) -> str:
    if name.startswith("IDP_"):  # 32 characters: the AES key exactly, the others at least
        return secrets.token_hex(16)
    if name == "REDIS_URL":
        return f"redis://bff:{secrets.token_hex(8)}@127.0.0.1:6379/0"
    return "from-a-file-" + secrets.token_hex(8)


def test_every_secret_and_only_the_secrets_may_come_from_a_file():
    assert set(FILE_VARIABLES) == set(ATTRIBUTE)


@pytest.mark.parametrize("name", sorted(ATTRIBUTE))
def test_the_files_content_is_the_value_one_trailing_newline_stripped(tmp_path, name):
    value = _value(name)
    path = tmp_path / "secret"
    path.write_text(value + "\n")
    env = {k: v for k, v in MINIMAL.items() if k != name}
    env.update({"GATEWAY_SECRET": "g" * 20, "LOG_HASH_KEY": "k" * 20})  # the _PREVIOUS need them
    env.update(IDP_KEYS)  # the WebHook's keys come all three or none
    env.pop(name, None)
    settings = load_settings({**env, f"{name}_FILE": str(path)})
    assert getattr(settings, ATTRIBUTE[name]) == value
    path.write_text(value + "\r\n")  # written on Windows
    assert getattr(load_settings({**env, f"{name}_FILE": str(path)}), ATTRIBUTE[name]) == value


def test_only_one_newline_is_stripped_and_inner_whitespace_is_kept(tmp_path):
    path = tmp_path / "secret"
    path.write_text("  a gateway secret with spaces \n\n")
    settings = load_settings({**MINIMAL, "GATEWAY_SECRET_FILE": str(path)})
    assert settings.gateway_secret == "  a gateway secret with spaces \n"


@pytest.mark.parametrize("name", sorted(ATTRIBUTE))
def test_both_the_variable_and_its_file_is_an_error_naming_both(tmp_path, name):
    value = _value(name)
    path = tmp_path / "secret"
    path.write_text(value)
    env = {**MINIMAL, name: _value(name), f"{name}_FILE": str(path)}
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    message = str(caught.value)
    assert f"{name}_FILE: {name} and {name}_FILE are both set: set one" in message
    assert value not in message and env[name] not in message


@pytest.mark.parametrize("name", sorted(ATTRIBUTE))
def test_a_missing_file_is_an_error_naming_the_variable_and_the_path(tmp_path, name):
    path = tmp_path / "nowhere" / "secret"
    env = {k: v for k, v in MINIMAL.items() if k != name}
    with pytest.raises(SettingsError) as caught:
        load_settings({**env, f"{name}_FILE": str(path)})
    assert f"{name}_FILE: cannot read {path} (No such file or directory)" in str(caught.value)


def test_an_unreadable_file_is_an_error_and_its_content_is_never_shown(tmp_path):
    directory = tmp_path / "a-directory"
    directory.mkdir()
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe-secret-bytes-" + secrets.token_hex(8).encode())
    env = {**MINIMAL, "GATEWAY_SECRET_FILE": str(directory), "LOG_HASH_KEY_FILE": str(binary)}
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    message = str(caught.value)
    assert f"GATEWAY_SECRET_FILE: cannot read {directory} (Is a directory)" in message
    assert f"LOG_HASH_KEY_FILE: cannot read {binary} (not UTF-8 text)" in message
    assert "secret-bytes" not in message


def test_a_value_from_a_file_is_checked_like_the_variable(tmp_path):
    short, url = tmp_path / "short", tmp_path / "url"
    short.write_text("too-short\n")
    url.write_text("http://not-redis\n")
    env = {
        **{k: v for k, v in MINIMAL.items() if k != "REDIS_URL"},
        "IDENTITY_SOURCE": "gateway",
        "GATEWAY_SECRET_FILE": str(short),
        "REDIS_URL_FILE": str(url),
    }
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    message = str(caught.value)
    assert "GATEWAY_SECRET: Shorter than minimum length 16." in message
    assert "REDIS_URL: must start with redis://" in message
    assert "too-short" not in message and "not-redis" not in message


def test_an_empty_file_counts_as_unset_as_an_empty_variable_does(tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("\n")
    settings = load_settings(
        {**MINIMAL, "GATEWAY_SECRET": "g" * 20, "GATEWAY_SECRET_PREVIOUS_FILE": str(empty)}
    )
    assert settings.gateway_secret_previous is None
    env = {**MINIMAL, "IDENTITY_SOURCE": "gateway", "GATEWAY_SECRET_FILE": str(empty)}
    with pytest.raises(SettingsError, match="GATEWAY_SECRET: required when IDENTITY_SOURCE"):
        load_settings(env)


def test_a_previous_value_needs_the_current_one():
    env = {**MINIMAL, "GATEWAY_SECRET_PREVIOUS": "p" * 20, "LOG_HASH_KEY_PREVIOUS": "old-key"}
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    message = str(caught.value)
    assert "GATEWAY_SECRET_PREVIOUS: set only beside GATEWAY_SECRET (the new value)" in message
    assert "LOG_HASH_KEY_PREVIOUS: set only beside LOG_HASH_KEY (the new value)" in message


def test_a_development_default_gives_way_to_a_file(tmp_path):
    assert "WECHAT_SECRET" in DEV_DEFAULTS
    path = tmp_path / "wechat"
    path.write_text("wechat-secret-from-a-file\n")
    settings = load_settings(
        {"BFF_ENV": "development", "WECHAT_SECRET_FILE": str(path)}, defaults=DEV_DEFAULTS
    )
    assert settings.wechat_secret == "wechat-secret-from-a-file"


def test_an_apps_file_env_secret_may_come_from_its_file(tmp_path):
    secret, apps = tmp_path / "shop-secret", tmp_path / "apps.toml"
    secret.write_text("shop-secret-from-a-file\n")
    apps.write_text(
        '[apps.shop]\nwechat_appid = "wx-shop"\nidaas_client_id = "shop"\n'
        'wechat_secret = { env = "SHOP_SECRET" }\n'
    )
    env = {**MINIMAL, "BFF_APPS_FILE": str(apps)}
    settings = load_settings({**env, "SHOP_SECRET_FILE": str(secret)})
    assert settings.apps[1].wechat_secret == "shop-secret-from-a-file"
    both = {**env, "SHOP_SECRET_FILE": str(secret), "SHOP_SECRET": "x"}
    with pytest.raises(SettingsError, match="SHOP_SECRET and SHOP_SECRET_FILE are both set"):
        load_settings(both)
    with pytest.raises(SettingsError) as caught:
        load_settings({**env, "SHOP_SECRET_FILE": str(tmp_path / "none")})
    assert f"apps.shop.wechat_secret: SHOP_SECRET_FILE: cannot read {tmp_path / 'none'}" in str(
        caught.value
    )


def test_values_from_files_are_masked_in_the_start_up_line(tmp_path, capsys):
    values = {name: _value(name) for name in ATTRIBUTE}
    env = {k: v for k, v in MINIMAL.items() if k not in values}
    for name, value in values.items():
        (tmp_path / name).write_text(value + "\n")
        env[f"{name}_FILE"] = str(tmp_path / name)
    settings = load_settings(env)
    app = create_app(settings)
    try:
        lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    finally:
        app.extensions["bff"].close()
    shown = next(x for x in lines if x["message"] == "bff started")["settings"]
    for name, attribute in ATTRIBUTE.items():
        assert shown[attribute] == ("127.0.0.1" if name == "REDIS_URL" else "***"), name
    text = json.dumps(lines)
    assert not [v for v in values.values() if v in text]
    assert values["REDIS_URL"].split(":")[2].split("@")[0] not in text  # the password


def test_hash_openid_prints_the_previous_keys_hash_too(capsys):
    env = {**MINIMAL, "LOG_HASH_KEY": "new-key-0123456789", "LOG_HASH_KEY_PREVIOUS": "old-key-012"}
    assert admin(["hash-openid", "o_rotating"], env) == 0
    current, previous = capsys.readouterr().out.splitlines()
    assert current == hash_openid(b"new-key-0123456789", "o_rotating")
    assert previous == hash_openid(b"old-key-012", "o_rotating")
    assert admin(["hash-openid", "o_rotating"], {**env, "LOG_HASH_KEY_PREVIOUS": ""}) == 0
    assert capsys.readouterr().out.splitlines() == [current]


def test_gunicorns_master_names_both_in_one_line(tmp_path):
    path = tmp_path / "gateway"
    path.write_text("g" * 20)
    env = {**MINIMAL, "GATEWAY_SECRET": "h" * 20, "GATEWAY_SECRET_FILE": str(path)}
    done = load_config(env)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "bff: configuration error: GATEWAY_SECRET_FILE: GATEWAY_SECRET and GATEWAY_SECRET_FILE"
        " are both set: set one"
    ]
