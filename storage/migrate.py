"""Run Alembic migrations from code (`gridbot db upgrade`, and the bot's first start)."""

from __future__ import annotations

import contextlib
import zlib
from pathlib import Path
from typing import AsyncIterator

from sqlalchemy import text

from alembic import command
from alembic.config import Config

from .db import database_url, is_sqlite, make_engine

STARTUP_LOCK = zlib.crc32(b"gridbot startup")  # advisory lock id: migrations and the demo load

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = url or database_url()
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Blocking: call it before the event loop starts, or through asyncio.to_thread."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


@contextlib.asynccontextmanager
async def startup_lock(url: str | None = None) -> AsyncIterator[None]:
    """Held while one instance migrates and loads the demo district; others wait their turn (a
    PostgreSQL advisory lock on a connection of its own, released if the process dies). SQLite
    serves one instance: nothing to wait for."""
    url = url or database_url()
    if is_sqlite(url):
        yield
        return
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": STARTUP_LOCK})
            await connection.commit()
            try:
                yield
            finally:
                await connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": STARTUP_LOCK})
                await connection.commit()
    finally:
        await engine.dispose()
