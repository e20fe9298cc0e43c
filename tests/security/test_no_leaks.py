"""Secrets never leak: every endpoint, success and failure, then a scan of logs and responses.

What is looked for: passwords, session tokens, state tokens, captcha
tokens, verification and phone-number codes, WeChat session keys, handles, raw openids/unionids,
contact data (logs show it masked), id_tokens (in logs), and the configured secrets
(WECHAT_SECRET, GATEWAY_SECRET, LOG_HASH_KEY; IDAAS_CLIENT_ID in responses), also when they come
from files (NAME_FILE) with their previous values during a rotation, and the Redis password.
Zero hits.
"""

from __future__ import annotations

import re
import secrets

import requests

from tests.support.app import DEVICE, GATEWAY_SECRET, PASSWORD, REDIS_URL, AuthActions
from tests.support.figures import FIGURES
from tests.support.gunicorn import gunicorn_env, start_gunicorn
from tests.support.processes import RedisProcess, free_port
from tests.support.signin import code_sent_to, pending, send_code, solve_captcha

WRONG_PASSWORDS = ["Wr0ng-" + secrets.token_hex(6), "Almost-" + PASSWORD]
LOG_HASH_KEY = "log-hash-key-" + secrets.token_hex(8)
MOBILE = f"+86-137{secrets.randbelow(10**8):08d}"
EMAIL = f"leak{secrets.token_hex(4)}@example.com"


class Recorder:
    """Every answer the mini program got: status line, headers and body, as text."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.handles: set[str] = set()
        self.id_tokens: set[str] = set()

    def keep(self, resp) -> None:
        body = resp.get_data(as_text=True)
        headers = "\n".join(f"{k}: {v}" for k, v in resp.headers.items())
        data = resp.get_json(silent=True) or {}
        if isinstance(data, dict):
            self.handles.update([data["handle"]] if "handle" in data else [])
            self.id_tokens.update([data["id_token"]] if "id_token" in data else [])
            if "handle" in data:  # the one answer that carries it, on purpose
                body = body.replace(data["handle"], "<handle>")
            if "id_token" in data:
                body = body.replace(data["id_token"], "<id_token>")
        self.texts.append(f"{resp.status_code}\n{headers}\n{body}")


def _find(texts: list[str], needles: set[str]) -> list[str]:
    """Each needle found as a whole token (a 6-digit code inside a hex id is not a hit)."""
    found = []
    for needle in sorted(n for n in needles if n):
        pattern = re.compile(r"(?<![A-Za-z0-9_-])" + re.escape(needle) + r"(?![A-Za-z0-9_-])")
        found += [needle for text in texts if pattern.search(text)]
    return found


def _hits(texts: list[str], needles: set[str]) -> list[str]:
    found = _find(texts, needles)
    FIGURES["leak_scans"] += len(texts)
    FIGURES["leak_secrets"] += len(needles)
    FIGURES["leak_hits"] += len(found)
    return found


def test_the_scan_finds_what_it_looks_for():
    line = '{"message": "bind failed", "password": "s3cret-Passw0rd", "code": "123456"}'
    assert _find([line], {PASSWORD, "123456", "23456", "nope"}) == ["123456", PASSWORD]
    assert _find(["request_id a0123456b"], {"123456"}) == []


def _recording(client, recorder: Recorder):
    original = client.open

    def open_and_keep(*args, **kwargs):
        resp = original(*args, **kwargs)
        recorder.keep(resp)
        return resp

    client.open = open_and_keep
    return client


def _drive_core(auth: AuthActions) -> None:
    c = auth.client
    assert c.post("/api/v1/wechat/session", json={"wx_code": "never-issued"}).status_code == 400
    headers = auth.pending_bind()
    for wrong in WRONG_PASSWORDS:
        assert auth.bind(password=wrong).status_code == 400
    assert auth.bind().json["status"] == "SUCCESS"
    assert auth.login().json["status"] == "SUCCESS"
    assert c.post("/api/v1/session/refresh", headers=headers).status_code == 200
    auth.idaas.rotate_session_token = True
    assert c.post("/api/v1/session/refresh", headers=headers).status_code == 200
    assert c.get("/api/v1/session", headers=headers).json["active"] is True
    auth.idaas.invalidate_session()
    resp = c.post("/api/v1/session/refresh", headers=headers)
    assert resp.json["error_code"] == "BFF.SESSION_EXPIRED"
    for kind in ("garbage", "status500", "reset", "malformed"):
        auth.idaas.add_fault(kind)
        assert auth.login().status_code in (502, 503)
    auth.idaas.id_token_mode = "forged"
    assert auth.login().status_code == 502
    auth.idaas.id_token_mode = "ok"
    assert c.delete("/api/v1/session", headers=headers).status_code == 204
    assert c.get("/api/v1/session", headers=headers).status_code == 401
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/api/v1/nope"):
        c.get(path)


def _drive_signin(make: callable) -> None:
    """Slider, codes by SMS and e-mail, phone-number button, bind and register."""
    auth = make()
    pending(auth)
    bad = {"token": solve_captcha(auth)["token"], "point_json": '{"x": 1.0, "y": 5.0}'}
    assert send_code(auth, MOBILE, captcha=bad).status_code == 400
    assert send_code(auth, MOBILE).status_code == 204
    body = {"mobile": MOBILE, "verify_code": code_sent_to(auth, MOBILE)}
    resp = auth.client.post("/api/v1/bind/verification-code", json=body, headers=auth.headers())
    assert resp.status_code in (200, 400), resp.json  # no account with that mobile: IDaaS 4xx
    auth = make()
    pending(auth, "USER_REGISTER")
    assert send_code(auth, EMAIL, "register").status_code == 204
    body = {"email": EMAIL, "verify_code": code_sent_to(auth, EMAIL)}
    resp = auth.client.post("/api/v1/register/verification-code", json=body, headers=auth.headers())
    assert resp.json["status"] == "SUCCESS", resp.json
    for path, status in (
        ("/api/v1/bind/wechat-phone", "SOCIAL_BIND"),
        ("/api/v1/register/wechat-phone", "USER_REGISTER"),
    ):
        auth = make()
        pending(auth, status)
        body = {"phone_code": auth.idaas.issue_phone_code("+86-13800000000")}
        assert auth.client.post(path, json=body, headers=auth.headers()).status_code == 200
    auth = make()
    body = {"phone_code": auth.idaas.issue_phone_code("+86-13800000000")}
    resp = auth.client.post("/api/v1/login/phone", json=body, headers=auth.headers())
    assert resp.status_code == 200, resp.json
    auth.idaas.tenant_status = "SOCIAL_BIND"


def _secrets(idaas, wechat, recorder: Recorder, openids: list[str]) -> tuple[set, set]:
    """(in neither logs nor responses, in logs only)."""
    with idaas.lock:
        anywhere = {
            PASSWORD,
            *WRONG_PASSWORDS,
            "wx-sim-secret",
            GATEWAY_SECRET,
            LOG_HASH_KEY,
            *idaas.session_tokens,
            *idaas.state_tokens,
            *idaas.captcha_tokens,
            *idaas.phone_codes,
            *(sent.code for sent in idaas.inbox),
            *wechat.session_keys,
            *openids,
        }
        logs_only = {*recorder.handles, *idaas.id_tokens, *recorder.id_tokens, MOBILE, EMAIL}
    return anywhere, logs_only


def test_wechat_mode_every_endpoint_leaks_nothing(make_app, wechat_sim, idaas_sim, capfd):
    recorder = Recorder()
    client = _recording(make_app(LOG_HASH_KEY=LOG_HASH_KEY).test_client(), recorder)
    made: list[AuthActions] = []

    def make() -> AuthActions:
        made.append(AuthActions(client, wechat_sim, idaas_sim))
        return made[-1]

    _drive_core(make())
    _drive_signin(make)
    down = _recording(
        make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0").test_client(), recorder
    )
    resp = down.post("/api/v1/wechat/session", json={"wx_code": made[0].wx_code()})
    assert resp.status_code == 503  # code2Session answered (with a session_key); Redis did not
    down_headers = {"Authorization": f"Bearer {made[1].handle}", **DEVICE}
    assert down.post("/api/v1/login", json={"code": "c"}, headers=down_headers).status_code == 503

    out, err = capfd.readouterr()
    logs = [line for line in (out + err).splitlines() if line]
    assert any('"route":"/api/v1/register/verification-code"' in line for line in logs)
    openids = [a.openid for a in made] + [a.unionid for a in made if a.unionid]
    anywhere, logs_only = _secrets(idaas_sim, wechat_sim, recorder, openids)
    assert _hits(logs, anywhere | logs_only) == []
    assert _hits(recorder.texts, anywhere | {"test-client"}) == []


def test_gateway_mode_under_gunicorn_leaks_nothing(tmp_path, idaas_sim, wechat_sim, key_prefix):
    env = gunicorn_env(
        idaas_sim,
        wechat_sim,
        REDIS_URL,
        key_prefix + "lk",
        IDENTITY_SOURCE="gateway",
        GATEWAY_SECRET=GATEWAY_SECRET,
        LOG_HASH_KEY=LOG_HASH_KEY,
    )
    server = start_gunicorn(tmp_path, env)
    openid, near_miss = "o_gw_" + secrets.token_hex(6), GATEWAY_SECRET[:-1] + "X"
    texts: list[str] = []

    def call(method: str, path: str, secret: str | None = GATEWAY_SECRET, **kw) -> int:
        headers = {**DEVICE, "X-WX-OPENID": openid, "X-WX-UNIONID": "u_" + openid}
        if secret is not None:
            headers["X-Gateway-Secret"] = secret
        resp = requests.request(method, server.base + path, headers=headers, timeout=10, **kw)
        texts.append(f"{resp.status_code}\n{resp.headers}\n{resp.text}")
        return resp.status_code

    try:
        assert call("POST", "/api/v1/login", json={"code": wechat_sim.issue_code(openid)}) == 200
        assert call("POST", "/api/v1/bind/username-password", near_miss, json={}) == 401
        assert call("POST", "/api/v1/login", None, json={"code": "x"}) == 401
        body = {"user_name": "alice", "password": WRONG_PASSWORDS[0]}
        assert call("POST", "/api/v1/bind/username-password", json=body) == 400
        body["password"] = PASSWORD
        assert call("POST", "/api/v1/bind/username-password", json=body) == 200
        assert call("POST", "/api/v1/session/refresh") == 200
        assert call("DELETE", "/api/v1/session") == 204
        assert call("POST", "/api/v1/wechat/session", json={"wx_code": "c"}) == 404
    finally:
        server.stop()
    log = server.log_path.read_text().splitlines()
    assert any('"route":"/api/v1/session/refresh"' in line for line in log)
    anywhere, logs_only = _secrets(idaas_sim, wechat_sim, Recorder(), [openid, "u_" + openid])
    anywhere.add(near_miss)
    assert _hits(log, anywhere | logs_only) == []
    assert _hits(texts, anywhere | {"test-client"}) == []


def test_secrets_from_files_during_a_rotation_leak_nothing(tmp_path, idaas_sim, wechat_sim):
    """Every secret from a file, the previous gateway secret and log-hash key set, the Redis
    password in REDIS_URL_FILE; a reload with a bad file names the variable, not the value."""
    password = "redis-pw-" + secrets.token_hex(8)
    redis = RedisProcess(None, "--user", "bff", "on", f">{password}", "~*", "&*", "+@all")
    redis.start()
    values = {
        "REDIS_URL": f"redis://bff:{password}@127.0.0.1:{redis.port}/0",
        "WECHAT_SECRET": "wx-sim-secret",
        "GATEWAY_SECRET": GATEWAY_SECRET,
        "GATEWAY_SECRET_PREVIOUS": "previous-gateway-" + secrets.token_hex(8),
        "LOG_HASH_KEY": LOG_HASH_KEY,
        "LOG_HASH_KEY_PREVIOUS": "previous-log-key-" + secrets.token_hex(8),
    }
    files = {}
    for name, value in values.items():
        (tmp_path / name).write_text(value + "\n")
        files[f"{name}_FILE"] = str(tmp_path / name)
    env = gunicorn_env(
        idaas_sim, wechat_sim, "", "lkf", IDENTITY_SOURCE="gateway", GUNICORN_DRAIN_S="0", **files
    )
    del env["REDIS_URL"], env["WECHAT_SECRET"]
    server = start_gunicorn(tmp_path, env)
    openid, texts = "o_gwf_" + secrets.token_hex(6), []
    try:
        for secret in (GATEWAY_SECRET, values["GATEWAY_SECRET_PREVIOUS"], "x" * 20):
            headers = {**DEVICE, "X-WX-OPENID": openid, "X-Gateway-Secret": secret}
            body = {"code": wechat_sim.issue_code(openid)}
            resp = requests.post(
                server.base + "/api/v1/login", json=body, headers=headers, timeout=10
            )
            texts.append(f"{resp.status_code}\n{resp.headers}\n{resp.text}")
            assert resp.status_code == (401 if secret == "x" * 20 else 200), resp.text
        too_short = "short-" + secrets.token_hex(3)
        (tmp_path / "GATEWAY_SECRET").write_text(too_short)
        server.reload()
    finally:
        server.stop()
        redis.stop()
    log = server.log_path.read_text().splitlines()
    assert any('"gateway_secret_previous":true' in line for line in log)
    assert any('"openid_hash_previous"' in line for line in log)
    assert any("GATEWAY_SECRET: Shorter than minimum length 16" in line for line in log)
    anywhere, logs_only = _secrets(idaas_sim, wechat_sim, Recorder(), [openid])
    anywhere |= {*values.values(), password, too_short}
    assert _hits(log, anywhere | logs_only) == []
    assert _hits(texts, anywhere | {"test-client"}) == []
