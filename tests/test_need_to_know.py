"""Need-to-know, everywhere (Art. 19): the whole matrix, generated from the one reading rule and the lifecycle.

Every reader × every field and note kind × in scope / out of scope × chat card, API item, API list
and Open311, for a matter about particular people and one that is not; and every reader × every
lifecycle action × every state. The expectations come from storage.reading.RULE and
storage.lifecycle.TRANSITIONS, so a new field, reader, note kind or trigger is covered at once;
`test_the_rule_never_widens` pins the rule itself, so that widening any cell fails by name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from bot.runtime import Runtime
from bot.settings import Settings
from bot.web.app import create_app
from conversations.dialogs.staff import ACTION_BUTTONS
from conversations.engine import Engine, Sender
from conversations.protocol import Inbound
from storage import api_tokens, lifecycle
from storage.cases import CaseStore
from storage.lifecycle import ANY_STATE, BY_TRIGGER, STATES, TRANSITIONS, refused_guard, roles_for
from storage.models import Attachment, Case, CaseEvent, Department, Matter, Node, Person, Role
from storage.people import grant_role, person_for_identity
from storage.reading import (
    FIELDS,
    INTERNAL,
    NOTE_FIELD,
    NOTE_KINDS,
    READERS,
    RULE,
    STAFF_ONLY_STEPS,
    Level,
    Reader,
    mask_personal_data,
    mask_phone,
    reading_as,
)
from storage.timeutil import utcnow

G01 = "5401-D1-01-01-G01"  # 格桑街道 › 朗赛社区
OTHER_GRID = "5401-D1-02-01-G01"  # 德吉乡: another township
PLAIN_MATTER = "GM-0301"  # street lights: urban management
PEOPLE_MATTER = "GM-0703"  # public health: about particular people
OTHER_DEPARTMENT = "justice"

# What each field holds in the test cases: a marker and, where it is text, a phone number of its own,
# so that "full", "masked" and "hidden" are told apart in any output.
PHONE = "13912345678"
LAT, LON = 29.65583, 91.12207
VALUES = {
    "description": "DESC-MARK 13900000001",
    "address": "ADDR-MARK 13900000002",
    "reporter_name": "NAME-MARK",
    "concerned_residents": "CONC-MARK 13900000003",
    "result": "RESULT-MARK 13900000004",
    "rejection_reason": "REJECT-MARK 13900000005",
    "satisfaction_comment": "SATCOM-MARK 13900000006",
}
PUBLIC_TEXT = "PUBLIC-MARK 13900000007"
PHOTO_FILE_ID = "PHOTO-MARK"
EXTRA_ACTIONS = ("remind", "urge", "escalate_overdue", "verification_overdue", "request_extension",
                 "approve_extension", "refuse_extension", "return_to_centre", "withdraw")  # CONTRACT-9 events

# Which fields each output carries at all (the others must never appear there).
RESIDENT_CARD = {"result", "rejection_reason", "note_public", "note_resident", "note_internal", "internal_steps"}
CARRIES = {
    "chat": {"description", "address", "location", "reporter_name", "phone", "concerned_residents", "photos", "result",
             "rejection_reason", "note_public", "note_resident", "note_internal", "internal_steps"},
    "api": set(FIELDS),
    "api_list": {"description"},
    "open311": {"description", "location", "note_public"},
}


def note_of(action: str, index: int) -> str:
    return f"NOTE-{action} 1380000{index:04d}"


def timeline_actions() -> list[str]:
    """Every step a case's timeline can hold but the report itself: the rule's, the lifecycle's, issue 9's."""
    return sorted((set(NOTE_KINDS) | set(BY_TRIGGER) | set(EXTRA_ACTIONS)) - {"report"})


# ---------------------------------------------------------------- the world


@dataclass
class Person_:
    id: int
    web_id: str
    token: str


async def _person(session, web_id: str, *, name: str | None = None) -> Person:
    person, _ = await person_for_identity(session, "web", web_id, language="zh", display_name=name)
    person.language_chosen = True
    await session.flush()
    return person


async def _staff(session, web_id: str, reader: Reader, grid: Node, township: Node, department: Department):
    person = await _person(session, web_id, name=f"STAFF-{web_id}")
    role = Role(reader.value)
    if role == Role.department_handler:
        await grant_role(session, person.id, role, department_id=department.id)
    elif role == Role.centre_staff:
        await grant_role(session, person.id, role, node_id=township.id)
    else:
        await grant_role(session, person.id, role, node_id=grid.id)
    return person


@pytest.fixture
async def world(demo, aiohttp_client):
    """Readers of every kind in scope and out of scope; the web app; a chat engine."""
    sessionmaker = demo
    async with sessionmaker.begin() as session:
        nodes = {n.code: n for n in await session.scalars(select(Node))}
        departments = {d.code: d for d in await session.scalars(select(Department))}
        readers: dict[tuple[Reader, bool], Person_] = {}
        reporter = await _person(session, "ntk-reporter", name=VALUES["reporter_name"])
        outsider = await _person(session, "ntk-other-resident", name="OTHER-RESIDENT")
        for reader in READERS:
            if reader in (Reader.reporter, Reader.public):
                continue
            inside = await _staff(session, f"ntk-in-{reader.value}", reader, nodes[G01],
                                  nodes[G01.rsplit("-", 2)[0]], departments["urban_management"])
            outside = await _staff(session, f"ntk-out-{reader.value}", reader, nodes[OTHER_GRID],
                                   nodes[OTHER_GRID.rsplit("-", 2)[0]], departments[OTHER_DEPARTMENT])
            readers[(reader, True)], readers[(reader, False)] = inside, outside
        readers[(Reader.reporter, True)], readers[(Reader.reporter, False)] = reporter, outsider
        tokens = {}
        for key, person in readers.items():
            _, tokens[key] = await api_tokens.create_token(session, person.id, "matrix")
        handler_health = await _staff(session, "ntk-in-health", Reader.department_handler, nodes[G01],
                                      nodes[G01.rsplit("-", 2)[0]], departments["health"])
        _, health_token = await api_tokens.create_token(session, handler_health.id, "matrix")
    people = {k: Person_(p.id, f"ntk-{'in' if k[1] else 'out'}-{k[0].value}" if k[0] != Reader.reporter
                         else ("ntk-reporter" if k[1] else "ntk-other-resident"), tokens[k]) for k, p in readers.items()}
    people[("health", True)] = Person_(handler_health.id, "ntk-in-health", health_token)
    runtime = Runtime(Settings(), sessionmaker.kw["bind"], sessionmaker, Engine(sessionmaker))
    client = await aiohttp_client(create_app(runtime))
    return client, runtime, people


async def make_case(sessionmaker, people, matter_code: str, *, state: str = "in_progress") -> Case:
    """A case with every field filled, in `state`, with its matter's department, and a step of every kind."""
    store = CaseStore(sessionmaker)
    case = await store.open_case(
        reporter_id=people[(Reader.reporter, True)].id, matter_code=matter_code, description=VALUES["description"],
        language="zh", latitude=LAT, longitude=LON, address=VALUES["address"], contact_phone=PHONE,
        concerned_residents=VALUES["concerned_residents"],
    )
    async with sessionmaker.begin() as session:
        case = await session.get_one(Case, case.id)
        matter = await session.get_one(Matter, case.matter_id)
        case.state = state
        case.department_id = matter.department_id
        case.result_text = VALUES["result"]
        case.rejection_reason = VALUES["rejection_reason"]
        case.satisfaction_comment = VALUES["satisfaction_comment"]
        case.public_text = PUBLIC_TEXT
        case.published_at = utcnow()
        session.add(Attachment(case_id=case.id, platform="web", platform_file_id=PHOTO_FILE_ID, size=10,
                               content_type="image/jpeg"))
        for index, action in enumerate(timeline_actions()):
            session.add(CaseEvent(case_id=case.id, actor_id=None, actor_role="centre_staff", action=action,
                                  from_state=state, to_state=state, note=note_of(action, index),
                                  data={"reason": f"DATA-{action}~", "deadline": "2026-12-02T10:00:00+08:00"}))
    async with sessionmaker() as session:
        return await session.scalar(select(Case).where(Case.id == case.id))


# ---------------------------------------------------------------- reading the outputs


async def chat_output(runtime, person: Person_, number: str) -> str:
    sender = Sender(platform="web", external_id=person.web_id, chat_id=person.web_id)
    replies = await runtime.engine.handle(sender, Inbound.press(f"case:{number}"))
    return "\n".join(r.text + " " + " ".join(r.button_data()) + " " + " ".join(r.photo_file_ids or [])
                     + " " + " ".join(m.get("file_id") or "" for m in r.media or []) for r in replies)


async def api_output(client, person: Person_, number: str) -> tuple[int, dict | None]:
    response = await client.get(f"/api/cases/{number}", headers={"Authorization": f"Bearer {person.token}"})
    return response.status, await response.json()


async def api_list_output(client, person: Person_, number: str) -> dict | None:
    response = await client.get("/api/cases", headers={"Authorization": f"Bearer {person.token}"},
                                params={"limit": 200})
    assert response.status == 200
    return next((c for c in (await response.json())["cases"] if c["number"] == number), None)


async def open311_output(client, number: str) -> dict:
    response = await client.get(f"/open311/v2/requests/{number}.json")
    assert response.status == 200
    [row] = await response.json()
    return row


def field_shown(text: str, field: str, case: Case) -> Level:
    """How much of one field an output shows (from its markers)."""
    if field == "phone":
        return Level.full if PHONE in text else Level.masked if mask_phone(PHONE) in text else Level.hidden
    if field == "location":
        return Level.full if str(LAT) in text else Level.masked if str(round(LAT, 3)) in text else Level.hidden
    if field == "photos":
        return Level.full if PHOTO_FILE_ID in text or '"content_type": "image/jpeg"' in text else Level.hidden
    if field == "description":
        # Staff and the reporter read the resident's words; the public at most the published wording, masked.
        if VALUES["description"] in text:
            return Level.full
        return Level.masked if mask_personal_data(PUBLIC_TEXT) in text and PUBLIC_TEXT not in text else Level.hidden
    if field.startswith("note_") or field == "internal_steps":
        raise AssertionError("notes are checked per step")
    raw = VALUES[field]
    if raw in text:
        return Level.full
    marker = raw.split()[0]
    return Level.masked if marker in text else Level.hidden


def carries(channel: str, reader: Reader) -> set[str]:
    if channel == "chat" and reader == Reader.reporter:
        return RESIDENT_CARD  # the resident's own card: its state, results, reasons and timeline
    return CARRIES[channel]


def expected(field: str, reader: Reader, case: Case, channel: str) -> Level:
    if field not in carries(channel, reader):
        return Level.hidden
    found = reading_as(case, reader).level(field)
    if field == "description" and reader == Reader.public and not case.public_text:
        return Level.hidden
    return found


def step_expectation(reader: Reader, case: Case, action: str, channel: str) -> tuple[bool, Level]:
    """(is the step shown, how much of its note) for this reader, from the rule."""
    reading = reading_as(case, reader)
    kind = NOTE_KINDS.get(action, INTERNAL)
    staff_only = action in STAFF_ONLY_STEPS or action not in NOTE_KINDS
    shown = not (staff_only and reading.level("internal_steps") == Level.hidden)
    level = reading.level(NOTE_FIELD[kind])
    if NOTE_FIELD[kind] not in carries(channel, reader):
        level = Level.hidden
    return shown, (level if shown else Level.hidden)


def note_shown(text: str, action: str, index: int) -> Level:
    raw = note_of(action, index)
    if raw in text:
        return Level.full
    return Level.masked if mask_personal_data(raw) in text else Level.hidden


# ---------------------------------------------------------------- the matrix


@pytest.mark.parametrize("matter_code", [PLAIN_MATTER, PEOPLE_MATTER])
async def test_every_reader_reads_every_field_as_the_rule_says(world, matter_code):
    client, runtime, people = world
    case = await make_case(runtime.sessionmaker, people, matter_code)
    if matter_code == PEOPLE_MATTER:
        # The handling department of a public-health case is the health commission.
        people = {**people, (Reader.department_handler, True): people[("health", True)]}
    actions = timeline_actions()
    cells = 0
    for reader in READERS:
        for in_scope in ((True,) if reader == Reader.public else (True, False)):
            where = f"{matter_code} {reader.value} {'in' if in_scope else 'out of'} scope"
            if reader == Reader.public:
                outputs = {"open311": json.dumps(await open311_output(client, case.number), ensure_ascii=False)}
            else:
                person = people[(reader, in_scope)]
                status, detail = await api_output(client, person, case.number)
                listed = await api_list_output(client, person, case.number)
                chat = await chat_output(runtime, person, case.number)
                if not in_scope:
                    # Out of scope: answers exactly like a missing case, everywhere.
                    assert status == 404 and detail["error"]["code"] == "not_found", where
                    assert listed is None, where
                    assert "DESC-MARK" not in chat and "NOTE-" not in chat and PHONE not in chat, where
                    cells += len(FIELDS) * 3
                    continue
                assert status == 200 and listed is not None, where
                outputs = {"api": json.dumps(detail, ensure_ascii=False),
                           "api_list": json.dumps(listed, ensure_ascii=False), "chat": chat}
            for channel, text in outputs.items():
                for field in FIELDS:
                    if field.startswith("note_") or field == "internal_steps":
                        continue
                    want = expected(field, reader, case, channel)
                    assert field_shown(text, field, case) == want, f"{where}, {channel}: {field} should be {want.name}"
                    cells += 1
                if channel == "api_list":
                    continue
                public_notes = [a for a in actions if NOTE_KINDS.get(a) == "public" and a != "publish"]
                latest = max(public_notes, key=actions.index)  # Open311 shows the latest public note only
                for index, action in enumerate(actions):
                    shown, want = step_expectation(reader, case, action, channel)
                    if channel == "open311" and action != latest:
                        want = Level.hidden
                    assert note_shown(text, action, index) == want, f"{where}, {channel}: note of {action} should be {want.name}"
                    if channel == "api":
                        assert (f"DATA-{action}~" in text) == (want != Level.hidden), f"{where}, {channel}: data of {action}"
                        assert (action in [e["action"] for e in detail["timeline"]]) == shown, f"{where}: step {action}"
                    else:
                        assert f"DATA-{action}~" not in text, f"{where}, {channel}: data of {action}"
                    cells += 1
    assert cells > 500


async def test_every_reader_may_take_exactly_the_actions_of_the_lifecycle_table(world):
    """Reader × action × state, from TRANSITIONS: the API's list, the chat's buttons, and refusals that change nothing."""
    client, runtime, people = world
    by_state = {state: await make_case(runtime.sessionmaker, people, PLAIN_MATTER, state=state) for state in STATES}
    sensitive = await make_case(runtime.sessionmaker, people, PEOPLE_MATTER, state="accepted")
    people_in_health = {**people, (Reader.department_handler, True): people[("health", True)]}
    inputs = {"reason": "x", "result": "x", "note": "x", "department": "urban_management", "hours": 24,
              "rating": "satisfied", "public_text": "x"}

    def inputs_for(trigger: str) -> dict:
        return {n: inputs[n] for n in BY_TRIGGER[trigger].get("needs", []) if n in inputs}

    def may(reader: Reader, trigger: str, case: Case) -> bool:
        row = BY_TRIGGER[trigger]
        if row["source"] != ANY_STATE and case.state not in row["source"]:
            return False
        if refused_guard(trigger, case, utcnow()) is not None:  # e.g. publish, never for matters about people
            return False
        roles = roles_for(trigger, case.matter.needs_onsite_verification)
        role = Role.resident if reader == Reader.reporter else Role(reader.value)
        return role in roles

    readers = [r for r in READERS if r != Reader.public]
    for case, who in [*((c, people) for c in by_state.values()), (sensitive, people_in_health)]:
        for reader in readers:
            person = who[(reader, True)]
            response = await client.get(f"/api/cases/{case.number}/actions", headers={"Authorization": f"Bearer {person.token}"})
            listed = [a["action"] for a in (await response.json())["actions"]]
            want = [t["trigger"] for t in TRANSITIONS if may(reader, t["trigger"], case)]
            assert listed == want, f"{reader.value} on a {case.state} {case.matter.code} case"
            chat = await chat_output(runtime, person, case.number)
            buttons = sorted(t for t in ACTION_BUTTONS if f"act:{case.number}:{t}" in chat)
            if reader != Reader.reporter:
                assert buttons == sorted(t for t in want if t in ACTION_BUTTONS), f"chat: {reader.value} on {case.state}"
            else:
                assert buttons == [], "a reporter's own card has no staff buttons"
            if case.state == STATES[0]:
                outsider = people[(reader, False)]
                response = await client.get(f"/api/cases/{case.number}/actions",
                                            headers={"Authorization": f"Bearer {outsider.token}"})
                assert response.status == 404

    # Refusals: one POST per reader and action where the table says no; nothing changes.
    async with runtime.sessionmaker() as session:
        before = {c.id: c.version for c in await session.scalars(select(Case))}
        events_before = len(list(await session.scalars(select(CaseEvent.id))))
    for reader in readers:
        for trigger in BY_TRIGGER:
            allowed_roles = roles_for(trigger, True) + roles_for(trigger, False)
            role = Role.resident if reader == Reader.reporter else Role(reader.value)
            if role in allowed_roles:
                # Right role, wrong state (where the action has a source to be outside of).
                source = BY_TRIGGER[trigger]["source"]
                wrong = [s for s in STATES if source != ANY_STATE and s not in source]
                if not wrong:
                    continue
                case, status = by_state[wrong[0]], {409, 403}
            else:
                case, status = by_state[STATES[0]], {403}
            needs = inputs_for(trigger)
            person = people[(reader, True)]
            response = await client.post(f"/api/cases/{case.number}/actions/{trigger}", json=needs,
                                         headers={"Authorization": f"Bearer {person.token}"})
            assert response.status in status, f"{reader.value} {trigger} on {case.state}: {await response.text()}"
        # Out of scope, even an action the role could take elsewhere answers like a missing case.
        own = next((t["trigger"] for t in TRANSITIONS if may(reader, t["trigger"], by_state[STATES[0]])), "comment")
        outsider = people[(reader, False)]
        response = await client.post(f"/api/cases/{by_state[STATES[0]].number}/actions/{own}", json=inputs_for(own),
                                     headers={"Authorization": f"Bearer {outsider.token}"})
        assert response.status == 404, f"{reader.value} (out of scope) {own}"
    async with runtime.sessionmaker() as session:
        assert {c.id: c.version for c in await session.scalars(select(Case))} == before
        assert len(list(await session.scalars(select(CaseEvent.id)))) == events_before


# ---------------------------------------------------------------- the rule itself


# The rule as reviewed (issue 11). Narrowing a cell is fine (update this table); widening one fails here.
#                          reporter worker part-time chief instructor centre department public ; "x/y": normal/about people
REVIEWED = {
    "description":          "F F F/H F F F F M/H",
    "address":              "F F F/H F F F F H",
    "location":             "F F F/H F F F F M/H",
    "reporter_name":        "F F H F H H F H",
    "phone":                "F F M F M M F H",
    "concerned_residents":  "F F H F H H F H",
    "photos":               "F F F/H F F F F H",
    "result":               "F F F/H F F F F M/H",
    "rejection_reason":     "F F F/H F F F F M/H",
    "satisfaction_comment": "F F F/H F F F F H",
    "note_public":          "F F F/H F F F F M/H",
    "note_resident":        "F F F/H F F F F H",
    "note_internal":        "H F F/H F F F F H",
    "internal_steps":       "H F F F F F F H",
}
REVIEWED_ORDER = [Reader.reporter, Reader.grid_worker, Reader.grid_worker_part_time, Reader.grid_chief,
                  Reader.grid_instructor, Reader.centre_staff, Reader.department_handler, Reader.public]
LETTERS = {"F": Level.full, "M": Level.masked, "H": Level.hidden}
# Steps whose notes residents may read; anything else is internal to staff.
REVIEWED_NOT_INTERNAL = {"report": "resident", "reject": "public", "submit_result": "public", "verify_pass": "public",
                         "resolve_on_spot": "public", "publish": "public", "rate": "resident", "reopen": "resident",
                         "withdraw": "resident", "add_to_case": "resident", "resubmit": "resident",
                         "reply_to_resident": "resident", "merge": "public", "merged_in": "public"}


def test_the_rule_never_widens():
    assert set(RULE) == set(REVIEWED), "a field was added or removed: review it and add it to REVIEWED"
    assert set(READERS) == set(REVIEWED_ORDER), "a reader was added: review its column"
    widened = []
    for field, cells in REVIEWED.items():
        for reader, cell in zip(REVIEWED_ORDER, cells.split(), strict=True):
            normal, _, people = cell.partition("/")
            allowed = (LETTERS[normal], LETTERS[people or normal])
            if RULE[field][reader][0] > allowed[0] or RULE[field][reader][1] > allowed[1]:
                widened.append((field, reader.value))
    assert not widened, f"the reading rule was widened: {widened}"
    for action, kind in NOTE_KINDS.items():
        if kind in ("public", "resident"):
            assert REVIEWED_NOT_INTERNAL.get(action) == kind, f"the note of {action} was made readable to residents"
    assert {"comment", "prompt"} <= STAFF_ONLY_STEPS


def test_every_lifecycle_trigger_and_issue_9_event_is_classified():
    unclassified = sorted((set(BY_TRIGGER) | set(EXTRA_ACTIONS)) - set(NOTE_KINDS))
    assert not unclassified, f"classify these steps in storage.reading.NOTE_KINDS: {unclassified}"


def test_part_time_workers_neither_verify_nor_close():
    for trigger in ("verify_pass", "verify_fail", "resolve_on_spot"):
        for onsite in (True, False):
            assert Role.grid_worker_part_time not in roles_for(trigger, onsite)
            assert Role.grid_worker in roles_for(trigger, onsite)
    for trigger in ("relay_feedback", "comment"):
        assert Role.grid_worker_part_time in roles_for(trigger)
    assert Role.grid_worker_part_time in lifecycle.GRID_WORKERS  # they log patrol cases


def test_masking_personal_data_in_public_text():
    text = ("张三电话13912345678，座机0891-6331234，身份证540102199001011234，邮箱zhang.san@example.com，"
            "事件LS-20261124-0042，2026-11-24，༡༣༩༡༢༣༤༥༦༧༨")
    masked = mask_personal_data(text)
    for secret in ("13912345678", "6331234", "540102199001011234", "zhang.san@example.com", "༡༣༩༡༢༣༤༥༦༧༨"):
        assert secret not in masked, secret
    assert "LS-20261124-0042" in masked and "2026-11-24" in masked  # case numbers and dates stay
    assert "*********78" in masked and "***@***" in masked
