"""id_token verification: RS256 against the IDaaS JWKS, cached, refetched on an unknown kid.

PyJWT does the work through its public API: ``PyJWKSet`` parses the key set, the token's
``kid`` names the key, and ``jwt.decode_complete`` checks the signature with that key (RS256
only), ``exp`` (required), ``nbf`` and ``iat`` with a minute's leeway, the issuer (the whole
string) and the audience. Refetches of the key set are rate-limited (at most one a minute).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

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
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        raise bad_response()
    return int(exp)


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
            if self._enabled:
                claims = self._decode(token)
            else:  # IDAAS_VERIFY_ID_TOKEN=false: read only
                claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            log.warning("id_token rejected", extra={"reason": type(exc).__name__})
            raise bad_response() from None
        return IdToken(_subject(claims), _exp(claims))

    def _decode(self, token: str) -> dict[str, Any]:
        """The claims of a token signed RS256 by a key of the set, for us, from our IDaaS.

        With one key in the set (a tenant between rotations), the token is decoded with it at
        once and its header checked after: PyJWT parses a token strictly, character by
        character, and this parses it once instead of twice (docs/performance.md). A token that
        fails that way, or whose ``kid`` names another key, takes the path by its ``kid``.
        """
        keys = self._keys
        if len(keys) == 1:
            ((kid, only),) = keys.items()
            try:
                decoded = self._decode_with(token, only)
            except jwt.InvalidSignatureError:
                decoded = None  # signed by a key we may not know yet: look at its kid
            if decoded is not None and decoded["header"].get("kid") == kid:
                return self._checked(decoded)
        header = jwt.get_unverified_header(token)
        return self._checked(self._decode_with(token, self._key(str(header.get("kid", "")))))

    def _decode_with(self, token: str, key: jwt.PyJWK) -> dict[str, Any]:
        if not isinstance(key.key, RSAPublicKey):  # a kid of another key type
            raise jwt.InvalidKeyError("not an RSA public key")
        decoded: dict[str, Any] = jwt.decode_complete(
            token,
            key.key,
            algorithms=["RS256"],  # never "none", never HS256 keyed with a public key
            audience=self._audience,
            issuer=self._issuer,
            leeway=LEEWAY_S,
            options={"require": ["exp", "iss", "aud"]},
        )
        return decoded

    @staticmethod
    def _checked(decoded: dict[str, Any]) -> dict[str, Any]:
        if "crit" in decoded["header"]:  # no critical extension is understood here
            raise jwt.InvalidTokenError("critical header parameter")
        claims: dict[str, Any] = decoded["payload"]
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
