"""Traces across the hop: the request id and W3C traceparent reach the IDaaS and WeChat; with
OpenTelemetry on, one trace spans the view, its Redis calls and its IDaaS call."""

from __future__ import annotations

import pytest

from bff.web.tracing import configure_tracing, stop_tracing, tracing_wanted
from tests.support.app import AuthActions, last_call

LOGIN = "/api/v2/sdk/login/wechat-miniprogram"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_every_upstream_call_carries_the_request_id(auth, idaas_sim, wechat_sim):
    resp = auth.client.post(
        "/api/v1/wechat/session",
        json={"wx_code": auth.wx_code()},
        headers={"X-Request-ID": "mp-trace-0000"},
    )
    auth.handle = resp.json["handle"]
    assert last_call(wechat_sim, "/sns/jscode2session").headers["X-Request-ID"] == "mp-trace-0000"
    headers = auth.headers(**{"X-Request-ID": "mp-trace-0001"})
    resp = auth.client.post("/api/v1/login", json={"code": auth.wx_code()}, headers=headers)
    assert resp.headers["X-Request-ID"] == "mp-trace-0001"
    assert last_call(idaas_sim, LOGIN).headers["X-Request-ID"] == "mp-trace-0001"


def test_an_incoming_traceparent_is_passed_on(auth, idaas_sim):
    headers = auth.headers(traceparent=TRACEPARENT)
    auth.client.post("/api/v1/login", json={"code": auth.wx_code()}, headers=headers)
    assert last_call(idaas_sim, LOGIN).headers["traceparent"] == TRACEPARENT


@pytest.mark.parametrize("bad", ["junk", "00-" + "0" * 32 + "-00f067aa0ba902b7-01", "x" * 600])
def test_a_malformed_traceparent_is_not(auth, idaas_sim, bad):
    auth.client.post(
        "/api/v1/login", json={"code": auth.wx_code()}, headers=auth.headers(traceparent=bad)
    )
    assert "traceparent" not in last_call(idaas_sim, LOGIN).headers


@pytest.mark.parametrize(
    ("environ", "wanted"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
    ],
)
def test_tracing_is_off_unless_the_otel_variables_ask(environ, wanted):
    assert tracing_wanted(environ) is wanted


def test_one_trace_spans_the_view_redis_and_the_idaas(make_app, wechat_sim, idaas_sim):
    memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")
    exporter = memory.InMemorySpanExporter()
    app = make_app()
    assert configure_tracing(app, {}, exporter=exporter) is not None
    try:
        auth = AuthActions(app.test_client(), wechat_sim, idaas_sim)
        auth.open_session()
        exporter.clear()
        resp = auth.login()
        assert resp.status_code == 200
    finally:
        stop_tracing(app)
    spans = exporter.get_finished_spans()  # the in-process simulators' own calls too
    server = [s for s in spans if s.kind.name == "SERVER"]
    assert len(server) == 1 and server[0].name.endswith("/api/v1/login")
    trace_id = server[0].context.trace_id
    redis_spans = [s for s in spans if "redis" in str(s.attributes.get("db.system", ""))]
    assert redis_spans and {s.context.trace_id for s in redis_spans} == {trace_id}
    to_idaas = [s for s in spans if s.kind.name == "CLIENT" and LOGIN in str(s.attributes)]
    assert len(to_idaas) == 1 and to_idaas[0].context.trace_id == trace_id
    assert to_idaas[0].parent is not None  # a child of bff's request span, not a new trace
    sent = last_call(idaas_sim, LOGIN).headers["traceparent"]
    assert sent.split("-")[1] == format(trace_id, "032x")  # the IDaaS got this trace's context
