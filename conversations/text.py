"""Cleaning what people type: NFC, no control characters, the language of a description, Wylie."""

from __future__ import annotations

import re
import unicodedata

import pyewts

from storage import words

# Control characters, invisible direction marks, and lone surrogates (JSON can carry "\ud800": no
# encoding can store it, so it would make the text impossible to file).
_CONTROL = re.compile(r"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_TIBETAN = re.compile(r"[\u0f00-\u0fff]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")
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


CASE_NUMBER = re.compile(r"\bLS-[0-9]{8}-[0-9]{4,}\b", re.IGNORECASE)
# "LS-20261201-0007 · 4821": a case number with its access code (any separator but digits)
WITH_CODE = re.compile(r"\bLS-[0-9]{8}-[0-9]{4,}[^0-9A-Za-z]{1,5}([0-9]{4})\b", re.IGNORECASE)
PHONE = re.compile(r"^\+?[0-9][0-9 \-]{5,18}[0-9]$")


def find_case_number(typed: str) -> str | None:
    """A case number in what was typed (Tibetan digits too), as stored: LS-YYYYMMDD-NNNN."""
    match = CASE_NUMBER.search((typed or "").translate(ASCII_DIGITS))
    return match.group(0).upper() if match else None


def find_access_code(typed: str) -> str | None:
    """The access code typed after a case number, if any."""
    match = WITH_CODE.search((typed or "").translate(ASCII_DIGITS))
    return match.group(1) if match else None


def normalised_phone(typed: str | None) -> str | None:
    """Digits as stored (Tibetan and full-width digits converted, +86 dropped), or None if not a phone number."""
    if not typed or PHONE.match(clean(typed).translate(ASCII_DIGITS)) is None:
        return None
    digits = re.sub(r"[^0-9+]", "", typed.translate(ASCII_DIGITS))
    return digits[3:] if digits.startswith("+86") else digits


def description_language(text: str, fallback: str) -> str:
    """What a description is recorded as: 'zh', 'bo' or 'mixed' by its words; the person's language otherwise."""
    return words.detect_language(text) or fallback


# Wylie as people type it: words (g.yas, ma'i, +stacks), digits, punctuation, spaces.
_WYLIE_TOKEN = re.compile(r"(?P<word>[a-z'+~\-]+(?:\.[a-z'+~\-]+)*)|(?P<digits>[0-9]+)|(?P<punct>[,.;:!?/|]+)|(?P<space>\s+)|(?P<other>.)")
# Beginnings no pinyin or English syllable has: a prefix or superscript letter before the root
# (bk, sgr, 'd, rts, lh …), an a-chung, or ny/tsh/dz.
_TIBETAN_ONLY_SHAPE = re.compile(r"^(?:[gdbm'](?![aeiouyrlw])|r(?![aeiouyw])|l(?=[tdcjgkpbh])|s(?=[gdb])|ny|tsh|dz)|'")
_ENGLISH = frozenset("the to is are of and in on my at it this that there not with for near please help from has have was be "
                     "light broken street road water dog house car bus here where what when".split())
_PINYIN_INITIALS = ["", "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h", "j", "q", "x", "zh", "ch", "sh", "r", "z", "c", "s", "y", "w"]
_PINYIN_FINALS = ["a", "o", "e", "i", "u", "v", "ai", "ei", "ao", "ou", "an", "en", "ang", "eng", "ong", "er", "ia", "ie", "iao",
                  "iu", "ian", "in", "iang", "ing", "iong", "ua", "uo", "uai", "ui", "uan", "un", "uang", "ue", "ve", "van", "vn"]
_PINYIN = frozenset(i + f for i in _PINYIN_INITIALS for f in _PINYIN_FINALS)
MIN_ATTESTED = 0.75  # the share of syllables that must be attested Tibetan (or of a shape only Wylie has)


def small_number(value: str, default: int = 0, limit: int = 1_000_000) -> int:
    """A page, offset or count from button data: ASCII digits only ('²'.isdigit() is True, int('²')
    raises) and bounded, else `default` (button data can be forged)."""
    if value and value.isascii() and value.isdigit() and len(value) <= 7 and int(value) <= limit:
        return int(value)
    return default


def wylie_to_tibetan(text: str) -> str | None:
    """Tibetan script for text typed in Wylie, or None when it is not convincingly Tibetan.

    Case does not matter; digits and punctuation pass through (a comma or full stop becomes a shad).
    pyewts converts pinyin and English quietly, so the converted syllables must also be plausible
    Tibetan: no warnings from pyewts, at least two syllables, three in four attested in the Tibetan
    word list (`storage/data/bo_words.txt`) or of a shape only Wylie has, and not a run of pinyin
    syllables or English words. The person still confirms the result.
    """
    if _HAN.search(text) or _TIBETAN.search(text) or not _LATIN.search(text):
        return None
    lowered = text.strip().lower()
    pieces: list[str] = []
    syllables: list[str] = []
    for match in _WYLIE_TOKEN.finditer(lowered):
        kind, value = match.lastgroup, match.group()
        if kind == "other":
            return None
        if kind == "word":
            syllables.append(value)
            pieces.append(value)
        elif kind == "digits":
            pieces.append(value)
        elif kind == "punct":
            pieces.append(" / ")
        else:
            pieces.append(" ")
    if len(syllables) < 2:
        return None
    converted = _convert(" ".join("".join(pieces).split()))
    tibetan = [_convert(s) for s in syllables]
    if converted is None or any(t is None or not _TIBETAN_SYLLABLE.match(t) for t in tibetan):
        return None
    plausible = sum(1 for w, t in zip(syllables, tibetan)
                    if words.attested_share([t]) or _TIBETAN_ONLY_SHAPE.search(w)) / len(syllables)
    if plausible < MIN_ATTESTED:
        return None
    if words.attested_share(tibetan) < 1 and not any(_TIBETAN_ONLY_SHAPE.search(w) for w in syllables) and (
        all(w.replace("'", "") in _PINYIN for w in syllables)
    ):
        return None  # every syllable pinyin and not all of them Tibetan words: pinyin
    if sum(1 for w in syllables if w in _ENGLISH) * 3 >= len(syllables):
        return None
    return _tidy(converted)


def _tidy(tibetan: str) -> str:
    """Tibetan spacing: a tsheg before digits, none before a shad but after ང, no shad after ག/ཀ."""
    tibetan = re.sub(r"([\u0f40-\u0fbc]) +(?=[\u0f20-\u0f29])", "\\1\u0f0b", tibetan)
    tibetan = re.sub(r"([\u0f20-\u0f29]) +(?=[\u0f40-\u0fbc])", "\\1\u0f0b", tibetan)
    tibetan = re.sub(r"(?<!ང)\u0f0b?\u0f0d", "\u0f0d", tibetan)
    tibetan = re.sub(r"(?<=[གཀ])\u0f0d", " ", tibetan)
    return re.sub(r" {2,}", " ", tibetan).strip()


def _convert(wylie: str) -> str | None:
    warnings: list[str] = []
    converted = _converter.toUnicode(wylie, warnings)
    if warnings or _LATIN.search(converted):
        return None
    return converted
