"""A login's next step, finished: the second factor (MFA_AUTH) and the password steps
(PASSWORD_WARN: skip or change; PASSWORD_EXPIRED: change).

Each spends the state token the step left pending (``{prefix}:pending:{openid}``) the way a
bind does (:func:`bff.flows.signin.spend`): counted per openid and per IP against the bind
limits, failing closed (a code or an old password is a guess), under the openid's lock; the
answer settles as a bind's does, so a SUCCESS caches the session exactly as a bind does. A new
password that breaks the tenant's policy is refused here, before any call.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from bff.credentials import SliderAnswer
from bff.errors import (
    STATE_TOKEN_GONE,
    IdaasError,
    NoPendingStep,
    PasswordPolicyError,
    RequestInProgress,
    SessionStoreUnavailable,
)
from bff.flows.common import NO_WAIT, audit_event, client_ip, per_caller
from bff.flows.signin import spend
from bff.flows.verification_codes import mask_destination
from bff.limits import Scope
from bff.models import (
    PASSWORD_STATUSES,
    Caller,
    Device,
    IdaasAnswer,
    Outcome,
    PasswordPolicy,
    PendingBind,
)
from bff.observability import note_outcome
from bff.ratelimit import Route, destination_key
from bff.services import Services

log = logging.getLogger(__name__)
MFA = ("MFA_AUTH",)


@dataclass(frozen=True)
class SecondFactor:
    """What the user is asked for: the factor and where its code goes, masked."""

    factor: str  # "sms"
    destination: str


def _pending(svc: Services, caller: Caller, statuses: tuple[str, ...]) -> PendingBind:
    pending = svc.store.load_pending(caller.openid)  # fails closed: 503 without Redis
    if pending is None or pending.status not in statuses:
        raise NoPendingStep()
    return pending


def _masked(mobile: str) -> str:
    return mobile if "*" in mobile else mask_destination(mobile)  # the IDaaS may mask it


@contextmanager
def _on_the_step(svc: Services, caller: Caller, pending: PendingBind) -> Iterator[None]:
    """An IDaaS call on the step's state token outside the lock: a token the IDaaS says is gone
    is ``NoPendingStep``, as :func:`spend` answers, and the dead step is dropped (if it is
    still the one pending and nobody holds the lock; else the next call drops it)."""
    try:
        yield
    except IdaasError as exc:
        if exc.suffix not in STATE_TOKEN_GONE:
            raise
        with contextlib.suppress(RequestInProgress, SessionStoreUnavailable):  # still dead
            lock = svc.store.lock(caller.openid, None, wait_s=NO_WAIT, read=(PendingBind,))
            with lock as user:
                user.delete_pending(pending)
                user.commit()
        raise NoPendingStep() from None


def second_factor(svc: Services, caller: Caller, device: Device) -> SecondFactor:
    """The pending MFA_AUTH step's factor and its masked destination."""
    svc.limiter.hit(Route.LOGIN, per_caller(caller, device), fail_open=True)
    pending = _pending(svc, caller, MFA)
    with _on_the_step(svc, caller, pending):
        mobile = svc.idaas.mfa_mobile(pending.state_token, device)
    return SecondFactor("sms", _masked(mobile))


def send_mfa_code(svc: Services, caller: Caller, slider: SliderAnswer, device: Device) -> None:
    """Verify the slider and send the MFA code to the step's own mobile (the IDaaS names it;
    the client cannot choose it). The verification-code limits, in the same order, fail closed:
    per openid and IP before the slider, per destination after it."""
    pending = _pending(svc, caller, MFA)
    who = {Scope.OPENID: caller.openid, Scope.IP: client_ip(device)}
    svc.limiter.hit(Route.CODES, who, fail_open=False)
    with _on_the_step(svc, caller, pending):
        mobile = svc.idaas.mfa_mobile(pending.state_token, device)
    captcha_token = svc.idaas.verify_captcha(slider.token, slider.point_json, mobile, device)
    svc.limiter.hit(Route.CODES, {Scope.DESTINATION: destination_key(mobile)}, fail_open=False)
    with _on_the_step(svc, caller, pending):
        svc.idaas.send_mfa_code(mobile, captcha_token, pending.state_token, device)
    audit_event(svc, "code_sent", "OK", channel="sms", purpose="mfa")
    note_outcome("CODE_SENT")


def verify_mfa(svc: Services, caller: Caller, verify_code: str, device: Device) -> Outcome:
    """Check the MFA code: the usual outcome (SUCCESS caches the session)."""

    def call(pending: PendingBind) -> IdaasAnswer:
        mobile = svc.idaas.mfa_mobile(pending.state_token, device)
        return svc.idaas.verify_mfa(mobile, verify_code, pending.state_token, device)

    hits = svc.limiter.hits(Route.BIND, per_caller(caller, device), fail_open=False)
    return spend(svc, caller, hits, MFA, call, "mfa")


def skip_password_change(svc: Services, caller: Caller, device: Device) -> Outcome:
    """Go on with the old password after a PASSWORD_WARN (an expired one cannot be skipped)."""
    hits = svc.limiter.hits(Route.BIND, per_caller(caller, device), fail_open=False)
    skip = svc.idaas.skip_password_update
    return spend(
        svc, caller, hits, ("PASSWORD_WARN",), lambda p: skip(p.state_token, device), "skip"
    )


def change_password(
    svc: Services, caller: Caller, old_password: str, new_password: str, device: Device
) -> Outcome:
    """Change the password of a PASSWORD_WARN or PASSWORD_EXPIRED step.

    :raises PasswordPolicyError: the new password breaks the step's policy (no call made).
    """
    pending = _pending(svc, caller, PASSWORD_STATUSES)
    broken = policy_problems(pending.policy, new_password)
    if new_password == old_password:
        broken.append("must differ from the old password")
    if broken:
        raise PasswordPolicyError(errors={"new_password": broken})

    def call(pending: PendingBind) -> IdaasAnswer:
        update = svc.idaas.update_password
        return update(old_password, new_password, pending.state_token, device)

    hits = svc.limiter.hits(Route.BIND, per_caller(caller, device), fail_open=False)
    return spend(svc, caller, hits, PASSWORD_STATUSES, call, "password")


def policy_problems(policy: PasswordPolicy | None, password: str) -> list[str]:
    """What ``password`` breaks of ``policy``, in words that never repeat it."""
    if policy is None:
        return []
    broken = []
    if policy.min_length is not None and len(password) < policy.min_length:
        broken.append(f"at least {policy.min_length} characters")
    if policy.max_length is not None and len(password) > policy.max_length:
        broken.append(f"at most {policy.max_length} characters")
    if policy.pattern:
        try:
            matches = re.search(policy.pattern, password) is not None
        except re.error:  # the tenant's own expression: it judges it on the change itself
            log.warning("the tenant's password pattern is not a valid regular expression")
            matches = True
        if not matches:
            broken.append("does not match the required pattern")
    return broken
