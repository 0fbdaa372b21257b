"""The running product's parts, built once and handed to the adapters."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from conversations.engine import Engine
from storage.db import make_engine, make_sessionmaker
from storage.locks import ChatLocks

from .channels import Channel
from .settings import Settings


@dataclass
class Runtime:
    settings: Settings
    db: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    engine: Engine
    channels: list[Channel] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)  # for /metrics
    dispatcher: object | None = None
    locks: ChatLocks | None = None  # per chat, across instances (built on first use)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        db = make_engine(settings.database_url)
        sessionmaker = make_sessionmaker(db)
        return cls(settings, db, sessionmaker, Engine(sessionmaker, idle_minutes=settings.idle_minutes,
                                                      duplicate_metres=settings.duplicate_metres))

    def chat_locks(self) -> ChatLocks:
        if self.locks is None:
            url = self.db.url.render_as_string(hide_password=False) if self.db is not None else "sqlite://"
            self.locks = ChatLocks(url)
        return self.locks

    async def close(self) -> None:
        if self.locks is not None:
            await self.locks.close()
        if self.db is not None:
            await self.db.dispose()

    def count(self, name: str, by: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + by
