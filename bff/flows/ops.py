"""What needs no lock: the slider captcha, and readiness."""

from __future__ import annotations

from bff.errors import SessionStoreUnavailable
from bff.flows.common import per_caller
from bff.models import Caller, Captcha, Device
from bff.observability import note_outcome
from bff.ratelimit import Route
from bff.services import Services


def captcha(svc: Services, caller: Caller, device: Device) -> Captcha:
    """A slider puzzle for ``verification_codes`` (the fields the IDaaS left null are None)."""
    svc.limiter.hit(Route.CAPTCHA, per_caller(caller, device), fail_open=True)
    puzzle = svc.idaas.captcha(device)
    note_outcome("CAPTCHA_ISSUED")
    return puzzle


def readiness(svc: Services) -> dict[str, str]:
    """Each dependency's state: ``ok`` or ``unavailable`` (only Redis is checked)."""
    try:
        svc.store.ping()
    except SessionStoreUnavailable:
        return {"redis": "unavailable"}
    return {"redis": "ok"}
