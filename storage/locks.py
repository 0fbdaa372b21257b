"""Locks per chat that hold across instances: one person's updates are handled one at a time.

On PostgreSQL a key is a session-level advisory lock taken on a connection of a small pool
of its own (so that waiting for a lock never starves the main pool); a killed instance's
connections close and its locks go with them. On SQLite (one process) an asyncio.Lock per
key does, shared by every front door of the process. Within one process the asyncio.Lock
comes first either way, so one key holds at most one connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import Counter
from typing import AsyncIterator

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from .db import is_sqlite, make_engine

log = logging.getLogger("gridbot.locks")


def lock_id(key: str) -> int:
    """A signed 64-bit advisory lock id for `key`."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


_local: dict[str, asyncio.Lock] = {}  # per process, whatever the number of front doors in it
_users: Counter[str] = Counter()


class ChatLocks:
    def __init__(self, url: str, *, connections: int = 16, wait_seconds: int = 60):
        self.engine: AsyncEngine | None = None
        if not is_sqlite(url):
            self.engine = make_engine(
                url, pool_size=connections // 2, max_overflow=connections - connections // 2,
                connect_args={"server_settings": {"lock_timeout": f"{wait_seconds}s",
                                                  "application_name": "gridbot-locks"}},
            )

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Hold `key` for every instance until the block ends."""
        local = _local.setdefault(key, asyncio.Lock())
        _users[key] += 1
        try:
            async with local:
                if self.engine is None:
                    yield
                    return
                async with self.engine.connect() as connection:
                    await connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": lock_id(key)})
                    try:
                        yield
                    finally:
                        try:
                            await asyncio.shield(connection.execute(text("SELECT pg_advisory_unlock(:id)"),
                                                                    {"id": lock_id(key)}))
                        except BaseException:
                            # Never give a connection that may still hold the lock back to the pool.
                            await connection.invalidate()
                            raise
        finally:
            _users[key] -= 1
            if not _users[key]:
                del _users[key]
                _local.pop(key, None)

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()
