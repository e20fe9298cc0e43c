"""id_token verification: RS256 against the IDaaS JWKS, cached, refetched on an unknown kid.

PyJWT parses the key set (``PyJWKSet``) and checks the signature (its ``RSAAlgorithm``, over
``cryptography``); the token is split and read here once, and its claims checked here:
``jwt.decode`` would decode it again after the header was read to pick the key, and check every
character of it in pure Python first (65 µs a token against 29 µs, measured). Refetches of the
key set are rate-limited (at most one a minute).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import RSAAlgorithm

from bff.errors import bad_response
from bff.models import IdToken

log = logging.getLogger("bff.id_token")

LEEWAY_S = 60
REFETCH_INTERVAL_S = 60.0  # an unknown kid refetches the key set at most this often
EMPTY_RETRY_S = 5.0  # while no key set was ever fetched, a failed fetch is retried this often


def _subject(claims: dict[str, Any]) -> str | None:
    """``sub``, or ``userName`` inside the older ``api`` JSON-string claim."""
    sub = claims.get("sub")
    if isinstance(sub, str) and sub:
        return sub
    api = claims.get("api")
    try:
        parsed = json.loads(api) if isinstance(api, str) else api
    except ValueError:
        return None
    user = parsed.get("userName") if isinstance(parsed, dict) else None
    return user if isinstance(user, str) and user else None


def _exp(claims: dict[str, Any]) -> int:
    exp = claims.get("exp")
    if not isinstance(exp, int | float):
        raise bad_response()
    return int(exp)


_RS256 = RSAAlgorithm(RSAAlgorithm.SHA256)


def _segment(text: str) -> bytes:
    """One base64url segment, strictly (no character outside the alphabet)."""
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (ValueError, binascii.Error) as exc:
        raise jwt.DecodeError("malformed segment") from exc


def _object(text: str) -> dict[str, Any]:
    """A segment holding a JSON object (the header, the claims)."""
    try:
        value = json.loads(_segment(text))
    except ValueError as exc:
        raise jwt.DecodeError("segment is not JSON") from exc
    if not isinstance(value, dict):
        raise jwt.DecodeError("segment is not a JSON object")
    return value


def _parts(token: str) -> tuple[str, str, str]:
    parts = token.split(".")
    if len(parts) != 3 or not token.isascii():
        raise jwt.DecodeError("not a JWS compact serialisation")
    return parts[0], parts[1], parts[2]


def _number(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise jwt.DecodeError(f"{name} is not a number")
    return float(value)


def _check_times(claims: dict[str, Any], now: float) -> None:
    """``exp`` (required), ``nbf`` and ``iat``, each with :data:`LEEWAY_S`."""
    exp, nbf, iat = (_number(claims, n) for n in ("exp", "nbf", "iat"))
    if exp is None:
        raise jwt.MissingRequiredClaimError("exp")
    if now > exp + LEEWAY_S:
        raise jwt.ExpiredSignatureError("expired")
    if (nbf is not None and now < nbf - LEEWAY_S) or (iat is not None and now < iat - LEEWAY_S):
        raise jwt.ImmatureSignatureError("not yet valid")


class IdTokenVerifier:
    """Verifies id_tokens; a token that fails is a 502 and nothing is stored."""

    def __init__(
        self,
        fetch_jwks: Callable[[], dict[str, Any]],
        *,
        issuer: str,
        audience: str,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch_jwks = fetch_jwks
        self._issuer = issuer
        self._audience = audience
        self._enabled = enabled
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._attempted_at: float | None = None
        self._fetch_lock = threading.Lock()  # one fetch at a time; known kids never wait on it

    def verify(self, token: str) -> IdToken:
        """:raises UpstreamError: 502 when the token is malformed, forged, expired or not ours."""
        try:
            if not self._enabled:
                claims = _object(_parts(token)[1])  # IDAAS_VERIFY_ID_TOKEN=false: read only
            else:
                claims = self._decode(token)
        except jwt.PyJWTError as exc:
            log.warning("id_token rejected", extra={"reason": type(exc).__name__})
            raise bad_response() from None
        return IdToken(_subject(claims), _exp(claims))

    def _decode(self, token: str) -> dict[str, Any]:
        """The claims of a token signed RS256 by a key of the set, for us, from our IDaaS."""
        head, body, signature = _parts(token)
        header = _object(head)
        if header.get("alg") != "RS256":  # never "none", never HS256 keyed with a public key
            raise jwt.InvalidAlgorithmError("not RS256")
        if "crit" in header:  # no critical extension is understood here
            raise jwt.InvalidTokenError("critical header parameter")
        key = self._key(str(header.get("kid", "")))
        if not isinstance(key.key, RSAPublicKey):  # a kid of another key type
            raise jwt.InvalidKeyError("not an RSA public key")
        if not _RS256.verify(f"{head}.{body}".encode("ascii"), key.key, _segment(signature)):
            raise jwt.InvalidSignatureError("signature")
        claims = _object(body)  # signed: now it may be believed
        _check_times(claims, time.time())
        if claims.get("iss") != self._issuer:  # the whole string, never a part of it
            raise jwt.InvalidIssuerError("issuer")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self._audience not in [a for a in audiences if isinstance(a, str)]:
            raise jwt.InvalidAudienceError("audience")
        return claims

    def _key(self, kid: str) -> jwt.PyJWK:
        key = self._keys.get(kid)  # known keys need no lock
        if key is None:
            with self._fetch_lock:  # only unknown kids wait here, for one fetch at a time
                key = self._keys.get(kid)  # the fetch we waited for may have brought it
                if key is None and self._may_refetch():
                    self._refetch()
                    key = self._keys.get(kid)
        if key is None:
            raise jwt.InvalidKeyError("unknown kid")
        return key

    def _may_refetch(self) -> bool:
        if self._attempted_at is None:
            return True
        interval = REFETCH_INTERVAL_S if self._keys else EMPTY_RETRY_S
        return self._clock() - self._attempted_at >= interval

    def _refetch(self) -> None:
        self._attempted_at = self._clock()  # failed attempts count too: at most one a minute
        jwks = self._fetch_jwks()
        try:
            keyset = jwt.PyJWKSet.from_dict(jwks)
        except jwt.PyJWTError as exc:
            raise bad_response() from exc
        self._keys = {k.key_id: k for k in keyset.keys if k.key_id}
