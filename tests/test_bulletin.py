"""The monthly bulletin: page, PDF and charts over HTTP and from `gridbot bulletin`, both scripts."""

from __future__ import annotations

import io
import re
import shutil
import subprocess

import pytest
from PIL import Image
from sqlalchemy import select

from bot import bulletin
from bot.runtime import Runtime
from bot.settings import Settings
from bot.web.app import create_app
from conversations.engine import Engine
from storage.indicators import Period
from storage.models import Node
from tests.test_indicators import build_november

NOVEMBER = Period.month(2026, 11)


@pytest.fixture
async def client(sessionmaker, world, aiohttp_client):
    await build_november(sessionmaker, world)
    runtime = Runtime(Settings(), sessionmaker.kw["bind"], sessionmaker, Engine(sessionmaker))
    return await aiohttp_client(create_app(runtime))


async def test_page_is_bilingual_with_figures_ranking_and_charts(client):
    response = await client.get("/bulletin/C-D/2026-11")
    assert response.status == 200
    page = await response.text()
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    for words in ("月度通报", "ཟླ་རེའི་གསལ་བསྒྲགས།", "按期结案率", "དུས་ཐོག་མཇུག་སྒྲིལ་ཚད།", "测试区", "ཚོད་ལྟའི་ཆུས།",
                  "2026年11月", "ལོ་༢༠༢༦ ཟླ་༡༡"):
        assert words in page, words
    # The district's township T1: on time 3 of 6 due = 50.0 %, score 61.3, ranked first; T2 has no score.
    assert re.search(r"一号街道.*?61\.3.*?50\.0%", page, re.S)
    assert "有综合指标值的单位不足四个" in page  # two units: no bottom three named
    assert "路灯不亮" in page  # the most reported matter (LIGHT, 9 of 10)
    # Hot spots: G1 had 9 LIGHT reports in November, 8 of them repeats.
    assert re.search(r"一号网格.*?<td>8</td>", page, re.S)
    for name in ("rates", "ranking", "matters"):
        assert f'src="/bulletin/C-D/2026-11/chart/{name}.png"' in page
        chart = await client.get(f"/bulletin/C-D/2026-11/chart/{name}.png")
        assert chart.status == 200 and chart.content_type == "image/png"
        image = Image.open(io.BytesIO(await chart.read()))
        assert image.width >= 800
    # The Tibetan column words its numbers with Tibetan digits.
    assert not re.search(r'lang="bo">[^<]*[0-9]', page)


async def test_pdf_and_errors(client):
    response = await client.get("/bulletin/C-D-T1/2026-11.pdf")
    assert response.status == 200 and response.content_type == "application/pdf"
    body = await response.read()
    assert body.startswith(b"%PDF") and body.count(b"/Type /Page") - body.count(b"/Type /Pages") >= 2
    missing = await client.get("/bulletin/NOWHERE/2026-11")
    assert missing.status == 404 and "此处没有通报" in await missing.text() and "གསལ་བསྒྲགས་མེད" in await missing.text()
    assert (await client.get("/bulletin/C-D/2099-01")).status == 404
    assert (await client.get("/bulletin/C-D/2026-11/chart/pie.png")).status == 404
    # A grid has no child units: no ranking and no ranking chart.
    page = await (await client.get("/bulletin/G3/2026-11")).text()
    assert "chart/ranking.png" not in page and "各单位综合指标值排名" not in page


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="needs poppler-utils (pdftotext)")
async def test_written_bulletin_carries_both_scripts(sessionmaker, world, tmp_path):
    await build_november(sessionmaker, world)
    async with sessionmaker() as session:
        node = await session.scalar(select(Node).where(Node.code == "C-D"))
        built = await bulletin.build(session, node, NOVEMBER)
    page, pdf = bulletin.write(built, tmp_path)
    assert page.exists() and (tmp_path / "bulletin.css").exists()
    assert (tmp_path / "bulletin-C-D-2026-11-charts" / "rates.png").exists()
    assert 'src="bulletin-C-D-2026-11-charts/rates.png"' in page.read_text(encoding="utf-8")
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    for words in ("月度通报", "按期结案率", "一号街道", "61.3"):
        assert words in text, words
    assert re.search(r"[\u0f40-\u0fbc]", text), "no Tibetan letters in the PDF's text"


def test_gridbot_bulletin_command_writes_page_and_pdf(tmp_path, monkeypatch, capsys):
    from bot.cli import main

    monkeypatch.setenv("GRIDBOT_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'demo.sqlite3'}")
    out = tmp_path / "out"
    assert main(["bulletin", "--month", "2026-11", "--node", "5401-D1-01", "--out", str(out)]) == 0
    assert (out / "bulletin-5401-D1-01-2026-11.html").exists() and (out / "bulletin-5401-D1-01-2026-11.pdf").exists()
    assert "bulletin written" in capsys.readouterr().out
    assert main(["bulletin", "--month", "2026-13", "--node", "5401-D1-01", "--out", str(out)]) == 2
    assert main(["bulletin", "--month", "2026-11", "--node", "NOWHERE", "--out", str(out)]) == 2
