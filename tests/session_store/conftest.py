"""A SessionStore on the real Redis server, under a key prefix of the test's own."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
import redis as redis_lib

from bff.session_store import SessionStore
from tests.support.app import REDIS_URL


@pytest.fixture
def prefix(key_prefix: str) -> str:
    return f"{key_prefix}st{secrets.token_hex(3)}"


def make_store(prefix: str, lease_s: float = 35.0) -> SessionStore:
    client = redis_lib.Redis.from_url(REDIS_URL, decode_responses=True, socket_timeout=5)
    return SessionStore(client, prefix, state_ttl_s=600, handle_ttl_s=3600, lock_lease_s=lease_s)


@pytest.fixture
def store(prefix: str, redis_server: redis_lib.Redis) -> Iterator[SessionStore]:
    built = make_store(prefix)
    yield built
    built.close()
