"""Time limits that act (限时办结, Art. 17): deadlines per stage, the supervision sweep, extensions,
returns and withdrawal, on SQLite and PostgreSQL, with a controllable clock."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import delete, func, select, update

from storage import cases, supervision, workdays
from storage.cases import CaseStore, InvalidInput
from storage.lifecycle import CaseNotFound, MissingInput, NotAllowedInState, NotPermitted, Refused
from storage.models import Case, CaseEvent, CaseMilestone, Notification
from storage.seed import load_matters
from storage.timeutil import LOCAL_TZ
from tests.conftest import MATTERS


def lhasa(*args) -> datetime:
    """A moment given in Lhasa time (Asia/Shanghai), as the store keeps it (UTC)."""
    return datetime(*args, tzinfo=LOCAL_TZ).astimezone(timezone.utc)


EXTRA_MATTERS = {
    "departments": MATTERS["departments"],
    "matters": [
        dict(code="WALL", work_kind="safety_hazard", name_zh="危墙", name_bo="རྩིག་པ་ཉེན་ཁ།", department="urban",
             time_limit_working_days=2, needs_onsite_verification=True, keywords_zh=["墙"], keywords_bo=[]),
        dict(code="FIRE", work_kind="safety_hazard", name_zh="燃气隐患", name_bo="རླངས་རྫས་ཉེན་ཁ།", department="urban",
             time_limit_hours=24, urgent=True, accept_within_hours=1, needs_onsite_verification=True,
             keywords_zh=["燃气"], keywords_bo=[]),
    ],
}

BAD_INPUT = (InvalidInput, MissingInput)
TUESDAY_10 = lhasa(2026, 12, 1, 10, 0)  # a working day, office hours 09:00–18:00


@pytest.fixture
async def store(sessionmaker, world):
    async with sessionmaker.begin() as session:
        await load_matters(session, EXTRA_MATTERS)
    return CaseStore(sessionmaker)


async def report(store, w, now=TUESDAY_10, **overrides):
    values = dict(reporter_id=w.resident, matter_code="LIGHT", description="楼下路灯坏了三天", language="zh",
                  latitude=29.652, longitude=91.122, contact_phone="13812345678", now=now)
    values.update(overrides)
    return await store.open_case(**values)


async def events(sessionmaker, case_id, *actions):
    async with sessionmaker() as session:
        rows = await session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id))
        return [e for e in rows if not actions or e.action in actions]


async def notices(sessionmaker, case_id, key_prefix=""):
    async with sessionmaker() as session:
        rows = await session.scalars(select(Notification).where(Notification.case_id == case_id).order_by(Notification.id))
        return [n for n in rows if n.message_key.startswith(key_prefix)]


async def sweep(sessionmaker, now):
    result = await supervision.sweep(sessionmaker, now=now)
    return result.fired


# ---------------------------------------------------------------- working days


def test_working_days_skip_the_national_day_holiday_and_count_the_make_up_saturday():
    # Tue 2026-09-29 15:00 + 3 working days: Wed 30, then the National Day week is off (1–7 Oct),
    # Thu 8, Fri 9 → due Fri 2026-10-09 15:00.
    start = lhasa(2026, 9, 29, 15, 0)
    assert workdays.TimeLimit(3, "working_days").due(start) == lhasa(2026, 10, 9, 15, 0)
    # Sat 2026-10-10 is a make-up working day (调休): Fri 9 Oct 15:00 + 1 working day is Sat 10 Oct 15:00.
    assert workdays.TimeLimit(1, "working_days").due(lhasa(2026, 10, 9, 15, 0)) == lhasa(2026, 10, 10, 15, 0)
    # An ordinary Saturday is not: Fri 2026-11-27 15:00 + 1 working day is Mon 30 Nov 15:00.
    assert workdays.TimeLimit(1, "working_days").due(lhasa(2026, 11, 27, 15, 0)) == lhasa(2026, 11, 30, 15, 0)


def test_working_hours_start_at_the_next_opening():
    # Reported Friday 17:30 with 2 working hours: half an hour on Friday, 1.5 h on Monday.
    assert workdays.TimeLimit(2, "working_hours").due(lhasa(2026, 11, 27, 17, 30)) == lhasa(2026, 11, 30, 10, 30)
    # Reported on Saturday night: the clock starts Monday 09:00.
    assert workdays.TimeLimit(2, "working_hours").due(lhasa(2026, 11, 28, 23, 0)) == lhasa(2026, 11, 30, 11, 0)
    # Clock hours run through nights and weekends.
    assert workdays.TimeLimit(24, "hours").due(lhasa(2026, 11, 28, 23, 0)) == lhasa(2026, 11, 29, 23, 0)


def test_a_year_the_calendar_does_not_know_falls_back_to_monday_to_friday(caplog):
    workdays._warned_years.discard(2031)
    with caplog.at_level(logging.WARNING, logger="gridbot.workdays"):
        # Fri 2031-01-03 10:00 + 1 working day → Mon 2031-01-06 10:00, with one warning.
        assert workdays.TimeLimit(1, "working_days").due(lhasa(2031, 1, 3, 10, 0)) == lhasa(2031, 1, 6, 10, 0)
        workdays.TimeLimit(1, "working_days").due(lhasa(2031, 1, 7, 10, 0))
    warnings = [r for r in caplog.records if "2031" in r.getMessage()]
    assert len(warnings) == 1


def test_absurd_time_limits_are_refused():
    for amount in (0, -3, 10**7):
        with pytest.raises(ValueError):
            workdays.TimeLimit(amount, "hours")
    with pytest.raises(ValueError):
        workdays.TimeLimit(2, "fortnights")


async def test_the_matter_list_refuses_a_matter_without_one_time_limit(sessionmaker, world):
    bad = {"departments": MATTERS["departments"], "matters": [dict(MATTERS["matters"][0], code="BAD", time_limit_working_days=3)]}
    async with sessionmaker.begin() as session:
        with pytest.raises(ValueError, match="one of them"):
            await load_matters(session, bad)


def test_each_stage_deadline_has_its_partial_index_for_the_sweep():
    from storage.lifecycle import STAGES
    from storage.models import DEADLINE_INDEXES

    def states(where: str) -> set[str]:
        return set(re.findall(r"'(\w+)'", where))

    stages = {s.deadline_field: set(s.states) for s in STAGES if s.name != "rate"}
    assert {field: states(where) for field, where in DEADLINE_INDEXES.items()} == stages


# ---------------------------------------------------------------- a deadline for every stage


async def test_every_stage_has_its_deadline(sessionmaker, store, world):
    case = await report(store, world)
    assert case.accept_deadline == lhasa(2026, 12, 1, 12, 0)  # 2 working hours
    urgent = await report(store, world, matter_code="FIRE")
    assert urgent.accept_deadline == lhasa(2026, 12, 1, 11, 0)  # 1 clock hour for an urgent matter
    case = await store.act(case.number, world.centre_t1, "accept", now=lhasa(2026, 12, 1, 11, 0))
    case = await store.act(case.number, world.centre_t1, "transfer", department="urban", now=lhasa(2026, 12, 1, 11, 0))
    assert case.handling_deadline == lhasa(2026, 12, 4, 11, 0)  # 72 hours
    wall = await report(store, world, matter_code="WALL")
    await store.act(wall.number, world.centre_t1, "accept", now=lhasa(2026, 12, 4, 17, 0))
    wall = await store.act(wall.number, world.centre_t1, "transfer", department="urban", now=lhasa(2026, 12, 4, 17, 0))
    assert wall.handling_deadline == lhasa(2026, 12, 8, 17, 0)  # Friday 17:00 + 2 working days
    await store.act(case.number, world.handler_urban, "start_handling", now=lhasa(2026, 12, 2, 9, 0))
    case = await store.act(case.number, world.handler_urban, "submit_result", result="已更换灯泡", now=lhasa(2026, 12, 2, 10, 0))
    assert case.verification_deadline == lhasa(2026, 12, 3, 10, 0)  # 24 hours (Art. 17)
    case = await store.act(case.number, world.worker_g1, "verify_pass", now=lhasa(2026, 12, 2, 15, 0))
    assert case.rating_deadline == lhasa(2026, 12, 9, 15, 0)  # 7 days to rate


# ---------------------------------------------------------------- the sweep


async def test_acceptance_milestones_fire_once_each_at_their_moment(sessionmaker, store, world):
    case = await report(store, world)  # due 12:00, remind at 75 %: 11:30
    assert await sweep(sessionmaker, lhasa(2026, 12, 1, 11, 29)) == {}
    assert await sweep(sessionmaker, lhasa(2026, 12, 1, 11, 31)) == {"remind": 1}
    assert await sweep(sessionmaker, lhasa(2026, 12, 1, 11, 50)) == {}
    assert await sweep(sessionmaker, lhasa(2026, 12, 1, 12, 1)) == {"urge": 1}
    assert await sweep(sessionmaker, lhasa(2026, 12, 2, 11, 59)) == {}
    assert await sweep(sessionmaker, lhasa(2026, 12, 2, 12, 1)) == {"escalate_overdue": 1}  # one working day later
    assert await sweep(sessionmaker, lhasa(2026, 12, 9)) == {}

    fired = await events(sessionmaker, case.id, "remind", "urge", "escalate_overdue")
    assert [(e.action, e.actor_id, e.actor_role, e.data["stage"]) for e in fired] == [
        ("remind", None, "system", "accept"), ("urge", None, "system", "accept"), ("escalate_overdue", None, "system", "accept")]
    told = {(n.message_key, n.recipient_id) for n in await notices(sessionmaker, case.id)}
    assert ("remind.holder", world.centre_t1) in told
    assert ("urge.holder", world.centre_t1) in told and ("urge.reporter", world.resident) in told
    assert ("escalate_overdue.supervisor", world.centre_district) in told
    # The next level now supervises the case: it is in the district centre's queue and it may act.
    async with sessionmaker() as session:
        assert case.id in [c.id for c in await cases.queue_for(session, world.centre_district)]
        again = await cases.load_case(session, case.number)
        assert again.supervising_node.code == "C-D" and again.centre_node.code == "C-D-T1"


async def test_handling_milestones_and_the_resident_hears_the_deadline_passed(sessionmaker, store, world):
    case = await report(store, world)
    await store.act(case.number, world.centre_t1, "accept", now=lhasa(2026, 12, 1, 10, 30))
    case = await store.act(case.number, world.centre_t1, "transfer", department="urban", now=lhasa(2026, 12, 1, 11, 0))
    # Transfer ended the acceptance stage: its milestones are no longer owed.
    assert await sweep(sessionmaker, lhasa(2026, 12, 1, 13, 0)) == {}
    assert await sweep(sessionmaker, lhasa(2026, 12, 3, 16, 59)) == {}
    assert await sweep(sessionmaker, lhasa(2026, 12, 3, 17, 1)) == {"remind": 1}  # 54 of 72 hours
    assert await sweep(sessionmaker, lhasa(2026, 12, 4, 11, 1)) == {"urge": 1}
    urged = await notices(sessionmaker, case.id, "urge.")
    assert {(n.message_key, n.recipient_id) for n in urged} == {
        ("urge.holder", world.handler_urban), ("urge.centre", world.centre_t1), ("urge.reporter", world.resident)}
    reporter_notice = next(n for n in urged if n.message_key == "urge.reporter")
    assert reporter_notice.params["number"] == case.number and reporter_notice.params["deadline"]
    # Fri 11:00 + 1 working day = Mon 11:00.
    assert await sweep(sessionmaker, lhasa(2026, 12, 5, 12, 0)) == {}
    assert await sweep(sessionmaker, lhasa(2026, 12, 7, 11, 1)) == {"escalate_overdue": 1}
    async with sessionmaker() as session:
        again = await cases.load_case(session, case.number)
        assert again.state == "transferred" and again.department.code == "urban"  # the department keeps it


async def test_verification_overdue_tells_the_grid_workers_and_the_chief(sessionmaker, store, world):
    case = await report(store, world)
    for actor, trigger, inputs in [("centre_t1", "accept", {}), ("centre_t1", "transfer", {"department": "urban"}),
                                   ("handler_urban", "start_handling", {}), ("handler_urban", "submit_result", {"result": "好了"})]:
        await store.act(case.number, getattr(world, actor), trigger, now=lhasa(2026, 12, 1, 11, 0), **inputs)
    assert await sweep(sessionmaker, lhasa(2026, 12, 2, 4, 59)) == {}
    assert await sweep(sessionmaker, lhasa(2026, 12, 2, 5, 1)) == {"remind": 1}  # 18 of 24 hours
    assert await sweep(sessionmaker, lhasa(2026, 12, 2, 11, 1)) == {"verification_overdue": 1}
    keys = {(n.message_key, n.recipient_id) for n in await notices(sessionmaker, case.id, "verification_overdue.")}
    assert keys == {("verification_overdue.grid_workers", world.worker_g1), ("verification_overdue.grid_chief", world.chief_g1)}


async def test_a_deadline_moved_in_the_database_is_honoured(sessionmaker, store, world):
    """An operator's correction, or cases transferred before this version: the sweep reads the deadline itself."""
    case = await report(store, world)
    await store.act(case.number, world.centre_t1, "accept", now=lhasa(2026, 12, 1, 10, 30))
    await store.act(case.number, world.centre_t1, "transfer", department="urban", now=lhasa(2026, 12, 1, 11, 0))
    async with sessionmaker.begin() as session:
        await session.execute(update(Case).where(Case.id == case.id).values(handling_deadline=lhasa(2026, 12, 1, 12, 0)))
        await session.execute(delete(CaseMilestone).where(CaseMilestone.case_id == case.id))
    assert await sweep(sessionmaker, lhasa(2026, 12, 1, 11, 59)) == {}
    assert await sweep(sessionmaker, lhasa(2026, 12, 1, 12, 1)) == {"urge": 1}
    assert await sweep(sessionmaker, lhasa(2026, 12, 1, 13, 0)) == {}
    assert ("urge.reporter", world.resident) in {(n.message_key, n.recipient_id) for n in await notices(sessionmaker, case.id)}
    assert await sweep(sessionmaker, lhasa(2026, 12, 2, 12, 1)) == {"escalate_overdue": 1}


async def test_milestones_of_a_case_that_moved_on_are_not_fired(sessionmaker, store, world):
    case = await report(store, world)
    await store.act(case.number, world.centre_t1, "accept", now=lhasa(2026, 12, 1, 11, 45))  # after the reminder time
    assert await sweep(sessionmaker, lhasa(2026, 12, 3)) == {}
    assert await events(sessionmaker, case.id, "remind", "urge", "escalate_overdue") == []


SWEEPER = """
import asyncio, sys
from datetime import datetime
from storage import supervision
from storage.db import make_engine, make_sessionmaker

async def main():
    engine = make_engine(sys.argv[1])
    fired = 0
    for _ in range(20):
        result = await supervision.sweep(make_sessionmaker(engine), now=datetime.fromisoformat(sys.argv[2]), limit=7)
        fired += sum(result.fired.values())
    await engine.dispose()
    print(fired)

asyncio.run(main())
"""


async def test_two_sweeping_instances_on_postgresql_fire_each_milestone_exactly_once(sessionmaker, store, world, migrated_urls):
    if sessionmaker.kw["bind"].dialect.name != "postgresql":
        pytest.skip("several instances need PostgreSQL; SQLite runs one instance")
    for _ in range(30):
        await report(store, world)
    late = lhasa(2026, 12, 2, 12, 30)  # past the reminder, the deadline and one working day after it
    root = Path(__file__).resolve().parent.parent
    instances = [await asyncio.create_subprocess_exec(
        sys.executable, "-c", SWEEPER, migrated_urls["postgresql"], late.isoformat(), cwd=root,
        stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(root)}) for _ in range(2)]
    outputs = [await p.communicate() for p in instances]
    assert all(p.returncode == 0 for p in instances)
    assert sum(int(out.decode().split()[-1]) for out, _ in outputs) == 30 * 3  # remind, urge, escalate_overdue each
    async with sessionmaker() as session:
        counts = (await session.execute(
            select(CaseEvent.case_id, CaseEvent.action, func.count()).where(CaseEvent.actor_role == "system")
            .group_by(CaseEvent.case_id, CaseEvent.action))).all()
    assert len(counts) == 30 * 3 and all(n == 1 for _, _, n in counts)


async def test_a_sweep_that_dies_half_way_leaves_nothing_doubled_or_skipped(sessionmaker, store, world, monkeypatch):
    for _ in range(5):
        await report(store, world)
    real_step, calls = cases.system_step, []

    async def failing_step(session, case, trigger, now, **inputs):
        calls.append(case.number)
        if len(calls) == 3:
            raise ConnectionError("database went away")
        return await real_step(session, case, trigger, now, **inputs)

    monkeypatch.setattr(cases, "system_step", failing_step)
    with pytest.raises(ConnectionError):
        await supervision.sweep(sessionmaker, now=lhasa(2026, 12, 1, 11, 31))
    monkeypatch.setattr(cases, "system_step", real_step)
    assert await sweep(sessionmaker, lhasa(2026, 12, 1, 11, 31)) == {"remind": 5}
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(CaseEvent).where(CaseEvent.action == "remind")) == 5


# ---------------------------------------------------------------- quiet hours


async def test_quiet_hours_hold_resident_notices_not_staff_alarms(sessionmaker, store, world):
    case = await report(store, world)
    await store.act(case.number, world.centre_t1, "accept", now=lhasa(2026, 12, 1, 11, 0))
    await store.act(case.number, world.centre_t1, "transfer", department="urban", now=lhasa(2026, 12, 1, 23, 0))
    urgent = await report(store, world, matter_code="FIRE", now=lhasa(2026, 12, 1, 23, 0))
    await store.act(urgent.number, world.centre_t1, "accept", now=lhasa(2026, 12, 1, 23, 5))
    assert await sweep(sessionmaker, lhasa(2026, 12, 4, 23, 30)) == {"remind": 1, "urge": 1}  # the LIGHT case at night
    by_key = {n.message_key: n for n in await notices(sessionmaker, case.id)}
    morning = lhasa(2026, 12, 2, 7, 0)
    assert by_key["transfer.reporter"].next_attempt_at == morning  # resident: waits for 07:00
    assert by_key["transfer.department"].next_attempt_at == lhasa(2026, 12, 1, 23, 0)  # staff: at once
    assert by_key["urge.holder"].next_attempt_at == lhasa(2026, 12, 4, 23, 30)  # alarm: at once
    assert by_key["urge.reporter"].next_attempt_at == lhasa(2026, 12, 5, 7, 0)
    accepted = next(n for n in await notices(sessionmaker, urgent.id) if n.message_key == "accept.reporter")
    assert accepted.next_attempt_at == lhasa(2026, 12, 1, 23, 5)  # an urgent matter's news is not held back


# ---------------------------------------------------------------- extensions (延期)


async def in_progress(store, world, now=TUESDAY_10):
    case = await report(store, world, now=now)
    for actor, trigger, inputs in [("centre_t1", "accept", {}), ("centre_t1", "transfer", {"department": "urban"}),
                                   ("handler_urban", "start_handling", {})]:
        case = await store.act(case.number, getattr(world, actor), trigger, now=now, **inputs)
    return case


async def test_an_extension_moves_the_deadline_only_when_the_centre_approves(sessionmaker, store, world):
    case = await in_progress(store, world)  # due Fri 2026-12-04 10:00
    deadline = case.handling_deadline
    case = await store.act(case.number, world.handler_urban, "request_extension", reason="等配件", working_days=2,
                           now=lhasa(2026, 12, 3, 9, 0))
    assert case.handling_deadline == deadline and case.pending_extension["deadline"]
    with pytest.raises(NotPermitted):  # the department cannot approve its own request
        await store.act(case.number, world.handler_urban, "approve_extension", now=lhasa(2026, 12, 3, 9, 5))
    with pytest.raises(CaseNotFound):  # another township's centre does not even see the case
        await store.act(case.number, world.centre_t2, "approve_extension", now=lhasa(2026, 12, 3, 9, 5))
    case = await store.act(case.number, world.centre_t1, "approve_extension", now=lhasa(2026, 12, 3, 10, 0))
    assert case.handling_deadline == lhasa(2026, 12, 8, 10, 0)  # Fri 10:00 + 2 working days = Tue 10:00
    assert case.extension_count == 1 and case.pending_extension is None
    with pytest.raises(Refused) as refused:  # approving twice
        await store.act(case.number, world.centre_t1, "approve_extension", now=lhasa(2026, 12, 3, 10, 1))
    assert refused.value.code == "no_extension_pending"
    told = {(n.message_key, n.recipient_id) for n in await notices(sessionmaker, case.id, "approve_extension")}
    assert told == {("approve_extension.reporter", world.resident), ("approve_extension.department", world.handler_urban)}
    # The old deadline's milestones are gone; the new deadline has its own.
    assert await sweep(sessionmaker, lhasa(2026, 12, 4, 10, 30)) == {}
    assert await sweep(sessionmaker, lhasa(2026, 12, 8, 10, 1)) == {"remind": 1, "urge": 1}


async def test_refusals_of_an_extension(sessionmaker, store, world, monkeypatch):
    case = await in_progress(store, world)
    n = case.number
    early = lhasa(2026, 12, 2, 9, 0)
    for bad in [dict(deadline="2026-11-30"), dict(hours=-5), dict(hours=100000), dict(working_days=0),
                dict(deadline="tomorrow"), dict(hours=5, working_days=1), dict(deadline="2027-06-01")]:
        with pytest.raises(BAD_INPUT):
            await store.act(n, world.handler_urban, "request_extension", reason="r", now=early, **bad)
    case = await store.act(n, world.handler_urban, "request_extension", reason="r", hours=24, now=early)
    with pytest.raises(Refused) as twice:
        await store.act(n, world.handler_urban, "request_extension", reason="r", hours=24, now=early)
    assert twice.value.code == "extension_already_pending"
    case = await store.act(n, world.centre_t1, "refuse_extension", reason="不符合延期条件", now=early)
    assert case.pending_extension is None and case.handling_deadline == lhasa(2026, 12, 4, 10, 0)
    monkeypatch.setenv("GRIDBOT_MAX_EXTENSIONS", "1")
    await store.act(n, world.handler_urban, "request_extension", reason="r", hours=24, now=early)
    await store.act(n, world.centre_t1, "approve_extension", now=early)
    with pytest.raises(Refused) as too_many:
        await store.act(n, world.handler_urban, "request_extension", reason="r", hours=24, now=early)
    assert too_many.value.code == "too_many_extensions"
    monkeypatch.setenv("GRIDBOT_MAX_EXTENSIONS", "5")
    with pytest.raises(Refused) as late:
        await store.act(n, world.handler_urban, "request_extension", reason="r", hours=24, now=lhasa(2026, 12, 9))
    assert late.value.code == "deadline_passed"
    async with sessionmaker() as session:
        assert (await cases.load_case(session, n)).extension_count == 1


# ---------------------------------------------------------------- return to the centre (退单) and withdrawal


async def test_a_department_returns_a_case_that_is_not_theirs(sessionmaker, store, world):
    case = await in_progress(store, world)
    with pytest.raises(BAD_INPUT):
        await store.act(case.number, world.handler_urban, "return_to_centre", reason="bored", note="x")
    case = await store.act(case.number, world.handler_urban, "return_to_centre", reason="not_our_duty",
                           note="这是供电公司的线路", now=lhasa(2026, 12, 1, 11, 0))
    assert case.state == "accepted" and case.department is None and case.handling_deadline is None
    event = (await events(sessionmaker, case.id, "return_to_centre"))[0]
    assert event.data["department"] == "urban" and event.data["reason"] == "not_our_duty"
    assert {(n.message_key, n.recipient_id) for n in await notices(sessionmaker, case.id, "return_to_centre")} == {
        ("return_to_centre.centre", world.centre_t1)}
    async with sessionmaker() as session:
        assert case.id in [c.id for c in await cases.queue_for(session, world.centre_t1)]
        assert case.id not in [c.id for c in await cases.queue_for(session, world.handler_urban)]
    assert await sweep(sessionmaker, lhasa(2026, 12, 9)) == {}  # the handling milestones went with it
    case = await store.act(case.number, world.centre_t1, "transfer", department="civil", now=lhasa(2026, 12, 1, 12, 0))
    assert case.state == "transferred" and case.handling_deadline == lhasa(2026, 12, 4, 12, 0)


async def test_the_resident_withdraws_before_handling_starts(sessionmaker, store, world):
    case = await report(store, world)
    await store.act(case.number, world.centre_t1, "accept")
    await store.act(case.number, world.centre_t1, "transfer", department="urban")
    case = await store.act(case.number, world.resident, "withdraw", reason="自己修好了")
    assert case.state == "withdrawn" and case.closed_at is not None
    told = {(n.message_key, n.recipient_id) for n in await notices(sessionmaker, case.id, "withdraw")}
    assert told == {("withdraw.centre", world.centre_t1), ("withdraw.department", world.handler_urban)}
    assert await sweep(sessionmaker, lhasa(2026, 12, 30)) == {}
    started = await in_progress(store, world)
    with pytest.raises(NotAllowedInState):  # handling has started
        await store.act(started.number, world.resident, "withdraw")
    with pytest.raises(NotPermitted):  # only the reporter withdraws
        await store.act(started.number, world.centre_t1, "withdraw")


async def test_with_time_machine_the_store_reads_the_clock(sessionmaker, store, world):
    """Without an explicit `now`, the store and the sweep follow the (travelled) wall clock."""
    with time_machine.travel(lhasa(2026, 12, 1, 10, 0), tick=False) as traveller:
        case = await report(store, world, now=None)
        assert case.accept_deadline == lhasa(2026, 12, 1, 12, 0)
        traveller.move_to(lhasa(2026, 12, 1, 12, 5))
        fired = (await supervision.sweep(sessionmaker)).fired
    assert fired == {"remind": 1, "urge": 1}
    async with sessionmaker() as session:
        milestones = list(await session.scalars(select(CaseMilestone).where(CaseMilestone.case_id == case.id)))
        assert {m.trigger for m in milestones if m.fired_at} == {"remind", "urge"}


async def test_the_sweep_in_gridbot_run_survives_a_database_outage(monkeypatch, caplog):
    from bot import server

    calls, stop = [], asyncio.Event()

    async def flaky_sweep(sessionmaker):
        calls.append(1)
        if len(calls) in (2, 3):
            raise ConnectionRefusedError("database down")
        if len(calls) == 5:
            stop.set()
        return supervision.SweepResult()

    monkeypatch.setattr(server, "sweep", flaky_sweep)
    runtime = type("Runtime", (), {"sessionmaker": None})()
    with caplog.at_level(logging.WARNING, logger="gridbot.server"):
        await asyncio.wait_for(server.supervise(runtime, stop, every=0.01), timeout=5)
    assert len(calls) == 5  # it kept sweeping through the outage
    messages = [r.getMessage() for r in caplog.records]
    assert sum("supervision sweep failed" in m for m in messages) == 1  # one line per outage
    assert any("works again" in m for m in messages)
