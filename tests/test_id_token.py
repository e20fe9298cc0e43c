"""id_token verification before anything is cached."""

from __future__ import annotations

import base64
import json
import time

import jwt as pyjwt
import pytest
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from bff.errors import UpstreamError
from bff.id_token import IdTokenVerifier
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


# ---------------------------------------------------------------- the verifier, token by token

ISSUER, AUDIENCE = "https://tenant.example.com/api/v1/oauth2", "test-client"


@pytest.fixture(scope="module")
def keys():
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    return {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "other": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ec": ec.generate_private_key(ec.SECP256R1()),
    }


@pytest.fixture
def verifier(keys):
    jwks = {
        "keys": [
            {**json.loads(RSAAlgorithm.to_jwk(keys["rsa"].public_key())), "kid": "k1"},
            {**json.loads(ECAlgorithm.to_jwk(keys["ec"].public_key())), "kid": "ec1"},
        ]
    }
    return IdTokenVerifier(lambda: jwks, issuer=ISSUER, audience=AUDIENCE)


def _claims(**changes):
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "nbf": now}
    claims["exp"] = now + 300
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _token(keys, key="rsa", kid="k1", alg="RS256", **changes):
    return pyjwt.encode(_claims(**changes), keys[key], algorithm=alg, headers={"kid": kid})


def test_a_good_token(verifier, keys):
    token = verifier.verify(_token(keys))
    assert token.subject == "alice" and token.exp > time.time()
    assert verifier.verify(_token(keys, aud=["other", AUDIENCE])).subject == "alice"


def _with_header(keys, header: dict, claims: dict, key="rsa") -> str:
    """A token with any header, signed by ``key`` as RS256 (what an attacker can make)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    signature = RSAAlgorithm(RSAAlgorithm.SHA256).sign(head.encode(), keys[key])
    return head + "." + b64(signature)


BAD = {
    "expired": lambda k: _token(k, exp=int(time.time()) - 120),
    "not yet valid": lambda k: _token(k, nbf=int(time.time()) + 120),
    "issued in the future": lambda k: _token(k, iat=int(time.time()) + 120),
    "no exp": lambda k: _token(k, exp=None),
    "exp not a number": lambda k: _token(k, exp="soon"),
    "exp a boolean": lambda k: _token(k, exp=True),
    "no iss": lambda k: _token(k, iss=None),
    "iss a prefix": lambda k: _token(k, iss=ISSUER[:-1]),
    "iss longer": lambda k: _token(k, iss=ISSUER + "x"),
    "iss in a list": lambda k: _with_header(
        k, {"alg": "RS256", "kid": "k1"}, _claims(iss=[ISSUER])
    ),
    "iss inside a string": lambda k: _token(k, iss="x" + ISSUER),
    "no aud": lambda k: _token(k, aud=None),
    "other aud": lambda k: _token(k, aud="someone-else"),
    "aud a prefix": lambda k: _token(k, aud=AUDIENCE[:-1]),
    "aud list without us": lambda k: _token(k, aud=["a", "b"]),
    "signed by another key": lambda k: _token(k, key="other"),
    "unknown kid": lambda k: _token(k, kid="k9"),
    "alg none": lambda k: pyjwt.encode(_claims(), None, algorithm="none", headers={"kid": "k1"}),
    "alg HS256 keyed with the public key": lambda k: _with_header(
        k, {"alg": "HS256", "kid": "k1"}, _claims()
    ),
    "alg RS512": lambda k: _token(k, alg="RS512"),
    "kid of an EC key": lambda k: _with_header(k, {"alg": "RS256", "kid": "ec1"}, _claims()),
    "critical header": lambda k: _with_header(
        k, {"alg": "RS256", "kid": "k1", "crit": ["exp"], "exp": 1}, _claims()
    ),
    "payload swapped after signing": lambda k: ".".join(
        [_token(k).split(".")[0], _token(k, sub="mallory").split(".")[1], _token(k).split(".")[2]]
    ),
    "two segments": lambda k: ".".join(_token(k).split(".")[:2]),
    "four segments": lambda k: _token(k) + ".x",
    "not base64url": lambda k: _token(k).replace(".", ".!", 1),
    "header not JSON": lambda k: "bm90IGpzb24." + ".".join(_token(k).split(".")[1:]),
    "claims a list": lambda k: _with_header(k, {"alg": "RS256", "kid": "k1"}, ["x"]),
    "not ASCII": lambda k: _token(k) + "é",
    "empty": lambda k: "",
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_token_is_502(verifier, keys, case):
    with pytest.raises(UpstreamError) as caught:
        verifier.verify(BAD[case](keys))
    assert caught.value.status == 502 and caught.value.code == "BFF.UPSTREAM_BAD_RESPONSE"


def test_the_leeway_is_a_minute(verifier, keys):
    now = int(time.time())
    assert verifier.verify(_token(keys, exp=now - 30, nbf=now + 30, iat=now + 30))
