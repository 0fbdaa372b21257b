"""Reading the published matter list, and suggesting matters from what a person typed.

A suggestion ranks the published matters by the words a text shares with each matter's keywords,
name and description: Chinese segmented by jieba (taught the matter list's words), Tibetan by
syllables (botok), rarer words weighing more. Where a Chinese word matches nothing, the characters
it shares with a matter's name and keywords count a little (大坑 → 坑洼).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from . import words
from .models import Matter

# Field weights: a keyword says most, then the name, then the description.
KEYWORD, NAME, DESCRIPTION = 3.0, 2.0, 1.0
CHARACTER = 0.4  # a character shared with a name or keyword, for a word that matched nothing whole
CHINESE_STOPWORDS = frozenset(
    "的 了 有 是 在 很 也 都 和 与 及 或 我 你 他 她 我们 他们 这 那 这个 那个 一个 一 个 就 还 又 被 把 给 让 从 到 对 "
    "吗 呢 吧 啊 呀 说 要 想 会 能 可以 没有 不 没 上 下 里 中 好 太 非常 已经 现在 请 帮 帮忙 一下 怎么 什么 问题 情况 "
    "等 等等 由 或者 以及 造成 出现 需要 进行 影响".split()
)
TIBETAN_STOPWORDS = frozenset("འདུག ཡོད རེད ཡིན མིན མེད བྱས བྱེད སོང བྱུང ཞིག ཅིག ཤིག འདི དེ ང ངའི ཁྱེད རང པ བ པོ བོ མ ཚོ".split())
_HAN_COMMON = frozenset("的了有是在不人一大小中上下")


@dataclass(frozen=True)
class _Entry:
    code: str
    terms: dict[str, float]  # word → weight
    characters: frozenset[str]  # Han characters of the name and keywords


def _chinese_terms(text: str) -> list[str]:
    return [w for w in words.chinese_words(text, for_search=True) if w not in CHINESE_STOPWORDS]


def _tibetan_terms(text: str) -> list[str]:
    """Syllables (particles dropped) and pairs of neighbouring syllables."""
    syllables = words.tibetan_syllables(text)
    particles = words.tibetan_particles()
    singles = [s for s in syllables if s not in particles and s not in TIBETAN_STOPWORDS]
    pairs = [f"{a}་{b}" for a, b in zip(syllables, syllables[1:])]
    return singles + pairs


def _terms(text: str) -> list[str]:
    return _chinese_terms(text) + _tibetan_terms(text)


@lru_cache(maxsize=8)
def _index(matters: tuple[tuple, ...]) -> tuple[tuple[_Entry, ...], dict[str, float]]:
    """Each matter's weighted words, and each word's rarity across the list (idf)."""
    words.add_chinese_words([w for m in matters for w in (m[1], *m[5])])
    entries = []
    document_count: dict[str, int] = defaultdict(int)
    for code, name_zh, name_bo, description_zh, description_bo, keywords_zh, keywords_bo in matters:
        terms: dict[str, float] = {}
        for weight, texts in ((DESCRIPTION, [description_zh, description_bo]), (NAME, [name_zh, name_bo]),
                              (KEYWORD, [*keywords_zh, *keywords_bo])):
            for text in texts:
                found = _terms(text)
                if weight == KEYWORD and words.has_chinese(text):
                    found.append(text)  # the keyword itself, whole
                for term in found:
                    terms[term] = max(terms.get(term, 0.0), weight)
        characters = frozenset(c for text in (name_zh, *keywords_zh) for c in text if c not in _HAN_COMMON)
        for term in terms:
            document_count[term] += 1
        entries.append(_Entry(code, terms, characters))
    total = len(entries)
    idf = {term: math.log(1 + total / count) for term, count in document_count.items()}
    return tuple(entries), idf


def _key(matter: Matter) -> tuple:
    return (matter.code, matter.name_zh, matter.name_bo, matter.description_zh or "", matter.description_bo or "",
            tuple(matter.keywords_zh or ()), tuple(matter.keywords_bo or ()))


def rank(listed: list[Matter], text: str) -> list[tuple[float, Matter]]:
    """The matters with any word in common with the text, best first, with their scores."""
    entries, idf = _index(tuple(_key(m) for m in listed))
    by_code = {m.code: m for m in listed}
    query = set(_terms(text))
    character_idf = math.log(1 + len(entries))
    scored = []
    for entry in entries:
        score = 0.0
        for term in query:
            if term in entry.terms:
                score += entry.terms[term] * idf[term]
            elif words.has_chinese(term) and not any(term in other.terms for other in entries):
                shared = sum(1 for c in set(term) if c in entry.characters)
                score += CHARACTER * shared * character_idf / max(len(term), 1)
        if score > 0:
            scored.append((score, by_code[entry.code]))
    scored.sort(key=lambda pair: (-pair[0], pair[1].code))
    return scored

# Matters about particular people (Art. 21: base data on people, disputes, vulnerable groups,
# public health, policy questions about one's own situation) and matters of public security:
# their cases are never published, and part-time grid workers do not read their details.
SENSITIVE_WORK_KINDS = frozenset({"base_data", "dispute", "vulnerable_groups", "public_health", "policy_outreach"})
SENSITIVE_DEPARTMENTS = frozenset({"public_security"})


def about_particular_people(matter: Matter) -> bool:
    department = matter.department
    return matter.work_kind in SENSITIVE_WORK_KINDS or (
        department is not None and department.code in SENSITIVE_DEPARTMENTS
    )


async def published_matters(session: AsyncSession) -> list[Matter]:
    rows = await session.scalars(select(Matter).where(Matter.withdrawn_at.is_(None)).order_by(Matter.code))
    return list(rows)


async def suggest_matters(session: AsyncSession, text: str, limit: int = 3) -> list[Matter]:
    """Up to `limit` published matters the text is most likely about (in either language)."""
    return [m for _, m in rank(await published_matters(session), text)[:limit]]
