"""Staff join by invitation only: one-time codes bound to a role and a place, valid for 7 days."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .lifecycle import CaseError
from .models import Department, Identity, Invitation, Node, NodeLevel, Person, Role, RoleAssignment
from .people import grant_role, revoke_roles
from .timeutil import utcnow

VALID_FOR = timedelta(days=7)
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed on phones

# Which level of the grid tree each role is scoped to.
NODE_LEVELS = {
    Role.grid_worker: (NodeLevel.grid,),
    Role.grid_worker_part_time: (NodeLevel.grid,),
    Role.grid_chief: (NodeLevel.grid, NodeLevel.community),
    Role.grid_instructor: (NodeLevel.grid, NodeLevel.community, NodeLevel.township),
    Role.centre_staff: (NodeLevel.township, NodeLevel.district, NodeLevel.city),
}


class InvitationRefused(CaseError):
    """Unknown, used or expired: deliberately the same answer for all three."""

    code = "invitation_refused"


def _hash(code: str) -> str:
    normalised = "".join(ch for ch in code.upper() if ch.isalnum())
    return hashlib.sha256(normalised.encode()).hexdigest()


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(12))
    return "-".join(raw[i : i + 4] for i in range(0, 12, 4))


async def create_invitation(
    session: AsyncSession,
    role: Role,
    *,
    node_code: str | None = None,
    department_code: str | None = None,
    created_by: int | None = None,
    now: datetime | None = None,
) -> tuple[str, Invitation]:
    """A new invitation; returns the code (shown once; only its hash is stored)."""
    now = now or utcnow()
    node = department = None
    if role == Role.department_handler:
        department = await session.scalar(select(Department).where(Department.code == department_code))
        if department is None:
            raise ValueError(f"no department {department_code!r}")
    elif role in NODE_LEVELS:
        node = await session.scalar(select(Node).where(Node.code == node_code))
        if node is None:
            raise ValueError(f"no place {node_code!r}")
        if node.level not in NODE_LEVELS[role]:
            allowed = ", ".join(level.value for level in NODE_LEVELS[role])
            raise ValueError(f"a {role.value} is scoped to a {allowed}, not a {node.level.value}")
    elif role != Role.administrator:
        raise ValueError(f"no invitation for the role {role.value}")
    code = new_code()
    invitation = Invitation(
        code_hash=_hash(code),
        role=role,
        node_id=node.id if node else None,
        department_id=department.id if department else None,
        created_by=created_by,
        created_at=now,
        expires_at=now + VALID_FOR,
    )
    session.add(invitation)
    await session.flush()
    return code, invitation


async def redeem(session: AsyncSession, person_id: int, code: str, now: datetime | None = None) -> RoleAssignment:
    """Turn a valid code into a role for the person; the code is then used up."""
    now = now or utcnow()
    query = select(Invitation).where(Invitation.code_hash == _hash(code))
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update()
    invitation = await session.scalar(query)
    if invitation is None or invitation.used_at is not None or invitation.expires_at <= now:
        raise InvitationRefused("this code cannot be used")
    invitation.used_at, invitation.used_by = now, person_id
    return await grant_role(
        session, person_id, invitation.role, node_id=invitation.node_id, department_id=invitation.department_id
    )


async def find_person(session: AsyncSession, ref: str) -> Person | None:
    """A person by id, `web:ID`, `telegram:ID`, or a bare web-chat id."""
    platform, _, external = ref.partition(":") if ":" in ref else ("web", "", ref)
    if ref.isdigit():
        return await session.get(Person, int(ref))
    identity = await session.scalar(select(Identity).where(Identity.platform == platform, Identity.external_id == external))
    return await session.get(Person, identity.person_id) if identity else None


async def revoke_staff(session: AsyncSession, person_id: int) -> int:
    """Take away every role the person holds; effective at their next message."""
    return await revoke_roles(session, person_id)
