"""/openapi.json is good enough to generate a client: valid in both identity modes, one stable
operationId per operation, servers, the running mode's security scheme only, the response
headers, the error codes each operation can answer, an example for every body."""

from __future__ import annotations

import re

import pytest
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from openapi_spec_validator import validate

from bff.errors import CODES, IDAAS_ERRORS, INTERNAL, gateway_status
from bff.web.openapi import openapi_document
from bff.web.operations import OPERATIONS
from tests.support.app import GATEWAY_SECRET

OPERATION_IDS = {  # stable: the mini program's client is generated from these
    ("POST", "/api/v1/wechat/session"): "createWechatSession",
    ("POST", "/api/v1/login"): "login",
    ("POST", "/api/v1/login/phone"): "loginPhone",
    ("POST", "/api/v1/bind/username-password"): "bindUsernamePassword",
    ("POST", "/api/v1/bind/wechat-phone"): "bindWechatPhone",
    ("POST", "/api/v1/bind/verification-code"): "bindVerificationCode",
    ("POST", "/api/v1/register/wechat-phone"): "registerWechatPhone",
    ("POST", "/api/v1/register/verification-code"): "registerVerificationCode",
    ("GET", "/api/v1/captcha"): "captcha",
    ("POST", "/api/v1/verification-codes"): "sendVerificationCode",
    ("GET", "/api/v1/mfa"): "secondFactor",
    ("POST", "/api/v1/mfa/codes"): "sendMfaCode",
    ("POST", "/api/v1/mfa/verify"): "verifyMfa",
    ("POST", "/api/v1/password/skip"): "skipPasswordChange",
    ("POST", "/api/v1/password/change"): "changePassword",
    ("DELETE", "/api/v1/wechat-binding"): "unbindWechat",
    ("POST", "/api/v1/session/refresh"): "refresh",
    ("GET", "/api/v1/session"): "sessionStatus",
    ("DELETE", "/api/v1/session"): "logout",
    ("GET", "/api/v1/auth"): "forwardAuth",
    ("GET", "/api/v1/sessions"): "listSessions",
    ("DELETE", "/api/v1/sessions/{session_id}"): "endSession",
    ("POST", "/api/v1/idp/events"): "idpEvent",
    ("GET", "/healthz"): "healthz",
    ("GET", "/readyz"): "readyz",
    ("GET", "/metrics"): "metrics",
    ("GET", "/openapi.json"): "openapiJson",
}
# The operations that pass the IDaaS's own business errors (4xx, its code) on.
PASS_IDAAS_ERRORS_ON = {
    "login",
    "loginPhone",
    "bindUsernamePassword",
    "bindWechatPhone",
    "bindVerificationCode",
    "registerWechatPhone",
    "registerVerificationCode",
    "captcha",
    "sendVerificationCode",
    "refresh",
    "secondFactor",
    "sendMfaCode",
    "verifyMfa",
    "skipPasswordChange",
    "changePassword",
    "unbindWechat",
    "forwardAuth",  # in its 403 (a gateway understands 401 and 403 only)
}
# Handles only: not in a gateway-mode document.
WECHAT_ONLY = {
    ("POST", "/api/v1/wechat/session"),
    ("GET", "/api/v1/auth"),
    ("GET", "/api/v1/sessions"),
    ("DELETE", "/api/v1/sessions/{session_id}"),
}


@pytest.fixture
def documents(make_app, idaas_sim, wechat_sim) -> dict[str, dict]:
    """The document each mode's app serves (the gateway one with a custom secret header)."""
    wechat = make_app().test_client()
    gateway = make_app(
        IDENTITY_SOURCE="gateway", GATEWAY_SECRET_HEADER="X-Edge-Auth", WECHAT_SECRET=""
    ).test_client()
    clients = {"wechat": wechat, "gateway": gateway}
    return {mode: client.get("/openapi.json").json for mode, client in clients.items()}


def _path(op) -> str:
    """A declared operation's path as the document spells it (``{name}``, not ``<name>``)."""
    return re.sub(r"<(\w+)>", r"{\1}", op.path)


def _operations(doc: dict):
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            yield method.upper(), path, op


def _error_code_schema(response: dict) -> dict:
    return response["content"]["application/json"]["schema"]["allOf"][1]["properties"]["error_code"]


def _valid(doc: dict, schema: dict, value) -> list[str]:
    root = {**schema, "components": doc["components"]}  # "#/components/..." resolves here
    validator = OAS30Validator(root, format_checker=oas30_format_checker)
    return [e.message for e in validator.iter_errors(value)]


def test_valid_in_both_modes(documents):
    for mode, doc in documents.items():
        validate(doc)
        header = "X-Edge-Auth" if mode == "gateway" else "X-Gateway-Secret"
        assert doc == openapi_document(mode, header)
        assert f"`{mode}` identity mode" in doc["info"]["description"]


def test_one_stable_operation_id_per_operation(documents):
    for mode, doc in documents.items():
        ids = {(method, path): op["operationId"] for method, path, op in _operations(doc)}
        expected = dict(OPERATION_IDS)
        if mode == "gateway":
            for key in WECHAT_ONLY:
                del expected[key]
        assert ids == expected
        assert all(re.fullmatch(r"[a-z][A-Za-z0-9]*", i) for i in ids.values())
    assert len({op.operation_id for op in OPERATIONS}) == len(OPERATIONS)


def test_a_relative_server(documents):
    for doc in documents.values():
        assert [s["url"] for s in doc["servers"]] == ["/"]
        assert "gateway" in doc["servers"][0]["description"]


def test_the_security_scheme_of_the_running_mode_only(documents, make_app):
    wechat, gateway = documents["wechat"], documents["gateway"]
    schemes = wechat["components"]["securitySchemes"]
    assert list(schemes) == ["handle"]
    assert {k: schemes["handle"][k] for k in ("type", "scheme")} == {
        "type": "http",
        "scheme": "bearer",
    }
    schemes = gateway["components"]["securitySchemes"]
    assert list(schemes) == ["gateway"]
    assert {k: schemes["gateway"][k] for k in ("type", "in", "name")} == {
        "type": "apiKey",
        "in": "header",
        "name": "X-Edge-Auth",
    }
    for mode, doc in documents.items():
        scheme = "handle" if mode == "wechat" else "gateway"
        for method, path, op in _operations(doc):
            declared = next(o for o in OPERATIONS if (o.method, _path(o)) == (method, path))
            takes = declared.auth or declared.forward_auth
            assert op.get("security") == ([{scheme: []}] if takes else None), path
    assert "/api/v1/wechat/session" in wechat["paths"]
    assert "/api/v1/wechat/session" not in gateway["paths"]
    client = make_app(IDENTITY_SOURCE="gateway", GATEWAY_SECRET=GATEWAY_SECRET).test_client()
    assert client.post("/api/v1/wechat/session", json={"wx_code": "c"}).status_code == 404


def _codes_of(response):
    """The error_code enum of an error response (empty for a success)."""
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    for part in schema.get("allOf", []):
        code = part.get("properties", {}).get("error_code", {})
        for option in code.get("anyOf", [code]):
            if "enum" in option:
                return set(option["enum"])
    return set()


def test_every_answer_documents_its_headers(documents):
    for doc in documents.values():
        headers = doc["components"]["headers"]
        assert headers["X-Request-ID"]["required"] is True
        assert headers["Cache-Control"]["schema"]["example"] == "no-store"
        for _, path, op in _operations(doc):
            for status, response in op["responses"].items():
                names = set(response["headers"])
                assert {"X-Request-ID", "Cache-Control"} <= names, (path, status)
                codes = _codes_of(response)
                retries = status == "429" or "BFF.REQUEST_IN_PROGRESS" in codes
                assert ("Retry-After" in names) == retries, (path, status)
                if status == "429":
                    retry = response["headers"]["Retry-After"]
                    passes_on = op["operationId"] in PASS_IDAAS_ERRORS_ON
                    assert retry["required"] is not passes_on  # an IDaaS 429 has none
                    assert retry["schema"] == {"type": "integer", "minimum": 0}


def test_each_status_lists_the_codes_the_operation_declared(documents):
    doc = documents["wechat"]
    for declared in OPERATIONS:
        op = doc["paths"][_path(declared)][declared.method.lower()]
        documented: dict[str, set[str]] = {}
        for status, response in op["responses"].items():
            if status.startswith(("4", "5")) and status != "4XX":
                schema = _error_code_schema(response)
                enum = schema["anyOf"][0] if "anyOf" in schema else schema
                documented[status] = set(enum["enum"])
        expected: dict[str, set[str]] = {}
        for code in {*declared.errors, INTERNAL} - {IDAAS_ERRORS}:
            status = gateway_status(code) if declared.forward_auth else CODES[code][0]
            expected.setdefault(str(status), set()).add(code)
        assert documented == expected, declared.path


def test_error_codes_of_some_operations(documents):
    def codes(method: str, path: str, status: str) -> set[str]:
        response = documents["wechat"]["paths"][path][method]["responses"][status]
        schema = _error_code_schema(response)
        return set((schema["anyOf"][0] if "anyOf" in schema else schema)["enum"])

    assert codes("post", "/api/v1/wechat/session", "400") == {
        "BFF.VALIDATION",
        "BFF.WECHAT_CODE_INVALID",
    }
    assert codes("post", "/api/v1/login", "409") == {"BFF.REQUEST_IN_PROGRESS"}
    assert codes("post", "/api/v1/bind/wechat-phone", "409") == {
        "BFF.REQUEST_IN_PROGRESS",
        "BFF.NO_PENDING_BIND",
    }
    assert codes("post", "/api/v1/session/refresh", "401") == {
        "BFF.UNAUTHENTICATED",
        "BFF.SESSION_EXPIRED",
    }
    assert codes("get", "/api/v1/session", "503") == {"BFF.SESSION_STORE_UNAVAILABLE"}
    assert codes("get", "/readyz", "503") == {"BFF.NOT_READY"}
    assert codes("get", "/healthz", "500") == {"BFF.INTERNAL"}
    responses = documents["wechat"]["paths"]["/api/v1/session"]["delete"]["responses"]
    # 404: an appid the gateway names that this deployment does not serve; 429: RATE_LIMIT_SESSION
    assert set(responses) == {"204", "401", "404", "409", "429", "500", "503"}
    assert codes("delete", "/api/v1/session", "404") == {"BFF.UNKNOWN_APP"}
    # A sign-in route an app switches off answers 404 for that app.
    assert codes("post", "/api/v1/bind/wechat-phone", "404") == {
        "BFF.UNKNOWN_APP",
        "BFF.NOT_FOUND",
    }
    refresh = documents["wechat"]["paths"]["/api/v1/session/refresh"]["post"]["responses"]
    assert "Retry-After" in refresh["429"]["headers"]


def test_idaas_codes_are_a_pattern_where_they_are_passed_on(documents):
    doc = documents["wechat"]
    for _, path, op in _operations(doc):
        responses = op["responses"]
        passes_on = op["operationId"] in PASS_IDAAS_ERRORS_ON
        assert ("4XX" in responses) == (passes_on and op["operationId"] != "forwardAuth"), path
        for status, response in responses.items():
            if not status.startswith("4"):
                continue
            schema = _error_code_schema(response)
            passed_here = passes_on and (op["operationId"] != "forwardAuth" or status == "403")
            assert ("anyOf" in schema or status == "4XX") == passed_here, (path, status)
            if not passed_here:
                continue
            for code in ("IDAAS.SDK.LOGIN.1005", "SDK.LOGIN.1005", "IDAAS.SDK.COMMON.1003"):
                assert not _valid(doc, schema, code), (path, status, code)
            assert _valid(doc, schema, "")
            if status == "4XX":
                assert _valid(doc, schema, "BFF.VALIDATION")  # ours are never in the range


def test_an_example_for_every_request_and_success_body(documents):
    for doc in documents.values():
        for _, path, op in _operations(doc):
            bodies = []
            if "requestBody" in op:
                bodies.append(op["requestBody"]["content"]["application/json"])
            for status, response in op["responses"].items():
                if path.startswith("/api/v1/auth"):  # forward-auth: a 200 of headers only
                    assert status != "200" or "content" not in response, path
                elif status.startswith("2") and status != "204":
                    (media,) = response["content"].values()
                    bodies.append(media)
            # DELETE: 204, no body
            headers_only = (
                "/api/v1/session",
                "/api/v1/sessions/{session_id}",
                "/api/v1/wechat-binding",
            )
            assert bodies or path in headers_only or path.startswith("/api/v1/auth"), path
            for media in bodies:
                examples = (
                    [media["example"]]
                    if "example" in media
                    else [e["value"] for e in media["examples"].values()]
                )
                assert examples, path
                for example in examples:
                    assert not _valid(doc, media["schema"], example), (path, example)


def test_the_request_examples_are_accepted(auth):
    """What the examples show passes bff's own checks (the IDaaS may still refuse them)."""
    doc = auth.client.get("/openapi.json").json
    for method, path, op in _operations(doc):
        if "requestBody" not in op or op["operationId"] == "createWechatSession":
            continue
        example = op["requestBody"]["content"]["application/json"]["example"]
        resp = auth.client.open(path, method=method, json=example, headers=auth.headers())
        assert resp.status_code < 500, (path, resp.json)
        assert (resp.json or {}).get("error_code") != "BFF.VALIDATION", (path, resp.json)
    example = doc["paths"]["/api/v1/wechat/session"]["post"]["requestBody"]["content"][
        "application/json"
    ]["example"]
    resp = auth.client.post("/api/v1/wechat/session", json=example)
    assert resp.json["error_code"] == "BFF.WECHAT_CODE_INVALID"  # valid, but never issued
