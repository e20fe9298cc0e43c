"""Keys, value codecs and the fail-closed policy of the session store.

``Keys`` is the one place a Redis key is spelled: ``{prefix}:{kind}:{ident}``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import redis
from redis.exceptions import RedisClusterException

from bff.audit import log_held, queue_entries, take_queued
from bff.errors import SessionStoreUnavailable
from bff.limits import Counter
from bff.models import (
    CachedSession,
    HandleIndex,
    HandleRecord,
    PasswordPolicy,
    PendingBind,
    WechatIdentity,
)
from bff.observability import SESSION_STORE_ERRORS

log = logging.getLogger("bff.store")

RedisClient = redis.Redis | redis.RedisCluster


class NotReplicated(redis.RedisError):
    """Sentinel mode: the writes were not acknowledged by enough replicas in time (``WAIT``);
    a failover now could lose them, so nothing is answered as kept."""


def queue_kept(pipe: Any, replica_wait: tuple[int, int]) -> bool:
    """End a pipeline whose writes are answered as kept: the request's audit records ride
    along, then ``WAIT replicas ms`` last when ``replica_wait`` asks for replicas (whether it
    did: its answer is then the pipeline's last, for :func:`check_wait`)."""
    queue_entries(pipe, take_queued())
    if replica_wait[0]:
        pipe.execute_command("WAIT", *replica_wait)
    return bool(replica_wait[0])


def check_wait(acknowledged: Any, replica_wait: tuple[int, int]) -> None:
    """:raises NotReplicated: fewer replicas than asked acknowledged the writes."""
    if int(acknowledged) < replica_wait[0]:
        raise NotReplicated(f"{acknowledged} of {replica_wait[0]} replicas acknowledged")


def execute_kept(pipe: Any, replica_wait: tuple[int, int]) -> list[Any]:
    """:func:`queue_kept`, then the round trip, then :func:`check_wait`."""
    waited = queue_kept(pipe, replica_wait)
    results: list[Any] = pipe.execute()
    if waited:
        check_wait(results[-1], replica_wait)
    log_held()  # the events these writes keep: their audit lines now
    return results


# What a Redis or Redis Cluster call can raise when the server is gone.
STORE_ERRORS = (redis.RedisError, RedisClusterException)


class Keys:
    """The contract keys (session, pending, handle) and bff's own (handles, lock, rl, idp-event)."""

    def __init__(self, prefix: str, tenant_prefix: str | None = None) -> None:
        self._prefix = prefix
        self._tenant_prefix = tenant_prefix or prefix  # of the first app on the same tenant

    def key(self, kind: str, ident: str) -> str:
        return f"{self._prefix}:{kind}:{ident}"

    def session(self, openid: str) -> str:
        return self.key("session", openid)

    def pending(self, openid: str) -> str:
        return self.key("pending", openid)

    def handle(self, digest: str) -> str:
        return self.key("handle", digest)

    def revoked(self, digest: str) -> str:
        """The tombstone of a handle ended on purpose: it answers BFF.SESSION_REVOKED."""
        return self.key("revoked", digest)

    def subject(self, sub: str) -> str:
        """The openids whose session is of IDaaS user ``sub`` (a sorted set scored by when each
        session expires); by the subject's SHA-256, as a subject may be a user's name."""
        return self.key("subject", hashlib.sha256(sub.encode()).hexdigest()[:32])

    def audit(self) -> str:
        """The app's audit stream (bff/audit.py)."""
        return f"{self._prefix}:audit"

    def idp_event(self, nonce: str) -> str:
        """A nonce of the IdP's events already received (the replay guard), by its SHA-256."""
        return self.key("idp-event", hashlib.sha256(nonce.encode()).hexdigest()[:32])

    def handles(self, openid: str) -> str:
        """The per-openid index of handle digests (a sorted set, scored by expiry)."""
        return self.key("handles", openid)

    def lock(self, openid: str) -> str:
        return self.key("lock", openid)

    def counter(self, counter: Counter) -> str:
        """A rate-limit counter (its name: route, scope, rate, window); one of a tenant-wide
        scope (an account, a destination) under the prefix of the tenant's first app."""
        prefix = self._tenant_prefix if counter.tenant_wide else self._prefix
        return f"{prefix}:rl:{counter.name}"


@contextmanager
def fail_closed(operation: str) -> Iterator[None]:
    """A Redis error becomes ``503 BFF.SESSION_STORE_UNAVAILABLE``: never a SUCCESS whose
    session was not kept, never a guess at who is calling."""
    try:
        yield
    except STORE_ERRORS as exc:
        unavailable(operation, exc)
    except RuntimeError as exc:
        # redis-py < 6.2's cluster client iterates a dict of nodes while another greenlet's
        # topology refresh (a master failing over) changes it: the store, not bff, is in flux.
        if not _raised_in_redis(exc):
            raise
        unavailable(operation, exc)


def _raised_in_redis(exc: BaseException) -> bool:
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and f"{os.sep}redis{os.sep}" in frames[-1].filename


def unavailable(operation: str, exc: BaseException) -> None:
    """:raises SessionStoreUnavailable: counted and logged (the error's type, no message)."""
    SESSION_STORE_ERRORS.inc()
    log.warning(
        "session store unavailable",
        extra={"operation": operation, "error_type": type(exc).__name__},
    )
    raise SessionStoreUnavailable() from exc


def encode(value: CachedSession | PendingBind | WechatIdentity | HandleRecord) -> bytes:
    """A stored value: a JSON object of the value's fields (orjson: in C); a pending step
    without a password policy has no ``policy`` field (as before password steps had one)."""
    if isinstance(value, PendingBind) and value.policy is None:
        return orjson.dumps({"state_token": value.state_token, "status": value.status})
    return orjson.dumps(value)


def _object(raw: Any, what: str) -> dict[str, Any] | None:
    """A stored JSON object, or None when absent or corrupt (corrupt is logged, then ignored)."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        log.warning("corrupt value in session store", extra={"kind": what})
        return None
    return value


def decode_session(raw: Any) -> CachedSession | None:
    value = _object(raw, "session")
    if value is None:
        return None
    token, expire_at = value.get("session_token"), value.get("expire_at")
    unionid, sub = value.get("unionid"), value.get("id_token_sub")
    id_token, exp = value.get("id_token"), value.get("id_token_exp")
    if (
        not isinstance(token, str)
        or not isinstance(expire_at, int)
        or not all(isinstance(v, str | None) for v in (unionid, sub, id_token))
    ):
        log.warning("corrupt value in session store", extra={"kind": "session"})
        return None
    exp = exp if isinstance(exp, int) and id_token else None  # a session kept before it had one
    return CachedSession(token, expire_at, unionid, sub, id_token if exp else None, exp)


def decode_pending(raw: Any) -> PendingBind | None:
    value = _object(raw, "pending")
    if value is None or not isinstance(value.get("state_token"), str):
        return None
    return PendingBind(
        value["state_token"], str(value.get("status") or ""), _policy(value.get("policy"))
    )


def _policy(value: Any) -> PasswordPolicy | None:
    if not isinstance(value, dict):
        return None

    def number(name: str) -> int | None:
        found = value.get(name)
        return found if isinstance(found, int) and not isinstance(found, bool) else None

    pattern = value.get("pattern")
    return PasswordPolicy(
        number("min_length"), number("max_length"), pattern if isinstance(pattern, str) else None
    )


def decode_handle(raw: Any) -> HandleRecord | None:
    """A handle's record; one kept before it named its device has only whose it is."""
    value = _object(raw, "handle")
    if value is None or not isinstance(value.get("openid"), str):
        return None

    def text(name: str) -> str | None:
        found = value.get(name) if value else None
        return found if isinstance(found, str) else None

    def number(name: str) -> int:
        found = value.get(name) if value else None
        return int(found) if isinstance(found, int | float) and not isinstance(found, bool) else 0

    return HandleRecord(
        value["openid"],
        text("unionid"),
        number("issued_at"),
        number("last_used"),
        text("device_os"),
        text("agent"),
        text("fingerprint"),
        text("ip"),
    )


def decode_index(raw: Any) -> HandleIndex:
    """The members of a handle index (a sorted set; none when it is absent)."""
    return HandleIndex(tuple(raw or ()))


def ok(result: Any, what: str) -> Any:
    """A command's result from a pipeline run with ``raise_on_error=False``; a Redis error in it
    fails the request closed."""
    if isinstance(result, Exception):
        unavailable(what, result)
    return result
