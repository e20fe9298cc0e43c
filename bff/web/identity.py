"""Who is calling and from which device: never the client's say-so.

The caller comes from the handle (``IDENTITY_SOURCE=wechat``) or the gateway's headers, checked
against the shared secret (``gateway``); the device from the headers the IDaaS requires.
"""

from __future__ import annotations

import hmac
import ipaddress
import re

from flask import current_app, g, request

from bff.apps import DEFAULT_APP
from bff.errors import BadRequest, SessionRevoked, Unauthenticated, UnknownApp
from bff.flows import handle_digest
from bff.models import WECHAT_ID, Caller, Device
from bff.observability import note_app, note_gateway_secret_previous, note_openid
from bff.services import Deployment, Services
from bff.settings import Settings

# A handle: secrets.token_urlsafe(32) (256 bits), after its app's name and a dot for any app but
# the default one.
_HANDLE = re.compile(r"^(?:(?P<app>[a-z][a-z0-9-]{0,31})\.)?(?P<token>[A-Za-z0-9_-]{43})$")
_GONE = "unknown or expired handle; open a new WeChat session"
_HEADER_VALUE = re.compile(r"^[\x20-\x7e\x80-\uffff]{1,512}$")  # printable, bounded, no CR/LF


def current_caller(deployment: Deployment) -> tuple[Services, Caller]:
    """The app the request is for, and the caller's WeChat identity in it: from a handle (the
    handle names its app), or from the gateway's headers (the gateway names the app by appid).

    :raises Unauthenticated: 401 when the caller cannot be established.
    :raises UnknownApp: 404 when the gateway names an appid this deployment does not serve.
    :raises SessionStoreUnavailable: 503 when the handle cannot be looked up (fail closed).
    """
    if _through_gateway(deployment):
        svc, caller = _from_gateway(deployment)
    else:
        svc, caller = _from_handle(deployment)
    note_app(svc.app.name)
    note_openid(svc.openid_hash_key, caller.openid, svc.openid_hash_key_previous)
    return svc, caller


def _through_gateway(deployment: Deployment) -> bool:
    """Gateway identity when every app takes it; handles when none does; when the modes are
    mixed, gateway identity for a request that carries the gateway's secret header (a gateway
    may forward an Authorization header of its own)."""
    modes = deployment.identity_sources
    if modes == {"gateway"} or modes == {"wechat"}:
        return modes == {"gateway"}
    return deployment.settings.gateway_secret_header in request.headers


def presented_handle(deployment: Deployment) -> tuple[Services, str]:
    """The app of the request's handle, and the handle's SHA-256; not yet looked up.

    :raises Unauthenticated: no handle, a malformed one, or one of no app that takes handles.
    """
    scheme, _, handle = request.headers.get("Authorization", "").partition(" ")
    found = _HANDLE.match(handle) if scheme.lower() == "bearer" else None
    if found is None:
        raise Unauthenticated(message="missing or malformed Authorization: Bearer <handle>")
    svc = deployment.app(found["app"] or DEFAULT_APP)
    if svc is None or svc.app.identity_source != "wechat":
        raise Unauthenticated(message=_GONE)
    note_app(svc.app.name)
    return svc, handle_digest(handle)


def _from_handle(deployment: Deployment) -> tuple[Services, Caller]:
    svc, digest = presented_handle(deployment)
    record, _, revoked = svc.store.handles.authenticate(digest)  # fail closed: 503 without Redis
    if record is None:
        raise SessionRevoked() if revoked else Unauthenticated(message=_GONE)
    return svc, Caller(record.openid, record.unionid, digest)


def _from_gateway(deployment: Deployment) -> tuple[Services, Caller]:
    settings = deployment.settings
    if not _gateway_secret_matches(settings):
        raise Unauthenticated(message="the request did not come through the gateway")
    appid = request.headers.get(settings.gateway_appid_header)
    svc = deployment.for_appid(appid) if appid else deployment.default
    if svc is None:
        raise UnknownApp()
    if svc.app.identity_source != "gateway":
        raise Unauthenticated(message="this app signs in with a handle (wechat/session)")
    openid = request.headers.get(settings.gateway_openid_header, "")
    unionid = request.headers.get(settings.gateway_unionid_header) or None
    if not WECHAT_ID.match(openid) or (unionid is not None and not WECHAT_ID.match(unionid)):
        raise Unauthenticated(message="the gateway sent no valid WeChat identity")
    return svc, Caller(openid, unionid, None)


def _gateway_secret_matches(settings: Settings) -> bool:
    """The request carries ``GATEWAY_SECRET``, or ``GATEWAY_SECRET_PREVIOUS`` during a rotation
    (then counted). Both are compared in constant time, and always both (``&``, ``|``: no
    short cut), so that the time taken tells nothing of which one matched, if any."""
    offered = request.headers.get(settings.gateway_secret_header, "").encode()
    expected = (settings.gateway_secret or "").encode()
    previous = (settings.gateway_secret_previous or "").encode()
    current_ok = hmac.compare_digest(offered, expected) & bool(expected)
    previous_ok = hmac.compare_digest(offered, previous) & bool(previous)
    if previous_ok and not current_ok:
        note_gateway_secret_previous()
    return current_ok | previous_ok


def named_app(deployment: Deployment, appid: str | None) -> Services:
    """The app ``wechat/session`` names by its WeChat appid (none: the default app).

    :raises UnknownApp: 404 for an appid this deployment does not serve.
    """
    svc = deployment.for_appid(appid) if appid else deployment.default
    if svc is None:
        raise UnknownApp()
    note_app(svc.app.name)
    return svc


def client_ip() -> str | None:
    """The caller's IP: the ``TRUSTED_PROXY_COUNT``-th ``X-Forwarded-For`` entry from the right
    when it is a valid IPv4 or IPv6 address, else the socket peer's (fewer entries than that:
    the peer too).

    The entries are split on commas, each taken alone: what the client wrote to the left of
    what the proxies appended cannot unsettle the read (an unclosed quote made werkzeug's
    ProxyFix give up on the whole header). Whatever a proxy wrote is checked: an arbitrary
    string must not become a limiter key or the IDaaS's ``X-device-ip``. Read once a request
    (its log record and its device headers both ask).
    """
    if "client_ip" not in g:
        g.client_ip = _client_ip()
    ip: str | None = g.client_ip
    return ip


def _client_ip() -> str | None:
    trusted = current_app.extensions["bff"].settings.trusted_proxy_count
    if trusted:
        entries = ",".join(request.headers.getlist("X-Forwarded-For")).split(",")
        if len(entries) >= trusted:
            chosen = _valid_ip(entries[-trusted].strip().strip('"'))
            if chosen is not None:
                return chosen
    return _valid_ip(request.environ.get("REMOTE_ADDR"))


def _valid_ip(value: str | None) -> str | None:
    if not value or len(value) > 64:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def current_device() -> Device:
    """The device headers the IDaaS requires, checked; ``X-agent`` falls back to User-Agent.

    :raises BadRequest: naming each missing or malformed header.
    """
    return _device(required=True)


def optional_device() -> Device:
    """The device headers that are present, checked but none required (``GET /captcha``).

    The BFF adds no requirement of its own there: it forwards what came, and the IDaaS judges.

    :raises BadRequest: naming each malformed header.
    """
    return _device(required=False)


def _device(required: bool) -> Device:
    problems: dict[str, list[str]] = {}

    def header(name: str, must: bool = False) -> str | None:
        value = request.headers.get(name)
        if value is None or value == "":
            if must:
                problems[name] = ["missing required header"]
            return None
        if not _HEADER_VALUE.match(value) or not value.strip():
            problems[name] = ["must be 1-512 printable characters"]
            return None
        return value

    os_version = header("X-operating-sys-version", required)
    fingerprint = header("X-device-fingerprint", required)
    agent = header("X-agent") or header("User-Agent")
    lang = header("X-L")
    if problems:
        raise BadRequest(message="missing or invalid device headers", errors=problems)
    return Device(os_version, fingerprint, agent, lang, client_ip())
