"""Settings: parsed once, a bad value names its variable, no secret defaults in production."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bff import create_app
from bff.dev_settings import DEV_DEFAULTS, DEV_PORTS, dev_defaults, dev_ports
from bff.env_fields import parse_rate_limits
from bff.errors import SettingsError
from bff.limits import Rate, Scope
from bff.settings import load_settings
from tests.support.gunicorn import load_config

ROOT = Path(__file__).resolve().parent.parent
OPENID, IP, ACCOUNT, DESTINATION = Scope.OPENID, Scope.IP, Scope.ACCOUNT, Scope.DESTINATION
MINIMAL = {
    "IDAAS_BASE_URL": "https://tenant.example.com",
    "IDAAS_CLIENT_ID": "cid",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "WECHAT_APPID": "wxapp",
    "WECHAT_SECRET": "wxsecret",
}


def test_minimal_production_settings_and_defaults():
    s = load_settings(MINIMAL)
    assert s.bff_env == "production" and s.identity_source == "wechat"
    assert s.idaas_timeout == (2.0, 8.0) and s.wechat_timeout == (2.0, 5.0)
    assert s.redis_key_prefix == "bff" and s.handle_ttl_s == 604800 and s.state_token_ttl_s == 600
    assert s.trusted_proxy_count == 1 and s.max_body_bytes == 16384
    assert s.idaas_session_token_header == "session-token" and s.idaas_verify_id_token
    assert s.rate_limit_bind[OPENID] == (Rate(5, 60),) and s.rate_limit_bind[IP] == (Rate(30, 60),)
    assert s.rate_limit_bind[ACCOUNT] == (Rate(4, 900),)
    assert s.rate_limit_codes[DESTINATION] == (Rate(1, 60), Rate(5, 3600))
    assert [str(i) for i in s.rate_limit_codes[DESTINATION]] == ["1 per 1 minute", "5 per 1 hour"]
    assert s.circuit_failures == 5 and s.circuit_reset_s == 30.0


@pytest.mark.parametrize(
    "missing", ["IDAAS_CLIENT_ID", "IDAAS_BASE_URL", "REDIS_URL", "WECHAT_SECRET", "WECHAT_APPID"]
)
def test_missing_required_names_the_variable(missing):
    env = {k: v for k, v in MINIMAL.items() if k != missing}
    with pytest.raises(SettingsError, match=f"^{missing}: "):
        load_settings(env)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("IDAAS_BASE_URL", "not a url"),
        ("IDAAS_READ_TIMEOUT_S", "-1"),
        ("IDAAS_CONNECT_TIMEOUT_S", "soon"),
        ("REDIS_URL", "http://localhost"),
        ("IDENTITY_SOURCE", "cookie"),
        ("BFF_ENV", "staging"),
        ("TRUSTED_PROXY_COUNT", "-1"),
        ("RATE_LIMIT_BIND", "lots"),
        ("RATE_LIMIT_CODES", "country=1/minute"),
        ("REDIS_CLUSTER", "maybe"),
        ("REDIS_SENTINELS", "sentinel-1"),
        ("REDIS_SENTINELS", "sentinel-1:26379,:26379"),
        ("REDIS_SENTINELS", "sentinel-1:99999"),
        ("REDIS_SENTINEL_MASTER", "my master"),
        ("REDIS_SENTINEL_WAIT_REPLICAS", "-1"),
        ("IDAAS_SESSION_TOKEN_HEADER", "bad header"),
        ("LOG_LEVEL", "LOUD"),
        ("GATEWAY_SECRET", "short"),
    ],
)
def test_malformed_names_the_variable(name, value):
    with pytest.raises(SettingsError, match=f"^{name}: "):
        load_settings({**MINIMAL, name: value})


def test_gateway_mode_needs_a_secret_not_wechat():
    env = {k: v for k, v in MINIMAL.items() if not k.startswith("WECHAT")}
    with pytest.raises(SettingsError, match="^GATEWAY_SECRET: required"):
        load_settings({**env, "IDENTITY_SOURCE": "gateway"})
    s = load_settings({**env, "IDENTITY_SOURCE": "gateway", "GATEWAY_SECRET": "x" * 32})
    assert s.wechat_secret is None


def test_development_has_embedded_defaults():
    s = load_settings({"BFF_ENV": "development"}, defaults=DEV_DEFAULTS)
    assert s.idaas_base_url.startswith("http://127.0.0.1:")
    assert s.redis_url.startswith("redis://127.0.0.1:")


def test_development_ports_come_from_bff_dev_variables():
    assert dev_ports({}) == DEV_PORTS == {"bff": 8000, "idaas": 8101, "wechat": 8102, "redis": 6399}
    env = {"BFF_DEV_PORT": "18000", "BFF_DEV_IDAAS_PORT": "18101", "BFF_DEV_WECHAT_PORT": " 18102"}
    assert dev_ports({**env, "BFF_DEV_REDIS_PORT": "16399"}) == {
        "bff": 18000,
        "idaas": 18101,
        "wechat": 18102,
        "redis": 16399,
    }
    env = {"BFF_ENV": "development", **env, "BFF_DEV_REDIS_PORT": "16399"}
    s = load_settings(env, defaults=dev_defaults(dev_ports(env)))
    assert s.idaas_base_url == "http://127.0.0.1:18101"
    assert s.wechat_api_base == "http://127.0.0.1:18102"
    assert s.redis_url == "redis://127.0.0.1:16399/0"
    assert load_settings({**MINIMAL, "BFF_DEV_PORT": "not read in production"})


@pytest.mark.parametrize("value", ["0", "65536", "-1", "80a", "８０８０", "1e3"])
def test_malformed_development_port_names_the_variable(value):
    with pytest.raises(SettingsError, match="^BFF_DEV_WECHAT_PORT: not a port number"):
        dev_ports({"BFF_ENV": "development", "BFF_DEV_WECHAT_PORT": value})


def test_production_has_no_secret_defaults():
    with pytest.raises(SettingsError):
        load_settings({"BFF_ENV": "production"})


def test_redacted_hides_secrets():
    s = load_settings(
        {**MINIMAL, "REDIS_URL": "redis://:hunter2@redis:6379/0", "LOG_HASH_KEY": "k" * 20}
    )
    shown = str(s.redacted())
    assert "wxsecret" not in shown and "hunter2" not in shown and "k" * 20 not in shown


def test_sentinel_settings():
    s = load_settings({**MINIMAL, "REDIS_SENTINELS": "s1:26379, 10.0.0.2:26380,[::1]:26381"})
    assert s.redis_sentinels == (("s1", 26379), ("10.0.0.2", 26380), ("::1", 26381))
    assert (s.redis_sentinel_master, s.redis_sentinel_wait_replicas) == ("mymaster", 1)
    assert load_settings(MINIMAL).redis_sentinels is None


def test_sentinel_and_cluster_at_once_are_refused_naming_both():
    env = {**MINIMAL, "REDIS_SENTINELS": "s1:26379", "REDIS_CLUSTER": "true"}
    with pytest.raises(SettingsError, match="^REDIS_SENTINELS: .*REDIS_CLUSTER"):
        load_settings(env)
    env = {**MINIMAL, "REDIS_SENTINELS": "s1:26379", "REDIS_URL": "unix:///run/redis.sock"}
    with pytest.raises(SettingsError, match="^REDIS_URL: unix:// with REDIS_SENTINELS"):
        load_settings(env)


def test_the_sentinel_password_is_never_shown():
    s = load_settings(
        {**MINIMAL, "REDIS_SENTINELS": "s1:26379", "REDIS_SENTINEL_PASSWORD": "s3ntinel-pw"}
    )
    shown = s.redacted()
    assert "s3ntinel-pw" not in str(shown)
    assert shown["redis_sentinel_password"] == "***"
    assert shown["redis_sentinels"] == "s1:26379"


def test_rate_limit_grammar():
    parsed = parse_rate_limits("openid=5/minute ip=30/minute;100/hour", (OPENID, IP))
    assert parsed[IP] == (Rate(30, 60), Rate(100, 3600))
    assert set(parse_rate_limits("20/minute", (OPENID, IP))) == {OPENID, IP}
    with pytest.raises(ValueError, match="empty"):
        parse_rate_limits("  ", (IP,))
    with pytest.raises(ValueError, match="unknown scope 'account'"):
        parse_rate_limits("account=1/minute", (OPENID, IP))


def test_create_app_reads_the_environment(monkeypatch):
    for k, v in MINIMAL.items():
        monkeypatch.setenv(k, v)
    app = create_app()
    assert app.config["MAX_CONTENT_LENGTH"] == 16384


def test_gunicorn_config_exits_with_one_line_on_bad_settings(tmp_path):
    env = {"IDAAS_BASE_URL": "https://x.example.com"}
    proc = load_config(env)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "bff: configuration error: IDAAS_CLIENT_ID: Missing data for required field.; "
        "REDIS_URL: Missing data for required field.; "
        "WECHAT_APPID: required when IDENTITY_SOURCE=wechat; "
        "WECHAT_SECRET: required when IDENTITY_SOURCE=wechat"
    ]


@pytest.mark.parametrize("name", ["IDAAS_BASE_URL", "WECHAT_API_BASE"])
def test_production_upstreams_need_tls_except_on_loopback(name):
    with pytest.raises(SettingsError, match=f"^{name}: must be https"):
        load_settings({**MINIMAL, name: "http://idaas.example.com"})
    assert load_settings({**MINIMAL, name: "http://127.0.0.1:8101"})
    assert load_settings({**MINIMAL, "BFF_ENV": "development", name: "http://sim.local:8101"})
    with pytest.raises(SettingsError, match="^IDAAS_CLIENT_ID: "):  # no secret, no default
        load_settings({"BFF_ENV": "development", "IDAAS_BASE_URL": "http://127.0.0.1:1"})


def test_rate_limits_have_a_form_without_spaces_or_shell_metacharacters():
    scopes = (DESTINATION, OPENID, IP)
    new = "destination=1/minute,destination=5/hour,openid=10/day,ip=20/hour"
    old = "destination=1/minute;5/hour openid=10/day ip=20/hour"
    assert parse_rate_limits(new, scopes) == parse_rate_limits(old, scopes)
    assert not set(new) & set(" ;&|<>$`'\"\\()*?[]#~")
    with pytest.raises(ValueError, match="give every limit its scope"):
        parse_rate_limits("openid=1/minute,5/hour", scopes)  # 5/hour would hit every scope


def test_the_production_env_example_works_sourced_by_a_shell():
    """One file, read two ways: by `set -a; . file` and as a compose env_file (KEY=VALUE)."""
    text = (ROOT / "config" / "production.env.example").read_text()
    compose = dict(
        line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    script = "set -a; . config/production.env.example; env"
    out = subprocess.run(
        ["bash", "-c", script],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 0 and out.stderr == "", out.stderr
    shell = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    assert {k: shell.get(k) for k in compose} == compose


def test_every_bad_variable_is_named_at_once():
    """Not one per restart: the whole list, in name order."""
    env = {**MINIMAL, "IDAAS_READ_TIMEOUT_S": "soon", "REDIS_CLUSTER": "maybe"}
    del env["WECHAT_SECRET"]
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    named = [part.split(":")[0] for part in str(caught.value).split("; ")]
    assert named == ["IDAAS_READ_TIMEOUT_S", "REDIS_CLUSTER", "WECHAT_SECRET"]


@pytest.mark.parametrize("level", ["debug", "Info", "WARNING", " error "])
def test_log_level_is_case_insensitive(level):
    assert load_settings({**MINIMAL, "LOG_LEVEL": level}).log_level == level.strip().upper()
