"""The supervision sweep: fire the milestones that are due (remind, urge 催办, escalate, overdue checks).

One pass takes a batch of due work with its cases (on PostgreSQL `FOR UPDATE SKIP LOCKED`, so
several instances share the work and never take the same row), fires each as a lifecycle step of
the system actor and marks it fired, all in one transaction: a pass that dies half-way leaves
nothing doubled and nothing skipped. Two kinds of due work:

* armed milestones (`case_milestones` rows not yet fired, due now): remind, escalate_overdue;
* passed deadlines: cases in a stage whose deadline is past and whose deadline milestone (urge,
  verification_overdue) has no row yet for that deadline. Its row is inserted first with
  ON CONFLICT DO NOTHING on (case, stage, trigger, deadline): only the instance that inserted it
  fires it, so each fires exactly once per case and deadline.

A milestone the case no longer owes (it moved on, or the deadline moved) is closed without an event.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import exists, func, literal_column, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from . import cases, deadlines
from .db import writing
from .lifecycle import STAGES, Stage
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
        select(CaseMilestone.id, CaseMilestone.case_id)
        .join(Case, Case.id == CaseMilestone.case_id)
        .where(CaseMilestone.fired_at.is_(None), CaseMilestone.due_at <= now)
        .order_by(CaseMilestone.due_at)  # no tie-break: the index gives this order, so LIMIT stops early
        .limit(limit)
    )
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=[CaseMilestone.__table__, Case.__table__])
    rows = (await session.execute(query)).all()
    milestones = await _load(session, CaseMilestone, [m for m, _ in rows])
    found = await _load(session, Case, [c for _, c in rows])
    return [(milestones[m], found[c]) for m, c in rows]


async def passed_deadlines(session: AsyncSession, stage: Stage, now: datetime, limit: int) -> list[Case]:
    """Cases in `stage` whose deadline passed and whose deadline milestone has not fired for it."""
    trigger = deadlines.deadline_trigger(stage)
    due = getattr(Case, stage.deadline_field)
    fired = aliased(CaseMilestone)
    # The states as literals, so that the stage's partial index (models.DEADLINE_INDEXES) applies.
    query = (
        select(Case.id)
        .where(Case.state.in_([literal_column(f"'{state}'") for state in stage.states]), due <= now)
        .where(~exists().where(fired.case_id == Case.id, fired.stage == stage.name, fired.trigger == trigger,
                               fired.deadline == due))
        .order_by(due)
        .limit(limit)
    )
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=Case.__table__)
    ids = list(await session.scalars(query))
    found = await _load(session, Case, ids)
    return [found[i] for i in ids]


async def _load(session: AsyncSession, model, ids: list[int]) -> dict:
    """Rows already locked by the caller, as fresh ORM objects by id."""
    if not ids:
        return {}
    rows = await session.scalars(select(model).where(model.id.in_(ids)).execution_options(populate_existing=True))
    return {row.id: row for row in rows.unique()}


async def claim(session: AsyncSession, case: Case, stage: Stage, trigger: str, deadline: datetime, now: datetime) -> int | None:
    """Insert the milestone's row as fired; None when another sweep already did (it fires it, not us)."""
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(CaseMilestone)
        .values(case_id=case.id, stage=stage.name, trigger=trigger, deadline=deadline, due_at=deadline, fired_at=now)
        .on_conflict_do_nothing(index_elements=["case_id", "stage", "trigger", "deadline"])
        .returning(CaseMilestone.id)
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def sweep_once(session: AsyncSession, now: datetime | None = None, limit: int = BATCH) -> SweepResult:
    """Fire what is due (at most `limit` of each kind), in the caller's (write) transaction."""
    now = now or utcnow()
    result = SweepResult()
    session.info["audience_cache"] = {}  # the same centres and departments, batch after batch

    def count(trigger: str) -> None:
        result.fired[trigger] = result.fired.get(trigger, 0) + 1

    for milestone, case in await due_milestones(session, now, limit):
        milestone.fired_at = now
        if not deadlines.still_owed(case, milestone):
            result.dropped += 1
            continue
        milestone.event = await cases.system_step(session, case, milestone.trigger, now)
        count(milestone.trigger)
    for stage in STAGES:
        trigger = deadlines.deadline_trigger(stage)
        if trigger is None:
            continue
        for case in await passed_deadlines(session, stage, now, limit):
            deadline = getattr(case, stage.deadline_field)
            claimed = await claim(session, case, stage, trigger, deadline, now)
            if claimed is None:
                continue
            event = await cases.system_step(session, case, trigger, now)
            (await session.get(CaseMilestone, claimed)).event = event
            deadlines.arm_after_deadline(session, case, stage, deadline)
            count(trigger)
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
