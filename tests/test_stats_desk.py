"""📊 on the staff desk: this month's key figures of the person's unit and a chart, in both languages."""

from __future__ import annotations

import re

import pytest

from conversations.engine import Engine
from storage.indicators import Period
from storage.timeutil import utcnow
from tests.test_dialogs_resident import report_transcript, start
from tests.transcript import Chat, Press

CENTRE = "demo-centre-gesang"  # 格桑街道 (zh)
OTHER_CENTRE = "demo-centre-deji"  # 德吉乡 (bo)
WORKER = "demo-worker-g01"


@pytest.mark.parametrize("language,web_id", [("zh", CENTRE), ("bo", OTHER_CENTRE)])
async def test_centre_staff_see_their_units_figures(demo, language, web_id):
    engine = Engine(demo)
    resident = await start(engine, "resident-zh", "zh")
    await resident.run(report_transcript("zh"))  # one case this month, in 格桑街道's grid G01
    chat = Chat(engine, web_id, language)
    month = Period.of(utcnow()).label
    await chat.run([
        ("/desk", lambda c: "staff:stats" in c.buttons()),
        (Press("staff:stats"), [
            "📊 {unit}, {month}, so far:",
            "On-time closure rate",
            lambda c: c.replies[-1].photo_file_ids[0].startswith("/bulletin/5401-D1-0")
            and c.replies[-1].photo_file_ids[0].endswith(f"/{month}/chart/rates.png"),
        ]),
    ])
    if language == "zh":
        assert "格桑" in chat.text and "上报数：1" in chat.text and "按期结案率：—" in chat.text
    else:
        assert "上报数" not in chat.text and "སྙན་ཞུ་ཕུལ་བའི་དོན་རྐྱེན་གྲངས། ༠" in chat.text  # 德吉乡 had no report
        assert not re.search(r"[0-9]", chat.text)


async def test_the_button_is_for_chiefs_instructors_and_centres(demo):
    engine = Engine(demo)
    worker = Chat(engine, WORKER, "zh")
    await worker.run([
        ("/desk", lambda c: "staff:stats" not in c.buttons()),
        ("/stats", "The indicators are for grid chiefs, grid instructors and grid centre staff."),
    ])


async def test_the_chart_it_points_to_is_served(demo, aiohttp_client):
    from bot.runtime import Runtime
    from bot.settings import Settings
    from bot.web.app import create_app

    runtime = Runtime(Settings(), demo.kw["bind"], demo, Engine(demo))
    client = await aiohttp_client(create_app(runtime))
    month = Period.of(utcnow()).label
    response = await client.get(f"/bulletin/5401-D1-01/{month}/chart/rates.png")
    assert response.status == 200 and response.content_type == "image/png"
