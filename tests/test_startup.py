"""Two instances started at once on an empty PostgreSQL database: all come up, the schema is
migrated once and the demo district loaded once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from storage.db import make_engine
from storage.models import Node

PG_URL = os.environ.get("GRIDBOT_TEST_DATABASE_URL")
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL (GRIDBOT_TEST_DATABASE_URL)")
async def test_two_instances_starting_at_once_on_an_empty_database():
    base = make_url(PG_URL)
    name = f"{base.database}_startup"
    admin = make_engine(base.set(database="postgres").render_as_string(hide_password=False),
                        isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        env = {**os.environ, "GRIDBOT_DATABASE_URL": url}
        code = "from bot.cli import prepare_database; prepare_database()"
        starts = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True) for _ in range(2)]
        results = [await asyncio.to_thread(p.communicate, timeout=180) for p in starts]
        assert [p.returncode for p in starts] == [0, 0], [err[-2000:] for _, err in results]
        assert sum("loaded the fictional demo district" in out for out, _ in results) == 1
        engine = make_engine(url)
        async with engine.connect() as connection:
            nodes = await connection.scalar(select(func.count()).select_from(Node))
            codes = await connection.scalar(select(func.count(func.distinct(Node.code))))
        await engine.dispose()
        assert nodes == codes > 0  # loaded once
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
