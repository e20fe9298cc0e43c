"""bff.services: the clients each worker builds, against a Redis server of the test's own."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import redis as redis_lib

from bff.errors import SessionStoreUnavailable
from bff.services import Services, build_services
from bff.settings import REDIS_MAX_CONNECTIONS, load_settings
from tests.support.processes import RedisProcess

CALLERS = 150  # requests in one gevent worker reaching Redis at once (it serves up to 1000)


@pytest.fixture(scope="module")
def own_redis() -> Iterator[RedisProcess]:
    proc = RedisProcess().start()
    yield proc
    proc.close()


def test_more_callers_than_pooled_connections_wait_for_one_and_redis_sees_the_bound(own_redis):
    """redis-py 8 caps a default pool at 100 connections and raises past it: a gevent worker
    with more requests than that at Redis at once answered 503 to the rest. bff's pool is
    bounded (Redis's maxclients is shared by every worker) and a caller waits for a free one."""
    services = build_services(
        load_settings(
            {
                "IDAAS_BASE_URL": "https://tenant.example.com",
                "IDAAS_CLIENT_ID": "cid",
                "REDIS_URL": own_redis.url,
                "WECHAT_APPID": "wxapp",
                "WECHAT_SECRET": "wxsecret",
            }
        )
    )
    failures, clients = crowd(services, redis_lib.Redis.from_url(own_redis.url))
    assert failures == []
    assert 0 < clients <= REDIS_MAX_CONNECTIONS


def crowd(services: Services, admin: redis_lib.Redis) -> tuple[list[str], int]:
    """``CALLERS`` handle checks at once while ``admin`` (the master) pauses its clients: the
    failures, and how many connections bff had open on the master. Closes both."""
    failures: list[str] = []
    start = threading.Barrier(CALLERS + 1)

    def call() -> None:
        start.wait()
        try:
            services.store.handles.authenticate("0" * 64)
        except SessionStoreUnavailable as exc:
            failures.append(repr(exc.__cause__ or exc))

    threads = [threading.Thread(target=call) for _ in range(CALLERS)]
    for thread in threads:
        thread.start()
    try:
        admin.execute_command("CLIENT", "PAUSE", 300, "ALL")  # every caller now holds its turn
        start.wait()
        for thread in threads:
            thread.join(timeout=10)
        listed = admin.client_list()  # not counting admin, a replica's link, a sentinel's
        ours = [
            c for c in listed if "S" not in c["flags"] and not c["name"].startswith("sentinel-")
        ]
        clients = len(ours) - 1
    finally:
        services.close()
        admin.close()
    return failures, clients
