"""healthz, readyz, metrics, and the OpenAPI document generated from the same schemas."""

from __future__ import annotations

import json
import re

import pytest
from openapi_spec_validator import validate

from bff.version import __version__


def test_healthz(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.json == {"status": "ok", "version": __version__}


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
        "bff_build_info",
    ):
        assert f"# TYPE {name} " in text
    version = re.escape(__version__)
    assert re.search(rf'^bff_build_info\{{commit="\w+",version="{version}"\}} 1\.0$', text, re.M)


def test_openapi_is_valid_and_covers_every_route(app, client):
    doc = client.get("/openapi.json").json
    validate(doc)
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    served = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    # The forward-auth check also answers every other method and every path below it (the
    # original request's, from Traefik and Envoy): its document says so.
    check = {(p, m) for p, m in served if p.startswith("/api/v1/auth")} - {("/api/v1/auth", "GET")}
    assert check == {
        (path, method)
        for path in ("/api/v1/auth", "/api/v1/auth/{original}")
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
    } - {("/api/v1/auth", "GET")}
    assert "any other method" in doc["paths"]["/api/v1/auth"]["get"]["summary"]
    assert documented == served - check


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
    """Handles and id_tokens travel in answers: no cache (browser, proxy, CDN) may keep any."""
    resp = client.open(path, method=method, json=body)
    assert resp.headers["Cache-Control"] == "no-store"


def test_a_signed_in_answer_is_no_store(auth):
    resp = auth.client.post("/api/v1/session/refresh", headers=auth.signed_in())
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"


def _lines(capsys):
    return [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]


def test_every_log_line_has_an_iso_utc_time_the_service_and_its_version(make_app, capsys):
    client = make_app().test_client()
    client.get("/api/v1/session")  # a 401: logged at INFO
    lines = _lines(capsys)
    assert lines and all(
        re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", x["ts"])
        and x["service"] == "bff"
        and x["version"] == __version__
        for x in lines
    )
    started = [x for x in lines if x["message"] == "bff started"]
    assert started and started[0]["commit"]


def test_probes_and_scrapes_are_not_logged_at_info(make_app, capsys):
    client = make_app(LOG_LEVEL="INFO").test_client()
    capsys.readouterr()
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.get(path).status_code == 200
    assert not [x for x in _lines(capsys) if x.get("route") in ("/healthz", "/readyz", "/metrics")]


def test_an_unhandled_error_logs_its_frames_but_no_message(make_app, capsys):
    """A 500 can be found (type, file:line:function of every frame, the request id) without the
    exception's text, which may quote a secret."""
    app = make_app()

    def broken():  # a bug in a view: what the handler is for
        raise RuntimeError("token=s3cr3t-in-the-message")

    app.add_url_rule("/broken", "broken", broken)
    resp = app.test_client().get("/broken")
    assert resp.status_code == 500 and resp.json["error_code"] == "BFF.INTERNAL"
    out = capsys.readouterr().out
    assert "s3cr3t" not in out
    [line] = [x for x in map(json.loads, out.splitlines()) if x.get("message") == "unhandled error"]
    assert line["error_type"] == "RuntimeError" and line["request_id"] == resp.json["request_id"]
    assert line["frames"][-1].endswith(":broken")
    assert all(re.fullmatch(r"[\w./-]+\.py:\d+:[\w<>]+", frame) for frame in line["frames"])
