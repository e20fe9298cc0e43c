"""Abuse limits: per openid and per IP, shared through Redis, fail open on Redis loss."""

from __future__ import annotations

import re
import secrets
import threading
import time

import pytest
import redis
import requests

from tests.support.app import (
    CLIENT_ID,
    DEVICE,
    GATEWAY_SECRET,
    PASSWORD,
    REDIS_URL,
    AuthActions,
    GatewayCaller,
)
from tests.support.gunicorn import Gunicorn
from tests.support.processes import RedisProcess
from tests.support.proxy import SlowProxy

pytestmark = pytest.mark.usefixtures("one_window")  # counts within one window


def _assert_limited(resp):
    assert resp.status_code == 429 and resp.json["error_code"] == "BFF.RATE_LIMITED"
    assert 1 <= int(resp.headers["Retry-After"]) <= 60


def test_bind_limit_per_openid(make_app, wechat_sim, idaas_sim):
    app = make_app(RATE_LIMIT_BIND="openid=2/minute ip=100/minute")
    auth = AuthActions(app.test_client(), wechat_sim, idaas_sim)
    auth.pending_bind()
    assert [auth.bind(password="wrong").status_code for _ in range(2)] == [400, 400]
    sent = len(idaas_sim.requests)
    _assert_limited(auth.bind())
    assert len(idaas_sim.requests) == sent  # the limited request never reached the IDaaS
    other = AuthActions(app.test_client(), wechat_sim, idaas_sim)  # another openid, same IP
    other.pending_bind()
    assert other.bind().status_code == 200


def test_bind_limit_per_ip(make_app, wechat_sim, idaas_sim):
    app = make_app(RATE_LIMIT_BIND="openid=100/minute ip=2/minute")
    users = [AuthActions(app.test_client(), wechat_sim, idaas_sim) for _ in range(3)]
    for user in users:
        user.pending_bind()
    assert users[0].bind(password="wrong").status_code == 400
    assert users[1].bind(password="wrong").status_code == 400
    _assert_limited(users[2].bind())
    # another client IP (one trusted proxy: the right-most X-Forwarded-For entry) is not limited
    resp = users[2].client.post(
        "/api/v1/bind/username-password",
        json={"user_name": "alice", "password": PASSWORD},
        headers={**users[2].headers(), "X-Forwarded-For": "203.0.113.7"},
    )
    assert resp.status_code == 200


def test_login_and_wechat_session_limits(make_app, wechat_sim, idaas_sim):
    app = make_app(RATE_LIMIT_LOGIN="ip=3/minute")
    client = app.test_client()
    codes = [
        client.post("/api/v1/wechat/session", json={"wx_code": wechat_sim.issue_code()}).status_code
        for _ in range(3)
    ]
    assert codes == [201, 201, 201]
    _assert_limited(client.post("/api/v1/wechat/session", json={"wx_code": "x"}))


@pytest.mark.window_margin(30)
def test_limit_holds_across_two_gunicorn_workers(tmp_path, idaas_server, wechat_server, key_prefix):
    idaas_server.reset_state()
    env = {
        "BFF_ENV": "production",
        "IDAAS_BASE_URL": idaas_server.base_url,
        "IDAAS_CLIENT_ID": CLIENT_ID,
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": key_prefix + "rl2",
        "IDENTITY_SOURCE": "gateway",
        "GATEWAY_SECRET": GATEWAY_SECRET,
        "RATE_LIMIT_LOGIN": "openid=10/minute ip=1000/minute",
    }
    server = Gunicorn(env, tmp_path / "server.log").start()
    try:
        headers = {"X-WX-OPENID": "o_rl_workers", "X-Gateway-Secret": GATEWAY_SECRET, **DEVICE}
        statuses = []
        for _ in range(16):  # new connections: gunicorn spreads them over both workers
            with requests.Session() as s:
                r = s.post(
                    server.base + "/api/v1/login",
                    json={"code": wechat_server.issue_code("o_rl_workers")},
                    headers={**headers, "Connection": "close"},
                    timeout=10,
                )
                statuses.append(r.status_code)
        assert statuses.count(200) == 10 and statuses.count(429) == 6
        text = requests.get(server.base + "/metrics", timeout=10).text
        served = re.findall(
            r'^bff_requests_total\{app="default",route="/api/v1/login",status="\d+"\} (\S+)$',
            text,
            re.M,
        )
        assert sum(float(v) for v in served) == 16
    finally:
        server.stop()


def test_the_login_limiter_alone_failing_lets_logins_through(
    make_app, limiter_denied_redis, wechat_sim, idaas_sim, capsys
):
    """Redis refuses the counters only (its ACL): the login limiter fails open, counted."""
    app = make_app(
        REDIS_URL=limiter_denied_redis.url, IDENTITY_SOURCE="gateway", RATE_LIMIT_LOGIN="1/minute"
    )
    client = app.test_client()
    headers = {"X-WX-OPENID": "o_failopen", "X-Gateway-Secret": GATEWAY_SECRET, **DEVICE}

    def fail_open_count() -> float:
        text = client.get("/metrics").get_data(as_text=True)
        found = re.search(r"^bff_rate_limiter_fail_open_total (\S+)$", text, re.M)
        return float(found.group(1)) if found else 0.0

    before = fail_open_count()
    for _ in range(2):  # over the 1/minute limit, yet not limited: the limiter cannot count
        body = {"code": wechat_sim.issue_code("o_failopen")}
        assert client.post("/api/v1/login", json=body, headers=headers).status_code == 200
    assert fail_open_count() == before + 2
    assert "letting the request through" in capsys.readouterr().out


def test_redis_down_fails_the_login_closed(make_app, own_redis, wechat_sim, idaas_sim):
    """The limiter shares its round trip with the lock, which fails closed: no login runs
    without its lock, counted or not."""
    app = make_app(REDIS_URL=own_redis.url, IDENTITY_SOURCE="gateway")
    headers = {"X-WX-OPENID": "o_down", "X-Gateway-Secret": GATEWAY_SECRET, **DEVICE}
    own_redis.stop()
    resp = app.test_client().post("/api/v1/login", json={"code": "c"}, headers=headers)
    assert resp.status_code == 503 and resp.json["error_code"] == "BFF.SESSION_STORE_UNAVAILABLE"


def test_session_routes_share_a_per_openid_limit(make_app, wechat_sim, idaas_sim):
    """Refresh, GET and DELETE /session are limited too: each costs Redis, refresh the IDaaS."""
    app = make_app(RATE_LIMIT_SESSION="3/minute")
    auth = AuthActions(app.test_client(), wechat_sim, idaas_sim)
    headers = auth.signed_in()
    assert auth.client.get("/api/v1/session", headers=headers).status_code == 200
    assert auth.client.post("/api/v1/session/refresh", headers=headers).status_code == 200
    assert auth.client.get("/api/v1/session", headers=headers).status_code == 200
    _assert_limited(auth.client.post("/api/v1/session/refresh", headers=headers))
    _assert_limited(auth.client.delete("/api/v1/session", headers=headers))
    other = AuthActions(app.test_client(), wechat_sim, idaas_sim)  # another openid, same IP
    assert other.client.get("/api/v1/session", headers=other.headers()).status_code == 200


@pytest.mark.window_margin(20)
def test_a_slow_redis_does_not_turn_the_bind_limit_off(make_app, wechat_sim, idaas_sim, redis):
    """A Redis slow enough to time a counter out yet fast enough to serve the store must not
    let password guesses through unlimited: the bind limiter shares the lock's round trip."""
    with SlowProxy(6379, delay_s=0.6) as slow:
        app = make_app(REDIS_URL=slow.url, RATE_LIMIT_BIND="openid=2/minute,ip=1000/minute")
        auth = AuthActions(app.test_client(), wechat_sim, idaas_sim)
        auth.pending_bind()
        statuses = [auth.bind(password="wrong").status_code for _ in range(4)]
    attempts = [r for r in idaas_sim.requests if r.path.endswith("/username-password-bind")]
    assert len(attempts) <= 2, statuses  # never more password guesses than the limit
    assert statuses[:2] == [400, 400] and set(statuses[2:]) <= {429, 503}


ACCOUNT_LIMIT = "openid=100/minute,ip=100/minute,account=2/minute"


def test_bind_is_limited_per_account_whoever_asks(make_app, wechat_sim, idaas_sim):
    """Limits per openid and per IP alone would let any WeChat user lock anyone's IDaaS account
    with a few wrong passwords: the account a bind names counts too."""
    app = make_app(RATE_LIMIT_BIND=ACCOUNT_LIMIT)
    name = "victim-" + secrets.token_hex(4)
    idaas_sim.add_user(name, PASSWORD)
    spellings = [name, name.upper(), f"  {name} "]  # one account, however it is typed
    attackers = [AuthActions(app.test_client(), wechat_sim, idaas_sim) for _ in spellings]
    statuses = []
    for attacker, spelling in zip(attackers, spellings, strict=True):
        attacker.pending_bind()
        statuses.append(attacker.bind(password="wrong", user_name=spelling).status_code)
    assert statuses[:2] == [400, 400]
    _assert_limited(attackers[2].bind(password="wrong", user_name=name))
    tries = [r for r in idaas_sim.requests if r.path.endswith("/username-password-bind")]
    assert len(tries) == 2  # the third guess never reached the IDaaS
    other = AuthActions(app.test_client(), wechat_sim, idaas_sim)
    other.pending_bind()
    assert other.bind().status_code == 200  # another account (alice) is not limited


def test_code_bind_is_limited_per_mobile_however_spelled(make_app, wechat_sim, idaas_sim):
    app = make_app(RATE_LIMIT_BIND=ACCOUNT_LIMIT)
    national = f"139{secrets.randbelow(10**8):08d}"
    spellings = [f"+86-{national}", f"+086-0{national}", f"+86-{national}"]
    statuses = []
    for spelling in spellings:
        user = AuthActions(app.test_client(), wechat_sim, idaas_sim)
        user.pending_bind()
        body = {"mobile": spelling, "verify_code": "000000"}
        resp = user.client.post("/api/v1/bind/verification-code", json=body, headers=user.headers())
        statuses.append(resp.status_code)
    assert statuses == [400, 400, 429]


def test_account_counters_hold_no_contact_data(make_app, wechat_sim, idaas_sim, redis, key_prefix):
    app = make_app(RATE_LIMIT_BIND=ACCOUNT_LIMIT)
    user = AuthActions(app.test_client(), wechat_sim, idaas_sim)
    user.pending_bind()
    user.bind(password="wrong", user_name="someone@example.com")
    keys = " ".join(redis.scan_iter(f"{key_prefix}:*", count=1000))
    assert "someone" not in keys and "example" not in keys


@pytest.mark.window_margin(20)
def test_a_command_that_timed_out_is_not_sent_again(make_app, wechat_sim, idaas_sim):
    """A Redis busy past the 1 s timeout still runs what it was sent: the retry is for a
    connection that failed, not for a slow answer, so the request's counters are counted once
    (resent, a login counted twice, and a request could meet its own lock as taken)."""
    busy = RedisProcess(None, "--enable-debug-command", "yes").start()
    try:
        app = make_app(REDIS_URL=busy.url, IDENTITY_SOURCE="gateway", GATEWAY_SECRET=GATEWAY_SECRET)
        caller = GatewayCaller(app.test_client(), wechat_sim, idaas_sim)
        assert app.test_client().get("/readyz").status_code == 200  # a pooled connection
        direct = redis.Redis(port=busy.port, decode_responses=True, socket_timeout=10)
        sleeper = threading.Thread(target=direct.execute_command, args=("DEBUG", "SLEEP", "1.6"))
        sleeper.start()
        time.sleep(0.1)
        resp = caller.login()  # its first round trip, the counters and the lock, waits at Redis
        sleeper.join()
        time.sleep(1)
        assert resp.status_code == 503, resp.json
        keys = list(direct.scan_iter(f"*:rl:login:openid:{caller.openid}:*"))
        assert keys and [int(direct.get(k)) for k in keys] == [1], keys
        direct.close()
    finally:
        busy.close()
