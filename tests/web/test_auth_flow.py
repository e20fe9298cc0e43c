"""The mini-program flow end to end: real app, real Redis, simulators over sockets."""

from __future__ import annotations

import hashlib
import json
import time

from tests.support.app import CLIENT_ID, DEVICE, PASSWORD, assert_signed_in, last_call

LOGIN = "/api/v2/sdk/login/wechat-miniprogram"
BIND = "/api/v2/sdk/social/username-password-bind"
REFRESH = "/api/v2/sdk/sso/session-token/id-token"


def test_wechat_session_stores_only_the_handle_hash(client, wechat_sim, redis, key_prefix):
    code = wechat_sim.issue_code("o_alice", "u_alice")
    resp = client.post("/api/v1/wechat/session", json={"wx_code": code})
    assert resp.status_code == 201
    handle = resp.json["handle"]
    assert resp.json == {"handle": handle, "expires_in": 604800}
    assert len(handle) >= 43  # 256 bits, urlsafe base64
    key = f"{key_prefix}:handle:{hashlib.sha256(handle.encode()).hexdigest()}"
    stored = json.loads(redis.get(key))
    assert {k: stored[k] for k in ("openid", "unionid")} == {
        "openid": "o_alice",
        "unionid": "u_alice",
    }
    # the device it was issued to, for the user's list of sessions: no handle, no secret
    assert set(stored) - {"openid", "unionid"} == {
        "issued_at",
        "last_used",
        "device_os",
        "agent",
        "fingerprint",
        "ip",
    }
    assert stored["ip"] == "127.0.0.0/24" and abs(stored["issued_at"] - time.time()) < 5
    assert 604790 < redis.ttl(key) <= 604800
    assert not list(redis.scan_iter(f"{key_prefix}:handle:{handle}*"))  # never the raw handle
    sent = wechat_sim.requests[-1]
    assert sent.query["appid"] == "wx-sim-appid" and sent.query["js_code"] == code


def test_first_login_parks_the_state_token(auth, idaas_sim, redis, key_prefix):
    resp = auth.login()
    assert resp.status_code == 200
    assert resp.json == {"status": "SOCIAL_BIND", "flows": ["VERIFY_PHONE"]}
    pending = json.loads(redis.get(f"{key_prefix}:pending:{auth.openid}"))
    assert pending == {"state_token": idaas_sim.state_tokens[-1], "status": "SOCIAL_BIND"}
    assert 590 < redis.ttl(f"{key_prefix}:pending:{auth.openid}") <= 600
    sent = last_call(idaas_sim, LOGIN)
    assert sent.headers["X-client-id"] == CLIENT_ID
    assert sent.headers["X-device-fingerprint"] == DEVICE["X-device-fingerprint"]
    assert sent.headers["X-device-ip"] == "127.0.0.1"
    assert sent.json == {"code": sent.json["code"]} and "Authorization" not in sent.headers


def test_bind_keeps_session_server_side(auth, idaas_sim, redis, key_prefix):
    auth.pending_bind()
    state_token = idaas_sim.state_tokens[-1]
    resp = auth.bind()
    assert_signed_in(resp, auth, idaas_sim, redis, key_prefix)
    sent = last_call(idaas_sim, BIND)
    assert sent.headers["X-state-token"] == state_token
    assert sent.headers["X-client-id"] == CLIENT_ID
    assert sent.json == {"user_name": "alice", "password": PASSWORD}


def test_wrong_password_keeps_pending_for_a_retry(auth, idaas_sim, redis, key_prefix):
    auth.pending_bind()
    resp = auth.bind(password="wrong")
    assert resp.status_code == 400
    assert resp.json["error_code"].endswith("LOGIN.1005")
    assert set(resp.json) == {"error_code", "error_msg", "request_id"}
    assert redis.exists(f"{key_prefix}:pending:{auth.openid}")
    assert not redis.exists(f"{key_prefix}:session:{auth.openid}")
    retry = auth.bind()
    assert retry.status_code == 200 and retry.json["status"] == "SUCCESS"


def test_locked_account_passes_the_idaas_code(auth, idaas_sim, redis, key_prefix):
    idaas_sim.locked_users.add("alice")
    auth.pending_bind()
    resp = auth.bind()
    assert resp.status_code == 400 and resp.json["error_code"] == "IDAAS.SDK.LOGIN.1003"
    assert redis.exists(f"{key_prefix}:pending:{auth.openid}")


def test_returning_login_is_success(auth, idaas_sim, redis, key_prefix):
    auth.signed_in()
    redis.delete(f"{key_prefix}:session:{auth.openid}")
    resp = auth.login()
    assert resp.status_code == 200 and resp.json["status"] == "SUCCESS"
    cached = json.loads(redis.get(f"{key_prefix}:session:{auth.openid}"))
    assert cached["session_token"] == idaas_sim.session_tokens[-1]


def test_bind_without_pending_is_409(auth, idaas_sim):
    auth.open_session()
    before = len(idaas_sim.requests)
    resp = auth.bind()
    assert resp.status_code == 409 and resp.json["error_code"] == "BFF.NO_PENDING_BIND"
    assert len(idaas_sim.requests) == before  # nothing reached the IDaaS


def test_bind_twice_second_is_409(auth):
    auth.signed_in()
    resp = auth.bind()
    assert resp.status_code == 409 and resp.json["error_code"] == "BFF.NO_PENDING_BIND"


def test_expired_state_token_drops_pending(auth, idaas_sim, redis, key_prefix):
    idaas_sim.state_token_ttl_s = 0
    auth.pending_bind()
    time.sleep(0.05)
    resp = auth.bind()
    assert resp.status_code == 409 and resp.json["error_code"] == "BFF.NO_PENDING_BIND"
    assert not redis.exists(f"{key_prefix}:pending:{auth.openid}")


def test_used_state_token_drops_pending(auth, idaas_sim, redis, key_prefix):
    auth.pending_bind()
    pending_key = f"{key_prefix}:pending:{auth.openid}"
    parked = redis.get(pending_key)
    assert auth.bind().status_code == 200
    redis.set(pending_key, parked)  # as if a stale copy had survived
    resp = auth.bind()
    assert resp.status_code == 409 and resp.json["error_code"] == "BFF.NO_PENDING_BIND"
    assert not redis.exists(pending_key)


def test_refresh_without_rotation(auth, idaas_sim, redis, key_prefix):
    auth.signed_in()
    token = idaas_sim.session_tokens[-1]
    resp = auth.client.post("/api/v1/session/refresh", headers=auth.headers())
    assert resp.status_code == 200
    assert set(resp.json) == {"id_token", "expires_in"}
    assert resp.json["id_token"] == idaas_sim.id_tokens[-1]
    assert 290 <= resp.json["expires_in"] <= 300
    sent = last_call(idaas_sim, REFRESH)
    assert sent.headers["session-token"] == token
    assert json.loads(redis.get(f"{key_prefix}:session:{auth.openid}"))["session_token"] == token


def test_refresh_with_rotation_replaces_the_cached_token(auth, idaas_sim, redis, key_prefix):
    auth.signed_in()
    old = idaas_sim.session_tokens[-1]
    idaas_sim.rotate_session_token = True
    resp = auth.client.post("/api/v1/session/refresh", headers=auth.headers())
    assert resp.status_code == 200
    new = idaas_sim.session_tokens[-1]
    assert new != old
    cached = json.loads(redis.get(f"{key_prefix}:session:{auth.openid}"))
    assert cached["session_token"] == new and cached["unionid"] == auth.unionid
    assert redis.ttl(f"{key_prefix}:session:{auth.openid}") > 0


def test_refresh_with_an_expired_session_token_is_401(auth, idaas_sim, redis, key_prefix):
    auth.signed_in()
    idaas_sim.invalidate_session()
    resp = auth.client.post("/api/v1/session/refresh", headers=auth.headers())
    assert resp.status_code == 401 and resp.json["error_code"] == "BFF.SESSION_EXPIRED"
    assert not redis.exists(f"{key_prefix}:session:{auth.openid}")


def test_refresh_without_session_is_401(auth):
    resp = auth.client.post("/api/v1/session/refresh", headers=auth.headers())
    assert resp.status_code == 401 and resp.json["error_code"] == "BFF.SESSION_EXPIRED"


def test_session_status_and_logout(auth, redis, key_prefix):
    headers = auth.signed_in()
    resp = auth.client.get("/api/v1/session", headers=headers)
    assert resp.status_code == 200 and resp.json["active"] is True
    assert 431990 < resp.json["expires_in"] <= 432000
    auth.client.post("/api/v1/login", json={"code": auth.wx_code()}, headers=headers)
    resp = auth.client.delete("/api/v1/session", headers=headers)
    assert resp.status_code == 204 and resp.data == b""
    assert not redis.exists(f"{key_prefix}:session:{auth.openid}")
    assert not redis.exists(f"{key_prefix}:pending:{auth.openid}")
    digest = hashlib.sha256(auth.handle.encode()).hexdigest()
    assert not redis.exists(f"{key_prefix}:handle:{digest}")
    # An ended handle leaves a tombstone for its lifetime, so that it answers "signed out", not
    # "never heard of it": the mini program can tell the user why.
    assert 0 < redis.ttl(f"{key_prefix}:revoked:{digest}") <= 604800
    again = auth.client.get("/api/v1/session", headers=headers)
    assert again.status_code == 401 and again.json["error_code"] == "BFF.SESSION_REVOKED"


def test_session_inactive_before_login(auth):
    resp = auth.client.get("/api/v1/session", headers=auth.headers())
    assert resp.status_code == 200 and resp.json == {"active": False}


def test_new_success_replaces_old_session(auth, idaas_sim, redis, key_prefix):
    auth.signed_in()
    first = idaas_sim.session_tokens[-1]
    assert auth.login().json["status"] == "SUCCESS"
    cached = json.loads(redis.get(f"{key_prefix}:session:{auth.openid}"))
    assert cached["session_token"] == idaas_sim.session_tokens[-1] != first


def test_user_register_status_and_null_data(auth, idaas_sim):
    idaas_sim.tenant_status = "USER_REGISTER"
    idaas_sim.flows = None
    resp = auth.login()
    assert resp.json == {"status": "USER_REGISTER", "flows": []}


def test_eiam_error_codes_match_by_suffix(auth, idaas_sim, redis, key_prefix):
    idaas_sim.code_prefix = "SDK."
    idaas_sim.state_token_ttl_s = 0
    auth.pending_bind()
    time.sleep(0.05)
    resp = auth.bind()
    assert resp.status_code == 409 and resp.json["error_code"] == "BFF.NO_PENDING_BIND"


def test_mfa_keeps_the_new_state_token(auth, idaas_sim, redis, key_prefix):
    auth.signed_in()
    idaas_sim.login_status_override = "MFA_AUTH"
    resp = auth.login()
    assert resp.json == {"status": "MFA_AUTH"}
    pending = json.loads(redis.get(f"{key_prefix}:pending:{auth.openid}"))
    assert pending == {"state_token": idaas_sim.state_tokens[-1], "status": "MFA_AUTH"}


def test_access_denied_is_passed_on(auth, idaas_sim):
    auth.signed_in()
    idaas_sim.login_status_override = "ACCESS_DENIED"
    assert auth.login().json == {"status": "ACCESS_DENIED"}


def test_password_warn_caches_the_session(auth, idaas_sim, redis, key_prefix):
    auth.signed_in()
    redis.delete(f"{key_prefix}:session:{auth.openid}")
    idaas_sim.login_status_override = "PASSWORD_WARN"
    resp = auth.login()
    assert resp.json["status"] == "PASSWORD_WARN" and "id_token" in resp.json
    assert "session_token" not in resp.json
    assert redis.exists(f"{key_prefix}:session:{auth.openid}")


def test_client_x_client_id_and_state_token_are_dropped(auth, idaas_sim):
    headers = auth.headers(**{"X-client-id": "evil", "X-state-token": "forged", "Cookie": "a=b"})
    auth.client.post("/api/v1/login", json={"code": auth.wx_code()}, headers=headers)
    sent = last_call(idaas_sim, LOGIN)
    assert sent.headers["X-client-id"] == CLIENT_ID
    assert "X-state-token" not in sent.headers and "Cookie" not in sent.headers
    resp = auth.client.post(
        "/api/v1/bind/username-password",
        json={"user_name": "alice", "password": PASSWORD},
        headers=headers,
    )
    assert resp.status_code == 200
    assert last_call(idaas_sim, BIND).headers["X-state-token"] == idaas_sim.state_tokens[-1]


def test_logout_ends_every_handle_of_the_user(auth, redis, key_prefix):
    """A second handle of the same user (another device, or a leaked one) must not keep
    minting id_tokens after the user logged out."""
    old_headers = auth.signed_in()
    old_handle = auth.handle
    auth.open_session()  # the same WeChat user on a second device: a second handle
    assert auth.client.delete("/api/v1/session", headers=auth.headers()).status_code == 204
    auth.handle = None  # the user signs in again: a new handle, a new session (bound already)
    assert auth.login().json["status"] == "SUCCESS"
    for headers in (old_headers, auth.headers()):
        resp = auth.client.post("/api/v1/session/refresh", headers=headers)
        if headers is old_headers:
            assert resp.status_code == 401 and resp.json["error_code"] == "BFF.SESSION_REVOKED"
        else:
            assert resp.status_code == 200
    digest = hashlib.sha256(old_handle.encode()).hexdigest()
    assert not redis.exists(f"{key_prefix}:handle:{digest}")


def test_handle_index_lists_the_users_handles_with_the_handle_ttl(auth, redis, key_prefix):
    first = auth.open_session()
    second = auth.open_session()
    index = f"{key_prefix}:handles:{auth.openid}"
    members = set(redis.zrange(index, 0, -1))
    assert members == {hashlib.sha256(h.encode()).hexdigest() for h in (first, second)}
    assert 604790 < redis.ttl(index) <= 604800
    assert auth.client.delete("/api/v1/session", headers=auth.headers()).status_code == 204
    assert not redis.exists(index)
