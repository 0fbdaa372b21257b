"""Pacing shared by every instance: sending slots handed out by the database.

A key (one bot, one chat) has a row holding the next free moment. Reserving a slot moves
it on by the key's interval in one atomic upsert, so two instances that reserve at the
same moment get consecutive slots, never the same one. A platform's "slow down" (429)
moves the bot's next free moment past the pause for every instance at once.
"""

from __future__ import annotations

import asyncio
import time
from contextvars import ContextVar
from typing import Awaitable, Callable

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .db import write_gate, writing
from .models import PacingSlot


# The pacing key whose slot the current task has just taken (set by the dispatcher around a send), so
# that a platform library's own limiter backed by the same key does not take a second one.
SLOT_TAKEN: ContextVar[str | None] = ContextVar("gridbot_slot_taken", default=None)


class SharedPacer:
    """`wait(key, interval)` returns at the caller's slot; `pause(key, seconds)` holds a key for everyone.

    `clock` gives Unix seconds and `sleep` waits: both replaceable for tests. Instances must have
    synchronised clocks (NTP), as slots are moments in time.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.sleep = sleep
        self._queues: dict[str, asyncio.Lock] = {}
        self._held: dict[str, list[float]] = {}  # slots this process reserved and has not used yet
        self._fired: dict[str, float] = {}  # when this process last sent under a key
        self._bind = sessionmaker.kw.get("bind")

    @property
    def gate(self):
        """This process's queue of writers on SQLite (`storage.db.write_gate`)."""
        return write_gate(self._bind)

    async def reserve(self, key: str, interval: float) -> float:
        """The start of the next free slot of `key` (Unix seconds), taken for the caller."""
        now = self.clock()
        async with self.gate, self.sessionmaker.begin() as session:
            await writing(session)
            end = await session.scalar(self._upsert(session, key, now + interval,
                                                    lambda column: _greatest(session, column, now) + interval))
        return end - interval

    async def wait(
        self,
        key: str,
        interval: float,
        *,
        late: float = 0.1,
        ahead: float = 0.2,
        while_waiting: Callable[[], Awaitable[None]] | None = None,
    ) -> float:
        """Sleep until a slot of `key` starts, and take it; returns how long it waited.

        A process takes the slots of the next `ahead` seconds in one reservation (one database
        round trip for several sends) and hands them to its callers in turn, so it never holds
        more than that ahead of time: a pause (429) applies almost at once. A caller that wakes
        more than `late` seconds after its slot (a busy machine) takes the next one instead of
        sending late, so that stalled senders do not go out together in a burst.
        `while_waiting` is called between sleeps of at most 5 s (e.g. to renew a lease)."""
        started = self.clock()
        queue = self._queues.setdefault(key, asyncio.Lock())
        async with queue:
            while True:
                held = self._held.setdefault(key, [])
                while held and self.clock() - held[0] > late:
                    held.pop(0)  # passed while nobody was ready for it
                if not held:
                    count = max(1, int(ahead / interval))
                    start = await self.reserve(key, interval * count)
                    held.extend(start + index * interval for index in range(count))
                slot = held.pop(0)
                # Never two of this process's sends closer than the interval (catching up after a stall).
                at = max(slot, self._fired.get(key, 0.0) + interval)
                if at - slot > late:
                    continue
                while (delay := at - self.clock()) > 0:
                    await self.sleep(min(delay, 5.0))
                    if while_waiting is not None and at - self.clock() > 0:
                        await while_waiting()
                if self.clock() - slot <= late:
                    self._fired[key] = max(at, self.clock())
                    return max(0.0, self.clock() - started)

    async def wait_until_free(
        self, key: str, while_waiting: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """Sleep until `key`'s next free moment without taking a slot (for a key only one sender
        uses at a time, moved on with `pause` after each send)."""
        free = await self.next_free(key)
        while free is not None and (delay := free - self.clock()) > 0:
            await self.sleep(min(delay, 5.0))
            if while_waiting is not None:
                await while_waiting()

    async def pause(self, key: str, seconds: float) -> None:
        """No slot of `key` starts before `seconds` from now, whoever asks."""
        self._held.pop(key, None)  # this process's slots ahead are void
        until = self.clock() + seconds
        async with self.gate, self.sessionmaker.begin() as session:
            await writing(session)
            await session.scalar(self._upsert(session, key, until, lambda column: _greatest(session, column, until)))

    async def next_free(self, key: str) -> float | None:
        async with self.sessionmaker() as session:
            return await session.scalar(select(PacingSlot.next_at).where(PacingSlot.key == key))

    @staticmethod
    def _upsert(session: AsyncSession, key: str, value: float, updated):
        dialect = session.bind.dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(PacingSlot).values(key=key, next_at=value)
        return statement.on_conflict_do_update(
            index_elements=[PacingSlot.key], set_={"next_at": updated(PacingSlot.next_at)}
        ).returning(PacingSlot.next_at)


def _greatest(session: AsyncSession, column, value: float):
    return func.greatest(column, value) if session.bind.dialect.name == "postgresql" else func.max(column, value)
