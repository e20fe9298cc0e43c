"""GET /api/v1/sessions and DELETE /api/v1/sessions/{id}: the devices a user is signed in on,
one signed out at a time; the handle ended so answers BFF.SESSION_REVOKED."""

from __future__ import annotations

import hashlib
import json
import time

from tests.support.app import DEVICE, AuthActions


def _open(auth, **device: str) -> str:
    resp = auth.client.post(
        "/api/v1/wechat/session", json={"wx_code": auth.wx_code()}, headers={**DEVICE, **device}
    )
    assert resp.status_code == 201
    return resp.json["handle"]


def _bearer(handle: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {handle}", **DEVICE}


def test_the_list_shows_each_device_and_marks_the_callers_own(auth):
    phone = _open(auth, **{"X-operating-sys-version": "iOS 17.4", "X-agent": "WeChat/8.0.47"})
    tablet = _open(auth, **{"X-operating-sys-version": "Android 14", "X-agent": "WeChat/8.0.46"})
    resp = auth.client.get("/api/v1/sessions", headers=_bearer(tablet))
    assert resp.status_code == 200
    sessions = resp.json["sessions"]
    # the oldest first (both opened within this second here: either order)
    assert sorted((s["os"], s["agent"], s["current"]) for s in sessions) == [
        ("Android 14", "WeChat/8.0.46", True),
        ("iOS 17.4", "WeChat/8.0.47", False),
    ]
    for entry in sessions:
        assert set(entry) == {"id", "issued_at", "last_used_at", "os", "agent", "ip", "current"}
        assert len(entry["id"]) == 16 and entry["ip"] == "127.0.0.0/24"
        assert abs(entry["issued_at"] - time.time()) < 5
    text = resp.get_data(as_text=True)
    for handle in (phone, tablet):  # neither the handle nor the digest that names its key
        assert handle not in text and hashlib.sha256(handle.encode()).hexdigest() not in text


def test_ending_one_device_revokes_it_and_keeps_the_others(auth, redis, key_prefix):
    auth.signed_in()
    phone = auth.handle
    tablet = _open(auth)
    listed = auth.client.get("/api/v1/sessions", headers=_bearer(phone)).json["sessions"]
    tablet_id = next(s["id"] for s in listed if not s["current"])
    resp = auth.client.delete(f"/api/v1/sessions/{tablet_id}", headers=_bearer(phone))
    assert resp.status_code == 204
    digest = hashlib.sha256(tablet.encode()).hexdigest()
    assert not redis.exists(f"{key_prefix}:handle:{digest}")
    assert 604790 < redis.ttl(f"{key_prefix}:revoked:{digest}") <= 604800
    refused = auth.client.get("/api/v1/session", headers=_bearer(tablet))
    assert refused.status_code == 401 and refused.json["error_code"] == "BFF.SESSION_REVOKED"
    assert auth.client.get("/api/v1/auth", headers=_bearer(phone)).status_code == 200
    assert redis.exists(f"{key_prefix}:session:{auth.openid}")  # the user is still signed in
    again = auth.client.delete(f"/api/v1/sessions/{tablet_id}", headers=_bearer(phone))
    assert again.status_code == 404 and again.json["error_code"] == "BFF.NOT_FOUND"


def test_another_users_session_id_is_not_found(auth, client, wechat_sim, idaas_sim):
    other = AuthActions(client, wechat_sim, idaas_sim)
    other.open_session()
    theirs = client.get("/api/v1/sessions", headers=other.headers()).json["sessions"][0]["id"]
    resp = auth.client.delete(f"/api/v1/sessions/{theirs}", headers=auth.headers())
    assert resp.status_code == 404
    assert client.get("/api/v1/sessions", headers=other.headers()).status_code == 200


def test_last_used_is_written_at_most_once_a_minute(auth, redis, key_prefix):
    handle = _open(auth)
    key = f"{key_prefix}:handle:{hashlib.sha256(handle.encode()).hexdigest()}"
    record = json.loads(redis.get(key))
    redis.set(key, json.dumps({**record, "last_used": record["last_used"] - 30}), keepttl=True)
    auth.client.get("/api/v1/session", headers=_bearer(handle))
    assert json.loads(redis.get(key))["last_used"] == record["last_used"] - 30  # < a minute
    redis.set(key, json.dumps({**record, "last_used": record["last_used"] - 61}), keepttl=True)
    auth.client.get("/api/v1/session", headers=_bearer(handle))
    assert abs(json.loads(redis.get(key))["last_used"] - time.time()) < 5
    assert 604790 < redis.ttl(key) <= 604800  # the handle's lifetime is not extended
