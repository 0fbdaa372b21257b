"""The notification outbox: lease due messages, then mark each one sent, retried, or given up.

Leases (`claimed_by`, `claimed_until`) are taken in a short transaction, so no
transaction stays open while a message travels. A lease takes a recipient's due
messages in order (at most `per_recipient` of them), and never a recipient another
dispatcher holds messages of: one person's notices go out from one dispatcher at a
time, in order, whichever instance it runs in. Leasing is serialised (an advisory
lock on PostgreSQL, BEGIN IMMEDIATE on SQLite); a dispatcher that dies leaves leases
that run out, so nothing is lost.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from .models import Identity, Notification
from .timeutil import utcnow

LEASE = timedelta(seconds=60)
GIVE_UP_AFTER = timedelta(days=3)  # an outage of hours loses nothing; after three days the news is stale
LEASE_LOCK = 0x6772_6964_0010  # advisory lock id serialising leases on PostgreSQL


def backoff(attempts: int) -> timedelta:
    """5 s, 10 s, 20 s … capped at one hour."""
    return timedelta(seconds=min(5 * 2 ** max(attempts - 1, 0), 3600))


def _pending():
    return (Notification.sent_at.is_(None), Notification.gave_up_at.is_(None))


async def lease_due(
    session: AsyncSession,
    worker: str,
    limit: int = 50,
    now: datetime | None = None,
    *,
    per_recipient: int = 10,
    paced_platforms: tuple[str, ...] = (),
) -> list[Notification]:
    """Lease up to `limit` due notifications for `worker`, in id order, at most `per_recipient`
    of one person, none of a person whose notices another lease holds. People reachable only on
    platforms not in `paced_platforms` come first: a web-inbox notice is an insert, and must not
    wait behind a burst that Telegram's pace spreads over minutes. Call inside a write transaction."""
    now = now or utcnow()
    if session.bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LEASE_LOCK})
    held = aliased(Notification)
    busy = (
        select(held.id)
        .where(held.recipient_id == Notification.recipient_id, held.sent_at.is_(None), held.gave_up_at.is_(None),
               held.claimed_until >= now)
        .exists()
    )
    due = (
        select(
            Notification.id,
            Notification.recipient_id,
            func.row_number().over(partition_by=Notification.recipient_id, order_by=Notification.id).label("position"),
        )
        .where(*_pending(), Notification.next_attempt_at <= now,
               or_(Notification.claimed_until.is_(None), Notification.claimed_until < now), ~busy)
        .subquery()
    )
    order = [due.c.id]
    if paced_platforms:
        paced = (
            select(Identity.id)
            .where(Identity.person_id == due.c.recipient_id, Identity.platform.in_(paced_platforms),
                   Identity.blocked_at.is_(None))
            .exists()
        )
        order.insert(0, case((paced, 1), else_=0))
    ids = list(await session.scalars(
        select(due.c.id).where(due.c.position <= per_recipient).order_by(*order).limit(limit)
    ))
    ids.sort()  # in id order from here: one person's in the order they were written
    if not ids:
        return []
    await session.execute(
        update(Notification).where(Notification.id.in_(ids))
        .values(claimed_by=worker, claimed_until=now + LEASE).execution_options(synchronize_session=False)
    )
    return list(await session.scalars(
        select(Notification).where(Notification.id.in_(ids)).order_by(Notification.id)
        .execution_options(populate_existing=True)
    ))


async def renew(session: AsyncSession, worker: str, ids: list[int], now: datetime | None = None) -> None:
    """Keep holding these leases for another LEASE (a person with many notices takes a while)."""
    if ids:
        await session.execute(
            update(Notification).where(Notification.id.in_(ids), Notification.claimed_by == worker)
            .values(claimed_until=(now or utcnow()) + LEASE).execution_options(synchronize_session=False)
        )


async def postpone(session: AsyncSession, worker: str, ids: list[int], until: datetime) -> None:
    """Give back these leases, not due before `until` (the platform asked us to wait): the person's
    notices then go out in their order once it has passed."""
    if ids:
        await session.execute(
            update(Notification).where(Notification.id.in_(ids), Notification.claimed_by == worker,
                                       Notification.sent_at.is_(None))
            .values(claimed_by=None, claimed_until=None, next_attempt_at=until)
            .execution_options(synchronize_session=False)
        )


async def _mine(session: AsyncSession, notification_id: int, worker: str) -> Notification | None:
    row = await session.get(Notification, notification_id, populate_existing=True)
    return row if row is not None and row.claimed_by == worker and row.sent_at is None else None


async def mark_sent(session: AsyncSession, notification_id: int, worker: str, now: datetime | None = None) -> bool:
    """One statement: sent, if this worker still holds it (False: its lease ran out and was taken)."""
    result = await session.execute(
        update(Notification)
        .where(Notification.id == notification_id, Notification.claimed_by == worker, Notification.sent_at.is_(None))
        .values(sent_at=now or utcnow(), attempts=Notification.attempts + 1, claimed_by=None, claimed_until=None)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


async def mark_failed(
    session: AsyncSession,
    notification_id: int,
    worker: str,
    error: str,
    *,
    retry_after: float | None = None,
    now: datetime | None = None,
) -> datetime | None:
    """A failed try: retry later (backoff, or the platform's retry_after); give up once it is GIVE_UP_AFTER
    old. Returns when it is tried again (None: given up, or not this worker's)."""
    now = now or utcnow()
    row = await _mine(session, notification_id, worker)
    if row is None:
        return None
    row.attempts += 1
    row.last_error = error[:500]
    row.claimed_by, row.claimed_until = None, None
    if now - row.created_at >= GIVE_UP_AFTER:
        row.gave_up_at = now
        return None
    row.next_attempt_at = now + (timedelta(seconds=retry_after) if retry_after else backoff(row.attempts))
    return row.next_attempt_at


async def mark_blocked(
    session: AsyncSession, notification_id: int, worker: str, identity_id: int, now: datetime | None = None
) -> int:
    """The person blocked the bot there (or deleted their account): remember it on that identity at
    once. Their pending notices go to their other platform when they have one (due now); otherwise
    they are given up with the reason, not retried for days. Returns how many were given up."""
    now = now or utcnow()
    identity = await session.get(Identity, identity_id)
    if identity is None:
        return 0
    identity.blocked_at = now
    row = await _mine(session, notification_id, worker)
    if row is not None:
        row.attempts += 1
    await session.flush()
    elsewhere = await session.scalar(
        select(func.count()).select_from(Identity)
        .where(Identity.person_id == identity.person_id, Identity.blocked_at.is_(None))
    )
    pending = (Notification.recipient_id == identity.person_id, *_pending(),
               or_(Notification.claimed_by.is_(None), Notification.claimed_by == worker,
                   Notification.claimed_until < now))
    if elsewhere:
        await session.execute(
            update(Notification).where(*pending)
            .values(claimed_by=None, claimed_until=None, next_attempt_at=now, last_error=f"blocked on {identity.platform}")
            .execution_options(synchronize_session=False)
        )
        return 0
    result = await session.execute(
        update(Notification).where(*pending)
        .values(claimed_by=None, claimed_until=None, gave_up_at=now,
                last_error=f"blocked on {identity.platform}, no other platform")
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


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
