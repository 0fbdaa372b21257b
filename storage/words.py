"""Words in free text: which language it is written in, and its words for matching.

Chinese is segmented with jieba (its dictionary extended with the matter list's words), Tibetan into
syllables with botok's offline chunk tokenizer after botok's Unicode normalisation. Latin letters and
digits are words of neither language. This is the one language detector of the product (dialogs,
Open311, the API): it counts words, not code points, and text with a fair share of both languages is
'mixed'.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
MIXED = "mixed"
# The smaller language's share of the words from which a text counts as written in both.
MIXED_SHARE = 0.2

_HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_TIBETAN_RUN = re.compile(r"[\u0f00-\u0fff]+(?:[ \u00a0]+[\u0f00-\u0fff]+)*")
_TIBETAN_LETTERS = re.compile(r"^[\u0f40-\u0fbc]+$")
_TIBETAN_BREAK = re.compile(r"[\u0f0b-\u0f14\s]+")


# -- Tibetan ---------------------------------------------------------------------------------

def normalise_tibetan(text: str) -> str:
    """botok's normalisation: NFC is not enough (a vowel typed before a subjoined letter is reordered)."""
    from botok import normalize_unicode

    return normalize_unicode(text)


def tibetan_syllables(text: str) -> list[str]:
    """The Tibetan syllables of the text, without tsheg or shad (botok's ChunkTokenizer, offline)."""
    from botok import ChunkTokenizer

    found: list[str] = []
    for run in _TIBETAN_RUN.findall(text):
        for kind, chunk in ChunkTokenizer(normalise_tibetan(run)).tokenize():
            if kind != "TEXT":
                continue
            for syllable in _TIBETAN_BREAK.split(chunk):
                if _TIBETAN_LETTERS.match(syllable):
                    found.append(syllable)
    return found


@lru_cache(maxsize=1)
def tibetan_particles() -> frozenset[str]:
    """Grammatical particles, from botok's offline resources: not words to match a matter by."""
    import botok

    path = Path(botok.__file__).resolve().parent / "resources" / "particles.tsv"
    forms = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            forms.add(line.split("\t", 1)[0].strip("་"))
    return frozenset(forms)


@lru_cache(maxsize=1)
def tibetan_lexicon() -> frozenset[str]:
    """Syllables attested in Tibetan words: `data/bo_words.txt` (see its header) and the matter list."""
    syllables: set[str] = set(tibetan_particles())
    for line in (DATA / "bo_words.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            syllables.update(s for s in _TIBETAN_BREAK.split(line) if s)
    syllables.update(tibetan_syllables((DATA / "matters.yaml").read_text(encoding="utf-8")))
    return frozenset(syllables)


def attested_share(syllables: list[str]) -> float:
    """The share of the syllables that are attested Tibetan (0 for none)."""
    if not syllables:
        return 0.0
    lexicon = tibetan_lexicon()
    return sum(1 for s in syllables if s in lexicon or _without_affix(s) in lexicon) / len(syllables)


def _without_affix(syllable: str) -> str:
    """A syllable without an affixed particle (མའི → མ, མིས → མི, ཁར → ཁ)."""
    for affix in ("འི", "འོ", "འང", "འམ"):
        if syllable.endswith(affix) and len(syllable) > len(affix):
            return syllable[: -len(affix)]
    if len(syllable) >= 2 and syllable[-1] in "སར":
        return syllable[:-1]
    return syllable


# -- Chinese ---------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    return tokenizer


def add_chinese_words(words: list[str] | tuple[str, ...]) -> None:
    """Teach the segmenter words it should keep whole (the matter list's names and keywords)."""
    tokenizer = _jieba()
    for word in words:
        if word and _HAN_RUN.fullmatch(word) and tokenizer.FREQ.get(word, 0) == 0:
            tokenizer.add_word(word, freq=2000)


def chinese_words(text: str, *, for_search: bool = False) -> list[str]:
    """The Chinese words of the text (Han characters only). `for_search` adds the shorter words inside long ones."""
    tokenizer = _jieba()
    words: list[str] = []
    for run in _HAN_RUN.findall(text):
        words.extend(tokenizer.lcut_for_search(run) if for_search else tokenizer.lcut(run))
    return [w for w in words if _HAN_RUN.fullmatch(w)]


# -- which language ---------------------------------------------------------------------------

def detect_language(text: str) -> str | None:
    """'zh', 'bo' or 'mixed' by the words of each language in the text; None when it has words of neither."""
    zh = len(chinese_words(text)) if _HAN_RUN.search(text) else 0
    bo = len(tibetan_syllables(text)) if _TIBETAN_RUN.search(text) else 0
    if not zh and not bo:
        return None
    if min(zh, bo) / (zh + bo) >= MIXED_SHARE:
        return MIXED
    return "zh" if zh > bo else "bo"


def has_chinese(text: str) -> bool:
    return bool(_HAN_RUN.search(text))


def has_tibetan(text: str) -> bool:
    return bool(_TIBETAN_RUN.search(text))
