"""error_msg in the user's language (X-L, else Accept-Language, else DEFAULT_LANGUAGE), through
the app: bff's own codes translated, the IDaaS's messages passed on untouched."""

from __future__ import annotations

import secrets

import pytest

from bff.errors import CODES
from bff.messages import MESSAGES
from tests.support.app import DEVICE

ZH = {**DEVICE, "X-L": "zh"}
EN = {**DEVICE, "X-L": "en"}


def _msg(resp, status, code):
    assert resp.status_code == status, resp.json
    assert resp.json["error_code"] == code
    return resp.json["error_msg"]


@pytest.mark.parametrize(("headers", "lang"), [(ZH, "zh"), (EN, "en")])
def test_bff_codes_answer_in_the_requested_language(auth, headers, lang):
    def expect(resp, status, code):
        assert _msg(resp, status, code) == MESSAGES[code][lang]

    client = auth.client
    expect(client.get("/api/v1/nope", headers=headers), 404, "BFF.NOT_FOUND")
    expect(client.put("/api/v1/login", headers=headers), 405, "BFF.METHOD_NOT_ALLOWED")
    resp = client.post(
        "/api/v1/wechat/session", data="x", content_type="text/plain", headers=headers
    )
    expect(resp, 415, "BFF.UNSUPPORTED_MEDIA_TYPE")
    signed = auth.headers(**headers)
    expect(client.post("/api/v1/session/refresh", headers=signed), 401, "BFF.SESSION_EXPIRED")
    body = {"user_name": "alice", "password": "x"}
    resp = client.post("/api/v1/bind/username-password", json=body, headers=signed)
    expect(resp, 409, "BFF.NO_PENDING_BIND")


def test_validation_in_chinese_keeps_the_field_names(auth):
    auth.pending_bind()
    resp = auth.client.post("/api/v1/bind/username-password", json={}, headers=auth.headers())
    assert _msg(resp, 400, "BFF.VALIDATION") == "请求参数有误"
    assert "user_name" in resp.json["errors"]  # the per-field detail: API names, as before
    resp = auth.client.post(
        "/api/v1/bind/username-password",
        data="{",
        content_type="application/json",
        headers=auth.headers(),
    )
    assert _msg(resp, 400, "BFF.VALIDATION") == "请求体不是有效的 JSON"
    resp = auth.client.post(
        "/api/v1/login",
        json={"code": auth.wx_code()},
        headers={**auth.headers(), "X-agent": "\x01"},
    )
    assert _msg(resp, 400, "BFF.VALIDATION") == "设备请求头缺失或无效"
    assert set(resp.json["errors"]) == {"X-agent"}


def test_validation_in_english_is_as_before(auth):
    auth.pending_bind()
    resp = auth.client.post("/api/v1/bind/username-password", json={}, headers=auth.headers(**EN))
    assert _msg(resp, 400, "BFF.VALIDATION") == CODES["BFF.VALIDATION"][1]
    resp = auth.client.post(
        "/api/v1/bind/username-password",
        data="{",
        content_type="application/json",
        headers=auth.headers(**EN),
    )
    assert _msg(resp, 400, "BFF.VALIDATION") == "the body is not valid JSON"


def test_unauthenticated_before_the_device_headers_are_read(client):
    resp = client.post("/api/v1/login", json={}, headers=ZH)  # no handle
    assert (
        _msg(resp, 401, "BFF.UNAUTHENTICATED") == "缺少 Authorization: Bearer <handle> 或格式有误"
    )
    resp = client.post("/api/v1/login", json={}, headers=EN)
    assert _msg(resp, 401, "BFF.UNAUTHENTICATED") == (
        "missing or malformed Authorization: Bearer <handle>"
    )
    resp = client.get("/api/v1/auth", headers={"X-L": "zh-CN"})  # forward-auth refusal
    assert resp.headers["X-BFF-Error"] == "BFF.UNAUTHENTICATED"
    assert (
        _msg(resp, 401, "BFF.UNAUTHENTICATED") == "缺少 Authorization: Bearer <handle> 或格式有误"
    )


@pytest.mark.parametrize(
    ("headers", "lang"),
    [
        ({"X-L": "zh-CN"}, "zh"),
        ({"X-L": "zh_TW"}, "zh"),
        ({"X-L": "zh-Hans"}, "zh"),
        ({"X-L": "en-US"}, "en"),
        ({"X-L": "ja"}, "en"),  # unknown: DEFAULT_LANGUAGE (en)
        ({}, "en"),
        ({"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}, "zh"),  # no X-L: Accept-Language
        ({"Accept-Language": "fr, en;q=0.5"}, "en"),
        ({"X-L": "en", "Accept-Language": "zh-CN"}, "en"),  # X-L wins
        ({"X-L": "ja", "Accept-Language": "zh-CN"}, "en"),  # an X-L named, even unknown, wins
    ],
)
def test_the_language_is_chosen_from_the_headers(client, headers, lang):
    resp = client.get("/no/such/route", headers=headers)
    assert _msg(resp, 404, "BFF.NOT_FOUND") == MESSAGES["BFF.NOT_FOUND"][lang]


def test_default_language_zh(make_app, idaas_sim, wechat_sim):
    client = make_app(DEFAULT_LANGUAGE="zh").test_client()
    assert _msg(client.get("/nope"), 404, "BFF.NOT_FOUND") == "接口不存在"
    assert _msg(client.get("/nope", headers={"X-L": "ja"}), 404, "BFF.NOT_FOUND") == "接口不存在"
    resp = client.get("/nope", headers={"X-L": "en"})
    assert _msg(resp, 404, "BFF.NOT_FOUND") == "no such endpoint"


@pytest.mark.usefixtures("one_window")
def test_a_rate_limit_answers_in_chinese(make_app, idaas_sim, wechat_sim):
    prefix = "bff-msg-" + secrets.token_hex(4)  # counters of their own
    client = make_app(REDIS_KEY_PREFIX=prefix, RATE_LIMIT_LOGIN="1/minute").test_client()
    code = wechat_sim.issue_code("o_" + secrets.token_urlsafe(12))
    assert client.post("/api/v1/wechat/session", json={"wx_code": code}).status_code == 201
    resp = client.post("/api/v1/wechat/session", json={"wx_code": "x"}, headers={"X-L": "zh"})
    assert _msg(resp, 429, "BFF.RATE_LIMITED") == "请求过于频繁，请稍后再试"


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_idaas_messages_pass_through_unchanged(auth, idaas_sim, lang):
    auth.pending_bind()
    resp = auth.client.post(
        "/api/v1/bind/username-password",
        json={"user_name": "alice", "password": "wrong"},
        headers=auth.headers(**{"X-L": lang}),
    )
    assert resp.status_code == 400 and resp.json["error_code"].endswith("LOGIN.1005")
    assert resp.json["error_msg"] == "wrong username or password, 4 attempts left"
