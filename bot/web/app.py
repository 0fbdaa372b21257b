"""The aiohttp application factory: one app for the web chat, the case API, Open311 and the Telegram webhook."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import text

from ..runtime import Runtime
from . import api, open311

RUNTIME = web.AppKey("runtime", Runtime)


async def healthz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    try:
        async with runtime.sessionmaker() as session:
            await session.execute(text("SELECT 1"))
    except Exception:
        return web.json_response({"status": "database unreachable"}, status=503)
    return web.json_response({"status": "ok"})


def create_app(runtime: Runtime) -> web.Application:
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app[RUNTIME] = runtime
    app.router.add_get("/healthz", healthz)
    api.setup(app, runtime)
    open311.setup(app, runtime)
    return app
