"""Who gets the monthly bulletin in the chat, and the record that each got it once.

One row per (month, person) (a unique key), made by whichever instance plans first; rows are
leased in short transactions (FOR UPDATE SKIP LOCKED on PostgreSQL), so several instances share
the sending and a row is sent by one of them; a dead instance's lease runs out and another
instance sends it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from .models import BulletinDelivery, Node, Role, RoleAssignment
from .outbox import backoff
from .timeutil import utcnow

RECIPIENT_ROLES = (Role.grid_chief, Role.centre_staff)  # 网格长, 网格化工作机构
LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 8


async def plan(session: AsyncSession, month: str, now: datetime | None = None) -> int:
    """Make the month's rows (idempotent): each grid chief and centre staff member, for their widest unit."""
    now = now or utcnow()
    rows = await session.execute(
        select(RoleAssignment.person_id, Node.id, Node.path)
        .join(Node, Node.id == RoleAssignment.node_id)
        .where(RoleAssignment.role.in_(RECIPIENT_ROLES), RoleAssignment.revoked_at.is_(None))
    )
    widest: dict[int, tuple[int, str]] = {}
    for person_id, node_id, path in rows:
        if person_id not in widest or len(path) < len(widest[person_id][1]):
            widest[person_id] = (node_id, path)
    if not widest:
        return 0
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    statement = insert(BulletinDelivery).values([
        dict(month=month, person_id=person_id, node_id=node_id, created_at=now, attempts=0)
        for person_id, (node_id, _) in sorted(widest.items())
    ]).on_conflict_do_nothing(index_elements=["month", "person_id"])
    result = await session.execute(statement)
    return result.rowcount or 0


async def lease(session: AsyncSession, month: str, worker: str, limit: int = 20,
                now: datetime | None = None) -> list[BulletinDelivery]:
    now = now or utcnow()
    query = (
        select(BulletinDelivery)
        .where(BulletinDelivery.month == month, BulletinDelivery.sent_at.is_(None),
               BulletinDelivery.attempts < MAX_ATTEMPTS,
               or_(BulletinDelivery.claimed_until.is_(None), BulletinDelivery.claimed_until < now))
        .order_by(BulletinDelivery.id)
        .limit(limit)
    )
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = list(await session.scalars(query))
    for row in rows:
        row.claimed_by, row.claimed_until = worker, now + LEASE
    await session.flush()
    return rows


async def _mine(session: AsyncSession, delivery_id: int, worker: str) -> BulletinDelivery | None:
    row = await session.get(BulletinDelivery, delivery_id, populate_existing=True, with_for_update=True)
    return row if row is not None and row.claimed_by == worker and row.sent_at is None else None


async def mark_sent(session: AsyncSession, delivery_id: int, worker: str, now: datetime | None = None) -> bool:
    row = await _mine(session, delivery_id, worker)
    if row is None:
        return False
    row.sent_at, row.claimed_until, row.attempts = now or utcnow(), None, row.attempts + 1
    return True


async def mark_failed(session: AsyncSession, delivery_id: int, worker: str, error: str,
                      now: datetime | None = None) -> bool:
    """Try again later (backoff), until MAX_ATTEMPTS."""
    row = await _mine(session, delivery_id, worker)
    if row is None:
        return False
    row.attempts += 1
    row.last_error = error[:500]
    row.claimed_until = (now or utcnow()) + backoff(row.attempts)
    return True
