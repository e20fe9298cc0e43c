"""IdP events (CIAM WebHook) as the simulated tenant pushes them.

Marks: [doc] the vendor's documentation says so (its CIAM "WebHook" instruction page and the
WebHook appendix on the signature and the encryption), [assumed] not seen documented.

[doc] The tenant POSTs events (`USER_LOGIN`, `USER_DISABLE`, `USER_DELETE`, `USER_UPDATE_PWD`,
`USER_SOCIAL_BIND`, `USER_SOCIAL_UNBIND`, ...) naming the user id to a URL of yours, which answers
200; the set-up names a security token (32+ characters), a 32-character encryption key (AES,
"AES/ECB/PKCS5Padding") and a signature key (32+). Each push:

- [doc] carries the security token as the header `Authorization: Bearer {token}`;
- [doc] has the JSON body `{"nonce", "timestamp", "event", "data", "sign"}`, `timestamp` an
  integer, seconds since the epoch (as the vendor's sample); `nonce` a random string (here 32 hex
  digits [assumed]);
- [doc] `data`: base64 (standard alphabet) of AES-256-ECB, PKCS7 padding (PKCS5's name for it),
  the key the encryption key's UTF-8 bytes, over the user id itself (the id_token's `sub`, UTF-8);
- [doc] `sign`: base64 of HMAC-SHA256, key the signature key's UTF-8 bytes, over
  `nonce + "&" + timestamp + "&" + event + "&" + data` (`signature()`), `data` as sent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = ["event_headers", "open_event", "seal_event", "signature"]
KEY_BYTES = 32  # AES-256
SIGNED_FIELDS = ("nonce", "timestamp", "event", "data", "sign")


def signature(signature_key: str, nonce: str, timestamp: str, event_type: str, data: str) -> str:
    """The body's `sign` [doc]: base64 HMAC-SHA256 over `nonce&timestamp&event&data`."""
    message = "&".join([nonce, timestamp, event_type, data]).encode()
    return base64.b64encode(hmac.digest(signature_key.encode(), message, hashlib.sha256)).decode()


def _cipher(encryption_key: str) -> Cipher[Any]:
    key = encryption_key.encode()
    if len(key) != KEY_BYTES:
        raise ValueError(f"the encryption key must be {KEY_BYTES} bytes, not {len(key)}")
    # ECB is the vendor's (documented) mode, not a choice of ours.
    return Cipher(algorithms.AES(key), modes.ECB())  # noqa: S305


def encrypt(encryption_key: str, plaintext: bytes) -> str:
    """base64 of AES-ECB over the PKCS7-padded plaintext."""
    padder = padding.PKCS7(128).padder()
    encryptor = _cipher(encryption_key).encryptor()
    padded = padder.update(plaintext) + padder.finalize()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()


def decrypt(encryption_key: str, data: str) -> bytes:
    """The plaintext of `encrypt` (ValueError if it is not one)."""
    try:
        raw = base64.b64decode(data, validate=True)
    except binascii.Error:
        raise ValueError("data is not base64") from None
    decryptor = _cipher(encryption_key).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    padded = decryptor.update(raw) + decryptor.finalize()
    return unpadder.update(padded) + unpadder.finalize()


def seal_event(
    event_type: str,
    user_id: str,
    *,
    security_token: str,
    encryption_key: str,
    signature_key: str,
    nonce: str | None = None,
    timestamp: int | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The WebHook body of one event about `user_id` (the id_token `sub`); `timestamp` in
    seconds, now by default; `extra`: more body fields, outside the signature (a receiver ignores
    them). The security token is not in the body: it goes in the request's `Authorization`
    header (`event_headers()`); it is taken here so that one call names the whole set-up."""
    _ = security_token
    data = encrypt(encryption_key, user_id.encode())
    nonce = secrets.token_hex(16) if nonce is None else nonce
    stamp = int(time.time()) if timestamp is None else int(timestamp)
    sign = signature(signature_key, nonce, str(stamp), event_type, data)
    body: dict[str, Any] = {**(extra or {})}
    body.update({"nonce": nonce, "timestamp": stamp, "event": event_type, "data": data})
    body["sign"] = sign
    return body


def event_headers(security_token: str) -> dict[str, str]:
    """The request's headers besides the JSON content type: the token as a bearer token [doc]."""
    return {"Authorization": f"Bearer {security_token}"}


def open_event(
    body: dict[str, Any],
    *,
    token: str | None,
    security_token: str,
    encryption_key: str,
    signature_key: str,
) -> str:
    """Check a pushed event as the receiver would: `token` (the request's bearer token) against
    the security token, then the body's `sign`; return the user id its `data` seals (ValueError
    if forged, garbled or misshapen)."""
    if not isinstance(body.get("timestamp"), int) or isinstance(body.get("timestamp"), bool):
        raise ValueError("timestamp must be an integer")
    if not all(isinstance(body.get(name), str) for name in SIGNED_FIELDS if name != "timestamp"):
        raise ValueError("nonce, event, data and sign must be strings")
    if not hmac.compare_digest((token or "").encode(), security_token.encode()):
        raise ValueError("bad security token")
    nonce, event_type, data = body["nonce"], body["event"], body["data"]
    expected = signature(signature_key, nonce, str(body["timestamp"]), event_type, data)
    if not hmac.compare_digest(expected.encode(), str(body["sign"]).encode()):
        raise ValueError("bad signature")
    try:
        return decrypt(encryption_key, data).decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("data is not a UTF-8 user id") from None
