"""What the tests share about the app: its test settings, a mini program's actions, assertions."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from flask.testing import FlaskClient

from bff_simulators.idaas import IdaasSimulator
from bff_simulators.wechat import WeChatSimulator

REDIS_URL = "redis://127.0.0.1:6379/0"
CLIENT_ID = "test-client"
GATEWAY_SECRET = "test-gateway-secret-0123456789"
PASSWORD = "s3cret-Passw0rd"
DEVICE = {
    "X-operating-sys-version": "iOS 17.4",
    "X-device-fingerprint": "fp-test-device-0001",
    "X-agent": "miniprogram/1.0",
    "X-L": "zh",
}


class AuthActions:
    """What a mini program does: wx.login, get a handle, log in, bind."""

    def __init__(self, client: FlaskClient, wechat: WeChatSimulator, idaas: IdaasSimulator) -> None:
        self.client = client
        self.wechat = wechat
        self.idaas = idaas
        self.openid = "o_" + secrets.token_urlsafe(12)
        self.unionid: str | None = "u_" + secrets.token_urlsafe(12)
        self.handle: str | None = None

    def wx_code(self) -> str:
        return self.wechat.issue_code(self.openid, self.unionid)

    def open_session(self) -> str:
        resp = self.client.post("/api/v1/wechat/session", json={"wx_code": self.wx_code()})
        assert resp.status_code == 201, resp.json
        self.handle = resp.json["handle"]
        return self.handle

    def headers(self, **extra: str) -> dict[str, str]:
        if self.handle is None:
            self.open_session()
        return {"Authorization": f"Bearer {self.handle}", **DEVICE, **extra}

    def login(self) -> Any:
        return self.client.post(
            "/api/v1/login", json={"code": self.wx_code()}, headers=self.headers()
        )

    def pending_bind(self) -> dict[str, str]:
        """Headers of a caller whose first login answered SOCIAL_BIND (a bind is pending)."""
        resp = self.login()
        assert resp.status_code == 200 and resp.json["status"] == "SOCIAL_BIND", resp.json
        return self.headers()

    def bind(self, password: str = PASSWORD, user_name: str = "alice") -> Any:
        body = {"user_name": user_name, "password": password}
        return self.client.post("/api/v1/bind/username-password", json=body, headers=self.headers())

    def signed_in(self) -> dict[str, str]:
        """Headers of a caller with a cached session (first login, then a bind)."""
        self.pending_bind()
        resp = self.bind()
        assert resp.status_code == 200 and resp.json["status"] == "SUCCESS", resp.json
        return self.headers()


class GatewayCaller(AuthActions):
    """A caller the company gateway has authenticated: identity headers plus the secret."""

    def headers(self, **extra: str) -> dict[str, str]:
        return {
            "X-WX-OPENID": self.openid,
            "X-WX-UNIONID": self.unionid or "",
            "X-Gateway-Secret": GATEWAY_SECRET,
            **DEVICE,
            **extra,
        }


def last_call(sim: Any, path: str) -> Any:
    """The last request the simulator received on ``path`` (what the upstream saw)."""
    calls = [r for r in sim.requests if r.path == path]
    assert calls, f"no call to {path}"
    return calls[-1]


def assert_signed_in(resp, auth, idaas_sim, redis, key_prefix, subject="alice"):
    """SUCCESS answered, trimmed; the session cached with its token, TTL; no pending bind."""
    assert resp.status_code == 200, resp.json
    assert set(resp.json) == {"status", "expire", "id_token"}
    assert resp.json["status"] == "SUCCESS" and resp.json["expire"] == 432000
    assert resp.json["id_token"] == idaas_sim.id_tokens[-1]
    key = f"{key_prefix}:session:{auth.openid}"
    cached = json.loads(redis.get(key))
    assert cached["session_token"] == idaas_sim.session_tokens[-1]
    assert cached["unionid"] == auth.unionid and cached["id_token_sub"] == subject
    assert abs(cached["expire_at"] - (time.time() + 432000)) < 5
    assert 431990 < redis.ttl(key) <= 432000
    assert not redis.exists(f"{key_prefix}:pending:{auth.openid}")


class AppCaller(AuthActions):
    """A mini program of another app: it names its appid once, in wechat/session."""

    def __init__(
        self, client: FlaskClient, wechat: WeChatSimulator, idaas: IdaasSimulator, appid: str
    ) -> None:
        super().__init__(client, wechat, idaas)
        self.appid = appid

    def open_session(self) -> str:
        body = {"wx_code": self.wx_code(), "appid": self.appid}
        resp = self.client.post("/api/v1/wechat/session", json=body)
        assert resp.status_code == 201, resp.json
        self.handle = resp.json["handle"]
        return self.handle


def apps_file(path: Any, text: str) -> str:
    """An apps file (BFF_APPS_FILE) written at ``path``; its path as a string."""
    path.write_text(text)
    return str(path)


def app_idaas(wechat: WeChatSimulator, appid: str, secret: str, client_id: str) -> IdaasSimulator:
    """An IDaaS simulator of another app's own (not started): its client id, its mini program."""
    return IdaasSimulator(
        client_id=client_id,
        wechat_base_url=wechat.base_url,
        wechat_appid=appid,
        wechat_secret=secret,
    )
