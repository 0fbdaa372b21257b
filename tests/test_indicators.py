"""Indicators (storage/indicators.py) against figures computed by hand, on SQLite and PostgreSQL.

The fixture: November 2026 in township C-D-T1 (grid G1), times in Lhasa time.

case  story                                                                  counts for
A     reported 2nd 10:00, accepted 12:00, transferred 14:00 (72 h: due 5th),   due, closed on time
      result 4th 14:00, verified 20:00, rated satisfied 5th
B     reported 3rd 09:00, accepted 10:00, transferred 10:00 (due 6th 10:00),   due, closed late, rework
      result 6th 09:00, verification failed 8th 10:00 (49 h: not timely),
      result again 9th 10:00, verified 12:00
C     reported Oct 30th, transferred Oct 31st 14:00 (due Nov 3rd), extension   due, extended, on time
      approved Nov 2nd to the 20th 10:00, result 19th 10:00, verified 18:00
D     reported 5th, rejected                                                   rejected
E     reported 6th 10:00, resolved on the spot 11:00, rated unsatisfied 7th   on the spot, rework
      (reopened)
F     reported 10th, withdrawn                                                 withdrawn
G     reported 12th 07:00, accepted 10:00, transferred, in progress, never     due, overdue
      finished (due 15th 10:00)
H     reported 13th 08:00, accepted 12:00, transferred to urban 13:00,         return, due, overdue
      returned 14th 09:00, transferred to civil 14th 10:00 (due 17th)
J     reported 29th 10:00, accepted 11:00, transferred 12:00 (due Dec 2nd),    due (closed early), on time
      result 30th 10:00, verified 12:00
K1    reported 30th 23:30 (in November, Lhasa time)                            reported
K2    reported Dec 1st 00:30 (not November)                                    –
I     grid G3 (township C-D-T2): reported 20th 09:00, accepted 14:00           (T2 only)
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from storage import cases, indicators
from storage.indicators import Period, Scope
from storage.models import CaseEvent, Department, Node
from storage.timeutil import LOCAL_TZ


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=LOCAL_TZ)


def nov(day: int, hour: int, minute: int = 0) -> datetime:
    return at(11, day, hour, minute)


async def insert_event(session, number: str, action: str, when: datetime, to_state: str, data: dict, role: str,
                       actor_id=None, **case_fields) -> None:
    """A step produced by code that lands at merge time (issue 9): written as that code will write it."""
    case = await cases.load_case(session, number)
    session.add(CaseEvent(case_id=case.id, actor_id=actor_id, actor_role=role, action=action, from_state=case.state,
                          to_state=to_state, data=data, created_at=when))
    case.state = to_state
    case.updated_at = when
    for name, value in case_fields.items():
        setattr(case, name, value)
    await session.flush()


async def build_november(sessionmaker, world) -> dict[str, str]:
    w = world
    numbers: dict[str, str] = {}
    async with sessionmaker.begin() as s:
        async def report(key, when, grid="G1", matter="LIGHT"):
            case = await cases.open_case(s, reporter_id=w.resident, matter_code=matter, description=f"case {key}",
                                         language="zh", grid_code=grid, now=when)
            numbers[key] = case.number
            return case.number

        async def step(number, actor, trigger, when, **inputs):
            return await cases.act(s, number, actor, trigger, now=when, **inputs)

        a = await report("A", nov(2, 10))
        await step(a, w.centre_t1, "accept", nov(2, 12))
        await step(a, w.centre_t1, "transfer", nov(2, 14), department="urban")
        await step(a, w.handler_urban, "start_handling", nov(3, 9))
        await step(a, w.handler_urban, "submit_result", nov(4, 14), result="fixed")
        await step(a, w.worker_g1, "verify_pass", nov(4, 20))
        await cases.rate(s, a, w.resident, "satisfied", now=nov(5, 9))

        b = await report("B", nov(3, 9))
        await step(b, w.centre_t1, "accept", nov(3, 10))
        await step(b, w.centre_t1, "transfer", nov(3, 10), department="urban")
        await step(b, w.handler_urban, "start_handling", nov(3, 11))
        await step(b, w.handler_urban, "submit_result", nov(6, 9), result="fixed")
        await step(b, w.worker_g1, "verify_fail", nov(8, 10), reason="still dark")
        await step(b, w.handler_urban, "submit_result", nov(9, 10), result="fixed again")
        await step(b, w.worker_g1, "verify_pass", nov(9, 12))

        c = await report("C", at(10, 30, 10))
        await step(c, w.centre_t1, "accept", at(10, 30, 12))
        await step(c, w.centre_t1, "transfer", at(10, 31, 14), department="urban")
        await step(c, w.handler_urban, "start_handling", at(10, 31, 15))
        new_deadline = nov(20, 10)
        await insert_event(s, c, "approve_extension", nov(2, 9), "in_progress",
                           {"deadline": new_deadline.isoformat(), "previous_deadline": nov(3, 14).isoformat()},
                           "centre_staff", w.centre_t1, handling_deadline=new_deadline)
        await step(c, w.handler_urban, "submit_result", nov(19, 10), result="done")
        await step(c, w.worker_g1, "verify_pass", nov(19, 18))

        d = await report("D", nov(5, 9))
        await step(d, w.centre_t1, "reject", nov(5, 10), reason="not a matter for us")

        e = await report("E", nov(6, 10))
        await step(e, w.worker_g1, "resolve_on_spot", nov(6, 11), result="fixed on the spot")
        await cases.rate(s, e, w.resident, "unsatisfied", "still broken", now=nov(7, 9))

        f = await report("F", nov(10, 9))
        await insert_event(s, f, "withdraw", nov(10, 12), "withdrawn", {}, "resident", w.resident,
                           closed_at=nov(10, 12))

        g = await report("G", nov(12, 7))
        await step(g, w.centre_t1, "accept", nov(12, 10))
        await step(g, w.centre_t1, "transfer", nov(12, 10), department="urban")
        await step(g, w.handler_urban, "start_handling", nov(12, 11))

        h = await report("H", nov(13, 8))
        await step(h, w.centre_t1, "accept", nov(13, 12))
        await step(h, w.centre_t1, "transfer", nov(13, 13), department="urban")
        await insert_event(s, h, "return_to_centre", nov(14, 9), "accepted",
                           {"department": "urban", "reason": "not_our_duty"}, "department_handler", w.handler_urban,
                           department_id=None, department=None, handling_deadline=None)
        await step(h, w.centre_t1, "transfer", nov(14, 10), department="civil")

        j = await report("J", nov(29, 10))
        await step(j, w.centre_t1, "accept", nov(29, 11))
        await step(j, w.centre_t1, "transfer", nov(29, 12), department="urban")
        await step(j, w.handler_urban, "start_handling", nov(29, 13))
        await step(j, w.handler_urban, "submit_result", nov(30, 10), result="done")
        await step(j, w.worker_g1, "verify_pass", nov(30, 12))

        await report("K1", nov(30, 23, 30))
        await report("K2", at(12, 1, 0, 30))

        i = await report("I", nov(20, 9), grid="G3", matter="ELDER")
        await step(i, w.centre_t2, "accept", nov(20, 14))
    return numbers


async def figures(sessionmaker, node: str, department: str | None = None, now=None, period=None):
    async with sessionmaker() as s:
        scope = Scope(await s.scalar(select(Node).where(Node.code == node)))
        if department:
            scope.department = await s.scalar(select(Department).where(Department.code == department))
        return await indicators.compute(s, scope, period or Period.month(2026, 11), now=now or at(12, 5, 9),
                                        weights=dict(indicators.DEFAULT_WEIGHTS))


TOWNSHIP_COUNTS = dict(
    reported=9, accepted=5, rejected=1, resolved_on_spot=1, transferred=5, transfers=6, closed=5, withdrawn=1,
    due=6, due_closed=4, closed_on_time=3, overdue_open=2, results_submitted=6, reworks=2, extended=1, returns=1,
    verified=5, verified_timely=4, rated=2, satisfied=1,
)
TOWNSHIP_RATES = dict(
    closed_rate=4 / 6, on_time_closed_rate=3 / 6, rework_rate=2 / 6, extension_rate=1 / 6, return_rate=1 / 6,
    timely_verification_rate=4 / 5, resolved_on_spot_rate=1 / 9, satisfaction_rate=1 / 2,
)
# 30·½ + 20·⅔ + 20·½ + 10·0.8 + 10·(1 − ⅓) + 5·⅚ + 5·⅚ = 61.33…
TOWNSHIP_SCORE = 61.3
TOWNSHIP_TIMES = {
    "time_to_accept": {"count": 5, "median_hours": 2.0, "p90_hours": 4.0},  # 2, 1, 3, 4, 1
    "time_to_handle": {"count": 5, "median_hours": 71.0, "p90_hours": 452.0},  # 48, 71, 144, 452, 22
    "time_to_verify": {"count": 5, "median_hours": 6.0, "p90_hours": 49.0},  # 6, 49, 2, 8, 2
}


async def test_township_month_by_hand(sessionmaker, world):
    await build_november(sessionmaker, world)
    report = await figures(sessionmaker, "C-D-T1")
    data = report.total.as_dict(report.weights)
    assert data["counts"] == {**{k: 0 for k in data["counts"]}, **TOWNSHIP_COUNTS}
    assert data["rates"] == {k: round(v, 4) for k, v in TOWNSHIP_RATES.items()}
    assert data["times"] == TOWNSHIP_TIMES
    assert data["composite_score"] == TOWNSHIP_SCORE
    # The township's one community carries the same figures.
    [(community, figures_of_child)] = report.children
    assert community.code == "C-D-T1-C1"
    assert figures_of_child.as_dict(report.weights) == data


async def test_zero_denominators_are_absent_and_children_ranked(sessionmaker, world):
    await build_november(sessionmaker, world)
    report = await figures(sessionmaker, "C-D")
    children = {node.code: f for node, f in report.children}
    t2 = children["C-D-T2"].as_dict(report.weights)
    assert t2["counts"]["reported"] == 1 and t2["counts"]["accepted"] == 1
    assert t2["rates"] == {"resolved_on_spot_rate": 0.0}  # 0 of 1 reported; nothing due, rated, verified
    assert "composite_score" not in t2  # no weighted rate present: no score, not 0
    assert t2["times"] == {"time_to_accept": {"count": 1, "median_hours": 5.0, "p90_hours": 5.0}}
    assert report.total.counts["reported"] == 10
    assert [n.code for n, _, _ in report.ranked()] == ["C-D-T1", "C-D-T2"]  # a unit without a score comes last
    assert report.bottom_three() == []  # named only when more than three units have a score


async def test_department_scope_counts_what_the_department_did(sessionmaker, world):
    await build_november(sessionmaker, world)
    urban = (await figures(sessionmaker, "C-D-T1", "urban")).total.counts
    assert urban["reported"] == 4  # A, B, G, J: now with urban (H went to civil, C was reported in October)
    assert urban["transfers"] == 5 and urban["returns"] == 1  # H's first transfer and its return
    assert urban["due"] == 5 and urban["overdue_open"] == 1  # H's deadline is civil's
    civil = (await figures(sessionmaker, "C-D-T1", "civil")).total.counts
    assert (civil["reported"], civil["transfers"], civil["returns"], civil["due"], civil["overdue_open"]) == (1, 1, 0, 1, 1)


async def test_current_month_is_as_of_now(sessionmaker, world):
    await build_november(sessionmaker, world)
    report = await figures(sessionmaker, "C-D-T1", now=nov(16, 0))
    counts = report.total.counts
    # On the 16th at midnight G (due the 15th) is overdue and H (due the 17th) not yet; J does not exist yet.
    assert counts["overdue_open"] == 1
    assert counts["reported"] == 7  # A B D E F G H
    # Due so far: A (closed early, on the 4th), B (the 6th), G (the 15th); C, H and J are due later.
    assert (counts["due"], counts["due_closed"], counts["closed_on_time"]) == (3, 2, 1)


async def test_extension_past_the_period_moves_the_case_out(sessionmaker, world):
    numbers = await build_november(sessionmaker, world)
    async with sessionmaker.begin() as s:
        later = at(12, 20, 10)
        await insert_event(s, numbers["G"], "approve_extension", nov(14, 9), "in_progress",
                           {"deadline": later.isoformat(), "previous_deadline": nov(15, 10).isoformat()},
                           "centre_staff", world.centre_t1, handling_deadline=later)
    counts = (await figures(sessionmaker, "C-D-T1")).total.counts
    assert counts["due"] == 5 and counts["overdue_open"] == 1 and counts["extended"] == 1
    december = (await figures(sessionmaker, "C-D-T1", now=at(12, 31, 9), period=Period.month(2026, 12))).total.counts
    assert december["due"] == 1 and december["extended"] == 1 and december["reported"] == 1  # G, and K2


def test_weights_setting_and_periods():
    assert indicators.weights_from_setting("on_time_closed_rate=3, rework_rate=1") == {
        "on_time_closed_rate": 3.0, "rework_rate": 1.0}
    with pytest.raises(ValueError):
        indicators.weights_from_setting("speed=3")
    november = Period.parse_month("2026-11")
    assert november.start == at(11, 1, 0) and november.end == at(12, 1, 0)
    assert november.previous() == Period.month(2026, 10) and Period.month(2026, 1).previous().label == "2025-12"
    with pytest.raises(indicators.InvalidPeriod):
        Period.parse_month("2026-13")
    figures_ = indicators.Indicators()
    figures_.counts.update(on_time_closed_rate=0, closed_on_time=1, due=2, reworks=1, results_submitted=4)
    # 30·½ + 10·¾ over weights 30 + 10 (closed_rate's numerator is 0 of 2: 20·0)
    assert figures_.composite_score({"on_time_closed_rate": 30, "rework_rate": 10, "closed_rate": 20}) == round(
        100 * (30 * 0.5 + 10 * 0.75 + 0) / 60, 1)
    assert timedelta(0) == Period.month(2026, 2).end - Period.month(2026, 3).start


async def test_matter_scope(sessionmaker, world):
    await build_november(sessionmaker, world)
    async with sessionmaker() as s:
        scope = await indicators.resolve_scope(s, "C-D", None, "ELDER")
        report = await indicators.compute(s, scope, Period.month(2026, 11), now=at(12, 5, 9))
    assert report.total.counts["reported"] == 1 and report.total.counts["accepted"] == 1  # I only
    assert {n.code: f.counts["reported"] for n, f in report.children} == {"C-D-T1": 0, "C-D-T2": 1}
    with pytest.raises(indicators.InvalidPeriod):
        async with sessionmaker() as s:
            await indicators.resolve_scope(s, "C-D", "nowhere")


def test_ranking_names_the_bottom_three_of_more_than_three_units():
    def unit(code: str, on_time: int, due: int = 4) -> tuple:
        figures = indicators.Indicators()
        figures.counts.update(due=due, closed_on_time=on_time, due_closed=on_time)
        return Node(id=len(code), code=code, name_zh=code, name_bo=code, path=f"/{code}/"), figures

    empty = indicators.Indicators()
    children = [unit("A", 4), unit("B", 1), unit("C", 3), unit("D", 0), unit("E", 2),
                (Node(id=99, code="F", name_zh="F", name_bo="F", path="/F/"), empty)]
    report = indicators.Report(Scope(Node(code="X", path="/X/")), Period.month(2026, 11), at(12, 1, 0),
                               indicators.Indicators(), children, {"on_time_closed_rate": 1, "closed_rate": 1}, {}, {})
    assert [n.code for n, _, _ in report.ranked()] == ["A", "C", "E", "B", "D", "F"]  # F has no score: last
    assert [n.code for n in report.bottom_three()] == ["D", "B", "E"]  # the lowest first


async def test_a_score_needs_half_of_the_weights(sessionmaker, world):
    await build_november(sessionmaker, world)
    october = (await figures(sessionmaker, "C-D-T1", period=Period.month(2026, 10))).total
    assert october.counts["transfers"] == 1  # C, reported on the 30th, transferred on the 31st
    assert october.rates() == {"return_rate": 0.0, "resolved_on_spot_rate": 0.0}
    assert october.composite_score(indicators.DEFAULT_WEIGHTS) is None  # 5 of 100 weight present: no score
    assert october.composite_score({"return_rate": 1}) == 100.0


async def test_cases_untouched_since_before_the_period_still_count_as_overdue(sessionmaker, world):
    await build_november(sessionmaker, world)
    async with sessionmaker.begin() as s:
        case = await cases.open_case(s, reporter_id=world.resident, matter_code="ELDER", description="case L",
                                     language="zh", grid_code="G2", now=at(10, 20, 9))
        await cases.act(s, case.number, world.centre_t1, "accept", now=at(10, 20, 10))
        await cases.act(s, case.number, world.centre_t1, "transfer", department="civil", now=at(10, 20, 11))
        await cases.act(s, case.number, world.handler_civil, "start_handling", now=at(10, 21, 9))  # due Oct 22nd
    report = await figures(sessionmaker, "C-D-T1")
    assert report.total.counts["overdue_open"] == 3 and report.total.counts["due"] == 6  # G, H and now L
    assert report.children[0][1].counts["overdue_open"] == 3
    assert (await figures(sessionmaker, "C-D-T1", "civil")).total.counts["overdue_open"] == 2  # H and L
    assert (await figures(sessionmaker, "C-D-T1", "urban")).total.counts["overdue_open"] == 1  # G
    october = (await figures(sessionmaker, "C-D-T1", period=Period.month(2026, 10))).total.counts
    assert october["overdue_open"] == 1 and october["due"] == 1  # L at the end of October; C is due Nov 3rd
