"""Reading the published matter list, and suggesting matters from what a person typed."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Matter

_TIBETAN_BREAK = re.compile(r"[\u0f0b-\u0f14\s]+")

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


def _syllables(text: str) -> list[str]:
    return [s for s in _TIBETAN_BREAK.split(text) if s]


def _contains_tibetan(text_syllables: list[str], keyword: str) -> bool:
    """Whole-syllable match, so that ལམ does not match inside ལམ་སྒྲོན's neighbours by accident."""
    wanted = _syllables(keyword)
    n = len(wanted)
    return n > 0 and any(text_syllables[i : i + n] == wanted for i in range(len(text_syllables) - n + 1))


def score(matter: Matter, text: str) -> int:
    """How strongly the text points at the matter: the length of the keywords it contains."""
    lowered = text.lower()
    syllables = _syllables(text)
    total = 0
    for keyword in matter.keywords_zh + [matter.name_zh]:
        if keyword and keyword.lower() in lowered:
            total += len(keyword)
    for keyword in matter.keywords_bo + [matter.name_bo]:
        if keyword and _contains_tibetan(syllables, keyword.strip("།་ ")):
            total += 2 * len(_syllables(keyword))
    return total


async def suggest_matters(session: AsyncSession, text: str, limit: int = 3) -> list[Matter]:
    """Up to `limit` published matters whose keywords (in either language) appear in the text."""
    scored = [(score(m, text), m) for m in await published_matters(session)]
    scored = [(s, m) for s, m in scored if s > 0]
    scored.sort(key=lambda pair: (-pair[0], pair[1].code))
    return [m for _, m in scored[:limit]]
