"""The IDaaS tenant's side of its WebHook, written apart from bff's: a sealed, signed event body."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

TOKEN = "idp-events-security-token-0123456789"
ENCRYPTION_KEY = "0123456789abcdef0123456789ABCDEF"  # 32 characters: AES-256
SIGNATURE_KEY = "idp-events-signature-key-abcdefghij"
IDP_ENV = {
    "IDP_EVENTS_TOKEN": TOKEN,
    "IDP_EVENTS_ENCRYPTION_KEY": ENCRYPTION_KEY,
    "IDP_EVENTS_SIGNATURE_KEY": SIGNATURE_KEY,
}
OFF = {name: "" for name in IDP_ENV}  # an empty variable counts as unset


def encrypt(plain: bytes, key: str = ENCRYPTION_KEY) -> str:
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key.encode()), modes.ECB()).encryptor()  # noqa: S305
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()


def sign(timestamp: str, nonce: str, event_type: str, data: str, key: str = SIGNATURE_KEY) -> str:
    message = "\n".join([TOKEN, timestamp, nonce, event_type, data]).encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def sealed(
    event_type: str,
    user_id: str,
    *,
    timestamp_ms: int | None = None,
    data: str | None = None,
    **extra: Any,
) -> dict[str, str]:
    """A body the tenant would push: ``data`` sealed, then the whole signed."""
    timestamp = str(int(time.time() * 1000) if timestamp_ms is None else timestamp_ms)
    nonce = secrets.token_hex(16)
    if data is None:
        event = {"userId": user_id, "eventType": event_type, **extra}
        data = encrypt(json.dumps(event).encode())
    return {
        "nonce": nonce,
        "timestamp": timestamp,
        "eventType": event_type,
        "data": data,
        "signature": sign(timestamp, nonce, event_type, data),
    }
