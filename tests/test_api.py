"""The case API (/api/): auth, scope, reading, actions, catalogues, errors, the OpenAPI document, tokens."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec
from sqlalchemy import select, update

from bot.runtime import Runtime
from bot.settings import Settings
from bot.web import api
from bot.web.app import create_app
from conversations.engine import Engine
from storage import access, api_tokens, queries
from storage.cases import CaseStore
from storage.lifecycle import ConcurrentChange, MissingInput, NotAllowedInState, NotPermitted
from storage.models import ApiToken, Case, CaseSource, CaseEvent, CaseView, Identity, Matter, Notification, Person
from storage.people import active_roles
from storage.timeutil import utcnow

ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00$")
G01 = "5401-D1-01-01-G01"  # 格桑街道 › 朗赛社区
G02 = "5401-D1-01-01-G02"
DEJI_G01 = "5401-D1-02-01-G01"  # 德吉乡
PHONE = "13912345678"


# ---------------------------------------------------------------- helpers


@pytest.fixture
async def client(demo, aiohttp_client):
    sessionmaker = demo
    runtime = Runtime(Settings(), sessionmaker.kw["bind"], sessionmaker, Engine(sessionmaker))
    return await aiohttp_client(create_app(runtime))


async def person_id(sessionmaker, web_id: str) -> int:
    async with sessionmaker() as session:
        return await session.scalar(
            select(Identity.person_id).where(Identity.platform == "web", Identity.external_id == web_id)
        )


async def token_for(sessionmaker, web_id: str) -> str:
    async with sessionmaker.begin() as session:
        person = await api_tokens.find_person(session, web_id)
        _, secret = await api_tokens.create_token(session, person.id, "test")
    return secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


class Caller:
    """A demo account calling the API with its own token."""

    def __init__(self, client, secret: str):
        self.client, self.secret = client, secret

    async def get(self, path: str, status: int = 200, **params):
        response = await self.client.get(path, headers=bearer(self.secret), params=params)
        body = await response.json()
        assert response.status == status, body
        return body

    async def post(self, path: str, body=None, status: int = 200):
        response = await self.client.post(path, headers=bearer(self.secret), json=body)
        data = await response.json()
        assert response.status == status, data
        return data


async def caller(client, web_id: str) -> Caller:
    return Caller(client, await token_for(client.app[api_runtime_key()].sessionmaker, web_id))


def api_runtime_key():
    from bot.web.app import RUNTIME

    return RUNTIME


async def report(sessionmaker, web_id: str, grid: str = G01, matter: str = "GM-0301", **overrides) -> Case:
    values = dict(
        reporter_id=await person_id(sessionmaker, web_id), matter_code=matter, description="楼下路灯坏了三天",
        language="zh", grid_code=grid, contact_phone=PHONE,
    )
    values.update(overrides)
    return await CaseStore(sessionmaker).open_case(**values)


@pytest.fixture
def schema_check():
    """Validate a response body against a schema of the OpenAPI document."""
    document = api.openapi_document()

    def check(body, name: str):
        schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
        errors = sorted(Draft202012Validator(schema).iter_errors(body), key=str)
        assert not errors, [e.message for e in errors[:5]]

    return check


# ---------------------------------------------------------------- the document


async def test_openapi_document_validates_and_documents_every_api_route(client):
    response = await client.get("/api/openapi.json")
    assert response.status == 200
    document = await response.json()
    validate_spec(document)
    assert document["openapi"].startswith("3.1")
    routes = {
        (route.method.lower(), route.resource.canonical)
        for route in client.app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith("/api/") and route.method != "HEAD"
    }
    documented = {(method, path) for path, item in document["paths"].items() for method in item if method != "parameters"}
    assert routes == documented
    # The error codes the API uses are named in the document.
    for code in ("unauthorized", "forbidden", "not_found", "invalid_input", "missing_input", "not_allowed_in_state",
                 "concurrent_change"):
        assert f"`{code}`" in document["info"]["description"]


# ---------------------------------------------------------------- authentication


async def test_missing_malformed_unknown_and_revoked_tokens_get_401(client):
    sessionmaker = client.app[api_runtime_key()].sessionmaker
    secret = await token_for(sessionmaker, "demo-centre-gesang")
    case = await report(sessionmaker, "demo-resident-zh")
    paths = ["/api/me", "/api/cases", f"/api/cases/{case.number}", f"/api/cases/{case.number}/actions",
             "/api/matters", "/api/grids"]
    for headers in ({}, {"Authorization": secret}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "},
                    bearer("gbt_not-a-token"), bearer("x" * 5000)):
        for path in paths:
            response = await client.get(path, headers=headers)
            assert response.status == 401, (path, headers)
            body = await response.json()
            assert body["error"]["code"] == "unauthorized"
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        response = await client.post(f"/api/cases/{case.number}/actions/accept", headers=headers, json={})
        assert response.status == 401
    # The token works, is stamped as used, and stops working once revoked.
    assert (await client.get("/api/me", headers=bearer(secret))).status == 200
    async with sessionmaker.begin() as session:
        token = await session.scalar(select(ApiToken).where(ApiToken.token_hash == api_tokens.hash_token(secret)))
        assert token.last_used_at is not None
        assert token.token_hash != secret and secret not in token.token_hash
        await api_tokens.revoke(session, token_id=token.id)
    response = await client.get("/api/cases", headers=bearer(secret))
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "unauthorized"
    # Nothing happened to the case.
    async with sessionmaker() as session:
        assert (await session.get(Case, case.id)).state == "reported"


async def test_me_names_the_roles(client, schema_check):
    centre = await caller(client, "demo-centre-gesang")
    me = await centre.get("/api/me")
    schema_check(me, "Me")
    assert [(r["role"], r["node"]["code"]) for r in me["roles"]] == [("centre_staff", "5401-D1-01")]
    resident = await caller(client, "demo-resident-bo")
    me = await resident.get("/api/me")
    assert me["roles"] == [] and me["language"] == "bo"


# ---------------------------------------------------------------- scope


async def test_each_role_lists_exactly_its_scope(client, schema_check):
    sessionmaker = client.app[api_runtime_key()].sessionmaker
    a = await report(sessionmaker, "demo-resident-zh", G01)
    b = await report(sessionmaker, "demo-resident-bo", DEJI_G01, description="ལམ་སྒྲོན་མི་འབར།", language="bo")
    c = await report(sessionmaker, "demo-resident-bo", G02, anonymous=True)
    expected = {
        "demo-centre-gesang": {a.number, c.number},
        "demo-centre-deji": {b.number},
        "demo-centre-district": {a.number, b.number, c.number},
        "demo-centre-city": {a.number, b.number, c.number},
        "demo-worker-g01": {a.number},
        "demo-worker-g08": {b.number},
        "demo-chief-langsai": {a.number, c.number},
        "demo-handler-urban-management": set(),  # nothing is transferred yet
        "demo-resident-zh": {a.number},
        "demo-resident-bo": {b.number, c.number},
        "demo-admin": set(),
    }
    for web_id, numbers in expected.items():
        who = await caller(client, web_id)
        listing = await who.get("/api/cases")
        schema_check(listing, "CaseList")
        assert {row["number"] for row in listing["cases"]} == numbers, web_id
        assert listing["total"] == len(numbers)
        for row in listing["cases"]:
            assert "reporter" not in row and "location" not in row
        # Reading a case outside one's scope is indistinguishable from reading no case at all.
        for number in {a.number, b.number, c.number} - numbers:
            hidden = await who.get(f"/api/cases/{number}", status=404)
            missing = await who.get("/api/cases/LS-20000101-9999", status=404)
            assert hidden == missing == {"error": {"code": "not_found", "message": "no such case"}}
            assert await who.get(f"/api/cases/{number}/actions", status=404) == missing
            assert await who.post(f"/api/cases/{number}/actions/accept", {}, status=404) == missing
    # Once transferred, the department sees the case, and only that department.
    centre = await caller(client, "demo-centre-gesang")
    await centre.post(f"/api/cases/{a.number}/actions/accept")
    await centre.post(f"/api/cases/{a.number}/actions/transfer", {"department": "urban_management"})
    urban = await caller(client, "demo-handler-urban-management")
    assert [r["number"] for r in (await urban.get("/api/cases"))["cases"]] == [a.number]
    civil = await caller(client, "demo-handler-civil-affairs")
    assert (await civil.get("/api/cases"))["cases"] == []
    await civil.get(f"/api/cases/{a.number}", status=404)


async def test_scope_query_agrees_with_can_view(client):
    """storage.queries lists exactly what storage.access lets a person open, after escalation and transfer too."""
    sessionmaker = client.app[api_runtime_key()].sessionmaker
    store = CaseStore(sessionmaker)
    a = await report(sessionmaker, "demo-resident-zh", G01)
    b = await report(sessionmaker, "demo-resident-bo", DEJI_G01)
    c = await report(sessionmaker, "demo-worker-g02", G02, source=CaseSource.worker_patrol, concerned_residents="王某")
    gesang = await person_id(sessionmaker, "demo-centre-gesang")
    deji = await person_id(sessionmaker, "demo-centre-deji")
    await store.act(a.number, gesang, "escalate")  # now with the district centre
    await store.act(b.number, deji, "accept")
    await store.act(b.number, deji, "transfer", department="civil_affairs")
    await store.act(c.number, gesang, "reject", reason="重复")
    async with sessionmaker() as session:
        everyone = list(await session.scalars(select(Person)))
        all_cases = list(await session.scalars(select(Case)))
        for person in everyone:
            assignments = await active_roles(session, person.id)
            listed, total = await queries.cases_in_scope(session, person.id, assignments, limit=200)
            visible = {x.number for x in all_cases if access.can_view(person.id, assignments, x)}
            assert {x.number for x in listed} == visible, person.display_name
            assert total == len(visible)


async def test_filters_paging_and_order(client):
    sessionmaker = client.app[api_runtime_key()].sessionmaker
    now = utcnow()
    old = await report(sessionmaker, "demo-resident-zh", G01, now=now - timedelta(days=10))
    light = await report(sessionmaker, "demo-resident-zh", G02, now=now - timedelta(days=1))
    garbage = await report(sessionmaker, "demo-resident-bo", "5401-D1-01-02-G01", matter="GM-0302", now=now)
    deji = await report(sessionmaker, "demo-resident-bo", DEJI_G01, now=now)
    city = await caller(client, "demo-centre-city")
    centre = await caller(client, "demo-centre-gesang")
    await centre.post(f"/api/cases/{light.number}/actions/accept")
    await centre.post(f"/api/cases/{light.number}/actions/transfer", {"department": "urban_management"})

    async def numbers(**params):
        return [row["number"] for row in (await city.get("/api/cases", **params))["cases"]]

    assert await numbers() == [deji.number, garbage.number, light.number, old.number]  # newest first
    assert await numbers(state="transferred") == [light.number]
    assert await numbers(state="reported,transferred") == [deji.number, garbage.number, light.number, old.number]
    assert await numbers(matter="GM-0302") == [garbage.number]
    assert await numbers(grid="5401-D1-01-01") == [light.number, old.number]  # a community: its grids
    assert await numbers(grid="5401-D1-02") == [deji.number]  # a township
    assert await numbers(grid=G01) == [old.number]
    assert await numbers(department="urban_management") == [light.number]
    assert await numbers(source="resident_report", state="reported", matter="GM-0301") == [deji.number, old.number]
    day = api.local(now - timedelta(days=10)).date().isoformat()
    assert await numbers(created_from=day, created_to=day) == [old.number]
    assert old.number not in await numbers(created_from=api.iso(now - timedelta(days=2)))
    assert await numbers(created_to=api.iso(now - timedelta(days=5))) == [old.number]
    page = await city.get("/api/cases", limit="2", offset="1")
    assert [r["number"] for r in page["cases"]] == [garbage.number, light.number]
    assert (page["total"], page["limit"], page["offset"]) == (4, 2, 1)
    # A centre's filters stay inside its scope.
    assert [r["number"] for r in (await centre.get("/api/cases", grid="5401-D1-02"))["cases"]] == []

    for params, field in [
        ({"state": "nonsense"}, "state"), ({"matter": "NOPE"}, "matter"), ({"grid": "NOPE"}, "grid"),
        ({"department": "nope"}, "department"), ({"created_from": "yesterday"}, "created_from"),
        ({"created_to": "2026-13-01"}, "created_to"), ({"limit": "0"}, "limit"), ({"limit": "201"}, "limit"),
        ({"limit": "ten"}, "limit"), ({"offset": "-1"}, "offset"), ({"source": "phone"}, "source"),
        ({"colour": "red"}, "colour"),
    ]:
        body = await city.get("/api/cases", status=422, **params)
        assert body["error"]["code"] == "invalid_input", params
        assert body["error"]["details"]["field"] == field, params


# ---------------------------------------------------------------- reading a case


async def test_read_case_with_timeline_phone_rules_and_view_records(client, schema_check):
    sessionmaker = client.app[api_runtime_key()].sessionmaker
    case = await report(sessionmaker, "demo-resident-zh", G01)
    anonymous = await report(sessionmaker, "demo-resident-bo", G01, anonymous=True)
    centre = await caller(client, "demo-centre-gesang")
    worker = await caller(client, "demo-worker-g01")
    resident = await caller(client, "demo-resident-zh")
    await centre.post(f"/api/cases/{case.number}/actions/accept", {"note": "已受理"})

    seen = await centre.get(f"/api/cases/{case.number.lower()}")  # numbers are case-insensitive
    schema_check(seen, "CaseDetail")
    assert seen["number"] == case.number and seen["state"] == "accepted"
    assert seen["reporter"] == {"phone": "139****5678", "phone_masked": True}
    assert seen["matter"]["code"] == "GM-0301" and seen["matter"]["name_bo"]
    assert seen["grid"]["code"] == G01 and seen["centre"]["level"] == "township"
    assert [(e["action"], e["actor_role"], e["from_state"], e["to_state"]) for e in seen["timeline"]] == [
        ("report", "resident", None, "reported"), ("accept", "centre_staff", "reported", "accepted"),
    ]
    assert seen["timeline"][1]["note"] == "已受理" and seen["timeline"][1]["by_you"] is True
    for moment in [seen["created_at"], seen["updated_at"]] + [e["at"] for e in seen["timeline"]]:
        assert ISO_WITH_OFFSET.match(moment), moment
    assert [a["action"] for a in seen["allowed_actions"]] == [
        "escalate", "refer_to_joint_meeting", "transfer", "comment", "reply_to_resident", "merge", "publish"]
    transfer = next(a for a in seen["allowed_actions"] if a["action"] == "transfer")
    assert transfer == {"action": "transfer", "role": "centre_staff", "needs": ["department"], "optional": ["note"]}

    reporter = (await worker.get(f"/api/cases/{case.number}"))["reporter"]
    assert reporter == {"phone": PHONE, "phone_masked": False, "name": "孙小红（演示）"}  # the grid's worker contacts them
    own = await resident.get(f"/api/cases/{case.number}")
    assert own["reporter"]["phone"] == PHONE and own["reported_by_you"] is True
    assert [a["action"] for a in own["allowed_actions"]] == ["withdraw", "add_to_case"]  # withdraw before handling starts
    assert own["allowed_actions"][1] == {"action": "add_to_case", "role": "resident", "needs": [], "optional": ["note"]}
    for who in (centre, worker):
        body = await who.get(f"/api/cases/{anonymous.number}")
        assert body["reporter"] is None and body["anonymous"] is True and body["reported_by_you"] is False

    # No staff names anywhere in what the API returns, and the reporter's name only for those who contact them.
    async with sessionmaker() as session:
        display_names = [p.display_name for p in await session.scalars(select(Person)) if p.display_name]
    assert not [n for n in display_names if n in json.dumps(seen, ensure_ascii=False)]
    assert not [n for n in display_names if n != "孙小红（演示）" and n in json.dumps(own, ensure_ascii=False)]

    async with sessionmaker() as session:
        views = list(await session.scalars(select(CaseView).order_by(CaseView.id)))
    assert [(v.case_id, v.role, v.channel) for v in views] == [
        (case.id, "centre_staff", "api"),  # the accept's answer shows the case too
        (case.id, "centre_staff", "api"),
        (case.id, "grid_worker", "api"),
        (case.id, "resident", "api"),
        (anonymous.id, "centre_staff", "api"),
        (anonymous.id, "grid_worker", "api"),
    ]
    # A staff list is a read of every case it shows (Art. 19); looking at the actions is not.
    await centre.get("/api/cases")
    await centre.get(f"/api/cases/{case.number}/actions")
    await resident.get("/api/cases")  # the reporter reading their own list is no staff read
    async with sessionmaker() as session:
        listed = list(await session.scalars(select(CaseView).where(CaseView.id > views[-1].id)))
    assert sorted((v.case_id, v.role, v.channel) for v in listed) == sorted(
        [(case.id, "centre_staff", "api_list"), (anonymous.id, "centre_staff", "api_list")])


async def test_concerned_residents_only_for_those_who_need_them(client):
    sessionmaker = client.app[api_runtime_key()].sessionmaker
    case = await report(sessionmaker, "demo-worker-g01", G01, source=CaseSource.worker_patrol, concerned_residents="独居的王大爷",
                        contact_phone=None)
    assert (await (await caller(client, "demo-worker-g01")).get(f"/api/cases/{case.number}"))["concerned_residents"]
    assert (await (await caller(client, "demo-centre-gesang")).get(f"/api/cases/{case.number}"))["concerned_residents"] is None


# ---------------------------------------------------------------- actions


async def test_the_whole_flow_through_the_api_writes_events_and_outbox(client, schema_check):
    sessionmaker = client.app[api_runtime_key()].sessionmaker
    case = await report(sessionmaker, "demo-resident-zh", G01)
    centre = await caller(client, "demo-centre-gesang")
    handler = await caller(client, "demo-handler-urban-management")
    worker = await caller(client, "demo-worker-g01")
    resident = await caller(client, "demo-resident-zh")
    path = f"/api/cases/{case.number}/actions"

    actions = await centre.get(path)
    assert [a["action"] for a in actions["actions"]] == ["accept", "reject", "escalate", "comment", "reply_to_resident",
                                                        "merge", "publish"]
    assert [a["action"] for a in (await resident.get(path))["actions"]] == ["withdraw", "add_to_case"]

    answer = await centre.post(f"{path}/accept")
    schema_check(answer["case"], "CaseDetail")
    schema_check(answer["event"], "Event")
    assert answer["case"]["state"] == "accepted"
    assert answer["event"]["action"] == "accept" and answer["event"]["actor_role"] == "centre_staff"
    answer = await centre.post(f"{path}/transfer", {"department": "urban_management", "note": "请尽快"})
    assert answer["case"]["department"]["code"] == "urban_management"
    assert ISO_WITH_OFFSET.match(answer["case"]["handling_deadline"])
    await handler.post(f"{path}/start_handling")
    before = (await centre.get(f"/api/cases/{case.number}"))["handling_deadline"]
    answer = await handler.post(f"{path}/request_extension", {"reason": "等配件", "hours": "24"})
    assert answer["case"]["handling_deadline"] == before  # not before the centre approves
    assert {"approve_extension", "refuse_extension"} <= {a["action"] for a in (await centre.get(path))["actions"]}
    assert (await centre.post(f"{path}/request_extension", {"reason": "x", "hours": 2}, status=403))["error"]["code"] == "forbidden"
    answer = await centre.post(f"{path}/approve_extension")
    assert answer["case"]["handling_deadline"] != before and answer["case"]["extension_count"] == 1
    assert answer["case"]["deadline"] == {"stage": "handle", "due": answer["case"]["handling_deadline"], "overdue": False}
    assert (await centre.post(f"{path}/approve_extension", status=409))["error"]["code"] == "no_extension_pending"
    answer = await handler.post(f"{path}/submit_result", {"result": "已更换灯泡"})
    assert answer["case"]["state"] == "handled" and answer["case"]["verification_deadline"]
    # The matter needs on-site checking: the grid's worker verifies, not the centre.
    assert (await centre.post(f"{path}/verify_pass", status=403))["error"] == {
        "code": "forbidden", "message": "your role may not verify_pass this case", "details": {"action": "verify_pass"}}
    answer = await worker.post(f"{path}/verify_pass")
    assert answer["case"]["state"] == "closed" and answer["case"]["result"] == "已更换灯泡"
    assert [a["action"] for a in (await resident.get(path))["actions"]] == ["rate", "reopen"]
    answer = await resident.post(f"{path}/rate", {"rating": "unsatisfied", "comment": "晚上还是不亮"})
    assert answer["case"]["state"] == "accepted"  # an unsatisfied rating within 7 days reopens, as in the chat
    assert answer["event"]["action"] == "reopen"

    async with sessionmaker() as session:
        events = list(await session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)))
        notices = list(await session.scalars(select(Notification).where(Notification.case_id == case.id)))
    assert [(e.action, e.actor_role) for e in events] == [
        ("report", "resident"), ("accept", "centre_staff"), ("transfer", "centre_staff"),
        ("start_handling", "department_handler"), ("request_extension", "department_handler"),
        ("approve_extension", "centre_staff"), ("submit_result", "department_handler"), ("verify_pass", "grid_worker"), ("rate", "resident"),
        ("reopen", "resident"),
    ]
    assert events[2].note == "请尽快" and events[2].data["department"] == "urban_management"
    reporter = await person_id(sessionmaker, "demo-resident-zh")
    handler_id = await person_id(sessionmaker, "demo-handler-urban-management")
    keys = {(n.recipient_id, n.message_key) for n in notices}
    assert (reporter, "accept.reporter") in keys
    assert (handler_id, "transfer.department") in keys
    assert (reporter, "verify_pass.reporter") in keys


async def test_action_errors_have_stable_codes(client):
    sessionmaker = client.app[api_runtime_key()].sessionmaker
    case = await report(sessionmaker, "demo-resident-zh", G01)
    centre = await caller(client, "demo-centre-gesang")
    handler = await caller(client, "demo-handler-urban-management")
    path = f"/api/cases/{case.number}/actions"

    body = await centre.post(f"{path}/reject", {}, status=422)
    assert body["error"]["code"] == "missing_input" and body["error"]["details"]["missing"] == ["reason"]
    assert (await centre.post(f"{path}/reject", {"reason": "  "}, status=422))["error"]["code"] == "missing_input"
    assert (await centre.post(f"{path}/start_handling", status=403))["error"]["code"] == "forbidden"
    assert (await centre.post(f"{path}/fly_away", status=404))["error"]["code"] == "not_found"
    assert (await centre.post(f"{path}/accept", {"colour": "red"}, status=422))["error"]["details"]["field"] == "colour"
    assert (await centre.post(f"{path}/accept", {"note": 5}, status=422))["error"]["code"] == "invalid_input"
    assert (await centre.post(f"{path}/accept", {"note": "x" * 2001}, status=422))["error"]["code"] == "invalid_input"
    assert (await centre.post(f"{path}/accept", [1], status=422))["error"]["code"] == "invalid_input"
    response = await client.post(f"{path}/accept", headers={**bearer(centre.secret), "Content-Type": "application/json"},
                                 data=b"{not json")
    assert response.status == 400 and (await response.json())["error"]["code"] == "invalid_json"
    response = await client.post(f"{path}/accept", headers={**bearer(centre.secret), "Content-Type": "text/plain"},
                                 data=b"accept please")
    assert response.status == 415 and (await response.json())["error"]["code"] == "unsupported_media_type"
    response = await client.post(f"{path}/accept", headers={**bearer(centre.secret), "Content-Type": "application/json"},
                                 data=b"{" + b" " * (api.MAX_BODY + 10) + b"}")
    assert response.status == 413 and (await response.json())["error"]["code"] == "payload_too_large"

    await centre.post(f"{path}/accept")
    assert (await centre.post(f"{path}/accept", status=409))["error"]["code"] == "not_allowed_in_state"
    body = await centre.post(f"{path}/transfer", {"department": "no_such_department"}, status=422)
    assert body["error"]["code"] == "invalid_input"
    await centre.post(f"{path}/transfer", {"department": "urban_management"})
    await handler.post(f"{path}/start_handling")
    for hours in ("soon", 1.5, True):
        body = await handler.post(f"{path}/request_extension", {"reason": "r", "hours": hours}, status=422)
        assert body["error"] == {"code": "invalid_input", "message": "hours must be an integer", "details": {"field": "hours"}}
    for bad in ({"hours": 10000}, {"hours": -3}, {"working_days": 0}, {"deadline": "2020-01-01"}, {"deadline": "soon"}):
        body = await handler.post(f"{path}/request_extension", {"reason": "r", **bad}, status=422)
        assert body["error"]["code"] == "invalid_input", bad
    body = await handler.post(f"{path}/request_extension", {"reason": "r"}, status=422)
    assert body["error"]["code"] == "missing_input"
    assert (await handler.post(f"{path}/return_to_centre", {"reason": "lazy", "note": "x"}, status=422))["error"]["code"] == "invalid_input"
    assert (await handler.post(f"{path}/urge", status=403))["error"]["code"] == "forbidden"  # the sweep's, nobody else's

    # Nothing of the refused attempts reached the case's history.
    async with sessionmaker() as session:
        actions = list(await session.scalars(select(CaseEvent.action).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)))
    assert actions == ["report", "accept", "transfer", "start_handling"]


def test_domain_errors_map_to_statuses():
    assert api.domain_error(ConcurrentChange("x")) == (409, "concurrent_change")
    assert api.domain_error(NotAllowedInState("x")) == (409, "not_allowed_in_state")
    assert api.domain_error(NotPermitted("x")) == (403, "forbidden")
    assert api.domain_error(MissingInput("x")) == (422, "missing_input")


async def test_unknown_routes_and_methods_answer_json(client):
    centre = await caller(client, "demo-centre-gesang")
    assert (await centre.get("/api/nothing-here", status=404))["error"]["code"] == "not_found"
    response = await client.delete("/api/cases", headers=bearer(centre.secret))
    assert response.status == 405
    assert (await response.json())["error"]["code"] == "method_not_allowed"
    assert response.headers["Cache-Control"] == "no-store"


async def test_calls_per_token_are_paced(client):
    from bot.web.security import RateLimiter

    client.app[api.CASE_API].limiter = RateLimiter(2, 0.01)
    centre = await caller(client, "demo-centre-gesang")
    other = await caller(client, "demo-centre-deji")
    await centre.get("/api/me")
    await centre.get("/api/matters")
    response = await client.get("/api/me", headers=bearer(centre.secret))
    assert response.status == 429 and int(response.headers["Retry-After"]) >= 1
    assert (await response.json())["error"]["code"] == "too_many_requests"
    await other.get("/api/me")  # another token has its own allowance


# ---------------------------------------------------------------- catalogues


async def test_matters_lists_the_published_list_in_both_languages(client, schema_check):
    sessionmaker = client.app[api_runtime_key()].sessionmaker
    resident = await caller(client, "demo-resident-bo")
    body = await resident.get("/api/matters")
    for matter in body["matters"]:
        schema_check(matter, "Matter")
    light = next(m for m in body["matters"] if m["code"] == "GM-0301")
    assert light["name_zh"] == "路灯不亮" and light["name_bo"] and light["department"]["code"] == "urban_management"
    assert light["time_limit_hours"] == 72 and light["work_kind"] == "public_opinion" and "路灯" in light["keywords_zh"]
    async with sessionmaker.begin() as session:
        await session.execute(update(Matter).where(Matter.code == "GM-0301").values(withdrawn_at=utcnow()))
    codes = [m["code"] for m in (await resident.get("/api/matters"))["matters"]]
    assert "GM-0301" not in codes and codes == sorted(codes)


async def test_grids_lists_the_tree(client, schema_check):
    centre = await caller(client, "demo-centre-deji")
    body = await centre.get("/api/grids")
    for node in body["grids"]:
        schema_check(node, "GridNode")
        assert "boundary" not in node and node["level"] != "household_unit"
    g01 = next(n for n in body["grids"] if n["code"] == G01)
    assert g01["kind"] == "comprehensive" and g01["supervision_phone"] == "0891-6000001"
    assert g01["parent"] == "5401-D1-01-01" and g01["name_bo"] and g01["area_zh"]
    grids = (await centre.get("/api/grids", level="grid", under="5401-D1-01", boundary="true"))["grids"]
    assert len(grids) == 7 and all(n["level"] == "grid" and n["boundary"]["type"] == "Polygon" for n in grids)
    households = (await centre.get("/api/grids", level="household_unit", under=G01))["grids"]
    assert [n["parent"] for n in households] == [G01, G01]
    assert (await centre.get("/api/grids", status=422, level="planet"))["error"]["details"]["field"] == "level"
    assert (await centre.get("/api/grids", status=422, under="NOPE"))["error"]["details"]["field"] == "under"
    assert (await centre.get("/api/grids", status=422, boundary="maybe"))["error"]["details"]["field"] == "boundary"


# ---------------------------------------------------------------- gridbot token


async def test_token_commands_create_list_and_revoke(client, monkeypatch, capsys):
    from bot.cli import main

    sessionmaker = client.app[api_runtime_key()].sessionmaker
    url = sessionmaker.kw["bind"].url.render_as_string(hide_password=False)
    monkeypatch.setenv("GRIDBOT_DATABASE_URL", url)
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["token", "create", "--person", "demo-handler-health", "--name", "dashboard"]) == 0
    out = capsys.readouterr()
    secret = out.out.strip()
    assert secret.startswith("gbt_") and "\n" not in secret and "shown only now" in out.err
    response = await client.get("/api/me", headers=bearer(secret))
    assert (await response.json())["roles"][0]["department"]["code"] == "health"
    async with sessionmaker() as session:
        token = await session.scalar(select(ApiToken).where(ApiToken.name == "dashboard"))
        assert token.token_hash == api_tokens.hash_token(secret)
        ids = await person_id(sessionmaker, "demo-handler-health")
        assert token.person_id == ids
    # By numeric person id too; an unknown person is an error.
    assert await asyncio.to_thread(main, ["token", "create", "--person", str(ids)]) == 0
    assert await asyncio.to_thread(main, ["token", "create", "--person", "nobody"]) == 1
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["token", "list", "--person", "demo-handler-health"]) == 0
    listing = capsys.readouterr().out
    assert "dashboard" in listing and secret not in listing and token.token_hash not in listing
    assert await asyncio.to_thread(main, ["token", "revoke", str(token.id)]) == 0
    assert (await client.get("/api/me", headers=bearer(secret))).status == 401
    assert await asyncio.to_thread(main, ["token", "revoke", "--person", "demo-handler-health"]) == 0
    assert "revoked 1 token" in capsys.readouterr().out
    assert await asyncio.to_thread(main, ["token", "revoke", "999999"]) == 1
