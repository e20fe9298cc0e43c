"""WeChatClient: code2Session with the server-held appid/secret.

The ``session_key`` is dropped on receipt: it is never returned, logged or stored.
"""

from __future__ import annotations

import time

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from bff.clients.http import Upstream
from bff.errors import UNAVAILABLE, RateLimited, WechatCodeInvalid, bad_response, upstream_error
from bff.models import WECHAT_ID, WechatIdentity

CODE2SESSION_PATH = "/sns/jscode2session"
BUSY_RETRY_DELAY_S = 0.2


class Code2SessionAnswer(Schema):
    """code2Session's answer, HTTP 200 either way: ``openid`` (+ ``unionid``) or ``errcode``."""

    class Meta:
        unknown = EXCLUDE

    openid = fields.String(load_default=None, validate=validate.Length(min=1, max=128))
    unionid = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=128))
    errcode = fields.Integer(load_default=0, strict=False)
    errmsg = fields.String(load_default="")
    # session_key is deliberately not a field: EXCLUDE drops it on receipt.


_ANSWER = Code2SessionAnswer()


class _Busy(Exception):
    """WeChat answered errcode -1 (system busy)."""


class WeChatClient:
    def __init__(self, http: Upstream, appid: str, secret: str) -> None:
        self._http = http
        self._appid = appid
        self._secret = secret

    def code2session(self, code: str) -> WechatIdentity:
        """Redeem a wx.login code; one short retry when WeChat is busy (-1).

        :raises BffError: WECHAT_CODE_INVALID, RATE_LIMITED or an upstream error (docs/api.md).
        """
        try:
            return self._once(code)
        except _Busy:
            time.sleep(BUSY_RETRY_DELAY_S)  # busy: the code was not spent; retry once
        try:
            return self._once(code)
        except _Busy:
            raise upstream_error(503, UNAVAILABLE) from None

    def _once(self, code: str) -> WechatIdentity:
        params = {
            "appid": self._appid,
            "secret": self._secret,
            "js_code": code,
            "grant_type": "authorization_code",
        }
        # A timed-out call is not retried (WeChat may have spent the code): send() raises 504.
        answer = self._http.send("GET", CODE2SESSION_PATH, params=params)
        if answer.status != 200 or not isinstance(answer.body, dict):
            raise bad_response()
        try:
            parsed = _ANSWER.load(answer.body)
        except ValidationError as exc:  # a malformed answer
            raise bad_response() from exc
        errcode = parsed["errcode"]
        if errcode in (40029, 40163):
            raise WechatCodeInvalid()
        if errcode == 45011:
            raise RateLimited(headers={"Retry-After": "60"})
        if errcode == -1:
            raise _Busy()
        openid, unionid = parsed["openid"], parsed["unionid"] or None
        if errcode != 0 or not openid or not WECHAT_ID.match(openid):
            raise bad_response()
        if unionid is not None and not WECHAT_ID.match(unionid):
            raise bad_response()  # checked like the gateway's, before it becomes a key
        return WechatIdentity(openid, unionid)
