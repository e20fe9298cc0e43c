"""The message catalogue: every code in both languages, and every specific message raised."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bff.errors import CODES, HTTP_CODES, NOT_READY, VALIDATION
from bff.messages import DETAILS, LANGUAGES, MESSAGES, language, localize

ROOT = Path(__file__).resolve().parents[1]
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize("code", sorted(CODES))
def test_every_code_has_every_language(code):
    assert set(MESSAGES[code]) == set(LANGUAGES) == {"en", "zh"}
    assert MESSAGES[code]["en"] == CODES[code][1]  # English as it always was
    assert MESSAGES[code]["zh"].strip() and CJK.search(MESSAGES[code]["zh"]), code


def test_every_specific_message_bff_raises_has_its_chinese():
    """``message="..."`` literals across bff/, and Flask's own: each keyed in DETAILS."""
    raised = {
        text
        for path in (ROOT / "bff").rglob("*.py")
        for text in re.findall(r'message="([^"]+)"', path.read_text())
    }
    raised |= {message for code, message in HTTP_CODES.values() if message != CODES[code][1]}
    assert len(raised) >= 12
    keyed = {text for _, text in DETAILS}
    assert raised <= keyed, sorted(raised - keyed)
    assert all(code in CODES and CJK.search(zh) for (code, _), zh in DETAILS.items())


@pytest.mark.parametrize(
    ("tag", "lang"),
    [
        ("zh", "zh"),
        ("zh-CN", "zh"),
        ("zh_CN", "zh"),
        ("zh-Hans", "zh"),
        ("zh-TW", "zh"),
        ("ZH-cn", "zh"),
        ("en", "en"),
        ("en-US", "en"),
        ("en_GB", "en"),
        ("ja", None),
        ("", None),
        (None, None),
        ("*", None),
    ],
)
def test_language_tags(tag, lang):
    assert language(tag) == lang
    assert language(tag, "zh") == (lang or "zh")


def test_localize():
    assert localize(VALIDATION, "the body is not valid JSON", "zh") == "请求体不是有效的 JSON"
    assert localize(VALIDATION, "the body is not valid JSON", "en") == "the body is not valid JSON"
    assert localize(VALIDATION, "something new", "zh") == MESSAGES[VALIDATION]["zh"]
    assert localize(NOT_READY, "not ready: redis", "zh") == "服务未就绪：redis"
    idaas = "wrong username or password, 4 attempts left"
    assert localize("IDAAS.SDK.LOGIN.1005", idaas, "zh") == idaas
