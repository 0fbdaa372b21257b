"""Cleaning what people type: NFC, no control characters, script detection, Wylie."""

from __future__ import annotations

import re
import unicodedata

import pyewts

# Control characters, invisible direction marks, and lone surrogates (JSON can carry "\ud800": no
# encoding can store it, so it would make the text impossible to file).
_CONTROL = re.compile(r"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_TIBETAN = re.compile(r"[\u0f00-\u0fff]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")
_SYLLABLE_SPLIT = re.compile(r"[\u0f0b-\u0f14\s]+")
# A standard Tibetan syllable: optional prefix, root stack, vowel, suffixes (loose but script-only).
_TIBETAN_SYLLABLE = re.compile(r"^[\u0f40-\u0f6c][\u0f71-\u0f87\u0f8d-\u0fbc]*[\u0f40-\u0f6c\u0f71-\u0f87\u0f8d-\u0fbc]*$")
_converter = pyewts.pyewts()
# Tibetan and full-width digits, as phone keyboards type them, to the ASCII digits numbers are stored in.
ASCII_DIGITS = str.maketrans("༠༡༢༣༤༥༦༧༨༩０１２３４５６７８９", "01234567890123456789")


def clean(text: str) -> str:
    """NFC-normalised, control characters removed, whitespace trimmed."""
    text = unicodedata.normalize("NFC", text or "")
    return _CONTROL.sub("", text).strip()


def without_controls(text: str, limit: int = 10_000) -> str:
    """Control characters (NUL included: PostgreSQL refuses it) and lone surrogates removed, length bounded."""
    return _CONTROL.sub("", text or "")[:limit]


def small_number(value: str, default: int = 0, limit: int = 1_000_000) -> int:
    """A page, offset or count from button data: ASCII digits only ('²'.isdigit() is True, int('²')
    raises) and bounded, else `default` (button data can be forged)."""
    if value and value.isascii() and value.isdigit() and len(value) <= 7 and int(value) <= limit:
        return int(value)
    return default


def script_of(text: str) -> str:
    """'bo', 'zh', 'latin' or 'other', by the most frequent script in the text."""
    counts = {
        "bo": len(_TIBETAN.findall(text)),
        "zh": len(_HAN.findall(text)),
        "latin": len(_LATIN.findall(text)),
    }
    best = max(counts, key=counts.get)
    return best if counts[best] else "other"


def wylie_to_tibetan(text: str) -> str | None:
    """Tibetan script for text typed in Wylie, or None when it is not convincingly Wylie.

    pyewts accepts pinyin and English quietly, so: no warnings, at least two syllables,
    and every syllable a well-formed Tibetan syllable. The person still confirms it.
    """
    if script_of(text) != "latin" or re.search(r"[0-9]", text):
        return None
    warnings: list[str] = []
    converted = _converter.toUnicode(text, warnings)
    if warnings or _LATIN.search(converted):
        return None
    syllables = [s for s in _SYLLABLE_SPLIT.split(converted) if s]
    if len(syllables) < 2 or not all(_TIBETAN_SYLLABLE.match(s) for s in syllables):
        return None
    if not _looks_like_wylie(text):
        return None
    return converted


# Syllable shapes of Wylie: (prefix)(superscript)root(subscript)(vowel)(suffix)(post-suffix).
_WYLIE_SYLLABLE = re.compile(
    r"^(?:[gdbm']|)?(?:[rls](?=[kgcjtdnpbmh]))?"
    r"(?:tsh|ts|dz|kh|gh|ng|ch|ny|th|dh|ph|bh|zh|sh|[kgcjtdnpbmwzy'rlsha])"
    r"(?:[yrlw])?"
    r"(?:[aeiouAI]|-i)"
    r"(?:ng|[gdnbmrls'])?(?:[sd])?"
    r"(?:'[iuo]|'am)?$"
)


def _looks_like_wylie(text: str) -> bool:
    words = [w for w in re.split(r"[\s/]+", text.strip()) if w]
    syllables = [s for w in words for s in w.split(".") if s]
    return bool(syllables) and all(_WYLIE_SYLLABLE.match(s) for s in syllables)
