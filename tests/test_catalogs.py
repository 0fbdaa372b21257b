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
                    and re.search(r"[A-Za-z]{3,}", m.string)]
    assert not untranslated, untranslated[:5]
