"""The notification outbox: lease due messages, then mark each one sent, retried, or given up.

Leases (`claimed_by`, `claimed_until`) are taken in a short transaction, so no
transaction stays open while a message travels; several dispatchers share the
work (on PostgreSQL with FOR UPDATE SKIP LOCKED), and a dispatcher that dies
leaves leases that run out, so nothing is lost.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from .models import Identity, Notification
from .timeutil import utcnow

LEASE = timedelta(seconds=60)
GIVE_UP_AFTER = timedelta(days=3)  # an outage of hours loses nothing; after three days the news is stale


def backoff(attempts: int) -> timedelta:
    """5 s, 10 s, 20 s … capped at one hour."""
    return timedelta(seconds=min(5 * 2 ** max(attempts - 1, 0), 3600))


async def lease_due(session: AsyncSession, worker: str, limit: int = 50, now: datetime | None = None) -> list[Notification]:
    """Lease up to `limit` due notifications for `worker`; call inside a transaction."""
    now = now or utcnow()
    query = (
        select(Notification)
        .where(
            Notification.sent_at.is_(None),
            Notification.gave_up_at.is_(None),
            Notification.next_attempt_at <= now,
            or_(Notification.claimed_until.is_(None), Notification.claimed_until < now),
        )
        .order_by(Notification.id)
        .limit(limit)
    )
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = list(await session.scalars(query))
    for row in rows:
        row.claimed_by = worker
        row.claimed_until = now + LEASE
    await session.flush()
    return rows


async def _mine(session: AsyncSession, notification_id: int, worker: str) -> Notification | None:
    row = await session.get(Notification, notification_id, populate_existing=True)
    return row if row is not None and row.claimed_by == worker and row.sent_at is None else None


async def mark_sent(session: AsyncSession, notification_id: int, worker: str, now: datetime | None = None) -> bool:
    row = await _mine(session, notification_id, worker)
    if row is None:
        return False
    row.sent_at = now or utcnow()
    row.attempts += 1
    row.claimed_by, row.claimed_until = None, None
    return True


async def mark_failed(
    session: AsyncSession,
    notification_id: int,
    worker: str,
    error: str,
    *,
    retry_after: float | None = None,
    now: datetime | None = None,
) -> None:
    """A failed try: retry later (backoff, or the platform's retry_after); give up once it is GIVE_UP_AFTER old."""
    now = now or utcnow()
    row = await _mine(session, notification_id, worker)
    if row is None:
        return
    row.attempts += 1
    row.last_error = error[:500]
    row.claimed_by, row.claimed_until = None, None
    if now - row.created_at >= GIVE_UP_AFTER:
        row.gave_up_at = now
    else:
        row.next_attempt_at = now + (timedelta(seconds=retry_after) if retry_after else backoff(row.attempts))


async def mark_blocked(session: AsyncSession, notification_id: int, worker: str, identity_id: int) -> None:
    """The person blocked the bot there: remember it on that identity, and let the message be tried
    at once on their other platforms (or later, when they write to us again)."""
    now = utcnow()
    identity = await session.get(Identity, identity_id)
    if identity is not None:
        identity.blocked_at = now
    row = await _mine(session, notification_id, worker)
    if row is not None:
        row.attempts += 1
        row.last_error = "blocked by user"
        row.next_attempt_at = now
        row.claimed_by, row.claimed_until = None, None


async def give_up(session: AsyncSession, notification_id: int, worker: str, reason: str) -> None:
    """Never send this one (e.g. its recipient no longer has a role that concerns the case)."""
    row = await _mine(session, notification_id, worker)
    if row is not None:
        row.gave_up_at = utcnow()
        row.last_error = reason
        row.claimed_by, row.claimed_until = None, None


async def release(session: AsyncSession, worker: str) -> None:
    """Give back this worker's leases (on a clean shutdown)."""
    await session.execute(
        update(Notification)
        .where(Notification.claimed_by == worker, Notification.sent_at.is_(None))
        .values(claimed_by=None, claimed_until=None)
    )


async def backlog(session: AsyncSession) -> int:
    return await session.scalar(
        select(func.count()).select_from(Notification).where(Notification.sent_at.is_(None), Notification.gave_up_at.is_(None))
    )
