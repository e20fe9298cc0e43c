"""Fixtures only: a real Redis server, the simulators over real sockets, the app, ``auth``.

Helpers and constants live in ``tests/support/``.

Every test run uses its own Redis key prefix and deletes its keys at the end.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import redis as redis_lib
from flask import Flask
from flask.testing import FlaskClient

from bff import create_app
from bff.settings import Settings, load_settings
from bff_simulators.idaas import IdaasSimulator
from bff_simulators.wechat import WeChatSimulator
from tests.support.app import CLIENT_ID, GATEWAY_SECRET, PASSWORD, REDIS_URL, AuthActions
from tests.support.limits import clear_of_a_window_end
from tests.support.processes import RedisProcess


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
        "RATE_LIMIT_SESSION": "10000/minute",
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


@pytest.fixture
def auth(
    client: FlaskClient, wechat_sim: WeChatSimulator, idaas_sim: IdaasSimulator
) -> AuthActions:
    return AuthActions(client, wechat_sim, idaas_sim)


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    """A redis-server of the test's own, to stop or restart at will."""
    proc = RedisProcess().start()
    yield proc
    proc.close()


@pytest.fixture
def limiter_denied_redis(key_prefix: str) -> Iterator[RedisProcess]:
    """A Redis whose ACL lets the session store work but denies the rate-limit counters."""
    kinds = ("session", "pending", "handle", "handles", "lock", "revoked", "subject")
    keys = [f"~{key_prefix}:{kind}:*" for kind in kinds]
    proc = RedisProcess(None, "--user", "default", "on", "nopass", *keys, "+@all").start()
    yield proc
    proc.close()


@pytest.fixture
def one_window(request: pytest.FixtureRequest) -> None:
    """The test runs inside one rate-limit window: it starts at least ``window_margin`` seconds
    (a marker's argument; 8 by default) before the next minute boundary."""
    marker = request.node.get_closest_marker("window_margin")
    clear_of_a_window_end(marker.args[0] if marker else 8)
