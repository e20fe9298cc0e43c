"""POST /api/v1/idp/events: the IdP's WebHook. A signed, fresh, first-seen event that disables a
user ends every session of theirs before the answer; anything else changes nothing."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time

import pytest

from tests.support.app import AuthActions
from tests.support.idp_events import (
    ENCRYPTION_KEY,
    HEADERS,
    IDP_ENV,
    OFF,
    SIGNATURE_KEY,
    TOKEN,
    encrypt,
    sealed,
    sign,
)

PATH = "/api/v1/idp/events"


def post(client, body, headers=HEADERS, **kwargs):
    """What the tenant sends: the body, the security token as a bearer token."""
    return client.post(PATH, json=body, headers=headers, **kwargs)


@pytest.fixture
def env(env):
    return {**env, **IDP_ENV}


@pytest.fixture
def user(idaas_sim):
    """An IDaaS user of this test alone (the subject index outlives a test's sessions)."""
    name = "alice-" + secrets.token_hex(4)
    idaas_sim.add_user(name, "pw-" + name)
    return name


def sign_in(caller, name):
    caller.pending_bind()
    resp = caller.bind(user_name=name, password="pw-" + name)
    assert resp.status_code == 200 and resp.json["status"] == "SUCCESS", resp.json


@pytest.fixture
def alice(auth, user):
    """``auth``: signed in as ``user``."""
    sign_in(auth, user)
    return auth


@pytest.fixture
def alice_twice(alice, user, client, wechat_sim, idaas_sim):
    """``user`` signed in from two WeChat accounts (two openids)."""
    other = AuthActions(client, wechat_sim, idaas_sim)
    sign_in(other, user)
    return alice, other


def _handle_keys(caller, key_prefix):
    return f"{key_prefix}:handle:{hashlib.sha256(caller.handle.encode()).hexdigest()}"


def _signed_in(caller, redis, key_prefix) -> bool:
    resp = caller.client.get("/api/v1/session", headers=caller.headers())
    kept = redis.exists(f"{key_prefix}:session:{caller.openid}")
    assert (resp.status_code == 200) == bool(kept), resp.json
    return bool(kept)


def test_a_signed_user_disable_ends_every_session_of_that_user(
    client, alice_twice, redis, key_prefix, user
):
    resp = post(client, sealed("USER_DISABLE", user))
    assert resp.status_code == 200, resp.json
    assert resp.json == {"received": True, "event_type": "USER_DISABLE", "ended_sessions": 2}
    for caller in alice_twice:
        assert not redis.exists(f"{key_prefix}:session:{caller.openid}")
        assert not redis.exists(_handle_keys(caller, key_prefix))
        refused = client.get("/api/v1/session", headers=caller.headers())
        assert refused.status_code == 401
        assert refused.json["error_code"] == "BFF.SESSION_REVOKED"


@pytest.mark.parametrize("event_type", ["USER_DELETE", "USER_UPDATE_PWD", "USER_SOCIAL_UNBIND"])
def test_the_other_ending_events_end_sessions_too(
    client, auth, event_type, redis, key_prefix, user
):
    sign_in(auth, user)
    resp = post(client, sealed(event_type, user))
    assert resp.status_code == 200 and resp.json["ended_sessions"] == 1
    assert not _signed_in(auth, redis, key_prefix)


def _index(key_prefix, name):
    return f"{key_prefix}:subject:{hashlib.sha256(name.encode()).hexdigest()[:32]}"


def test_an_openid_bound_to_another_account_since_keeps_its_session(
    client, alice, redis, key_prefix, idaas_sim, user
):
    """The subject index lists an openid until that session would have expired; unbound and
    bound to another IDaaS account since, the openid is that account's: the event for the first
    ends nothing of it, counts nobody, and drops the stale entry."""
    assert client.delete("/api/v1/wechat-binding", headers=alice.headers()).status_code == 204
    alice.handle = None  # every handle ended: a new wx.login
    other = "bob-" + secrets.token_hex(4)
    idaas_sim.add_user(other, "pw-" + other)
    sign_in(alice, other)
    assert redis.zrange(_index(key_prefix, user), 0, -1) == [alice.openid]
    resp = post(client, sealed("USER_DISABLE", user))
    assert resp.status_code == 200 and resp.json["ended_sessions"] == 0, resp.json
    assert _signed_in(alice, redis, key_prefix)
    assert not redis.exists(_index(key_prefix, user))
    assert redis.zrange(_index(key_prefix, other), 0, -1) == [alice.openid]


def test_an_openid_logged_out_since_is_not_counted(client, alice, redis, key_prefix, user):
    assert client.delete("/api/v1/session", headers=alice.headers()).status_code == 204
    resp = post(client, sealed("USER_DISABLE", user))
    assert resp.status_code == 200 and resp.json["ended_sessions"] == 0, resp.json
    assert not redis.exists(_index(key_prefix, user))


def test_a_forged_signature_is_401_changes_nothing_and_logs_no_key(
    client, alice_twice, redis, key_prefix, caplog, user
):
    body = sealed("USER_DISABLE", user)
    forged = {
        **body,
        "sign": sign(
            str(body["timestamp"]),
            body["nonce"],
            "USER_DISABLE",
            body["data"],
            key="guessed-" + "k" * 32,
        ),
    }
    caplog.set_level(logging.DEBUG)
    resp = post(client, forged)
    assert resp.status_code == 401 and resp.json["error_code"] == "BFF.UNAUTHENTICATED"
    assert resp.json["error_msg"] == "the event's token or signature does not match"
    assert all(_signed_in(caller, redis, key_prefix) for caller in alice_twice)
    nonce_key = f"{key_prefix}:idp-event:{hashlib.sha256(body['nonce'].encode()).hexdigest()[:32]}"
    assert not redis.exists(nonce_key)  # a forgery spends no nonce
    warned = [r for r in caplog.records if r.getMessage() == "IdP event refused: bad signature"]
    assert warned and warned[0].levelno == logging.WARNING
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for secret in (TOKEN, ENCRYPTION_KEY, SIGNATURE_KEY, forged["sign"], body["data"], user):
        assert secret not in logged


def test_a_replay_is_refused_and_a_user_signed_in_since_stays(
    client, auth, redis, key_prefix, wechat_sim, idaas_sim, user
):
    body = sealed("USER_DISABLE", user)
    assert post(client, body).json["ended_sessions"] == 0  # nobody signed in yet
    nonce_key = f"{key_prefix}:idp-event:{hashlib.sha256(body['nonce'].encode()).hexdigest()[:32]}"
    assert redis.get(nonce_key) == "1" and 590 < redis.ttl(nonce_key) <= 600  # 2 x max age
    sign_in(auth, user)
    resp = post(client, body)
    assert resp.status_code == 401 and resp.json["error_code"] == "BFF.UNAUTHENTICATED"
    assert "already received" in resp.json["error_msg"]
    assert _signed_in(auth, redis, key_prefix)


@pytest.mark.parametrize("age_s", [301, -301])
def test_a_stale_or_future_timestamp_is_refused(client, auth, redis, key_prefix, age_s, user):
    sign_in(auth, user)
    body = sealed("USER_DISABLE", user, timestamp=int(time.time() - age_s))
    resp = post(client, body)
    assert resp.status_code == 401 and "timestamp" in resp.json["error_msg"]
    assert _signed_in(auth, redis, key_prefix)


def test_max_age_is_a_setting(make_app, auth, redis, key_prefix, user):
    auth.client = make_app(IDP_EVENTS_MAX_AGE_S="30").test_client()
    sign_in(auth, user)
    body = sealed("USER_DISABLE", user, timestamp=int(time.time() - 60))
    assert post(auth.client, body).status_code == 401
    assert _signed_in(auth, redis, key_prefix)


def test_another_event_is_acknowledged_and_ends_nothing(
    client, auth, redis, key_prefix, caplog, user
):
    sign_in(auth, user)
    caplog.set_level(logging.INFO, logger="bff.audit")
    resp = post(client, sealed("USER_LOGIN", user))
    assert resp.status_code == 200
    assert resp.json == {"received": True, "event_type": "USER_LOGIN", "ended_sessions": 0}
    assert _signed_in(auth, redis, key_prefix)
    noted = [r for r in caplog.records if r.name == "bff.audit" and r.getMessage() == "idp_event"]
    assert [r.__dict__["result"] for r in noted] == ["USER_LOGIN"]
    assert user not in str(noted[0].__dict__)


def test_the_audit_line_names_the_event_and_the_count_not_the_user(
    client, alice_twice, caplog, user
):
    caplog.set_level(logging.INFO, logger="bff.audit")
    post(client, sealed("USER_DELETE", user))
    records = [r for r in caplog.records if r.name == "bff.audit"]
    (line,) = [r for r in records if r.getMessage() == "idp_event"]
    assert line.__dict__["result"] == "USER_DELETE" and line.__dict__["ended_sessions"] == "2"
    revoked = [r for r in records if r.getMessage() == "revoked"]
    assert [r.__dict__["result"] for r in revoked] == ["USER_DELETE", "USER_DELETE"]
    assert len(line.__dict__["subject_hash"]) == 16 and user not in str(line.__dict__)


def test_the_receiver_is_off_without_its_keys(make_app, auth, redis, key_prefix, user):
    app = make_app(**OFF)
    auth.client = app.test_client()
    sign_in(auth, user)
    resp = post(auth.client, sealed("USER_DISABLE", user))
    unknown = auth.client.post("/api/v1/no/such/path", json={})
    assert resp.status_code == unknown.status_code == 404
    assert resp.json["error_code"] == unknown.json["error_code"] == "BFF.NOT_FOUND"
    assert resp.json["error_msg"] == unknown.json["error_msg"]
    assert auth.client.post(PATH, data="not json").status_code == 404  # before the body
    assert _signed_in(auth, redis, key_prefix)


@pytest.mark.parametrize(
    "change",
    [
        {"sign": None},
        {"timestamp": "yesterday"},
        {"timestamp": True},
        {"sign": "not base64!"},
        {"event": 7},
        {"data": "not base64!"},
    ],
)
def test_a_malformed_body_is_400_in_the_envelope(client, change, user):
    body = {**sealed("USER_DISABLE", user), **change}
    body = {k: v for k, v in body.items() if v is not None}
    resp = post(client, body)
    assert resp.status_code == 400
    assert resp.json["error_code"] == "BFF.VALIDATION" and resp.json["request_id"]
    assert set(resp.json["errors"]) == set(change)


def test_a_body_that_is_not_json_is_400(client):
    resp = client.post(PATH, data="{", content_type="application/json")
    assert resp.status_code == 400 and resp.json["error_code"] == "BFF.VALIDATION"


def test_data_that_does_not_decrypt_is_400(client, auth, redis, key_prefix, user):
    sign_in(auth, user)
    for data in (encrypt(user.encode(), key="x" * 32), encrypt(b"\xff"), "AAAA"):
        resp = post(client, sealed("USER_DISABLE", user, data=data))
        assert resp.status_code == 400 and resp.json["error_code"] == "BFF.VALIDATION"
        assert resp.json["error_msg"] == "the event's data does not decrypt"
    for data in (encrypt(b"{}"), encrypt(b" ")):
        resp = post(client, sealed("USER_DISABLE", user, data=data))
        assert resp.status_code == 400 and "names no user" in resp.json["error_msg"]
    assert _signed_in(auth, redis, key_prefix)


def test_an_event_refused_for_its_data_can_be_sent_again(make_app, alice, redis, key_prefix, user):
    """A refusal changes nothing, its nonce included: an event that did not decrypt (a key
    mistyped here) is received when the tenant retries it once the key is right."""
    body = sealed("USER_DISABLE", user)
    mistyped = make_app(IDP_EVENTS_ENCRYPTION_KEY="X" * 32).test_client()
    refused = post(mistyped, body)
    assert refused.status_code == 400 and refused.json["error_code"] == "BFF.VALIDATION"
    assert _signed_in(alice, redis, key_prefix)
    resp = post(alice.client, body)
    assert resp.status_code == 200 and resp.json["ended_sessions"] == 1, resp.json
    assert not _signed_in(alice, redis, key_prefix)


def test_a_session_of_no_known_subject_is_ended_too(client, alice, redis, key_prefix, user):
    """A session cached without an id_token (an answer that brought a session token only)
    names no subject: the index listed the openid under this user, so it ends."""
    key = f"{key_prefix}:session:{alice.openid}"
    cached = json.loads(redis.get(key))
    redis.set(key, json.dumps({**cached, "id_token_sub": None, "id_token": None}), keepttl=True)
    resp = post(client, sealed("USER_DISABLE", user))
    assert resp.status_code == 200 and resp.json["ended_sessions"] == 1, resp.json
    assert not redis.exists(key)


def test_the_oem_names_milliseconds_and_a_json_data_are_read(client, auth, redis, key_prefix, user):
    """``eventType``/``signature`` (the OEM's names), a timestamp in milliseconds and data that
    is ``{"userId"}`` rather than the bare id: the same event."""
    sign_in(auth, user)
    data = encrypt(json.dumps({"userId": user, "eventType": "USER_DISABLE"}).encode())
    body = sealed(
        "USER_DISABLE", user, timestamp=int(time.time() * 1000), data=data, oem_names=True
    )
    assert "signature" in body and "sign" not in body
    resp = post(client, body)
    assert resp.status_code == 200 and resp.json["ended_sessions"] == 1, resp.json
    assert not _signed_in(auth, redis, key_prefix)


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token-" + "x" * 32, TOKEN])
def test_without_the_security_token_an_event_is_refused(
    client, auth, redis, key_prefix, user, authorization
):
    """The token travels as ``Authorization: Bearer``; missing, wrong or without its scheme:
    401, even with a good signature."""
    sign_in(auth, user)
    headers = {"Authorization": authorization} if authorization else {}
    resp = post(client, sealed("USER_DISABLE", user), headers=headers)
    assert resp.status_code == 401 and resp.json["error_code"] == "BFF.UNAUTHENTICATED"
    assert _signed_in(auth, redis, key_prefix)


def test_a_handle_is_no_credential_here(client, auth, redis, key_prefix, user):
    """No handle is looked up: a mini program's own ``Authorization`` gets it nowhere, with a
    good signature or without."""
    sign_in(auth, user)
    for body in (sealed("USER_DISABLE", user), {**sealed("USER_DISABLE", user), "sign": "AA=="}):
        resp = post(client, body, headers=auth.headers())
        assert resp.status_code == 401 and resp.json["error_code"] == "BFF.UNAUTHENTICATED"
    assert _signed_in(auth, redis, key_prefix)


def test_a_store_outage_fails_closed(make_app, own_redis, auth, user):
    auth.client = make_app(REDIS_URL=own_redis.url).test_client()
    sign_in(auth, user)
    own_redis.stop()
    resp = post(auth.client, sealed("USER_DISABLE", user))
    assert resp.status_code == 503
    assert resp.json["error_code"] == "BFF.SESSION_STORE_UNAVAILABLE"


def test_the_route_is_in_the_openapi_document(client):
    doc = client.get("/openapi.json").json
    operation = doc["paths"]["/api/v1/idp/events"]["post"]
    assert operation["operationId"] == "idpEvent" and "security" not in operation
    assert {"200", "400", "401", "503"} <= set(operation["responses"])
