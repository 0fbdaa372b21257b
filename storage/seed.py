"""Loading the grid tree, the matter list and demo accounts from the YAML files in `storage/data/`."""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Department, GridKind, Identity, Matter, MatterChange, Node, NodeLevel, Role, RoleAssignment
from .people import grant_role, person_for_identity
from .timeutil import utcnow

DATA = Path(__file__).parent / "data"
MATTERS_FILE = DATA / "matters.yaml"
DEMO_FILE = DATA / "demo.yaml"

MATTER_FIELDS = (
    "name_zh", "name_bo", "description_zh", "description_bo", "work_kind",
    "time_limit_hours", "time_limit_working_days", "accept_within_hours", "accept_within_working_hours",
    "urgent", "needs_onsite_verification", "keywords_zh", "keywords_bo",
)
LIMIT_FIELDS = ("time_limit_hours", "time_limit_working_days", "accept_within_hours", "accept_within_working_hours")


def _check_limits(code: str, values: dict[str, Any]) -> None:
    """限时办结 in hours or in working days (one of the two); limits are whole, positive numbers."""
    for name in LIMIT_FIELDS:
        value = values.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= 24 * 366):
            raise ValueError(f"matter {code}: {name} must be a positive whole number")
    if (values.get("time_limit_hours") is None) == (values.get("time_limit_working_days") is None):
        raise ValueError(f"matter {code}: give time_limit_hours or time_limit_working_days (one of them)")
    if values.get("accept_within_hours") and values.get("accept_within_working_hours"):
        raise ValueError(f"matter {code}: give accept_within_hours or accept_within_working_hours, not both")


def read_yaml(path: Path | str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


async def load_departments(session: AsyncSession, rows: list[dict]) -> dict[str, Department]:
    existing = {d.code: d for d in await session.scalars(select(Department))}
    for row in rows:
        department = existing.get(row["code"])
        if department is None:
            department = existing[row["code"]] = Department(code=row["code"])
            session.add(department)
        department.name_zh, department.name_bo = row["name_zh"], row["name_bo"]
    await session.flush()
    return existing


def _withdrawn_at(value) -> datetime | None:
    if value in (None, False):
        return None
    if value is True:
        return utcnow()
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=timezone.utc)
    return datetime.fromisoformat(str(value)).replace(tzinfo=timezone.utc)


async def load_matters(session: AsyncSession, data: dict[str, Any]) -> dict[str, int]:
    """Idempotent: new matters are published, changed ones updated, `withdrawn:` ones withdrawn.

    Every change is kept in `matter_changes`; a withdrawn matter stays in the table
    so that its old cases still name it. Returns counts per change.
    """
    departments = await load_departments(session, data.get("departments", []))
    existing = {m.code: m for m in await session.scalars(select(Matter))}
    counts = {"published": 0, "updated": 0, "withdrawn": 0, "republished": 0, "unchanged": 0}
    for row in data.get("matters", []):
        values = {name: row.get(name) for name in MATTER_FIELDS}
        values["description_zh"] = values["description_zh"] or ""
        values["description_bo"] = values["description_bo"] or ""
        values["needs_onsite_verification"] = bool(values["needs_onsite_verification"])
        values["urgent"] = bool(values["urgent"])
        _check_limits(row["code"], values)
        values["keywords_zh"] = list(values["keywords_zh"] or [])
        values["keywords_bo"] = list(values["keywords_bo"] or [])
        department = departments[row["department"]]
        withdrawn_at = _withdrawn_at(row.get("withdrawn"))
        matter = existing.get(row["code"])
        if matter is None:
            matter = Matter(code=row["code"], department_id=department.id, published_at=utcnow(), **values)
            matter.withdrawn_at = withdrawn_at
            session.add(matter)
            await session.flush()
            change = "withdrawn" if withdrawn_at else "published"
        else:
            before = _snapshot(matter)
            for name, value in values.items():
                setattr(matter, name, value)
            matter.department_id = department.id
            if withdrawn_at and matter.withdrawn_at is None:
                matter.withdrawn_at, change = withdrawn_at, "withdrawn"
            elif not withdrawn_at and matter.withdrawn_at is not None:
                matter.withdrawn_at, matter.published_at, change = None, utcnow(), "republished"
            else:
                change = "updated" if _snapshot(matter) != before else "unchanged"
        counts[change] += 1
        if change != "unchanged":
            session.add(MatterChange(matter_id=matter.id, change=change, snapshot=_snapshot(matter)))
    await session.flush()
    return counts


def _snapshot(matter: Matter) -> dict[str, Any]:
    snapshot = {name: getattr(matter, name) for name in MATTER_FIELDS}
    snapshot["department_id"] = matter.department_id
    snapshot["withdrawn"] = matter.withdrawn_at is not None
    return snapshot


async def load_nodes(session: AsyncSession, rows: list[dict], parent: Node | None = None) -> int:
    """Upsert a nested list of nodes by code; returns how many were read."""
    count = 0
    for row in rows:
        node = await session.scalar(select(Node).where(Node.code == str(row["code"])))
        if node is None:
            node = Node(code=str(row["code"]))
            session.add(node)
        node.level = NodeLevel(row["level"])
        node.kind = GridKind(row["kind"]) if row.get("kind") else None
        node.parent_id = parent.id if parent else None
        node.path = (parent.path if parent else "/") + f"{node.code}/"
        node.name_zh, node.name_bo = row["name_zh"], row["name_bo"]
        node.area_zh, node.area_bo = row.get("area_zh"), row.get("area_bo")
        node.supervision_phone = row.get("supervision_phone")
        ring = row.get("boundary")
        node.boundary = {"type": "Polygon", "coordinates": [ring]} if isinstance(ring, list) else ring
        await session.flush()
        count += 1 + await load_nodes(session, row.get("children", []), node)
    return count


async def load_people(session: AsyncSession, rows: list[dict]) -> int:
    """Demo accounts: each with a web-chat identity and its roles; idempotent."""
    nodes = {n.code: n for n in await session.scalars(select(Node))}
    departments = {d.code: d for d in await session.scalars(select(Department))}
    for row in rows:
        person, created = await person_for_identity(
            session, "web", row["web_id"], language=row.get("language", "zh"), display_name=row["name"]
        )
        person.display_name, person.language, person.phone = row["name"], row.get("language", "zh"), row.get("phone")
        person.language_chosen = True
        if row.get("telegram") and not await session.scalar(
            select(Identity).where(Identity.platform == "telegram", Identity.external_id == str(row["telegram"]))
        ):
            session.add(Identity(person_id=person.id, platform="telegram", external_id=str(row["telegram"]),
                                 chat_id=str(row["telegram"])))
        held = {
            (a.role, a.node_id, a.department_id)
            for a in await session.scalars(
                select(RoleAssignment).where(RoleAssignment.person_id == person.id, RoleAssignment.revoked_at.is_(None))
            )
        }
        for spec in row.get("roles", []):
            role = Role(spec["role"])
            node_id = nodes[str(spec["node"])].id if spec.get("node") else None
            department_id = departments[spec["department"]].id if spec.get("department") else None
            if (role, node_id, department_id) not in held:
                await grant_role(session, person.id, role, node_id=node_id, department_id=department_id)
    await session.flush()
    return len(rows)


async def load_demo(session: AsyncSession) -> dict[str, Any]:
    """The bundled fictional district, the matter list and the demo accounts."""
    demo = read_yaml(DEMO_FILE)
    nodes = await load_nodes(session, demo["nodes"])
    matters = await load_matters(session, read_yaml(MATTERS_FILE))
    people = await load_people(session, demo.get("people", []))
    return {"nodes": nodes, "matters": matters, "people": people}


async def is_empty(session: AsyncSession) -> bool:
    return await session.scalar(select(Node.id).limit(1)) is None
