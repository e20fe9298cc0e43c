"""IDaaS simulator: finishing the next step of a login.

Marks: [doc] the vendor's documentation says so, [oem] the same product sold under another name
(Huawei Cloud OneAccess) does, [assumed] not seen documented.

With the knob `next_step` set ("MFA_AUTH", "PASSWORD_WARN" or "PASSWORD_EXPIRED"), every login or
bind answer that would be SUCCESS for a known user is instead `{"status": <step>, "state_token",
"data"}` [doc, password login; assumed for the WeChat routes]; `data` is the password policy as a
JSON string for the password steps [doc], None for MFA_AUTH. The step's state_token finishes that
step only (another step's route: COMMON.1007), once (again: PARAM.0014); finishing answers the
usual SUCCESS login answer (`session_token`, `expire`, `id_token`).

- `GET /api/v2/sdk/mobile-by-token`, header `X-state-token` (MFA_AUTH) -> `{"mobile":
  "+86-152****7124"}`, in clear with the knob `mfa_mobile_in_clear` [doc]; a user without a
  mobile: MFA.1001 "the user has no mobile" (the simulator's own code).
- The MFA code is sent by `POST /api/v2/sdk/sms/send` (`/email/send`) with `type` `MFA_AUTH_SMS`
  [doc] (`MFA_AUTH_EMS` [doc, EIAM]) and the MFA_AUTH `X-state-token` (idaas_captcha.py).
- `POST /api/v2/sdk/mfa/sms` `{"mobile", "verify_code"}`, header `X-state-token` [oem]; the
  mobile in clear or masked. `POST /api/v2/sdk/mfa/email` `{"email", "verify_code"}` [assumed: by
  analogy, no page seen]. A wrong, expired or spent code: SMS.1003 "verification code error", the
  state_token kept.
- `GET /api/v2/sdk/pwd/skip-update`, header `X-state-token` [doc]: PASSWORD_WARN -> SUCCESS;
  PASSWORD_EXPIRED -> `{"status": "ACCESS_DENIED"}` (the state_token kept, for pwd/update).
- `POST /api/v2/sdk/pwd/update` `{"old_password", "new_password"}`, header `X-state-token`
  (PASSWORD_WARN or PASSWORD_EXPIRED) [assumed: path and body]: a wrong old password LOGIN.1005
  (not counted towards the lock); a new one outside `password_policy` or equal to the old
  PWD.1001 "password does not meet the policy"; else the password changes, SUCCESS.
"""

from __future__ import annotations

import secrets

from ._idaas_core import IdaasCore, RouteTable
from ._idaas_models import PASSWORD_STEPS
from ._idaas_steps import (
    NO_FACTOR,
    finish_step,
    mask_mobile,
    meets_policy,
    second_factor,
    step_state,
    step_user,
)
from ._server import RecordedRequest, Response, json_response
from .idaas_bind import find_sent_code

MFA_TYPES = {"mobile": "MFA_AUTH_SMS", "email": "MFA_AUTH_EMS"}  # body field -> code type


def mobile_by_token(sim: IdaasCore, req: RecordedRequest) -> Response:
    """GET /api/v2/sdk/mobile-by-token: the MFA_AUTH user's mobile, masked [doc]."""
    sim.check_common(req, needs_body=False)
    _, state = step_state(sim, req, "MFA_AUTH")
    mobile = step_user(sim, state).mobile
    if mobile is None:
        raise sim.error(NO_FACTOR, "the user has no mobile")
    return json_response({"mobile": mobile if sim.mfa_mobile_in_clear else mask_mobile(mobile)})


def _mfa_check(sim: IdaasCore, req: RecordedRequest, field: str) -> Response:
    body = sim.check_common(req)
    token, state = step_state(sim, req, "MFA_AUTH")
    given, code = sim.require(body, field, "verify_code")
    to = second_factor(sim, state, field, given)
    with sim.lock:
        sent = find_sent_code(sim, field, to, MFA_TYPES[field], code)
        answer = finish_step(sim, token)
        sent.used = True
    return answer


def mfa_sms(sim: IdaasCore, req: RecordedRequest) -> Response:
    """POST /api/v2/sdk/mfa/sms {"mobile", "verify_code"} [oem]: the SUCCESS login answer."""
    return _mfa_check(sim, req, "mobile")


def mfa_email(sim: IdaasCore, req: RecordedRequest) -> Response:
    """POST /api/v2/sdk/mfa/email {"email", "verify_code"} [assumed]: the SUCCESS login answer."""
    return _mfa_check(sim, req, "email")


def skip_update(sim: IdaasCore, req: RecordedRequest) -> Response:
    """GET /api/v2/sdk/pwd/skip-update [doc]: SUCCESS after a warning, ACCESS_DENIED if expired."""
    sim.check_common(req, needs_body=False)
    token, state = step_state(sim, req, *PASSWORD_STEPS)
    if state.status.strip() == "PASSWORD_EXPIRED":
        return json_response({"status": sim.pad("ACCESS_DENIED")})
    return finish_step(sim, token)


def pwd_update(sim: IdaasCore, req: RecordedRequest) -> Response:
    """POST /api/v2/sdk/pwd/update {"old_password", "new_password"} [assumed]: a new password."""
    body = sim.check_common(req)
    token, state = step_state(sim, req, *PASSWORD_STEPS)
    old, new = sim.require(body, "old_password", "new_password")
    user = step_user(sim, state)
    if not secrets.compare_digest(old.encode(), user.password.encode()):
        raise sim.error("LOGIN.1005", "wrong username or password")
    if new == old or not meets_policy(sim.password_policy, new):
        raise sim.error("PWD.1001", "password does not meet the policy")
    with sim.lock:
        answer = finish_step(sim, token)
        user.password = new
    return answer


STEP_ROUTES: RouteTable = [
    ("GET", "/api/v2/sdk/mobile-by-token", mobile_by_token),
    ("POST", "/api/v2/sdk/mfa/sms", mfa_sms),
    ("POST", "/api/v2/sdk/mfa/email", mfa_email),
    ("GET", "/api/v2/sdk/pwd/skip-update", skip_update),
    ("POST", "/api/v2/sdk/pwd/update", pwd_update),
]
