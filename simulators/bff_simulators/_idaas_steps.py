"""The next steps of a login (MFA_AUTH, PASSWORD_WARN, PASSWORD_EXPIRED): their answers and state
tokens, the second factor's masking, the password policy. The routes are in idaas_steps.py.

A step's state_token remembers the user (and openid); it finishes that step only, once.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from ._idaas_models import PASSWORD_STEPS, PendingState, SimUser
from ._server import RecordedRequest, Response, json_response

if TYPE_CHECKING:
    from ._idaas_core import IdaasCore

NO_FACTOR = "MFA.1001"  # the simulator's own code: the user has no mobile (e-mail) for MFA


def step_answer(sim: IdaasCore, user_name: str, openid: str | None, step: str) -> Response:
    """`step` instead of SUCCESS: a fresh state_token for the user, and `data` (the password
    policy as a JSON string for the password steps, None for MFA_AUTH)."""
    data = None
    if step in PASSWORD_STEPS:
        data = json.dumps(sim.password_policy, separators=(",", ":"))
    token = sim.issue_state(openid, None, step, user_name)
    return json_response({"status": sim.pad(step), "state_token": token, "data": data})


def step_state(sim: IdaasCore, req: RecordedRequest, *steps: str) -> tuple[str, PendingState]:
    """The request's pending state_token of one of `steps`, not consumed (COMMON.1007 for a
    token of another kind: a SOCIAL_BIND one, or another step's)."""
    token = sim.take_state(req)
    with sim.lock:
        state = sim.states[token]
    if state.status.strip() not in steps or state.user_name is None:
        raise sim.error("COMMON.1007", "state_token parameter error")
    return token, state


def step_user(sim: IdaasCore, state: PendingState) -> SimUser:
    """The account a step's state stands for."""
    with sim.lock:
        user = sim.users.get(state.user_name or "")
    if user is None:
        raise sim.error("LOGIN.1002", "user not found")
    return user


def finish_step(sim: IdaasCore, token: str) -> Response:
    """Consume a step's state_token: the SUCCESS login answer (a new session for its user)."""
    with sim.lock:
        state = sim.states.get(token)
        if state is None or state.used or state.user_name is None:
            raise sim.error("PARAM.0014", "invalid state token")
        if state.user_name in sim.locked_users:
            raise sim.error("LOGIN.1003", "account locked")
        state.used = True
        session = sim.issue_session(state.user_name, state.openid)
    return json_response({"status": sim.pad("SUCCESS"), **session})


def mask_mobile(mobile: str) -> str:
    """`+86-15212347124` -> `+86-152****7124`: the first 3 and the last 4 digits of the number."""
    prefix, sep, number = mobile.rpartition("-")
    kept = number[:3] if len(number) > 7 else ""
    return f"{prefix}{sep}{kept}****{number[-4:]}"


def mask_email(email: str) -> str:
    """`alice@example.com` -> `a***@example.com` (the simulator's own form; no route shows it)."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def second_factor(sim: IdaasCore, state: PendingState, field: str, given: str | None) -> str:
    """The user's real mobile (`field` "mobile") or e-mail of an MFA_AUTH state; `given`, if not
    None, must be it in clear or masked (else PARAM.0001)."""
    user = step_user(sim, state)
    real = user.mobile if field == "mobile" else user.email
    if real is None:
        raise sim.error(NO_FACTOR, f"the user has no {field}")
    masked = mask_mobile(real) if field == "mobile" else mask_email(real)
    if given is not None and given not in (real, masked):
        raise sim.error("PARAM.0001", f"{field} is not the user's")
    return real


def meets_policy(policy: dict[str, Any], password: str) -> bool:
    """The password's length is within minLength..maxLength and it matches regEx."""
    low, high = policy.get("minLength", 0), policy.get("maxLength", len(password))
    pattern = policy.get("regEx")
    if not low <= len(password) <= high:
        return False
    return not isinstance(pattern, str) or re.search(pattern, password) is not None
