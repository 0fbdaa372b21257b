"""One person's quick updates arriving at two instances, alternately and out of order, are
applied in update order; a crash between the case and its answer still gets the number to
the person, at once; a reused update id never shows one person another's answer.

Two instances: two front doors with their own engines (connection pools) on one database,
each behind its own webhook URL, against `FakeBotApi`.
"""

from __future__ import annotations

import asyncio
import random
import re

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.runtime import Runtime
from bot.settings import Settings
from bot.telegram.adapter import SECRET_HEADER, TelegramFrontDoor
from conversations.engine import Engine
from storage.db import make_engine, make_sessionmaker
from storage.models import Case, Identity, ProcessedUpdate
from tests.telegram_emulator import FakeBotApi, update_json
from tests.test_dialogs_resident import DESCRIPTIONS, GRID_POINT, STREET_LIGHT

TOKEN = "4343:FAKE-order"
SECRET = "order-Secret_1"
CASE_NUMBER = re.compile(r"LS-\d{8}-\d{4}")
# The confirmation that carries the new case's number (the summary may also name a nearby case).
CONFIRMATION = re.compile(r"您的上报已提交。事件编号：LS-\d{8}-\d{4}")
ORDER_WINDOW = 0.15  # how long a later update waits for an earlier one; updates here come 0-15 ms apart


def report_updates(user_id: int, first_id: int) -> list[dict]:
    """A whole report as Telegram updates, ids consecutive."""
    steps = [
        dict(text="/start", entities=[{"type": "bot_command", "offset": 0, "length": 6}]),
        dict(data="lang:zh"),
        dict(data="menu:report"),
        dict(data=f"matter:{STREET_LIGHT}"),
        dict(text=DESCRIPTIONS["zh"]),
        dict(location={"latitude": GRID_POINT[0], "longitude": GRID_POINT[1]}),
        dict(data="address:skip"),
        dict(data="photos:done"),
        dict(data="phone:anonymous"),
        dict(data="confirm:submit"),
    ]
    return [update_json(first_id + index, user_id, **step) for index, step in enumerate(steps)]


class Instance:
    def __init__(self, sessionmaker, api: FakeBotApi, tmp_path):
        settings = Settings(database_url="(test)", telegram_token=TOKEN, telegram_api_base_url=api.base_url,
                            telegram_webhook_url="https://bot.example.org/telegram/webhook",
                            telegram_webhook_secret=SECRET, attachments_dir=str(tmp_path))
        self.runtime = Runtime(settings, sessionmaker.kw["bind"], sessionmaker, Engine(sessionmaker))
        self.door = TelegramFrontDoor(self.runtime, rate_limiter=False, order_window=ORDER_WINDOW)
        self.app = web.Application()

    async def start(self) -> Instance:
        await self.door.start(self.app)
        self.client = TestClient(TestServer(self.app))
        await self.client.start_server()
        return self

    async def post(self, update: dict) -> int:
        async with self.client.post("/telegram/webhook", json=update, headers={SECRET_HEADER: SECRET}) as response:
            return response.status

    async def stop(self) -> None:
        await self.door.stop()
        await self.client.close()
        await self.runtime.close()


@pytest.fixture
async def two_instances(demo, tmp_path):
    api = await FakeBotApi().start()
    url = demo.kw["bind"].url.render_as_string(hide_password=False)
    instances = [await Instance(demo, api, tmp_path).start(),
                 await Instance(make_sessionmaker(make_engine(url)), api, tmp_path).start()]
    yield instances, api
    for instance in instances:
        await instance.stop()
    await api.stop()


def texts_to(api: FakeBotApi, chat: int) -> list[str]:
    return [params.get("text", "") for params in api.called("sendMessage") if params.get("chat_id") == str(chat)]


async def test_quick_updates_alternating_between_two_instances_are_applied_in_order(demo, two_instances):
    instances, api = two_instances
    rng = random.Random(10)
    people = [7101, 7102, 7103]

    async def resident(index: int, user_id: int) -> list[int]:
        updates = report_updates(user_id, 10_000 * (index + 1))
        order = list(range(len(updates)))
        for i in range(0, len(order) - 1, 3):  # every third pair arrives later one first
            order[i], order[i + 1] = order[i + 1], order[i]
        posts = []
        for position in order:
            posts.append(asyncio.create_task(instances[position % 2].post(updates[position])))
            await asyncio.sleep(rng.uniform(0, 0.015))
        return await asyncio.gather(*posts)

    statuses = await asyncio.gather(*(resident(i, user_id) for i, user_id in enumerate(people)))
    assert all(status == 200 for person in statuses for status in person)

    async with demo() as session:
        reporters = {
            int(external): count for external, count in (await session.execute(
                select(Identity.external_id, func.count(Case.id)).join(Case, Case.reporter_id == Identity.person_id)
                .where(Identity.platform == "telegram").group_by(Identity.external_id)
            )).all()
        }
        waiting = await session.scalar(select(func.count()).select_from(ProcessedUpdate)
                                       .where(ProcessedUpdate.processed_at.is_(None)))
    assert reporters == {user_id: 1 for user_id in people}  # every report filed, once
    assert waiting == 0
    for user_id in people:
        assert len(CONFIRMATION.findall("\n".join(texts_to(api, user_id)))) == 1  # the number reached them once


async def test_a_case_committed_but_not_answered_is_answered_at_once_on_redelivery(demo, two_instances):
    """kill -9 after the case was committed, before its answer left: Telegram delivers the update
    again (to either instance) and the stored answer goes out at once, with no waiting period."""
    instances, api = two_instances
    updates = report_updates(7201, 20_000)
    for update in updates[:-1]:
        assert await instances[0].post(update) == 200
    api.fail["sendMessage"] = (502, {"ok": False, "error_code": 502, "description": "Bad Gateway"})
    assert await instances[0].post(updates[-1]) == 500  # filed, but its answer did not leave: deliver it again
    del api.fail["sendMessage"]
    failed = len(texts_to(api, 7201))
    async with demo() as session:
        assert await session.scalar(select(func.count()).select_from(Case)) == 1
    assert await instances[1].post(updates[-1]) == 200  # the redelivery, elsewhere, at once
    assert len(CONFIRMATION.findall("\n".join(texts_to(api, 7201)[failed:]))) == 1
    assert await instances[0].post(updates[-1]) == 200  # once confirmed, a further copy sends nothing
    assert len(CONFIRMATION.findall("\n".join(texts_to(api, 7201)[failed:]))) == 1
    async with demo() as session:
        assert await session.scalar(select(func.count()).select_from(Case)) == 1


async def test_a_reused_update_id_never_shows_another_persons_answer(demo, two_instances):
    instances, api = two_instances
    for update in report_updates(7301, 30_000):
        assert await instances[0].post(update) == 200
    number = CASE_NUMBER.search("\n".join(texts_to(api, 7301))).group()
    # The same update id from someone else (a forged update, or Telegram's sequence started again).
    forged = update_json(30_000 + 9, 7302, data="confirm:submit")
    assert await instances[1].post(forged) == 200
    assert number not in "\n".join(texts_to(api, 7302))
    assert texts_to(api, 7302)  # they got their own answer: the start of their own conversation
