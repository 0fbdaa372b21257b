"""Bad input never breaks anything: forged buttons, lone surrogates, huge numbers, odd JSON.

Each gets the polite answer in the person's language; nothing raises, nothing unencodable
reaches the database or the log.
"""

from __future__ import annotations

import itertools
import logging

import pytest
from sqlalchemy import select

from conversations.engine import Engine
from conversations.protocol import Inbound
from conversations.text import without_controls
from storage.models import Case
from tests.test_dialogs_resident import report_transcript, start

PREFIXES = ["menu", "staff", "input", "edit", "case", "resume", "place", "photos", "wylie", "profile", "page",
            "outcome", "lang", "rate", "matter", "act", "residents", "rating", "phone", "nav", "grid", "describe",
            "confirm", "comment", "cases", "address", "nonsense"]
FORGED = ["", "²", "٣", "99999999999999999999", "-1", "LS-20261201-99999999999999999999", "\ud800", "x" * 60,
          "1e309", "0x10", "../../etc", "%s%s", "\x00"]


def test_lone_surrogates_are_cleaned():
    assert without_controls("路灯\ud800坏了\udfff") == "路灯坏了"
    assert without_controls("ok 👍") == "ok 👍"  # real pairs stay


@pytest.mark.parametrize("language", ["zh", "bo"])
async def test_forged_buttons_get_the_polite_answer_in_the_persons_language(demo, language, caplog):
    engine = Engine(demo)
    chat = await start(engine, f"forger-{language}", language)
    update_ids = itertools.count(1)
    with caplog.at_level(logging.INFO):
        for prefix, value in itertools.product(PREFIXES, FORGED):
            replies = await engine.handle(chat.sender, Inbound.press(f"{prefix}:{value}"), update_id=next(update_ids))
            assert replies, f"{prefix}:{value!r} got no answer"
            text = "\n".join(reply.text for reply in replies)
            assert "\ud800" not in text
        # In the middle of a report too.
        await chat.run(report_transcript(language)[:4])
        for value in FORGED:
            replies = await engine.handle(chat.sender, Inbound.press(f"page:{value}"), update_id=next(update_ids))
            assert replies
    assert "\ud800" not in caplog.text


async def test_a_description_with_a_lone_surrogate_is_filed_without_it(demo):
    engine = Engine(demo)
    chat = await start(engine, "surrogate", "zh")
    steps = report_transcript("zh")
    steps[2] = ("楼下的路灯\ud800已经坏了三天，晚上很黑。", steps[2][1])
    await chat.run(steps)
    async with demo() as session:
        case = await session.scalar(select(Case))
    assert case is not None and "\ud800" not in case.description and "路灯" in case.description


@pytest.mark.parametrize("url", ["sqlite+aiosqlite:////nonexistent-dir/db.sqlite3",
                                 "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"])
async def test_a_database_outage_is_a_503_with_retry_after_and_one_log_line(aiohttp_client, tmp_path, url, caplog):
    from bot.runtime import Runtime
    from bot.settings import Settings
    from bot.web import security
    from bot.web.app import create_app
    from storage.db import make_engine, make_sessionmaker

    security.OUTAGE.since = None  # a new outage (the other parametrisation had one)
    engine = make_engine(url)
    sessionmaker = make_sessionmaker(engine)
    settings = Settings(database_url=url, attachments_dir=str(tmp_path), telegram_token=None, dispatcher=False)
    client = await aiohttp_client(create_app(Runtime(settings, engine, sessionmaker, Engine(sessionmaker))))
    message = {"client_id": "a" * 32, "message_id": "m1", "message": {"kind": "text", "text": "你好"}}
    with caplog.at_level(logging.INFO):
        for path, kwargs in [("/chat/send", {"json": message}), ("/open311/v2/requests.json", {}),
                             ("/api/cases", {"headers": {"Authorization": "Bearer x"}}), ("/notice/G1", {})] * 3:
            method = client.post if path == "/chat/send" else client.get
            response = await method(path, **kwargs)
            assert response.status == 503, (path, response.status, await response.text())
            assert response.headers["Retry-After"] == "5"
    await engine.dispose()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "database unreachable" in errors[0].getMessage()
    assert "Traceback" not in caplog.text


NASTY = ["", "²", "٣", "99999999999999999999", "-99999999999999999999", "1e309", "NaN", "\ud800", "\x00", "路灯",
         "ལམ་སྒྲོན", "LS-20261201-99999999999999999999", "' OR 1=1 --", "%00", "../", "x" * 5000, "[]", "{}", "null"]


def raw_query(name: str, value) -> str:
    """A query string carrying any bytes, lone surrogates included (as a misbehaving client sends them)."""
    from urllib.parse import quote_from_bytes

    return f"{name}={quote_from_bytes(str(value)[:200].encode('utf-8', 'surrogatepass'))}"


def fuzz_value(rng):
    pick = rng.random()
    if pick < 0.5:
        return rng.choice(NASTY)
    if pick < 0.6:
        return rng.randint(-2**70, 2**70)
    if pick < 0.7:
        return [fuzz_value(rng)] if rng.random() < 0.7 else None
    if pick < 0.8:
        return {rng.choice(["kind", "text", "data", "latitude"]): fuzz_value(rng)}
    if pick < 0.9:
        return rng.choice([True, False, None, 1.5, -0.0])
    return "".join(chr(rng.choice([rng.randint(0, 0x2FFFF), rng.randint(0xD800, 0xDFFF)])) for _ in range(rng.randint(1, 20)))


async def test_fuzzed_requests_never_get_a_5xx(aiohttp_client, demo, tmp_path):
    """A few hundred malformed requests across the web chat, the case API and Open311: 4xx, never 5xx."""
    import json
    import random

    from bot.runtime import Runtime
    from bot.settings import Settings
    from bot.web.app import create_app
    from bot.web.security import ChatLimits
    from storage import api_tokens

    settings = Settings(database_url="(test)", attachments_dir=str(tmp_path), telegram_token=None, dispatcher=False)
    limits = ChatLimits(client_burst=10_000, ip_burst=10_000, ip_per_second=10_000)
    app = create_app(Runtime(settings, demo.kw["bind"], demo, Engine(demo)), chat_limits=limits)
    client = await aiohttp_client(app)
    from bot.web import api, open311
    from bot.web.security import RateLimiter

    client.app[api.CASE_API].limiter = RateLimiter(10_000, 10_000)
    client.app[open311.OPEN311].reads = RateLimiter(10_000, 10_000)
    client.app[open311.OPEN311].posts = RateLimiter(10_000, 10_000)
    async with demo.begin() as session:
        person = await api_tokens.find_person(session, "demo-centre-gesang")
        _, token = await api_tokens.create_token(session, person.id, "fuzz")
    rng = random.Random(8400)
    statuses = []
    for attempt in range(300):
        kind = attempt % 6
        if kind == 0:
            body = {"client_id": rng.choice(["a" * 32, fuzz_value(rng)]), "message_id": rng.choice([f"m{attempt}", fuzz_value(rng)]),
                    "message": rng.choice([{"kind": rng.choice(["text", "button", "location", "contact"]),
                                            "text": fuzz_value(rng), "data": fuzz_value(rng), "latitude": fuzz_value(rng),
                                            "longitude": fuzz_value(rng), "phone": fuzz_value(rng)}, fuzz_value(rng)])}
            raw = json.dumps(body, ensure_ascii=True).encode() if rng.random() < 0.9 else b"[" * 15_000
            response = await client.post("/chat/send", data=raw, headers={"Content-Type": "application/json"})
        elif kind == 1:
            query = raw_query(rng.choice(["state", "limit", "offset", "grid", "q", "since"]), fuzz_value(rng))
            response = await client.get(f"/api/cases?{query}", headers={"Authorization": f"Bearer {token}"})
        elif kind == 2:
            raw = json.dumps({rng.choice(["department", "reason", "hours", "note"]): fuzz_value(rng)}).encode()
            response = await client.post(f"/api/cases/{rng.choice(['LS-20261201-0001', '99999999999999999999', '²'])}"
                                         f"/actions/{rng.choice(['accept', 'transfer', 'extend_deadline', 'x'])}",
                                         data=raw, headers={"Authorization": f"Bearer {token}",
                                                            "Content-Type": "application/json"})
        elif kind == 3:
            fields = [raw_query(key, fuzz_value(rng)) for key in rng.sample(
                ["service_code", "description", "lat", "long", "address_id", "phone"], 4)]
            fields.append(f"api_key={token}" if rng.random() < 0.7 else raw_query("api_key", fuzz_value(rng)))
            response = await client.post("/open311/v2/requests.json", data="&".join(fields).encode(),
                                         headers={"Content-Type": "application/x-www-form-urlencoded",
                                                  **({"Idempotency-Key": f"k{rng.randint(0, 3)}"} if rng.random() < 0.3 else {})})
        elif kind == 4:
            query = raw_query(rng.choice(["service_code", "start_date", "end_date", "status", "page", "page_size"]),
                              fuzz_value(rng))
            response = await client.get(f"/open311/v2/requests.json?{query}")
        else:
            response = await client.get(f"/chat/inbox?client_id={'a' * 32}&{raw_query('after', fuzz_value(rng))}")
        statuses.append((response.status, kind))
        assert response.status < 500, (kind, response.status, await response.text())
    assert any(status == 200 for status, _ in statuses) and any(400 <= status < 500 for status, _ in statuses)
