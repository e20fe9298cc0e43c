"""REDIS_CLUSTER=true: the same key contract on a real local 3-master cluster."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets

import pytest
import redis

from bff.admin import main as admin
from bff.session_store.base import decode_handle
from tests.support.app import PASSWORD, AuthActions
from tests.support.processes import RedisClusterProcesses


@pytest.fixture(scope="module")
def cluster():
    nodes = RedisClusterProcesses().start()
    yield nodes
    nodes.close()


@pytest.mark.usefixtures("one_window")
def test_full_flow_on_a_cluster(cluster, make_app, wechat_sim, idaas_sim, key_prefix):
    app = make_app(REDIS_URL=cluster.url, REDIS_CLUSTER="true", RATE_LIMIT_BIND="openid=3/minute")
    client = app.test_client()
    assert client.get("/readyz").json["checks"] == {"redis": "ok"}
    auth = AuthActions(client, wechat_sim, idaas_sim)
    auth.signed_in()
    reader = redis.RedisCluster.from_url(cluster.url, decode_responses=True)
    session_key = f"{key_prefix}:session:{auth.openid}"
    cached = json.loads(reader.get(session_key))
    assert cached["session_token"] == idaas_sim.session_tokens[-1]
    assert reader.ttl(session_key) > 431990
    assert not reader.exists(f"{key_prefix}:pending:{auth.openid}")
    assert client.post("/api/v1/session/refresh", headers=auth.headers()).status_code == 200
    # the rate limiter counts in the cluster too
    other = AuthActions(client, wechat_sim, idaas_sim)
    other.pending_bind()
    codes = [other.bind(password="wrong").status_code for _ in range(4)]
    assert codes == [400, 400, 400, 429]
    assert client.delete("/api/v1/session", headers=auth.headers()).status_code == 204
    assert not reader.exists(session_key)
    reader.close()


def test_cluster_down_fails_closed_and_starts_anyway(cluster, make_app, wechat_sim, idaas_sim):
    app = make_app(REDIS_URL="redis://127.0.0.1:1", REDIS_CLUSTER="true")  # nothing listens
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    resp = client.get("/readyz")
    assert resp.status_code == 503 and resp.json["checks"] == {"redis": "unavailable"}
    auth = AuthActions(client, wechat_sim, idaas_sim)
    resp = client.post("/api/v1/wechat/session", json={"wx_code": auth.wx_code()})
    assert resp.status_code == 503 and resp.json["error_code"] == "BFF.SESSION_STORE_UNAVAILABLE"


def test_revocation_by_subject_on_a_cluster(
    cluster, make_app, env, wechat_sim, idaas_sim, key_prefix
):
    """The subject's index is in another slot than an openid's keys: revoking the subject ends
    the openid signed in as it and drops the one bound to another account since."""
    on_cluster = {"REDIS_URL": cluster.url, "REDIS_CLUSTER": "true"}
    client = make_app(**on_cluster).test_client()
    name, other = "carol-" + secrets.token_hex(4), "dave-" + secrets.token_hex(4)
    for user in (name, other):
        idaas_sim.add_user(user, PASSWORD)
    kept, rebound = (
        AuthActions(client, wechat_sim, idaas_sim),
        AuthActions(client, wechat_sim, idaas_sim),
    )
    for caller in (kept, rebound):
        caller.pending_bind()
        assert caller.bind(user_name=name).status_code == 200
    assert client.delete("/api/v1/wechat-binding", headers=rebound.headers()).status_code == 204
    rebound.handle = None
    rebound.pending_bind()
    assert rebound.bind(user_name=other).status_code == 200
    reader = redis.RedisCluster.from_url(cluster.url, decode_responses=True)
    index = f"{key_prefix}:subject:{hashlib.sha256(name.encode()).hexdigest()[:32]}"
    assert sorted(reader.zrange(index, 0, -1)) == sorted([kept.openid, rebound.openid])
    assert admin(["session", "revoke", "--subject", name], {**env, **on_cluster}) == 0
    assert not reader.exists(f"{key_prefix}:session:{kept.openid}")
    assert reader.exists(f"{key_prefix}:session:{rebound.openid}")
    assert not reader.exists(index)
    reader.close()


def test_a_handle_ended_while_a_check_reads_it_stays_ended(
    cluster, make_app, wechat_sim, idaas_sim, key_prefix
):
    """On a cluster a check reads the handle, then writes its last_used back (two commands, no
    script): a handle ended between the two must not come back (without an expiry)."""
    app = make_app(REDIS_URL=cluster.url, REDIS_CLUSTER="true")
    client = app.test_client()
    auth = AuthActions(client, wechat_sim, idaas_sim)
    headers = auth.signed_in()
    reader = redis.RedisCluster.from_url(cluster.url, decode_responses=True)
    digest = hashlib.sha256(auth.handle.encode()).hexdigest()
    key = f"{key_prefix}:handle:{digest}"
    stale = decode_handle(reader.get(key))
    stale = dataclasses.replace(stale, last_used=stale.last_used - 3600)  # a write-back is due
    (listed,) = client.get("/api/v1/sessions", headers=headers).json["sessions"]
    assert client.delete(f"/api/v1/sessions/{listed['id']}", headers=headers).status_code == 204
    handles = app.extensions["bff"].default.store.handles
    assert handles.touch_apart(handles._client(), digest, stale) is None  # the write-back, late
    assert not reader.exists(key)
    resp = client.get("/api/v1/auth", headers=headers)
    assert resp.status_code == 401 and resp.headers["X-BFF-Error"] == "BFF.SESSION_REVOKED"
    reader.close()
