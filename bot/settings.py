"""Every setting comes from a GRIDBOT_* (or TELEGRAM_*) environment variable; see README."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from storage.db import database_url


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _list(name: str) -> list[str]:
    return [v.strip() for v in (_env(name) or "").split(",") if v.strip()]


@dataclass
class Settings:
    database_url: str = field(default_factory=database_url)
    host: str = field(default_factory=lambda: _env("GRIDBOT_HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: int(_env("GRIDBOT_PORT", "8080")))
    idle_minutes: int = field(default_factory=lambda: int(_env("GRIDBOT_IDLE_MINUTES", "30")))
    load_demo: bool = field(default_factory=lambda: _env("GRIDBOT_DEMO", "auto") != "no")
    attachments_dir: str = field(default_factory=lambda: _env("GRIDBOT_ATTACHMENTS_DIR", "attachments"))
    public_url: str | None = field(default_factory=lambda: _env("GRIDBOT_PUBLIC_URL"))
    telegram_token: str | None = field(default_factory=lambda: _env("TELEGRAM_BOT_TOKEN"))
    telegram_webhook_url: str | None = field(default_factory=lambda: _env("TELEGRAM_WEBHOOK_URL"))
    telegram_webhook_secret: str | None = field(default_factory=lambda: _env("TELEGRAM_WEBHOOK_SECRET"))
    telegram_api_base_url: str | None = field(default_factory=lambda: _env("TELEGRAM_API_BASE_URL"))
    telegram_poll_interval: float = field(default_factory=lambda: float(_env("TELEGRAM_POLL_INTERVAL", "0.0")))
    telegram_rate: float = field(default_factory=lambda: float(_env("TELEGRAM_MESSAGES_PER_SECOND", "30")))
    telegram_order_window: float = field(default_factory=lambda: float(_env("TELEGRAM_ORDER_WINDOW", "0.1")))
    update_retention_days: float = field(default_factory=lambda: float(_env("GRIDBOT_UPDATE_RETENTION_DAYS", "7")))
    dispatcher: bool = field(default_factory=lambda: _env("GRIDBOT_DISPATCHER", "yes") != "no")
    duplicate_metres: float = field(default_factory=lambda: float(_env("GRIDBOT_DUPLICATE_METRES", "100")))
    sweep_seconds: float = field(default_factory=lambda: float(_env("GRIDBOT_SWEEP_SECONDS", "60")))
    # Host names this server answers to (Host header); empty: GRIDBOT_PUBLIC_URL's host, or local names.
    allowed_hosts: list[str] = field(default_factory=lambda: _list("GRIDBOT_ALLOWED_HOSTS"))
    # Origins whose pages may read Open311 from the browser (CORS); none by default.
    cors_origins: list[str] = field(default_factory=lambda: _list("GRIDBOT_CORS_ORIGINS"))
    # Days after closing that a case keeps the reporter's phone, photos, exact location and free text.
    retention_days: int = field(default_factory=lambda: int(_env("GRIDBOT_RETENTION_DAYS", "365")))
