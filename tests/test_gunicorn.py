"""The production entry point: gunicorn, 2 workers, the happy path over real sockets.

Also scans everything the server logged for every secret the run used: zero hits.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bff import create_app
from bff.errors import SettingsError
from tests.support.app import CLIENT_ID, DEVICE, GATEWAY_SECRET, PASSWORD, REDIS_URL
from tests.support.gunicorn import Gunicorn, load_config

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory, idaas_server, wechat_server, key_prefix) -> Iterator[Gunicorn]:
    tmp = tmp_path_factory.mktemp("gunicorn")
    env = {
        "BFF_ENV": "production",
        "IDAAS_BASE_URL": idaas_server.base_url,
        "IDAAS_CLIENT_ID": CLIENT_ID,
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": key_prefix + "gu",
        "WECHAT_APPID": "wx-sim-appid",
        "WECHAT_SECRET": "wx-sim-secret",
        "WECHAT_API_BASE": wechat_server.base_url,
        "LOG_LEVEL": "DEBUG",
        "RATE_LIMIT_LOGIN": "1000/minute",
        "RATE_LIMIT_BIND": "1000/minute",
        "HOME": str(tmp / "home"),  # where gunicorn 25.1+ would put its control socket
    }
    server = Gunicorn(env, tmp / "server.log").start()
    yield server
    server.stop()


def _happy_path(base: str, wechat, openid: str) -> dict[str, object]:
    """The whole flow as the mini program drives it; returns what a secrets scan must look for."""
    s = requests.Session()
    r = s.post(
        base + "/api/v1/wechat/session", json={"wx_code": wechat.issue_code(openid)}, timeout=10
    )
    assert r.status_code == 201, r.text
    handle = r.json()["handle"]
    h = {"Authorization": f"Bearer {handle}", **DEVICE}
    r = s.post(
        base + "/api/v1/login", json={"code": wechat.issue_code(openid)}, headers=h, timeout=10
    )
    assert r.json()["status"] == "SOCIAL_BIND", r.text
    r = s.post(
        base + "/api/v1/bind/username-password",
        json={"user_name": "alice", "password": "nope-wrong"},
        headers=h,
        timeout=10,
    )
    assert r.status_code == 400
    r = s.post(
        base + "/api/v1/bind/username-password",
        json={"user_name": "alice", "password": PASSWORD},
        headers=h,
        timeout=10,
    )
    assert r.json()["status"] == "SUCCESS", r.text
    id_token = r.json()["id_token"]
    r = s.post(base + "/api/v1/session/refresh", headers=h, timeout=10)
    assert r.status_code == 200, r.text
    assert s.get(base + "/api/v1/session", headers=h, timeout=10).json()["active"] is True
    assert s.delete(base + "/api/v1/session", headers=h, timeout=10).status_code == 204
    return {"handle": handle, "id_token": id_token}


def test_happy_path_under_gunicorn_two_workers(gunicorn, wechat_server, idaas_server, redis):
    idaas_server.reset_state()
    idaas_server.add_user("alice", PASSWORD)
    assert len(gunicorn.worker_pids()) == 2
    seen = [_happy_path(gunicorn.base, wechat_server, f"o_gu_{i}") for i in range(6)]
    # Metrics aggregate over both workers: every request of the runs above is counted.
    text = requests.get(gunicorn.base + "/metrics", timeout=10).text
    counted = sum(
        float(m.group(1))
        for m in re.finditer(
            r'^bff_requests_total\{app="default",route="/api/v1/login",status="200"\} (\S+)$',
            text,
            re.M,
        )
    )
    assert counted == 6
    assert re.search(
        r'^bff_login_outcomes_total\{app="default",status="SUCCESS"\} 6\.0$', text, re.M
    )
    assert "bff_upstream_requests_total" in text and "bff_request_duration_seconds_bucket" in text

    # No secret in any log line the server wrote.
    log = gunicorn.log_path.read_text()
    assert '"route":"/api/v1/bind/username-password"' in log
    records = [json.loads(line) for line in log.splitlines() if line]  # every line is JSON
    assert any(r.get("logger") == "gunicorn.error" for r in records)
    secrets = [
        PASSWORD,
        "nope-wrong",
        "wx-sim-secret",
        *idaas_server.session_tokens,
        *idaas_server.state_tokens,
        *wechat_server.session_keys,
        *[s["handle"] for s in seen],
        *[s["id_token"] for s in seen],
    ]
    secrets += [f"o_gu_{i}" for i in range(6)]  # raw openids: only their keyed hash may appear
    leaked = [s for s in secrets if s and s in log]
    assert leaked == []


def test_sigterm_to_a_worker_is_replaced(gunicorn):
    before = gunicorn.worker_pids()
    os.kill(before[0], signal.SIGTERM)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        after = gunicorn.worker_pids()
        if len(after) == 2 and before[0] not in after:
            break
        time.sleep(0.1)
    assert len(after) == 2 and before[0] not in after
    assert requests.get(gunicorn.base + "/readyz", timeout=5).status_code == 200


def test_forwarder_headers_cannot_rewrite_the_path(gunicorn):
    """gunicorn trusts no SCRIPT_NAME/PATH_INFO header: /metrics is not reachable under /api/v1."""
    resp = requests.get(
        gunicorn.base + "/api/v1/zz/metrics", headers={"SCRIPT_NAME": "/api/v1/zz"}, timeout=5
    )
    assert resp.status_code == 404 and resp.json()["error_code"] == "BFF.NOT_FOUND"


def test_the_production_entry_point_refuses_development_mode():
    """Development defaults include a public gateway secret and plain-http upstreams: the
    production entry point must never run with them."""
    env = {"BFF_ENV": "development", "IDENTITY_SOURCE": "gateway"}
    proc = load_config(env)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "BFF_ENV=development" in lines[0], proc.stderr


def test_development_defaults_exist_only_for_the_dev_server(monkeypatch):
    """create_app() (what gunicorn runs) gets no secret from BFF_ENV=development."""
    for name in list(os.environ):
        if name.startswith(("IDAAS_", "WECHAT_", "GATEWAY_", "REDIS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("BFF_ENV", "development")
    with pytest.raises(SettingsError, match="IDAAS_BASE_URL|IDAAS_CLIENT_ID|REDIS_URL"):
        create_app()


def test_no_control_socket(gunicorn):
    """gunicorn 25.1+ opens a control socket by default; bff has no use for one, so nobody
    local can resize or stop it through it."""
    home = Path(gunicorn.env["HOME"])
    assert requests.get(gunicorn.base + "/healthz", timeout=5).status_code == 200
    assert not (home / ".gunicorn" / "gunicorn.ctl").exists()
    assert not list(home.glob("**/*.ctl"))


def test_bad_gunicorn_variables_are_named_with_bffs_in_one_line():
    """An operator sees every bad variable, gunicorn's and bff's, in one line: no traceback, no
    restart per problem."""
    env = {
        "IDAAS_BASE_URL": "https://x.example.com",
        "GUNICORN_WORKERS": "two",
        "GUNICORN_BIND": "not a bind",
        "GUNICORN_WORKER_CLASS": "eventlet",
    }
    proc = load_config(env)
    assert proc.returncode == 1
    [line] = proc.stderr.strip().splitlines()
    named = [
        part.split(":")[0] for part in line.removeprefix("bff: configuration error: ").split("; ")
    ]
    assert {"GUNICORN_WORKERS", "GUNICORN_BIND", "GUNICORN_WORKER_CLASS", "IDAAS_CLIENT_ID"} <= set(
        named
    )


@pytest.mark.parametrize("worker_class", ["gevent", "gthread"])
def test_sigterm_drains_then_finishes_what_is_in_flight(
    tmp_path, idaas_server, wechat_server, key_prefix, worker_class
):
    """After SIGTERM /readyz answers 503 (the load balancer stops sending) while a request in
    flight still gets its answer; then the server exits by itself."""
    idaas_server.reset_state()
    env = {
        "BFF_ENV": "production",
        "IDAAS_BASE_URL": idaas_server.base_url,
        "IDAAS_CLIENT_ID": CLIENT_ID,
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": key_prefix + "drain",
        "IDENTITY_SOURCE": "gateway",
        "GATEWAY_SECRET": GATEWAY_SECRET,
        "GUNICORN_WORKERS": "1",
        "GUNICORN_WORKER_CLASS": worker_class,
        "GUNICORN_DRAIN_S": "3",
        "GUNICORN_GRACEFUL_TIMEOUT": "20",
    }
    server = Gunicorn(env, tmp_path / "server.log").start()
    try:
        idaas_server.add_fault("latency", path="/api/v2/sdk/login/wechat-miniprogram", seconds=2)
        headers = {"X-WX-OPENID": "o_drain", "X-Gateway-Secret": GATEWAY_SECRET, **DEVICE}
        body = {"code": wechat_server.issue_code("o_drain")}
        answer = {}
        slow = threading.Thread(
            target=lambda: answer.update(
                r=requests.post(
                    server.base + "/api/v1/login", json=body, headers=headers, timeout=30
                )
            )
        )
        slow.start()
        time.sleep(0.5)  # the login is at the IDaaS
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        ready = requests.get(server.base + "/readyz", timeout=5)
        assert ready.status_code == 503 and ready.json()["checks"]["shutdown"] == "draining"
        slow.join(timeout=30)
        assert answer["r"].status_code == 200 and answer["r"].json()["status"] == "SOCIAL_BIND"
        assert server.proc.wait(timeout=30) == 0
    finally:
        server.stop()


# A test config: bff's, with a slow boot. The pause sits where a worker has been forked but has
# not installed its own signal handlers yet (gunicorn's post_fork runs there).
SLOW_BOOT_CONFIG = """
import runpy
import time

_ours = runpy.run_path({path!r})
globals().update({{k: v for k, v in _ours.items() if not k.startswith("__")}})


def post_fork(server, worker):
    if "post_fork" in _ours:
        _ours["post_fork"](server, worker)
    time.sleep(1.5)
"""


def test_sigterm_while_a_worker_boots_stops_it_too(tmp_path, idaas_server, key_prefix):
    """The master's SIGTERM can reach a worker it has just forked, before the worker has its
    own handlers: gunicorn's master handler, inherited, queued the signal in the child's copy of
    the master and the worker served on until the master SIGKILLed it after the whole graceful
    timeout (30 s by default: longer than a Kubernetes pod's default grace period)."""
    config = tmp_path / "slow_boot.conf.py"
    config.write_text(SLOW_BOOT_CONFIG.format(path=str(Path("config/gunicorn.conf.py").resolve())))
    env = {
        "BFF_ENV": "production",
        "IDAAS_BASE_URL": idaas_server.base_url,
        "IDAAS_CLIENT_ID": CLIENT_ID,
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": key_prefix + "boot",
        "IDENTITY_SOURCE": "gateway",
        "GATEWAY_SECRET": GATEWAY_SECRET,
        "GUNICORN_WORKERS": "1",
        "GUNICORN_DRAIN_S": "1",
        "GUNICORN_GRACEFUL_TIMEOUT": "25",
    }
    server = Gunicorn(env, tmp_path / "server.log", config=str(config)).start()
    try:
        assert server.proc is not None
        [first] = server.worker_pids()
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            booting = [pid for pid in server.worker_pids() if pid != first]
            if booting:
                break
            time.sleep(0.02)
        assert booting, "the master forked no new worker"
        server.proc.send_signal(signal.SIGTERM)  # the new worker is still in post_fork
        try:
            code = server.proc.wait(timeout=20)  # well inside GUNICORN_GRACEFUL_TIMEOUT
        except subprocess.TimeoutExpired:
            pytest.fail("the booting worker ignored SIGTERM until the graceful timeout")
        assert code == 0
        log = server.log_path.read_text()
        assert f"Worker exiting (pid: {booting[0]})" in log
    finally:
        server.stop()
