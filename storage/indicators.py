"""Indicators for decisions and the monthly assessment (Art. 21(7), Art. 25), defined once.

Every figure the stats API, the CSV/XLSX export, the bulletin, the chat's 📊 button and the
console show comes from `compute` below. A *scope* is a node of the grid tree (grid, community,
township, district, city: the cases of the grids under it), optionally narrowed to a department
and/or a matter. A *period* is [start, end) in Lhasa time, e.g. one calendar month. Figures are
computed "as of" min(end, now) from the case events, so a past month does not change when a case
moves on later.

Counts (cases unless said otherwise; "in the period" means the event's time lies in it):

- ``reported`` 上报数: cases reported in the period.
- ``accepted`` 受理数: cases accepted (受理) in the period.
- ``rejected`` 不予受理数: cases rejected in the period.
- ``resolved_on_spot`` 当场解决数: cases a grid worker resolved on the spot in the period.
- ``transferred`` 流转数: cases transferred to a department in the period; ``transfers``: transfer steps.
- ``closed`` 结案数: cases that reached *closed* (verified, or resolved on the spot) in the period.
- ``withdrawn`` 撤回数: cases withdrawn by the resident in the period.
- ``due`` 应结案数: cases whose handling deadline in force (after approved extensions) falls in the
  period (for the current period: up to now), plus cases closed in the period before a later deadline
  (each case is due in exactly one period). A case withdrawn, or returned and not transferred again,
  is not due.
- ``due_closed``: of the due cases, those closed by the end of the period.
- ``closed_on_time`` 按期结案数: of the due cases, those closed at or before their deadline.
- ``overdue_open`` 超期未结数: cases with a department (transferred, in progress) whose deadline
  has passed, at the end of the period (or now, for the current period).
- ``results_submitted``: results submitted by a department plus resolutions on the spot, in the period.
- ``reworks`` 返工数: failed on-site verifications plus reopenings after an unsatisfied rating.
- ``extended``: of the due cases, those whose deadline was moved by an approved extension.
- ``returns`` 退单数: cases a department returned to the grid centre (退单) in the period.
- ``verified`` / ``verified_timely``: verifications (passed or failed) in the period / of them,
  those made within 24 hours of the result they check (Art. 17).
- ``rated`` / ``satisfied``: ratings given in the period / of them, "satisfied" or "basically satisfied".

Rates (a rate whose denominator is zero is absent, never 0 % or 100 %):

- ``closed_rate`` 结案率 = due_closed ÷ due
- ``on_time_closed_rate`` 按期结案率 = closed_on_time ÷ due
- ``rework_rate`` 返工率 = reworks ÷ results_submitted
- ``extension_rate`` 延期率 = extended ÷ due
- ``return_rate`` 退单率 = returns ÷ transfers
- ``timely_verification_rate`` 及时核查率 = verified_timely ÷ verified
- ``resolved_on_spot_rate`` 当场解决率 = cases reported in the period and resolved on the spot ÷ reported
- ``satisfaction_rate`` 满意率 = satisfied ÷ rated

Times, in hours, for steps taken in the period: median and p90 (nearest rank: the ⌈0.9·n⌉-th
smallest) of ``time_to_accept`` (report → first acceptance), ``time_to_handle`` (latest transfer →
result submitted) and ``time_to_verify`` (result → verification).

``composite_score`` 综合指标值, out of 100: Σ wᵢ·sᵢ ÷ Σ wᵢ × 100 over the rates present, where sᵢ is
the rate for rates where more is better and 1 − rate for ``rework_rate``, ``extension_rate`` and
``return_rate``; the weights wᵢ are the setting ``GRIDBOT_SCORE_WEIGHTS`` (default `DEFAULT_WEIGHTS`).
Absent unless the rates present carry at least half of the weights (`SCORE_QUORUM`).

With a department in the scope, each step counts for the department in charge at that step (a
return counts for the department that returned the case); reported cases count for the department
now in charge.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import cached_property
from typing import Any, Iterable

from sqlalchemy import String, func, or_, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from .lifecycle import CaseError
from .models import Case, Department, Matter, Node, NodeLevel, Role
from .timeutil import LOCAL_TZ, utcnow

# Who reads a unit's indicators and receives its bulletin: those accountable for it.
READER_ROLES = (Role.grid_chief, Role.grid_instructor, Role.centre_staff)
VERIFY_WITHIN = timedelta(hours=24)  # Art. 17
SATISFIED = ("satisfied", "basically_satisfied")
HANDLING_STATES = ("transferred", "in_progress")
CLOSING = ("verify_pass", "resolve_on_spot")
EXTENSIONS = ("approve_extension", "extend_deadline")  # extend_deadline: the older, direct step

COUNTS = (
    "reported", "accepted", "rejected", "resolved_on_spot", "transferred", "transfers", "closed", "withdrawn",
    "due", "due_closed", "closed_on_time", "overdue_open", "results_submitted", "reworks", "extended", "returns",
    "verified", "verified_timely", "rated", "satisfied", "reported_resolved_on_spot",
)
# name: (numerator, denominator, Chinese name, higher is better)
RATES: dict[str, tuple[str, str, str, bool]] = {
    "closed_rate": ("due_closed", "due", "结案率", True),
    "on_time_closed_rate": ("closed_on_time", "due", "按期结案率", True),
    "rework_rate": ("reworks", "results_submitted", "返工率", False),
    "extension_rate": ("extended", "due", "延期率", False),
    "return_rate": ("returns", "transfers", "退单率", False),
    "timely_verification_rate": ("verified_timely", "verified", "及时核查率", True),
    "resolved_on_spot_rate": ("reported_resolved_on_spot", "reported", "当场解决率", True),
    "satisfaction_rate": ("satisfied", "rated", "满意率", True),
}
TIMES = {"time_to_accept": "受理时长", "time_to_handle": "办理时长", "time_to_verify": "核查时长"}
DEFAULT_WEIGHTS: dict[str, float] = {
    "on_time_closed_rate": 30, "closed_rate": 20, "satisfaction_rate": 20, "timely_verification_rate": 10,
    "rework_rate": 10, "extension_rate": 5, "return_rate": 5,
}
SCORE_QUORUM = 0.5  # a score needs rates carrying at least half of the weights
CHUNK = 900  # ids per IN (...) list, under SQLite's variable limit


class InvalidPeriod(CaseError):
    code = "invalid_input"


def weights_from_setting(value: str | None = None) -> dict[str, float]:
    """`GRIDBOT_SCORE_WEIGHTS`, e.g. "on_time_closed_rate=40,satisfaction_rate=30,rework_rate=30"."""
    value = os.environ.get("GRIDBOT_SCORE_WEIGHTS") if value is None else value
    if not value or not value.strip():
        return dict(DEFAULT_WEIGHTS)
    weights: dict[str, float] = {}
    for part in value.split(","):
        name, _, number = part.partition("=")
        name = name.strip()
        if name not in RATES:
            raise ValueError(f"GRIDBOT_SCORE_WEIGHTS: unknown rate {name!r}; rates are {', '.join(RATES)}")
        weights[name] = float(number)
        if weights[name] < 0:
            raise ValueError("GRIDBOT_SCORE_WEIGHTS: weights are not negative")
    return weights


# ---------------------------------------------------------------- periods and scopes


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC; `first` and `last` are the local dates it covers."""

    first: date
    last: date

    @cached_property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), tzinfo=LOCAL_TZ).astimezone(timezone.utc)

    @cached_property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(), tzinfo=LOCAL_TZ).astimezone(timezone.utc)

    @classmethod
    def month(cls, year: int, month: int) -> Period:
        first = date(year, month, 1)
        following = date(year + (month == 12), month % 12 + 1, 1)
        return cls(first, following - timedelta(days=1))

    @classmethod
    def parse_month(cls, text: str) -> Period:
        """'2026-11' → November 2026."""
        try:
            year, month = (int(p) for p in text.strip().split("-"))
            return cls.month(year, month)
        except (ValueError, TypeError):
            raise InvalidPeriod(f"a month is written YYYY-MM, e.g. 2026-11; not {text!r}", field="month") from None

    @classmethod
    def of(cls, moment: datetime) -> Period:
        """The calendar month (Lhasa time) containing `moment`."""
        day = moment.astimezone(LOCAL_TZ).date()
        return cls.month(day.year, day.month)

    def previous(self) -> Period:
        """The month before (for a month), or the same number of days before."""
        if self.first.day == 1 and self == Period.month(self.first.year, self.first.month):
            before = self.first - timedelta(days=1)
            return Period.month(before.year, before.month)
        length = self.last - self.first + timedelta(days=1)
        return Period(self.first - length, self.first - timedelta(days=1))

    @property
    def label(self) -> str:
        if self == Period.month(self.first.year, self.first.month):
            return f"{self.first:%Y-%m}"
        return f"{self.first.isoformat()}/{self.last.isoformat()}"


@dataclass
class Scope:
    node: Node
    department: Department | None = None
    matter: Matter | None = None


# ---------------------------------------------------------------- the figures


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


@dataclass
class Indicators:
    counts: Counter = field(default_factory=Counter)
    samples: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    matters: Counter = field(default_factory=Counter)  # reports per matter id
    repeats: Counter = field(default_factory=Counter)  # repeat reports per grid id

    def add(self, other: Indicators) -> None:
        self.counts.update(other.counts)
        for name, values in other.samples.items():
            self.samples[name].extend(values)
        self.matters.update(other.matters)
        self.repeats.update(other.repeats)

    def rate(self, name: str) -> float | None:
        numerator, denominator, _, _ = RATES[name]
        if not self.counts[denominator]:
            return None
        return self.counts[numerator] / self.counts[denominator]

    def rates(self) -> dict[str, float]:
        """Present rates only (zero denominators are left out)."""
        return {name: value for name in RATES if (value := self.rate(name)) is not None}

    def times(self) -> dict[str, dict[str, float | int]]:
        result: dict[str, dict[str, float | int]] = {}
        for name in TIMES:
            values = self.samples.get(name) or []
            if values:
                result[name] = {"count": len(values), "median_hours": round(_median(values), 2),
                                "p90_hours": round(_percentile(values, 0.9), 2)}
        return result

    def composite_score(self, weights: dict[str, float] | None = None) -> float | None:
        weights = DEFAULT_WEIGHTS if weights is None else weights
        total = scored = 0.0
        for name, value in self.rates().items():
            weight = weights.get(name, 0)
            if weight:
                total += weight
                scored += weight * (value if RATES[name][3] else 1 - value)
        if not total or total < SCORE_QUORUM * sum(weights.values()):
            return None  # too little to score: e.g. a single return rate would read 100
        return round(100 * scored / total, 1)

    def as_dict(self, weights: dict[str, float] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = {
            "counts": {name: self.counts[name] for name in COUNTS if name != "reported_resolved_on_spot"},
            "rates": {name: round(value, 4) for name, value in self.rates().items()},
            "times": self.times(),
        }
        score = self.composite_score(weights)
        if score is not None:
            result["composite_score"] = score
        return result


def _deadline(data: dict | None) -> datetime | None:
    text = (data or {}).get("deadline")
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@dataclass
class _CaseRow:
    id: int
    grid_id: int
    matter_id: int
    department_code: str | None
    created_at: datetime


def _walk(case: _CaseRow, events: list[tuple], period: Period, as_of: datetime, department: str | None,
          out: Indicators) -> None:
    """Add one case's figures for the period to `out`. `events` are (action, at, to_state, data) in order."""
    start, end = period.start, period.end
    cut = min(end, as_of + timedelta(microseconds=1))  # nothing after "as of" counts
    counts = out.counts
    flags: set[str] = set()
    in_charge: str | None = None  # the department handling the case after each step
    deadline: datetime | None = None
    extended = False
    first_accept = True
    last_transfer = last_result = closed_at = None
    state = None
    withdrawn = resolved_on_spot = False
    created = case.created_at

    def mine(dept: str | None) -> bool:
        return department is None or dept == department

    for action, at, to_state, data in events:
        if at >= cut:
            break
        state = to_state
        now_in = start <= at < end
        if action == "accept":
            if now_in and mine(in_charge):
                flags.add("accepted")
                if first_accept:
                    out.samples["time_to_accept"].append((at - created).total_seconds() / 3600)
            first_accept = False
        elif action == "reject":
            if now_in and mine(in_charge):
                flags.add("rejected")
        elif action == "resolve_on_spot":
            resolved_on_spot = True
            closed_at, last_result = at, at
            if now_in and mine(in_charge):
                flags.update(("resolved_on_spot", "closed"))
                counts["results_submitted"] += 1
        elif action == "transfer":
            in_charge = (data or {}).get("department")
            deadline, extended, last_transfer = _deadline(data), False, at
            if now_in and mine(in_charge):
                flags.add("transferred")
                counts["transfers"] += 1
        elif action == "return_to_centre":
            returning = (data or {}).get("department") or in_charge
            if now_in and mine(returning):
                counts["returns"] += 1
            in_charge, deadline, extended = None, None, False
        elif action in EXTENSIONS:
            moved = _deadline(data)
            if moved is not None:
                deadline, extended = moved, True
        elif action == "submit_result":
            last_result = at
            if now_in and mine(in_charge):
                counts["results_submitted"] += 1
                if last_transfer is not None:
                    out.samples["time_to_handle"].append((at - last_transfer).total_seconds() / 3600)
        elif action in ("verify_pass", "verify_fail"):
            if action == "verify_pass":
                closed_at = at
            if now_in and mine(in_charge):
                counts["verified"] += 1
                if last_result is not None:
                    if at - last_result <= VERIFY_WITHIN:
                        counts["verified_timely"] += 1
                    out.samples["time_to_verify"].append((at - last_result).total_seconds() / 3600)
                if action == "verify_pass":
                    flags.add("closed")
                else:
                    counts["reworks"] += 1
        elif action == "reopen":
            closed_at = None
            if now_in and mine(in_charge):
                counts["reworks"] += 1
        elif action == "rate":
            if now_in and mine(in_charge):
                counts["rated"] += 1
                if (data or {}).get("rating") in SATISFIED:
                    counts["satisfied"] += 1
        elif action == "withdraw":
            withdrawn = True
            if now_in and mine(in_charge):
                flags.add("withdrawn")
    for flag in flags:
        counts[flag] += 1

    if created >= cut:
        return
    if start <= created < end and mine(case.department_code):
        counts["reported"] += 1
        out.matters[case.matter_id] += 1
        if resolved_on_spot:
            counts["reported_resolved_on_spot"] += 1
    if deadline is not None and not withdrawn and mine(in_charge):
        closed_early = closed_at is not None and closed_at < deadline
        due_at = closed_at if closed_early else deadline
        if start <= due_at < cut:  # for the current period: due by now
            counts["due"] += 1
            if closed_at is not None:
                counts["due_closed"] += 1
                if closed_at <= deadline:
                    counts["closed_on_time"] += 1
            if extended:
                counts["extended"] += 1
        if state in HANDLING_STATES and deadline < as_of:
            counts["overdue_open"] += 1


# ---------------------------------------------------------------- reading the store


async def subtree(session: AsyncSession, node: Node) -> list[Node]:
    return list(await session.scalars(select(Node).where(Node.path.startswith(node.path, autoescape=True))))


def child_units(node: Node, nodes: list[Node]) -> list[Node]:
    """The node's children above the household level, by code (none for a grid)."""
    return sorted((n for n in nodes if n.parent_id == node.id and n.level != NodeLevel.household_unit),
                  key=lambda n: n.code)


def _moment_column(column, dialect: str):
    """On SQLite, read a time as its stored text (parsed below with the C `fromisoformat`, much faster
    than the type's own parsing); PostgreSQL's driver gives datetimes already."""
    return type_coerce(column, String) if dialect == "sqlite" else column


def _moment(value) -> datetime:
    if isinstance(value, str):
        return datetime.fromisoformat(value + "+00:00")  # SQLite keeps UTC without an offset
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


async def _candidates(session: AsyncSession, scope: Scope, grid_ids: list[int], period: Period,
                      department_codes: dict[int, str]) -> tuple[list[_CaseRow], Counter]:
    """Every case that can have figures in the period: created before its end, and touched (any step
    updates `updated_at`) since its start or with a deadline from its start on; and, per grid, how many
    cases untouched since before the period are overdue with a department."""
    start, end = period.start, period.end
    connection = await session.connection()
    dialect = connection.dialect.name
    # A case merged into another (a repeat report, 合并) is counted once, as the case it joined.
    base = [Case.created_at < end, Case.merged_into_id.is_(None)]
    if scope.matter is not None:
        base.append(Case.matter_id == scope.matter.id)
    columns = (Case.id, Case.grid_id, Case.matter_id, Case.department_id, _moment_column(Case.created_at, dialect))
    found: dict[int, _CaseRow] = {}
    stale: Counter = Counter()
    lively = [Case.updated_at >= start, Case.handling_deadline >= start]
    # One simple query per (condition, chunk of grids), so that each can use an index.
    for chunk in _chunks(grid_ids):
        for condition in lively:
            query = select(*columns).where(Case.grid_id.in_(chunk), condition, *base)
            if scope.department is not None:
                query = query.where(or_(Case.department_id == scope.department.id, Case.updated_at >= start))
            for case_id, grid_id, matter_id, department_id, created in await connection.execute(query):
                if case_id not in found:
                    found[case_id] = _CaseRow(case_id, grid_id, matter_id, department_codes.get(department_id),
                                              _moment(created))
        # Cases untouched since before the period, with a department and a deadline before it: nothing of
        # theirs happens in the period, but they are still overdue. Counted, not read step by step.
        # The time bounds are wrapped in coalesce() so that no index on a time range (which would cover
        # most of the store) is chosen over ix_cases_grid_state: few cases are still being handled.
        query = (select(Case.grid_id, func.count(Case.id))
                 .where(Case.grid_id.in_(chunk), Case.state.in_(HANDLING_STATES),
                        func.coalesce(Case.updated_at, Case.handling_deadline) < start,
                        func.coalesce(Case.handling_deadline, start) < start,
                        *([Case.matter_id == scope.matter.id] if scope.matter is not None else []))
                 .group_by(Case.grid_id))
        if scope.department is not None:
            query = query.where(Case.department_id == scope.department.id)
        for grid_id, count in await connection.execute(query):
            stale[grid_id] += count
    return list(found.values()), stale


def _chunks(items: list, size: int = CHUNK) -> Iterable[list]:
    for index in range(0, len(items), size):
        yield items[index:index + size]


# Only these steps carry data the figures read (deadline, department, rating): the rest is not decoded.
NEEDS_DATA = ("transfer", "return_to_centre", "rate") + EXTENSIONS
# Steps no figure counts and that never move a case into or out of being handled: not read at all.
IGNORED = ("report", "start_handling", "comment", "prompt", "relay_feedback", "escalate", "remind", "urge",
           "escalate_overdue", "verification_overdue", "request_extension", "refuse_extension", "publish")


async def _events(session: AsyncSession, case_ids: list[int], end: datetime) -> dict[int, list[tuple]]:
    """The cases' steps before `end`, in order: (action, at, to_state, data or None).

    Tens of thousands of rows per township and month: read through the driver's own connection (in
    the session's transaction), which is 3-5 times faster here than rows built by SQLAlchemy."""
    result: dict[int, list[tuple]] = defaultdict(list)
    if not case_ids:
        return result
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    wanted = ", ".join(f"'{action}'" for action in NEEDS_DATA)  # constants of this module, not input
    ignored = ", ".join(f"'{action}'" for action in IGNORED)
    columns = f"case_id, action, created_at, to_state, CASE WHEN action IN ({wanted}) THEN data END"
    if connection.dialect.name == "postgresql":
        rows = await raw.fetch(
            f"SELECT {columns}::text FROM case_events WHERE case_id = ANY($1::bigint[]) AND created_at < $2 "
            f"AND action NOT IN ({ignored}) ORDER BY case_id, id", sorted(case_ids), end)
        batches = [rows]
    else:
        batches = []
        bound = end.astimezone(timezone.utc).replace(tzinfo=None).isoformat(sep=" ")
        for chunk in _chunks(sorted(case_ids)):
            cursor = await raw.execute(
                f"SELECT {columns} FROM case_events WHERE case_id IN ({', '.join('?' * len(chunk))}) "
                f"AND created_at < ? AND action NOT IN ({ignored}) ORDER BY case_id, id", [*chunk, bound])
            batches.append(await cursor.fetchall())
            await cursor.close()
    for rows in batches:
        for case_id, action, at, to_state, data in rows:
            result[case_id].append((action, _moment(at), to_state, json.loads(data) if data is not None else None))
    return result


@dataclass
class Report:
    """The figures of one scope and period, and of its child units."""

    scope: Scope
    period: Period
    as_of: datetime
    total: Indicators
    children: list[tuple[Node, Indicators]]
    weights: dict[str, float]
    grids: dict[int, Node]
    matter_names: dict[int, Matter]

    def ranked(self) -> list[tuple[Node, Indicators, float | None]]:
        """Child units by composite score, best first; units without a score last."""
        rows = [(node, figures, figures.composite_score(self.weights)) for node, figures in self.children]
        return sorted(rows, key=lambda r: (r[2] is None, -(r[2] or 0), r[0].code))

    def bottom_three(self) -> list[Node]:
        scored = [r for r in self.ranked() if r[2] is not None]
        return [node for node, _, _ in scored[-3:]][::-1] if len(scored) > 3 else []

    def top_matters(self, count: int = 5) -> list[tuple[Matter, int]]:
        return [(self.matter_names[m], n) for m, n in self.total.matters.most_common(count) if m in self.matter_names]

    def hot_spots(self, count: int = 5) -> list[tuple[Node, int]]:
        return [(self.grids[g], n) for g, n in self.total.repeats.most_common(count) if n > 0 and g in self.grids]


async def compute(session: AsyncSession, scope: Scope, period: Period, *, now: datetime | None = None,
                  weights: dict[str, float] | None = None) -> Report:
    """The scope's figures for the period, and those of each child unit (see the module's docstring)."""
    now = now or utcnow()
    as_of = min(period.end, now)
    weights = weights_from_setting() if weights is None else weights
    nodes = await subtree(session, scope.node)
    grids = {n.id: n for n in nodes if n.level == NodeLevel.grid}
    children = child_units(scope.node, nodes)
    child_of: dict[int, int] = {}
    for grid in grids.values():
        for child in children:
            if grid.path.startswith(child.path):
                child_of[grid.id] = child.id
    department_codes = {d.id: d.code for d in await session.scalars(select(Department))}
    department = scope.department.code if scope.department is not None else None
    rows, stale_overdue = await _candidates(session, scope, sorted(grids), period, department_codes)
    events = await _events(session, [r.id for r in rows], period.end)
    total = Indicators()
    by_child = {child.id: Indicators() for child in children}
    seen_pairs: Counter = Counter()
    for row in sorted(rows, key=lambda r: (r.created_at, r.id)):
        # Each case is walked once, into its child unit (or the unit itself, for a grid); the unit's
        # figures are then the sum of its children's.
        into = by_child[child_of[row.grid_id]] if row.grid_id in child_of else total
        _walk(row, events.get(row.id, []), period, as_of, department, into)
        if period.start <= row.created_at < period.end and (department is None or row.department_code == department):
            seen_pairs[(row.grid_id, row.matter_id)] += 1
    for grid_id, count in stale_overdue.items():
        (by_child[child_of[grid_id]] if grid_id in child_of else total).counts["overdue_open"] += count
    for figures in by_child.values():
        total.add(figures)
    # Hot spots: a repeat report is a report of a matter already reported in the same grid this period.
    for (grid_id, _matter), reports in seen_pairs.items():
        total.repeats[grid_id] += reports - 1
    matter_ids = list(total.matters)
    matters = {m.id: m for m in await session.scalars(select(Matter).where(Matter.id.in_(matter_ids)))} if matter_ids else {}
    return Report(scope, period, as_of, total, [(c, by_child[c.id]) for c in children], weights, grids, matters)


async def resolve_scope(session: AsyncSession, node: str | None = None, department: str | None = None,
                        matter: str | None = None, default_node: Node | None = None) -> Scope:
    """Codes → a Scope; an unknown code raises InvalidPeriod (invalid_input) naming the field."""
    found_node = default_node
    if node is not None:
        found_node = await session.scalar(select(Node).where(Node.code == node))
        if found_node is None:
            raise InvalidPeriod(f"unknown grid or area {node!r}", field="node")
    if found_node is None:
        found_node = await session.scalar(select(Node).where(Node.parent_id.is_(None)).order_by(Node.code))
        if found_node is None:
            raise InvalidPeriod("the grid tree is empty", field="node")
    scope = Scope(found_node)
    if department is not None:
        scope.department = await session.scalar(select(Department).where(Department.code == department))
        if scope.department is None:
            raise InvalidPeriod(f"unknown department {department!r}", field="department")
    if matter is not None:
        scope.matter = await session.scalar(select(Matter).where(Matter.code == matter))
        if scope.matter is None:
            raise InvalidPeriod(f"unknown matter {matter!r}", field="matter")
    return scope


def parse_day(text: str, field: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except (AttributeError, ValueError):
        raise InvalidPeriod(f"{field} must be a date, YYYY-MM-DD", field=field) from None


def period_from(first: str | None, last: str | None, now: datetime | None = None) -> Period:
    """`from`/`to` (local dates, both included); without them, the current month."""
    if first is None and last is None:
        return Period.of(now or utcnow())
    current = Period.of(now or utcnow())
    start = parse_day(first, "from") if first else current.first
    stop = parse_day(last, "to") if last else current.last
    if stop < start:
        raise InvalidPeriod("to is before from", field="to")
    if (stop - start).days > 366 * 3:
        raise InvalidPeriod("a period is at most three years", field="to")
    return Period(start, stop)
