"""The supervision sweep: fire the milestones that are due (remind, urge 催办, escalate, overdue checks).

One pass leases a batch of due milestones with their cases (on PostgreSQL `FOR UPDATE SKIP LOCKED`,
so several instances share the work and never take the same row), fires each as a lifecycle step
of the system actor and marks it fired, all in one transaction: a pass that dies half-way leaves
nothing doubled and nothing skipped. A milestone the case no longer owes (it moved on, or the
deadline moved) is closed without an event.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from . import cases, deadlines
from .db import writing
from .models import Case, CaseMilestone
from .timeutil import utcnow

log = logging.getLogger("gridbot.supervision")

BATCH = 200


@dataclass
class SweepResult:
    fired: dict[str, int] = field(default_factory=dict)
    dropped: int = 0

    @property
    def total(self) -> int:
        return sum(self.fired.values()) + self.dropped


async def due_milestones(session: AsyncSession, now: datetime, limit: int) -> list[tuple[CaseMilestone, Case]]:
    """Due, unfired milestones with their cases, oldest first, locked for this transaction."""
    query = (
        select(CaseMilestone, Case)
        .join(Case, Case.id == CaseMilestone.case_id)
        .where(CaseMilestone.fired_at.is_(None), CaseMilestone.due_at <= now)
        .order_by(CaseMilestone.due_at, CaseMilestone.id)
        .limit(limit)
        .execution_options(populate_existing=True)
    )
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=[CaseMilestone.__table__, Case.__table__])
    return [(m, c) for m, c in (await session.execute(query)).unique().all()]


async def sweep_once(session: AsyncSession, now: datetime | None = None, limit: int = BATCH) -> SweepResult:
    """Fire what is due, in the caller's (write) transaction."""
    now = now or utcnow()
    result = SweepResult()
    for milestone, case in await due_milestones(session, now, limit):
        milestone.fired_at = now
        if not deadlines.still_owed(case, milestone):
            result.dropped += 1
            continue
        event = await cases.system_step(session, case, milestone.trigger, now)
        milestone.event_id = event.id
        result.fired[milestone.trigger] = result.fired.get(milestone.trigger, 0) + 1
    await session.flush()
    return result


async def sweep(sessionmaker: async_sessionmaker[AsyncSession], now: datetime | None = None,
                limit: int = BATCH, max_batches: int = 50) -> SweepResult:
    """Passes of `limit` milestones, each its own transaction, until nothing is due (or `max_batches`)."""
    total = SweepResult()
    for _ in range(max_batches):
        async with sessionmaker.begin() as session:
            await writing(session)
            result = await sweep_once(session, now, limit)
        for trigger, count in result.fired.items():
            total.fired[trigger] = total.fired.get(trigger, 0) + count
        total.dropped += result.dropped
        if result.total < limit:
            break
    if total.total:
        log.info("supervision sweep: %s fired, %s no longer owed", total.fired, total.dropped)
    return total


async def pending_count(session: AsyncSession, now: datetime | None = None) -> int:
    """Milestones due now and not yet fired (a metric: should stay near zero)."""
    now = now or utcnow()
    return await session.scalar(
        select(func.count()).select_from(CaseMilestone).where(CaseMilestone.fired_at.is_(None), CaseMilestone.due_at <= now)
    )
