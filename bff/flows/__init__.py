"""The flows: plain functions over :class:`~bff.services.Services`, the caller and the request
in, a trimmed outcome out. No Flask: a CLI (bff-admin) or a worker can run them.

Each flow applies its own abuse limits (which limits, which scopes), takes the per-openid lock
where a single-use credential is spent, calls the IDaaS and settles the answer in Redis.
"""

from __future__ import annotations

from bff.flows.common import BIND_STATUSES, handle_digest, new_handle
from bff.flows.ops import captcha, readiness
from bff.flows.session import logout, refresh, revoke, session_status
from bff.flows.signin import bind, login, login_with_phone, open_wechat_session
from bff.flows.verification_codes import mask_destination, send_verification_code

__all__ = [
    "BIND_STATUSES",
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
    "refresh",
    "revoke",
    "send_verification_code",
    "session_status",
]
