"""Rotating the gateway secret under gunicorn refuses no request: two gateways call without a
pause while the operator walks through docs/operations.md's steps (secrets in files, a SIGHUP per
step), and bff_gateway_secret_previous_total and the request lines show the gateway still on the
old secret until it moves."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import requests

from bff.observability import hash_openid
from tests.support.app import DEVICE
from tests.support.gunicorn import Gunicorn, gunicorn_env

OLD, NEW = "old-gateway-secret-0123456789", "new-gateway-secret-9876543210"
LOG_HASH_KEY = "rotation-log-hash-key"
METRIC = re.compile(r"^bff_gateway_secret_previous_total (\S+)$", re.M)


class Gateway(threading.Thread):
    """A gateway calling bff without a pause, each call with its secret and the openid of the
    current step (set together: one tuple), each answer kept as (step, gateway, secret, status)."""

    def __init__(self, name: str, base: str, answers: list[tuple[int, str, str, object]]) -> None:
        super().__init__(daemon=True)
        self.name, self.base, self.answers = name, base, answers
        self.current = (OLD, 0)  # one attribute: the thread never sees half of a change
        self.running = True

    def set(self, secret: str | None = None, step: int | None = None) -> None:
        old_secret, old_step = self.current
        self.current = (secret or old_secret, old_step if step is None else step)

    def run(self) -> None:
        while self.running:
            secret, step = self.current
            headers = {
                "X-WX-OPENID": f"o_{self.name}_{step}",
                "X-Gateway-Secret": secret,
                "Connection": "close",
                **DEVICE,
            }
            try:
                resp = requests.get(self.base + "/api/v1/session", headers=headers, timeout=10)
                status: object = resp.status_code
            except requests.RequestException as exc:
                status = type(exc).__name__
            self.answers.append((step, self.name, secret, status))
            time.sleep(0.01)


def _counted(server: Gunicorn) -> float:
    found = METRIC.search(requests.get(server.base + "/metrics", timeout=10).text)
    return float(found.group(1)) if found else 0.0


def _flagged(log: Path) -> set[tuple[str, int]]:
    """(gateway, step) of every request line with gateway_secret_previous."""
    who = {hash_openid(LOG_HASH_KEY.encode(), f"o_{g}_{s}"): (g, s) for g in "ab" for s in range(5)}
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    return {
        who[x["openid_hash"]]
        for x in lines
        if x.get("message") == "request" and x.get("gateway_secret_previous")
    }


def _step(gateways: list[Gateway], step: int, seconds: float = 1.5) -> None:
    for gateway in gateways:
        gateway.set(step=step)
    time.sleep(seconds)


def test_rotating_the_gateway_secret_refuses_no_request(
    tmp_path, idaas_server, wechat_server, key_prefix
):
    current, previous = tmp_path / "gateway-secret", tmp_path / "gateway-secret-previous"
    current.write_text(OLD + "\n")
    previous.write_text("")  # the slot stays mounted, empty between rotations
    env = gunicorn_env(
        idaas_server,
        wechat_server,
        "redis://127.0.0.1:6379/0",
        key_prefix + "rot",
        IDENTITY_SOURCE="gateway",
        GATEWAY_SECRET_FILE=str(current),
        GATEWAY_SECRET_PREVIOUS_FILE=str(previous),
        LOG_HASH_KEY=LOG_HASH_KEY,
        RATE_LIMIT_SESSION="100000/minute",
        GUNICORN_DRAIN_S="0",
    )
    server = Gunicorn(env, tmp_path / "server.log").start()
    answers: list[tuple[int, str, str, object]] = []
    a, b = Gateway("a", server.base, answers), Gateway("b", server.base, answers)
    counts = []
    try:
        a.start(), b.start()
        _step([a, b], 0)  # before: one secret, both gateways on it
        counts.append(_counted(server))
        # 1. bff: previous = old, current = new; reload. The gateways still send the old one.
        previous.write_text(OLD + "\n")
        current.write_text(NEW + "\n")
        for gateway in (a, b):
            gateway.set(step=1)
        server.reload()
        _step([a, b], 1)
        counts.append(_counted(server))
        # 2. the gateways move, one at a time: b first, a still on the old secret ...
        b.set(NEW, 2)
        _step([a], 2)
        counts.append(_counted(server))
        # ... then a. From now on nobody presents the old secret: the counter stops.
        a.set(NEW, 3)
        b.set(step=3)
        time.sleep(0.5)  # what a sent with the old secret has been answered
        settled = _counted(server)
        _step([a, b], 3)
        counts.append(_counted(server))
        # 3. remove the previous secret; reload. The old secret is refused from then on.
        previous.write_text("")
        for gateway in (a, b):
            gateway.set(step=4)
        server.reload()
        _step([a, b], 4)
        old = {"X-WX-OPENID": "o_old", "X-Gateway-Secret": OLD, **DEVICE}
        assert (
            requests.get(server.base + "/api/v1/session", headers=old, timeout=10).status_code
            == 401
        )
    finally:
        a.running = b.running = False
        a.join(15), b.join(15)
        server.stop()
    refused = [x for x in answers if x[3] == 401 or not isinstance(x[3], int)]
    assert not refused, refused[:10]
    assert {x[3] for x in answers} == {200}, {x[3] for x in answers}
    for step in range(5):
        assert {(g, s) for s, g, _, _ in answers if s == step} == {("a", step), ("b", step)}
    assert counts[0] == 0 and counts[0] < counts[1] < counts[2], counts  # steps 1 and 2 count
    assert settled == counts[3], (settled, counts)  # step 3: no gateway on the old secret
    flagged = _flagged(server.log_path)
    assert ("a", 2) in flagged and flagged & {("a", 1), ("b", 1)}, flagged
    assert not flagged & {("a", 0), ("b", 0), ("b", 2), ("a", 3), ("b", 3), ("a", 4), ("b", 4)}
    assert len(answers) > 200, len(answers)
