"""The audit trail (Art. 19): who viewed and who changed a case, readable by those accountable.

Views are the CaseView rows (chat cards, API items and API lists), changes the case events.
Grid chiefs and grid centre staff read the trail of the cases in their area; `gridbot audit
export` writes all of it as CSV for the administrators.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Case, CaseEvent, CaseView, Person
from .reading import Reader

AUDIT_READERS = frozenset({Reader.grid_chief, Reader.centre_staff})  # overall responsibility for the area


def may_read_audit(readers: Iterable[Reader]) -> bool:
    return bool(AUDIT_READERS & set(readers))


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    kind: str  # view | change
    case_number: str
    person_id: int | None  # None: the system (time-limit sweep, retention)
    name: str | None
    role: str
    what: str  # the channel of a view, the action of a change


async def case_trail(session: AsyncSession, case: Case) -> list[AuditEntry]:
    """Every view and change of one case, oldest first."""
    views = list(await session.scalars(select(CaseView).where(CaseView.case_id == case.id)))
    events = list(await session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id)))
    names = await _names(session, {v.person_id for v in views} | {e.actor_id for e in events if e.actor_id})
    entries = [AuditEntry(v.viewed_at, "view", case.number, v.person_id, names.get(v.person_id), v.role, v.channel)
               for v in views]
    entries += [AuditEntry(e.created_at, "change", case.number, e.actor_id, names.get(e.actor_id), e.actor_role, e.action)
                for e in events]
    return sorted(entries, key=lambda e: (e.at, e.kind != "change"))


@dataclass(frozen=True)
class TrailSummary:
    views: int
    viewers: int
    changes: int
    last_view: CaseView | None


async def trail_summary(session: AsyncSession, case: Case) -> TrailSummary:
    views = list(await session.scalars(select(CaseView).where(CaseView.case_id == case.id).order_by(CaseView.id)))
    changes = len(list(await session.scalars(select(CaseEvent.id).where(CaseEvent.case_id == case.id))))
    return TrailSummary(len(views), len({v.person_id for v in views}), changes, views[-1] if views else None)


async def _names(session: AsyncSession, ids: set[int]) -> dict[int, str | None]:
    if not ids:
        return {}
    rows = await session.execute(select(Person.id, Person.display_name).where(Person.id.in_(ids)))
    return {person_id: name for person_id, name in rows}


EXPORT_COLUMNS = ["at", "kind", "case", "person_id", "name", "role", "what"]


async def export_csv(session: AsyncSession, since: datetime, out: io.TextIOBase) -> int:
    """Write every view and change since `since` as CSV (UTC times); returns the number of rows."""
    views = await session.execute(
        select(CaseView, Case.number).join(Case, Case.id == CaseView.case_id).where(CaseView.viewed_at >= since)
    )
    events = await session.execute(
        select(CaseEvent, Case.number).join(Case, Case.id == CaseEvent.case_id).where(CaseEvent.created_at >= since)
    )
    entries = [AuditEntry(v.viewed_at, "view", number, v.person_id, None, v.role, v.channel) for v, number in views]
    entries += [AuditEntry(e.created_at, "change", number, e.actor_id, None, e.actor_role, e.action) for e, number in events]
    names = await _names(session, {e.person_id for e in entries if e.person_id})
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    for entry in sorted(entries, key=lambda e: (e.at, e.case_number)):
        writer.writerow([entry.at.isoformat(timespec="seconds"), entry.kind, entry.case_number,
                         entry.person_id if entry.person_id is not None else "", names.get(entry.person_id) or "",
                         entry.role, entry.what])
    return len(entries)
