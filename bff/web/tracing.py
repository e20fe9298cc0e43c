"""Optional tracing with OpenTelemetry: off unless the standard ``OTEL_*`` variables turn it on.

``pip install 'bff[otel]'`` brings the SDK, the OTLP/HTTP exporter and the Flask, requests and
redis instrumentations. Tracing is on when ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp``
or ``console``) or an OTLP endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT``,
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``); ``OTEL_SDK_DISABLED=true`` turns it off. The exporter
reads its own ``OTEL_EXPORTER_OTLP_*`` variables (endpoint, headers, timeout). One trace then
spans the request, its Redis calls and its IDaaS/WeChat calls, which carry W3C ``traceparent``.

Without it, bff still passes an incoming ``traceparent`` on to the upstreams (bff.web.request_log)
and sends every upstream the request's ``X-Request-ID``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from flask import Flask

from bff.version import __version__

log = logging.getLogger("bff.tracing")

_EXPORTERS = ("otlp", "console")
_UNTRACED = "healthz,readyz,metrics"  # probes and scrapes: no spans


def tracing_wanted(environ: Mapping[str, str]) -> bool:
    """Whether the ``OTEL_*`` variables ask for traces."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter in _EXPORTERS
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def configure_tracing(
    app: Flask, environ: Mapping[str, str] | None = None, *, exporter: Any = None
) -> Any:
    """Instrument ``app`` (and requests and redis) when tracing is wanted, or when ``exporter``
    (a span exporter, for tests) is given. :returns: the tracer provider, or None when off."""
    environ = os.environ if environ is None else environ
    if exporter is None and not tracing_wanted(environ):
        return None
    try:
        from opentelemetry.instrumentation.flask import FlaskInstrumentor
        from opentelemetry.instrumentation.redis import RedisInstrumentor
        from opentelemetry.instrumentation.requests import RequestsInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SimpleSpanProcessor,
        )
    except ImportError:
        log.warning("OTEL_* asks for traces but bff[otel] is not installed: tracing stays off")
        return None
    resource = Resource.create(
        {
            "service.name": environ.get("OTEL_SERVICE_NAME", "bff"),
            "service.version": __version__,
        }
    )
    provider = TracerProvider(resource=resource)
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    FlaskInstrumentor().instrument_app(  # type: ignore[no-untyped-call]
        app, tracer_provider=provider, excluded_urls=_UNTRACED
    )
    RequestsInstrumentor().instrument(tracer_provider=provider)
    RedisInstrumentor().instrument(tracer_provider=provider)
    log.info("tracing on", extra={"service": resource.attributes.get("service.name")})
    return provider


def stop_tracing(app: Flask) -> None:
    """Undo :func:`configure_tracing` (tests; requests and redis are instrumented globally)."""
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    FlaskInstrumentor().uninstrument_app(app)  # type: ignore[no-untyped-call]
    RequestsInstrumentor().uninstrument()
    RedisInstrumentor().uninstrument()
