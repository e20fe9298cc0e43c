"""REDIS_CLUSTER=true: the same key contract on a real local 3-master cluster."""

from __future__ import annotations

import hashlib
import json
import secrets

import pytest
import redis

from bff.admin import main as admin
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
