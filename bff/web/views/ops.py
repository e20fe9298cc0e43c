"""For operators and tools: liveness, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import threading
from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from bff import flows
from bff.apps import IDENTITY_SOURCES
from bff.errors import CODES, NOT_READY
from bff.observability import metrics_text
from bff.services import Services
from bff.version import __version__
from bff.web.errors import envelope
from bff.web.openapi import openapi_document
from bff.web.operations import Api
from bff.web.schemas import HealthResponse

bp = Blueprint("ops", __name__)
_DRAINING = threading.Event()  # set once this worker got SIGTERM (config/gunicorn.conf.py)


def start_draining() -> bool:
    """From now on /readyz answers 503 "draining"; False if it already did."""
    first = not _DRAINING.is_set()
    _DRAINING.set()
    return first


api = Api(bp, "operations")


@api.operation(
    "GET",
    "/healthz",
    "200 while the process serves",
    response=HealthResponse,
    auth=False,
    errors=(),
)
def healthz(svc: Services, caller: Any, body: Any) -> dict[str, Any]:
    return {"status": "ok", "version": __version__}


@api.operation(
    "GET",
    "/readyz",
    "200 when every dependency answers, else 503 naming the failing checks",
    response=HealthResponse,
    auth=False,
    errors=(NOT_READY,),
)
def readyz(svc: Services, caller: Any, body: Any) -> Response:
    checks = flows.readiness(svc)
    if _DRAINING.is_set():
        checks["shutdown"] = "draining"  # SIGTERM: in-flight requests finish, send no more
    failing = sorted(name for name, state in checks.items() if state != "ok")
    if not failing:
        return jsonify({"status": "ok", "checks": checks})
    message = f"{CODES[NOT_READY][1]}: " + ", ".join(failing)
    return envelope(503, NOT_READY, message, extra={"checks": checks})


@api.operation("GET", "/metrics", "Prometheus text format", auth=False, errors=())
def metrics(svc: Services, caller: Any, body: Any) -> Response:
    text, content_type = metrics_text()
    return Response(text, mimetype=content_type)


@api.operation("GET", "/openapi.json", "This document", auth=False, errors=())
def openapi_json(svc: Services, caller: Any, body: Any) -> Response:
    settings = svc.settings
    modes = current_app.extensions["bff"].identity_sources
    mode = "+".join(m for m in IDENTITY_SOURCES if m in modes)
    document = openapi_document(mode, settings.gateway_secret_header, settings.gateway_appid_header)
    return jsonify(document)
