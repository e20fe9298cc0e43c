"""The IDaaS tenant's WebHook (CIAM "events"): how one pushed event is signed and sealed. No Flask.

The tenant's set-up names three keys: a security token (32+ characters), an encryption key (32
characters: AES, "ECB/PKCS5" in the vendor's words) and a signature key [doc]. The body is
``{"nonce", "timestamp", "eventType", "data", "signature"}`` [oem]: ``timestamp`` in milliseconds
since the epoch, ``data`` the event (``{"userId", "eventType", ...}``) as UTF-8 JSON, AES-256-ECB
encrypted with PKCS7 padding (PKCS5 is its 8-byte-block name), base64 standard alphabet.

The string the signature covers was not found in the vendor's pages [assumed]: it is spelled in
:func:`signature` alone, so a change to it is a change to that one function (docs/api.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bff.errors import BadRequest

AES_BLOCK_BITS = 128


@dataclass(frozen=True)
class EventKeys:
    """The three keys of the tenant's WebHook set-up (``IDP_EVENTS_*``): never logged."""

    token: str = field(repr=False)
    encryption_key: str = field(repr=False)
    signature_key: str = field(repr=False)


@dataclass(frozen=True)
class SealedEvent:
    """One pushed event as it came: its ``data`` still sealed."""

    nonce: str
    timestamp: str  # milliseconds since the epoch, as sent
    event_type: str
    data: str  # base64 of the AES-256-ECB ciphertext
    signature: str  # lowercase hex of an HMAC-SHA256


def signature(keys: EventKeys, event: SealedEvent) -> str:
    """The signature the tenant sends with ``event`` [assumed, WeCom-style]:

    ``hex(HMAC-SHA256(signature_key, "\\n".join([token, timestamp, nonce, eventType, data])))``,
    the key and the string as UTF-8, the digest in lowercase hex. The one place it is spelled.
    """
    message = "\n".join([keys.token, event.timestamp, event.nonce, event.event_type, event.data])
    return hmac.new(keys.signature_key.encode(), message.encode(), hashlib.sha256).hexdigest()


def signed(keys: EventKeys, event: SealedEvent) -> bool:
    """Whether ``event`` carries its signature (compared in constant time)."""
    return hmac.compare_digest(signature(keys, event).encode(), event.signature.encode())


def open_data(keys: EventKeys, event: SealedEvent) -> dict[str, Any]:
    """The event's ``data``: base64, then AES-256-ECB with the encryption key's UTF-8 bytes,
    PKCS7 unpadded, UTF-8 JSON of an object.

    :raises BadRequest: ``data`` is not that (no detail of why: the key stays out of it).
    """
    try:
        sealed = base64.b64decode(event.data, validate=True)
        decryptor = Cipher(algorithms.AES(keys.encryption_key.encode()), modes.ECB()).decryptor()  # noqa: S305
        padded = decryptor.update(sealed) + decryptor.finalize()
        unpadder = padding.PKCS7(AES_BLOCK_BITS).unpadder()
        value = json.loads((unpadder.update(padded) + unpadder.finalize()).decode("utf-8"))
    except (binascii.Error, ValueError):  # bad base64, length, padding, UTF-8 or JSON
        raise BadRequest(message="the event's data does not decrypt to a JSON object") from None
    if not isinstance(value, dict):
        raise BadRequest(message="the event's data does not decrypt to a JSON object")
    return value
