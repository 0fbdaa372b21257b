"""/api/stats, .csv and .xlsx: the hand-computed November figures through HTTP, scoped by the token's roles."""

from __future__ import annotations

import csv
import io

import pytest
from jsonschema import Draft202012Validator
from openpyxl import load_workbook

from bot.runtime import Runtime
from bot.settings import Settings
from bot.web import api
from bot.web.app import create_app
from conversations.engine import Engine
from storage import api_tokens

from tests.test_indicators import TOWNSHIP_COUNTS, TOWNSHIP_RATES, TOWNSHIP_SCORE, TOWNSHIP_TIMES, build_november

NOVEMBER = {"from": "2026-11-01", "to": "2026-11-30"}


@pytest.fixture
async def client(sessionmaker, world, aiohttp_client):
    await build_november(sessionmaker, world)
    runtime = Runtime(Settings(), sessionmaker.kw["bind"], sessionmaker, Engine(sessionmaker))
    return await aiohttp_client(create_app(runtime))


async def token(sessionmaker, person_id: int) -> dict[str, str]:
    async with sessionmaker.begin() as session:
        _, secret = await api_tokens.create_token(session, person_id, "stats")
    return {"Authorization": f"Bearer {secret}"}


def schema(name: str):
    document = api.openapi_document()
    return Draft202012Validator({**document["components"]["schemas"][name], "components": document["components"]})


async def test_json_carries_the_hand_computed_figures(client, sessionmaker, world):
    headers = await token(sessionmaker, world.centre_district)
    response = await client.get("/api/stats", params={"node": "C-D-T1", **NOVEMBER}, headers=headers)
    body = await response.json()
    assert response.status == 200, body
    schema("Stats").validate(body)
    assert {k: v for k, v in body["counts"].items() if v} == TOWNSHIP_COUNTS
    assert body["rates"] == {k: round(v, 4) for k, v in TOWNSHIP_RATES.items()}
    assert body["times"] == TOWNSHIP_TIMES
    assert body["composite_score"] == TOWNSHIP_SCORE
    assert body["period"] == {"from": "2026-11-01", "to": "2026-11-30"}
    assert body["as_of"] == "2026-12-01T00:00:00+08:00"
    assert [c["node"]["code"] for c in body["children"]] == ["C-D-T1-C1"]

    # The district by default (the caller's widest node): both townships, T2 without a score.
    body = await (await client.get("/api/stats", params=NOVEMBER, headers=headers)).json()
    assert body["scope"]["node"]["code"] == "C-D"
    assert [(c["node"]["code"], c["rank"]) for c in body["children"]] == [("C-D-T1", 1), ("C-D-T2", None)]
    assert "closed_rate" not in body["children"][1]["rates"] and "composite_score" not in body["children"][1]


async def test_csv_and_xlsx_carry_the_same_figures(client, sessionmaker, world):
    headers = await token(sessionmaker, world.centre_district)
    data = await (await client.get("/api/stats", params=NOVEMBER, headers=headers)).json()
    response = await client.get("/api/stats.csv", params=NOVEMBER, headers=headers)
    assert response.status == 200 and response.content_type == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    raw = await response.read()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [r["code"] for r in rows] == ["C-D-T1", "C-D-T2", "C-D"]
    t1 = rows[0]
    assert t1["name_zh"] == "一号街道" and t1["rank"] == "1" and float(t1["composite_score"]) == TOWNSHIP_SCORE
    assert int(t1["due"]) == 6 and int(t1["closed_on_time"]) == 3 and float(t1["on_time_closed_rate"]) == 0.5
    assert rows[1]["closed_rate"] == "" and rows[1]["composite_score"] == ""  # absent, not 0
    assert int(rows[2]["reported"]) == data["counts"]["reported"] == 10

    response = await client.get("/api/stats.xlsx", params=NOVEMBER, headers=headers)
    assert response.status == 200
    sheet = load_workbook(io.BytesIO(await response.read())).active
    table = [[cell.value for cell in row] for row in sheet.iter_rows()]
    header = table[0]
    by_code = {row[0]: dict(zip(header, row)) for row in table[1:]}
    for code, row in by_code.items():
        for name in ("reported", "due", "closed_on_time", "overdue_open", "composite_score", "closed_rate",
                     "time_to_handle_median_hours"):
            expected = next(r for r in rows if r["code"] == code)[name]
            assert (row[name] is None and expected == "") or float(row[name]) == float(expected), (code, name)
    assert sheet.cell(row=2, column=header.index("closed_rate") + 1).number_format == "0.0%"


async def test_scope_and_errors(client, sessionmaker, world):
    t2 = await token(sessionmaker, world.centre_t2)
    response = await client.get("/api/stats", params={"node": "C-D-T1"}, headers=t2)
    assert response.status == 403 and (await response.json())["error"]["code"] == "forbidden"
    resident = await token(sessionmaker, world.resident)
    assert (await client.get("/api/stats", headers=resident)).status == 403
    assert (await client.get("/api/stats")).status == 401

    urban = await token(sessionmaker, world.handler_urban)
    body = await (await client.get("/api/stats", params={"node": "C-D-T1", "department": "urban", **NOVEMBER},
                                   headers=urban)).json()
    assert body["counts"]["transfers"] == 5 and body["counts"]["returns"] == 1
    default = await (await client.get("/api/stats", params=NOVEMBER, headers=urban)).json()
    assert default["scope"]["department"]["code"] == "urban" and default["scope"]["node"]["code"] == "C"
    refused = await client.get("/api/stats", params={"department": "civil"}, headers=urban)
    assert refused.status == 403

    district = await token(sessionmaker, world.centre_district)
    for params, field in [({"from": "2026-13-01"}, "from"), ({"node": "nowhere"}, "node"),
                          ({"from": "2026-11-30", "to": "2026-11-01"}, "to"), ({"matter": "NOPE"}, "matter"),
                          ({"colour": "red"}, "colour")]:
        response = await client.get("/api/stats", params=params, headers=district)
        body = await response.json()
        assert response.status == 422, body
        assert body["error"]["code"] == "invalid_input" and body["error"]["details"]["field"] == field


async def test_weights_come_from_the_setting(client, sessionmaker, world, monkeypatch):
    monkeypatch.setenv("GRIDBOT_SCORE_WEIGHTS", "on_time_closed_rate=3,satisfaction_rate=1")
    headers = await token(sessionmaker, world.centre_district)
    body = await (await client.get("/api/stats", params={"node": "C-D-T1", **NOVEMBER}, headers=headers)).json()
    assert body["weights"] == {"on_time_closed_rate": 3.0, "satisfaction_rate": 1.0}
    assert body["composite_score"] == 50.0  # (3·½ + 1·½) ÷ 4
