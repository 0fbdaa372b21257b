"""The bulletin's page, PDF and charts: /bulletin/CODE/2026-11, /bulletin/CODE/2026-11.pdf,
/bulletin/CODE/2026-11/chart/{rates,ranking,matters}.png. Aggregates only (no personal data)."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict

from aiohttp import web

from conversations.i18n import LANGUAGES, N_, translate
from storage import grids
from storage.indicators import InvalidPeriod, Period
from storage.models import NodeLevel
from storage.timeutil import utcnow

from .. import bulletin as bulletins
from ..runtime import Runtime

MONTH = r"{month:\d{4}-\d{2}}"
NOT_FOUND = N_("No bulletin here: check the unit's code and the month (YYYY-MM, a month that has begun).")
CACHE_SECONDS = 120  # a bulletin's page, PDF and charts are asked for together


def not_found() -> web.HTTPNotFound:
    """A bilingual 404 page (the reader's language is not known here)."""
    text = "".join(f'<p lang="{"zh-Hans" if lang == "zh" else "bo"}">{translate(lang, NOT_FOUND)}</p>' for lang in LANGUAGES)
    return web.HTTPNotFound(text=f'<!doctype html><html lang="zh-Hans"><head><meta charset="utf-8"><title>404</title>'
                                 f'<link rel="stylesheet" href="/static/bulletin.css"></head><body><main class="bulletin">'
                                 f"{text}</main></body></html>", content_type="text/html")


class BulletinPages:
    def __init__(self, runtime: Runtime, cache_size: int = 32):
        self.runtime = runtime
        self.cache: OrderedDict[tuple[str, str], tuple[float, bulletins.Bulletin]] = OrderedDict()
        self.cache_size = cache_size

    async def bulletin(self, request: web.Request) -> bulletins.Bulletin:
        code, month = request.match_info["code"], request.match_info["month"]
        key = (code, month)
        cached = self.cache.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        try:
            period = Period.parse_month(month)
        except InvalidPeriod:
            raise not_found() from None
        if period.start > utcnow():
            raise not_found()
        async with self.runtime.sessionmaker() as session:
            node = await grids.node_by_code(session, code)
            if node is None or node.level == NodeLevel.household_unit:
                raise not_found()
            built = await bulletins.build(session, node, period)
        self.cache[key] = (time.monotonic() + CACHE_SECONDS, built)
        while len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        return built

    async def page(self, request: web.Request) -> web.Response:
        built = await self.bulletin(request)
        base = f"/bulletin/{built.node.code}/{built.month}"
        return web.Response(text=bulletins.render_html(built, base), content_type="text/html", charset="utf-8")

    async def pdf(self, request: web.Request) -> web.Response:
        built = await self.bulletin(request)
        body = await asyncio.to_thread(bulletins.render_pdf, built)
        return web.Response(body=body, content_type="application/pdf", headers={
            "Content-Disposition": f'inline; filename="bulletin-{built.node.code}-{built.month}.pdf"'})

    async def chart(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in bulletins.CHARTS:
            raise not_found()
        built = await self.bulletin(request)
        png = await asyncio.to_thread(bulletins.CHARTS[name], built)
        if png is None:
            raise not_found()
        return web.Response(body=png, content_type="image/png", headers={"Cache-Control": "private, max-age=120"})


def setup(app: web.Application, runtime: Runtime) -> None:
    pages = BulletinPages(runtime)
    app.router.add_get(f"/bulletin/{{code}}/{MONTH}", pages.page)
    app.router.add_get(f"/bulletin/{{code}}/{MONTH}.pdf", pages.pdf)
    app.router.add_get(f"/bulletin/{{code}}/{MONTH}/chart/{{name}}.png", pages.chart)
