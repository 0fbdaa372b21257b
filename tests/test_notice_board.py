"""The grid's public notice board (Art. 20): both languages side by side, and a QR code to the web chat."""

from __future__ import annotations

from bot.web.app import create_app
from conversations.i18n import translate
from tests.test_web_chat import make_runtime

GRID = "5401-D1-01-01-G01"


async def test_notice_board_is_bilingual_with_workers_supervision_phone_and_qr(demo, tmp_path, aiohttp_client):
    client = await aiohttp_client(create_app(make_runtime(demo, tmp_path)))
    response = await client.get(f"/notice/{GRID}")
    assert response.status == 200
    page = await response.text()
    for language in ("zh", "bo"):
        assert translate(language, "Grid notice board") in page
        assert translate(language, "Supervision and complaints phone") in page
    assert "Grid notice board" not in page  # no English fallback on a public notice
    assert "0891-6000001" in page and "13800000001" in page  # supervision phone, the grid worker's number
    assert "སྡེ་ཁུལ" in page and "社区" in page  # the place in both languages
    assert f"/?grid={GRID}" in page
    assert "<script" not in page and response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    qr = await client.get(f"/notice/{GRID}/qr.svg")
    assert qr.status == 200 and qr.content_type == "image/svg+xml" and b"<svg" in await qr.read()


async def test_unknown_grid_is_not_found(demo, tmp_path, aiohttp_client):
    client = await aiohttp_client(create_app(make_runtime(demo, tmp_path)))
    assert (await client.get("/notice/NOPE")).status == 404
    assert (await client.get("/notice/5401-D1-01/qr.svg")).status == 404  # a township is not a grid
