"""The case store on SQLite and PostgreSQL: lifecycle, guards, events, outbox, concurrency."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm.exc import StaleDataError

from storage import cases
from storage.cases import CaseStore, LocationOutsideGrids
from storage.lifecycle import (
    STATES,
    TRANSITIONS,
    CaseError,
    CaseNotFound,
    MatterNotPublished,
    MissingInput,
    NotAllowedInState,
    NotPermitted,
    triggers_from,
)
from storage.models import CaseEvent, Matter, Notification
from storage.seed import load_matters
from storage.timeutil import utcnow
from tests.conftest import MATTERS


async def report(store: CaseStore, w, **overrides):
    values = dict(
        reporter_id=w.resident, matter_code="LIGHT", description="楼下路灯坏了三天", language="zh",
        latitude=29.652, longitude=91.122, contact_phone="13812345678",
    )
    values.update(overrides)
    return await store.open_case(**values)


async def walk(store, w, number, *steps):
    """Apply (actor attribute, trigger, inputs) steps and return the case."""
    case = None
    for actor, trigger, inputs in steps:
        case = await store.act(number, getattr(w, actor), trigger, **inputs)
    return case


TO_HANDLED = [
    ("centre_t1", "accept", {}),
    ("centre_t1", "transfer", {"department": "urban"}),
    ("handler_urban", "start_handling", {}),
    ("handler_urban", "submit_result", {"result": "已更换灯泡"}),
]


async def events_of(sessionmaker, case_id):
    async with sessionmaker() as session:
        return list(await session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)))


async def notices_of(sessionmaker, case_id):
    async with sessionmaker() as session:
        return list(await session.scalars(select(Notification).where(Notification.case_id == case_id).order_by(Notification.id)))


async def test_report_finds_grid_and_township_centre_and_numbers_the_case(sessionmaker, world):
    store = CaseStore(sessionmaker)
    case = await report(store, world)
    assert case.grid.code == "G1"
    assert case.centre_node.code == "C-D-T1"
    assert case.state == "reported"
    today = cases.local(utcnow()).strftime("%Y%m%d")
    assert case.number == f"LS-{today}-0001"
    second = await report(store, world)
    assert second.number == f"LS-{today}-0002"
    notices = await notices_of(sessionmaker, case.id)
    assert {(n.recipient_id, n.message_key) for n in notices} == {
        (world.centre_t1, "report.centre"),
        (world.worker_g1, "report.grid_workers"),
    }


async def test_report_validation(sessionmaker, world):
    store = CaseStore(sessionmaker)
    with pytest.raises(LocationOutsideGrids):
        await report(store, world, latitude=29.70, longitude=91.30)
    with pytest.raises(MissingInput):
        await report(store, world, description="   ")
    with pytest.raises(MissingInput):
        await report(store, world, latitude=None, longitude=None)
    with pytest.raises(MatterNotPublished):
        await report(store, world, matter_code="NOPE")
    anonymous = await report(store, world, anonymous=True)
    assert anonymous.contact_phone is None
    by_grid = await report(store, world, latitude=None, longitude=None, grid_code="G3", address="村口")
    assert by_grid.centre_node.code == "C-D-T2"


async def test_full_flow_to_verified_close_sets_deadlines_and_tells_people(sessionmaker, world):
    store = CaseStore(sessionmaker)
    case = await report(store, world)
    before = utcnow()
    case = await walk(store, world, case.number, *TO_HANDLED[:2])
    assert case.department.code == "urban"
    assert timedelta(hours=71.9) < case.handling_deadline - before < timedelta(hours=72.1)
    case = await walk(store, world, case.number, *TO_HANDLED[2:])
    assert case.state == "handled"
    # LIGHT needs on-site checking: the grid worker has 24 hours (Art. 17).
    assert timedelta(hours=23.9) < case.verification_deadline - before < timedelta(hours=24.1)
    case = await store.act(case.number, world.worker_g1, "verify_pass")
    assert case.state == "closed" and case.closed_at is not None and case.verification_outcome == "passed"

    events = await events_of(sessionmaker, case.id)
    assert [(e.action, e.from_state, e.to_state, e.actor_id) for e in events] == [
        ("report", None, "reported", world.resident),
        ("accept", "reported", "accepted", world.centre_t1),
        ("transfer", "accepted", "transferred", world.centre_t1),
        ("start_handling", "transferred", "in_progress", world.handler_urban),
        ("submit_result", "in_progress", "handled", world.handler_urban),
        ("verify_pass", "handled", "closed", world.worker_g1),
    ]
    assert events[1].actor_role == "centre_staff"
    told_resident = [n.message_key for n in await notices_of(sessionmaker, case.id) if n.recipient_id == world.resident]
    assert told_resident == [
        "accept.reporter", "transfer.reporter", "start_handling.reporter", "submit_result.reporter", "verify_pass.reporter",
    ]
    told_worker = [n.message_key for n in await notices_of(sessionmaker, case.id) if n.recipient_id == world.worker_g1]
    assert "submit_result.grid_workers" in told_worker


async def test_verification_failure_returns_case_for_rework(sessionmaker, world):
    store = CaseStore(sessionmaker)
    case = await report(store, world)
    await walk(store, world, case.number, *TO_HANDLED)
    with pytest.raises(MissingInput):
        await store.act(case.number, world.worker_g1, "verify_fail")
    case = await store.act(case.number, world.worker_g1, "verify_fail", reason="灯还是不亮")
    assert case.state == "in_progress" and case.verification_outcome == "failed"
    keys = {(n.recipient_id, n.message_key) for n in await notices_of(sessionmaker, case.id)}
    assert (world.handler_urban, "verify_fail.department") in keys


async def test_centre_cannot_verify_when_on_site_check_is_required(sessionmaker, world):
    store = CaseStore(sessionmaker)
    case = await report(store, world)
    await walk(store, world, case.number, *TO_HANDLED)
    with pytest.raises(NotPermitted):
        await store.act(case.number, world.centre_t1, "verify_pass")
    # Without on-site checking the centre may confirm the result.
    other = await report(store, world, matter_code="ELDER")
    await walk(store, world, other.number, ("centre_t1", "accept", {}), ("centre_t1", "transfer", {"department": "civil"}),
               ("handler_civil", "start_handling", {}), ("handler_civil", "submit_result", {"result": "已探访"}))
    closed = await store.act(other.number, world.centre_t1, "verify_pass")
    assert closed.state == "closed" and closed.verification_deadline is None


async def test_reject_needs_reason_and_tells_the_resident(sessionmaker, world):
    store = CaseStore(sessionmaker)
    case = await report(store, world)
    with pytest.raises(MissingInput):
        await store.act(case.number, world.centre_t1, "reject")
    case = await store.act(case.number, world.centre_t1, "reject", reason="duplicate")
    assert case.state == "rejected" and case.rejection_reason == "duplicate"
    notice = [n for n in await notices_of(sessionmaker, case.id) if n.recipient_id == world.resident][0]
    assert notice.message_key == "reject.reporter" and notice.params["reason"] == "duplicate"


async def test_escalation_climbs_to_the_city_then_stops(sessionmaker, world):
    store = CaseStore(sessionmaker)
    case = await report(store, world)
    case = await store.act(case.number, world.centre_t1, "escalate")
    assert case.centre_node.code == "C-D" and case.state == "reported"
    # The township no longer acts on it, the district does.
    with pytest.raises(NotPermitted):
        await store.act(case.number, world.centre_t1, "accept")
    case = await store.act(case.number, world.centre_district, "escalate")
    assert case.centre_node.code == "C"
    with pytest.raises(NotAllowedInState):
        await store.act(case.number, world.centre_city, "escalate")
    case = await store.act(case.number, world.centre_city, "accept")
    case = await store.act(case.number, world.centre_city, "refer_to_joint_meeting", reason="跨部门")
    assert case.state == "joint_meeting" and case.joint_meeting
    case = await store.act(case.number, world.centre_city, "transfer", department="urban")
    assert case.state == "transferred"


async def test_resolved_on_the_spot_by_the_grid_worker(sessionmaker, world):
    store = CaseStore(sessionmaker)
    case = await store.open_case(
        reporter_id=world.worker_g1, matter_code="LIGHT", description="巡查发现路灯不亮", language="zh",
        grid_code="G1", source=cases.CaseSource.worker_patrol,
    )
    case = await store.act(case.number, world.worker_g1, "resolve_on_spot", result="已当场修复")
    assert case.state == "closed" and case.result_text == "已当场修复"
    assert [e.actor_role for e in await events_of(sessionmaker, case.id)] == ["grid_worker", "grid_worker"]
    other = await report(store, world, grid_code="G3", latitude=None, longitude=None)
    with pytest.raises(CaseNotFound):  # another grid's case: not even shown to exist
        await store.act(other.number, world.worker_g1, "resolve_on_spot", result="x")


async def test_extension_moves_the_deadline_once_approved(sessionmaker, world):
    store = CaseStore(sessionmaker)
    case = await report(store, world)
    case = await walk(store, world, case.number, *TO_HANDLED[:3])
    deadline = case.handling_deadline
    case = await store.act(case.number, world.handler_urban, "request_extension", reason="等配件", hours=48)
    assert case.handling_deadline == deadline
    case = await store.act(case.number, world.centre_t1, "approve_extension")
    assert case.handling_deadline - deadline == timedelta(hours=48)
    assert case.state == "in_progress"


async def test_unsatisfied_rating_within_seven_days_reopens(sessionmaker, world):
    store = CaseStore(sessionmaker)
    case = await report(store, world)
    await walk(store, world, case.number, *TO_HANDLED, ("worker_g1", "verify_pass", {}))
    case = await store.rate(case.number, world.resident, "unsatisfied", "灯又坏了")
    assert case.state == "accepted"
    assert [e.action for e in await events_of(sessionmaker, case.id)][-2:] == ["rate", "reopen"]
    # A satisfied rating just records it; a late unsatisfied one does not reopen.
    second = await report(store, world)
    await walk(store, world, second.number, *TO_HANDLED, ("worker_g1", "verify_pass", {}))
    later = utcnow() + timedelta(days=8)
    second = await store.rate(second.number, world.resident, "unsatisfied", now=later)
    assert second.state == "closed"
    with pytest.raises(CaseError):
        await store.rate(second.number, world.resident, "great")
    with pytest.raises(NotAllowedInState):
        await store.act(second.number, world.resident, "reopen", reason="x", now=later)  # too late to reopen


# Every trigger tried from every state by a person allowed to fire it: refused ones change nothing.
@pytest.mark.parametrize("trigger", [t["trigger"] for t in TRANSITIONS])
async def test_triggers_refused_outside_their_source_states(sessionmaker, world, trigger):
    store = CaseStore(sessionmaker)
    case = await report(store, world)
    # Walk the case to "closed" and try the trigger at each stop where the lifecycle does not allow it.
    path = [None, *TO_HANDLED, ("worker_g1", "verify_pass", {})]
    inputs = {"reason": "r", "result": "r", "note": "n", "hours": 5, "department": "urban", "rating": "satisfied"}
    actors = {"resident": world.resident}
    for step in path:
        if step is not None:
            case = await store.act(case.number, getattr(world, step[0]), step[1], **step[2])
        if trigger in triggers_from(case.state):
            continue
        async with sessionmaker() as session:
            events_before = await session.scalar(select(func.count()).select_from(CaseEvent))
        for actor in [world.centre_t1, world.handler_urban, world.worker_g1, world.chief_g1, actors["resident"]]:
            with pytest.raises(CaseError):
                await store.act(case.number, actor, trigger, **inputs)
        async with sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(CaseEvent)) == events_before
            again = await cases.load_case(session, case.number)
            assert again.state == case.state and again.version == case.version


ROLE_REFUSALS = [
    # (trigger, the state it is fired from, people who must be refused)
    ("accept", [], ["centre_t2", "worker_g1", "handler_urban", "resident", "chief_g1"]),
    ("reject", [], ["centre_t2", "worker_g1", "handler_urban", "resident"]),
    ("escalate", [], ["centre_t2", "worker_g1", "handler_urban", "resident"]),
    ("transfer", TO_HANDLED[:1], ["centre_t2", "worker_g1", "handler_urban", "resident"]),
    ("start_handling", TO_HANDLED[:2], ["handler_civil", "centre_t1", "worker_g1", "resident"]),
    ("request_extension", TO_HANDLED[:3], ["handler_civil", "centre_t1", "worker_g1", "resident"]),
    ("return_to_centre", TO_HANDLED[:3], ["handler_civil", "centre_t1", "worker_g1", "resident"]),
    ("withdraw", TO_HANDLED[:2], ["other_resident", "centre_t1", "worker_g1", "handler_urban"]),
    ("remind", [], ["centre_t1", "worker_g1", "handler_urban", "resident", "chief_g1"]),
    ("urge", [], ["centre_t1", "worker_g1", "handler_urban", "resident", "chief_g1"]),
    ("submit_result", TO_HANDLED[:3], ["handler_civil", "centre_t1", "worker_g1", "resident"]),
    ("verify_pass", TO_HANDLED, ["worker_g3", "handler_urban", "resident", "centre_t2"]),
    ("verify_fail", TO_HANDLED, ["worker_g3", "handler_urban", "resident", "centre_t2"]),
    ("resolve_on_spot", [], ["worker_g3", "centre_t1", "handler_urban", "resident"]),
    ("comment", [], ["resident", "handler_civil", "worker_g3"]),
    ("relay_feedback", [], ["resident", "worker_g3", "handler_urban", "centre_t2"]),
    ("prompt", [], ["resident", "handler_urban", "worker_g1"]),
    ("rate", TO_HANDLED + [("worker_g1", "verify_pass", {})], ["other_resident", "worker_g1", "centre_t1"]),
]


@pytest.mark.parametrize("trigger,before,refused", ROLE_REFUSALS, ids=[r[0] for r in ROLE_REFUSALS])
async def test_people_outside_the_role_or_scope_are_refused(sessionmaker, world, trigger, before, refused):
    store = CaseStore(sessionmaker)
    case = await report(store, world)
    case = await walk(store, world, case.number, *before) or case
    inputs = {"reason": "r", "result": "r", "note": "n", "hours": 5, "department": "urban", "rating": "unsatisfied"}
    for key in refused:
        with pytest.raises((NotPermitted, CaseNotFound)):
            await store.act(case.number, getattr(world, key), trigger, **inputs)
    async with sessionmaker() as session:
        assert (await cases.load_case(session, case.number)).state == case.state


async def test_overseers_comment_and_prompt(sessionmaker, world):
    store = CaseStore(sessionmaker)
    case = await report(store, world)
    await walk(store, world, case.number, *TO_HANDLED[:2])
    case = await store.act(case.number, world.chief_g1, "prompt", note="请尽快处理")
    assert case.state == "transferred"
    keys = {(n.recipient_id, n.message_key) for n in await notices_of(sessionmaker, case.id)}
    assert (world.handler_urban, "prompt.department") in keys


async def test_another_persons_case_is_not_found(sessionmaker, world):
    store = CaseStore(sessionmaker)
    case = await report(store, world)
    assert (await store.case_for_person(world.resident, case.number.lower())).id == case.id
    with pytest.raises(CaseNotFound):
        await store.case_for_person(world.other_resident, case.number)
    with pytest.raises(CaseNotFound):
        await store.case_for_person(world.worker_g3, case.number)
    with pytest.raises(CaseNotFound):
        await store.act(case.number, world.other_resident, "accept")  # does not confirm the case exists
    assert (await store.case_for_person(world.worker_g1, case.number)).id == case.id


async def test_concurrent_transitions_on_one_case_exactly_one_wins(sessionmaker, world):
    store = CaseStore(sessionmaker)
    case = await report(store, world)
    results = await asyncio.gather(
        store.act(case.number, world.centre_t1, "accept"),
        store.act(case.number, world.centre_t1, "reject", reason="dup"),
        store.act(case.number, world.worker_g1, "resolve_on_spot", result="fixed"),
        store.act(case.number, world.centre_t1, "accept"),
        return_exceptions=True,
    )
    wins = [r for r in results if not isinstance(r, BaseException)]
    losses = [r for r in results if isinstance(r, BaseException)]
    assert len(wins) == 1, results
    assert all(isinstance(r, CaseError) for r in losses), losses
    assert len([e for e in await events_of(sessionmaker, case.id) if e.action != "report"]) == 1


async def test_stale_copy_loses_to_a_concurrent_change(sessionmaker, world):
    """Optimistic version check: a transition computed on an old read does not overwrite a newer one."""
    store = CaseStore(sessionmaker)
    case = await report(store, world)
    async with sessionmaker() as stale_session:
        stale = await cases.load_case(stale_session, case.number)
        await store.act(case.number, world.centre_t1, "accept")
        stale.state = "rejected"
        # PostgreSQL: the version column refuses it; SQLite: its snapshot is stale and the write is refused.
        with pytest.raises((StaleDataError, OperationalError)):
            await stale_session.commit()
    async with sessionmaker() as session:
        assert (await cases.load_case(session, case.number)).state == "accepted"


async def test_failure_mid_transition_leaves_neither_event_nor_notice(sessionmaker, world, monkeypatch):
    store = CaseStore(sessionmaker)
    case = await report(store, world)
    before_events = len(await events_of(sessionmaker, case.id))
    before_notices = len(await notices_of(sessionmaker, case.id))

    async def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(cases, "_notify", broken)
    with pytest.raises(RuntimeError):
        await store.act(case.number, world.centre_t1, "accept")
    assert len(await events_of(sessionmaker, case.id)) == before_events
    assert len(await notices_of(sessionmaker, case.id)) == before_notices
    async with sessionmaker() as session:
        assert (await cases.load_case(session, case.number)).state == "reported"


async def test_events_are_immutable(sessionmaker, world):
    store = CaseStore(sessionmaker)
    case = await report(store, world)
    with pytest.raises(PermissionError):
        async with sessionmaker.begin() as session:
            event = await session.scalar(select(CaseEvent).where(CaseEvent.case_id == case.id))
            event.note = "rewritten"


async def test_matter_withdrawal_keeps_history_and_blocks_new_cases(sessionmaker, world):
    store = CaseStore(sessionmaker)
    old = await report(store, world)
    withdrawn = {**MATTERS, "matters": [{**MATTERS["matters"][0], "withdrawn": "2026-11-01"}, MATTERS["matters"][1]]}
    async with sessionmaker.begin() as session:
        counts = await load_matters(session, withdrawn)
    assert counts["withdrawn"] == 1 and counts["unchanged"] == 1
    with pytest.raises(MatterNotPublished):
        await report(store, world)
    async with sessionmaker.begin() as session:
        again = await load_matters(session, withdrawn)  # idempotent
        assert again["unchanged"] == 2
        matter = await session.scalar(select(Matter).where(Matter.code == "LIGHT"))
        assert not matter.is_published
    async with sessionmaker() as session:
        assert (await cases.load_case(session, old.number)).matter.code == "LIGHT"
    async with sessionmaker.begin() as session:
        counts = await load_matters(session, MATTERS)
        assert counts["republished"] == 1
    assert (await report(store, world)).state == "reported"


def test_every_state_is_reachable_and_every_trigger_declared_once():
    dests = {t["dest"] for t in TRANSITIONS if t["dest"]}
    assert set(STATES) - {"reported"} <= dests
    triggers = [t["trigger"] for t in TRANSITIONS]
    assert len(triggers) == len(set(triggers))


async def test_only_a_grid_worker_of_the_grid_logs_a_patrol_case_there(sessionmaker, world):
    store = CaseStore(sessionmaker)
    for outsider in (world.worker_g3, world.resident, world.centre_t1):
        with pytest.raises(NotPermitted):
            await store.open_case(reporter_id=outsider, matter_code="LIGHT", description="巡查发现路灯不亮", language="zh",
                                  grid_code="G1", source=cases.CaseSource.worker_patrol)
