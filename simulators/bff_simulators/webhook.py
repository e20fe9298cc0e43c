"""IdP events (CIAM WebHook) as the simulated tenant pushes them.

Marks: [doc] the vendor's documentation says so, [oem] the same product sold under another name
(Huawei Cloud OneAccess) does, [assumed] not seen documented.

[doc] The tenant POSTs events (`USER_LOGIN`, `USER_DISABLE`, `USER_DELETE`, `USER_UPDATE_PWD`,
`USER_SOCIAL_BIND`, `USER_SOCIAL_UNBIND`, ...) naming the user id to a URL of yours, which answers
200; the set-up names a security token, a 32-character encryption key (AES, ECB/PKCS5) and a
signature key. [oem] The body is `{nonce, timestamp, eventType, data, signature}`.

[assumed] The rest, the vendor's exact scheme not being confirmed:

- `nonce`: 16 random hex digits; `timestamp`: milliseconds since the epoch, as a string;
- `data`: base64 (standard alphabet) of AES-256-ECB, PKCS7 padding, of the UTF-8 JSON
  `{"userId": <subject>, "eventType": <same>, ...extra}`, the key the encryption key's UTF-8 bytes;
- `signature`: lowercase hex HMAC-SHA256, key the signature key's UTF-8 bytes, over
  `"\\n".join([security_token, timestamp, nonce, eventType, data])` (`signature()`, one function
  to change when the vendor's string is known).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = ["open_event", "seal_event", "signature"]
KEY_BYTES = 32  # AES-256


def signature(
    signature_key: str, security_token: str, timestamp: str, nonce: str, event_type: str, data: str
) -> str:
    """The body's `signature` [assumed]: hex HMAC-SHA256 over the fields, one a line."""
    message = "\n".join([security_token, timestamp, nonce, event_type, data]).encode()
    return hmac.new(signature_key.encode(), message, hashlib.sha256).hexdigest()


def _cipher(encryption_key: str) -> Cipher[Any]:
    key = encryption_key.encode()
    if len(key) != KEY_BYTES:
        raise ValueError(f"the encryption key must be {KEY_BYTES} bytes, not {len(key)}")
    # ECB is the vendor's (described) mode, not a choice of ours.
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
    timestamp_ms: int | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, str]:
    """The WebHook body of one event about `user_id` (the id_token `sub`)."""
    payload = {"userId": user_id, "eventType": event_type, **(extra or {})}
    data = encrypt(encryption_key, json.dumps(payload, separators=(",", ":")).encode())
    nonce = secrets.token_hex(8) if nonce is None else nonce
    timestamp = str(int(time.time() * 1000) if timestamp_ms is None else timestamp_ms)
    sign = signature(signature_key, security_token, timestamp, nonce, event_type, data)
    return {
        "nonce": nonce,
        "timestamp": timestamp,
        "eventType": event_type,
        "data": data,
        "signature": sign,
    }


def open_event(
    body: dict[str, Any], *, security_token: str, encryption_key: str, signature_key: str
) -> dict[str, Any]:
    """Check a sealed body's signature, decrypt its `data`: the event's JSON (ValueError if
    forged, garbled or not of its `eventType`)."""
    fields = [body.get(name) for name in ("timestamp", "nonce", "eventType", "data", "signature")]
    if not all(isinstance(value, str) for value in fields):
        raise ValueError("timestamp, nonce, eventType, data and signature must be strings")
    timestamp, nonce, event_type, data, sign = (str(value) for value in fields)
    expected = signature(signature_key, security_token, timestamp, nonce, event_type, data)
    if not hmac.compare_digest(expected, sign):
        raise ValueError("bad signature")
    event = json.loads(decrypt(encryption_key, data))
    if not isinstance(event, dict) or event.get("eventType") != event_type:
        raise ValueError("the encrypted event is not the body's eventType")
    return event
