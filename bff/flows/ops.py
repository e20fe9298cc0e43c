"""What needs no lock: the slider captcha, and readiness."""

from __future__ import annotations

from typing import Any

from bff.errors import SessionStoreUnavailable
from bff.flows.common import caller_scopes, count
from bff.models import Caller, Device
from bff.observability import note_outcome
from bff.services import Services


def captcha(svc: Services, caller: Caller, device: Device) -> dict[str, Any]:
    """A slider puzzle for ``verification_codes``, null fields left out."""
    scopes = caller_scopes(device.ip, caller.openid)
    count(svc, "captcha", svc.settings.rate_limit_login, scopes, fail_open=True)
    puzzle = svc.idaas.captcha(device)
    note_outcome("CAPTCHA_ISSUED")
    return {k: v for k, v in puzzle.items() if v is not None}


def readiness(svc: Services) -> dict[str, str]:
    """Each dependency's state: ``ok`` or ``unavailable`` (only Redis is checked)."""
    try:
        svc.store.ping()
    except SessionStoreUnavailable:
        return {"redis": "unavailable"}
    return {"redis": "ok"}
