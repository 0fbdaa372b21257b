"""(being written) — routes are added by setup()."""

from __future__ import annotations

from aiohttp import web


def setup(app: web.Application, runtime) -> None:
    """Add this module's routes to the app."""
