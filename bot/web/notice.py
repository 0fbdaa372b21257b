"""The grid's public notice (公示牌, Art. 20): name, area, workers and their numbers, and the
supervision phone, in the national common language and in Tibetan side by side, with a QR code
that opens the web chat with this grid chosen (`/?grid=CODE`). Printable."""

from __future__ import annotations

import html
import io

import qrcode
import qrcode.image.svg
from aiohttp import web

from conversations.i18n import LANGUAGES, N_, translate
from conversations.wording import ROLE_NAMES
from storage import grids
from storage.models import Node, NodeLevel

from ..runtime import Runtime
from .security import public_base

WORDS = {
    "heading": N_("Grid notice board"),
    "area": N_("Area"),
    "people": N_("Grid chief, instructor and grid workers"),
    "supervision": N_("Supervision and complaints phone"),  # 监督举报电话 (Art. 20)
    "scan": N_("Scan to report a problem or follow your case"),
    "nobody": N_("No grid worker is listed for this grid yet."),
    "scan_wechat": N_("Scan with WeChat to follow our Official Account for this grid"),
}
# Set by the WeChat front door when WeChat is configured: grid code → content of the account's QR code.
WECHAT_QR = web.AppKey("wechat_qr", object)


def _both(msgid: str) -> str:
    """The same words in Chinese and Tibetan, each in its own language-tagged span."""
    return "".join(f'<span lang="{"zh-Hans" if lang == "zh" else "bo"}">{html.escape(translate(lang, msgid))}</span>'
                   for lang in LANGUAGES)


def tel_link(phone: str | None) -> str:
    """A phone number people can tap to call."""
    if not phone:
        return ""
    dial = "".join(c for c in phone if c.isdigit() or c == "+")
    return f'<a href="tel:{html.escape(dial or phone)}">{html.escape(phone)}</a>'


def chat_link(runtime: Runtime, request: web.Request, code: str) -> str:
    """GRIDBOT_PUBLIC_URL, or the request's host once security.host_check has allowed it."""
    return f"{public_base(runtime.settings, request)}/?grid={code}"


async def _grid(runtime: Runtime, code: str) -> Node:
    async with runtime.sessionmaker() as session:
        node = await grids.node_by_code(session, code)
    if node is None or node.level != NodeLevel.grid:
        raise web.HTTPNotFound(text="no such grid")
    return node


def setup(app: web.Application, runtime: Runtime) -> None:
    async def notice(request: web.Request) -> web.Response:
        code = request.match_info["code"]
        node = await _grid(runtime, code)
        async with runtime.sessionmaker() as session:
            places = {lang: await grids.place_name(session, node, lang) for lang in LANGUAGES}
            people = await grids.published_staff(session, node.id)
        link = chat_link(runtime, request, code)
        wechat = ""
        if WECHAT_QR in request.app and await request.app[WECHAT_QR](code):
            wechat = (f'\n<section class="qr"><img src="/notice/{html.escape(code)}/wechat.svg" alt="WeChat QR" '
                      f'width="150" height="150"><p>{_both(WORDS["scan_wechat"])}</p></section>')
        rows = "".join(
            f'<tr><td class="role">{_both(ROLE_NAMES[role.value])}</td><td>{html.escape(name or "")}</td>'
            f'<td class="phone">{tel_link(phone)}</td></tr>'
            for role, name, phone in people
        ) or f'<tr><td colspan="3">{_both(WORDS["nobody"])}</td></tr>'
        body = f"""<!doctype html>
<html lang="zh-Hans"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(node.name_zh)} · {html.escape(node.name_bo)}</title>
<link rel="stylesheet" href="/static/notice.css"></head>
<body><main class="notice">
<header><h1 class="both">{_both(WORDS["heading"])}</h1>
<h2 class="both"><span lang="zh-Hans">{html.escape(places["zh"])}</span><span lang="bo">{html.escape(places["bo"])}</span></h2>
<p class="code">{html.escape(node.code)}</p></header>
<section><h3 class="both">{_both(WORDS["area"])}</h3>
<div class="both"><p lang="zh-Hans">{html.escape(node.area_zh or "")}</p><p lang="bo">{html.escape(node.area_bo or "")}</p></div></section>
<section><h3 class="both">{_both(WORDS["people"])}</h3><table>{rows}</table></section>
<footer><section class="supervision"><h3>{_both(WORDS["supervision"])}</h3>
<p class="phone big">{tel_link(node.supervision_phone)}</p></section>
<div class="qrs"><section class="qr"><img src="/notice/{html.escape(code)}/qr.svg" alt="QR" width="150" height="150">
<p>{_both(WORDS["scan"])}</p><p class="link">{html.escape(link)}</p></section>{wechat}</div></footer>
</main></body></html>"""
        return web.Response(text=body, content_type="text/html", charset="utf-8")

    async def qr(request: web.Request) -> web.Response:
        code = request.match_info["code"]
        await _grid(runtime, code)
        return _svg(chat_link(runtime, request, code))

    async def wechat_qr(request: web.Request) -> web.Response:
        """The WeChat account's parametric QR code for the grid (scene = grid code), drawn here."""
        code = request.match_info["code"]
        await _grid(runtime, code)
        content = await request.app[WECHAT_QR](code) if WECHAT_QR in request.app else None
        if not content:
            raise web.HTTPNotFound(text="no WeChat QR code")
        return _svg(content)

    def _svg(content: str) -> web.Response:
        image = qrcode.make(content, image_factory=qrcode.image.svg.SvgPathImage,
                            error_correction=qrcode.constants.ERROR_CORRECT_M)
        buffer = io.BytesIO()
        image.save(buffer)
        return web.Response(body=buffer.getvalue(), content_type="image/svg+xml",
                            headers={"Cache-Control": "public, max-age=3600"})

    app.router.add_get("/notice/{code}", notice)
    app.router.add_get("/notice/{code}/qr.svg", qr)
    app.router.add_get("/notice/{code}/wechat.svg", wechat_qr)
