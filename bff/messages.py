"""Our error messages in the user's language: one catalogue keyed by code, no Flask.

``MESSAGES[code][lang]``: for every ``BFF.*`` code in :data:`bff.errors.CODES`, its standard
message in English (``en``: the text of ``CODES``, unchanged) and Simplified Chinese (``zh``).
The language is the mini program's ``X-L`` header (:func:`language`): any ``zh*`` tag is ``zh``
(``zh-CN``, ``zh_CN``, ``zh-Hans``, ``zh-TW`` alike: one Chinese catalogue), any ``en*`` is ``en``,
anything else the deployment's ``DEFAULT_LANGUAGE``.

Messages more specific than the standard one (a :class:`~bff.errors.BffError` raised with
``message=``) stay English where they are raised, and the catalogue keys their translation by
code plus that English text (:data:`DETAILS`); a Chinese sentence keeps the API names it quotes
(``purpose bind``, ``Authorization: Bearer <handle>``). A specific message the catalogue does not
know answers ``zh`` with the code's standard Chinese message: never English to a Chinese user,
never a wrong sentence. ``standard: detail`` (``not ready: redis``, the failing checks' names)
keeps its detail after the localized standard message. ``en`` answers every message as today.

Not translated: the per-field ``errors`` of a ``BFF.VALIDATION`` (field names to English
reasons, for the developer, not the user), and an IDaaS business error: its code is not ours,
its message is the IDaaS's, already in the user's language (the IDaaS reads ``X-L`` too).
"""

from __future__ import annotations

from bff.errors import (
    BAD_RESPONSE,
    CODES,
    INTERNAL,
    METHOD_NOT_ALLOWED,
    NO_PENDING_BIND,
    NO_PENDING_STEP,
    NOT_BOUND,
    NOT_FOUND,
    NOT_READY,
    PASSWORD_POLICY,
    PAYLOAD_TOO_LARGE,
    RATE_LIMITED,
    REQUEST_IN_PROGRESS,
    SESSION_EXPIRED,
    SESSION_REVOKED,
    SESSION_STORE_UNAVAILABLE,
    TIMEOUT,
    UNAUTHENTICATED,
    UNAVAILABLE,
    UNKNOWN_APP,
    UNSUPPORTED_MEDIA_TYPE,
    VALIDATION,
    WECHAT_CODE_INVALID,
)

LANGUAGES = ("en", "zh")

_ZH = {
    VALIDATION: "请求参数有误",
    WECHAT_CODE_INVALID: "微信登录凭证无效或已使用，请重新调用 wx.login",
    UNAUTHENTICATED: "未登录或登录凭证无效",
    SESSION_EXPIRED: "登录已过期，请重新登录",
    SESSION_REVOKED: "此设备已退出登录（在其他设备上或由管理员操作）",
    NOT_FOUND: "接口不存在",
    UNKNOWN_APP: "本服务未接入该 appid 的小程序",
    METHOD_NOT_ALLOWED: "该接口不支持此请求方法",
    NO_PENDING_BIND: "该微信账号没有待完成的绑定，请重新登录",
    NO_PENDING_STEP: "本次登录没有待完成的这一步（二次验证或密码），请重新登录",
    PASSWORD_POLICY: "新密码不符合密码规则",
    NOT_BOUND: "该微信账号未绑定账号",
    REQUEST_IN_PROGRESS: "该微信账号正在登录或绑定中，请稍后重试",
    PAYLOAD_TOO_LARGE: "请求内容过大",
    UNSUPPORTED_MEDIA_TYPE: "请求内容必须是 application/json",
    RATE_LIMITED: "请求过于频繁，请稍后再试",
    INTERNAL: "服务内部错误",
    BAD_RESPONSE: "身份服务返回异常",
    UNAVAILABLE: "身份服务暂不可用",
    SESSION_STORE_UNAVAILABLE: "会话存储暂不可用",
    NOT_READY: "服务未就绪",
    TIMEOUT: "身份服务响应超时",
}

# code -> language -> the standard message.
MESSAGES: dict[str, dict[str, str]] = {
    code: {"en": message, "zh": _ZH.get(code, "")} for code, (_, message) in CODES.items()
}

# (code, the specific English message where it is raised) -> its Chinese.
DETAILS: dict[tuple[str, str], str] = {
    (VALIDATION, "the request is malformed"): "请求格式有误",
    (VALIDATION, "the request headers are too large"): "请求头过大",
    (VALIDATION, "duplicate key in the JSON body"): "JSON 请求体中有重复的键",
    (VALIDATION, "the body is not valid UTF-8"): "请求体不是有效的 UTF-8",
    (VALIDATION, "the JSON body is nested too deeply"): "JSON 请求体嵌套过深",
    (VALIDATION, "the body is not valid JSON"): "请求体不是有效的 JSON",
    (VALIDATION, "the event's data does not decrypt"): "事件数据无法解密",
    (VALIDATION, "the event's data names no user"): "事件数据未指明用户",
    (VALIDATION, "the JSON body must be an object"): "JSON 请求体必须是对象",
    (VALIDATION, "missing or invalid device headers"): "设备请求头缺失或无效",
    (
        VALIDATION,
        "this sign-in offers no registration; use purpose bind",
    ): "本次登录不支持注册，请使用 purpose bind",
    (
        UNAUTHENTICATED,
        "missing or malformed Authorization: Bearer <handle>",
    ): "缺少 Authorization: Bearer <handle> 或格式有误",
    (
        UNAUTHENTICATED,
        "unknown or expired handle; open a new WeChat session",
    ): "登录凭证无效或已过期，请重新打开微信会话",
    (UNAUTHENTICATED, "the request did not come through the gateway"): "请求未经过网关",
    (UNAUTHENTICATED, "the event's token or signature does not match"): "事件的令牌或签名不匹配",
    (UNAUTHENTICATED, "this event was already received (its nonce is spent)"): "该事件已接收过",
    (
        UNAUTHENTICATED,
        "this app signs in with a handle (wechat/session)",
    ): "此应用须使用 handle 登录（wechat/session）",
    (UNAUTHENTICATED, "the gateway sent no valid WeChat identity"): "网关未提供有效的微信身份",
    (NOT_FOUND, "no session of yours has that id"): "没有该 id 对应的会话",
}


def language(tag: str | None, default: str | None = None) -> str | None:
    """``zh`` for any ``zh*`` tag, ``en`` for any ``en*``; else ``default`` (None stays None:
    the caller may look further, e.g. at ``Accept-Language``)."""
    primary = (tag or "").strip().lower().replace("_", "-").split("-")[0]
    return primary if primary in LANGUAGES else default


def message(code: str, lang: str) -> str:
    """The standard message of ``code`` in ``lang``."""
    return MESSAGES[code][lang]


def localize(code: str, text: str, lang: str) -> str:
    """The envelope's ``error_msg`` in ``lang``: ``text`` is the English one bff raised with.

    A code not in the catalogue (an IDaaS business error) keeps ``text`` untouched.
    """
    if lang == "en" or code not in MESSAGES:
        return text
    standard = message(code, "en")
    if text == standard:
        return message(code, lang)
    if text.startswith(standard + ": "):  # the standard message and a detail (names, not words)
        return message(code, lang) + "：" + text[len(standard) + 2 :]
    return DETAILS.get((code, text), message(code, lang))
