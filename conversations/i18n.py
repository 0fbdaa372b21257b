"""Catalogs, and dates, times and durations for the person's language.

The .po files in `locales/` are compiled in memory at start-up, so a stale
compiled catalog can never be shipped. Message ids are English; `zh` and `bo`
are the languages people see.
"""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

from babel import Locale
from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "gridbot"
LANGUAGES = ("zh", "bo")
LANGUAGE_NAMES = {"zh": "中文", "bo": "བོད་ཡིག"}  # each in its own script: shown before a language is chosen
BABEL_LOCALE = {"zh": "zh_Hans_CN", "bo": "bo"}
TIBETAN_DIGITS = str.maketrans("0123456789", "༠༡༢༣༤༥༦༧༨༩")
TIMEZONE = "Asia/Shanghai"


def po_path(language: str) -> Path:
    return LOCALES_DIR / BABEL_LOCALE[language] / "LC_MESSAGES" / f"{DOMAIN}.po"


@lru_cache(maxsize=None)
def translations(language: str) -> NullTranslations:
    """The language's catalog, compiled from its .po file in memory."""
    path = po_path(language)
    if not path.exists():
        return NullTranslations()
    with open(path, "rb") as handle:
        catalog = read_po(handle, locale=BABEL_LOCALE[language])
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(fp=buffer, domain=DOMAIN)


def translate(language: str, msgid: str, **params) -> str:
    text = translations(language).gettext(msgid)
    return text.format(**params) if params else text


def N_(msgid: str) -> str:
    """Mark a string for extraction; translate it later with `translate`."""
    return msgid


def language_from_platform(code: str | None) -> str | None:
    """`zh`, `bo` or None from a platform language code such as 'zh-hans', 'bo-CN', 'en'."""
    if not code:
        return None
    try:
        language = Locale.parse(code.replace("_", "-"), sep="-").language
    except (ValueError, TypeError, Exception):
        language = code[:2].lower()
    return language if language in LANGUAGES else None


def local_time(language: str, moment: datetime) -> str:
    """A moment in Lhasa time, e.g. 2026-11-25 16:05 (Tibetan digits in Tibetan)."""
    text = format_datetime(moment, "yyyy-MM-dd HH:mm", tzinfo=TIMEZONE, locale=BABEL_LOCALE[language])
    return text.translate(TIBETAN_DIGITS) if language == "bo" else text


def number(language: str, value: int) -> str:
    text = str(value)
    return text.translate(TIBETAN_DIGITS) if language == "bo" else text


def digits(language: str, value: str) -> str:
    """A code or coordinates in the reader's digits (Tibetan digits in Tibetan); typed back, either is understood."""
    return value.translate(TIBETAN_DIGITS) if language == "bo" else value


def duration(language: str, span: timedelta) -> str:
    """Whole days when it divides evenly, else hours. Babel's `bo` data gives '3 d', so the catalogs word it."""
    hours = round(span.total_seconds() / 3600)
    if hours >= 24 and hours % 24 == 0:
        return translate(language, "{days} days", days=number(language, hours // 24))
    return translate(language, "{hours} hours", hours=number(language, hours))


PLACEHOLDER = re.compile(r"\{(\w*)[^{}]*\}")


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))
