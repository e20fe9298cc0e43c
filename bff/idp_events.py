"""The IDaaS tenant's WebHook (CIAM "events"): how one pushed event is signed and sealed. No Flask.

The tenant's set-up names three keys: a security token (32+ characters), an encryption key (32
characters) and a signature key (32+) [doc]. Its vendor's CIAM pages [doc] give the rest: the
token as ``Authorization: Bearer {token}``; the body ``{"nonce", "timestamp" (an integer),
"event", "data", "sign"}``, where ``data`` is base64 of AES/ECB/PKCS5Padding (PKCS7 on AES's
16-byte blocks) with the encryption key's UTF-8 bytes, decrypting to the user id, and ``sign`` is
base64 of HMAC-SHA256 with the signature key over ``nonce&timestamp&event&data``. The OEM names
the fields ``eventType`` and ``signature`` [oem]: both spellings are read.

The signature is spelled in :func:`signature` alone, so a change to it is a change to that one
function (docs/api.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass, field

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
    timestamp: str  # the integer as sent (seconds or milliseconds since the epoch)
    event_type: str
    data: str  # base64 of the AES-256-ECB ciphertext
    signature: str  # base64 of an HMAC-SHA256


def signature(keys: EventKeys, event: SealedEvent) -> str:
    """The signature the tenant sends with ``event`` [doc, the vendor's CIAM WebHook appendix]:

    ``base64(HMAC-SHA256(signature_key, nonce + "&" + timestamp + "&" + event + "&" + data))``,
    the key and the string as UTF-8, ``data`` as sent (the ciphertext). The one place it is spelled.
    """
    message = "&".join([event.nonce, event.timestamp, event.event_type, event.data])
    digest = hmac.digest(keys.signature_key.encode(), message.encode(), hashlib.sha256)
    return base64.b64encode(digest).decode()


def signed(keys: EventKeys, token: str | None, event: SealedEvent) -> bool:
    """Whether the request carries the security token (``token``: its ``Authorization: Bearer``)
    and ``event`` its signature; both compared in constant time."""
    token_ok = hmac.compare_digest((token or "").encode(), keys.token.encode())
    return (
        hmac.compare_digest(signature(keys, event).encode(), event.signature.encode()) and token_ok
    )


def epoch_seconds(timestamp: str) -> float:
    """An event's ``timestamp`` in seconds: the vendor's sample is in seconds, the OEM's in
    milliseconds; 12 digits or more is read as milliseconds (after the year 5138 in seconds)."""
    value = int(timestamp)
    return value / 1000 if value >= 10**11 else float(value)


def open_data(keys: EventKeys, event: SealedEvent) -> str:
    """The event's ``data`` in clear: base64, then AES-256-ECB with the encryption key's UTF-8
    bytes, PKCS7 unpadded, UTF-8 text (the user id, by the vendor's page).

    :raises BadRequest: ``data`` is not that (no detail of why: the key stays out of it).
    """
    try:
        sealed = base64.b64decode(event.data, validate=True)
        cipher = Cipher(algorithms.AES(keys.encryption_key.encode()), modes.ECB())  # noqa: S305
        decryptor = cipher.decryptor()
        padded = decryptor.update(sealed) + decryptor.finalize()
        unpadder = padding.PKCS7(AES_BLOCK_BITS).unpadder()
        return (unpadder.update(padded) + unpadder.finalize()).decode("utf-8")
    except (binascii.Error, ValueError):  # bad base64, length, padding or UTF-8
        raise BadRequest(message="the event's data does not decrypt") from None


def subject_of(clear: str) -> str:
    """The IDaaS user an event's clear ``data`` names: the text itself (the vendor's page: "the
    user id"), or ``userId`` where it is a JSON object (as some set-ups send).

    :raises BadRequest: it names no user.
    """
    try:
        parsed = json.loads(clear)
    except ValueError:
        parsed = None
    value = parsed.get("userId") if isinstance(parsed, dict) else clear
    if not isinstance(value, str) or not value.strip() or len(value) > 256:
        raise BadRequest(message="the event's data names no user")
    return value
