"""The web chat over HTTP: the same dialogs as Telegram, idempotent retries, inbox, limits, headers, health, metrics."""

from __future__ import annotations

import asyncio
import hashlib
import html.parser
import re
import secrets
import struct
import zlib
from pathlib import Path

import pytest
from aiohttp import FormData
from sqlalchemy import func, select

from bot.dispatcher import Dispatcher
from bot.runtime import Runtime
from bot.settings import Settings
from bot.web import chat as web_chat
from bot.web.app import create_app
from bot.web.security import ChatLimits
from conversations.engine import Engine
from conversations.i18n import translate
from storage import cases as case_store
from storage.db import writing
from storage.models import Attachment, Case, Identity, WebInboxMessage

GRID = "5401-D1-01-01-G01"
GRID_POINT = (29.6558, 91.1220)  # inside GRID
STREET_LIGHT = "GM-0301"
CASE_NUMBER = re.compile(r"LS-\d{8}-\d{4}")
DESCRIPTIONS = {
    "zh": "楼下的路灯已经坏了三天，晚上很黑。",
    "bo": "ང་ཚོའི་ཁང་པའི་འོག་གི་ལམ་སྒྲོན་ཉིན་གསུམ་རིང་མི་འབར།",
}
STATIC = Path(web_chat.__file__).parent / "static"


def png(width: int = 2, height: int = 2) -> bytes:
    """A small valid PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def make_runtime(sessionmaker, tmp_path) -> Runtime:
    settings = Settings(
        database_url="(the test fixture's)", attachments_dir=str(tmp_path / "attachments"),
        telegram_token=None, public_url=None, dispatcher=False,
    )
    return Runtime(settings, sessionmaker.kw["bind"], sessionmaker, Engine(sessionmaker))


@pytest.fixture
def runtime(demo, tmp_path) -> Runtime:
    return make_runtime(demo, tmp_path)


@pytest.fixture
async def client(aiohttp_client, runtime):
    return await aiohttp_client(create_app(runtime))


class WebUser:
    """One browser: an opaque client id, numbered messages, the last answer."""

    def __init__(self, client, client_id: str | None = None):
        self.client = client
        self.client_id = client_id or secrets.token_hex(16)
        self.sent = 0
        self.posts = 0
        self.answer: dict = {}

    def next_id(self) -> str:
        self.sent += 1
        return f"m{self.sent}"

    async def post(self, message: dict, message_id: str | None = None, status: int = 200) -> dict:
        self.posts += 1
        response = await self.client.post(
            "/chat/send",
            json={"client_id": self.client_id, "message_id": message_id or self.next_id(), "message": message},
        )
        assert response.status == status, await response.text()
        body = await response.json()
        if status == 200:
            self.answer = body
        return body

    async def text(self, text: str) -> dict:
        return await self.post({"kind": "text", "text": text})

    async def press(self, data: str) -> dict:
        if not data.startswith(("menu:", "lang:")):
            assert data in self.buttons, f"no button {data!r} on screen: {self.buttons}"
        return await self.post({"kind": "button", "data": data})

    async def at(self, latitude: float, longitude: float) -> dict:
        return await self.post({"kind": "location", "latitude": latitude, "longitude": longitude})

    async def photo(self, content: bytes, status: int = 200, message_id: str | None = None) -> dict:
        form = FormData()
        form.add_field("photo", content, filename="photo.jpg", content_type="image/jpeg")
        response = await self.client.post(
            f"/chat/photo?client_id={self.client_id}&message_id={message_id or self.next_id()}", data=form
        )
        assert response.status == status, await response.text()
        body = await response.json()
        if status == 200:
            self.answer = body
        return body

    @property
    def text_shown(self) -> str:
        return "\n".join(r["text"] for r in self.answer["replies"])

    @property
    def buttons(self) -> list[str]:
        return [b["data"] for r in self.answer["replies"] for row in r["buttons"] for b in row]


def says(language: str, answer: dict, msgid: str) -> bool:
    """The reply contains the message's fixed parts (those around its placeholders) in that language."""
    text = "\n".join(r["text"] for r in answer["replies"])
    parts = [p.strip() for p in re.split(r"\{\w*\}", translate(language, msgid)) if p.strip()]
    return all(part in text for part in parts)


async def start(user: WebUser, language: str) -> None:
    await user.text("/start")
    assert set(user.buttons) == {"lang:zh", "lang:bo"}
    await user.press(f"lang:{language}")
    assert user.answer["language"] == language and user.answer["language_chosen"] is True
    assert "menu:report" in user.buttons


async def report_until_confirm(user: WebUser, language: str, *, photo: bytes | None = None) -> None:
    await user.press("menu:report")
    assert f"matter:{STREET_LIGHT}" in user.buttons
    await user.press(f"matter:{STREET_LIGHT}")
    await user.text(DESCRIPTIONS[language])
    assert any(r["request_location"] and r["location_label"] for r in user.answer["replies"]), user.answer
    await user.at(*GRID_POINT)
    assert "address:skip" in user.buttons, user.text_shown
    await user.press("address:skip")
    assert "photos:done" in user.buttons
    if photo is not None:
        await user.photo(photo)
        assert says(language, user.answer, "Photo {count} received. Send another, or press Done."), user.text_shown
    await user.press("photos:done")
    assert any(r["request_contact"] and r["contact_label"] for r in user.answer["replies"]), user.answer
    await user.post({"kind": "contact", "phone": "+86 138 1234 5678"})
    assert "confirm:submit" in user.buttons


async def report(user: WebUser, language: str, **kwargs) -> str:
    await start(user, language)
    await report_until_confirm(user, language, **kwargs)
    await user.press("confirm:submit")
    match = CASE_NUMBER.search(user.text_shown)
    assert match, user.text_shown
    return match.group(0)


@pytest.mark.parametrize("language", ["zh", "bo"])
async def test_resident_reports_through_the_web_chat(client, runtime, demo, language):
    user = WebUser(client)
    image = png()
    number = await report(user, language, photo=image)
    assert says(language, user.answer, "Your report has been filed. Case number: {number}\n\nGrid: {grid}\n"
                "Time limit for handling: {limit}, counted from when a department receives it.\n\n"
                "Keep the number: type it here at any time to see what has happened.")
    async with demo() as session:
        case = await session.scalar(select(Case).where(Case.number == number))
        assert case.grid.code == GRID
        assert case.description == DESCRIPTIONS[language]
        assert case.description_language == language
        assert case.contact_phone == "13812345678"
        attachments = list(await session.scalars(select(Attachment).where(Attachment.case_id == case.id)))
        identity = await session.scalar(select(Identity).where(Identity.platform == "web", Identity.external_id == user.client_id))
        assert identity.chat_id == user.client_id and identity.person_id == case.reporter_id
    assert len(attachments) == 1
    digest = hashlib.sha256(image).hexdigest()
    assert attachments[0].sha256 == digest and attachments[0].size == len(image) and attachments[0].platform == "web"
    assert attachments[0].platform_file_id is None
    # Stored relative to the attachments directory (which may move), by content.
    assert not Path(attachments[0].stored_path).is_absolute()
    stored = Path(runtime.settings.attachments_dir) / attachments[0].stored_path
    assert stored.read_bytes() == image and stored.name == f"{digest}.png"
    assert not list(stored.parent.parent.glob(".upload-*"))  # no temporary file left

    # The same person, later (a reload keeps the client id): typing the number shows the case.
    await user.text(number)
    assert number in user.text_shown


async def test_deep_link_opens_the_grid(client):
    user = WebUser(client)
    await user.text(f"/start grid_{GRID}")  # what the page sends for /?grid=CODE
    assert set(user.buttons) == {"lang:zh", "lang:bo"}
    await user.press("lang:bo")
    assert GRID in user.text_shown and "menu:report" in user.buttons
    assert says("bo", user.answer, "Grid code: {code}")


async def test_a_retried_post_files_one_case(client, runtime, demo, aiohttp_client):
    user = WebUser(client)
    await start(user, "zh")
    await report_until_confirm(user, "zh")
    first = await user.post({"kind": "button", "data": "confirm:submit"}, message_id="submit-1")
    again = await user.post({"kind": "button", "data": "confirm:submit"}, message_id="submit-1")
    assert again == first and CASE_NUMBER.search(first["replies"][0]["text"])
    # A retry reaching another instance (no answer in memory) is handled only once, and still gets
    # the answer (kept with the update in the database), case number included.
    other = WebUser(await aiohttp_client(create_app(runtime)), user.client_id)
    elsewhere = await other.post({"kind": "button", "data": "confirm:submit"}, message_id="submit-1")
    assert elsewhere["replies"][0]["text"] == first["replies"][0]["text"]
    async with demo() as session:
        assert await session.scalar(select(func.count()).select_from(Case)) == 1


async def test_the_same_post_twice_at_once_files_one_case(client, demo):
    user = WebUser(client)
    await start(user, "bo")
    await report_until_confirm(user, "bo")
    answers = await asyncio.gather(*[
        user.post({"kind": "button", "data": "confirm:submit"}, message_id="submit-x") for _ in range(3)
    ])
    assert all(a == answers[0] for a in answers) and CASE_NUMBER.search(answers[0]["replies"][0]["text"])
    async with demo() as session:
        assert await session.scalar(select(func.count()).select_from(Case)) == 1


async def demo_person(session, web_id: str) -> int:
    return await session.scalar(select(Identity.person_id).where(Identity.platform == "web", Identity.external_id == web_id))


async def accept(demo, number: str) -> None:
    """The township centre of the demo district accepts the case."""
    async with demo.begin() as session:
        await writing(session)
        centre = await demo_person(session, "demo-centre-gesang")
        await case_store.act(session, number, centre, "accept")


def dispatcher_for(runtime: Runtime) -> Dispatcher:
    assert [c.platform for c in runtime.channels] == ["web"]
    return Dispatcher(runtime.sessionmaker, runtime.channels)


async def drain(dispatcher: Dispatcher) -> None:
    while await dispatcher.drain_once():
        pass


@pytest.mark.parametrize("language", ["zh", "bo"])
async def test_staff_action_reaches_the_web_inbox(client, runtime, demo, language):
    user = WebUser(client)
    number = await report(user, language)
    dispatcher = dispatcher_for(runtime)
    await drain(dispatcher)  # the report's own notices go to the demo staff's web inboxes

    async with demo() as session:
        centre = await demo_person(session, "demo-centre-gesang")
        staff_inbox = list(await session.scalars(select(WebInboxMessage).where(WebInboxMessage.person_id == centre)))
    assert any(number in m.payload["text"] for m in staff_inbox)
    assert (await (await client.get(f"/chat/inbox?client_id={user.client_id}")).json()) == {"messages": []}

    await accept(demo, number)
    await drain(dispatcher)
    assert dispatcher.sent >= 2 and dispatcher.failures == 0

    inbox = await (await client.get(f"/chat/inbox?client_id={user.client_id}")).json()
    [message] = inbox["messages"]
    assert number in message["reply"]["text"]
    assert translate(language, "Open case {number}", number=number) in [
        b["label"] for row in message["reply"]["buttons"] for b in row
    ]
    assert [b["data"] for row in message["reply"]["buttons"] for b in row] == [f"case:{number}"]
    # Until the page confirms it has it (by asking for what came after), it is offered again: a lost
    # answer loses nothing. Once confirmed it is marked seen.
    again = await (await client.get(f"/chat/inbox?client_id={user.client_id}")).json()
    assert [m["id"] for m in again["messages"]] == [message["id"]]
    confirmed = await (await client.get(f"/chat/inbox?client_id={user.client_id}&after={message['id']}")).json()
    assert confirmed == {"messages": []}
    async with demo() as session:
        row = await session.get(WebInboxMessage, message["id"])
        assert row.seen_at is not None
    # The button in the notification opens the case in the chat.
    await user.post({"kind": "button", "data": f"case:{number}"})
    assert number in user.text_shown


async def test_notifications_are_pushed_live_to_an_open_page(aiohttp_client, runtime, demo):
    client = await aiohttp_client(create_app(runtime, chat_limits=ChatLimits(inbox_poll_seconds=30, keepalive_seconds=30)))
    user = WebUser(client)
    number = await report(user, "bo")
    dispatcher = dispatcher_for(runtime)
    await drain(dispatcher)

    events = await client.get(f"/chat/events?client_id={user.client_id}")
    assert events.status == 200 and events.headers["Content-Type"].startswith("text/event-stream")
    assert await asyncio.wait_for(events.content.readline(), 5) == b"retry: 3000\n"
    await accept(demo, number)
    await drain(dispatcher)  # the WebChannel wakes the stream: no waiting for the 30 s poll

    async def next_event() -> dict:
        fields = {}
        while True:
            line = (await events.content.readline()).decode().rstrip("\n")
            if not line:
                if fields:
                    return fields
                continue
            key, _, value = line.partition(": ")
            fields[key] = value

    event = await asyncio.wait_for(next_event(), 5)
    assert event["event"] == "message" and number in event["data"]
    events.close()
    # The page confirms what it holds on its next request (or the browser's Last-Event-ID on reconnect).
    await client.get(f"/chat/inbox?client_id={user.client_id}&after={event['id']}")
    async with demo() as session:
        assert await session.scalar(select(func.count()).select_from(WebInboxMessage).where(
            WebInboxMessage.person_id == await session.scalar(select(Case.reporter_id).where(Case.number == number)),
            WebInboxMessage.seen_at.is_(None))) == 0


async def test_rate_limit_answers_429_with_retry_after(aiohttp_client, runtime):
    client = await aiohttp_client(create_app(runtime, chat_limits=ChatLimits(client_burst=3, client_per_second=0.01)))
    user = WebUser(client)
    for _ in range(3):
        await user.text("/start")
    refused = await user.post({"kind": "text", "text": "/start"}, status=429)
    assert refused["error"]["code"] == "rate_limited"
    response = await client.post("/chat/send", json={"client_id": user.client_id, "message_id": "x", "message": {"kind": "text", "text": "/help"}})
    assert response.status == 429 and int(response.headers["Retry-After"]) >= 1
    # Another person behind the same address is not held back by this one.
    await WebUser(client).text("/start")


async def test_rate_limit_per_address(aiohttp_client, runtime):
    client = await aiohttp_client(create_app(runtime, chat_limits=ChatLimits(ip_burst=2, ip_per_second=0.01)))
    await WebUser(client).text("/start")
    await WebUser(client).text("/start")
    await WebUser(client).post({"kind": "text", "text": "/start"}, status=429)


async def test_size_limits_and_validation(aiohttp_client, runtime):
    limits = ChatLimits(photo_bytes=1024, json_bytes=2048, text_chars=100)
    client = await aiohttp_client(create_app(runtime, chat_limits=limits))
    user = WebUser(client)
    assert (await user.post({"kind": "text", "text": "路" * 101}, status=413))["error"]["code"] == "too_large"
    response = await client.post("/chat/send", data=b"{" + b" " * 4096 + b"}", headers={"Content-Type": "application/json"})
    assert response.status == 413
    assert (await user.photo(png() + b"\x00" * 2000, status=413))["error"]["code"] == "too_large"
    assert (await user.photo(b"<svg onload=alert(1)></svg>", status=415))["error"]["code"] == "invalid_photo"
    for bad in [{"kind": "photo"}, {"kind": "location", "latitude": 200, "longitude": 0}, {"kind": "contact", "phone": 5},
                {"kind": "button", "data": "x" * 65}, {"kind": "text", "text": "  "}, "hello"]:
        assert (await user.post(bad, status=400))["error"]["code"] == "invalid_message"
    # Typed into the phone box but no phone number: the dialog answers it (the page shows that answer).
    assert (await user.post({"kind": "contact", "phone": "123"}))["replies"]
    for body in [{"client_id": "demo-resident-zh", "message_id": "1", "message": {"kind": "text", "text": "/start"}},
                 {"client_id": user.client_id, "message_id": "no spaces", "message": {"kind": "text", "text": "/start"}}]:
        response = await client.post("/chat/send", json=body)
        assert response.status == 400 and (await response.json())["error"]["code"].startswith("invalid_")
    assert (await client.get("/chat/inbox?client_id=../../etc")).status == 400
    attachments = Path(runtime.settings.attachments_dir)
    assert not attachments.exists() or not [p for p in attachments.rglob("*") if p.is_file()]


async def test_security_headers_and_no_inline_script(client):
    for path in ["/", "/chat/strings?lang=bo", "/static/chat.js", "/static/chat.css"]:
        response = await client.get(path)
        assert response.status == 200, path
        headers = response.headers
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert "geolocation=(self)" in headers["Permissions-Policy"]
        assert "unsafe-inline" not in headers["Content-Security-Policy"]
    page = await client.get("/")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "connect-src 'self'" in csp
    assert page.headers["Cache-Control"] == "no-store"

    class Check(html.parser.HTMLParser):
        def __init__(self):
            super().__init__()
            self.problems: list[str] = []

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "script" and not attrs.get("src", "").startswith("/static/"):
                self.problems.append("inline script")
            if tag == "style" or "style" in attrs:
                self.problems.append("inline style")
            self.problems += [f"handler {name}" for name in attrs if name.startswith("on")]

    checker = Check()
    checker.feed(await page.text())
    assert not checker.problems
    script = (STATIC / "chat.js").read_text(encoding="utf-8")
    for unsafe in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert unsafe not in script, unsafe
    # The page's own words come from the catalogs, in both languages.
    for language in ("zh", "bo"):
        strings = (await (await client.get(f"/chat/strings?lang={language}")).json())["strings"]
        assert set(strings) == set(web_chat.STRINGS)
        assert strings["send"] == translate(language, "Send")
        assert "{" not in strings["photo_too_large"]


async def test_the_page_names_tibetan_fonts(client):
    css = (await (await client.get("/static/chat.css")).text())
    for font in ("Noto Sans Tibetan", "Noto Serif Tibetan", "Jomolhari", "Microsoft Himalaya", "Kailasa", "PingFang SC"):
        assert font in css
    page = await (await client.get("/")).text()
    assert re.search(r'/static/chat\.js\?v=[0-9a-f]{12}"', page)
    assert translate("bo", "Lhasa grid service") in page


async def test_healthz(client):
    response = await client.get("/healthz")
    assert response.status == 200 and await response.json() == {"status": "ok"}


SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? -?[0-9.e+]+$')


async def test_metrics(client):
    user = WebUser(client)
    number = await report(user, "zh")
    await user.post({"kind": "text", "text": "/help"}, message_id="same")
    await user.post({"kind": "text", "text": "/help"}, message_id="same")
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    body = await response.text()
    values = {}
    for line in body.splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) \S+ .+$", line), line
            continue
        assert SAMPLE.match(line), line
        name, _, value = line.rpartition(" ")
        values[name] = float(value)
    assert values['gridbot_updates_received_total{platform="web"}'] == user.posts
    assert values['gridbot_updates_handled_total{platform="web"}'] == user.posts - 1
    assert values['gridbot_updates_duplicate_total{platform="web"}'] == 1
    assert values['gridbot_dialog_steps_total{platform="web"}'] >= user.posts - 1
    assert values['gridbot_cases{state="reported"}'] == 1
    assert values["gridbot_outbox_backlog"] >= 1  # the report's notices to the centre and the grid workers
    assert values["gridbot_send_failures_total"] == 0
    assert values["gridbot_database_up"] == 1
    assert number


async def test_a_notice_written_by_another_instance_wakes_the_page_and_idle_pages_do_not_poll(
        aiohttp_client, demo, tmp_path):
    """Two instances (two engines on one database): the page's stream is open on the second, the
    notice is written by the first's dispatcher; the store wakes the stream (LISTEN/NOTIFY on
    PostgreSQL), while idle streams leave the database alone."""
    from sqlalchemy import event as sa_event

    from storage.db import make_engine, make_sessionmaker

    if demo.kw["bind"].dialect.name != "postgresql":
        pytest.skip("several instances need PostgreSQL; one SQLite instance is woken in-process (test above)")
    other_maker = make_sessionmaker(make_engine(demo.kw["bind"].url.render_as_string(hide_password=False)))
    statements = []
    sa_event.listen(other_maker.kw["bind"].sync_engine, "before_cursor_execute",
                    lambda *args: statements.append(args[2]))
    first, second = make_runtime(demo, tmp_path), make_runtime(other_maker, tmp_path)
    writer = await aiohttp_client(create_app(first))
    reader = await aiohttp_client(create_app(second, chat_limits=ChatLimits(inbox_poll_seconds=600, keepalive_seconds=600)))
    try:
        user = WebUser(writer)
        number = await report(user, "zh")
        await drain(dispatcher_for(first))
        idle = [await reader.get(f"/chat/events?client_id={secrets.token_hex(16)}") for _ in range(5)]
        events = await reader.get(f"/chat/events?client_id={user.client_id}")
        assert await asyncio.wait_for(events.content.readline(), 5) == b"retry: 3000\n"
        await asyncio.sleep(0.5)
        before = len(statements)
        await asyncio.sleep(1.5)
        assert len(statements) == before  # six open pages, no queries
        await accept(demo, number)
        started = asyncio.get_running_loop().time()
        await drain(dispatcher_for(first))
        while True:
            line = (await asyncio.wait_for(events.content.readline(), 5)).decode()
            if line.startswith("data: "):
                break
        assert number in line and asyncio.get_running_loop().time() - started < 2
        for stream in idle + [events]:
            stream.close()
    finally:
        await other_maker.kw["bind"].dispose()
