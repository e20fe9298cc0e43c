"""The IdP's WebHook end to end over real sockets: the bundled IDaaS simulator pushes an event
(``IdaasSimulator.send_event``, the vendor's documented scheme) to bff under gunicorn (two
workers). A signed USER_DISABLE ends the user's sessions from both WeChat accounts bound to it;
the same body again is a replay, refused; a forged one changes nothing."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
import requests

from bff_simulators.idaas import IdaasSimulator
from bff_simulators.webhook import seal_event
from bff_simulators.wechat import WeChatSimulator
from tests.support.app import DEVICE, REDIS_URL
from tests.support.gunicorn import Gunicorn, gunicorn_env
from tests.support.idp_events import ENCRYPTION_KEY, IDP_ENV, SIGNATURE_KEY, TOKEN

EVENTS = "/api/v1/idp/events"
KEYS = {"security_token": TOKEN, "encryption_key": ENCRYPTION_KEY, "signature_key": SIGNATURE_KEY}


@pytest.fixture(scope="module")
def bff_base(
    tmp_path_factory, idaas_server, wechat_server, key_prefix, redis_server
) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("idp_events")
    prefix = key_prefix + "ie"
    env = gunicorn_env(
        idaas_server,
        wechat_server,
        REDIS_URL,
        prefix,
        HOME=str(tmp / "home"),
        LOG_LEVEL="INFO",
        RATE_LIMIT_SESSION="100000/minute",
        **IDP_ENV,
    )
    assert len(ENCRYPTION_KEY) == 32
    server = Gunicorn(env, tmp / "server.log").start()
    try:
        yield server.base
    finally:
        server.stop()
        for key in redis_server.scan_iter(f"{prefix}*"):
            redis_server.delete(key)


def _signed_in(base: str, wechat: WeChatSimulator, openid: str, user: str) -> str:
    """A mini program's sign-in as ``user`` from the WeChat account ``openid``: its handle."""
    s = requests.Session()
    r = s.post(
        base + "/api/v1/wechat/session",
        json={"wx_code": wechat.issue_code(openid)},
        headers=DEVICE,
        timeout=10,
    )
    assert r.status_code == 201, r.text
    h = {"Authorization": f"Bearer {r.json()['handle']}", **DEVICE}
    r = s.post(base + "/api/v1/login", json={"code": wechat.issue_code(openid)}, headers=h)
    assert r.json()["status"] == "SOCIAL_BIND", r.text
    body = {"user_name": user, "password": "pw-" + user}
    r = s.post(base + "/api/v1/bind/username-password", json=body, headers=h, timeout=10)
    assert r.json().get("status") == "SUCCESS", r.text
    return h["Authorization"].removeprefix("Bearer ")


def _session(base: str, handle: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {handle}", **DEVICE}
    return requests.get(base + "/api/v1/session", headers=headers, timeout=10)


def _revoked(resp: requests.Response) -> bool:
    return resp.status_code == 401 and resp.json()["error_code"] == "BFF.SESSION_REVOKED"


def test_a_pushed_user_disable_ends_both_sessions_and_a_replay_or_forgery_is_refused(
    bff_base: str, idaas_sim: IdaasSimulator, wechat_sim: WeChatSimulator
) -> None:
    """``idaas_sim``/``wechat_sim``: the session's simulators (bff's upstreams), reset."""
    idaas_server, wechat_server = idaas_sim, wechat_sim
    user = "alice-" + secrets.token_hex(4)
    idaas_server.add_user(user, "pw-" + user)
    tag = secrets.token_hex(4)
    handles = [_signed_in(bff_base, wechat_server, f"o_ie_{n}_{tag}", user) for n in (1, 2)]
    assert all(_session(bff_base, h).status_code == 200 for h in handles)

    resp = idaas_server.send_event(f"{bff_base}{EVENTS}", "USER_DISABLE", user, **KEYS)
    assert resp.status_code == 200, resp.text
    assert resp.json()["event_type"] == "USER_DISABLE" and resp.json()["ended_sessions"] >= 2
    assert all(_revoked(_session(bff_base, h)) for h in handles)
    sent = resp.request
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"

    # Signed in again after the event: a replay of the very same request must not end it.
    again = _signed_in(bff_base, wechat_server, f"o_ie_3_{tag}", user)
    replay = requests.post(
        sent.url,
        data=sent.body,
        headers={k: sent.headers[k] for k in ("Authorization", "Content-Type")},
        timeout=10,
    )
    assert replay.status_code == 401, replay.text
    assert replay.json()["error_code"] == "BFF.UNAUTHENTICATED"
    assert _session(bff_base, again).status_code == 200

    # A body sealed with a guessed signature key: refused, nothing changed.
    forged = idaas_server.send_event(
        f"{bff_base}{EVENTS}",
        "USER_DISABLE",
        user,
        **{**KEYS, "signature_key": "guessed-" + "k" * 32},
    )
    assert forged.status_code == 401 and forged.json()["error_code"] == "BFF.UNAUTHENTICATED"
    assert _session(bff_base, again).status_code == 200
    # ... and so is a good signature under a wrong token.
    body = seal_event("USER_DISABLE", idaas_server.subject_of(user), **KEYS)
    wrong = requests.post(
        f"{bff_base}{EVENTS}", json=body, headers={"Authorization": "Bearer nope"}, timeout=10
    )
    assert wrong.status_code == 401
    assert _session(bff_base, again).status_code == 200
