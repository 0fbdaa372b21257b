"""Alembic environment: async engine, URL from GRIDBOT_DATABASE_URL or the config."""

import asyncio

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

from storage.db import database_url, is_sqlite
from storage.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    return config.attributes.get("url") or database_url()


def _configure(connection=None, url=None):
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        render_as_batch=is_sqlite(_url()),
        compare_type=True,
    )


def run_migrations_offline() -> None:
    _configure(url=_url().replace("+aiosqlite", "").replace("+asyncpg", ""))
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    engine = create_async_engine(_url())
    async with engine.connect() as connection:
        await connection.run_sync(_run_sync)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
