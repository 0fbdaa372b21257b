"""Every message a person can see has its Chinese and Tibetan translation, with the same placeholders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from conversations.i18n import BABEL_LOCALE, placeholders, po_path

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {"t": None, "N_": None, "translate": (2,), "button": None}


def messages_in_code() -> set[str]:
    found = set()
    for folder in ("conversations", "bot"):
        if not (ROOT / folder).exists():
            continue
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT / folder, method_map=[("**.py", "python")], keywords=KEYWORDS
        ):
            found.add(message if isinstance(message, str) else message[0])
    return found


def catalog(language: str):
    with open(po_path(language), "rb") as handle:
        return read_po(handle, locale=BABEL_LOCALE[language])


CODE_MESSAGES = sorted(messages_in_code())


def test_code_has_messages():
    assert len(CODE_MESSAGES) > 100


@pytest.mark.parametrize("language", ["zh", "bo"])
def test_every_message_in_the_code_is_translated(language):
    translated = {m.id: m for m in catalog(language) if m.id}
    missing = [msgid for msgid in CODE_MESSAGES if msgid not in translated or not translated[msgid].string]
    assert not missing, f"{len(missing)} messages lack a {language} translation, e.g. {missing[:5]}"
    fuzzy = [m.id for m in translated.values() if m.fuzzy]
    assert not fuzzy, f"fuzzy {language} entries are not used: {fuzzy[:5]}"


@pytest.mark.parametrize("language", ["zh", "bo"])
def test_translations_keep_the_placeholders(language):
    wrong = [
        (m.id, m.string)
        for m in catalog(language)
        if m.id and m.string and placeholders(m.id) != placeholders(m.string)
    ]
    assert not wrong, wrong[:5]


def test_tibetan_translations_are_in_tibetan_script():
    allowed = re.compile(r"\{\w+\}|LS-\d{8}-\d{4,}|/[a-z]+|[A-Z]{4}-[A-Z]{4}-[A-Z]{4}|LS")  # codes, commands
    latin = [
        (m.id, m.string)
        for m in catalog("bo")
        if m.id and re.search(r"[A-Za-z]{2,}", allowed.sub("", m.string))
    ]
    assert not latin, latin[:5]


def test_chinese_translations_are_in_chinese():
    untranslated = [m.id for m in catalog("zh") if m.id and m.string and not re.search(r"[\u4e00-\u9fff]", m.string)
                    and re.search(r"[A-Za-z]{3,}", re.sub(r"\{\w*\}", "", m.string))]
    assert not untranslated, untranslated[:5]


# Classes of broken text a reader notices (issue 14): checked here in the catalogs, and in every reply of the
# dialog transcripts (tests/transcript.py) for what the code builds around them.
GLUED = re.compile(r"[\u0f40-\u0fbc]\{\w*\}|\{\w*\}[\u0f40-\u0fbc]")
ALLOWED_DIGITS_BO = re.compile(r"\{\w*\}|LS-\d{8}-\d{4,}|[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}")
ASCII_COLON_ZH = re.compile(r"(?<![0-9]):|:(?![0-9])")


def test_no_placeholder_glued_to_tibetan_letters():
    """`བོད་ཡིག{reads}ཀློག` reads as one word: a placeholder needs a tsheg or a space beside Tibetan letters."""
    glued = [(m.id, m.string) for m in catalog("bo") if m.id and m.string and GLUED.search(m.string)]
    assert not glued, glued[:5]


def test_no_ascii_digits_in_tibetan():
    """Fixed numbers in Tibetan text are Tibetan digits (སྐར་མ་༣༠), apart from the example phone number and codes."""
    found = [(m.id, m.string) for m in catalog("bo")
             if m.id and m.string and re.search(r"[0-9]", ALLOWED_DIGITS_BO.sub("", m.string))]
    assert not found, found[:5]


def test_no_ascii_colon_in_chinese():
    """Chinese labels take the full-width colon: 类型：… (technical callback ids aside)."""
    technical = {m.id for m in catalog("zh") if m.id and m.string == m.id}
    found = [(m.id, m.string) for m in catalog("zh") if m.id and m.string and m.id not in technical
             and ASCII_COLON_ZH.search(re.sub(r"https?://\S+|\{\w*\}", "", m.string))]
    assert not found, found[:5]


def test_the_checks_catch_each_class():
    assert GLUED.search("སྙན་ཞུ་འབུལ་མཁན་གྱིས་བོད་ཡིག{reads}ཀློག") and not GLUED.search("{reads} ཀློག་གི་ཡོད།")
    assert re.search(r"[0-9]", ALLOWED_DIGITS_BO.sub("", "སྐར་མ་30")) and not re.search(r"[0-9]", ALLOWED_DIGITS_BO.sub("", "སྐར་མ་༣༠ LS-20261124-0042"))
    assert ASCII_COLON_ZH.search("类型: 路灯") and not ASCII_COLON_ZH.search("2026-11-25 16:05")


def test_chinese_uses_the_regulations_terms():
    """网格化工作机构 (Art. 5), 监督举报电话 (Art. 20), 专职网格员 beside 兼职网格员 (Art. 13), 报请上一级…协调."""
    entries = {m.id: m.string for m in catalog("zh") if m.id}
    avoided = ("网格中心", "监督投诉电话", "上交上一级")
    found = [(msgid, text) for msgid, text in entries.items() if any(word in text for word in avoided)]
    assert not found, found[:5]
    assert entries["Grid worker"] == "专职网格员" and entries["Part-time grid worker"] == "兼职网格员"
    assert entries["Grid centre"] == "网格化工作机构"
    assert entries["⬆ Escalate to the next level"] == "⬆ 报请上一级网格化工作机构协调"
