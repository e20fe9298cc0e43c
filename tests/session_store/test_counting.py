"""Rate-limit counters: one INCR each, and an expiry from the moment a counter exists."""

from __future__ import annotations

import time

import pytest

from bff.limits import Counter, Hits, Rate, Scope

WINDOW_S = 60


def _hits(*idents: str, judged: list | None = None) -> Hits:
    window = int(time.time() // WINDOW_S)
    found = tuple(Counter("t", Scope.IP, i, Rate(5, WINDOW_S), window) for i in idents)
    return Hits(found, (judged if judged is not None else []).append)


def _key(prefix: str, counter: Counter) -> str:
    return f"{prefix}:rl:{counter.name}"


def test_every_counter_has_its_window_as_expiry(store, redis, prefix):
    judged: list = []
    hits = _hits("192.0.2.1", "192.0.2.2", judged=judged)
    store.count(hits)
    store.count(hits)
    assert judged == [[1, 1], [2, 2]]
    for counter in hits.counters:
        assert redis.get(_key(prefix, counter)) == "2"
        assert redis.expiretime(_key(prefix, counter)) == counter.ends_at
        assert counter.name.endswith(f":5/60s:{counter.window}")


def test_a_counter_gone_from_redis_gets_its_expiry_back(store, redis, prefix):
    """Evicted, or lost in a failover: the worker knew it, so it sent INCR alone; the INCR made
    it anew without an expiry, and the next round trip gives it back."""
    hits = _hits("192.0.2.3")
    store.count(hits)
    redis.delete(_key(prefix, hits.counters[0]))
    store.count(hits)
    assert redis.get(_key(prefix, hits.counters[0])) == "1"
    assert redis.expiretime(_key(prefix, hits.counters[0])) == hits.counters[0].ends_at


@pytest.mark.parametrize("window_s", [60, 900, 86400])
def test_windows_are_aligned_to_the_clock(window_s):
    now = 1_700_000_123.5
    counter = Counter("t", Scope.OPENID, "o", Rate(1, window_s), int(now // window_s))
    assert counter.ends_at % window_s == 0 and 0 < counter.ends_at - now <= window_s
    assert counter.seconds_left(now) == int(counter.ends_at - now) + 1
