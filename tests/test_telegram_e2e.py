"""End to end over real HTTP: python-telegram-bot ⇄ correcting proxy ⇄ telegram-test-api 4.2.1 (node).

Residents talk to the bot through the emulator's client API: they send messages and
press the inline buttons the bot actually sent (callback queries). The emulator's
known differences from the Bot API are corrected in tests/telegram_emulator.py, never
in the bot. The emulator has no getFile, sendPhoto, sendVoice or sendLocation: the proxy
answers them (files a test registers with `FixingProxy.add_file`; other photos keep their file
id only, as with a failed download). Skipped, with the reason, when
Node.js or the npm package is missing (`npm install --prefix tests/e2e`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import func, select

from bot.dispatcher import Dispatcher
from bot.runtime import Runtime
from bot.settings import Settings
from bot.telegram.adapter import SECRET_HEADER, TelegramFrontDoor
from conversations.engine import Engine
from storage.cases import CaseStore
from storage.models import Attachment, Case, Identity, Notification, ProcessedUpdate
from tests.telegram_emulator import (
    Emulator,
    FakeUser,
    FixingProxy,
    emulator_unavailable,
    free_port,
    new_token,
    update_json,
)

GRID_POINT = (29.6558, 91.1220)  # inside 5401-D1-01-01-G01 of the demo district
STREET_LIGHT = "GM-0301"
CASE_NUMBER = re.compile(r"LS-\d{8}-\d{4,}")
DESCRIPTIONS = {
    "zh": "楼下的路灯已经坏了三天，晚上很黑。",
    "bo": "ང་ཚོའི་ཁང་པའི་འོག་གི་ལམ་སྒྲོན་ཉིན་གསུམ་རིང་མི་འབར།",
}
ADDRESSES = {"zh": "3号楼东侧", "bo": "ཁང་པ་ཨང་༣ཤར་ཕྱོགས།"}
SECRET = "s3cret-Token_for-tests"


@pytest.fixture(scope="module")
def emulator():
    reason = emulator_unavailable()
    if reason:
        pytest.skip(reason)
    server = Emulator().start()
    yield server
    server.stop()


@pytest.fixture
async def proxy(emulator):
    server = await FixingProxy(emulator.url).start()
    yield server
    await server.stop()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


class Bots:
    """Starts front doors against the proxy; stops whatever is still running at the end."""

    def __init__(self, sessionmaker, proxy: FixingProxy, attachments: str):
        self.sessionmaker = sessionmaker
        self.proxy = proxy
        self.attachments = attachments
        self.token = new_token()
        self.running: list[TelegramFrontDoor] = []
        self.runners: list[web.AppRunner] = []

    def runtime(self, **settings) -> Runtime:
        values = dict(database_url="(test fixture)", telegram_token=self.token, telegram_api_base_url=self.proxy.base_url,
                      telegram_poll_interval=0.05, telegram_webhook_url=None, telegram_webhook_secret=None,
                      attachments_dir=self.attachments)
        values.update(settings)
        engine = self.sessionmaker.kw["bind"]
        return Runtime(Settings(**values), engine, self.sessionmaker, Engine(self.sessionmaker))

    async def polling(self) -> TelegramFrontDoor:
        door = TelegramFrontDoor(self.runtime())
        await door.start()
        self.running.append(door)
        return door

    async def webhook(self, secret: str | None = SECRET) -> tuple[TelegramFrontDoor, str]:
        """A front door in webhook mode mounted on its own aiohttp app on a loopback port."""
        port = free_port()
        url = f"http://127.0.0.1:{port}/telegram/webhook"
        door = TelegramFrontDoor(self.runtime(telegram_webhook_url=url, telegram_webhook_secret=secret))
        app = web.Application()
        await door.start(app)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        self.running.append(door)
        self.runners.append(runner)
        return door, url

    async def stop(self, door: TelegramFrontDoor) -> None:
        self.running.remove(door)
        await door.stop()

    async def close(self) -> None:
        for door in list(self.running):
            await self.stop(door)
        for runner in self.runners:
            await runner.cleanup()


@pytest.fixture
async def bots(demo, proxy, tmp_path):
    helper = Bots(demo, proxy, str(tmp_path / "attachments"))
    yield helper
    await helper.close()


def user(http, emulator, bots, language: str) -> FakeUser:
    return FakeUser(http, emulator.url, bots.token, language_code=language, first_name="卓玛" if language == "bo" else "王芳")


def has_keyboard(kind: str):
    return lambda u: any(button.get(kind) for message in u.latest for button in message.reply_keyboard)


async def start_and_choose(person: FakeUser, language: str) -> None:
    await person.say("/start")
    await person.wait_for(f"lang:{language}")
    await person.press(f"lang:{language}")
    await person.wait_for("menu:report")


async def report_until_location(person: FakeUser, language: str) -> None:
    await person.press("menu:report")
    await person.wait_for(f"matter:{STREET_LIGHT}")
    await person.press(f"matter:{STREET_LIGHT}")
    await person.wait_for("nav:back")
    await person.say(DESCRIPTIONS[language])
    await person.wait_for(has_keyboard("request_location"))


async def report_from_location(person: FakeUser, language: str) -> str:
    await person.share_location(*GRID_POINT)
    await person.wait_for("address:skip")
    await person.say(ADDRESSES[language])
    await person.wait_for("photos:done")
    await person.send_photo("AgACAgIAAxkBAAIBZ2photo")
    await person.wait_for("photos:done")
    await person.press("photos:done")
    await person.wait_for(has_keyboard("request_contact"))
    await person.share_contact("+86 138 1234 5678")
    await person.wait_for("confirm:submit")
    await person.press("confirm:submit")
    await person.wait_for(lambda u: CASE_NUMBER.search(u.text))
    return CASE_NUMBER.search(person.text).group(0)


async def centre_staff(sessionmaker, web_id: str = "demo-centre-gesang") -> int:
    async with sessionmaker() as session:
        return await session.scalar(select(Identity.person_id).where(Identity.platform == "web", Identity.external_id == web_id))


class StaffInbox:
    """A 'web' channel that keeps what it is given. The demo staff have only web identities;
    without a channel for them the dispatcher takes its no-identity path, which currently
    raises (session.begin() on an autobegun session in Dispatcher._deliver: reported)."""

    platform = "web"

    def __init__(self):
        self.sent: list[tuple[str, str]] = []

    async def send(self, chat_id, reply) -> None:
        self.sent.append((chat_id, reply.text))


def quick_dispatcher(runtime: Runtime, channels=None) -> Dispatcher:
    channels = list(channels if channels is not None else runtime.channels) + [StaffInbox()]
    return Dispatcher(runtime.sessionmaker, channels, batch=500)


@pytest.mark.parametrize("language", ["zh", "bo"])
async def test_resident_reports_follows_and_is_notified(bots, emulator, http, language):
    """Report with buttons, location, photo and contact; get a case number; look it up by
    typing it; a centre accepts the case and the pushed notification reaches the chat."""
    door = await bots.polling()
    person = user(http, emulator, bots, language)
    await start_and_choose(person, language)
    await report_until_location(person, language)
    # The place question: inline buttons in one message, the share-location keyboard in its own.
    keyboard_message = next(m for m in person.latest if m.reply_keyboard)
    assert keyboard_message.reply_keyboard[0]["request_location"] is True
    assert any(d.startswith("place:") for d in person.buttons) and "nav:cancel" in person.buttons
    number = await report_from_location(person, language)

    async with bots.sessionmaker() as session:
        case = await session.scalar(select(Case).where(Case.number == number))
        assert case.description == DESCRIPTIONS[language]
        assert case.contact_phone == "13812345678"
        assert case.grid.code == "5401-D1-01-01-G01"
        photo = await session.scalar(select(Attachment).where(Attachment.case_id == case.id))
        # The largest size's file id; the emulator has no getFile, so nothing was downloaded.
        assert photo.platform == "telegram" and photo.platform_file_id == "AgACAgIAAxkBAAIBZ2photo"
        assert photo.stored_path is None and photo.size == 54321

    # Status: type the number.
    await person.say(number)
    await person.wait_for(lambda u: number in u.text and "menu:cases" in u.buttons)

    # A centre accepts the case; the dispatcher pushes the news through the Telegram channel.
    await CaseStore(bots.sessionmaker).act(number, await centre_staff(bots.sessionmaker), "accept")
    dispatcher = quick_dispatcher(door.runtime)
    assert await dispatcher.drain_once() >= 1
    assert dispatcher.failures == 0
    await person.wait_for(lambda u: number in u.text and f"case:{number}" in u.buttons)
    # …and the notification's own button opens the card.
    await person.press(f"case:{number}")
    await person.wait_for(lambda u: number in u.text and "menu:cases" in u.buttons)


async def test_reply_keyboard_is_removed_after_the_location(bots, emulator, http):
    await bots.polling()
    person = user(http, emulator, bots, "zh")
    await start_and_choose(person, "zh")
    await report_until_location(person, "zh")
    await person.share_location(*GRID_POINT)
    await person.wait_for("address:skip")
    assert any(m.removes_keyboard for m in person.latest)
    assert proxy_calls_ok(bots.proxy)


def proxy_calls_ok(proxy: FixingProxy) -> bool:
    # setMyCommands is attempted (the emulator answers 500: logged, not fatal); getFile never worked.
    return proxy.calls["setMyCommands"] == 3 and proxy.calls["getMe"] >= 1


async def test_bot_killed_between_two_steps_resumes(bots, emulator, http, caplog):
    caplog.set_level(logging.INFO, logger="gridbot")
    door = await bots.polling()
    person = user(http, emulator, bots, "bo")
    await start_and_choose(person, "bo")
    await report_until_location(person, "bo")
    await bots.stop(door)  # the process goes away: nothing of the dialog is kept in memory
    await bots.polling()  # a new process
    number = await report_from_location(person, "bo")
    async with bots.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Case).where(Case.number == number)) == 1
    # One structured line per update: ids, dialog, state, duration; nothing the person typed.
    def log_lines():
        return [r.getMessage() for r in caplog.records if r.name == "gridbot.telegram" and "update_id=" in r.getMessage()]

    for _ in range(100):  # the line is written just after the answer is sent: give it a moment
        if len(log_lines()) >= 11:
            break
        await asyncio.sleep(0.02)
    lines = log_lines()
    assert len(lines) == 11
    assert any(f"user_id={person.user_id} kind=location dialog=report state=address" in line for line in lines)
    assert any("kind=button dialog=None state=None" in line for line in lines)  # submitted: the dialog is closed
    assert not any(DESCRIPTIONS["bo"][:8] in line or "12345678" in line for line in lines)


async def test_webhook_mode_end_to_end_and_a_repeated_update(bots, emulator, http, proxy):
    """The emulator pushes to the webhook (relayed with the secret header); the same
    update delivered twice (Telegram's redelivery) produces one case and one answer."""
    door, url = await bots.webhook()
    assert proxy.webhooks[bots.token] == (url, SECRET)
    person = user(http, emulator, bots, "zh")
    await start_and_choose(person, "zh")
    await report_until_location(person, "zh")
    await person.share_location(*GRID_POINT)
    await person.wait_for("address:skip")
    await person.press("address:skip")
    await person.wait_for("photos:done")
    await person.press("photos:done")
    await person.wait_for("phone:anonymous")
    await person.press("phone:anonymous")
    await person.wait_for("confirm:submit")
    assert all(status == 200 for _, status in proxy.pushes)

    submit = update_json(10**9 + 7, person.user_id, data="confirm:submit")
    person.seen = len(person.inbox)
    for _ in range(2):
        async with http.post(url, json=submit, headers={SECRET_HEADER: SECRET}) as response:
            assert response.status == 200
    await person.wait_for(lambda u: CASE_NUMBER.search(u.text))
    await asyncio.sleep(0.3)
    await person.fetch()
    assert person.text.count("您的上报已提交") == 1, person.text  # one answer (it names the number twice: with its code)
    async with bots.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Case)) == 1
        assert await session.scalar(select(ProcessedUpdate).where(ProcessedUpdate.update_id == str(10**9 + 7))) is not None


async def test_two_instances_behind_one_url_share_the_database(bots, emulator, http):
    """Several webhook instances, one database: the same update reaching both at once
    (e.g. a retry routed elsewhere) is processed once; the dialog continues on either."""
    first, url_a = await bots.webhook()
    second, url_b = await bots.webhook()  # the emulator now pushes to this one
    person = user(http, emulator, bots, "zh")
    await start_and_choose(person, "zh")
    # Steps alternate between instances: state lives in the database.
    for number, (url, data) in enumerate([(url_a, "menu:report"), (url_b, f"matter:{STREET_LIGHT}")]):
        person.seen = len(person.inbox)
        async with http.post(url, json=update_json(2 * 10**9 + number, person.user_id, data=data),
                             headers={SECRET_HEADER: SECRET}) as response:
            assert response.status == 200
    await person.wait_for("nav:back")
    await person.say(DESCRIPTIONS["zh"])
    await person.wait_for(has_keyboard("request_location"))

    same = update_json(3 * 10**9, person.user_id, location={"latitude": GRID_POINT[0], "longitude": GRID_POINT[1]})
    person.seen = len(person.inbox)

    async def deliver(url):
        async with http.post(url, json=same, headers={SECRET_HEADER: SECRET}) as response:
            return response.status

    assert await asyncio.gather(deliver(url_a), deliver(url_b)) == [200, 200]
    await person.wait_for("address:skip")
    await asyncio.sleep(0.3)
    await person.fetch()
    assert person.buttons.count("address:skip") == 1


async def test_dispatcher_killed_mid_drain_against_the_emulator(bots, emulator, http):
    """Notifications for several chats; the first dispatcher freezes at its third send and dies
    (leases left behind); once the leases run out a second one sends the rest.
    Each chat gets its notification exactly once."""
    door = await bots.polling()
    people = [user(http, emulator, bots, "zh") for _ in range(5)]
    store = CaseStore(bots.sessionmaker)
    numbers = {}
    from storage.people import person_for_identity

    for person in people:
        async with bots.sessionmaker.begin() as session:
            resident, _ = await person_for_identity(session, "telegram", str(person.user_id), chat_id=str(person.chat_id))
            resident.language_chosen = True
            resident_id = resident.id
        case = await store.open_case(reporter_id=resident_id, matter_code=STREET_LIGHT, description=DESCRIPTIONS["zh"],
                                     language="zh", grid_code="5401-D1-01-01-G01")
        numbers[person.chat_id] = case.number
    staff = await centre_staff(bots.sessionmaker)
    for number in numbers.values():
        await store.act(number, staff, "accept")

    channel = door.channel
    reached, hang = asyncio.Event(), asyncio.Event()

    class DiesOnThirdSend:
        platform = "telegram"
        sends = 0

        async def send(self, chat_id, reply):
            self.sends += 1
            if self.sends >= 3:  # the process freezes here: this send and every later one never leave
                reached.set()
                await hang.wait()
            await channel.send(chat_id, reply)

    dying = DiesOnThirdSend()
    first = quick_dispatcher(door.runtime, [dying])
    task = asyncio.create_task(first.drain_once())
    await asyncio.wait_for(reached.wait(), timeout=10)
    for _ in range(500):  # every send has started, and the two before the freeze are marked sent
        async with bots.sessionmaker() as session:
            marked = await session.scalar(select(func.count()).select_from(Notification).where(
                Notification.message_key == "accept.reporter", Notification.sent_at.is_not(None)))
        if marked == 2 and dying.sends == len(people):
            break
        await asyncio.sleep(0.02)
    task.cancel()  # like kill -9: no clean release of the leases
    with pytest.raises(asyncio.CancelledError):
        await task

    second = quick_dispatcher(door.runtime)
    assert await second.drain_once() == 0  # the dead one's leases still hold
    from sqlalchemy import update

    from storage.timeutil import utcnow

    async with bots.sessionmaker.begin() as session:  # …until they run out
        await session.execute(update(Notification).where(Notification.claimed_by == first.worker)
                              .values(claimed_until=utcnow()))
    await asyncio.sleep(0.01)
    assert await second.drain_once() > 0
    assert second.failures == 0
    async with bots.sessionmaker() as session:
        accepted = list(await session.scalars(select(Notification).where(Notification.message_key == "accept.reporter")))
    assert len(accepted) == len(people)
    assert all(n.sent_at is not None and n.attempts == 1 for n in accepted)  # each sent once, by one of them
    for person in people:
        await person.wait_for(lambda u: numbers[u.chat_id] in u.text)
        await asyncio.sleep(0.1)
        await person.fetch()
        assert sum(numbers[person.chat_id] in m.text for m in person.inbox) == 1


async def test_centre_staff_joins_and_moves_a_case_from_the_notification(bots, emulator, http):
    """Staff in Telegram: /join with an invitation, the new-report notice arrives, its button opens the
    card, accept and transfer are pressed on the card, and the resident is told in Tibetan."""
    from storage.models import Role
    from storage.staff import create_invitation

    async with bots.sessionmaker.begin() as session:
        code, _ = await create_invitation(session, Role.centre_staff, node_code="5401-D1-01")
    door = await bots.polling()
    staff = user(http, emulator, bots, "zh")
    await start_and_choose(staff, "zh")
    await staff.say(f"/join {code}")
    await staff.wait_for("staff:queue")

    resident = user(http, emulator, bots, "bo")
    await start_and_choose(resident, "bo")
    await report_until_location(resident, "bo")
    number = await report_from_location(resident, "bo")

    dispatcher = quick_dispatcher(door.runtime)
    await dispatcher.drain_once()
    await staff.wait_for(f"case:{number}")  # the new-report notice, with its button
    await staff.press(f"case:{number}")
    await staff.wait_for(f"act:{number}:accept")
    assert "13812345678" not in staff.text and "138****5678" in staff.text  # the centre sees a masked phone
    await staff.press(f"act:{number}:accept")
    await staff.wait_for(f"case:{number}")
    await staff.press(f"case:{number}")
    await staff.wait_for(f"act:{number}:transfer")
    await staff.press(f"act:{number}:transfer")
    await staff.wait_for("input:urban_management")
    await staff.press("input:urban_management")
    await staff.wait_for(f"case:{number}")

    await dispatcher.drain_once()
    await resident.wait_for(lambda u: number in u.text and "ཅུས" in u.text)  # sent to the bureau, in Tibetan
    async with bots.sessionmaker() as session:
        case = await session.scalar(select(Case).where(Case.number == number))
        assert case.state == "transferred" and case.department.code == "urban_management"


async def test_a_storm_of_429s_and_5xx_loses_no_notice_and_a_429_pauses_the_bot(bots, emulator, proxy, http):
    """The fault-injecting proxy answers the first sends with 429s, 500s and one lost answer (the
    message arrives, the bot hears 502). Every resident gets their notice; only the lost answer's
    chat may get it twice (at least once); the 429 held the bot's pace for its retry_after."""
    import time as clock

    from sqlalchemy import update

    from storage.models import PacingSlot
    from storage.people import person_for_identity
    from storage.timeutil import utcnow

    door = await bots.polling()
    people = [user(http, emulator, bots, "zh") for _ in range(6)]
    store = CaseStore(bots.sessionmaker)
    numbers = {}
    for person in people:
        async with bots.sessionmaker.begin() as session:
            resident, _ = await person_for_identity(session, "telegram", str(person.user_id), chat_id=str(person.chat_id))
            resident.language_chosen = True
            resident_id = resident.id
        case = await store.open_case(reporter_id=resident_id, matter_code=STREET_LIGHT, description=DESCRIPTIONS["zh"],
                                     language="zh", grid_code="5401-D1-01-01-G01")
        numbers[person.chat_id] = case.number
    staff = await centre_staff(bots.sessionmaker)
    for number in numbers.values():
        await store.act(number, staff, "accept")
    proxy.faults = [("sendMessage", "429", 1), ("sendMessage", "500", 0), ("sendMessage", "lost", 0),
                    ("sendMessage", "500", 0), ("sendMessage", "429", 1)]
    dispatcher = quick_dispatcher(door.runtime)
    stop = asyncio.Event()
    paused_at = clock.time()
    running = asyncio.create_task(dispatcher.run(stop))
    try:
        for _ in range(600):
            await asyncio.sleep(0.1)
            async with bots.sessionmaker() as session:
                left = await session.scalar(select(func.count()).select_from(Notification).where(
                    Notification.message_key == "accept.reporter", Notification.sent_at.is_(None)))
                paced = await session.scalar(select(PacingSlot.next_at).where(PacingSlot.key == door.channel.pacing.key))
            if not left:
                break
            # Failed sends wait their backoff (5 s): move them on, as time would.
            async with bots.sessionmaker.begin() as session:
                await session.execute(update(Notification).where(Notification.sent_at.is_(None), Notification.attempts > 0)
                                      .values(next_attempt_at=utcnow()))
    finally:
        stop.set()
        await running
    assert not proxy.faults and len(proxy.injected) == 5
    assert paced >= paused_at + 1  # the 429's retry_after held the bot's next slot
    counts = []
    for person in people:
        await person.wait_for(lambda u: numbers[u.chat_id] in u.text)
        await asyncio.sleep(0.05)
        await person.fetch()
        counts.append(sum(numbers[person.chat_id] in m.text for m in person.inbox))
    assert sorted(counts) == [1, 1, 1, 1, 1, 2]  # one answer was lost on its way back: sent again


@pytest.mark.parametrize("language", ["zh", "bo"])
async def test_photo_and_voice_additions_reach_telegram_staff(bots, emulator, http, proxy, language):
    """A resident adds a photo and a voice note to their case in Telegram (downloaded with getFile, which the
    proxy answers); a 10-minute voice note is refused politely; the centre's member of staff on Telegram is
    told with the photo and the voice note, and the case card sends a web photo again as an upload and the
    place as a location message."""
    from storage import cases as case_store
    from storage import media
    from storage.models import Role
    from storage.staff import create_invitation
    from tests.media_samples import sample_jpeg, sample_ogg_opus

    async with bots.sessionmaker.begin() as session:
        code, _ = await create_invitation(session, Role.centre_staff, node_code="5401-D1-01")
    door = await bots.polling()
    staff = user(http, emulator, bots, "zh")
    await start_and_choose(staff, "zh")
    await staff.say(f"/join {code}")
    await staff.wait_for("staff:queue")

    resident = user(http, emulator, bots, language)
    await start_and_choose(resident, language)
    await report_until_location(resident, language)
    number = await report_from_location(resident, language)
    dispatcher = quick_dispatcher(door.runtime)
    await dispatcher.drain_once()

    proxy.add_file("AgACadded-photo", sample_jpeg(gps=True), "photos/file_21.jpg")
    proxy.add_file("AwACadded-voice", sample_ogg_opus(seconds=8), "voice/file_22.oga")
    await resident.say(number)
    await resident.wait_for(f"add:{number}")
    await resident.press(f"add:{number}")
    await resident.wait_for("nav:cancel")
    await resident.send_photo("AgACadded-photo", size=2000)
    await resident.wait_for("added:done")
    await resident.send_voice("AwACadded-voice", duration=8)
    await resident.wait_for(lambda u: "added:done" in u.buttons and number in u.text)
    await resident.send_voice("AwAClong-voice", duration=600)  # never downloaded: too long
    from conversations import i18n

    refusal = i18n.translate(language, "That voice note is too long: at most {minutes} minutes. Please record a shorter one.",
                             minutes=i18n.number(language, media.MAX_VOICE_SECONDS // 60))
    await resident.wait_for(lambda u: refusal in u.text and "added:done" in u.buttons)
    await resident.press("added:done")
    await resident.wait_for(lambda u: number in u.text and "menu:cases" in u.buttons)

    async with bots.sessionmaker() as session:
        case = await case_store.load_case(session, number)
        added = [a for a in case.attachments if a.platform_file_id in ("AgACadded-photo", "AwACadded-voice")]
        photo, voice = added
        assert (photo.kind, photo.content_type) == ("photo", "image/jpeg") and photo.public_path  # EXIF-free copy kept
        assert (voice.kind, voice.content_type, voice.duration_seconds) == ("voice", "audio/ogg", 8)
        assert (Path(bots.attachments) / voice.stored_path).read_bytes() == sample_ogg_opus(seconds=8)
        assert not [a for a in case.attachments if a.platform_file_id == "AwAClong-voice"]

    # The staff member on Telegram is told, and gets the photo and the voice note by their Telegram file ids.
    await dispatcher.drain_once()
    await staff.wait_for(lambda u: number in u.text and f"case:{number}" in u.buttons)
    chat = str(staff.chat_id)
    sent = [(m.kind, m.file_id) for m in proxy.media if m.chat_id == chat]
    assert ("photo", "AgACadded-photo") in sent and ("voice", "AwACadded-voice") in sent

    # A photo that came from the web chat is uploaded to Telegram from the attachments directory.
    web_photo = media.store_media_sync(bots.attachments, sample_jpeg(color="blue"), "photo", platform="web")
    async with bots.sessionmaker.begin() as session:
        await case_store.act(session, number, case.reporter_id, "add_to_case", photos=[case_store.Photo(
            platform="web", stored_path=web_photo.path, sha256=web_photo.sha256, size=web_photo.size,
            content_type=web_photo.content_type)])
    before = len(proxy.media)
    await staff.press(f"case:{number}")
    await staff.wait_for(f"act:{number}:accept")
    shown = [m for m in proxy.media[before:] if m.chat_id == chat]
    assert any(m.kind == "photo" and m.data == sample_jpeg(color="blue") for m in shown)
    assert any(m.kind == "location" and abs(m.latitude - GRID_POINT[0]) < 1e-6 for m in shown)
