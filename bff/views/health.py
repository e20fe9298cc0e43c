"""Operational endpoints: liveness, readiness, metrics, the OpenAPI document."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from bff.api import Api
from bff.errors import SessionStoreUnavailable, envelope
from bff.observability import metrics_response
from bff.openapi import openapi_document
from bff.schemas import HealthResponse
from bff.services import services

bp = Blueprint("health", __name__)
api = Api(bp, "operations")


@api.operation(
    "GET",
    "/healthz",
    "200 while the process serves",
    response=HealthResponse,
    auth=False,
    errors=(),
)
def healthz(caller: Any, body: Any) -> dict[str, Any]:
    return {"status": "ok"}


@api.operation(
    "GET",
    "/readyz",
    "200 when every dependency answers, else 503 naming the failing checks",
    response=HealthResponse,
    auth=False,
    errors=(503,),
)
def readyz(caller: Any, body: Any) -> Response:
    checks = {"redis": "ok"}
    try:
        services().store.ping()
    except SessionStoreUnavailable:
        checks["redis"] = "unavailable"
    failing = sorted(name for name, state in checks.items() if state != "ok")
    if not failing:
        return jsonify({"status": "ok", "checks": checks})
    message = "not ready: " + ", ".join(failing)
    return envelope(503, "BFF.NOT_READY", message, extra={"checks": checks})


@api.operation("GET", "/metrics", "Prometheus text format", auth=False, errors=())
def metrics(caller: Any, body: Any) -> Response:
    return metrics_response()


@api.operation("GET", "/openapi.json", "This document", auth=False, errors=())
def openapi_json(caller: Any, body: Any) -> Response:
    return jsonify(openapi_document(services().settings.gateway_secret_header))
