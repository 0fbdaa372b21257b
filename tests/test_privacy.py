"""Art. 19 and PIPL from outside: token scopes and expiry, published wording, CORS, allowed hosts,
the audit trail (API, chat, CSV), retention and erasure."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import timedelta

import pytest
from sqlalchemy import JSON, String, Text, cast, select

from bot.runtime import Runtime
from bot.settings import Settings
from bot.web.app import create_app
from conversations.engine import Engine, Sender
from conversations.protocol import Inbound
from storage import api_tokens, audit, retention
from storage.cases import CaseStore
from storage.models import (
    CaseSource,
    ApiToken,
    Attachment,
    Base,
    Case,
    CaseEvent,
    CaseView,
    DialogState,
    Identity,
    Notification,
    Person,
    ProcessedUpdate,
    WebInboxMessage,
)
from storage.timeutil import utcnow

G01 = "5401-D1-01-01-G01"
PHONE = "13912345678"
ID_NUMBER = "540102199001011234"


def make_client(demo, aiohttp_client, **settings):
    runtime = Runtime(Settings(**settings), demo.kw["bind"], demo, Engine(demo))
    return aiohttp_client(create_app(runtime))


async def person_id(sessionmaker, web_id: str) -> int:
    async with sessionmaker() as session:
        return await session.scalar(select(Identity.person_id).where(Identity.external_id == web_id))


async def token(sessionmaker, web_id: str, **kwargs) -> str:
    async with sessionmaker.begin() as session:
        person = await api_tokens.find_person(session, web_id)
        _, secret = await api_tokens.create_token(session, person.id, "test", **kwargs)
    return secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def report(sessionmaker, web_id="demo-resident-zh", matter="GM-0301", **overrides) -> Case:
    values = dict(reporter_id=await person_id(sessionmaker, web_id), matter_code=matter,
                  description=f"路灯坏了，我是王芳，电话{PHONE}，身份证{ID_NUMBER}，wang@example.com",
                  language="zh", grid_code=G01, contact_phone=PHONE, address="朗赛路8号2单元")
    values.update(overrides)
    return await CaseStore(sessionmaker).open_case(**values)


# ---------------------------------------------------------------- tokens


async def test_tokens_carry_scopes_and_expire(demo, aiohttp_client):
    client = await make_client(demo, aiohttp_client)
    case = await report(demo)
    reader = await token(demo, "demo-centre-gesang", scopes=["read"])
    response = await client.get(f"/api/cases/{case.number}", headers=bearer(reader))
    assert response.status == 200
    response = await client.post(f"/api/cases/{case.number}/actions/accept", headers=bearer(reader), json={})
    assert response.status == 403 and (await response.json())["error"]["code"] == "insufficient_scope"
    actor = await token(demo, "demo-centre-gesang", scopes=["act"])
    assert (await client.get(f"/api/cases/{case.number}", headers=bearer(actor))).status == 403
    assert (await client.post(f"/api/cases/{case.number}/actions/accept", headers=bearer(actor), json={})).status == 200

    # Expired: 401, like an unknown or revoked token.
    old = await token(demo, "demo-centre-gesang", days=1, now=utcnow() - timedelta(days=2))
    response = await client.get("/api/me", headers=bearer(old))
    assert response.status == 401 and "expired" in (await response.json())["error"]["message"]
    async with demo() as session:
        made = await session.scalar(select(ApiToken).where(ApiToken.token_hash == api_tokens.hash_token(reader)))
    assert made.expires_at - made.created_at == timedelta(days=api_tokens.DEFAULT_DAYS)
    with pytest.raises(api_tokens.TokenError):
        async with demo.begin() as session:
            await api_tokens.create_token(session, made.person_id, scopes=["everything"])

    # Open311 POST needs the report scope, and the key in the body, never in the URL.
    form = dict(service_code="GM-0301", description="路灯坏了", lat="29.6558", long="91.1220")
    response = await client.post("/open311/v2/requests.json", data={**form, "api_key": reader})
    assert response.status == 403 and "report" in (await response.json())[0]["description"]
    reporter = await token(demo, "demo-resident-zh", scopes=["report"])
    response = await client.post(f"/open311/v2/requests.json?api_key={reporter}", data=form)
    assert response.status == 400 and "body" in (await response.json())[0]["description"]
    response = await client.post(f"/open311/v2/requests.json?api_key={reporter}", data={**form, "api_key": reporter})
    assert response.status == 400
    response = await client.post("/open311/v2/requests.json", data={**form, "api_key": reporter})
    assert response.status == 201


async def test_token_create_command_takes_scopes_and_days(demo, monkeypatch, capsys):
    from bot.cli import main

    monkeypatch.setenv("GRIDBOT_DATABASE_URL", demo.kw["bind"].url.render_as_string(hide_password=False))
    capsys.readouterr()
    args = ["token", "create", "--person", "demo-centre-gesang", "--name", "scoped", "--scope", "read", "--scope", "act",
            "--days", "30"]
    assert await asyncio.to_thread(main, args) == 0
    out = capsys.readouterr()
    assert "read, act" in out.err and "valid until" in out.err
    async with demo() as session:
        made = await session.scalar(select(ApiToken).where(ApiToken.name == "scoped"))
    assert made.scopes == ["read", "act"] and made.expires_at - made.created_at == timedelta(days=30)
    assert await asyncio.to_thread(main, ["token", "create", "--person", "demo-centre-gesang", "--name", "plain"]) == 0
    async with demo() as session:
        plain = await session.scalar(select(ApiToken).where(ApiToken.name == "plain"))
    assert plain.scopes == ["read"] and plain.expires_at - plain.created_at == timedelta(days=90)
    assert await asyncio.to_thread(main, ["token", "create", "--person", "demo-centre-gesang", "--days", "0"]) == 1
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["token", "list"]) == 0
    assert "read,act" in capsys.readouterr().out


# ---------------------------------------------------------------- Open311 and publishing


async def test_public_feed_shows_only_published_wording_masked(demo, aiohttp_client):
    client = await make_client(demo, aiohttp_client)
    plain = await report(demo)
    health = await report(demo, matter="GM-0703", description=f"邻居扎西家有人疑似结核病，门牌12号，电话{PHONE}")
    centre = await token(demo, "demo-centre-gesang")

    async def feed() -> str:
        return (await (await client.get("/open311/v2/requests.json")).text()) + \
            (await (await client.get("/open311/v2/requests.xml")).text())

    text = await feed()
    for secret in (PHONE, ID_NUMBER, "wang@example.com", "王芳", "扎西", "朗赛路8号", "门牌12号"):
        assert secret not in text, secret

    # The centre publishes a wording; the public reads it, phones masked even if typed by mistake.
    wording = f"朗赛路北段路灯不亮，已派人维修。联系13800001111"
    response = await client.post(f"/api/cases/{plain.number}/actions/publish", headers=bearer(centre),
                                 json={"public_text": wording})
    assert response.status == 200, await response.text()
    [row] = await (await client.get(f"/open311/v2/requests/{plain.number}.json")).json()
    assert row["description"].startswith("朗赛路北段路灯不亮，已派人维修。") and "13800001111" not in row["description"]
    assert "*********11" in row["description"]
    # Never for a matter about particular people: not offered, and refused.
    actions = await (await client.get(f"/api/cases/{health.number}/actions", headers=bearer(centre))).json()
    assert "publish" not in [a["action"] for a in actions["actions"]]
    response = await client.post(f"/api/cases/{health.number}/actions/publish", headers=bearer(centre),
                                 json={"public_text": "公共卫生"})
    assert response.status == 409 and (await response.json())["error"]["code"] == "not_publishable"
    [row] = await (await client.get(f"/open311/v2/requests/{health.number}.json")).json()
    assert row["description"] is None and row["lat"] is None
    # Only the grid centre publishes.
    worker = await token(demo, "demo-worker-g01")
    response = await client.post(f"/api/cases/{plain.number}/actions/publish", headers=bearer(worker),
                                 json={"public_text": "x"})
    assert response.status == 403
    # The resident reads the published step, never the staff's internal notes.
    await client.post(f"/api/cases/{plain.number}/actions/comment", headers=bearer(centre),
                      json={"note": "上报人脾气很大，小心"})
    resident = await token(demo, "demo-resident-zh")
    own = await (await client.get(f"/api/cases/{plain.number}", headers=bearer(resident))).json()
    assert "脾气" not in json.dumps(own, ensure_ascii=False)
    assert [e["action"] for e in own["timeline"]] == ["report", "publish"]


async def test_cors_only_for_named_origins(demo, aiohttp_client):
    client = await make_client(demo, aiohttp_client, cors_origins=["https://map.example.org"])
    response = await client.get("/open311/v2/services.json", headers={"Origin": "https://map.example.org"})
    assert response.headers["Access-Control-Allow-Origin"] == "https://map.example.org"
    response = await client.get("/open311/v2/services.json", headers={"Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in response.headers and response.headers["Vary"] == "Origin"
    response = await client.get("/open311/v2/requests/LS-20000101-0001.json", headers={"Origin": "https://map.example.org"})
    assert response.status == 404 and response.headers["Access-Control-Allow-Origin"] == "https://map.example.org"


# ---------------------------------------------------------------- hosts


async def test_notice_board_follows_allowed_hosts_only(demo, aiohttp_client):
    client = await make_client(demo, aiohttp_client, allowed_hosts=["grid.lhasa.example"])
    response = await client.get(f"/notice/{G01}", headers={"Host": "evil.example.com"})
    assert response.status == 400 and (await response.json())["error"]["code"] == "host_not_allowed"
    response = await client.get(f"/notice/{G01}", headers={"Host": "grid.lhasa.example"})
    assert response.status == 200 and f"http://grid.lhasa.example/?grid={G01}" in await response.text()
    assert (await client.get("/healthz", headers={"Host": "evil.example.com"})).status == 200  # local probes

    public = await make_client(demo, aiohttp_client, public_url="https://grid.example.cn")
    assert (await public.get(f"/notice/{G01}", headers={"Host": "evil.example.com"})).status == 400
    page = await (await public.get(f"/notice/{G01}", headers={"Host": "grid.example.cn"})).text()
    assert f"https://grid.example.cn/?grid={G01}" in page

    default = await make_client(demo, aiohttp_client)  # local names only
    assert (await default.get(f"/notice/{G01}")).status == 200
    assert (await default.get(f"/notice/{G01}/qr.svg", headers={"Host": "attacker.test"})).status == 400


# ---------------------------------------------------------------- the audit trail


async def test_audit_trail_for_chiefs_and_centres(demo, aiohttp_client):
    client = await make_client(demo, aiohttp_client)
    case = await report(demo)
    chief, centre = await token(demo, "demo-chief-langsai"), await token(demo, "demo-centre-gesang")
    worker, outsider = await token(demo, "demo-worker-g01"), await token(demo, "demo-centre-deji")
    await client.get(f"/api/cases/{case.number}", headers=bearer(worker))
    await client.get("/api/cases", headers=bearer(worker))
    detail = await (await client.get(f"/api/cases/{case.number}", headers=bearer(chief))).json()
    assert detail["reporter"]["phone"] == PHONE and detail["audit_readable"] is True  # the chief sees it all
    await client.post(f"/api/cases/{case.number}/actions/accept", headers=bearer(centre), json={})

    trail = await (await client.get(f"/api/cases/{case.number}/audit", headers=bearer(chief))).json()
    entries = [(e["kind"], e["role"], e.get("channel") or e.get("action"), e["name"]) for e in trail["entries"]]
    assert ("view", "grid_worker", "api", "次仁（演示）") in entries
    assert ("view", "grid_worker", "api_list", "次仁（演示）") in entries
    assert ("view", "grid_chief", "api", "张卫东（演示）") in entries
    assert ("change", "centre_staff", "accept", "赵丽（演示）") in entries
    assert ("change", "resident", "report", "孙小红（演示）") in entries
    assert (await client.get(f"/api/cases/{case.number}/audit", headers=bearer(centre))).status == 200
    response = await client.get(f"/api/cases/{case.number}/audit", headers=bearer(worker))
    assert response.status == 403
    assert (await client.get(f"/api/cases/{case.number}/audit", headers=bearer(outsider))).status == 404

    # The chief's chat card says how often the case was read and offers the trail.
    engine = Engine(demo)
    sender = Sender(platform="web", external_id="demo-chief-langsai", chat_id="demo-chief-langsai")
    async with demo.begin() as session:
        chief_person = await session.get(Person, await person_id(demo, "demo-chief-langsai"))
        chief_person.language_chosen = True
    replies = await engine.handle(sender, Inbound.press(f"case:{case.number}"))
    text = "\n".join(r.text for r in replies)
    assert "记录：" in text and PHONE in text
    assert f"audit:{case.number}" in [d for r in replies for d in r.button_data()]
    replies = await engine.handle(sender, Inbound.press(f"audit:{case.number}"))
    assert "次仁（演示）" in replies[0].text and "查看" in replies[0].text
    # A grid worker's card has no such line.
    worker_sender = Sender(platform="web", external_id="demo-worker-g01", chat_id="demo-worker-g01")
    async with demo.begin() as session:
        (await session.get(Person, await person_id(demo, "demo-worker-g01"))).language_chosen = True
    replies = await engine.handle(worker_sender, Inbound.press(f"case:{case.number}"))
    assert "记录：" not in replies[0].text
    replies = await engine.handle(worker_sender, Inbound.press(f"audit:{case.number}"))
    assert "次仁（演示）" not in replies[0].text


async def test_audit_export_writes_csv(demo, monkeypatch, capsys, tmp_path):
    from bot.cli import main

    case = await report(demo)
    async with demo.begin() as session:
        session.add(CaseView(case_id=case.id, person_id=await person_id(demo, "demo-worker-g01"), role="grid_worker",
                             channel="web"))
    monkeypatch.setenv("GRIDBOT_DATABASE_URL", demo.kw["bind"].url.render_as_string(hide_password=False))
    target = tmp_path / "audit.csv"
    assert await asyncio.to_thread(main, ["audit", "export", "--since", "2000-01-01", "--output", str(target)]) == 0
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert [(r["kind"], r["case"], r["role"], r["what"]) for r in rows] == [
        ("change", case.number, "resident", "report"), ("view", case.number, "grid_worker", "web")]
    assert rows[1]["name"] == "次仁（演示）"
    assert await asyncio.to_thread(main, ["audit", "export", "--since", "2999-01-01", "--output", str(target)]) == 0
    assert len(target.read_text(encoding="utf-8").splitlines()) == 1
    assert await asyncio.to_thread(main, ["audit", "export", "--since", "yesterday"]) == 2


# ---------------------------------------------------------------- retention and erasure


async def close(sessionmaker, case: Case, *, now=None) -> Case:
    store = CaseStore(sessionmaker)
    centre = await person_id(sessionmaker, "demo-centre-gesang")
    worker = await person_id(sessionmaker, "demo-worker-g01")
    handler = await person_id(sessionmaker, "demo-handler-urban-management")
    for actor, trigger, inputs in [(centre, "accept", {}), (centre, "transfer", {"department": "urban_management"}),
                                   (handler, "start_handling", {}),
                                   (handler, "submit_result", {"result": f"已修好，已电话{PHONE}告知"}),
                                   (centre, "comment", {"note": f"王芳{PHONE}很着急"}),
                                   (worker, "verify_pass", {})]:
        case = await store.act(case.number, actor, trigger, now=now, **inputs)
    return await store.rate(case.number, case.reporter_id, "satisfied", "谢谢", now=now)


async def text_values(sessionmaker) -> list[str]:
    """Every text and JSON value in every table, as text."""
    found = []
    async with sessionmaker() as session:
        for table in Base.metadata.sorted_tables:
            for column in table.columns:
                if isinstance(column.type, (String, Text, JSON)):
                    expression = cast(column, Text) if isinstance(column.type, JSON) else column
                    found += [v for v in await session.scalars(select(expression)) if v]
    return found


async def test_retention_job_anonymises_closed_cases_once_and_keeps_the_record(demo, tmp_path):
    photo = tmp_path / "web" / "ab" / "photo.jpg"
    photo.parent.mkdir(parents=True)
    photo.write_bytes(b"\xff\xd8\xff")
    now = utcnow()
    long_ago = now - timedelta(days=400)
    old = await report(demo, now=long_ago, latitude=29.65583, longitude=91.12207, grid_code=None)
    async with demo.begin() as session:
        session.add(Attachment(case_id=old.id, stored_path=str(photo), platform="web", size=3))
    old = await close(demo, old, now=long_ago)
    recent = await close(demo, await report(demo))
    still_open = await report(demo, now=long_ago)
    drafter = await person_id(demo, "demo-resident-bo")
    async with demo.begin() as session:
        session.add(DialogState(person_id=drafter, data={}, draft={"phone": PHONE}, draft_saved_at=now - timedelta(days=20)))

    async with demo.begin() as session:
        removed = await retention.anonymise_expired(session, now=now, retention_days=365, attachments_dir=str(tmp_path))
    assert removed.cases == 1 and removed.photos == 1 and removed.files == 1 and not photo.exists()
    async with demo() as session:
        case = await session.get(Case, old.id)
        assert case.contact_phone is None and case.description == "" and case.address is None
        assert case.result_text is None and case.satisfaction_comment is None and case.attachments == []
        assert (case.latitude, case.longitude) == (29.656, 91.122)  # about 100 m: indicators by place stay
        assert case.state == "closed" and case.satisfaction == "satisfied" and case.matter.code == "GM-0301"
        assert case.anonymised_at is not None
        events = list(await session.scalars(select(CaseEvent).where(CaseEvent.case_id == old.id).order_by(CaseEvent.id)))
        assert [e.action for e in events] == ["report", "accept", "transfer", "start_handling", "submit_result",
                                              "comment", "verify_pass", "rate"]
        assert all(e.note is None for e in events) and events[2].data == {"department": "urban_management",
                                                                          "deadline": events[2].data["deadline"]}
        assert events[-1].data == {"rating": "satisfied"}
        for table_row in await session.scalars(select(Notification).where(Notification.case_id == old.id)):
            assert PHONE not in json.dumps(table_row.params)
        assert (await session.get(Case, recent.id)).contact_phone == PHONE
        assert (await session.get(Case, still_open.id)).contact_phone == PHONE
        assert (await session.get(DialogState, drafter)).draft is None  # a draft left for weeks is gone
    # Done once: a second run finds nothing.
    async with demo.begin() as session:
        assert (await retention.anonymise_expired(session, now=now, retention_days=365)).cases == 0
    # A year later the recent one goes too.
    async with demo.begin() as session:
        later = await retention.anonymise_expired(session, now=now + timedelta(days=366), retention_days=365)
    assert later.cases == 1 and later.numbers == [recent.number]


async def test_the_daily_run_is_claimed_by_one_instance(demo):
    now = utcnow()
    async with demo.begin() as session:
        assert await retention.claim_daily(session, "retention", now) is True
    async with demo.begin() as session:
        assert await retention.claim_daily(session, "retention", now + timedelta(hours=3)) is False
    async with demo.begin() as session:
        assert await retention.claim_daily(session, "retention", now + timedelta(days=1)) is True


async def test_person_erase_leaves_no_trace_of_their_phone(demo, monkeypatch, capsys):
    from bot.cli import main

    monkeypatch.setenv("GRIDBOT_DATABASE_URL", demo.kw["bind"].url.render_as_string(hide_password=False))
    resident = await person_id(demo, "demo-resident-zh")
    async with demo.begin() as session:
        person = await session.get(Person, resident)
        person.phone = PHONE
        session.add(DialogState(person_id=resident, dialog="report", state="ask_phone", data={"phone": PHONE}))
        session.add(WebInboxMessage(person_id=resident, payload={"text": f"我们会打{PHONE}"}))
        session.add(ProcessedUpdate(platform="web", update_id="u1", replies=[{"text": f"电话：{PHONE}"}]))
    case = await report(demo)
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["person", "erase", "--person", "demo-resident-zh"]) == 3
    assert case.number in capsys.readouterr().err
    assert any(PHONE in v for v in await text_values(demo))  # refused: nothing was erased

    await close(demo, case)
    # A member of staff kept the number in an internal note of another case too.
    other = await report(demo, "demo-resident-bo", contact_phone=None, description="路灯不亮")
    centre = await person_id(demo, "demo-centre-gesang")
    await CaseStore(demo).act(other.number, centre, "comment", note=f"参见王芳的事件，电话{PHONE}，又名139 1234 5678")
    await CaseStore(demo).act(other.number, centre, "comment", note="藏文：༡༣༩༡༢༣༤༥༦༧༨")
    assert await asyncio.to_thread(main, ["person", "erase", "--person", "demo-resident-zh"]) == 0
    out = capsys.readouterr().out
    assert "anonymised 1 case(s)" in out and case.number in out
    leftovers = [v for v in await text_values(demo)
                 if PHONE in v or PHONE[-8:] in v or "1234 5678" in v or "༡༢༣༤༥༦༧༨" in v
                 or json.dumps("༡༢༣༤༥༦༧༨")[1:-1] in v]
    assert leftovers == []
    async with demo() as session:
        person = await session.get(Person, resident)
        assert person.display_name is None and person.phone is None and person.erased_at is not None
        assert list(await session.scalars(select(Identity).where(Identity.person_id == resident))) == []
        kept = await session.get(Case, case.id)
        assert kept.state == "closed" and kept.matter.code == "GM-0301"  # the case and its record stay
        assert len(list(await session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id)))) == 8
    assert await asyncio.to_thread(main, ["person", "erase", "--person", "nobody-here"]) == 2


async def test_notifications_carry_notes_only_as_the_rule_allows(demo):
    from conversations import notices

    case = await report(demo, matter="GM-0703", description="邻居家疑似传染病")
    part_timer = await person_id(demo, "demo-parttime-g01")
    worker = await person_id(demo, "demo-worker-g01")
    async with demo.begin() as session:
        for recipient in (part_timer, worker, case.reporter_id):
            for key, params in [("submit_result.grid_workers", {"result": "已隔离治疗"}),
                                ("verify_fail.centre", {"reason": "部门内部原因"})]:
                event = CaseEvent(case_id=case.id, actor_id=None, actor_role="centre_staff", action=key.split(".")[0],
                                  from_state="reported", to_state="reported", data={})
                session.add(event)
                await session.flush()
                session.add(Notification(case_id=case.id, event_id=event.id, recipient_id=recipient, message_key=key,
                                         params={"number": case.number, "matter": "GM-0703", **params}))
    async with demo() as session:
        rows = list(await session.scalars(select(Notification).where(Notification.case_id == case.id)))
        texts = {(row.recipient_id, row.message_key): (await notices.render(session, "zh", row)).text for row in rows}
    assert "已隔离治疗" in texts[(worker, "submit_result.grid_workers")]
    assert "已隔离治疗" not in texts[(part_timer, "submit_result.grid_workers")]  # a matter about particular people
    assert "（不予显示）" in texts[(part_timer, "submit_result.grid_workers")]
    assert "部门内部原因" not in texts[(case.reporter_id, "verify_fail.centre")]  # internal: staff only
    assert "部门内部原因" in texts[(worker, "verify_fail.centre")]


async def test_two_instances_claim_the_daily_run_once(demo):
    """Two instances at the same moment: one runs the day's retention, the other does not."""
    from storage.db import writing

    async def claim(at):
        async with demo.begin() as session:
            await writing(session)
            claimed = await retention.claim_daily(session, "retention", at)
            await asyncio.sleep(0.05)  # hold the claim open while the other instance tries
            return claimed

    now = utcnow()
    assert sorted(await asyncio.gather(claim(now), claim(now))) == [False, True]
    assert sorted(await asyncio.gather(claim(now + timedelta(days=1)), claim(now + timedelta(days=1)))) == [False, True]


async def test_the_server_runs_the_retention_job(demo):
    from bot.server import retention_daily
    from storage.models import PeriodicRun

    case = await close(demo, await report(demo, now=utcnow() - timedelta(days=40)), now=utcnow() - timedelta(days=40))
    runtime = Runtime(Settings(retention_days=30), demo.kw["bind"], demo, Engine(demo))
    stop = asyncio.Event()
    task = asyncio.create_task(retention_daily(runtime, stop, every=0.05))
    for _ in range(100):
        async with demo() as session:
            run = await session.get(PeriodicRun, "retention")
            if run is not None and run.finished_at is not None:
                break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert run.summary["cases"] == 1
    async with demo() as session:
        assert (await session.get(Case, case.id)).contact_phone is None


async def test_patrol_findings_and_anonymous_reports_show_the_public_no_notes(demo, aiohttp_client):
    client = await make_client(demo, aiohttp_client)
    worker = await person_id(demo, "demo-worker-g01")
    patrol = await report(demo, "demo-worker-g01", source=CaseSource.worker_patrol, concerned_residents="李某",
                          contact_phone=None, description="李某家门口路灯坏")
    await CaseStore(demo).act(patrol.number, worker, "resolve_on_spot", result="已为李某家修好路灯")
    anonymous = await report(demo, anonymous=True, description="路灯不亮")
    centre = await person_id(demo, "demo-centre-gesang")
    await CaseStore(demo).act(anonymous.number, centre, "reject", reason="李某已上报过")
    rows = {r["service_request_id"]: r for r in await (await client.get("/open311/v2/requests.json")).json()}
    for case in (patrol, anonymous):
        row = rows[case.number]
        assert row["status"] == "closed" and row["status_notes"] is None and row["lat"] is None, row
    assert "李某" not in json.dumps(rows, ensure_ascii=False)


async def test_every_demo_account_reads_a_real_flow_only_as_allowed(demo, aiohttp_client):
    """From outside, a token for every demo account, on a case taken through the real flow with internal notes."""
    client = await make_client(demo, aiohttp_client)
    case = await report(demo)
    store = CaseStore(demo)
    ids = {w: await person_id(demo, w) for w in ("demo-centre-gesang", "demo-handler-urban-management",
                                                 "demo-worker-g01", "demo-chief-langsai", "demo-parttime-g01")}
    internal = ["INTERNAL-受理备注", "INTERNAL-留言：上报人脾气大", "INTERNAL-核查不合格：灯仍不亮", "INTERNAL-督促"]
    steps = [("demo-centre-gesang", "accept", {"note": internal[0]}),
             ("demo-centre-gesang", "comment", {"note": internal[1]}),
             ("demo-centre-gesang", "transfer", {"department": "urban_management"}),
             ("demo-handler-urban-management", "start_handling", {}),
             ("demo-handler-urban-management", "submit_result", {"result": "已更换灯泡"}),
             ("demo-worker-g01", "verify_fail", {"reason": internal[2]}),
             ("demo-chief-langsai", "prompt", {"note": internal[3]}),
             ("demo-handler-urban-management", "submit_result", {"result": "已更换线路"})]
    for who, trigger, inputs in steps:
        await store.act(case.number, ids[who], trigger, **inputs)
    # A part-time worker may not verify or close, whatever the matter.
    part_timer = await token(demo, "demo-parttime-g01")
    for trigger in ("verify_pass", "verify_fail"):
        response = await client.post(f"/api/cases/{case.number}/actions/{trigger}", headers=bearer(part_timer),
                                     json={"reason": "x"} if trigger == "verify_fail" else {})
        assert response.status == 403, trigger
    async with demo() as session:
        web_ids = list(await session.scalars(select(Identity.external_id).where(Identity.platform == "web",
                                                                               Identity.external_id.like("demo-%"))))
    assert len(web_ids) >= 19
    for web_id in web_ids:
        secret = await token(demo, web_id)
        listing = await (await client.get("/api/cases", headers=bearer(secret))).text()
        detail = await client.get(f"/api/cases/{case.number}", headers=bearer(secret))
        text = listing + await detail.text()
        if web_id.startswith("demo-resident"):
            for note in internal:
                assert note not in text, (web_id, note)
            if web_id == "demo-resident-zh":
                body = await detail.json()
                assert [e["action"] for e in body["timeline"]] == [
                    "report", "accept", "transfer", "start_handling", "submit_result", "verify_fail", "submit_result"]
                assert body["result"] == "已更换线路"
        elif detail.status == 200:
            assert all(note in text for note in internal), web_id  # staff in scope read the internal notes
        else:
            assert detail.status == 404 and case.number not in listing, web_id


async def test_the_resident_reads_the_published_step_in_their_language(demo):
    from conversations.i18n import translate

    case = await report(demo, "demo-resident-bo")
    await CaseStore(demo).act(case.number, await person_id(demo, "demo-centre-gesang"), "publish",
                              public_text="朗赛路北段路灯不亮")
    async with demo.begin() as session:
        (await session.get(Person, case.reporter_id)).language_chosen = True
    sender = Sender(platform="web", external_id="demo-resident-bo", chat_id="demo-resident-bo")
    replies = await Engine(demo).handle(sender, Inbound.press(f"case:{case.number}"))
    text = replies[0].text
    assert translate("bo", "The grid centre published a wording for the public") in text
    assert "publish" not in text


async def test_retention_and_erasure_also_clear_what_a_case_as_a_conversation_keeps(demo, tmp_path):
    """Issue 13's data: the EXIF-free copy of a photo, who follows a case, failed access-code tries."""
    from storage.models import AccessCodeAttempt, CaseFollower

    original, copy = tmp_path / "web" / "cd" / "p.jpg", tmp_path / "web" / "cd" / "p.public.jpg"
    original.parent.mkdir(parents=True)
    original.write_bytes(b"\xff\xd8\xff")
    copy.write_bytes(b"\xff\xd8\xff")
    now = utcnow()
    long_ago = now - timedelta(days=400)
    old = await report(demo, now=long_ago)
    follower = await person_id(demo, "demo-resident-bo")
    async with demo.begin() as session:
        session.add(Attachment(case_id=old.id, stored_path="web/cd/p.jpg", public_path="web/cd/p.public.jpg",
                               platform="web", size=3))
        session.add(CaseFollower(case_id=old.id, person_id=follower, reason="access_code"))
        session.add(AccessCodeAttempt(person_id=follower, number=old.number, at=now - timedelta(days=3)))
        session.add(AccessCodeAttempt(person_id=follower, number=old.number, at=now - timedelta(minutes=5)))
    await close(demo, old, now=long_ago)
    async with demo.begin() as session:
        removed = await retention.anonymise_expired(session, now=now, retention_days=365, attachments_dir=str(tmp_path))
    assert removed.cases == 1 and removed.files == 2 and not original.exists() and not copy.exists()
    async with demo() as session:
        assert list(await session.scalars(select(CaseFollower).where(CaseFollower.case_id == old.id))) == []
        # Only the tries that still count toward the hourly limit are kept.
        assert [a.at > now - timedelta(hours=1) for a in await session.scalars(select(AccessCodeAttempt))] == [True]

    recent = await report(demo)
    async with demo.begin() as session:
        session.add(CaseFollower(case_id=recent.id, person_id=follower, reason="supporter"))
    async with demo.begin() as session:
        await retention.erase_person(session, follower, now=now)
    async with demo() as session:
        assert list(await session.scalars(select(CaseFollower).where(CaseFollower.person_id == follower))) == []
        assert list(await session.scalars(select(AccessCodeAttempt).where(AccessCodeAttempt.person_id == follower))) == []
