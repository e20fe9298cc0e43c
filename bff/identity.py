"""Who is calling (SPEC §3) and from which device (SPEC §2, §4): never the client's say-so."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from flask import request

from bff.clients.idaas import Device
from bff.errors import BadRequest, Unauthenticated
from bff.observability import note_openid
from bff.services import services
from bff.session_store import WechatIdentity

_HANDLE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32): 256 bits
_WECHAT_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_HEADER_VALUE = re.compile(r"^[\x20-\x7e\x80-\uffff]{1,512}$")  # printable, bounded, no CR/LF
REQUIRED_DEVICE_HEADERS = ("X-operating-sys-version", "X-device-fingerprint")


@dataclass(frozen=True)
class Caller:
    openid: str
    unionid: str | None
    handle_sha256: str | None  # wechat mode: the key of the handle, deleted on logout


def new_handle() -> tuple[str, str]:
    """A fresh opaque handle and its SHA-256 (only the hash is stored)."""
    handle = secrets.token_urlsafe(32)
    return handle, sha256_hex(handle)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def current_caller() -> Caller:
    """The caller's WeChat identity, from the handle or the gateway headers.

    :raises Unauthenticated: 401 when it cannot be established.
    """
    settings = services().settings
    caller = _from_gateway() if settings.identity_source == "gateway" else _from_handle()
    note_openid(caller.openid)
    return caller


def _from_handle() -> Caller:
    scheme, _, handle = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not _HANDLE.match(handle):
        raise Unauthenticated(message="missing or malformed Authorization: Bearer <handle>")
    digest = sha256_hex(handle)
    who = services().store.load_handle(digest)  # fail closed: 503 when Redis is down
    if who is None:
        raise Unauthenticated(message="unknown or expired handle; open a new WeChat session")
    return Caller(who.openid, who.unionid, digest)


def _from_gateway() -> Caller:
    settings = services().settings
    offered = request.headers.get(settings.gateway_secret_header, "").encode()
    expected = (settings.gateway_secret or "").encode()
    if not expected or not hmac.compare_digest(offered, expected):
        raise Unauthenticated(message="the request did not come through the gateway")
    openid = request.headers.get(settings.gateway_openid_header, "")
    unionid = request.headers.get(settings.gateway_unionid_header) or None
    if not _WECHAT_ID.match(openid) or (unionid is not None and not _WECHAT_ID.match(unionid)):
        raise Unauthenticated(message="the gateway sent no valid WeChat identity")
    return Caller(openid, unionid, None)


def caller_from_wechat(who: WechatIdentity) -> Caller:
    return Caller(who.openid, who.unionid, None)


def client_ip() -> str | None:
    """The caller's IP as ProxyFix(x_for=TRUSTED_PROXY_COUNT) resolved it (SPEC §4)."""
    return request.remote_addr


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
