"""The audit stream: one record per event of a walk-through, on the bff.audit log and on the
app's Redis Stream (AUDIT_STREAM_MAXLEN), with no secret in any field; bff-admin audit tail."""

from __future__ import annotations

import json
import secrets
import threading

import pytest

from bff.admin import main as admin
from tests.support.app import DEVICE, PASSWORD, AuthActions
from tests.support.idp_events import HEADERS, IDP_ENV, sealed


@pytest.fixture
def streamed(make_app, wechat_sim, idaas_sim, redis, key_prefix):
    app = make_app(AUDIT_STREAM_MAXLEN="1000", LOG_LEVEL="INFO")
    yield AuthActions(app.test_client(), wechat_sim, idaas_sim)
    redis.delete(f"{key_prefix}:audit")


def _stream(redis, key_prefix) -> list[dict[str, str]]:
    return [fields for _, fields in redis.xrange(f"{key_prefix}:audit")]


def test_a_walk_through_is_one_record_per_event_and_no_secret(
    streamed, idaas_sim, wechat_sim, redis, key_prefix
):
    auth = streamed
    auth.pending_bind()  # a handle, then a login answering SOCIAL_BIND
    assert auth.bind(password="wrong-Passw0rd").status_code == 400  # a failed bind attempt
    assert auth.bind().status_code == 200
    assert auth.client.post("/api/v1/session/refresh", headers=auth.headers()).status_code == 200
    assert auth.client.delete("/api/v1/session", headers=auth.headers()).status_code == 204
    records = _stream(redis, key_prefix)
    assert [
        (r["event"], r["result"].rsplit(".", 2)[-2:][0] if "." in r["result"] else r["result"])
        for r in records
    ] == [
        ("handle_issued", "OK"),
        ("signin", "SOCIAL_BIND"),
        ("signin_failed", "LOGIN"),  # IDAAS.SDK.LOGIN.1005, the IDaaS's code
        ("signin", "SUCCESS"),
        ("logout", "OK"),
    ]
    first = records[0]
    assert set(first) == {
        "v",
        "ts",
        "event",
        "result",
        "app",
        "openid_hash",
        "subject_hash",
        "request_id",
        "ip",
    }
    assert first["v"] == "1" and first["app"] == "default" and first["ip"] == "127.0.0.0/24"
    assert len({r["openid_hash"] for r in records}) == 1 and records[0]["openid_hash"]
    assert records[3]["subject_hash"] and records[3]["route"] == "username-password"
    assert len({r["request_id"] for r in records}) == 5  # each its request's
    text = json.dumps(records)
    secrets = [
        auth.handle,
        auth.openid,
        auth.unionid,
        PASSWORD,
        "wrong-Passw0rd",
        "alice",
        *idaas_sim.session_tokens,
        *idaas_sim.state_tokens,
        *idaas_sim.id_tokens,
        *wechat_sim.session_keys,
    ]
    assert [s for s in secrets if s and s in text] == []


def test_revocations_and_ended_devices_are_records(streamed, redis, key_prefix, env, idaas_sim):
    auth, name = streamed, "audited-" + secrets.token_hex(4)  # a user of this test alone
    idaas_sim.add_user(name, PASSWORD)
    auth.pending_bind()
    assert auth.bind(user_name=name).status_code == 200
    tablet = auth.headers()
    phone_handle = auth.open_session()  # a second device
    sessions = auth.client.get("/api/v1/sessions", headers=auth.headers()).json["sessions"]
    other = next(s["id"] for s in sessions if not s["current"])
    assert (
        auth.client.delete(f"/api/v1/sessions/{other}", headers=auth.headers()).status_code == 204
    )
    assert phone_handle and tablet
    assert (
        admin(["session", "revoke", "--subject", name], {**env, "AUDIT_STREAM_MAXLEN": "1000"}) == 0
    )
    events = [(r["event"], r["result"]) for r in _stream(redis, key_prefix)]
    ended = events.index(("session_ended", "OK"))
    assert events[ended + 1 :] == [("revoked", "operator")]


def test_bff_admin_audit_tail_prints_the_last_records(streamed, env, capsys):
    streamed.pending_bind()
    environ = {**env, "AUDIT_STREAM_MAXLEN": "1000"}
    capsys.readouterr()
    assert admin(["audit", "tail", "-n", "1"], environ) == 0
    (line,) = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    assert record["event"] == "signin" and record["result"] == "SOCIAL_BIND" and record["id"]
    assert admin(["audit", "tail"], {**env, "AUDIT_STREAM_MAXLEN": "0"}) == 2  # off: says so


def test_without_the_stream_the_records_are_log_lines_only(
    make_app, wechat_sim, idaas_sim, redis, key_prefix, capsys
):
    auth = AuthActions(make_app().test_client(), wechat_sim, idaas_sim)
    auth.pending_bind()
    assert not redis.exists(f"{key_prefix}:audit")
    lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if '"bff.audit"' in line
    ]
    assert [(line["event"], line["result"]) for line in lines] == [
        ("handle_issued", "OK"),
        ("signin", "SOCIAL_BIND"),
    ]
    assert not any(value in json.dumps(lines) for value in DEVICE.values())


def test_an_idp_event_names_each_openid_it_ends_and_itself_none(
    make_app, wechat_sim, idaas_sim, redis, key_prefix
):
    """Each revocation record names its own openid; the event's record names none (it is about
    an IDaaS user, not about the last openid it signed out)."""
    app = make_app(AUDIT_STREAM_MAXLEN="1000", **IDP_ENV)
    name = "evented-" + secrets.token_hex(4)
    idaas_sim.add_user(name, PASSWORD)
    callers = [AuthActions(app.test_client(), wechat_sim, idaas_sim) for _ in range(2)]
    for caller in callers:
        caller.pending_bind()
        assert caller.bind(user_name=name).status_code == 200
    signed = {r["openid_hash"] for r in _stream(redis, key_prefix) if r["result"] == "SUCCESS"}
    client = app.test_client()
    resp = client.post("/api/v1/idp/events", json=sealed("USER_DISABLE", name), headers=HEADERS)
    assert resp.status_code == 200 and resp.json["ended_sessions"] == 2
    records = _stream(redis, key_prefix)
    revoked = [r for r in records if r["event"] == "revoked"]
    assert {r["openid_hash"] for r in revoked} == signed and len(signed) == 2
    (event,) = [r for r in records if r["event"] == "idp_event"]
    assert event["openid_hash"] == "" and event["app"] == "none"
    assert all(r["app"] == "default" for r in revoked)
    redis.delete(f"{key_prefix}:audit")


def test_a_sign_in_whose_write_fails_is_no_success_in_the_log(
    make_app, own_redis, wechat_sim, idaas_sim, capsys
):
    """The session's write fails (Redis gone while the IDaaS answers): the answer is 503 and
    the audit log has no SUCCESS for it, only what did happen (no record claims a sign-in)."""
    auth = AuthActions(make_app(REDIS_URL=own_redis.url).test_client(), wechat_sim, idaas_sim)
    auth.pending_bind()
    idaas_sim.add_fault("latency", "/api/v2/sdk/social/username-password-bind", seconds=1.0)
    outage = threading.Timer(0.3, own_redis.stop)  # while the bind is at the IDaaS
    capsys.readouterr()
    outage.start()
    try:
        resp = auth.bind()
    finally:
        outage.join()
    assert resp.status_code == 503, resp.json
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    audit = [(x["event"], x["result"]) for x in lines if x.get("logger") == "bff.audit"]
    assert ("signin", "SUCCESS") not in audit, audit
    (request,) = [x for x in lines if x.get("logger") == "bff.request"]
    assert request["status"] == 503 and request["outcome"] == "BFF.SESSION_STORE_UNAVAILABLE"
