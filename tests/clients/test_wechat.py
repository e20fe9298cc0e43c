"""The WeChat client: code2Session's error codes, faults, the busy retry and timeouts."""

from __future__ import annotations

import pytest

WECHAT_ERRORS = [
    (40029, 400, "BFF.WECHAT_CODE_INVALID"),
    (40163, 400, "BFF.WECHAT_CODE_INVALID"),
    (45011, 429, "BFF.RATE_LIMITED"),
    (40226, 502, "BFF.UPSTREAM_BAD_RESPONSE"),
    (40125, 502, "BFF.UPSTREAM_BAD_RESPONSE"),
]


@pytest.mark.parametrize(("errcode", "status", "code"), WECHAT_ERRORS)
def test_wechat_errcodes(client, wechat_sim, redis, key_prefix, errcode, status, code):
    handles = set(redis.scan_iter(f"{key_prefix}:handle:*", count=1000))
    wechat_sim.fail_next(errcode)
    resp = client.post("/api/v1/wechat/session", json={"wx_code": wechat_sim.issue_code("o_e")})
    assert resp.status_code == status and resp.json["error_code"] == code
    assert set(redis.scan_iter(f"{key_prefix}:handle:*", count=1000)) == handles


def test_wechat_busy_is_retried_once(client, wechat_sim):
    wechat_sim.fail_next(-1)
    resp = client.post("/api/v1/wechat/session", json={"wx_code": wechat_sim.issue_code("o_b")})
    assert resp.status_code == 201
    assert len([r for r in wechat_sim.requests if r.path == "/sns/jscode2session"]) == 2


def test_wechat_busy_twice_is_503(client, wechat_sim):
    wechat_sim.fail_next(-1, count=2)
    resp = client.post("/api/v1/wechat/session", json={"wx_code": wechat_sim.issue_code("o_b")})
    assert resp.status_code == 503 and resp.json["error_code"] == "BFF.UPSTREAM_UNAVAILABLE"


@pytest.mark.parametrize(("kind", "status"), [("status500", 502), ("garbage", 502), ("reset", 503)])
def test_wechat_faults(client, wechat_sim, kind, status):
    wechat_sim.add_fault(kind)
    resp = client.post("/api/v1/wechat/session", json={"wx_code": wechat_sim.issue_code("o_f")})
    assert resp.status_code == status


def test_wechat_timeout_is_504_not_retried(fast_client, wechat_sim):
    wechat_sim.add_fault("latency", seconds=1.0)
    resp = fast_client.post(
        "/api/v1/wechat/session", json={"wx_code": wechat_sim.issue_code("o_t")}
    )
    assert resp.status_code == 504 and resp.json["error_code"] == "BFF.UPSTREAM_TIMEOUT"
    assert len(wechat_sim.requests) == 1


@pytest.mark.parametrize(
    ("openid", "unionid"),
    [("o bad", None), ("o_ok", "u/../x"), ("o:" + "x" * 10, None), ("x" * 129, None), ("o_ok", "")],
)
def test_an_openid_wechat_should_never_send_is_502_and_no_handle(
    client, wechat_sim, redis, key_prefix, openid, unionid
):
    """An openid becomes part of Redis keys: code2Session's is checked like the gateway's,
    whoever vouches for it."""
    handles = set(redis.scan_iter(f"{key_prefix}:handle*", count=1000))
    resp = client.post(
        "/api/v1/wechat/session", json={"wx_code": wechat_sim.issue_code(openid, unionid)}
    )
    if unionid == "":  # WeChat leaves unionid out, or empty: no unionid, not a bad one
        assert resp.status_code == 201
        return
    assert resp.status_code == 502 and resp.json["error_code"] == "BFF.UPSTREAM_BAD_RESPONSE"
    assert set(redis.scan_iter(f"{key_prefix}:handle*", count=1000)) == handles
