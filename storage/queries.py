"""Listing cases: a person's scope as one query, filters, paging (case API, Open311).

`scope_condition` is `storage.access.can_view` written as SQL: the reporter sees their
own cases; grid workers, chiefs and instructors the cases of grids under their node;
centre staff the cases whose centre is under their node (and those of their area
after escalating them); department handlers the cases assigned to their department.
Keep the two in step: tests compare them case by case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import ColumnElement, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from . import access
from .cases import InvalidInput
from .lifecycle import STATES
from .models import Case, CaseSource, Department, Matter, Node, Role, RoleAssignment
from .timeutil import LOCAL_TZ

MAX_LIMIT = 200
DEFAULT_LIMIT = 50


@dataclass
class CaseFilter:
    """What to list. Empty fields do not filter."""

    numbers: list[str] | None = None
    states: list[str] | None = None
    matter_codes: list[str] | None = None
    node_code: str | None = None  # a grid, or any node above it: every case in its subtree
    department_code: str | None = None
    sources: list[CaseSource] | None = None
    created_from: datetime | None = None  # created_at >= created_from
    created_before: datetime | None = None  # created_at < created_before


def parse_time(value: str, *, field: str, end: bool = False) -> datetime:
    """An ISO 8601 date or date-time; without an offset it is Lhasa time (Asia/Shanghai).

    With `end=True` the bound is returned exclusive but means "up to and including":
    a date covers that whole local day, a date-time that instant.
    """
    text = (value or "").strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime.combine(day, time(), tzinfo=LOCAL_TZ)
            return start + timedelta(days=1) if end else start
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(f"{field} must be an ISO 8601 date or date-time, e.g. 2026-11-25 or 2026-11-25T16:05:00+08:00",
                           field=field) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LOCAL_TZ)
    return moment + timedelta(microseconds=1) if end else moment


def _nodes_under(path: str):
    return select(Node.id).where(Node.path.startswith(path, autoescape=True))


def scope_condition(person_id: int, assignments: list[RoleAssignment]) -> ColumnElement[bool]:
    """The cases this person may see, as a WHERE condition (same rule as `access.can_view`)."""
    conditions: list[ColumnElement[bool]] = [Case.reporter_id == person_id]
    for assignment in assignments:
        if assignment.role in access.GRID_ROLES and assignment.node is not None:
            conditions.append(Case.grid_id.in_(_nodes_under(assignment.node.path)))
        elif assignment.role == Role.centre_staff and assignment.node is not None:
            conditions.append(Case.centre_node_id.in_(_nodes_under(assignment.node.path)))
            conditions.append(Case.grid_id.in_(_nodes_under(assignment.node.path)))
        elif assignment.role == Role.department_handler and assignment.department_id is not None:
            conditions.append(Case.department_id == assignment.department_id)
    return or_(*conditions)


async def filter_conditions(session: AsyncSession, filters: CaseFilter, *, strict: bool) -> list[ColumnElement[bool]]:
    """WHERE conditions for the filters. Unknown codes raise InvalidInput when `strict`, else match nothing."""
    conditions: list[ColumnElement[bool]] = []

    def unknown(message: str, field: str) -> None:
        if strict:
            raise InvalidInput(message, field=field)
        conditions.append(false())

    if filters.numbers:
        conditions.append(Case.number.in_([n.strip().upper() for n in filters.numbers]))
    if filters.states:
        bad = [s for s in filters.states if s not in STATES]
        if bad:
            unknown(f"unknown state {bad[0]!r}; states are " + ", ".join(STATES), "state")
        conditions.append(Case.state.in_(filters.states))
    if filters.matter_codes:
        ids = list(await session.scalars(select(Matter.id).where(Matter.code.in_(filters.matter_codes))))
        if len(ids) < len(set(filters.matter_codes)):
            known = set(await session.scalars(select(Matter.code).where(Matter.id.in_(ids))))
            missing = [c for c in filters.matter_codes if c not in known]
            unknown(f"unknown matter {missing[0]!r}", "matter")
        conditions.append(Case.matter_id.in_(ids))
    if filters.node_code:
        path = await session.scalar(select(Node.path).where(Node.code == filters.node_code))
        if path is None:
            unknown(f"unknown grid or area {filters.node_code!r}", "grid")
        else:
            conditions.append(Case.grid_id.in_(_nodes_under(path)))
    if filters.department_code:
        department_id = await session.scalar(select(Department.id).where(Department.code == filters.department_code))
        if department_id is None:
            unknown(f"unknown department {filters.department_code!r}", "department")
        conditions.append(Case.department_id == department_id)
    if filters.sources:
        conditions.append(Case.source.in_(filters.sources))
    if filters.created_from is not None:
        conditions.append(Case.created_at >= filters.created_from)
    if filters.created_before is not None:
        conditions.append(Case.created_at < filters.created_before)
    return conditions


async def _page(session: AsyncSession, conditions, limit: int, offset: int) -> tuple[list[Case], int]:
    total = await session.scalar(select(func.count(Case.id)).where(*conditions))
    rows = await session.scalars(
        select(Case).where(*conditions).order_by(Case.created_at.desc(), Case.id.desc()).limit(limit).offset(offset)
    )
    return list(rows.unique()), int(total or 0)


def _check_paging(limit: int, offset: int, max_limit: int) -> None:
    if not 1 <= limit <= max_limit:
        raise InvalidInput(f"limit must be between 1 and {max_limit}", field="limit")
    if offset < 0:
        raise InvalidInput("offset must not be negative", field="offset")


async def cases_in_scope(
    session: AsyncSession,
    person_id: int,
    assignments: list[RoleAssignment],
    filters: CaseFilter | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
) -> tuple[list[Case], int]:
    """The cases this person may see that match the filters, newest first; and how many match in all."""
    _check_paging(limit, offset, MAX_LIMIT)
    conditions = [scope_condition(person_id, assignments)]
    conditions += await filter_conditions(session, filters or CaseFilter(), strict=True)
    return await _page(session, conditions, limit, offset)


async def public_cases(
    session: AsyncSession, filters: CaseFilter | None = None, *, limit: int = 1000, offset: int = 0
) -> tuple[list[Case], int]:
    """Every case matching the filters, newest first (for public listings that show no personal data)."""
    _check_paging(limit, offset, 1000)
    conditions = await filter_conditions(session, filters or CaseFilter(), strict=False)
    return await _page(session, conditions, limit, offset)
