"""Shared fixtures: a real Redis server, the simulators over real sockets, the app, AuthActions.

Every test run uses its own Redis key prefix and deletes its keys at the end.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis as redis_lib
from flask import Flask
from flask.testing import FlaskClient

from bff import create_app
from bff.settings import Settings, load_settings
from bff.simulators.idaas import IdaasSimulator
from bff.simulators.wechat import WeChatSimulator

REDIS_URL = "redis://127.0.0.1:6379/0"
CLIENT_ID = "test-client"
GATEWAY_SECRET = "test-gateway-secret-0123456789"
PASSWORD = "s3cret-Passw0rd"
DEVICE = {
    "X-operating-sys-version": "iOS 17.4",
    "X-device-fingerprint": "fp-test-device-0001",
    "X-agent": "miniprogram/1.0",
    "X-L": "zh",
}


@pytest.fixture(scope="session")
def key_prefix() -> str:
    return f"bfftest{secrets.token_hex(4)}"


@pytest.fixture(scope="session")
def redis_server(key_prefix: str) -> Iterator[redis_lib.Redis]:
    client = redis_lib.Redis.from_url(REDIS_URL, decode_responses=True, socket_timeout=5)
    client.ping()
    yield client
    for key in client.scan_iter(f"{key_prefix}*", count=1000):  # also the suffixed prefixes
        client.delete(key)


@pytest.fixture
def redis(redis_server: redis_lib.Redis, key_prefix: str) -> redis_lib.Redis:
    return redis_server


@pytest.fixture(scope="session")
def wechat_server() -> Iterator[WeChatSimulator]:
    with WeChatSimulator() as sim:
        yield sim


@pytest.fixture(scope="session")
def idaas_server(wechat_server: WeChatSimulator) -> Iterator[IdaasSimulator]:
    with IdaasSimulator(client_id=CLIENT_ID, wechat_base_url=wechat_server.base_url) as sim:
        yield sim


@pytest.fixture
def wechat_sim(wechat_server: WeChatSimulator) -> WeChatSimulator:
    wechat_server.reset_state()
    return wechat_server


@pytest.fixture
def idaas_sim(idaas_server: IdaasSimulator) -> IdaasSimulator:
    idaas_server.reset_state()
    idaas_server.add_user("alice", PASSWORD, mobile="+86-13800000000", email="alice@example.com")
    return idaas_server


@pytest.fixture
def env(
    key_prefix: str, idaas_server: IdaasSimulator, wechat_server: WeChatSimulator
) -> dict[str, str]:
    """The environment a test app loads; tests change entries before ``make_app``."""
    return {
        "BFF_ENV": "production",
        "IDAAS_BASE_URL": idaas_server.base_url,
        "IDAAS_CLIENT_ID": CLIENT_ID,
        "IDAAS_READ_TIMEOUT_S": "2",
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": key_prefix,
        "WECHAT_APPID": "wx-sim-appid",
        "WECHAT_SECRET": "wx-sim-secret",
        "WECHAT_API_BASE": wechat_server.base_url,
        "GATEWAY_SECRET": GATEWAY_SECRET,
        "RATE_LIMIT_BIND": "10000/minute",
        "RATE_LIMIT_LOGIN": "10000/minute",
        "RATE_LIMIT_CODES": "10000/minute",
        "LOG_LEVEL": "DEBUG",
    }


@pytest.fixture
def make_app(env: dict[str, str]) -> Iterator[Any]:
    built: list[Flask] = []

    def make(**overrides: str) -> Flask:
        settings: Settings = load_settings({**env, **overrides})
        app = create_app(settings)
        app.config["TESTING"] = True
        built.append(app)
        return app

    yield make
    for app in built:
        app.extensions["bff"].close()


@pytest.fixture
def app(make_app: Any, idaas_sim: IdaasSimulator, wechat_sim: WeChatSimulator) -> Flask:
    flask_app: Flask = make_app()
    return flask_app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class AuthActions:
    """What a mini program does: wx.login, get a handle, log in, bind."""

    def __init__(self, client: FlaskClient, wechat: WeChatSimulator, idaas: IdaasSimulator) -> None:
        self.client = client
        self.wechat = wechat
        self.idaas = idaas
        self.openid = "o_" + secrets.token_urlsafe(12)
        self.unionid: str | None = "u_" + secrets.token_urlsafe(12)
        self.handle: str | None = None

    def wx_code(self) -> str:
        return self.wechat.issue_code(self.openid, self.unionid)

    def open_session(self) -> str:
        resp = self.client.post("/api/v1/wechat/session", json={"wx_code": self.wx_code()})
        assert resp.status_code == 201, resp.json
        self.handle = resp.json["handle"]
        return self.handle

    def headers(self, **extra: str) -> dict[str, str]:
        if self.handle is None:
            self.open_session()
        return {"Authorization": f"Bearer {self.handle}", **DEVICE, **extra}

    def login(self) -> Any:
        return self.client.post(
            "/api/v1/login", json={"code": self.wx_code()}, headers=self.headers()
        )

    def pending_bind(self) -> dict[str, str]:
        """Headers of a caller whose first login answered SOCIAL_BIND (a bind is pending)."""
        resp = self.login()
        assert resp.status_code == 200 and resp.json["status"] == "SOCIAL_BIND", resp.json
        return self.headers()

    def bind(self, password: str = PASSWORD, user_name: str = "alice") -> Any:
        body = {"user_name": user_name, "password": password}
        return self.client.post("/api/v1/bind/username-password", json=body, headers=self.headers())

    def signed_in(self) -> dict[str, str]:
        """Headers of a caller with a cached session (first login, then a bind)."""
        self.pending_bind()
        resp = self.bind()
        assert resp.status_code == 200 and resp.json["status"] == "SUCCESS", resp.json
        return self.headers()


@pytest.fixture
def auth(
    client: FlaskClient, wechat_sim: WeChatSimulator, idaas_sim: IdaasSimulator
) -> AuthActions:
    return AuthActions(client, wechat_sim, idaas_sim)


def last_call(sim: Any, path: str) -> Any:
    """The last request the simulator received on ``path`` (what the upstream saw)."""
    calls = [r for r in sim.requests if r.path == path]
    assert calls, f"no call to {path}"
    return calls[-1]


def assert_signed_in(resp, auth, idaas_sim, redis, key_prefix, subject="alice"):
    """SUCCESS answered, trimmed; the session cached with its token, TTL; no pending bind."""
    assert resp.status_code == 200, resp.json
    assert set(resp.json) == {"status", "expire", "id_token"}
    assert resp.json["status"] == "SUCCESS" and resp.json["expire"] == 432000
    assert resp.json["id_token"] == idaas_sim.id_tokens[-1]
    key = f"{key_prefix}:session:{auth.openid}"
    cached = json.loads(redis.get(key))
    assert cached["session_token"] == idaas_sim.session_tokens[-1]
    assert cached["unionid"] == auth.unionid and cached["id_token_sub"] == subject
    assert abs(cached["expire_at"] - (time.time() + 432000)) < 5
    assert 431990 < redis.ttl(key) <= 432000
    assert not redis.exists(f"{key_prefix}:pending:{auth.openid}")
