"""Events the IDaaS tenant pushes (its WebHook): a user disabled, deleted, their password changed
or their WeChat unbound ends every session of that user, in every app, before the answer.

The checks run in this order, each refusing with nothing changed: the security token and the
signature, the timestamp (within ``IDP_EVENTS_MAX_AGE_S`` of now), the nonce (never seen in twice
that); only then is the event's data opened. Refused or failed after the nonce, the event gives
its nonce back, so that the tenant's retry is not a replay. The scheme itself is
:mod:`bff.idp_events`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from bff.errors import BffError, NotFound, Unauthenticated
from bff.flows.common import audit_event
from bff.flows.devices import revoke_subject
from bff.idp_events import EventKeys, SealedEvent, epoch_seconds, open_data, signed, subject_of
from bff.observability import note_outcome
from bff.services import Deployment
from bff.settings import Settings

log = logging.getLogger("bff.idp_events")

# The events after which the user must sign in again (IDAAS.md §7 [doc]); any other is noted.
ENDS_SESSIONS = frozenset({"USER_DISABLE", "USER_DELETE", "USER_UPDATE_PWD", "USER_SOCIAL_UNBIND"})


@dataclass(frozen=True)
class EventReceipt:
    """What the receiver answers: the event was taken, and how many sessions (openids) ended."""

    received: bool
    event_type: str
    ended_sessions: int


def event_keys(settings: Settings) -> EventKeys | None:
    """The receiver's keys; None when it is off (not all three ``IDP_EVENTS_*`` keys set)."""
    token = settings.idp_events_token
    encryption, signature = settings.idp_events_encryption_key, settings.idp_events_signature_key
    if not (token and encryption and signature):
        return None
    return EventKeys(token, encryption, signature)


def receive_event(
    deployment: Deployment, token: str | None, body: Mapping[str, str]
) -> EventReceipt:
    """Check the event in ``body`` (its five fields, loaded: ``nonce``, ``timestamp``,
    ``event``, ``data``, ``sign``) sent with ``token`` (the request's ``Authorization: Bearer``)
    and act on it, in the order the module's docstring gives.

    :raises NotFound: the receiver is off.
    :raises Unauthenticated: a bad signature, a stale timestamp or a spent nonce.
    :raises BadRequest: the data does not open, or names no user.
    :raises SessionStoreUnavailable: Redis is down (nothing is acted on).
    """
    keys = event_keys(deployment.settings)
    if keys is None:
        raise NotFound()
    event = SealedEvent(body["nonce"], body["timestamp"], body["event"], body["data"], body["sign"])
    _admit(deployment, keys, token, event)  # the nonce is spent from here on
    try:
        return _act(deployment, keys, event)
    except BaseException:  # data that does not open, a lock held throughout, Redis gone: the
        with contextlib.suppress(BffError):  # tenant's retry must not be refused as a replay
            deployment.default.store.release_event_nonce(event.nonce)
        raise


def _act(deployment: Deployment, keys: EventKeys, event: SealedEvent) -> EventReceipt:
    clear = open_data(keys, event)
    note_outcome("IDP_EVENT")
    if event.event_type not in ENDS_SESSIONS:
        audit_event(deployment.default, "idp_event", event.event_type)  # noted, nothing ended
        return EventReceipt(True, event.event_type, 0)
    subject = subject_of(clear)
    ended = len(revoke_subject(deployment, subject, why=event.event_type))
    audit_event(
        deployment.default, "idp_event", event.event_type, subject=subject, ended_sessions=ended
    )
    return EventReceipt(True, event.event_type, ended)


def _admit(deployment: Deployment, keys: EventKeys, token: str | None, event: SealedEvent) -> None:
    """The token and the signature, then the timestamp, then the nonce (spent by this call).

    :raises Unauthenticated: logged as a warning with the event type only.
    """
    refused = None
    max_age_s = deployment.settings.idp_events_max_age_s
    if not signed(keys, token, event):
        refused = "bad signature", "the event's token or signature does not match"
    elif abs(time.time() - epoch_seconds(event.timestamp)) > max_age_s:
        refused = "stale", f"the event's timestamp is not within {max_age_s} s of now"
    elif not deployment.default.store.claim_event_nonce(event.nonce, 2 * max_age_s):
        refused = "replayed", "this event was already received (its nonce is spent)"
    if refused is not None:
        log.warning("IdP event refused: %s", refused[0], extra={"event_type": event.event_type})
        raise Unauthenticated(message=refused[1])
