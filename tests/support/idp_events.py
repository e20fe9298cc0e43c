"""The IDaaS tenant's side of its WebHook, written apart from bff's, from the vendor's CIAM pages:
the security token as ``Authorization: Bearer``, the body ``{nonce, timestamp, event, data,
sign}``, ``data`` the user id AES-256-ECB encrypted, ``sign`` base64 of an HMAC-SHA256 over
``nonce&timestamp&event&data``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

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


HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def sign(timestamp: str, nonce: str, event_type: str, data: str, key: str = SIGNATURE_KEY) -> str:
    message = f"{nonce}&{timestamp}&{event_type}&{data}".encode()
    return base64.b64encode(hmac.new(key.encode(), message, hashlib.sha256).digest()).decode()


def sealed(
    event_type: str,
    user_id: str,
    *,
    timestamp: int | None = None,
    data: str | None = None,
    oem_names: bool = False,
) -> dict[str, object]:
    """A body the tenant would push (``timestamp``: seconds, now by default): the user id
    sealed, then the whole signed; ``oem_names``: ``eventType``/``signature`` as the OEM's."""
    stamp = int(time.time()) if timestamp is None else timestamp
    nonce = secrets.token_hex(16)
    if data is None:
        data = encrypt(user_id.encode())
    signature = sign(str(stamp), nonce, event_type, data)
    event_name, sign_name = ("eventType", "signature") if oem_names else ("event", "sign")
    return {
        "nonce": nonce,
        "timestamp": stamp,
        event_name: event_type,
        "data": data,
        sign_name: signature,
    }
