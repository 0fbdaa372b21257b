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
