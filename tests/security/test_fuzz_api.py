"""Schemathesis against /openapi.json, on the real app with the simulators and Redis behind it.

Every operation gets generated valid and invalid requests (bounded: ``MAX_EXAMPLES`` each, plus
schemathesis' coverage and example phases). Every answer must be documented for its operation and
match its schema; no 5xx at all while the upstreams are healthy; every error is the one envelope
with the ``X-Request-ID`` it echoes; a request bff rejects itself never reaches the IDaaS; a
schema-valid request is never refused as ``BFF.VALIDATION`` (the document says what bff checks).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import missing_required_header, positive_data_acceptance

import bff.web.views  # noqa: F401  (declares every operation)
from bff.web.openapi import openapi_document
from tests.support.app import AuthActions
from tests.support.figures import FIGURES
from tests.support.idp_events import IDP_ENV
from tests.support.processes import free_port

# `make test` runs a smoke of this suite; `make fuzz` runs it at scale (10,000+ cases with Redis
# up, and again with Redis down) through these two variables.
MAX_EXAMPLES = int(os.environ.get("BFF_FUZZ_EXAMPLES", "30"))
MAX_EXAMPLES_REDIS_DOWN = int(os.environ.get("BFF_FUZZ_EXAMPLES_REDIS_DOWN", "8"))


class _CurrentApp:
    """The WSGI app under test: the function-scoped ``app`` fixture, set by each test.

    Schemathesis sends every request through it, its own probes (auth removed, other methods)
    included.
    """

    app: Any = None

    def __call__(self, environ: Any, start_response: Any) -> Any:
        return self.app(environ, start_response)


CURRENT_APP = _CurrentApp()
schema = schemathesis.openapi.from_dict(openapi_document())
schema.app = CURRENT_APP
# A body over MAX_BODY_BYTES (schemathesis breaks a maxLength with strings of any length) is
# refused as 413 BFF.PAYLOAD_TOO_LARGE, before anything else reads it: a rejection too.
_rejection = schema.config.checks.negative_data_rejection
_rejection.expected_statuses = [*_rejection.expected_statuses, "413"]

# What the caller must already have for the operation to get past "nothing to do here".
SIGNED_IN = {"/api/v1/session/refresh", "/api/v1/session"}
PENDING = {
    "/api/v1/bind/username-password",
    "/api/v1/bind/wechat-phone",
    "/api/v1/bind/verification-code",
    "/api/v1/register/wechat-phone",
    "/api/v1/register/verification-code",
    "/api/v1/verification-codes",
}
# Answers bff gives without asking the IDaaS anything.
OWN_REJECTIONS = {
    "BFF.VALIDATION",
    "BFF.UNAUTHENTICATED",
    "BFF.PAYLOAD_TOO_LARGE",
    "BFF.UNSUPPORTED_MEDIA_TYPE",
    "BFF.METHOD_NOT_ALLOWED",
    "BFF.NOT_FOUND",
}
ENVELOPE = {"error_code", "error_msg", "request_id"}


class Identities:
    """A caller in the state an operation needs, reused until a response says it is spent."""

    def __init__(self, client, wechat, idaas) -> None:
        self.make = lambda: AuthActions(client, wechat, idaas)
        self.current: dict[str, str] | None = None

    def headers(self, path: str) -> dict[str, str]:
        if self.current is None:
            auth = self.make()
            if path in SIGNED_IN:
                auth.signed_in()
            elif path in PENDING:
                auth.pending_bind()
            else:
                auth.open_session()
            self.current = {"Authorization": f"Bearer {auth.handle}"}
        return self.current

    def after(self, path: str, status: int) -> None:
        """Forget the caller once a bind worked, it logged out, or its state is gone."""
        if status in (204, 401, 409) or (status == 200 and path in PENDING):
            self.current = None


@pytest.fixture
def env(env):
    """The IdP events receiver on: its checks are fuzzed, not its 404."""
    return {**env, **IDP_ENV}


def _check_envelope(resp) -> None:
    body = resp.json()
    assert ENVELOPE <= set(body) <= ENVELOPE | {"errors", "checks"}, body
    assert body["error_code"] and body["error_msg"]
    assert [body["request_id"]] == resp.headers["x-request-id"]


@pytest.fixture
def identities(client, wechat_sim, idaas_sim) -> Identities:
    return Identities(client, wechat_sim, idaas_sim)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_document(case, app, identities, idaas_sim):
    CURRENT_APP.app = app
    identity = None
    if case.operation.definition.raw.get("security"):
        identity = identities.headers(case.path)
    upstream_before = len(idaas_sim.requests)
    resp = case.call(headers=identity)
    identities.after(case.path, resp.status_code)
    FIGURES["schemathesis_cases"] += 1
    FIGURES["schemathesis_5xx"] += resp.status_code >= 500
    case.validate_response(resp, headers=identity, excluded_checks=[positive_data_acceptance])
    assert resp.status_code < 500, resp.text  # healthy upstreams: no 5xx of any kind
    if case.path == "/metrics" and resp.status_code == 200:
        return
    content_type = resp.headers.get("content-type", [""])[0]
    assert content_type == "application/json" or not resp.content, content_type
    if resp.status_code >= 400:
        _check_envelope(resp)
        code = resp.json()["error_code"]
        if code in OWN_REJECTIONS:
            assert len(idaas_sim.requests) == upstream_before, code
        mode = case.meta.generation.mode if case.meta else None
        if mode is not None and mode.is_positive and code == "BFF.VALIDATION":
            # The document allowed it; only the pending step can refuse a valid body.
            assert set(resp.json().get("errors") or ()) == {"purpose"}, resp.text


# ---------------------------------------------------------------- Redis down: documented 503s

STORE_DOWN_CODES = {"BFF.SESSION_STORE_UNAVAILABLE", "BFF.NOT_READY"}


@pytest.fixture
def app_without_redis(make_app, idaas_sim, wechat_sim):
    """Redis on a port where nothing listens: every session-store call fails at once."""
    return make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES_REDIS_DOWN, deadline=None, suppress_health_check=list(HealthCheck)
)
def test_api_with_redis_down_answers_documented_503s(case, app_without_redis, idaas_sim):
    CURRENT_APP.app = app_without_redis
    identity = None
    if case.operation.definition.raw.get("security"):
        identity = {"Authorization": "Bearer " + "A" * 43}  # well-formed: looked up, fails
    resp = case.call(headers=identity)
    FIGURES["schemathesis_cases_redis_down"] += 1
    # 503 is the promise here, and it comes first: the caller cannot be identified.
    excluded = [positive_data_acceptance, not_a_server_error, missing_required_header]
    case.validate_response(resp, headers=identity, excluded_checks=excluded)
    if resp.status_code >= 500:
        assert resp.status_code == 503, resp.text
        assert resp.json()["error_code"] in STORE_DOWN_CODES, resp.text
    if resp.status_code >= 400 and case.path != "/metrics":
        _check_envelope(resp)
    assert not idaas_sim.requests  # nobody authenticated: nothing reached the IDaaS
