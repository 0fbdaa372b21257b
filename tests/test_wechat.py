"""The WeChat Official Account front door end to end: a client posting signed (and encrypted) XML as
WeChat does ⇄ the bot's /wechat endpoint ⇄ the fake WeChat API server (tests/wechat_fake.py)."""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select

from bot.dispatcher import Dispatcher, RateLimiter
from bot.runtime import Runtime
from bot.settings import Settings
from bot.web.app import create_app
from bot.wechat.adapter import WeChatFrontDoor
from bot.wechat.config import WeChatConfig
from conversations.engine import Engine
from conversations.i18n import translate
from storage.cases import CaseStore
from storage.models import Attachment, Case, Identity, Notification, ProcessedUpdate, Role, WeChatAccount, WeChatFollower
from storage.staff import create_invitation
from tests.wechat_fake import AES_KEY, APP_ID, APP_SECRET, TOKEN, FakeWeChat, WeChatServerClient

GRID = "5401-D1-01-01-G01"
GRID_POINT = (29.6558, 91.1220)  # inside GRID
STREET_LIGHT = "GM-0301"
CASE_NUMBER = re.compile(r"LS-\d{8}-\d{4,}")
DESCRIPTIONS = {
    "zh": "楼下的路灯已经坏了三天，晚上很黑。",
    "bo": "ང་ཚོའི་ཁང་པའི་འོག་གི་ལམ་སྒྲོན་ཉིན་གསུམ་རིང་མི་འབར།",
}
ADDRESSES = {"zh": "3号楼东侧", "bo": "ཁང་པ་ཨང་༣ཤར་ཕྱོགས།"}
JPEG = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF" + b"\x00" * 64 + b"\xff\xd9"
AMR = b"#!AMR\n" + b"\x3c" * 200


@pytest.fixture
async def fake():
    server = await FakeWeChat().start()
    yield server
    await server.stop()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


class Deployment:
    """One gridbot instance with the WeChat front door, served on loopback."""

    def __init__(self, sessionmaker, fake: FakeWeChat, tmp_path: Path):
        self.sessionmaker, self.fake, self.tmp_path = sessionmaker, fake, tmp_path
        self.doors: list[WeChatFrontDoor] = []
        self.runners: list[web.AppRunner] = []

    def config(self, **overrides) -> WeChatConfig:
        values = dict(app_id=APP_ID, app_secret=APP_SECRET, token=TOKEN, api_base_url=self.fake.url, ack_seconds=10.0)
        values.update(overrides)
        return WeChatConfig(**values)

    async def start(self, **overrides) -> tuple[WeChatFrontDoor, str]:
        settings = Settings(database_url="(the test fixture's)", attachments_dir=str(self.tmp_path / "attachments"),
                            telegram_token=None, public_url=None, dispatcher=False)
        runtime = Runtime(settings, self.sessionmaker.kw["bind"], self.sessionmaker, Engine(self.sessionmaker))
        app = create_app(runtime)
        door = WeChatFrontDoor(runtime, self.config(**overrides))
        await door.start(app)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.doors.append(door)
        self.runners.append(runner)
        return door, f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        for door in self.doors:
            await door.stop()
        for runner in self.runners:
            await runner.cleanup()


@pytest.fixture
async def deployment(demo, fake, tmp_path):
    helper = Deployment(demo, fake, tmp_path)
    yield helper
    await helper.close()


class StaffInbox:
    """A web channel for the demo staff (they have web identities only)."""

    platform = "web"

    def __init__(self):
        self.sent = []

    async def send(self, chat_id, reply) -> None:
        self.sent.append((chat_id, reply.text))


def dispatcher(door: WeChatFrontDoor) -> Dispatcher:
    return Dispatcher(door.runtime.sessionmaker, [door.channel, StaffInbox()],
                      limiter=RateLimiter(per_second=1000, per_chat_interval=0), batch=500)


class Follower:
    """One WeChat user talking to the account; `latest` holds what the account sent since the last message."""

    def __init__(self, client: WeChatServerClient, fake: FakeWeChat, sessionmaker, openid: str):
        self.client, self.fake, self.sessionmaker, self.openid = client, fake, sessionmaker, openid
        self.latest: list[dict] = []

    async def do(self, action) -> list[dict]:
        mark = len(self.fake.to(self.openid))
        status, body = await action
        assert (status, body) == (200, "success")
        self.latest = self.fake.to(self.openid)[mark:]
        return self.latest

    @staticmethod
    def words(messages: list[dict]) -> str:
        out = []
        for m in messages:
            if m["msgtype"] == "text":
                out.append(m["text"]["content"])
            elif m["msgtype"] == "msgmenu":
                menu = m["msgmenu"]
                out += [menu["head_content"], *(o["content"] for o in menu["list"]), menu["tail_content"]]
        return "\n".join(out)

    @property
    def text(self) -> str:
        return self.words(self.latest)

    async def menus(self) -> list:
        async with self.sessionmaker() as session:
            row = await session.get(WeChatFollower, (APP_ID, self.openid))
            return row.menus if row else []

    async def buttons(self) -> list[str]:
        menus = await self.menus()
        return menus[-1][1] if menus else []

    async def say(self, text: str):
        return await self.do(self.client.text(self.openid, text))

    async def tap(self, data: str):
        """Tap the option standing for `data` in the newest menu message that has it, as WeChat sends it."""
        for serial, options in reversed(await self.menus()):
            if data in options:
                menu_id = str(serial * 100 + options.index(data) + 1)
                break
        else:
            raise AssertionError(f"no option {data!r} shown; latest: {self.text}")
        label = next(o["content"] for m in self.fake.to(self.openid) if m["msgtype"] == "msgmenu"
                     for o in m["msgmenu"]["list"] if o["id"] == menu_id)
        return await self.do(self.client.text(self.openid, label, menu_id=menu_id))

    async def type_number_of(self, data: str):
        options = await self.buttons()
        return await self.say(str(options.index(data) + 1))


def follower(deployment: Deployment, http, url: str, openid: str, *, aes: bool = False) -> Follower:
    client = WeChatServerClient(http, url + "/wechat", aes_key=AES_KEY if aes else None)
    return Follower(client, deployment.fake, deployment.sessionmaker, openid)


async def choose_language(person: Follower, language: str) -> None:
    assert "lang:zh" in await person.buttons() and "lang:bo" in await person.buttons()
    await person.tap(f"lang:{language}")


async def report(person: Follower, language: str, fake: FakeWeChat, *, voice: bool) -> str:
    await person.do(person.client.event(person.openid, "CLICK", "menu:report"))  # the account's custom menu
    assert f"matter:{STREET_LIGHT}" in await person.buttons()
    await person.type_number_of(f"matter:{STREET_LIGHT}")  # typing the option's number works too
    if voice:
        fake.add_media("voice-1", AMR, "audio/amr")
        await person.do(person.client.voice(person.openid, "voice-1", recognition=DESCRIPTIONS[language]))
        assert DESCRIPTIONS[language] in person.text  # what WeChat heard is shown back
    else:
        await person.say(DESCRIPTIONS[language])
    # "Share my location" is explained the WeChat way.
    assert translate(language, "To send your location: tap ＋ beside the input box, choose Location, then Send.") in person.text
    await person.do(person.client.location(person.openid, *GRID_POINT))
    assert "address:skip" in await person.buttons()
    await person.say(ADDRESSES[language])
    assert "photos:done" in await person.buttons()
    fake.add_media("photo-1", JPEG, "image/jpeg")
    await person.do(person.client.image(person.openid, "photo-1"))
    await person.tap("photos:done")
    await person.say("13812345678")
    assert "confirm:submit" in await person.buttons()
    await person.tap("confirm:submit")
    found = CASE_NUMBER.search(person.text)
    assert found, person.text
    return found.group(0)


@pytest.mark.parametrize("language,safe_mode", [("zh", False), ("bo", True)])
async def test_resident_reports_with_location_photo_and_voice_and_is_told_every_step(deployment, http, language, safe_mode):
    extra = {"aes_key": AES_KEY} if safe_mode else {}
    door, url = await deployment.start(**extra)
    person = follower(deployment, http, url, f"o-resident-{language}", aes=safe_mode)
    # Following the account by scanning the grid's QR code chooses that grid, after the language.
    await person.do(person.client.event(person.openid, "subscribe", f"qrscene_{GRID}"))
    await choose_language(person, language)
    assert "网格" in person.text or "དྲ་མིག" in person.text
    number = await report(person, language, deployment.fake, voice=True)

    async with deployment.sessionmaker() as session:
        case = await session.scalar(select(Case).where(Case.number == number))
        assert case.description == DESCRIPTIONS[language] and case.grid.code == GRID
        assert case.contact_phone == "13812345678"
        photo = await session.scalar(select(Attachment).where(Attachment.case_id == case.id))
        assert photo.platform == "wechat" and photo.platform_file_id == "photo-1"
        assert photo.sha256 == hashlib.sha256(JPEG).hexdigest()
        assert (Path(door.runtime.settings.attachments_dir) / photo.stored_path).read_bytes() == JPEG
    # The voice message's audio is kept beside the photos.
    voice = Path(door.runtime.settings.attachments_dir) / "wechat" / hashlib.sha256(AMR).hexdigest()[:2]
    assert any(voice.glob("*.amr"))

    # Every later step reaches the resident through the customer-service API.
    store = CaseStore(deployment.sessionmaker)
    async with deployment.sessionmaker() as session:
        centre = await session.scalar(select(Identity.person_id).where(Identity.external_id == "demo-centre-gesang"))
        handler = await session.scalar(select(Identity.person_id).where(Identity.external_id == "demo-handler-urban-management"))
    drain = dispatcher(door)
    for actor, trigger, inputs in [(centre, "accept", {}), (centre, "transfer", {"department": "urban_management"}),
                                   (handler, "start_handling", {}), (handler, "submit_result", {"result": "换了灯泡"})]:
        before = len(deployment.fake.to(person.openid))
        await store.act(number, actor, trigger, **inputs)
        await drain.drain_once()
        told = Follower.words(deployment.fake.to(person.openid)[before:])
        assert number in told, (trigger, told)
    assert drain.failures == 0
    # The notice's option opens the case card.
    await person.tap(f"case:{number}")
    assert number in person.text


async def test_grid_worker_joins_and_verifies_a_case(deployment, http):
    door, url = await deployment.start()
    async with deployment.sessionmaker.begin() as session:
        code, _ = await create_invitation(session, Role.grid_worker, node_code=GRID)
    worker = follower(deployment, http, url, "o-worker")
    await worker.say(f"/join {code}")  # sent before choosing a language: kept for after
    await choose_language(worker, "zh")
    async with deployment.sessionmaker() as session:
        identity = await session.scalar(select(Identity).where(Identity.platform == "wechat", Identity.external_id == "o-worker"))
        from storage.people import active_roles

        assert [a.role for a in await active_roles(session, identity.person_id)] == [Role.grid_worker]

    resident = follower(deployment, http, url, "o-resident")
    await resident.say("/start")
    await choose_language(resident, "bo")
    number = await report(resident, "bo", deployment.fake, voice=False)
    store = CaseStore(deployment.sessionmaker)
    async with deployment.sessionmaker() as session:
        centre = await session.scalar(select(Identity.person_id).where(Identity.external_id == "demo-centre-gesang"))
        handler = await session.scalar(select(Identity.person_id).where(Identity.external_id == "demo-handler-urban-management"))
    await store.act(number, centre, "accept")
    await store.act(number, centre, "transfer", department="urban_management")
    await store.act(number, handler, "start_handling")
    await store.act(number, handler, "submit_result", result="换了灯泡")
    drain = dispatcher(door)
    await drain.drain_once()
    assert number in Follower.words(deployment.fake.to("o-worker"))  # "needs your check"
    await worker.tap(f"case:{number}")
    await worker.tap(f"act:{number}:verify_pass")
    async with deployment.sessionmaker() as session:
        case = await session.scalar(select(Case).where(Case.number == number))
        assert case.state == "closed"
    before = len(deployment.fake.to("o-resident"))
    await drain.drain_once()
    told = Follower.words(deployment.fake.to("o-resident")[before:])
    assert number in told and "⭐" in told  # closed, in Tibetan, with the rating option
