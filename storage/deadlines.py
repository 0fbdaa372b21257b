"""Deadlines of a case's stages and the milestones they arm (the stages are in `lifecycle.STAGES`).

When a step begins a stage (its `starts` in the lifecycle table) the store sets that stage's
deadline and arms its reminder; when the case leaves the stage, what it no longer owes is dropped.
The supervision sweep (`storage.supervision`) fires what is due: armed milestones (`remind`, and
`escalate_overdue`, armed when the deadline's own milestone fires) and the deadline milestones
(`urge`, `verification_overdue`), which it finds from the case's deadline itself, so that a
deadline changed in any way (an extension, an upgrade, a correction in the database) is honoured.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from .lifecycle import AT_DEADLINE, DAY_AFTER, REMIND, STAGE_BY_NAME, Stage, stage_of
from .models import Case, CaseMilestone, Matter
from .workdays import ONE_WORKING_DAY, TimeLimit

VERIFICATION_LIMIT = TimeLimit(24, "hours")  # Art. 17: on-site verification within 24 hours
RATING_LIMIT = TimeLimit(7 * 24, "hours")  # an unsatisfied rating within 7 days reopens the case
DEFAULT_ACCEPT_LIMIT = TimeLimit(2, "working_hours")
MAX_EXTENSION = timedelta(days=60)  # a new deadline further out than this is refused as absurd


def remind_fraction() -> float:
    """How much of a time limit passes before the holder is reminded (`GRIDBOT_REMIND_AT`, 0.75)."""
    value = float(os.environ.get("GRIDBOT_REMIND_AT", "0.75"))
    return value if 0 < value < 1 else 0.75


def handling_limit(matter: Matter) -> TimeLimit:
    """限时办结: the matter's time limit, in working days or in hours."""
    if matter.time_limit_working_days:
        return TimeLimit(matter.time_limit_working_days, "working_days")
    return TimeLimit(matter.time_limit_hours or 72, "hours")


def accept_limit(matter: Matter) -> TimeLimit:
    """受理时限: clock hours for urgent matters, otherwise working hours (2 unless the list says)."""
    if matter.accept_within_hours:
        return TimeLimit(matter.accept_within_hours, "hours")
    if matter.accept_within_working_hours:
        return TimeLimit(matter.accept_within_working_hours, "working_hours")
    return DEFAULT_ACCEPT_LIMIT


STAGE_LIMITS = {
    "accept": accept_limit,
    "handle": handling_limit,
    "verify": lambda matter: VERIFICATION_LIMIT,
    "rate": lambda matter: RATING_LIMIT,
}


def stage_limit(stage: Stage, matter: Matter) -> TimeLimit:
    return STAGE_LIMITS[stage.name](matter)


def deadline_of(case: Case) -> tuple[str, datetime] | None:
    """The current stage's name and deadline, when the case is in a stage with one."""
    stage = stage_of(case.state)
    if stage is None:
        return None
    due = getattr(case, stage.deadline_field)
    return (stage.name, due) if due is not None else None


def is_overdue(case: Case, now: datetime) -> bool:
    current = deadline_of(case)
    return current is not None and current[0] != "rate" and current[1] <= now


def _milestone_time(when: str, start: datetime, deadline: datetime, limit: TimeLimit | None) -> datetime:
    if when == AT_DEADLINE:
        return deadline
    if when == DAY_AFTER:
        return ONE_WORKING_DAY.due(deadline)
    assert when == REMIND
    if limit is not None:
        return limit.at(start, remind_fraction())
    return start + (deadline - start) * remind_fraction()


async def begin_stage(
    session: AsyncSession, case: Case, stage_name: str, now: datetime, *, deadline: datetime | None = None
) -> datetime | None:
    """Start `stage_name`'s clock (or restart it with a given deadline, e.g. an approved extension)."""
    stage = STAGE_BY_NAME[stage_name]
    await drop_milestones(session, case)
    if stage.name == "verify" and not case.matter.needs_onsite_verification:
        return None  # results of such matters are confirmed by the centre, with no on-site limit
    limit = None if deadline is not None else stage_limit(stage, case.matter)
    deadline = deadline or limit.due(now)
    setattr(case, stage.deadline_field, deadline)
    for trigger, when in stage.milestones:
        if when == REMIND:
            due_at = _milestone_time(when, now, deadline, limit)
            session.add(CaseMilestone(case_id=case.id, stage=stage.name, trigger=trigger, deadline=deadline, due_at=due_at))
    return deadline


def arm_after_deadline(session: AsyncSession, case: Case, stage: Stage, deadline: datetime) -> None:
    """The deadline passed unmet: arm what follows it (escalation one working day later)."""
    for trigger, when in stage.milestones:
        if when == DAY_AFTER:
            due_at = _milestone_time(when, deadline, deadline, None)
            session.add(CaseMilestone(case_id=case.id, stage=stage.name, trigger=trigger, deadline=deadline, due_at=due_at))


def deadline_trigger(stage: Stage) -> str | None:
    """The milestone a stage fires when its deadline passes (urge, verification_overdue)."""
    return next((trigger for trigger, when in stage.milestones if when == AT_DEADLINE), None)


async def drop_milestones(session: AsyncSession, case: Case) -> None:
    """Forget the milestones not yet fired: the case left the stage, or its deadline moved."""
    await session.execute(
        delete(CaseMilestone).where(CaseMilestone.case_id == case.id, CaseMilestone.fired_at.is_(None))
    )


def still_owed(case: Case, milestone: CaseMilestone) -> bool:
    """A milestone fires only while the case is in its stage and that stage's deadline is unchanged."""
    stage = stage_of(case.state)
    return (
        stage is not None
        and stage.name == milestone.stage
        and getattr(case, stage.deadline_field) == milestone.deadline
    )
