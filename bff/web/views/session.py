"""The cached session: a fresh id_token from it, whether it is active, and logout."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from bff import flows
from bff.errors import RATE_LIMITED, REQUEST_IN_PROGRESS, SESSION_EXPIRED
from bff.models import Caller, RefreshedToken
from bff.services import Services
from bff.web.identity import current_device
from bff.web.operations import AUTH, BODY, IDAAS, Api, require_caller
from bff.web.schemas import EmptyRequest, RefreshResponse, SessionStatusResponse

bp = Blueprint("session", __name__, url_prefix="/api/v1")
api = Api(bp, "session")


@api.operation(
    "POST",
    "/session/refresh",
    "A fresh id_token from the server-held session",
    request=EmptyRequest,
    response=RefreshResponse,
    errors=(*AUTH, *BODY, *IDAAS, RATE_LIMITED, REQUEST_IN_PROGRESS, SESSION_EXPIRED),
)
def refresh(svc: Services, caller: Caller | None, body: Any) -> RefreshedToken:
    return flows.refresh(svc, require_caller(caller), current_device())


@api.operation(
    "GET",
    "/session",
    "Whether the caller has an active session",
    response=SessionStatusResponse,
    errors=(*AUTH, RATE_LIMITED),
)
def session_status(svc: Services, caller: Caller | None, body: Any) -> dict[str, Any]:
    remaining = flows.session_status(svc, require_caller(caller))
    return {"active": False} if remaining is None else {"active": True, "expires_in": remaining}


@api.operation(
    "DELETE",
    "/session",
    "Log out: forget the session, the pending bind and every handle of the user",
    status=204,
    errors=(*AUTH, RATE_LIMITED, REQUEST_IN_PROGRESS),
)
def logout(svc: Services, caller: Caller | None, body: Any) -> None:
    flows.logout(svc, require_caller(caller))
