"""The grid-centre console over HTTP: one-time sign-in links, the queue of the person's scope with
filters and sorting, a case with its actions (same lifecycle and reading rules), CSRF, sign out."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.runtime import Runtime
from bot.settings import Settings
from bot.web.app import create_app
from conversations.engine import Engine
from storage import api_tokens, cases, console_logins
from storage.models import Case, CaseView
from tests.test_dialogs_resident import start
from tests.transcript import Chat

G01 = "5401-D1-01-01-G01"  # 格桑街道
DEJI_G01 = "5401-D1-02-01-G01"  # 德吉乡


async def person(sessionmaker, web_id: str) -> int:
    async with sessionmaker() as session:
        return (await api_tokens.find_person(session, web_id)).id


async def link_for(sessionmaker, web_id: str) -> str:
    async with sessionmaker.begin() as session:
        return await console_logins.create_link(session, await person(sessionmaker, web_id))


@pytest.fixture
async def client(demo, aiohttp_client):
    runtime = Runtime(Settings(), demo.kw["bind"], demo, Engine(demo))
    return await aiohttp_client(create_app(runtime))


async def report(sessionmaker, grid: str, text: str) -> str:
    async with sessionmaker.begin() as session:
        from storage.people import person_for_identity

        someone, _ = await person_for_identity(session, "web", "console-resident", language="zh")
        case = await cases.open_case(session, reporter_id=someone.id, matter_code="GM-0301", description=text,
                                     language="zh", grid_code=grid, latitude=29.6558, longitude=91.1220,
                                     contact_phone="13912345678")
        return case.number


async def sign_in(client, sessionmaker, web_id: str) -> str:
    secret = await link_for(sessionmaker, web_id)
    response = await client.get(f"/console/login/{secret}", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/console/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/console/" in cookie
    me = await (await client.get("/console/api/me")).json()
    return me["csrf"]


async def test_link_signs_in_once_and_the_page_is_strict(client, demo):
    secret = await link_for(demo, "demo-centre-gesang")
    assert (await client.get(f"/console/login/{secret}", allow_redirects=False)).status == 303
    again = await client.get(f"/console/login/{secret}", allow_redirects=False)
    assert again.status == 403 and "已使用或已过期" in await again.text() and "དུས་ཡོལ" in await again.text()
    page = await client.get("/console/")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert "<script src=\"/static/console.js\"" in await page.text()
    me = await (await client.get("/console/api/me")).json()
    assert me["language"] == "zh" and me["roles"][0]["role"] == "centre_staff"
    assert me["words"]["ui"]["title"] == "网格化工作机构工作台" and len(me["csrf"]) == 64


async def test_signed_out_and_unknown_links(client, demo):
    response = await client.get("/console/api/cases")
    body = await response.json()
    assert response.status == 401 and body["error"]["code"] == "signed_out"
    assert "/console" in body["error"]["message"] and "\n" in body["error"]["message"]  # both languages
    assert (await client.get("/console/login/nonsense", allow_redirects=False)).status == 403


async def test_queue_filters_sorting_and_scope(client, demo):
    first = await report(demo, G01, "楼下路灯坏了")
    second = await report(demo, G01, "路口路灯不亮")
    elsewhere = await report(demo, DEJI_G01, "德吉乡的路灯")
    await sign_in(client, demo, "demo-centre-gesang")
    rows = (await (await client.get("/console/api/cases")).json())["cases"]
    numbers = [r["number"] for r in rows]
    assert first in numbers and second in numbers and elsewhere not in numbers  # another township's case
    assert numbers.index(first) < numbers.index(second)  # oldest first by default
    rows = (await (await client.get("/console/api/cases", params={"sort": "number", "order": "desc"})).json())["cases"]
    assert [r["number"] for r in rows][:2] == [second, first]
    assert (await (await client.get("/console/api/cases", params={"flag": "overdue"})).json())["cases"] == []
    assert len((await (await client.get("/console/api/cases", params={"state": "accepted"})).json())["cases"]) == 0
    bad = await client.get("/console/api/cases", params={"sort": "colour", "language": "bo"})
    assert bad.status == 422 and "ཞིབ་བཤེར" in (await bad.json())["error"]["message"]
    assert (await client.get(f"/console/api/cases/{elsewhere}")).status == 404


async def test_centre_acts_on_a_case_with_csrf(client, demo):
    number = await report(demo, G01, "楼下路灯坏了")
    csrf = await sign_in(client, demo, "demo-centre-gesang")
    detail = await (await client.get(f"/console/api/cases/{number}")).json()
    assert [a["action"] for a in detail["allowed_actions"]][:2] == ["accept", "reject"]
    assert detail["location"]["geo"] == "geo:29.6558,91.122"
    assert detail["reporter"]["phone_masked"] is True  # a centre sees the phone masked (storage.access)
    async with demo() as session:
        views = list(await session.scalars(select(CaseView).where(CaseView.channel == "console")))
    assert len(views) == 1 and views[0].role == "centre_staff"

    refused = await client.post(f"/console/api/cases/{number}/actions/accept", json={})
    assert refused.status == 403
    accepted = await client.post(f"/console/api/cases/{number}/actions/accept", json={}, headers={"X-CSRF-Token": csrf})
    assert accepted.status == 200 and (await accepted.json())["state"] == "accepted"
    again = await client.post(f"/console/api/cases/{number}/actions/accept?language=zh", json={},
                              headers={"X-CSRF-Token": csrf})
    body = await again.json()
    assert again.status == 409 and body["error"]["message"] == "事件当前状态下已不能进行此操作。"
    missing = await client.post(f"/console/api/cases/{number}/actions/transfer", json={}, headers={"X-CSRF-Token": csrf})
    assert missing.status == 422 and (await missing.json())["error"]["code"] == "missing_input"
    moved = await client.post(f"/console/api/cases/{number}/actions/transfer", json={"department": "urban_management"},
                              headers={"X-CSRF-Token": csrf})
    assert moved.status == 200 and (await moved.json())["state"] == "transferred"
    async with demo() as session:
        case = await session.scalar(select(Case).where(Case.number == number))
    assert case.state == "transferred" and case.handling_deadline is not None

    assert (await client.post("/console/api/logout", headers={"X-CSRF-Token": csrf})).status == 200
    assert (await client.get("/console/api/me")).status == 401


async def test_console_command_in_the_chat(demo, monkeypatch):
    monkeypatch.setenv("GRIDBOT_PUBLIC_URL", "https://grid.example")
    engine = Engine(demo)
    for web_id, language in (("demo-centre-gesang", "zh"), ("demo-centre-deji", "bo")):
        chat = Chat(engine, web_id, language)
        await chat.run([("/console", "Your sign-in link to the grid-centre console, for the next {minutes} minutes and one use only:")])
        link = next(word for word in chat.text.split() if word.startswith("https://grid.example/console/login/"))
        async with demo.begin() as session:
            assert await console_logins.redeem(session, link.rsplit("/", 1)[1]) is not None
    resident = await start(engine, "someone-new", "zh")
    await resident.run([("/console", "This is for grid staff. Staff join with an invitation code: /join CODE")])


async def test_photos_are_served_to_those_who_may_see_the_case(demo, aiohttp_client, tmp_path):
    from storage.cases import Photo
    from tests.test_browser import tiny_png

    settings = Settings(attachments_dir=str(tmp_path))
    runtime = Runtime(settings, demo.kw["bind"], demo, Engine(demo))
    client = await aiohttp_client(create_app(runtime))
    picture = tmp_path / "web" / "a.png"
    picture.parent.mkdir()
    picture.write_bytes(tiny_png())
    outside = tmp_path.parent / "outside.png"
    outside.write_bytes(tiny_png())
    async with demo.begin() as session:
        from storage.people import person_for_identity

        someone, _ = await person_for_identity(session, "web", "photo-resident", language="zh")
        case = await cases.open_case(session, reporter_id=someone.id, matter_code="GM-0301", description="路灯坏了",
                                     language="zh", grid_code=G01, photos=[
                                         Photo(platform="web", stored_path=str(picture), content_type="image/png"),
                                         Photo(platform="web", stored_path=str(outside), content_type="image/png")])
        number, ids = case.number, [a.id for a in case.attachments]
    await sign_in(client, demo, "demo-centre-gesang")
    detail = await (await client.get(f"/console/api/cases/{number}")).json()
    assert detail["photos"] == [f"/console/api/cases/{number}/photos/{i}" for i in ids]
    shown = await client.get(detail["photos"][0])
    assert shown.status == 200 and shown.content_type == "image/png" and await shown.read() == tiny_png()
    assert (await client.get(detail["photos"][1])).status == 404  # not under the attachments folder
    other = await client.get(f"/console/api/cases/{number}/photos/{ids[0] + 100}")
    assert other.status == 404

    client.session.cookie_jar.clear()
    await sign_in(client, demo, "demo-centre-deji")  # another township: neither the case nor its photos
    assert (await client.get(detail["photos"][0])).status == 404
