"""Several instances, one store, faults (the short form; ``make faults`` runs the long one).

Three bff instances (gunicorn, 2 workers each) on one Redis Cluster (three masters, a replica
each) behind a real nginx balancing them (config/nginx/forward-auth.conf); six threads sign new
users in (wechat/session, login, bind), refresh and make forward-auth checks through nginx.
Mid-load one instance is SIGKILLed (master and workers), then one Redis master (its replica
takes over). Afterwards:

- every answer is 2xx, or 401/403/409/429/502/503/504 in the one envelope (never nginx's own
  page, never a connection error or a hang);
- every bind that answered SUCCESS has its ``{prefix}:session:{openid}`` in the cluster;
- no state_token reached the IDaaS's bind twice, whichever instances served the flow;
- sign-ins succeed again after both faults, on the two survivors.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.support.app import PASSWORD
from tests.support.cluster_stack import (
    ClusterStack,
    Traffic,
    lost_sessions,
    outcomes,
    state_tokens_sent_twice,
    throughput,
    undocumented,
)
from tests.support.nginx import nginx_binary
from tests.support.processes import require_binary


@pytest.fixture
def stack(tmp_path, idaas_server, wechat_server, key_prefix) -> Iterator[ClusterStack]:
    nginx_binary()
    require_binary("redis-cli")
    idaas_server.reset_state()
    idaas_server.add_user("alice", PASSWORD)
    built = ClusterStack(tmp_path, idaas_server, wechat_server, key_prefix + "mi").start()
    yield built
    built.close()


def test_an_instance_and_a_redis_master_killed_under_load(stack, idaas_server, capsys):
    traffic = Traffic(stack, threads=6).start()
    try:
        time.sleep(4)
        killed_at = time.monotonic()
        stack.kill_instance(1)
        time.sleep(3)
        stack.kill_master()
        failover_s = stack.cluster.wait_ok(timeout=30)
        recovered = time.monotonic()
        time.sleep(4)
    finally:
        traffic.finish()
    end = time.monotonic()
    answers = traffic.answers
    seen = outcomes(answers)
    assert undocumented(answers) == [], seen
    assert lost_sessions(stack, traffic.successes) == [], seen
    assert state_tokens_sent_twice(idaas_server) == {}, seen
    binds_after = [a for a in answers if a.kind == "bind" and a.at > recovered + 1]
    assert any(a.status == 200 and a.body.get("status") == "SUCCESS" for a in binds_after), seen
    assert len(stack.live_instances()) == 2
    start = min(a.at for a in answers)
    with capsys.disabled():  # figures, not asserted: the machine is shared
        print(
            f"\n[instances] {len(answers)} answers, {len(traffic.successes)} sign-ins; "
            f"2xx/s before the kill {throughput(answers, start, killed_at):.0f}, "
            f"after the failover ({failover_s:.1f} s) {throughput(answers, recovered, end):.0f}"
            f"\n[instances] {seen}"
        )
