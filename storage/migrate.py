"""Run Alembic migrations from code (`gridbot db upgrade`, and the bot's first start)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from .db import database_url

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
