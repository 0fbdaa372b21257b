"""Engine and the one `async_sessionmaker` every part of the product uses."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///gridbot.sqlite3"


def database_url() -> str:
    """`GRIDBOT_DATABASE_URL`, or a SQLite file in the working directory."""
    return os.environ.get("GRIDBOT_DATABASE_URL", DEFAULT_DATABASE_URL)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str | None = None, **kwargs) -> AsyncEngine:
    url = url or database_url()
    if is_sqlite(url):
        kwargs.setdefault("connect_args", {"timeout": 30})
    else:
        kwargs.setdefault("pool_pre_ping", True)
    # Errors must not quote what people typed (descriptions, phones) into logs or the outbox.
    kwargs.setdefault("hide_parameters", True)
    engine = create_async_engine(url, **kwargs)
    if is_sqlite(url):
        _tune_sqlite(engine)
    return engine


def _tune_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection, _record):  # pragma: no cover - driver hook
        # Let SQLAlchemy issue BEGIN itself so that BEGIN IMMEDIATE can serialise writers.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn):  # pragma: no cover - driver hook
        # Writers take the write lock up front (see `writing`); readers do not block them.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("writing") else "BEGIN")


async def writing(session: AsyncSession) -> AsyncSession:
    """Mark the session's transaction as a writer before its first statement.

    On SQLite this begins with BEGIN IMMEDIATE, so two writers queue instead of
    failing when one upgrades its read lock; on PostgreSQL it changes nothing.
    """
    await session.connection(execution_options={"writing": True})
    return session


_gates: dict[tuple[str, int], asyncio.Lock] = {}


def write_gate(engine: AsyncEngine | None):
    """Where this process's writers queue on SQLite (one writer at a time, and its busy handler
    sleeps up to 100 ms between tries); nothing on PostgreSQL. One per database and event loop."""
    if engine is None or engine.dialect.name != "sqlite":
        return contextlib.nullcontext()
    key = (str(engine.url), id(asyncio.get_running_loop()))
    if key not in _gates:
        if len(_gates) > 64:
            _gates.clear()  # old event loops (tests)
        _gates[key] = asyncio.Lock()
    return _gates[key]


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _without_surrogates(session, _context, _instances) -> None:
    """Last line of defence: a lone surrogate (from JSON's "\\ud800") cannot be encoded for any
    database and would fail the whole transaction; adapters clean text first, this catches the rest."""
    for instance in list(session.new) + list(session.dirty):
        for key, value in vars(instance).items():
            if isinstance(value, str) and not key.startswith("_") and _SURROGATE.search(value):
                setattr(instance, key, _SURROGATE.sub("", value))


class CleanTextSession(Session):
    """The ORM session of the product: text attributes lose lone surrogates before a flush."""


event.listen(CleanTextSession, "before_flush", _without_surrogates)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=CleanTextSession)


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for other databases and memory."""
    if not is_sqlite(url):
        return None
    path = url.split("///", 1)[-1]
    return None if path in ("", ":memory:") else Path(path)


async def run_in_transaction(work, *args, url: str | None = None):
    """For command-line tools: `await work(session, *args)` in one write transaction on a fresh engine."""
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine).begin() as session:
            await writing(session)
            return await work(session, *args)
    finally:
        await engine.dispose()
