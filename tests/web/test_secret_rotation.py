"""During a rotation: the gateway's previous secret is accepted and shown (a counter, a field of
the request line); the log-hash key's previous hash rides beside ``openid_hash`` on every line."""

from __future__ import annotations

import json

from prometheus_client import REGISTRY

from bff.observability import hash_openid
from tests.support.app import DEVICE, PASSWORD

NEW, OLD = "new-gateway-secret-0123456789", "old-gateway-secret-0123456789"
PREVIOUS = "bff_gateway_secret_previous_total"


def _lines(capsys) -> list[dict]:
    return [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]


def _counted() -> float:
    return REGISTRY.get_sample_value(PREVIOUS) or 0.0


def _get(client, secret: str, openid: str = "o_rotation"):
    headers = {"X-WX-OPENID": openid, "X-Gateway-Secret": secret, **DEVICE}
    return client.get("/api/v1/session", headers=headers)


def test_the_previous_gateway_secret_is_accepted_counted_and_logged(make_app, capsys):
    client = make_app(
        IDENTITY_SOURCE="gateway", GATEWAY_SECRET=NEW, GATEWAY_SECRET_PREVIOUS=OLD
    ).test_client()
    capsys.readouterr()
    before = _counted()
    assert _get(client, NEW).status_code != 401
    assert _counted() == before  # the current secret is not counted
    assert _get(client, OLD).status_code != 401
    assert _counted() == before + 1
    for wrong in ("", NEW[:-1], OLD + "x", "x" * 29):
        assert _get(client, wrong).status_code == 401
    assert _counted() == before + 1
    requests = [x for x in _lines(capsys) if x["message"] == "request"]
    assert [x.get("gateway_secret_previous") for x in requests] == [None, True] + [None] * 4
    assert not [x for x in requests if NEW in json.dumps(x) or OLD in json.dumps(x)]
    metrics = client.get("/metrics").get_data(as_text=True)
    assert f"# TYPE {PREVIOUS} counter" in metrics


def test_without_a_previous_secret_the_old_one_is_refused(make_app):
    client = make_app(IDENTITY_SOURCE="gateway", GATEWAY_SECRET=NEW).test_client()
    before = _counted()
    assert _get(client, OLD).status_code == 401 and _get(client, "").status_code == 401
    assert _get(client, NEW).status_code != 401 and _counted() == before


def test_every_line_with_openid_hash_carries_the_previous_hash_during_a_rotation(
    make_app, wechat_sim, idaas_sim, capsys
):
    client = make_app(
        IDENTITY_SOURCE="gateway", LOG_HASH_KEY="new-log-key", LOG_HASH_KEY_PREVIOUS="old-log-key"
    ).test_client()
    openid = "o_log_rotation"
    headers = {
        "X-WX-OPENID": openid,
        "X-Gateway-Secret": "test-gateway-secret-0123456789",
        **DEVICE,
    }
    capsys.readouterr()
    code = wechat_sim.issue_code(openid)
    assert client.post("/api/v1/login", json={"code": code}, headers=headers).status_code == 200
    body = {"user_name": "alice", "password": PASSWORD}
    resp = client.post("/api/v1/bind/username-password", json=body, headers=headers)
    assert resp.status_code == 200
    lines = [x for x in _lines(capsys) if x.get("openid_hash")]
    assert {x["message"] for x in lines} >= {"request", "signin"}  # the audit record too
    assert {x["openid_hash"] for x in lines} == {hash_openid(b"new-log-key", openid)}
    assert {x.get("openid_hash_previous") for x in lines} == {hash_openid(b"old-log-key", openid)}


def test_no_previous_hash_without_a_previous_key(make_app, capsys):
    client = make_app(IDENTITY_SOURCE="gateway", LOG_HASH_KEY="new-log-key").test_client()
    capsys.readouterr()
    assert _get(client, "test-gateway-secret-0123456789").status_code != 401
    lines = [x for x in _lines(capsys) if x.get("openid_hash")]
    assert lines and not [x for x in lines if "openid_hash_previous" in x]
