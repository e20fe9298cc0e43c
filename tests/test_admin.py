"""bff-admin against the test Redis: users signed in through the app, then the CLI, in-process
(``main(argv, environ)``) and as the installed commands (``python -m bff.admin``, ``bff-admin``)."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bff.admin import main
from tests.support.app import GATEWAY_SECRET, AuthActions
from tests.support.processes import free_port

BIN = Path(sys.executable).parent


def _admin(capsys, env, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()  # drop what the app logged so far
    status = main(list(argv), env)
    out, err = capsys.readouterr()
    return status, out, err


def _show(capsys, env, openid: str) -> dict:
    status, out, err = _admin(capsys, env, "session", "show", openid)
    assert status == 0 and not err, err
    return json.loads(out)


def _run(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    """A command as an operator runs it: its own process, only the given environment."""
    return subprocess.run(
        command,
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_show_a_signed_in_user(auth, env, capsys, redis, key_prefix):
    auth.signed_in()
    state = _show(capsys, env, auth.openid)
    session = state["session"]
    assert session["exists"] is True
    assert 431990 < session["ttl_s"] <= 432000
    assert abs(session["expire_at"] - (time.time() + 432000)) < 5
    assert session["unionid"] == auth.unionid and session["id_token_sub"] == "alice"
    assert state["pending_bind"] == {"exists": False, "ttl_s": None, "status": None}
    assert state["lock"] == {"held": False, "ttl_s": None}  # released when the bind ended
    assert state["handles"] == 1  # the handle the sign-in used, listed in the per-openid index
    text = json.dumps(state)
    cached = json.loads(redis.get(f"{key_prefix}:session:{auth.openid}"))
    for secret in (cached["session_token"], auth.handle, hashlib.sha256(auth.handle.encode())):
        assert (secret if isinstance(secret, str) else secret.hexdigest()) not in text
    assert auth.idaas.session_tokens[-1] not in text and auth.idaas.id_tokens[-1] not in text


def test_show_a_pending_bind(auth, env, capsys):
    auth.pending_bind()
    state = _show(capsys, env, auth.openid)
    assert state["session"]["exists"] is False
    pending = state["pending_bind"]
    assert pending["exists"] is True and pending["status"] == "SOCIAL_BIND"
    assert 590 < pending["ttl_s"] <= 600
    assert auth.idaas.state_tokens[-1] not in json.dumps(state)


def test_show_nobody(env, capsys):
    state = _show(capsys, env, "o_nobody_" + secrets.token_hex(6))
    assert state["session"] == {
        "exists": False,
        "ttl_s": None,
        "expire_at": None,
        "unionid": None,
        "id_token_sub": None,
    }
    assert state["pending_bind"]["exists"] is False and state["lock"]["held"] is False
    assert state["handles"] is None


def test_show_counts_the_live_handles_of_the_index(auth, env, capsys, redis, key_prefix):
    """The per-openid index (``{prefix}:handles:{openid}``, handle digests scored by when each
    expires): a handle that expired is not counted."""
    assert _show(capsys, env, auth.openid)["handles"] is None  # no handle yet: no index
    auth.open_session()
    auth.open_session()  # the same user on a second device
    index = f"{key_prefix}:handles:{auth.openid}"
    redis.zadd(index, {"0" * 64: 1})  # a handle that expired long ago
    assert _show(capsys, env, auth.openid)["handles"] == 2


def test_show_the_lock_of_a_request_in_flight(auth, env, capsys, redis, key_prefix):
    redis.set(f"{key_prefix}:lock:{auth.openid}", "someone", ex=30)
    lock = _show(capsys, env, auth.openid)["lock"]
    assert lock["held"] is True and 28 <= lock["ttl_s"] <= 30


def test_revoke_ends_the_session_and_the_pending_bind(auth, env, capsys, redis, key_prefix):
    headers = auth.signed_in()
    parked = {"state_token": "st-" + secrets.token_hex(8), "status": "MFA_AUTH"}
    redis.set(f"{key_prefix}:pending:{auth.openid}", json.dumps(parked))
    status, out, err = _admin(capsys, env, "session", "revoke", auth.openid)
    assert status == 0, err
    outcome = json.loads(out)
    assert outcome["revoked"] is True
    assert outcome["before"]["session"]["exists"] and outcome["before"]["pending_bind"]["exists"]
    assert not outcome["after"]["session"]["exists"]
    assert not outcome["after"]["pending_bind"]["exists"]
    for kind in ("session", "pending", "lock"):
        assert not redis.exists(f"{key_prefix}:{kind}:{auth.openid}")
    resp = auth.client.get("/api/v1/session", headers=headers)
    assert resp.status_code in (200, 401) and resp.json.get("active") in (False, None)
    assert auth.client.post("/api/v1/session/refresh", headers=headers).status_code == 401


def test_revoke_ends_every_handle(auth, env, capsys, redis, key_prefix):
    headers = auth.signed_in()
    assert _admin(capsys, env, "session", "revoke", auth.openid)[0] == 0
    digest = hashlib.sha256(auth.handle.encode()).hexdigest()
    assert not redis.exists(f"{key_prefix}:handle:{digest}")
    assert auth.client.get("/api/v1/session", headers=headers).status_code == 401


def test_revoke_does_not_wait_on_the_openid_lock_like_logout(auth, env, capsys, redis, key_prefix):
    auth.signed_in()
    redis.set(f"{key_prefix}:lock:{auth.openid}", "a login in flight", ex=30)
    status, out, err = _admin(capsys, env, "session", "revoke", auth.openid)
    assert status == 3 and not out
    assert err.startswith("bff-admin: BFF.REQUEST_IN_PROGRESS: ")
    assert redis.exists(f"{key_prefix}:session:{auth.openid}")  # nothing revoked meanwhile
    redis.delete(f"{key_prefix}:lock:{auth.openid}")  # not left for a later test's revocation


def test_hash_openid_is_what_the_request_log_carries(make_app, env, wechat_sim, idaas_sim, capsys):
    auth = AuthActions(make_app().test_client(), wechat_sim, idaas_sim)  # logs to this capsys
    headers = auth.headers()
    capsys.readouterr()
    assert auth.client.get("/api/v1/session", headers=headers).status_code == 200
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    logged = [x["openid_hash"] for x in lines if x.get("route") == "/api/v1/session"]
    status, out, _ = _admin(capsys, env, "hash-openid", auth.openid)
    assert status == 0 and logged == [out.strip()]


def test_hash_openid_is_keyed_like_the_service(env, capsys):
    openid = "o_keyed"
    first = _admin(capsys, env, "hash-openid", openid)[1]
    assert _admin(capsys, {**env, "LOG_HASH_KEY": "another-key"}, "hash-openid", openid)[1] != first
    assert len(first.strip()) == 16 and openid not in first


def test_check_config_prints_the_settings_redacted(env, capsys):
    secrets_env = {**env, "LOG_HASH_KEY": "log-hash-" + secrets.token_hex(8)}
    status, out, err = _admin(capsys, secrets_env, "check-config")
    assert status == 0 and not err
    shown = json.loads(out)
    assert shown["wechat_secret"] == shown["gateway_secret"] == shown["log_hash_key"] == "***"
    assert shown["redis_url"] == "127.0.0.1" and shown["idaas_base_url"] == "127.0.0.1"
    assert shown["redis_key_prefix"] == env["REDIS_KEY_PREFIX"]
    assert shown["rate_limit_bind"] == {
        "openid": "10000 per 1 minute",
        "ip": "10000 per 1 minute",
        "account": "10000 per 1 minute",
    }
    for name in ("WECHAT_SECRET", "GATEWAY_SECRET", "LOG_HASH_KEY"):
        assert secrets_env[name] not in out
    assert GATEWAY_SECRET not in out


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"IDAAS_CLIENT_ID": ""}, "IDAAS_CLIENT_ID"),
        ({"HANDLE_TTL_S": "soon"}, "HANDLE_TTL_S"),
        ({"IDENTITY_SOURCE": "gateway", "GATEWAY_SECRET": ""}, "GATEWAY_SECRET"),
    ],
)
def test_a_bad_environment_is_one_line_and_exit_1(env, capsys, change, named):
    for argv in (["check-config"], ["session", "show", "o_x"], ["hash-openid", "o_x"]):
        status, out, err = _admin(capsys, {**env, **change}, *argv)
        assert status == 1 and not out
        assert err.startswith(f"bff: configuration error: {named}: ") and err.count("\n") == 1


def test_redis_down_is_exit_3_without_a_traceback(env):
    down = {**env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    for action in ("show", "revoke"):
        done = _run(down, sys.executable, "-m", "bff.admin", "session", action, "o_down")
        assert done.returncode == 3 and not done.stdout
        assert done.stderr.splitlines() == [
            "bff-admin: WARNING bff.store: session store unavailable",
            "bff-admin: BFF.SESSION_STORE_UNAVAILABLE: the session store is unavailable",
        ]


def test_usage_errors_are_exit_2(env, capsys):
    assert _admin(capsys, env, "session", "show", "not an openid")[0] == 2
    assert _admin(capsys, env, "session", "drop", "o_x")[0] == 2
    assert _admin(capsys, env)[0] == 2
    assert _admin(capsys, env, "--help")[0] == 0


def test_the_installed_commands(auth, env):
    """``python -m bff.admin`` and the ``bff-admin`` console script, as an operator runs them."""
    auth.signed_in()
    shown = _run(env, sys.executable, "-m", "bff.admin", "session", "show", auth.openid)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["session"]["id_token_sub"] == "alice"
    hashed = _run(env, str(BIN / "bff-admin"), "hash-openid", auth.openid)
    assert hashed.returncode == 0 and len(hashed.stdout.strip()) == 16
    bad = _run({**env, "REDIS_URL": "http://nope"}, str(BIN / "bff-admin"), "check-config")
    assert bad.returncode == 1 and not bad.stdout
    assert bad.stderr.startswith("bff: configuration error: REDIS_URL: ")


def test_the_cli_loads_no_flask():
    code = "import sys, bff.admin; print([m for m in ('flask', 'werkzeug') if m in sys.modules])"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_app_names_whose_keys_a_command_reads(env, capsys, redis, key_prefix, tmp_path):
    """--app: an app of BFF_APPS_FILE (its keys under its own prefix); an unknown one is a
    usage error naming the apps there are."""
    apps = tmp_path / "apps.toml"
    apps.write_text(
        '[apps.shop]\nwechat_appid = "wx-shop"\nidaas_client_id = "shop"\n'
        'wechat_secret = { env = "SHOP_SECRET" }\n'
    )
    app_env = {**env, "BFF_APPS_FILE": str(apps), "SHOP_SECRET": "s" * 16}
    openid = "o_app_" + secrets.token_hex(6)
    redis.set(
        f"{key_prefix}.shop:pending:{openid}",
        '{"state_token": "t", "status": "SOCIAL_BIND"}',
        ex=60,
    )
    status, out, err = _admin(capsys, app_env, "--app", "shop", "session", "show", openid)
    assert status == 0 and json.loads(out)["pending_bind"]["exists"] is True, err
    assert _show(capsys, app_env, openid)["pending_bind"]["exists"] is False  # the default app's
    status, out, err = _admin(capsys, app_env, "--app", "blog", "session", "revoke", openid)
    assert status == 2 and "no app blog in this deployment (apps: default, shop)" in err
    status, out, err = _admin(capsys, app_env, "--app", "shop", "session", "revoke", openid)
    assert status == 0 and not redis.exists(f"{key_prefix}.shop:pending:{openid}")


def test_list_shows_the_devices_never_a_handle(auth, env, capsys):
    auth.signed_in()
    first = auth.handle
    auth.open_session()  # a second device
    status, out, err = _admin(capsys, env, "session", "list", auth.openid)
    assert status == 0, err
    listed = json.loads(out)
    assert [set(s) for s in listed["sessions"]] == [
        {"id", "issued_at", "last_used_at", "os", "agent", "ip"}
    ] * 2
    for handle in (first, auth.handle):
        assert handle not in out and hashlib.sha256(handle.encode()).hexdigest() not in out
    assert auth.openid not in out  # the openid_hash only


def test_revoke_by_subject_ends_every_openid_bound_to_that_idaas_user(
    auth, env, capsys, redis, key_prefix, client, wechat_sim, idaas_sim
):
    """One IDaaS account bound from two WeChat accounts: both signed out, handles revoked."""
    other = AuthActions(client, wechat_sim, idaas_sim)
    stranger = AuthActions(client, wechat_sim, idaas_sim)
    carol, bob = "carol-" + secrets.token_hex(4), "bob-" + secrets.token_hex(4)
    for name in (carol, bob):
        idaas_sim.add_user(name, "pw-" + name)
    headers = []
    for caller, name in ((auth, carol), (other, carol), (stranger, bob)):
        caller.pending_bind()
        assert caller.bind(user_name=name, password="pw-" + name).status_code == 200
        headers.append(caller.headers())
    index = f"{key_prefix}:subject:{hashlib.sha256(carol.encode()).hexdigest()[:32]}"
    assert sorted(redis.zrange(index, 0, -1)) == sorted([auth.openid, other.openid])
    assert 431990 < redis.ttl(index) <= 432000
    status, out, err = _admin(capsys, env, "session", "revoke", "--subject", carol)
    assert status == 0, err
    assert len(json.loads(out)["revoked"]) == 2 and auth.openid not in out
    for caller, sent in zip((auth, other), headers, strict=False):
        assert not redis.exists(f"{key_prefix}:session:{caller.openid}")
        resp = client.get("/api/v1/auth", headers=sent)
        assert resp.status_code == 401 and resp.headers["X-BFF-Error"] == "BFF.SESSION_REVOKED"
    assert redis.exists(f"{key_prefix}:session:{stranger.openid}")  # the other user's stays


def test_revoke_by_subject_of_nobody_ends_nothing(env, capsys):
    status, out, err = _admin(capsys, env, "session", "revoke", "--subject", "nobody")
    assert status == 0 and json.loads(out) == {"revoked": []}, err


def test_revoke_takes_an_openid_or_a_subject_not_both(env, capsys):
    assert _admin(capsys, env, "session", "revoke")[0] == 2
    assert _admin(capsys, env, "session", "revoke", "o_x", "--subject", "alice")[0] == 2
