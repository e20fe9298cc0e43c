"""GET /api/v1/captcha (needs only auth), and the OpenAPI entries of the bind/register routes."""

from __future__ import annotations

import pytest

from tests.support.app import CLIENT_ID, DEVICE, last_call
from tests.support.signin import CAPTCHA, ROUTES, calls

pytestmark = pytest.mark.usefixtures("one_window")  # counts within one window


def _error(resp, status, code):
    assert resp.status_code == status, resp.json
    assert resp.json["error_code"] == code


def test_captcha_answers_the_puzzle_without_nulls(auth, idaas_sim):
    resp = auth.client.get("/api/v1/captcha", headers=auth.headers())
    assert resp.status_code == 200
    assert set(resp.json) == {"token", "original_image_base64", "jigsaw_image_base64", "secret_key"}
    assert resp.json["token"] in idaas_sim.captcha_answers
    assert None not in resp.json.values()
    sent = last_call(idaas_sim, CAPTCHA)
    assert sent.headers["X-client-id"] == CLIENT_ID
    assert sent.headers["X-device-fingerprint"] == DEVICE["X-device-fingerprint"]
    assert "Authorization" not in sent.headers


def test_captcha_needs_only_auth(auth, idaas_sim, client):
    assert client.get("/api/v1/captcha").status_code == 401  # auth: yes
    assert not calls(idaas_sim, CAPTCHA)
    bare = {"Authorization": auth.headers()["Authorization"]}  # no pending bind, no device
    resp = auth.client.get("/api/v1/captcha", headers=bare)
    # bff adds no requirement; it forwards what came, and this IDaaS wants the device headers
    _error(resp, 400, "IDAAS.SDK.COMMON.1003")
    assert "X-device-fingerprint" not in last_call(idaas_sim, CAPTCHA).headers
    idaas_sim.add_fault("status500", path=CAPTCHA)
    _error(
        auth.client.get("/api/v1/captcha", headers=auth.headers()), 502, "BFF.UPSTREAM_BAD_RESPONSE"
    )


def test_openapi_documents_the_signin_routes(client):
    doc = client.get("/openapi.json").json
    for route in ROUTES:
        op = doc["paths"][route.path]["post"]
        assert set(op["responses"]) >= {"200", "400", "409", "429"}
    assert doc["paths"]["/api/v1/login/phone"]["post"]["responses"]["200"]
    assert "204" in doc["paths"]["/api/v1/verification-codes"]["post"]["responses"]
    captcha = doc["paths"]["/api/v1/captcha"]["get"]
    assert not any(p["required"] for p in captcha["parameters"])  # device headers optional
    props = doc["components"]["schemas"]["CaptchaResponse"]["properties"]
    assert set(props) == {"token", "original_image_base64", "jigsaw_image_base64", "secret_key"}
    assert "captcha" in doc["components"]["schemas"]["VerificationCodesRequest"]["properties"]
