"""A login's next step finished (the second factor, the password steps) and WeChat unbound."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from bff import flows
from bff.errors import (
    NO_PENDING_STEP,
    NOT_BOUND,
    PASSWORD_POLICY,
    RATE_LIMITED,
    REQUEST_IN_PROGRESS,
    SESSION_EXPIRED,
    VALIDATION,
)
from bff.models import Caller, Outcome
from bff.services import Services
from bff.web.identity import current_device
from bff.web.operations import AUTH, BODY, IDAAS, SIGN_IN, Api, require_caller
from bff.web.schemas import EmptyRequest, LoginResponse
from bff.web.schemas_steps import (
    MfaCodesRequest,
    MfaResponse,
    MfaVerifyRequest,
    PasswordChangeRequest,
)

bp = Blueprint("steps", __name__, url_prefix="/api/v1")
api = Api(bp, "steps")
STEP = (*SIGN_IN, NO_PENDING_STEP)


@api.operation(
    "GET",
    "/mfa",
    "The pending second factor (MFA_AUTH): which factor, and its destination masked",
    response=MfaResponse,
    errors=(*AUTH, *BODY, *IDAAS, RATE_LIMITED, NO_PENDING_STEP),
)
def second_factor(svc: Services, caller: Caller | None, body: Any) -> flows.SecondFactor:
    return flows.second_factor(svc, require_caller(caller), current_device())


@api.operation(
    "POST",
    "/mfa/codes",
    "Verify the slider and send the second factor's SMS code (to the step's own mobile)",
    request=MfaCodesRequest,
    status=204,
    errors=(*AUTH, *BODY, *IDAAS, RATE_LIMITED, NO_PENDING_STEP),
)
def send_mfa_code(svc: Services, caller: Caller | None, body: Any) -> None:
    device = current_device()
    flows.send_mfa_code(svc, require_caller(caller), body["captcha"], device)


@api.operation(
    "POST",
    "/mfa/verify",
    "Check the second factor's code: the usual outcome (SUCCESS caches the session)",
    request=MfaVerifyRequest,
    response=LoginResponse,
    errors=STEP,
)
def verify_mfa(svc: Services, caller: Caller | None, body: Any) -> Outcome:
    device = current_device()
    return flows.verify_mfa(svc, require_caller(caller), body["verify_code"], device)


@api.operation(
    "POST",
    "/password/skip",
    "Keep the old password after PASSWORD_WARN: the usual outcome",
    request=EmptyRequest,
    response=LoginResponse,
    errors=STEP,
)
def skip_password_change(svc: Services, caller: Caller | None, body: Any) -> Outcome:
    return flows.skip_password_change(svc, require_caller(caller), current_device())


@api.operation(
    "POST",
    "/password/change",
    "Change the password of a PASSWORD_WARN or PASSWORD_EXPIRED step: the usual outcome",
    request=PasswordChangeRequest,
    response=LoginResponse,
    errors=(*STEP, PASSWORD_POLICY),
)
def change_password(svc: Services, caller: Caller | None, body: Any) -> Outcome:
    device = current_device()
    old, new = body["old_password"], body["new_password"]
    return flows.change_password(svc, require_caller(caller), old, new, device)


@api.operation(
    "DELETE",
    "/wechat-binding",
    "Unbind the caller's WeChat account from its IDaaS account; every session and handle of "
    "the caller ends",
    status=204,
    errors=(
        *AUTH,
        VALIDATION,
        *IDAAS,
        RATE_LIMITED,
        REQUEST_IN_PROGRESS,
        SESSION_EXPIRED,
        NOT_BOUND,
    ),
)
def unbind_wechat(svc: Services, caller: Caller | None, body: Any) -> None:
    flows.unbind_wechat(svc, require_caller(caller), current_device())
