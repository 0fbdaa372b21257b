"""The aiohttp application factory: one app for the web chat, the case API, Open311 and the Telegram webhook."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import text

from ..runtime import Runtime
from . import api, chat, media, metrics, notice, open311, security
from .security import ChatLimits

RUNTIME = web.AppKey("runtime", Runtime)
# aiohttp's own cap for bodies read whole (JSON, forms) on every route. The web chat reads
# its bodies with smaller limits of its own and streams photos (ChatLimits.photo_bytes).
CLIENT_MAX_SIZE = 8 * 1024 * 1024


async def healthz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    try:
        async with runtime.sessionmaker() as session:
            await session.execute(text("SELECT 1"))
    except Exception:
        return web.json_response({"status": "database unreachable"}, status=503)
    return web.json_response({"status": "ok"})


def create_app(runtime: Runtime, *, chat_limits: ChatLimits | None = None) -> web.Application:
    app = web.Application(client_max_size=CLIENT_MAX_SIZE, middlewares=[security.host_check(runtime.settings)])
    app[RUNTIME] = runtime
    security.setup(app, https=(runtime.settings.public_url or "").startswith("https://"))
    app.router.add_get("/healthz", healthz)
    metrics.setup(app, runtime)
    media.setup(app, runtime)  # /media/ID: evidence by signed, short-lived links
    chat.setup(app, runtime, chat_limits)  # also adds the WebChannel to runtime.channels
    api.setup(app, runtime)
    open311.setup(app, runtime)
    notice.setup(app, runtime)
    return app
