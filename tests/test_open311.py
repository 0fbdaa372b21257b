"""Open311 GeoReport v2 (/open311/v2/): a client's flow, errors in both formats, filters, privacy."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.runtime import Runtime
from bot.settings import Settings
from bot.web import open311
from bot.web.app import RUNTIME, create_app
from conversations.engine import Engine
from storage import api_tokens
from storage.cases import CaseStore
from storage.models import Case, CaseSource, Identity, Person
from storage.timeutil import utcnow

V2 = "/open311/v2"
ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00$")
G01 = "5401-D1-01-01-G01"
IN_G01 = {"lat": "29.6558", "long": "91.1220"}
PHONE = "13912345678"


@pytest.fixture
async def client(demo, aiohttp_client):
    runtime = Runtime(Settings(), demo.kw["bind"], demo, Engine(demo))
    return await aiohttp_client(create_app(runtime))


def sessionmaker_of(client):
    return client.app[RUNTIME].sessionmaker


async def api_key(client, web_id: str = "demo-resident-zh") -> str:
    async with sessionmaker_of(client).begin() as session:
        person = await api_tokens.find_person(session, web_id)
        _, secret = await api_tokens.create_token(session, person.id, "civic app")
    return secret


async def person_id(client, web_id: str) -> int:
    async with sessionmaker_of(client)() as session:
        return await session.scalar(select(Identity.person_id).where(Identity.external_id == web_id))


async def get_json(client, path: str, expect: int = 200, **params):
    response = await client.get(path, params=params)
    assert response.status == expect, await response.text()
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    return await response.json()


async def get_xml(client, path: str, expect: int = 200, **params) -> ET.Element:
    response = await client.get(path, params=params)
    body = await response.read()
    assert response.status == expect, body
    assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert body.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    return ET.fromstring(body)


def errors_of(root: ET.Element) -> list[tuple[str, str]]:
    assert root.tag == "errors"
    return [(e.findtext("code"), e.findtext("description")) for e in root.findall("error")]


async def post_request(client, fmt: str = "json", status: int = 201, **form):
    response = await client.post(f"{V2}/requests.{fmt}", data=form)
    assert response.status == status, await response.text()
    return (await response.json()) if fmt == "json" else ET.fromstring(await response.read())


async def report(client, web_id="demo-resident-zh", grid=G01, matter="GM-0301", **overrides) -> Case:
    values = dict(reporter_id=await person_id(client, web_id), matter_code=matter, description="路灯坏了",
                  language="zh", grid_code=grid, contact_phone=PHONE)
    values.update(overrides)
    return await CaseStore(sessionmaker_of(client)).open_case(**values)


# ---------------------------------------------------------------- the client flow


async def test_client_lists_services_posts_a_request_and_reads_it_back(client):
    # 1. The service list, in JSON and XML.
    services = await get_json(client, f"{V2}/services.json")
    light = next(s for s in services if s["service_code"] == "GM-0301")
    assert light["service_name"] == "路灯不亮" and light["group"] == "public_opinion"
    assert light["metadata"] is False and light["type"] == "realtime"
    assert "路灯" in light["keywords"].split(", ") and "ལམ་སྒྲོན་མི་འབར་བ" in light["description"]
    root = await get_xml(client, f"{V2}/services.xml")
    assert root.tag == "services"
    codes = [s.findtext("service_code") for s in root.findall("service")]
    assert codes == [s["service_code"] for s in services] and "GM-0301" in codes
    xml_light = next(s for s in root.findall("service") if s.findtext("service_code") == "GM-0301")
    assert xml_light.findtext("service_name") == "路灯不亮" and xml_light.findtext("metadata") == "false"
    assert xml_light.findtext("group") == "public_opinion" and xml_light.findtext("type") == "realtime"
    tibetan = await get_json(client, f"{V2}/services.json", lang="bo")
    assert next(s for s in tibetan if s["service_code"] == "GM-0301")["service_name"] == "ལམ་སྒྲོན་མི་འབར་བ"
    root = await get_xml(client, f"{V2}/services.xml", locale="bo_CN")
    assert root.find("service").findtext("service_name") == tibetan[0]["service_name"]

    # 2. The service definition: no attributes.
    assert await get_json(client, f"{V2}/services/GM-0301.json") == {"service_code": "GM-0301", "attributes": []}
    definition = await get_xml(client, f"{V2}/services/GM-0301.xml")
    assert definition.tag == "service_definition" and definition.findtext("service_code") == "GM-0301"
    assert definition.find("attributes") is not None and list(definition.find("attributes")) == []

    # 3. POST a request with an api_key (form-encoded, as the standard says).
    key = await api_key(client, "demo-resident-zh")
    created = await post_request(client, api_key=key, service_code="GM-0301", description="朗赛路北段路灯不亮三天了",
                                 address_string="朗赛路北段12号", phone=PHONE, first_name="小红", last_name="孙",
                                 email="xh@example.com", **IN_G01)
    assert len(created) == 1 and set(created[0]) == {"service_request_id", "service_notice", "account_id"}
    number = created[0]["service_request_id"]
    async with sessionmaker_of(client)() as session:
        case = await session.scalar(select(Case).where(Case.number == number))
    assert case.source == CaseSource.resident_report and case.reporter_id == await person_id(client, "demo-resident-zh")
    assert case.grid.code == G01 and case.contact_phone == PHONE and case.description_language == "zh"
    assert case.address == "朗赛路北段12号" and case.state == "reported"

    # 4. GET it back, in JSON and in XML.
    [request] = await get_json(client, f"{V2}/requests/{number}.json")
    assert request["service_request_id"] == number and request["status"] == "open"
    assert request["service_code"] == "GM-0301" and request["service_name"] == "路灯不亮"
    assert request["description"] is None  # what the resident typed is not public until the centre publishes wording
    assert request["agency_responsible"] == "城市管理和综合执法局"
    assert ISO_WITH_OFFSET.match(request["requested_datetime"]) and ISO_WITH_OFFSET.match(request["updated_datetime"])
    assert request["address"].startswith("朗赛社区第一网格, 朗赛社区, 格桑街道")  # the grid, not the typed address
    assert "朗赛路北段12号" not in json.dumps(request, ensure_ascii=False)
    assert request["address_id"] == G01 and request["lat"] == 29.656 and request["long"] == 91.122  # about 100 m
    root = await get_xml(client, f"{V2}/requests/{number}.xml")
    assert root.tag == "service_requests"
    [element] = root.findall("request")
    assert element.findtext("service_request_id") == number and element.findtext("status") == "open"
    assert element.findtext("requested_datetime") == request["requested_datetime"]
    assert element.findtext("agency_responsible") == "城市管理和综合执法局"
    assert element.find("media_url") is not None and element.findtext("media_url") == ""
    listed = await get_json(client, f"{V2}/requests.json")
    assert [r["service_request_id"] for r in listed] == [number]
    # Never the reporter: no phone, name or e-mail in what the public reads.
    for path in (f"{V2}/requests/{number}.json", f"{V2}/requests/{number}.xml", f"{V2}/requests.json", f"{V2}/requests.xml"):
        text = await (await client.get(path)).text()
        for secret in (PHONE, "小红", "xh@example.com", "孙小红", key):
            assert secret not in text, (path, secret)

    # XML POST answers in XML.
    created = await post_request(client, "xml", api_key=key, service_code="GM-0302", description="ཕྱིས་སྙིགས་མ་བསྡུས།",
                                 **IN_G01)
    assert created.tag == "service_requests"
    number = created.find("request").findtext("service_request_id")
    async with sessionmaker_of(client)() as session:
        case = await session.scalar(select(Case).where(Case.number == number))
    assert case.description_language == "bo" and case.contact_phone is None


async def test_discovery(client):
    discovery = await get_json(client, "/open311/discovery.json")
    [endpoint] = discovery["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"].endswith("/open311/v2") and "text/xml" in endpoint["formats"]
    root = await get_xml(client, "/open311/discovery.xml")
    assert root.find("endpoints/endpoint/formats").findall("format")[0].text == "text/xml"


# ---------------------------------------------------------------- errors


async def test_post_errors_in_both_formats(client):
    key = await api_key(client)
    base = dict(api_key=key, service_code="GM-0301", description="路灯坏了", **IN_G01)
    cases_403 = [{**base, "api_key": ""}, {**base, "api_key": "gbt_wrong"}]
    cases_404 = [{**base, "service_code": "NOPE"}]
    cases_400 = [
        {k: v for k, v in base.items() if k != "service_code"},
        {k: v for k, v in base.items() if k not in ("lat", "long")},  # no location at all
        {**{k: v for k, v in base.items() if k not in ("lat", "long")}, "address_string": "朗赛路"},  # not placeable
        {**base, "long": ""},  # lat without long
        {**base, "lat": "north"},
        {**base, "lat": "129.0"},
        {**base, "lat": "29.7000", "long": "91.3000"},  # outside every grid
        {**base, "description": "   "},
        {**base, "description": "长" * 2001},
        {**base, "phone": "1" * 41},
        {**{k: v for k, v in base.items() if k not in ("lat", "long")}, "address_id": "5401-D1-01"},  # not a grid
    ]
    for status, forms in ((403, cases_403), (404, cases_404), (400, cases_400)):
        for form in forms:
            body = await post_request(client, "json", status=status, **form)
            assert len(body) == 1 and body[0]["code"] == status and body[0]["description"], form
            root = await post_request(client, "xml", status=status, **form)
            [(code, description)] = errors_of(root)
            assert code == str(status) and description == body[0]["description"]
    # A revoked key is refused too.
    async with sessionmaker_of(client).begin() as session:
        person = await api_tokens.find_person(session, "demo-resident-zh")
        await api_tokens.revoke(session, person_id=person.id)
    body = await post_request(client, "json", status=403, **base)
    assert "api_key" in body[0]["description"]
    async with sessionmaker_of(client)() as session:
        assert list(await session.scalars(select(Case))) == []
    # address_id may name a grid instead of lat/long.
    key = await api_key(client, "demo-resident-bo")
    created = await post_request(client, api_key=key, service_code="GM-0301", description="路灯", address_id=G01)
    assert created[0]["service_request_id"].startswith("LS-")


async def test_get_errors_in_both_formats(client):
    for path, status in [
        (f"{V2}/services/NOPE", 404), (f"{V2}/requests/LS-20000101-0001", 404), (f"{V2}/nothing", 404),
        (f"{V2}/requests", 400),
    ]:
        params = {"status": "pending"} if status == 400 else {}
        body = await get_json(client, f"{path}.json", expect=status, **params)
        assert body[0]["code"] == status
        root = await get_xml(client, f"{path}.xml", expect=status, **params)
        assert errors_of(root)[0][0] == str(status)
    for params in ({"start_date": "last week"}, {"end_date": "2026-02-30"},
                   {"start_date": "2026-01-01T00:00:00+08:00", "end_date": "2026-06-01T00:00:00+08:00"},
                   {"start_date": "2026-06-01", "end_date": "2026-05-01"}):
        body = await get_json(client, f"{V2}/requests.json", expect=400, **params)
        assert body[0]["code"] == 400, params
    response = await client.put(f"{V2}/requests.xml")
    assert response.status == 405 and errors_of(ET.fromstring(await response.read()))[0][0] == "405"


# ---------------------------------------------------------------- filters and mapping


async def test_request_filters_and_status_mapping(client):
    store = CaseStore(sessionmaker_of(client))
    now = utcnow()
    old = await report(client, now=now - timedelta(days=120))
    week = await report(client, matter="GM-0302", now=now - timedelta(days=7))
    rejected = await report(client, now=now - timedelta(days=2))
    closed = await report(client, matter="GM-0101", now=now - timedelta(days=1))
    fresh = await report(client, now=now)
    centre = await person_id(client, "demo-centre-gesang")
    handler = await person_id(client, "demo-handler-human-resources")
    await store.act(rejected.number, centre, "reject", reason="重复上报，已合并到另一件")
    await store.act(closed.number, centre, "accept")
    await store.act(closed.number, centre, "transfer", department="human_resources")
    await store.act(closed.number, handler, "start_handling")
    await store.act(closed.number, handler, "submit_result", result="已电话解答")
    await store.act(closed.number, centre, "verify_pass")
    await store.act(fresh.number, centre, "accept", note="已派网格员核实")
    await store.act(fresh.number, centre, "comment", note="内部：注意跟进")

    async def ids(**params):
        return [r["service_request_id"] for r in await get_json(client, f"{V2}/requests.json", **params)]

    # Default: the most recent 90 days, newest first.
    assert await ids() == [fresh.number, closed.number, rejected.number, week.number]
    assert await ids(status="open") == [fresh.number, week.number]
    assert await ids(status="closed") == [closed.number, rejected.number]
    assert await ids(status="open,closed") == await ids()
    assert await ids(service_code="GM-0302,GM-0101") == [closed.number, week.number]
    assert await ids(service_code="NOPE") == []
    start = (now - timedelta(days=130)).isoformat()
    assert await ids(start_date=start) == [old.number]  # 90 days from the start
    end = (now - timedelta(days=5)).isoformat()
    assert await ids(end_date=end) == [week.number]  # 90 days up to the end
    assert await ids(start_date=(now - timedelta(days=3)).isoformat().replace("+00:00", "Z"),
                     end_date=(now - timedelta(days=1, seconds=-5)).isoformat()) == [closed.number, rejected.number]
    # service_request_id overrides every other argument, old requests included.
    assert await ids(service_request_id=f"{old.number},{fresh.number}", status="closed") == [fresh.number, old.number]

    by_id = {r["service_request_id"]: r for r in await get_json(client, f"{V2}/requests.json")}
    assert by_id[rejected.number]["status"] == "closed"
    assert by_id[rejected.number]["status_notes"] == "重复上报，已合并到另一件"
    assert by_id[closed.number]["status_notes"] is None  # a policy question concerns one person: withheld
    assert by_id[closed.number]["agency_responsible"] == "人力资源和社会保障局"
    assert by_id[closed.number]["expected_datetime"] is None
    assert by_id[fresh.number]["status_notes"] is None  # only notes written for the public, never staff's internal ones
    assert by_id[week.number]["status_notes"] is None and by_id[week.number]["status"] == "open"
    root = await get_xml(client, f"{V2}/requests.xml", status="closed")
    assert [r.findtext("status") for r in root.findall("request")] == ["closed", "closed"]
    notes = {r.findtext("service_request_id"): r.findtext("status_notes") for r in root.findall("request")}
    assert notes[rejected.number] == "重复上报，已合并到另一件"
    tibetan = await get_json(client, f"{V2}/requests/{closed.number}.json", lang="bo")
    assert tibetan[0]["service_name"] != by_id[closed.number]["service_name"]
    assert "སྡེ་ཁུལ" in tibetan[0]["address"]


async def test_requests_about_particular_people_show_no_details(client):
    dispute = await report(client, matter="GM-0401", description="邻居张三家天天吵架", latitude=29.6558,
                           longitude=91.1220, grid_code=None, address="朗赛路8号2单元")
    patrol = await report(client, "demo-worker-g01", source=CaseSource.worker_patrol, concerned_residents="独居老人李某",
                          description="李某家燃气管老化", contact_phone=None)
    anonymous = await report(client, anonymous=True, description="路灯不亮")
    rows = {r["service_request_id"]: r for r in await get_json(client, f"{V2}/requests.json")}
    for case in (dispute, patrol):
        row = rows[case.number]
        assert row["description"] is None and row["lat"] is None and row["long"] is None and row["status_notes"] is None
        assert row["address"] == "朗赛社区第一网格, 朗赛社区, 格桑街道, 示范区（虚构）, 拉萨市"
    assert rows[anonymous.number]["description"] is None  # an anonymous report shows nothing that could identify
    text = await (await client.get(f"{V2}/requests.xml")).text() + json.dumps(rows, ensure_ascii=False)
    async with sessionmaker_of(client)() as session:
        display_names = [p.display_name for p in await session.scalars(select(Person)) if p.display_name]
    for secret in ["张三", "李某", "朗赛路8号", PHONE] + display_names:
        assert secret not in text, secret


async def test_reads_per_client_and_posts_per_key_are_paced(client):
    from bot.web.security import RateLimiter

    client.app[open311.OPEN311].reads = RateLimiter(2, 0.01)
    client.app[open311.OPEN311].posts = RateLimiter(1, 0.01)
    await get_xml(client, f"{V2}/services.xml")
    await get_json(client, f"{V2}/requests.json")
    response = await client.get(f"{V2}/services.xml")
    assert response.status == 429 and response.headers["Retry-After"]
    assert errors_of(ET.fromstring(await response.read()))[0][0] == "429"
    key = await api_key(client)
    form = dict(api_key=key, service_code="GM-0301", description="路灯坏了", **IN_G01)
    await post_request(client, **form)
    assert (await post_request(client, status=429, **form))[0]["code"] == 429
    await post_request(client, **{**form, "api_key": await api_key(client, "demo-resident-bo")})


async def test_a_request_records_its_language_by_words_mixed_text_as_mixed(client):
    key = await api_key(client)
    numbers = {}
    for description in ("布达拉宫附近的ལམ་སྒྲོན་坏了", "朗赛路 ལམ་སྒྲོན་མི་འབར་བ། ཉིན་གསུམ། ལམ་ཁ་མུན་པ་རེད།", "路灯坏了三天"):
        created = await post_request(client, api_key=key, service_code="GM-0301", description=description, **IN_G01)
        numbers[description] = created[0]["service_request_id"]
    async with sessionmaker_of(client)() as session:
        recorded = {d: await session.scalar(select(Case.description_language).where(Case.number == n)) for d, n in numbers.items()}
    assert list(recorded.values()) == ["mixed", "bo", "zh"]


def test_xml_drops_characters_xml_cannot_carry():
    body = open311.xml_document("service_requests", "request", [{"description": "a\x00b\x1fc", "lat": None, "ok": True}])
    element = ET.fromstring(body).find("request")
    assert element.findtext("description") == "abc" and element.findtext("lat") == "" and element.findtext("ok") == "true"


async def test_a_retried_post_with_an_idempotency_key_opens_one_case(client):
    key = await api_key(client)
    form = dict(api_key=key, service_code="GM-0301", description="路灯坏了", lat="29.6558", long="91.1220")
    headers = {"Idempotency-Key": "phone-app-7f3a"}
    first = await client.post(f"{V2}/requests.json", data=form, headers=headers)
    again = await client.post(f"{V2}/requests.json", data=form, headers=headers)
    assert (first.status, again.status) == (201, 200)
    assert (await first.json())[0]["service_request_id"] == (await again.json())[0]["service_request_id"]
    other = await client.post(f"{V2}/requests.json", data=form, headers={"Idempotency-Key": "another"})
    assert other.status == 201
    async with sessionmaker_of(client)() as session:
        assert len(list(await session.scalars(select(Case)))) == 2
