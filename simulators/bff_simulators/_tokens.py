"""Signing keys, JWKS and token minting for the IDaaS simulator."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ID_TOKEN_MODES = frozenset(
    {
        "ok",
        "api_claim",
        "expired",
        "not_yet_valid",
        "wrong_aud",
        "wrong_iss",
        "forged",
        "unknown_kid",
        "not_jwt",
    }
)
_SKEW_S = 600  # how far "expired" / "not_yet_valid" tokens are off


@dataclass(frozen=True)
class SigningKey:
    """An RSA key pair and its key id."""

    kid: str
    private_key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        """A fresh 2048-bit key with a random kid."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(secrets.token_urlsafe(12), key)

    def jwk(self) -> dict[str, Any]:
        """The public key as a JWK."""
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        jwk.pop("key_ops", None)  # the vendor publishes `use`, not `key_ops`
        jwk.update(kid=self.kid, use="sig", alg="RS256")
        return jwk

    def sign(self, claims: dict[str, Any], kid: str | None = None) -> str:
        """An RS256 JWT over `claims` with header kid (default: this key's)."""
        headers = {"kid": kid or self.kid}
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers=headers)


def _expired(claims: dict[str, Any]) -> None:
    ttl = claims["exp"] - claims["iat"]
    claims["exp"] = claims["iat"] - _SKEW_S
    claims["iat"] = claims["nbf"] = claims["exp"] - ttl


def _not_yet_valid(claims: dict[str, Any]) -> None:
    claims["nbf"] += _SKEW_S
    claims["exp"] += _SKEW_S


def _api_claim(claims: dict[str, Any]) -> None:
    claims["api"] = json.dumps({"userName": claims.pop("sub")})


def _wrong_aud(claims: dict[str, Any]) -> None:
    claims["aud"] = "some-other-client"


def _wrong_iss(claims: dict[str, Any]) -> None:
    claims["iss"] = "https://idaas.invalid/api/v1/oauth2"


_CLAIM_TWEAKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "expired": _expired,
    "not_yet_valid": _not_yet_valid,
    "api_claim": _api_claim,
    "wrong_aud": _wrong_aud,
    "wrong_iss": _wrong_iss,
}


class TokenMinter:
    """Mints id_tokens (per mode) and opaque-looking state tokens; serves the JWKS."""

    def __init__(self) -> None:
        self.key = SigningKey.generate()
        self._state_secret = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._forger: SigningKey | None = None
        self._extra: SigningKey | None = None

    @property
    def forger_key(self) -> SigningKey:
        """A different key, used with the published kid (mode "forged")."""
        with self._lock:
            if self._forger is None:
                self._forger = SigningKey.generate()
            return self._forger

    @property
    def extra_key(self) -> SigningKey:
        """A second key whose kid is unpublished until `publish_extra_key` (mode "unknown_kid")."""
        with self._lock:
            if self._extra is None:
                self._extra = SigningKey.generate()
            return self._extra

    def jwks(self, publish_extra: bool) -> dict[str, Any]:
        """The JSON Web Key Set document."""
        keys = [self.key.jwk()]
        if publish_extra:
            keys.append(self.extra_key.jwk())
        return {"keys": keys}

    def id_token(self, mode: str, issuer: str, audience: str, subject: str, ttl_s: float) -> str:
        """An id_token for `subject`, broken the way `mode` says."""
        if mode not in ID_TOKEN_MODES:
            raise ValueError(f"unknown id_token_mode {mode!r}")
        if mode == "not_jwt":
            return "not-a-jwt"
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": issuer,
            "aud": audience,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + int(ttl_s),
            "jti": secrets.token_hex(16),
        }
        tweak = _CLAIM_TWEAKS.get(mode)
        if tweak is not None:
            tweak(claims)
        if mode == "forged":
            return self.forger_key.sign(claims, kid=self.key.kid)
        if mode == "unknown_kid":
            return self.extra_key.sign(claims)
        return self.key.sign(claims)

    def state_token(self, ttl_s: float) -> str:
        """A fresh state token: HS256-JWT-shaped, validity is tracked server-side."""
        now = int(time.time())
        claims = {"jti": secrets.token_hex(16), "iat": now, "exp": now + int(ttl_s)}
        return jwt.encode(claims, self._state_secret, algorithm="HS256")
