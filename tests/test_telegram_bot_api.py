"""python-telegram-bot-level tests of the adapter against `FakeBotApi`, a minimal Bot API over
HTTP in this process (tests/telegram_emulator.py), with a stand-in engine.

They cover what the npm emulator cannot: it has no getFile (photo download with its
SHA-256 and size), no sendPhoto (`Reply.photo_file_ids`), no setMyCommands (the
per-language command menus), and it never answers 429 or 403 (RetryAfter → RetryLater,
Forbidden → Blocked). Also: each kind of update becomes the right `Inbound` and
`Sender`, the webhook's secret-token check, per-person ordering of updates.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from telegram import Update
from telegram.error import BadRequest

from bot.channels import Blocked, RetryLater
from bot.runtime import Runtime
from bot.settings import Settings
from bot.telegram.adapter import (
    COMMANDS,
    SECRET_HEADER,
    PerPersonUpdateProcessor,
    TelegramFrontDoor,
    command_menu,
    file_base_url,
    webhook_path,
)
from bot.telegram.channel import TelegramChannel
from conversations.i18n import translate
from conversations.engine import Replies
from conversations.protocol import Button, Reply
from sqlalchemy import select

from storage.models import ProcessedUpdate
from tests.telegram_emulator import FakeBotApi, update_json

TOKEN = "4242:FAKE-token"
SECRET = "right-Secret_1"


class FakeEngine:
    """Records what the adapter hands to the engine and answers with `replies`."""

    def __init__(self):
        self.calls = []
        self.confirmed = []
        self.replies: list[Reply] = [Reply("ok", [[Button("Menu", "menu:main")]])]

    async def answered(self, sender, update_id):
        self.confirmed.append(update_id)

    async def handle(self, sender, message, *, update_id=None):
        self.calls.append((sender, message, update_id))
        replies = Replies(self.replies)
        replies.dialog, replies.state = "report", "describe"
        return replies


@pytest.fixture
async def api():
    server = await FakeBotApi().start()
    yield server
    await server.stop()


def make_door(api: FakeBotApi, tmp_path: Path, sessionmaker=None, **settings) -> TelegramFrontDoor:
    """The front door with a stand-in engine; webhook tests give it a database (updates are stored on arrival)."""
    values = dict(database_url="(unused)", telegram_token=TOKEN, telegram_api_base_url=api.base_url,
                  telegram_webhook_url="https://bot.example.org/telegram/webhook", telegram_webhook_secret=SECRET,
                  attachments_dir=str(tmp_path / "attachments"), telegram_poll_interval=0.05)
    values.update(settings)
    db = sessionmaker.kw["bind"] if sessionmaker is not None else None
    runtime = Runtime(Settings(**values), db, sessionmaker, FakeEngine())
    return TelegramFrontDoor(runtime)


@pytest.fixture
async def door(api, tmp_path):
    front_door = make_door(api, tmp_path)
    await front_door.start(web.Application())
    yield front_door
    await front_door.stop()


async def feed(door: TelegramFrontDoor, payload: dict) -> None:
    await door.process(Update.de_json(payload, door.bot))


def test_file_url_and_webhook_path_follow_the_settings():
    assert file_base_url("http://127.0.0.1:9000/bot") == "http://127.0.0.1:9000/file/bot"
    assert file_base_url("https://api.telegram.org/bot") == "https://api.telegram.org/file/bot"
    assert webhook_path("https://x.example/telegram/webhook") == "/telegram/webhook"
    assert webhook_path("https://x.example") == "/telegram/webhook"


async def test_each_kind_of_update_becomes_an_inbound(door, api):
    engine = door.runtime.engine
    await feed(door, update_json(1, 501, text="路灯坏了"))
    await feed(door, update_json(2, 501, text="/start LS-20261124-0042", entities=[{"type": "bot_command", "offset": 0, "length": 6}]))
    await feed(door, update_json(3, 501, data="matter:GM-0301"))
    await feed(door, update_json(4, 501, location={"latitude": 29.6558, "longitude": 91.122}))
    await feed(door, update_json(5, 501, contact={"phone_number": "+8613812345678", "first_name": "王", "user_id": 501}))
    await feed(door, update_json(6, 501, sticker={"file_id": "s", "file_unique_id": "s", "type": "regular",
                                                  "width": 1, "height": 1, "is_animated": False, "is_video": False}))
    # Someone else's contact card is not the sender's phone number.
    await feed(door, update_json(7, 501, contact={"phone_number": "+8613900000000", "first_name": "李", "user_id": 999}))
    kinds = [(m.kind, m.text, m.command, m.argument, m.data, m.latitude, m.phone) for _, m, _ in engine.calls]
    assert kinds == [
        ("text", "路灯坏了", "", "", "", None, None),
        ("command", "/start LS-20261124-0042", "start", "LS-20261124-0042", "", None, None),
        ("button", "", "", "", "matter:GM-0301", None, None),
        ("location", "", "", "", "", 29.6558, None),
        ("contact", "", "", "", "", None, "+8613812345678"),
        ("text", "", "", "", "", None, None),
        ("text", "", "", "", "", None, None),
    ]
    sender = engine.calls[0][0]
    assert (sender.platform, sender.external_id, sender.chat_id, sender.language_code, sender.display_name) == (
        "telegram", "501", "501", "zh", "测试")
    assert [update_id for _, _, update_id in engine.calls] == [1, 2, 3, 4, 5, 6, 7]
    assert len(api.called("answerCallbackQuery")) == 1  # the button press was answered


async def test_group_chats_and_edited_messages_are_ignored(door):
    group = update_json(7, 502, text="hello")
    group["message"]["chat"] = {"id": -100, "type": "group", "title": "g"}
    await feed(door, group)
    edited = update_json(8, 502, text="changed")
    edited["edited_message"] = edited.pop("message")
    await feed(door, edited)
    assert door.runtime.engine.calls == []


async def test_photo_largest_size_is_downloaded_with_its_hash(door, api, tmp_path):
    """getFile and the file download: the emulator lacks getFile, so this path is tested here."""
    await feed(door, update_json(9, 503, photo=[
        {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 60, "file_size": 900},
        {"file_id": "large", "file_unique_id": "l", "width": 1280, "height": 960, "file_size": 99000},
        {"file_id": "medium", "file_unique_id": "m", "width": 320, "height": 240, "file_size": 9000},
    ]))
    (_, message, _), = door.runtime.engine.calls
    assert api.called("getFile")[0]["file_id"] == "large" and api.downloads == 1
    digest = hashlib.sha256(FakeBotApi.FILE_BYTES).hexdigest()
    assert (message.kind, message.photo_file_id, message.photo_sha256, message.photo_size) == (
        "photo", "large", digest, len(FakeBotApi.FILE_BYTES))
    assert message.photo_path == f"telegram/{digest[:2]}/{digest}.jpg"
    assert (tmp_path / "attachments" / message.photo_path).read_bytes() == FakeBotApi.FILE_BYTES


async def test_an_image_sent_as_a_file_counts_as_a_photo(door, api):
    await feed(door, update_json(10, 504, document={"file_id": "doc", "file_unique_id": "d", "mime_type": "image/png",
                                                     "file_name": "x.png", "file_size": 1234}))
    (_, message, _), = door.runtime.engine.calls
    assert message.kind == "photo" and message.photo_file_id == "doc"


async def test_without_get_file_the_file_id_is_kept(door, api):
    api.fail["getFile"] = (500, {"message": "API method 'getFile' is not supported."})
    await feed(door, update_json(11, 505, photo=[{"file_id": "only", "file_unique_id": "o", "width": 10, "height": 10,
                                                  "file_size": 77}]))
    (_, message, _), = door.runtime.engine.calls
    assert (message.photo_file_id, message.photo_path, message.photo_sha256, message.photo_size) == ("only", None, None, 77)
    assert len(api.called("sendMessage")) == 1  # and the person got an answer


async def test_replies_are_rendered_with_keyboards_and_photos(door, api):
    engine = door.runtime.engine
    engine.replies = [
        Reply("a photo of the case", photo_file_ids=["AgACphoto"]),
        Reply("Where?", [[Button("Back", "nav:back")]], request_location=True, location_label="📍 Share my location"),
    ]
    await feed(door, update_json(12, 506, text="x"))
    assert api.called("sendPhoto")[0]["photo"] == "AgACphoto"  # the emulator has no sendPhoto
    first, second, third = api.called("sendMessage")
    assert "reply_markup" not in first
    assert second["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "nav:back"
    assert third["text"] == "📍 Share my location"
    assert third["reply_markup"]["keyboard"][0][0]["request_location"] is True

    engine.replies = [Reply("Thanks", [[Button("Menu", "menu:main")]])]
    await feed(door, update_json(13, 506, location={"latitude": 1.0, "longitude": 2.0}))
    # Only inline buttons this time: the share-location keyboard goes, with a placeholder deleted at once.
    *_, answer, placeholder = api.called("sendMessage")
    assert "inline_keyboard" in answer["reply_markup"] and placeholder["reply_markup"] == {"remove_keyboard": True}
    assert len(api.called("deleteMessage")) == 1


async def test_long_text_is_split_and_buttons_follow_the_last_part(door, api):
    door.runtime.engine.replies = [Reply(("ལམ་སྒྲོན་མི་འབར། " * 300).strip(), [[Button("OK", "menu:main")]])]
    await feed(door, update_json(14, 507, text="x"))
    parts = api.called("sendMessage")
    assert len(parts) == 2 and all(len(p["text"]) <= 4096 for p in parts)
    assert "reply_markup" not in parts[0] and parts[1]["reply_markup"]["inline_keyboard"]


async def test_command_menus_per_language(door, api):
    """setMyCommands: the emulator answers 500, so the menus are checked here."""
    calls = api.called("setMyCommands")
    assert [c.get("language_code") for c in calls] == [None, "zh", "bo"]
    for call, language in zip(calls, ["zh", "zh", "bo"]):
        assert [c["command"] for c in call["commands"]] == [name for name, _ in COMMANDS]
        assert [c["description"] for c in call["commands"]] == [c.description for c in command_menu(language)]
    zh = {c.command: c.description for c in command_menu("zh")}
    assert zh["report"] == translate("zh", "Report a problem")


async def test_a_refused_command_menu_is_not_fatal(api, tmp_path, caplog):
    api.fail["setMyCommands"] = (500, {"message": "not supported"})
    door = make_door(api, tmp_path)
    await door.start(web.Application())
    try:
        assert door.channel is not None and door.runtime.channels == [door.channel]
        assert "setMyCommands(language_code=bo) failed" in caplog.text
    finally:
        await door.stop()
    assert door.runtime.channels == []


async def test_webhook_checks_the_secret_token(api, tmp_path, sessionmaker):
    door = make_door(api, tmp_path, sessionmaker)
    app = web.Application()
    await door.start(app)
    (webhook,) = api.called("setWebhook")
    assert webhook["url"] == "https://bot.example.org/telegram/webhook" and webhook["secret_token"] == SECRET
    assert webhook["allowed_updates"] == ["message", "callback_query"]
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        body = update_json(20, 508, text="hi")
        response = await client.post("/telegram/webhook", json=body, headers={SECRET_HEADER: SECRET})
        assert response.status == 200
        response = await client.post("/telegram/webhook", json=update_json(21, 508, text="hi"),
                                     headers={SECRET_HEADER: "wrong"})
        assert response.status == 403
        response = await client.post("/telegram/webhook", json=update_json(22, 508, text="hi"))
        assert response.status == 403
        for bad in (b"not json", b"[" * 100_000 + b"]" * 100_000, b'{"update_id": "x1", "message": {}}',
                    b'{"update_id": 1.5}', b'[]'):
            response = await client.post("/telegram/webhook", data=bad, headers={SECRET_HEADER: SECRET})
            assert response.status == 400
        assert [update_id for _, _, update_id in door.runtime.engine.calls] == [20]
        await door.stop()
        response = await client.post("/telegram/webhook", json=update_json(23, 508, text="hi"), headers={SECRET_HEADER: SECRET})
        assert response.status == 503  # stopping: let Telegram deliver it again
    finally:
        await client.close()


async def test_webhook_acknowledges_only_what_is_done_and_keeps_what_it_received(api, tmp_path, sessionmaker):
    """Slower than Telegram's patience: 503 (not 200), and the update is already stored; then its
    answer goes out and is confirmed."""
    door = make_door(api, tmp_path, sessionmaker, telegram_webhook_secret=None)
    door.ack_wait = 0.05
    gate = asyncio.Event()

    class SlowEngine(FakeEngine):
        async def handle(self, sender, message, *, update_id=None):
            await gate.wait()
            return await super().handle(sender, message, update_id=update_id)

    door.runtime.engine = SlowEngine()
    app = web.Application()
    await door.start(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        response = await asyncio.wait_for(client.post("/telegram/webhook", json=update_json(30, 509, text="hi")), 2)
        assert response.status == 503 and door.runtime.engine.calls == []
        async with sessionmaker() as session:
            stored = await session.scalar(select(ProcessedUpdate).where(ProcessedUpdate.update_id == "30"))
        assert stored.chat == "509" and stored.payload["message"]["text"] == "hi" and stored.processed_at is None
        gate.set()
        for _ in range(200):
            if door.runtime.engine.confirmed:
                break
            await asyncio.sleep(0.01)
        assert door.runtime.engine.confirmed == [30]  # the answer went out and was confirmed
    finally:
        await door.stop()  # waits for the update in hand
        await client.close()
    assert [u for _, _, u in door.runtime.engine.calls] == [30]


async def test_webhook_answers_500_when_handling_failed_so_telegram_delivers_again(api, tmp_path, sessionmaker):
    door = make_door(api, tmp_path, sessionmaker)
    attempts = []

    class FailsOnce(FakeEngine):
        async def handle(self, sender, message, *, update_id=None):
            attempts.append(update_id)
            if len(attempts) == 1:
                raise ConnectionError("database went away")  # rolled back: nothing of the update was kept
            return await super().handle(sender, message, update_id=update_id)

    door.runtime.engine = FailsOnce()
    app = web.Application()
    await door.start(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        headers = {SECRET_HEADER: SECRET}
        first = await client.post("/telegram/webhook", json=update_json(60, 512, text="hi"), headers=headers)
        again = await client.post("/telegram/webhook", json=update_json(60, 512, text="hi"), headers=headers)
        assert (first.status, again.status) == (500, 200) and attempts == [60, 60]
    finally:
        await door.stop()
        await client.close()


async def test_channel_maps_flood_control_and_blocking(api):
    from telegram import Bot

    bot = Bot(TOKEN, base_url=api.base_url)
    channel = TelegramChannel(bot)
    async with bot:
        await channel.send("600", Reply("Case accepted", [[Button("Open case", "case:LS-20261124-0001")]]))
        (sent,) = api.called("sendMessage")
        assert sent["chat_id"] == "600" and sent["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "case:LS-20261124-0001"

        api.fail["sendMessage"] = (429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 7",
                                         "parameters": {"retry_after": 7}})
        with pytest.raises(RetryLater) as retry:
            await channel.send("600", Reply("x"))
        assert retry.value.seconds == 7

        api.fail["sendMessage"] = (403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"})
        with pytest.raises(Blocked):
            await channel.send("600", Reply("x"))

        api.fail["sendMessage"] = (400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"})
        with pytest.raises(BadRequest):
            await channel.send("600", Reply("x"))


async def test_one_persons_updates_in_order_different_people_at_once():
    processor = PerPersonUpdateProcessor(active=8)
    log: list[tuple[str, int]] = []
    running = {"now": 0, "most": 0}

    async def work(who: int, index: int):
        running["now"] += 1
        running["most"] = max(running["most"], running["now"])
        await asyncio.sleep(0.01 * (3 - index))  # later updates would finish first if run at once
        log.append((who, index))
        running["now"] -= 1

    updates = []
    for index in range(3):
        for who in (1, 2, 3):
            updates.append(Update.de_json(update_json(index * 10 + who, who, text="x"), None))
    await asyncio.gather(*(processor.process_update(u, work(u.effective_user.id, (u.update_id // 10))) for u in updates))
    for who in (1, 2, 3):
        assert [i for w, i in log if w == who] == [0, 1, 2]
    assert running["most"] == 3  # three people at once, never two updates of one person


async def test_log_line_has_no_personal_data(door, api, caplog):
    caplog.set_level(logging.INFO, logger="gridbot.telegram")
    await feed(door, update_json(40, 510, text="我的电话是13812345678，路灯坏了"))
    await feed(door, update_json(41, 510, contact={"phone_number": "+8613812345678", "first_name": "王", "user_id": 510}))
    lines = [r.getMessage() for r in caplog.records if r.name == "gridbot.telegram" and "update_id=" in r.getMessage()]
    assert len(lines) == 2 and "update_id=40 user_id=510 kind=text" in lines[0]
    assert all("13812345678" not in line and "路灯" not in line for line in lines)
    assert all("ms=" in line and "dialog=" in line and "state=" in line for line in lines)


async def test_a_failing_update_is_logged_without_its_content_and_the_bot_goes_on(door, api, caplog):
    class Broken(FakeEngine):
        async def handle(self, sender, message, *, update_id=None):
            if update_id == 50:
                raise RuntimeError(f"INSERT … parameters: ({message.text!r},)")  # as database errors quote values
            return await super().handle(sender, message, update_id=update_id)

    door.runtime.engine = Broken()
    await feed(door, update_json(50, 511, text="我的电话13812345678"))
    await feed(door, update_json(51, 511, text="hello"))
    assert "update=50 failed" in caplog.text and "RuntimeError" in caplog.text
    assert "13812345678" not in caplog.text
    assert [u for _, _, u in door.runtime.engine.calls] == [51] and door.runtime.counters['updates_failed{platform="telegram"}'] == 1
