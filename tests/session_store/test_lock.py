"""The per-openid lock and what a request does under it, against a real Redis server."""

from __future__ import annotations

import json
import time

import pytest

from bff.errors import RateLimited, RequestInProgress
from bff.limits import Counter, Hits, Rate, Scope
from bff.models import CachedSession, HandleIndex, PendingBind
from bff.observability import LOCK_LEASES_LOST
from tests.session_store.conftest import make_store

OPENID = "o_lock_test"
SESSION = CachedSession("st-1", int(time.time()) + 100, None, "alice")
PENDING = json.dumps({"state_token": "s1", "status": "SOCIAL_BIND"})


def test_reads_are_typed_and_a_read_not_asked_for_is_a_bug_not_an_absence(store, redis, prefix):
    redis.set(f"{prefix}:pending:{OPENID}", PENDING)
    with store.lock(OPENID, None, wait_s=0, read=(PendingBind, CachedSession)) as user:
        assert user.get(PendingBind) == PendingBind("s1", "SOCIAL_BIND")
        assert user.get(CachedSession) is None  # read, and absent
        with pytest.raises(LookupError, match="HandleIndex was not read"):
            user.get(HandleIndex)
    assert not redis.exists(f"{prefix}:lock:{OPENID}")  # left without a commit: released


def test_commit_writes_then_releases_in_one_delete(store, redis, prefix):
    redis.set(f"{prefix}:pending:{OPENID}", PENDING)
    with store.lock(OPENID, None, wait_s=0, read=(PendingBind,)) as user:
        assert redis.get(f"{prefix}:lock:{OPENID}")  # held while the block runs
        user.save_session(SESSION, 100)
        user.commit()
        assert user.replaced is None
    assert json.loads(redis.get(f"{prefix}:session:{OPENID}"))["session_token"] == "st-1"
    assert 99 <= redis.ttl(f"{prefix}:session:{OPENID}") <= 100
    assert not redis.exists(f"{prefix}:pending:{OPENID}", f"{prefix}:lock:{OPENID}")


def test_a_saved_session_tells_what_it_replaced(store, redis, prefix):
    redis.set(f"{prefix}:session:{OPENID}", json.dumps({**SESSION.__dict__, "id_token_sub": "bob"}))
    with store.lock(OPENID, None, wait_s=0) as user:
        user.save_session(SESSION, 100)
        user.commit()
    assert user.replaced is not None and user.replaced.id_token_sub == "bob"


def test_a_new_step_survives_the_session_that_ends_the_old_one(store, redis, prefix):
    """save_session drops the pending bind; a state token in the same answer is kept."""
    with store.lock(OPENID, None, wait_s=0) as user:
        user.save_session(SESSION, 100)
        user.save_pending(PendingBind("s2", "PASSWORD_WARN"))
        user.commit()
    assert json.loads(redis.get(f"{prefix}:pending:{OPENID}"))["state_token"] == "s2"
    assert redis.exists(f"{prefix}:session:{OPENID}")


def test_a_held_lock_answers_in_progress_after_the_wait(store, redis, prefix):
    redis.set(f"{prefix}:lock:{OPENID}", "someone-else", px=10_000)
    started = time.monotonic()
    with pytest.raises(RequestInProgress) as caught:
        with store.lock(OPENID, None, wait_s=0.2):
            pass
    assert time.monotonic() - started >= 0.2
    assert caught.value.headers == {"Retry-After": "1"}
    assert redis.get(f"{prefix}:lock:{OPENID}") == "someone-else"  # not ours to release


def test_over_a_limit_is_refused_at_once_and_the_lock_it_took_released(store, redis, prefix):
    counter = Counter("t", Scope.OPENID, OPENID, Rate(1, 60), int(time.time() // 60))
    judged = []

    def judge(counts):
        judged.append(counts)
        if counts[0] > 1:
            raise RateLimited()

    hits = Hits((counter,), judge)
    with store.lock(OPENID, hits, wait_s=0):
        pass
    with pytest.raises(RateLimited):
        with store.lock(OPENID, hits, wait_s=1):
            pytest.fail("entered over the limit")
    assert judged == [[1], [2]]
    assert not redis.exists(f"{prefix}:lock:{OPENID}")


def test_a_lock_held_past_half_its_lease_is_released_only_if_still_ours(prefix, redis):
    """Past half the lease, the release compares before it deletes: a lease that ran out and
    was taken by another request is left to that request, and counted as lost."""
    store = make_store(prefix, lease_s=0.4)
    lost = LOCK_LEASES_LOST._value.get()
    try:
        with store.lock(OPENID, None, wait_s=0) as user:
            time.sleep(0.45)  # the lease ran out
            redis.set(f"{prefix}:lock:{OPENID}", "the next request", px=10_000)
            user.commit()
        assert redis.get(f"{prefix}:lock:{OPENID}") == "the next request"
        assert LOCK_LEASES_LOST._value.get() == lost + 1
        with store.lock(f"{OPENID}2", None, wait_s=0) as user:
            time.sleep(0.25)  # past half, still ours: released by the script
            user.commit()
        assert not redis.exists(f"{prefix}:lock:{OPENID}2")
        assert LOCK_LEASES_LOST._value.get() == lost + 1
    finally:
        store.close()


def test_logout_forgets_every_handle_of_the_index(store, redis, prefix):
    for digest in ("d1", "d2"):
        redis.set(f"{prefix}:handle:{digest}", "{}")
        redis.zadd(f"{prefix}:handles:{OPENID}", {digest: time.time() + 100})
    redis.set(f"{prefix}:handle:d3", "{}")
    with store.lock(OPENID, None, wait_s=0, read=(HandleIndex,)) as user:
        assert user.get(HandleIndex) == HandleIndex(("d1", "d2"))
        user.forget("d3")
        user.commit()
    keys = [f"{prefix}:handle:{d}" for d in ("d1", "d2", "d3")]
    assert not redis.exists(*keys, f"{prefix}:handles:{OPENID}", f"{prefix}:lock:{OPENID}")
