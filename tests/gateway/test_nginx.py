"""Through a real nginx (auth_request) running config/nginx/forward-auth.conf, in front of bff
under gunicorn (two workers) and an upstream that echoes what it received.

A signed-in user's call reaches the upstream with the identity bff answered and none the client
sent under those names; a bad handle never reaches it; after logout on another device the same
call is refused; 50 concurrent checks of one user whose id_token needs renewing make exactly one
IDaaS refresh across both workers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.app import DEVICE, PASSWORD, REDIS_URL
from tests.support.gunicorn import Gunicorn, gunicorn_env
from tests.support.nginx import EchoUpstream, Nginx, nginx_binary

REFRESH = "/api/v2/sdk/sso/session-token/id-token"
FORGED = {
    "X-BFF-Openid": "o_forged",
    "X-BFF-Unionid": "u_forged",
    "X-BFF-Subject": "root",
    "X-BFF-App": "admin",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory, idaas_server, wechat_server, key_prefix) -> Iterator[Nginx]:
    nginx_binary()  # skip, saying why, before anything starts
    idaas_server.reset_state()
    idaas_server.add_user("alice", PASSWORD)
    tmp = tmp_path_factory.mktemp("gateway")
    env = gunicorn_env(
        idaas_server,
        wechat_server,
        REDIS_URL,
        key_prefix + "gw",
        HOME=str(tmp / "home"),
        LOG_LEVEL="INFO",
        RATE_LIMIT_SESSION="100000/minute",
    )
    bff = Gunicorn(env, tmp / "server.log").start()
    upstream = EchoUpstream()
    nginx = Nginx(f"127.0.0.1:{bff.port}", f"127.0.0.1:{upstream.port}")
    nginx.upstream = upstream  # type: ignore[attr-defined]
    nginx.bff_port = bff.port  # type: ignore[attr-defined]
    try:
        nginx.start()
        yield nginx
    finally:
        nginx.stop()
        upstream.close()
        bff.stop()


def _signed_in(base: str, wechat, openid: str, unionid: str | None = None) -> str:
    """A mini program signing in through the gateway: its handle."""
    s = requests.Session()
    r = s.post(
        base + "/api/v1/wechat/session",
        json={"wx_code": wechat.issue_code(openid, unionid)},
        headers=DEVICE,
        timeout=10,
    )
    assert r.status_code == 201, r.text
    h = {"Authorization": f"Bearer {r.json()['handle']}", **DEVICE}
    code = wechat.issue_code(openid, unionid)
    r = s.post(base + "/api/v1/login", json={"code": code}, headers=h, timeout=10)
    assert r.json()["status"] in ("SOCIAL_BIND", "SUCCESS"), r.text
    if r.json()["status"] == "SOCIAL_BIND":
        body = {"user_name": "alice", "password": PASSWORD}
        r = s.post(base + "/api/v1/bind/username-password", json=body, headers=h, timeout=10)
        assert r.json().get("status") == "SUCCESS", r.text
    return h["Authorization"].removeprefix("Bearer ")


def _call(stack: Nginx, handle: str | None, **headers: str) -> requests.Response:
    sent = {**({"Authorization": f"Bearer {handle}"} if handle else {}), **headers}
    return requests.post(stack.base + "/company/orders?x=1", data=b"{}", headers=sent, timeout=10)


def test_a_signed_in_user_reaches_the_upstream_which_sees_who_it_is(stack, wechat_server):
    handle = _signed_in(stack.base, wechat_server, "o_gw_alice", "u_gw_alice")
    upstream = stack.upstream  # type: ignore[attr-defined]
    resp = _call(stack, handle, **FORGED)
    assert resp.status_code == 200, resp.text
    seen = upstream.received[-1]
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    assert seen["method"] == "POST" and seen["path"] == "/company/orders?x=1"
    assert headers["x-bff-openid"] == "o_gw_alice"
    assert headers["x-bff-unionid"] == "u_gw_alice"
    assert headers["x-bff-subject"] == "alice"
    assert headers["x-bff-app"] == "default"
    assert "authorization" not in headers  # the handle stays at the gateway


def test_a_header_bff_did_not_answer_is_not_passed_through_from_the_client(stack, wechat_server):
    handle = _signed_in(stack.base, wechat_server, "o_gw_nounion")  # WeChat gave no unionid
    resp = _call(stack, handle, **FORGED)
    assert resp.status_code == 200
    headers = {k.lower(): v for k, v in stack.upstream.received[-1]["headers"].items()}  # type: ignore[attr-defined]
    assert headers["x-bff-openid"] == "o_gw_nounion"
    assert "x-bff-unionid" not in headers  # blanked, not the client's u_forged


@pytest.mark.parametrize("handle", [None, "A" * 43, "not a handle"])
def test_a_bad_handle_never_reaches_the_upstream(stack, handle):
    upstream = stack.upstream  # type: ignore[attr-defined]
    before = len(upstream.received)
    resp = _call(stack, handle, **FORGED)
    assert resp.status_code == 401
    assert resp.headers["X-BFF-Error"] == "BFF.UNAUTHENTICATED"
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="bff"'
    assert resp.json()["error_code"] == "BFF.UNAUTHENTICATED"
    assert len(upstream.received) == before


def test_after_logout_on_another_device_the_call_is_refused(stack, wechat_server):
    phone = _signed_in(stack.base, wechat_server, "o_gw_bob")
    tablet = _signed_in(stack.base, wechat_server, "o_gw_bob")  # the same user, a second device
    assert _call(stack, phone).status_code == 200
    out = requests.delete(
        stack.base + "/api/v1/session", headers={"Authorization": f"Bearer {tablet}"}, timeout=10
    )
    assert out.status_code == 204
    upstream = stack.upstream  # type: ignore[attr-defined]
    before = len(upstream.received)
    resp = _call(stack, phone)
    assert resp.status_code == 401 and resp.headers["X-BFF-Error"] == "BFF.SESSION_REVOKED"
    assert len(upstream.received) == before


def test_fifty_concurrent_checks_across_two_workers_renew_once(stack, wechat_server, idaas_server):
    idaas_server.id_token_ttl_s = 30  # the sign-in's id_token: within a minute of its exp
    try:
        handle = _signed_in(stack.base, wechat_server, "o_gw_carol")
    finally:
        idaas_server.id_token_ttl_s = 300
    idaas_server.add_fault("latency", REFRESH, count=None, seconds=0.3)  # the others arrive
    before = sum(1 for r in idaas_server.requests if r.path == REFRESH)
    start = threading.Barrier(50)
    statuses: list[int] = []

    def call() -> None:
        start.wait()
        statuses.append(_call(stack, handle).status_code)

    threads = [threading.Thread(target=call) for _ in range(50)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        idaas_server.clear_faults()
    assert statuses == [200] * 50
    assert sum(1 for r in idaas_server.requests if r.path == REFRESH) == before + 1
    # and while the renewed token is fresh, checks call no one
    for _ in range(5):
        assert _call(stack, handle).status_code == 200
    assert sum(1 for r in idaas_server.requests if r.path == REFRESH) == before + 1


def test_nginx_keeps_its_connections_to_bff_across_checks(stack, wechat_server):
    """auth_request discards the check's body and cannot reuse an upstream connection that
    sent one: a 200 check has none, so one connection carries many checks (measured: with a
    23-byte body, nearly every second check opened a new connection)."""
    handle = _signed_in(stack.base, wechat_server, "o_keepalive")
    before = _connections_to(stack.bff_port)
    with requests.Session() as http:
        for _ in range(30):
            r = http.get(
                stack.base + "/company/orders", headers={"Authorization": f"Bearer {handle}"}
            )
            assert r.status_code == 200
    assert _connections_to(stack.bff_port) - before <= 2


def _connections_to(port: int) -> int:
    """Client-side sockets to 127.0.0.1:``port``, open or in TIME-WAIT (/proc/net/tcp)."""
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for line in lines if line.split()[2] == f"0100007F:{port:04X}")
