"""The flows: plain functions over :class:`~bff.services.Services`, the caller and typed request
values in, typed outcomes out. No Flask: a CLI (bff-admin) or a worker can run them.

Each reads straight down: its abuse limits, then (where a single-use credential is spent or the
session changes) ``with`` the per-openid lock, the IDaaS call, and the writes.
"""

from __future__ import annotations

from bff.flows.binding import unbind_wechat
from bff.flows.common import handle_digest, new_handle
from bff.flows.devices import (
    DeviceSession,
    devices,
    end_session,
    list_sessions,
    revoke_subject,
)
from bff.flows.forward_auth import Identity, forward_auth
from bff.flows.idp_events import EventReceipt, event_keys, receive_event
from bff.flows.ops import captcha, readiness
from bff.flows.session import logout, refresh, revoke, session_status
from bff.flows.signin import bind, login, login_with_phone, open_wechat_session
from bff.flows.steps import (
    SecondFactor,
    change_password,
    second_factor,
    send_mfa_code,
    skip_password_change,
    verify_mfa,
)
from bff.flows.verification_codes import mask_destination, send_verification_code

__all__ = [
    "SecondFactor",
    "change_password",
    "second_factor",
    "send_mfa_code",
    "skip_password_change",
    "unbind_wechat",
    "verify_mfa",
    "DeviceSession",
    "EventReceipt",
    "Identity",
    "devices",
    "end_session",
    "event_keys",
    "forward_auth",
    "list_sessions",
    "revoke_subject",
    "bind",
    "captcha",
    "handle_digest",
    "login",
    "login_with_phone",
    "logout",
    "mask_destination",
    "new_handle",
    "open_wechat_session",
    "readiness",
    "receive_event",
    "refresh",
    "revoke",
    "send_verification_code",
    "session_status",
]
