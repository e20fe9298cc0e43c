"""Redis down: session, pending and handle paths fail closed (503); /readyz says so."""

from __future__ import annotations

import threading

import pytest

from tests.support.app import AuthActions
from tests.support.processes import RedisProcess

BIND = "/api/v2/sdk/social/username-password-bind"


@pytest.fixture
def own_redis():
    proc = RedisProcess().start()
    yield proc
    proc.close()


@pytest.fixture
def down_app(make_app, own_redis, idaas_sim, wechat_sim):
    return make_app(REDIS_URL=own_redis.url)


def test_readyz_reports_redis(down_app, own_redis):
    client = down_app.test_client()
    resp = client.get("/readyz")
    assert resp.status_code == 200 and resp.json == {"status": "ok", "checks": {"redis": "ok"}}
    own_redis.stop()
    resp = client.get("/readyz")
    assert resp.status_code == 503
    assert resp.json["checks"] == {"redis": "unavailable"}
    assert resp.json["error_code"] == "BFF.NOT_READY"
    assert client.get("/healthz").status_code == 200  # liveness checks no dependency


def test_handle_lookup_fails_closed(down_app, own_redis, wechat_sim, idaas_sim):
    auth = AuthActions(down_app.test_client(), wechat_sim, idaas_sim)
    auth.open_session()
    own_redis.stop()
    resp = auth.login()
    assert resp.status_code == 503 and resp.json["error_code"] == "BFF.SESSION_STORE_UNAVAILABLE"
    assert not [r for r in idaas_sim.requests if r.path.startswith("/api/v2")]


def test_wechat_session_fails_closed(down_app, own_redis, wechat_sim):
    own_redis.stop()
    resp = down_app.test_client().post(
        "/api/v1/wechat/session", json={"wx_code": wechat_sim.issue_code("o_r")}
    )
    assert resp.status_code == 503 and resp.json["error_code"] == "BFF.SESSION_STORE_UNAVAILABLE"


def test_session_write_fails_closed_never_success(down_app, own_redis, wechat_sim, idaas_sim):
    """Redis dies while the IDaaS answers SUCCESS: the client gets 503, never a SUCCESS."""
    auth = AuthActions(down_app.test_client(), wechat_sim, idaas_sim)
    auth.pending_bind()
    idaas_sim.add_fault("latency", path=BIND, seconds=0.5)
    killer = threading.Timer(0.2, own_redis.stop)
    killer.start()
    resp = auth.bind()
    killer.join()
    assert resp.status_code == 503 and resp.json["error_code"] == "BFF.SESSION_STORE_UNAVAILABLE"
    assert "id_token" not in resp.json
    own_redis.start()  # a fresh, empty Redis: the session was never stored
    assert not own_redis_keys(own_redis)


def own_redis_keys(proc: RedisProcess) -> list[str]:
    import redis

    return list(redis.Redis(port=proc.port, decode_responses=True).scan_iter("*"))


def test_recovers_when_redis_returns(down_app, own_redis, wechat_sim, idaas_sim):
    client = down_app.test_client()
    own_redis.stop()
    assert client.get("/readyz").status_code == 503
    own_redis.start()
    assert client.get("/readyz").status_code == 200
    auth = AuthActions(client, wechat_sim, idaas_sim)
    assert auth.signed_in()


@pytest.mark.usefixtures("one_window")
def test_unix_socket_redis_url(make_app, wechat_sim, idaas_sim):
    """REDIS_URL=unix://...: sessions and the rate limiter both use the socket."""
    import os

    import redis as redis_lib

    proc = RedisProcess()
    sock = os.path.join(proc.dir, "redis.sock")
    proc.extra = ("--unixsocket", sock, "--unixsocketperm", "700")
    proc.start()
    try:
        app = make_app(REDIS_URL=f"unix://{sock}", RATE_LIMIT_BIND="openid=1/minute")
        client = app.test_client()
        assert client.get("/readyz").status_code == 200
        auth = AuthActions(client, wechat_sim, idaas_sim)
        auth.pending_bind()
        assert auth.bind(password="wrong").status_code == 400
        assert auth.bind().status_code == 429  # the limiter counted over the socket
        keys = list(redis_lib.Redis(unix_socket_path=sock, decode_responses=True).scan_iter("*"))
        assert any(":pending:" in k for k in keys) and any(":rl:" in k for k in keys)
    finally:
        proc.close()


def test_a_runtime_error_inside_redis_py_is_the_store_unavailable_one_of_ours_is_not():
    """redis-py < 6.2's cluster client can raise RuntimeError (a dict changed size during
    iteration: NodesManager.initialize) while a failover refreshes its topology, seen under
    make test-lowest's fault run: that is the store, answered 503; a RuntimeError of bff's own
    code inside the block stays a bug (500)."""
    import os

    import redis.cluster

    from bff.errors import SessionStoreUnavailable
    from bff.session_store.base import fail_closed

    # The same iteration, its code in redis-py's cluster module (where the real one raises).
    source = "def initialize(nodes):\n    for name in nodes.values():\n        nodes['b'] = 2\n"
    scope: dict[str, object] = {}
    exec(compile(source, os.path.abspath(redis.cluster.__file__), "exec"), scope)  # noqa: S102
    with pytest.raises(SessionStoreUnavailable), fail_closed("lock"):
        scope["initialize"]({"a": 1})  # type: ignore[operator]
    with pytest.raises(RuntimeError), fail_closed("lock"):
        raise RuntimeError("ours")
