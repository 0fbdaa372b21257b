"""Platform updates: stored on arrival, handled in update order per chat, pruned after a while.

A push platform (Telegram's webhook) may deliver one person's quick updates to different
instances, a later one first. Each update is stored before anything else happens; the
instance that then holds the chat's lock (`storage.locks`) handles every stored update of
that chat in update order, whoever received it. The engine marks an update handled in the
transaction of its effects (`conversations.engine`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from .models import ProcessedUpdate
from .timeutil import utcnow

RETENTION = timedelta(days=7)


def _key(platform: str, bot: str, chat: str, update_id: str):
    return (ProcessedUpdate.platform == platform, ProcessedUpdate.bot == bot, ProcessedUpdate.chat == chat,
            ProcessedUpdate.update_id == update_id)


async def store_arrival(
    session: AsyncSession, platform: str, bot: str, chat: str, update_id: str, payload: dict[str, Any]
) -> bool:
    """Keep an update that has just arrived, not handled yet; False when it was there already."""
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    now = utcnow()
    result = await session.execute(
        insert(ProcessedUpdate)
        .values(platform=platform, bot=bot, chat=chat, update_id=update_id, received_at=now, processed_at=None,
                payload=payload)
        .on_conflict_do_nothing()
    )
    return bool(result.rowcount)


async def waiting(
    session: AsyncSession, platform: str, bot: str, chat: str, within: timedelta = timedelta(seconds=60)
) -> list[tuple[str, dict[str, Any]]]:
    """The chat's stored updates not handled yet, in update order: (update id, payload). Only those
    received `within` the last minute: an older one failed again and again, and only the platform's
    redelivery of it is tried (it must not hold the chat's later updates up)."""
    rows = (await session.execute(
        select(ProcessedUpdate.update_id, ProcessedUpdate.payload).where(
            ProcessedUpdate.platform == platform, ProcessedUpdate.bot == bot, ProcessedUpdate.chat == chat,
            ProcessedUpdate.processed_at.is_(None), ProcessedUpdate.payload.is_not(None),
            ProcessedUpdate.received_at >= utcnow() - within,
        )
    )).all()
    return sorted(((update_id, payload) for update_id, payload in rows), key=lambda row: _order(row[0]))


def _order(update_id: str) -> tuple[int, str]:
    return (int(update_id), "") if update_id.lstrip("-").isdigit() else (0, update_id)


async def settle(session: AsyncSession, platform: str, bot: str, chat: str, update_id: str) -> None:
    """A stored update went through the handlers without reaching the engine (an edited message, a
    sticker in a group): handled, so that it does not wait in the chat's queue."""
    await session.execute(
        update(ProcessedUpdate).where(*_key(platform, bot, chat, update_id), ProcessedUpdate.processed_at.is_(None))
        .values(processed_at=utcnow(), payload=None, answered_at=utcnow())
    )


async def outcome(session: AsyncSession, platform: str, bot: str, chat: str, update_id: str) -> tuple[bool, bool]:
    """(handled, answer confirmed sent) for one update."""
    row = (await session.execute(
        select(ProcessedUpdate.processed_at, ProcessedUpdate.answered_at).where(*_key(platform, bot, chat, update_id))
    )).first()
    if row is None:
        return False, False
    return row[0] is not None, row[1] is not None


async def prune(session: AsyncSession, retention: timedelta = RETENTION, now: datetime | None = None) -> int:
    """Forget updates received longer than `retention` ago (a platform never redelivers that late)."""
    result = await session.execute(
        delete(ProcessedUpdate).where(ProcessedUpdate.received_at < (now or utcnow()) - retention)
    )
    return result.rowcount or 0
