"""The aiohttp application factory: one app for the web chat, the case API, Open311 and the Telegram webhook."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import text

from ..runtime import Runtime
from . import api, bulletins, chat, console, media, metrics, notice, open311, security, stats
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


@web.middleware
async def database_outage(request: web.Request, handler) -> web.StreamResponse:
    """Whatever the route: an unreachable database is a 503 with Retry-After, logged once per outage."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception as exc:
        if security.OUTAGE.failed(exc):
            return web.json_response({"error": {"code": "unavailable", "message": "briefly unavailable; try again"}},
                                     status=503, headers={"Retry-After": str(security.RETRY_AFTER_OUTAGE)})
        raise


def create_app(runtime: Runtime, *, chat_limits: ChatLimits | None = None) -> web.Application:
    app = web.Application(client_max_size=CLIENT_MAX_SIZE, middlewares=[database_outage, security.host_check(runtime.settings)])
    app[RUNTIME] = runtime
    security.setup(app, https=(runtime.settings.public_url or "").startswith("https://"))
    app.router.add_get("/healthz", healthz)
    metrics.setup(app, runtime)
    media.setup(app, runtime)  # /media/ID: evidence by signed, short-lived links
    chat.setup(app, runtime, chat_limits)  # also adds the WebChannel to runtime.channels
    api.setup(app, runtime)
    stats.setup(app)
    open311.setup(app, runtime)
    notice.setup(app, runtime)
    bulletins.setup(app, runtime)
    console.setup(app, runtime)
    return app
