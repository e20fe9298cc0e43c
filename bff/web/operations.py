"""The operation registry: one declaration per endpoint drives routing, request loading,
response dumping and the OpenAPI document, so ``/openapi.json`` cannot drift from the code.

A view is ``view(svc, caller, body)``: the Services of this app, the authenticated caller (None
for an ``auth=False`` operation) and the loaded body (None without a request schema). Its name,
in camelCase, is the operation's ``operationId`` (stable: clients are generated from them).
Each operation declares the error codes it can answer (``bff.errors.CODES`` gives their
statuses); every operation can also answer ``500 BFF.INTERNAL``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from marshmallow import Schema
from werkzeug.exceptions import UnsupportedMediaType

from bff.apps import IDENTITY_SOURCES, SIGN_IN_ROUTES
from bff.errors import (
    BAD_RESPONSE,
    CODES,
    IDAAS_ERRORS,
    NOT_FOUND,
    PAYLOAD_TOO_LARGE,
    RATE_LIMITED,
    REQUEST_IN_PROGRESS,
    SESSION_STORE_UNAVAILABLE,
    TIMEOUT,
    UNAUTHENTICATED,
    UNAVAILABLE,
    UNKNOWN_APP,
    UNSUPPORTED_MEDIA_TYPE,
    VALIDATION,
    BadRequest,
    NotFound,
)
from bff.models import Caller
from bff.services import Deployment, Services
from bff.web.errors import gateway_refusal
from bff.web.identity import current_caller, named_app

View = Callable[..., Any]  # view(svc, caller, body, **path_parameters)

# The error codes operations declare, in the groups they come in.
# No caller, an appid the gateway names that is not served, or Redis down (fail closed).
AUTH = (UNAUTHENTICATED, UNKNOWN_APP, SESSION_STORE_UNAVAILABLE)
BODY = (VALIDATION, PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE)  # a body (and device headers)
UPSTREAM = (BAD_RESPONSE, UNAVAILABLE, TIMEOUT)  # an IDaaS or WeChat call failed
IDAAS = (*UPSTREAM, IDAAS_ERRORS)  # an IDaaS call: its failures, its business errors passed on
# login and login/phone (the binds add NO_PENDING_BIND): limits, the openid lock, the IDaaS.
# (NOT_FOUND: for an app that switched the route off.)
SIGN_IN = (*AUTH, *BODY, *IDAAS, RATE_LIMITED, REQUEST_IN_PROGRESS, NOT_FOUND)
MAX_JSON_DEPTH = 32
FORWARD_AUTH_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
FORWARDED = "_forwarded"  # the endpoint name of a forward-auth path's subpaths
PREFIX = "/api/v1/"


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # as registered, with the blueprint's prefix
    summary: str
    request: type[Schema] | None
    response: type[Schema] | None
    status: int
    auth: bool
    errors: tuple[str, ...]  # codes of bff.errors.CODES, or IDAAS_ERRORS
    operation_id: str
    tags: tuple[str, ...] = field(default=())
    device_required: bool = True  # documents the device headers as required (auth operations)
    identity_sources: tuple[str, ...] = IDENTITY_SOURCES  # elsewhere: 404, and not documented
    names_app: bool = False  # the body names the app (wechat/session's appid)
    # A gateway's check (forward-auth): any method, any path below it, refusals 401/403.
    forward_auth: bool = False
    # Whether the deployment offers it at all (its settings); else 404 before anything is read.
    offered: Callable[[Deployment], bool] | None = None


OPERATIONS: list[Operation] = []


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        duplicate = next(k for k in keys if keys.count(k) > 1)
        raise BadRequest(
            message="duplicate key in the JSON body", errors={duplicate: ["duplicate key"]}
        )
    return dict(pairs)


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_JSON_DEPTH:
        return level
    children = (
        value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    )
    return max((_depth(c, level + 1) for c in children), default=level)


def read_json_body(optional: bool) -> dict[str, Any]:
    """The body as a JSON object: application/json, UTF-8, no duplicate keys, bounded.

    :raises BffError: 400 / 413 / 415 with the one envelope.
    """
    raw = request.get_data(cache=True)  # MAX_CONTENT_LENGTH: 413 past MAX_BODY_BYTES
    if not raw and optional:
        return {}
    if request.mimetype != "application/json":
        raise UnsupportedMediaType()
    try:
        text = raw.decode("utf-8")
        data = json.loads(text, object_pairs_hook=_reject_duplicates, parse_constant=_no_constants)
    except UnicodeDecodeError:
        raise BadRequest(message="the body is not valid UTF-8") from None
    except RecursionError:
        raise BadRequest(message="the JSON body is nested too deeply") from None
    except ValueError:
        raise BadRequest(message="the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest(message="the JSON body must be an object")
    if _depth(data) > MAX_JSON_DEPTH:
        raise BadRequest(message="the JSON body is nested too deeply")
    return data


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def operation_id(view_name: str) -> str:
    """``bind_username_password`` -> ``bindUsernamePassword``."""
    first, *rest = view_name.split("_")
    return first + "".join(word.capitalize() for word in rest)


def require_caller(caller: Caller | None) -> Caller:
    """The caller of an ``auth=True`` operation: resolved before the view runs, never None."""
    assert caller is not None  # noqa: S101
    return caller


class Api:
    """Registers declared operations on a blueprint."""

    def __init__(self, blueprint: Blueprint, tag: str) -> None:
        self.bp = blueprint
        self.tag = tag

    def operation(
        self,
        method: str,
        path: str,
        summary: str,
        *,
        request: type[Schema] | None = None,
        response: type[Schema] | None = None,
        status: int = 200,
        auth: bool = True,
        errors: tuple[str, ...],
        device_required: bool = True,
        identity_sources: tuple[str, ...] = IDENTITY_SOURCES,
        names_app: bool = False,
        forward_auth: bool = False,
        offered: Callable[[Deployment], bool] | None = None,
    ) -> Callable[[View], View]:
        """Declare and register one operation.

        ``errors``: every error code it can answer (a code of ``bff.errors.CODES``, or
        ``IDAAS_ERRORS`` when it passes IDaaS business errors on). ``identity_sources``: the
        identity modes it exists in; elsewhere it answers 404 (before auth and body).
        ``forward_auth``: a gateway's check, which also answers the other methods and every
        path below ``path`` (Traefik and Envoy send the original request's) and refuses in
        401 or 403 only (:func:`bff.web.errors.gateway_refusal`). ``offered``: whether the
        deployment offers it; when not, 404 as an unknown path (before auth and body).
        """
        unknown = set(errors) - set(CODES) - {IDAAS_ERRORS}
        if unknown:
            raise ValueError(f"{method} {path}: unknown error codes {sorted(unknown)}")

        def register(view: View) -> View:
            prefixed = (self.bp.url_prefix or "") + path
            op = Operation(
                *(method, prefixed, summary, request, response, status, auth, errors),
                operation_id(view.__name__),
                (self.tag,),
                device_required,
                identity_sources,
                names_app,
                forward_auth,
                offered,
            )
            self._add(op, path, view)
            return view

        return register

    def _add(self, op: Operation, path: str, view: View) -> None:
        if any(other.operation_id == op.operation_id for other in OPERATIONS):
            raise ValueError(f"{op.method} {op.path}: operationId {op.operation_id} is taken")
        OPERATIONS.append(op)
        # No automatic OPTIONS: it would answer a non-JSON 200 (every answer is JSON).
        endpoint = _endpoint(op, view)
        methods = FORWARD_AUTH_METHODS if op.forward_auth else (op.method,)
        self.bp.add_url_rule(
            path, view.__name__, endpoint, methods=methods, provide_automatic_options=False
        )
        if op.forward_auth:
            self.bp.add_url_rule(
                path + "/<path:original>",
                view.__name__ + FORWARDED,
                endpoint,
                methods=methods,
                provide_automatic_options=False,
            )


def _endpoint(op: Operation, view: View) -> Callable[..., Any]:
    """The Flask view of ``op``; a forward-auth check's refusals in the statuses a gateway
    understands."""
    answer = _answer(op, view)
    if not op.forward_auth:
        return answer

    def check(**_: str) -> Any:  # the original request's path is not the check's business
        try:
            return answer()
        except Exception as exc:  # noqa: BLE001 (a gateway understands 401 and 403 only)
            return gateway_refusal(exc)

    return check


def _answer(op: Operation, view: View) -> Callable[..., Any]:
    """The app and the caller, the body loaded, ``view``, the answer dumped."""
    # Built once: a marshmallow schema costs more to build than to use (docs/performance.md).
    loader = op.request() if op.request is not None else None
    dumper = op.response() if op.response is not None else None

    def endpoint(**parameters: str) -> Any:
        deployment: Deployment = current_app.extensions["bff"]
        if not deployment.identity_sources & set(op.identity_sources):
            raise NotFound()  # e.g. wechat/session where no app takes handles
        if op.offered is not None and not op.offered(deployment):
            raise NotFound()  # e.g. the IdP's events where no keys are set
        svc, caller = current_caller(deployment) if op.auth else (deployment.default, None)
        body = None
        if loader is not None:
            body = loader.load(read_json_body(optional=not loader.fields))
        if op.names_app:
            svc = named_app(deployment, body.get("appid") if isinstance(body, dict) else None)
        unserved = svc.app.identity_source not in op.identity_sources  # (a check: the handle's)
        if (unserved and not op.forward_auth) or not _enabled(op, svc):
            raise NotFound()
        result = view(svc, caller, body, **parameters)
        if isinstance(result, Response):
            return result
        if result is None:
            return "", op.status
        payload = dumper.dump(result) if dumper is not None else result
        return jsonify(payload), op.status

    return endpoint


def _enabled(op: Operation, svc: Services) -> bool:
    """Whether the app offers ``op`` (its sign-in routes are its own choice)."""
    route = op.path.removeprefix(PREFIX)
    return route not in SIGN_IN_ROUTES or route in svc.app.routes
