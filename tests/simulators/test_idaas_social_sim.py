"""IDaaS simulator: self-service with the id_token (social list, unbind) and WebHook events."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator

import pytest
import requests
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bff_simulators import IdaasSimulator, SimServer, WeChatSimulator, open_event, seal_event
from bff_simulators._server import json_response

from .test_idaas_sim import call, decode, error_code, login

SOCIAL = "/api/v2/sdk/social"
UNBIND = "/api/v2/sdk/social/unbind-account"
KEYS = {
    "security_token": "s" * 40,
    "encryption_key": "0123456789abcdef0123456789abcdef",
    "signature_key": "signature-key",
}


@pytest.fixture
def idp(idp_server: IdaasSimulator, wx: WeChatSimulator) -> IdaasSimulator:
    wx.reset_state()
    idp_server.reset_state()
    idp_server.add_user("alice", "alice-pw")
    idp_server.add_user("bob", "bob-pw")
    idp_server.bindings.update({"o_alice": "alice", "o_alice2": "alice", "o_bob": "bob"})
    return idp_server


def id_token_of(idp: IdaasSimulator, wx: WeChatSimulator, openid: str = "o_alice") -> str:
    token: str = login(idp, wx, openid)["id_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def listing(idp: IdaasSimulator, token: str) -> list[dict[str, str]]:
    resp = call(idp, SOCIAL, method="GET", headers=bearer(token))
    assert resp.status_code == 200, resp.text
    records: list[dict[str, str]] = resp.json()
    return records


def test_subject_of_is_the_id_token_sub(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    assert decode(idp, id_token_of(idp, wx))["sub"] == idp.subject_of("alice")


def test_list_the_users_bindings(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    records = listing(idp, id_token_of(idp, wx))
    assert sorted(r["socialUid"] for r in records) == ["o_alice", "o_alice2"]
    assert {(r["channel"], r["clientId"]) for r in records} == {
        ("WECHAT_MINIPROGRAM", "test-client")
    }
    assert len({r["id"] for r in records}) == 2


def test_unbind_one(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    token = id_token_of(idp, wx)
    (record,) = [r for r in listing(idp, token) if r["socialUid"] == "o_alice2"]
    bob_record = listing(idp, id_token_of(idp, wx, "o_bob"))[0]
    not_mine = call(idp, UNBIND, {"id": bob_record["id"]}, bearer(token))
    assert error_code(not_mine) == "IDAAS.SDK.SOCIAL.1004"
    resp = call(idp, UNBIND, {"id": record["id"]}, bearer(token))
    assert (resp.status_code, resp.json()) == (200, {"status": " SUCCESS"})
    assert [r["socialUid"] for r in listing(idp, token)] == ["o_alice"]
    assert login(idp, wx, "o_alice2")["status"].strip() == "SOCIAL_BIND"  # unbound, as a new one
    again = call(idp, UNBIND, {"id": record["id"]}, bearer(token))
    assert error_code(again) == "IDAAS.SDK.SOCIAL.1004"


def test_another_clients_binding_is_listed(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    idp.add_client("client-two", "wx-two", "wx-two-secret")
    wx.add_app("wx-two", "wx-two-secret")
    idp.bindings["client-two/o_two"] = "alice"
    other = {"X-client-id": "client-two"}
    code = wx.issue_code("o_two", appid="wx-two")
    token = call(idp, "/api/v2/sdk/login/wechat-miniprogram", {"code": code}, other).json()
    records = call(idp, SOCIAL, method="GET", headers={**other, **bearer(token["id_token"])}).json()
    two = {"socialUid": "o_two", "channel": "WECHAT_MINIPROGRAM", "clientId": "client-two"}
    assert two in [{k: v for k, v in r.items() if k != "id"} for r in records]
    # the other app's id_token (its aud) is no id_token of the first client's
    first = call(idp, SOCIAL, method="GET", headers=bearer(token["id_token"]))
    assert error_code(first) == "IDAAS.SDK.PARAM.0016"


@pytest.mark.parametrize("mode", ["expired", "forged", "wrong_aud", "unknown_kid", "not_jwt"])
def test_bad_id_tokens(idp: IdaasSimulator, wx: WeChatSimulator, mode: str) -> None:
    idp.id_token_mode = mode
    token = id_token_of(idp, wx)
    assert error_code(call(idp, SOCIAL, method="GET", headers=bearer(token))) == (
        "IDAAS.SDK.PARAM.0016"
    )
    resp = call(idp, UNBIND, {"id": "x"}, bearer(token))
    assert error_code(resp) == "IDAAS.SDK.PARAM.0016"


def test_missing_or_unknown_id_token(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    for headers in ({}, {"Authorization": "Basic abc"}, bearer("eyJ.not.issued")):
        resp = call(idp, SOCIAL, method="GET", headers=headers)
        assert error_code(resp) == "IDAAS.SDK.PARAM.0016"
    token = id_token_of(idp, wx)
    idp.reset_state()  # forgets the tokens it issued
    assert error_code(call(idp, SOCIAL, method="GET", headers=bearer(token))) == (
        "IDAAS.SDK.PARAM.0016"
    )


def test_api_claim_id_tokens_work(idp: IdaasSimulator, wx: WeChatSimulator) -> None:
    idp.id_token_mode = "api_claim"
    assert len(listing(idp, id_token_of(idp, wx))) == 2


# WebHook events -------------------------------------------------------------------------------
def _open(body: dict, token: str | None = KEYS["security_token"], **keys: str) -> str:
    return open_event(body, token=token, **{**KEYS, **keys})


def test_seal_event_scheme() -> None:
    """The vendor's documented scheme, checked here apart from webhook.py's code."""
    nonce = "00ff" * 8
    body = seal_event("USER_DISABLE", "alice", nonce=nonce, timestamp=1700000000, **KEYS)
    assert set(body) == {"nonce", "timestamp", "event", "data", "sign"}
    assert (body["nonce"], body["timestamp"], body["event"]) == (nonce, 1700000000, "USER_DISABLE")
    assert KEYS["security_token"] not in json.dumps(body)  # the token goes in a header
    message = f"{nonce}&1700000000&USER_DISABLE&{body['data']}"
    digest = hmac.new(b"signature-key", message.encode(), hashlib.sha256).digest()
    assert body["sign"] == base64.b64encode(digest).decode()
    key = KEYS["encryption_key"].encode()
    decryptor = Cipher(algorithms.AES(key), modes.ECB()).decryptor()  # noqa: S305
    padded = decryptor.update(base64.b64decode(body["data"])) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    assert unpadder.update(padded) + unpadder.finalize() == b"alice"  # the user id itself


def test_seal_event_defaults_and_extra_fields() -> None:
    before = int(time.time())
    body = seal_event("USER_LOGIN", "bob", extra={"clientId": "c1"}, **KEYS)
    assert len(body["nonce"]) == 32 and int(body["nonce"], 16) >= 0
    assert isinstance(body["timestamp"], int) and before <= body["timestamp"] <= time.time() + 1
    assert body["clientId"] == "c1"  # outside the signature
    again = seal_event("USER_LOGIN", "bob", **KEYS)
    assert again["nonce"] != body["nonce"]


def test_open_event_round_trip_and_forgery() -> None:
    body = seal_event("USER_DELETE", "bob", **KEYS)
    assert _open(body) == "bob"
    for tampered in ({"event": "USER_LOGIN"}, {"timestamp": 1}, {"nonce": "x"}, {"sign": "AA=="}):
        with pytest.raises(ValueError, match="signature"):
            _open({**body, **tampered})
    with pytest.raises(ValueError, match="signature"):
        _open(body, signature_key="other")
    for token in (None, "", "s" * 39):
        with pytest.raises(ValueError, match="security token"):
            _open(body, token=token)
    with pytest.raises(ValueError, match="integer"):
        _open({**body, "timestamp": str(body["timestamp"])})
    with pytest.raises(ValueError, match="strings"):
        _open({key: value for key, value in body.items() if key != "sign"})
    with pytest.raises(ValueError, match="32 bytes"):
        seal_event("USER_LOGIN", "bob", **{**KEYS, "encryption_key": "short"})


@pytest.fixture
def receiver() -> Iterator[SimServer]:
    with SimServer() as server:
        server.route("POST", "/hook", lambda req: json_response({"ok": True}))
        yield server


def test_send_event(idp: IdaasSimulator, receiver: SimServer) -> None:
    resp = idp.send_event(receiver.base_url + "/hook", "USER_SOCIAL_UNBIND", "alice", **KEYS)
    assert isinstance(resp, requests.Response) and resp.status_code == 200
    (got,) = receiver.requests
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["Authorization"] == "Bearer " + KEYS["security_token"]
    assert got.json["event"] == "USER_SOCIAL_UNBIND"
    token = got.headers["Authorization"].removeprefix("Bearer ")
    assert _open(got.json, token=token) == idp.subject_of("alice")
    idp.send_event(receiver.base_url + "/hook", "USER_DELETE", "sub-123", **KEYS)
    assert _open(receiver.requests[-1].json) == "sub-123"
