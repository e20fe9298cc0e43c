"""healthz, readyz, metrics, and the OpenAPI document generated from the same schemas."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate


def test_healthz(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.json == {"status": "ok"}


def test_readyz_ok(client):
    assert client.get("/readyz").json == {"status": "ok", "checks": {"redis": "ok"}}


def test_metrics_exposes_the_spec_names(auth):
    auth.signed_in()
    text = auth.client.get("/metrics").get_data(as_text=True)
    for name in (
        "bff_requests_total",
        "bff_request_duration_seconds",
        "bff_upstream_requests_total",
        "bff_upstream_duration_seconds",
        "bff_login_outcomes_total",
        "bff_session_store_errors_total",
        "bff_rate_limiter_fail_open_total",
    ):
        assert f"# TYPE {name} " in text


def test_openapi_is_valid_and_covers_every_route(app, client):
    doc = client.get("/openapi.json").json
    validate(doc)
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    served = {
        (rule.rule, method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert documented == served


def test_openapi_request_schemas_match_validation(client):
    doc = client.get("/openapi.json").json
    bind = doc["components"]["schemas"]["BindUsernamePasswordRequest"]
    assert set(bind["required"]) == {"user_name", "password"}
    assert bind["properties"]["user_name"]["maxLength"] == 256
    assert bind["properties"]["password"]["maxLength"] == 1024
    assert bind["additionalProperties"] is False


NO_STORE_REQUESTS = [
    ("GET", "/healthz", None),
    ("GET", "/readyz", None),
    ("GET", "/metrics", None),
    ("GET", "/openapi.json", None),
    ("GET", "/nowhere", None),
    ("PUT", "/healthz", None),
    ("POST", "/api/v1/wechat/session", {"wx_code": ""}),
    ("GET", "/api/v1/session", None),
]


@pytest.mark.parametrize(("method", "path", "body"), NO_STORE_REQUESTS)
def test_every_answer_is_no_store(client, method, path, body):
    """Review finding: handles and id_tokens travel in answers that said nothing about caching."""
    resp = client.open(path, method=method, json=body)
    assert resp.headers["Cache-Control"] == "no-store"


def test_a_signed_in_answer_is_no_store(auth):
    resp = auth.client.post("/api/v1/session/refresh", headers=auth.signed_in())
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
