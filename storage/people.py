"""People, their platform identities, and the roles that scope what they see and do."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Identity, Person, Role, RoleAssignment
from .timeutil import utcnow

LANGUAGES = ("zh", "bo")


async def person_for_identity(
    session: AsyncSession,
    platform: str,
    external_id: str,
    *,
    chat_id: str | None = None,
    language: str | None = None,
    display_name: str | None = None,
) -> tuple[Person, bool]:
    """The person behind a platform account, created on first contact. Returns (person, created)."""
    identity = await session.scalar(
        select(Identity).where(Identity.platform == platform, Identity.external_id == str(external_id))
    )
    if identity is not None:
        if chat_id is not None and identity.chat_id != str(chat_id):
            identity.chat_id = str(chat_id)
        if identity.blocked_at is not None:
            identity.blocked_at = None  # they wrote to us again
        return await session.get_one(Person, identity.person_id), False
    person = Person(language=language if language in LANGUAGES else "zh", display_name=display_name)
    try:
        async with session.begin_nested():
            session.add(person)
            await session.flush()
            session.add(
                Identity(
                    person_id=person.id,
                    platform=platform,
                    external_id=str(external_id),
                    chat_id=str(chat_id) if chat_id is not None else None,
                )
            )
            await session.flush()
    except IntegrityError:
        # Another instance created the same identity at the same moment.
        identity = await session.scalar(
            select(Identity).where(Identity.platform == platform, Identity.external_id == str(external_id))
        )
        return await session.get_one(Person, identity.person_id), False
    return person, True


async def active_roles(session: AsyncSession, person_id: int) -> list[RoleAssignment]:
    rows = await session.scalars(
        select(RoleAssignment).where(RoleAssignment.person_id == person_id, RoleAssignment.revoked_at.is_(None))
    )
    return list(rows)


async def grant_role(
    session: AsyncSession,
    person_id: int,
    role: Role,
    *,
    node_id: int | None = None,
    department_id: int | None = None,
) -> RoleAssignment:
    if role == Role.department_handler and department_id is None:
        raise ValueError("a department handler needs a department")
    if role not in (Role.department_handler, Role.resident, Role.administrator) and node_id is None:
        raise ValueError(f"{role.value} needs a node of the grid tree")
    assignment = RoleAssignment(person_id=person_id, role=role, node_id=node_id, department_id=department_id)
    session.add(assignment)
    await session.flush()
    return assignment


async def revoke_roles(session: AsyncSession, person_id: int) -> int:
    count = 0
    for assignment in await active_roles(session, person_id):
        assignment.revoked_at = utcnow()
        count += 1
    return count


async def people_with_role(
    session: AsyncSession, role: Role | tuple[Role, ...], *, node_id: int | None = None, department_id: int | None = None
) -> list[int]:
    roles = role if isinstance(role, tuple) else (role,)
    query = select(RoleAssignment.person_id).where(RoleAssignment.role.in_(roles), RoleAssignment.revoked_at.is_(None))
    if node_id is not None:
        query = query.where(RoleAssignment.node_id == node_id)
    if department_id is not None:
        query = query.where(RoleAssignment.department_id == department_id)
    return sorted(set(await session.scalars(query)))
