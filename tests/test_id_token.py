"""id_token verification before anything is cached."""

from __future__ import annotations

import json

import pytest

from tests.support.app import AuthActions

BAD_MODES = [
    "expired",
    "not_yet_valid",
    "wrong_aud",
    "wrong_iss",
    "forged",
    "unknown_kid",
    "not_jwt",
]


@pytest.mark.parametrize("mode", BAD_MODES)
def test_bad_id_token_is_502_and_nothing_stored(auth, idaas_sim, redis, key_prefix, mode):
    auth.pending_bind()
    idaas_sim.id_token_mode = mode
    resp = auth.bind()
    assert resp.status_code == 502 and resp.json["error_code"] == "BFF.UPSTREAM_BAD_RESPONSE"
    assert "id_token" not in resp.json
    assert not redis.exists(f"{key_prefix}:session:{auth.openid}")


def test_older_api_claim_gives_the_subject(auth, idaas_sim, redis, key_prefix):
    auth.pending_bind()
    idaas_sim.id_token_mode = "api_claim"
    assert auth.bind().status_code == 200
    cached = json.loads(redis.get(f"{key_prefix}:session:{auth.openid}"))
    assert cached["id_token_sub"] == "alice"


def test_jwks_is_cached(auth, idaas_sim):
    auth.signed_in()
    fetched = idaas_sim.jwks_fetches
    auth.login()
    auth.client.post("/api/v1/session/refresh", headers=auth.headers())
    assert idaas_sim.jwks_fetches == fetched


def test_unknown_kid_refetches_at_most_once_a_minute(make_app, wechat_sim, idaas_sim):
    auth = AuthActions(make_app().test_client(), wechat_sim, idaas_sim)
    auth.signed_in()
    fetched = idaas_sim.jwks_fetches
    idaas_sim.id_token_mode = "unknown_kid"
    idaas_sim.publish_extra_key = True  # the key exists now, but we fetched less than 60 s ago
    assert auth.client.post("/api/v1/session/refresh", headers=auth.headers()).status_code == 502
    assert idaas_sim.jwks_fetches == fetched


def test_unknown_kid_refetch_finds_a_rotated_key(make_app, wechat_sim, idaas_sim):
    auth = AuthActions(make_app().test_client(), wechat_sim, idaas_sim)
    auth.pending_bind()
    idaas_sim.id_token_mode = "unknown_kid"
    idaas_sim.publish_extra_key = True
    assert auth.bind().status_code == 200  # first fetch of this worker already sees the new key


def test_verification_can_be_turned_off(make_app, wechat_sim, idaas_sim, redis, key_prefix):
    auth = AuthActions(make_app(IDAAS_VERIFY_ID_TOKEN="false").test_client(), wechat_sim, idaas_sim)
    auth.pending_bind()
    idaas_sim.id_token_mode = "forged"
    fetched = idaas_sim.jwks_fetches
    assert auth.bind().status_code == 200
    assert idaas_sim.jwks_fetches == fetched  # no key needed when off
    assert redis.exists(f"{key_prefix}:session:{auth.openid}")
