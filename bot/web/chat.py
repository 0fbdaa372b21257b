"""The web chat: one more adapter over the same dialogs (`conversations.engine`), and its notification channel.

The page (`static/`) keeps an opaque random id in localStorage; that id is the
person's web identity (`Sender("web", client_id)`). Every message carries a
client-made message id, and `f"{client_id}:{message_id}"` is the engine's update
id, so a POST retried after a lost answer is handled once.

Endpoints:
    GET  /                         the page (`/?grid=CODE` opens that grid: the page sends `/start grid_CODE`)
    GET  /chat/strings?lang=bo     the page's own words, from the catalogs
    POST /chat/send                {client_id, message_id, message: {kind, text, data, latitude, longitude, phone},
                                    (a retried message id gets the first answer again, from any instance)
                                    language_code?} → {replies: [...], language, language_chosen}
    POST /chat/photo?client_id=…&message_id=…   multipart, one part named "photo" → same answer as /chat/send
    POST /chat/voice?client_id=…&message_id=…&duration=S   multipart, one part named "voice" (the browser's
                                   MediaRecorder, Opus in WebM or Ogg) → same answer as /chat/send
    GET  /chat/inbox?client_id=…   notifications waiting for this person (marked seen) → {messages: [...]}
    GET  /chat/events?client_id=…  Server-Sent Events: the same messages pushed while the page is open
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from collections import OrderedDict, defaultdict
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import select, text, update

from conversations.dialogs.menu import LANGUAGE_NAMES
from conversations.engine import Sender
from conversations.i18n import LANGUAGES, N_, number, translate
from conversations.protocol import Inbound, Reply
from storage import media as stored_media
from storage.db import write_gate, writing
from storage.models import Identity, Person, WebInboxMessage
from storage.timeutil import utcnow

from ..runtime import Runtime
from .media import LINKS, MediaLinks
from .media import setup as setup_media
from .security import OUTAGE, RETRY_AFTER_OUTAGE, ChatLimits, RateLimiter, WebError, client_address, read_body, unstorable_input

log = logging.getLogger("gridbot.web.chat")

PLATFORM = "web"
STATIC_DIR = Path(__file__).resolve().parent / "static"
CLIENT_ID = re.compile(r"^[0-9a-f]{32}$")  # 128 random bits made by the page; nothing guessable
MESSAGE_ID = re.compile(r"^[A-Za-z0-9_-]{1,24}$")
PHONE = re.compile(r"^\+?[0-9][0-9 ()\-]{4,30}$")
LANGUAGE_CODE = re.compile(r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{1,8}){0,3}$")
KINDS = ("text", "button", "location", "contact")
RECENT_ANSWERS = 2000  # answers kept in memory for retried POSTs
IMAGE_TYPES = stored_media.IMAGE_TYPES

# The page's own words. Message ids are English; the catalogs translate them.
STRINGS = {
    "title": N_("Lhasa grid service"),
    "placeholder": N_("Type a message…"),
    "send": N_("Send"),
    "photo": N_("Send a photo"),
    "menu": N_("☰ Menu"),
    "language": N_("Language"),
    "share_location": N_("📍 Share my location"),
    "share_phone": N_("📞 Share my phone number"),
    "phone_placeholder": N_("Your phone number"),
    "my_location": N_("📍 Location shared"),
    "my_photo": N_("📷 Photo"),
    "sending": N_("Sending…"),
    "send_failed": N_("Not sent yet: no connection. It will be sent again automatically."),
    "send_dropped": N_("This message could not be handled. Please try again, or choose from the menu."),
    "location_failed": N_("Your location could not be read. Allow location access, or choose the place from the list."),
    "photo_too_large": N_("The photo is too large: at most {size}."),
    "photo_unreadable": N_("This file is not a photo. Please send a picture."),
    "rate_limited": N_("Too many messages at once. Please wait a moment."),
    "record": N_("🎤 Record a voice message"),
    "stop_recording": N_("⏹ Stop and send"),
    "my_voice": N_("🎤 Voice message"),
    "voice_too_long": N_("The voice message is too long: at most {minutes} minutes."),
    "voice_too_large": N_("The voice message is too large: at most {voice_size}."),
    "voice_unreadable": N_("This recording could not be read. Please try again."),
    "microphone_failed": N_("The microphone could not be used. Allow microphone access, or type your message."),
    "open_map": N_("📍 Open the place on a map"),
    "send_refused": N_("This message was not accepted. Please check it and try again."),
    "menu_label": N_("Menu"),
    "photo_label": N_("Photo"),
}

async def favicon(request: web.Request) -> web.Response:
    return web.Response(body=(STATIC_DIR / "favicon.ico").read_bytes(), content_type="image/x-icon",
                        headers={"Cache-Control": "public, max-age=86400"})


def _after(value: str | None) -> int:
    """The id of the last inbox message the page has (0: none)."""
    return int(value) if value and value.isascii() and value.isdigit() and len(value) < 19 else 0


def reply_payload(reply: Reply) -> dict[str, Any]:
    """A Reply as JSON for the page (and as stored in the web inbox)."""
    return {
        "text": reply.text,
        "buttons": [[{"label": b.label, "data": b.data} for b in row] for row in reply.buttons],
        "request_location": reply.request_location,
        "location_label": reply.location_label,
        "request_contact": reply.request_contact,
        "contact_label": reply.contact_label,
        # Evidence by attachment id only: each delivery signs fresh, short-lived links (see media.py).
        "media": [{k: m.get(k) for k in ("attachment", "kind", "content_type", "variant")} for m in reply.media],
        "location": reply.location,
    }


def page_strings(language: str, limits: ChatLimits) -> dict[str, str]:
    params = {"size": translate(language, "{megabytes} MB", megabytes=number(language, limits.photo_bytes // (1024 * 1024))),
              "voice_size": translate(language, "{megabytes} MB",
                                      megabytes=number(language, stored_media.MAX_VOICE_BYTES // (1024 * 1024))),
              "minutes": number(language, stored_media.MAX_VOICE_SECONDS // 60)}
    return {key: translate(language, msgid, **{k: v for k, v in params.items() if "{" + k in msgid}) for key, msgid in STRINGS.items()}


INBOX_CHANNEL = "gridbot_web_inbox"  # PostgreSQL NOTIFY channel: the payload is a person id


class InboxSignals:
    """Wakes the open event streams of a person when their inbox gets a message (in this process)."""

    def __init__(self) -> None:
        self.listeners: dict[object, set[asyncio.Event]] = defaultdict(set)  # person id, or ("client", id)

    def listen(self, person_id, event: asyncio.Event) -> None:
        self.listeners[person_id].add(event)

    def forget(self, person_id, event: asyncio.Event) -> None:
        listeners = self.listeners.get(person_id)
        if listeners is not None:
            listeners.discard(event)
            if not listeners:
                del self.listeners[person_id]

    def notify(self, person_id) -> None:
        for event in self.listeners.get(person_id, ()):
            event.set()

    def notify_all(self) -> None:
        for listeners in self.listeners.values():
            for event in listeners:
                event.set()


class WebChannel:
    """The dispatcher's channel for web-chat users: a notification becomes a message in their web inbox."""

    platform = PLATFORM

    def __init__(self, sessionmaker, signals: InboxSignals | None = None):
        self.sessionmaker = sessionmaker
        self.signals = signals or InboxSignals()

    async def send(self, chat_id: str, reply: Reply) -> None:
        async with write_gate(self.sessionmaker.kw.get("bind")), self.sessionmaker.begin() as session:
            await writing(session)
            person_id = await _web_person(session, chat_id)
            if person_id is None:
                raise LookupError(f"no web identity {chat_id!r}")  # retried with backoff, then given up
            session.add(WebInboxMessage(person_id=person_id, payload=reply_payload(reply)))
            if session.bind.dialect.name == "postgresql":  # wakes that page's stream on every instance, at commit
                await session.execute(text("SELECT pg_notify(:channel, :person)"),
                                      {"channel": INBOX_CHANNEL, "person": str(person_id)})
        self.signals.notify(person_id)


async def _web_person(session, chat_id: str) -> int | None:
    person_id = await session.scalar(
        select(Identity.person_id).where(Identity.platform == PLATFORM, Identity.external_id == chat_id)
    )
    if person_id is None:
        person_id = await session.scalar(
            select(Identity.person_id).where(Identity.platform == PLATFORM, Identity.chat_id == chat_id).limit(1)
        )
    return person_id


class WebChat:
    def __init__(self, runtime: Runtime, limits: ChatLimits | None = None):
        self.runtime = runtime
        self.limits = limits or ChatLimits()
        self.signals = InboxSignals()
        self.channel = WebChannel(runtime.sessionmaker, self.signals)
        self.client_limiter = RateLimiter(self.limits.client_burst, self.limits.client_per_second)
        self.ip_limiter = RateLimiter(self.limits.ip_burst, self.limits.ip_per_second)
        self.answers: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.in_flight: dict[str, asyncio.Future] = {}
        self.people: dict[str, int] = {}  # client id -> person id (never changes)
        self.streams: dict[str, int] = defaultdict(int)
        self.stopping = asyncio.Event()
        self.index_html = _index_html()
        self.links: MediaLinks = MediaLinks(runtime)

    # -- plumbing --------------------------------------------------------------------------

    def count(self, name: str, by: int = 1) -> None:
        self.runtime.count(f'{name}{{platform="{PLATFORM}"}}', by)

    def limit(self, request: web.Request, client_id: str | None, cost: float = 1.0) -> None:
        wait = self.ip_limiter.take(f"ip:{client_address(request)}", cost)
        if not wait and client_id:
            wait = self.client_limiter.take(f"client:{client_id}", cost)
        if wait:
            self.count("rate_limited")
            raise WebError(429, "rate_limited", "too many requests; try again later", retry_after=wait)

    async def person_id(self, client_id: str) -> int | None:
        if client_id in self.people:
            return self.people[client_id]
        async with self.runtime.sessionmaker() as session:
            person_id = await session.scalar(
                select(Identity.person_id).where(Identity.platform == PLATFORM, Identity.external_id == client_id)
            )
        if person_id is not None:
            if len(self.people) >= 100_000:
                self.people.clear()  # a cache only
            self.people[client_id] = person_id
        return person_id

    async def handle(self, client_id: str, message: Inbound, message_id: str, language_code: str | None) -> dict[str, Any]:
        """One message through the engine; a retried message id gets the first answer again."""
        update_id = f"{client_id}:{message_id}"
        self.count("updates_received")
        if update_id in self.answers:
            self.count("updates_duplicate")
            return self.answers[update_id]
        if update_id in self.in_flight:  # the same POST twice at once: wait for the first
            self.count("updates_duplicate")
            return await asyncio.shield(self.in_flight[update_id])
        future = asyncio.get_running_loop().create_future()
        self.in_flight[update_id] = future
        try:
            sender = Sender(PLATFORM, client_id, chat_id=client_id, language_code=language_code)
            replies = await self.runtime.engine.handle(sender, message, update_id=update_id)
            self.signals.notify(("client", client_id))  # an open stream of theirs may have been waiting for them to exist
            answer = await self._answer(client_id, replies)
        except Exception as exc:
            self.count("updates_failed")  # logged by the endpoint
            future.set_exception(exc)
            future.exception()  # marked as retrieved: nobody else may be waiting
            raise
        except BaseException:
            future.cancel()
            raise
        finally:
            self.in_flight.pop(update_id, None)
        if not replies.repeated:
            self.count("updates_handled")
            self.count("dialog_steps", len(replies))
        else:
            self.count("updates_duplicate")  # handled before (another instance, or long ago): the same answer again
        future.set_result(answer)
        self.answers[update_id] = answer
        while len(self.answers) > RECENT_ANSWERS:
            self.answers.popitem(last=False)
        return answer

    async def _answer(self, client_id: str, replies: list[Reply]) -> dict[str, Any]:
        language, chosen = "zh", False
        person_id = await self.person_id(client_id)
        if person_id is not None:
            async with self.runtime.sessionmaker() as session:
                row = (await session.execute(select(Person.language, Person.language_chosen).where(Person.id == person_id))).first()
            if row is not None:
                language, chosen = row
        payloads = [await self.links.with_links(reply_payload(r)) for r in replies]
        return {"replies": payloads, "language": language, "language_chosen": bool(chosen)}

    async def inbox_after(self, person_id: int, after: int, limit: int = 50) -> list[dict[str, Any]]:
        """Inbox messages newer than `after`, the last one the page confirmed it has. Those up to
        `after` are marked seen; the rest stay until confirmed, so a lost answer loses nothing."""
        if after > 0:
            async with self.runtime.sessionmaker.begin() as session:
                await writing(session)
                await session.execute(
                    update(WebInboxMessage)
                    .where(WebInboxMessage.person_id == person_id, WebInboxMessage.id <= after,
                           WebInboxMessage.seen_at.is_(None))
                    .values(seen_at=utcnow())
                    .execution_options(synchronize_session=False)
                )
        async with self.runtime.sessionmaker() as session:
            rows = (await session.execute(
                select(WebInboxMessage.id, WebInboxMessage.payload, WebInboxMessage.created_at)
                .where(WebInboxMessage.person_id == person_id, WebInboxMessage.id > after,
                       WebInboxMessage.seen_at.is_(None))
                .order_by(WebInboxMessage.id)
                .limit(limit)
            )).all()
        self.count("inbox_delivered", len(rows))
        return [{"id": id_, "created_at": created.isoformat(), "reply": await self.links.with_links(payload)}
                for id_, payload, created in rows]

    # -- endpoints ---------------------------------------------------------------------------

    async def index(self, request: web.Request) -> web.Response:
        return web.Response(text=self.index_html, content_type="text/html", charset="utf-8")

    async def strings(self, request: web.Request) -> web.Response:
        self.limit(request, None, 0.2)
        language = request.query.get("lang", "zh")
        if language not in LANGUAGES:
            language = "zh"
        return web.json_response({
            "lang": language,
            "strings": page_strings(language, self.limits),
            "languages": LANGUAGE_NAMES,
            "limits": {"photo_bytes": self.limits.photo_bytes, "text_chars": self.limits.text_chars,
                       "voice_bytes": stored_media.MAX_VOICE_BYTES, "voice_seconds": stored_media.MAX_VOICE_SECONDS},
        })

    async def send(self, request: web.Request) -> web.Response:
        body = await read_body(request, self.limits.json_bytes)
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deeply
            raise WebError(400, "invalid_json", "the body is not JSON") from None
        if not isinstance(data, dict):
            raise WebError(400, "invalid_json", "the body must be a JSON object")
        client_id = _client_id(data.get("client_id"))
        message_id = _message_id(data.get("message_id"))
        self.limit(request, client_id)
        message = self.inbound(data.get("message"))
        answer = await self.handle(client_id, message, message_id, _language_code(data.get("language_code")))
        return web.json_response(answer)

    def inbound(self, raw: Any) -> Inbound:
        if not isinstance(raw, dict) or raw.get("kind") not in KINDS:
            raise WebError(400, "invalid_message", f"message.kind must be one of {', '.join(KINDS)}")
        kind = raw["kind"]
        if kind == "text":
            text = raw.get("text")
            if not isinstance(text, str) or not text.strip():
                raise WebError(400, "invalid_message", "message.text must be a non-empty string")
            if len(text) > self.limits.text_chars:
                raise WebError(413, "too_large", f"message.text is longer than {self.limits.text_chars} characters")
            return Inbound.of_text(text.strip())
        if kind == "button":
            data = raw.get("data")
            if not isinstance(data, str) or not 0 < len(data) <= 64:
                raise WebError(400, "invalid_message", "message.data must be a string of 1 to 64 characters")
            return Inbound.press(data)
        if kind == "location":
            latitude, longitude = raw.get("latitude"), raw.get("longitude")
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (latitude, longitude)) \
                    or not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
                raise WebError(400, "invalid_message", "message.latitude and message.longitude must be WGS84 degrees")
            return Inbound.at(float(latitude), float(longitude))
        phone = raw.get("phone")
        if not isinstance(phone, str) or not phone.strip() or len(phone) > 64:
            raise WebError(400, "invalid_message", "message.phone must be a phone number")
        if not PHONE.match(phone.strip()):
            # Typed into the phone box but not a number (`123`): the dialog answers it, as it answers typed text.
            return Inbound.of_text(phone.strip())
        return Inbound("contact", phone=phone.strip())

    async def photo(self, request: web.Request) -> web.Response:
        return await self.upload(request, "photo")

    async def voice(self, request: web.Request) -> web.Response:
        return await self.upload(request, "voice")

    async def upload(self, request: web.Request, kind: str) -> web.Response:
        """A photo or voice note: checked and stored (storage.media), then handled like any message."""
        client_id = _client_id(request.query.get("client_id"))
        message_id = _message_id(request.query.get("message_id"))
        update_id = f"{client_id}:{message_id}"
        if update_id in self.answers:  # a retried upload: do not even read it again
            self.count("updates_received")
            self.count("updates_duplicate")
            return web.json_response(self.answers[update_id])
        self.limit(request, client_id, self.limits.photo_cost)
        limit = self.limits.photo_bytes if kind == "photo" else stored_media.MAX_VOICE_BYTES
        if request.content_length is not None and request.content_length > limit + 16 * 1024:
            raise WebError(413, "too_large", f"a {kind} may have at most {limit} bytes")
        invalid = f"invalid_{kind}"
        if not request.content_type.startswith("multipart/"):
            raise WebError(400, invalid, f"send the {kind} as multipart/form-data, in a part named {kind}")
        reader = await request.multipart()
        part = await reader.next()
        while part is not None and getattr(part, "name", None) != kind:
            await part.release()
            part = await reader.next()
        if part is None or not hasattr(part, "read_chunk"):
            raise WebError(400, invalid, f"send the {kind} as multipart/form-data, in a part named {kind}")
        data = bytearray()
        while chunk := await part.read_chunk(64 * 1024):
            data += chunk
            if len(data) > limit:
                raise WebError(413, "too_large", f"a {kind} may have at most {limit} bytes")
        declared = request.query.get("duration", "")
        duration = float(declared) if declared.replace(".", "", 1).isdigit() and len(declared) < 10 else None
        try:
            stored = await stored_media.store_media(self.runtime.settings.attachments_dir, bytes(data), kind,
                                                    platform=PLATFORM, duration_seconds=duration)
        except stored_media.MediaRefused as refused:
            status = {"too_large": 413, "too_long": 422}.get(refused.code, 415)
            code = {"too_large": "too_large", "too_long": "too_long"}.get(refused.code, invalid)
            raise WebError(status, code, str(refused)) from None
        message = Inbound.stored(kind, stored)
        self.count(f"{kind}s_received")
        answer = await self.handle(client_id, message, message_id, _language_code(request.query.get("language_code")))
        return web.json_response(answer)

    async def inbox(self, request: web.Request) -> web.Response:
        client_id = _client_id(request.query.get("client_id"))
        self.limit(request, client_id, 0.5)
        person_id = await self.person_id(client_id)
        after = _after(request.query.get("after"))
        messages = await self.inbox_after(person_id, after) if person_id is not None else []
        return web.json_response({"messages": messages})

    async def events(self, request: web.Request) -> web.StreamResponse:
        client_id = _client_id(request.query.get("client_id"))
        self.limit(request, client_id)
        if self.streams[client_id] >= self.limits.streams_per_client:
            raise WebError(429, "too_many_streams", "too many open event streams for this client", retry_after=30)
        self.streams[client_id] += 1
        wake = asyncio.Event()
        person_id = None
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8", "X-Accel-Buffering": "no"})
        try:
            # The browser sends Last-Event-ID when it reconnects: go on from there.
            last = _after(request.headers.get("Last-Event-ID") or request.query.get("after"))
            await response.prepare(request)
            await response.write(b"retry: 3000\n\n")
            quiet_since = looked_at = time.monotonic()
            look = True  # at once, then when woken, and as a safety net every inbox_poll_seconds
            while not self.stopping.is_set():
                if request.transport is None or request.transport.is_closing():
                    break
                if person_id is None and look:
                    person_id = await self.person_id(client_id)
                    if person_id is not None:
                        self.signals.forget(("client", client_id), wake)
                        self.signals.listen(person_id, wake)
                    else:
                        self.signals.listen(("client", client_id), wake)  # woken by their first message here
                wake.clear()
                if person_id is not None and look:
                    for message in await self.inbox_after(person_id, last):
                        last = message["id"]
                        data = json.dumps(message, ensure_ascii=False)
                        await response.write(f"id: {message['id']}\nevent: message\ndata: {data}\n\n".encode())
                        quiet_since = time.monotonic()
                    looked_at = time.monotonic()
                now = time.monotonic()
                if now - quiet_since >= self.limits.keepalive_seconds:
                    await response.write(b": keepalive\n\n")
                    quiet_since = now
                timeout = min(self.limits.keepalive_seconds - (now - quiet_since),
                              self.limits.inbox_poll_seconds - (now - looked_at))
                try:
                    await asyncio.wait_for(wake.wait(), timeout=max(0.05, timeout))
                    look = True
                except asyncio.TimeoutError:
                    look = time.monotonic() - looked_at >= self.limits.inbox_poll_seconds
        except (ConnectionError, asyncio.CancelledError):
            pass  # the page went away
        finally:
            self.signals.forget(person_id if person_id is not None else ("client", client_id), wake)
            self.streams[client_id] -= 1
            if self.streams[client_id] <= 0:
                del self.streams[client_id]
        return response

    async def on_startup(self, app: web.Application) -> None:
        db = getattr(self.runtime, "db", None)
        if db is not None and db.dialect.name == "postgresql":
            self.listener = asyncio.create_task(self.listen_for_notices(db), name="web inbox listener")

    async def listen_for_notices(self, db) -> None:
        """LISTEN for inbox notices written by any instance and wake the streams of this one."""
        def woken(_connection, _pid, _channel, payload: str) -> None:
            if payload.isdigit():
                self.signals.notify(int(payload))

        while not self.stopping.is_set():
            try:
                async with db.connect() as connection:
                    raw = (await connection.get_raw_connection()).driver_connection
                    await raw.add_listener(INBOX_CHANNEL, woken)
                    self.signals.notify_all()  # anything written while we were not listening
                    while not self.stopping.is_set() and not raw.is_closed():
                        try:
                            await asyncio.wait_for(self.stopping.wait(), timeout=30)
                        except asyncio.TimeoutError:
                            await connection.exec_driver_sql("SELECT 1")  # notices a dead connection
                    if not raw.is_closed():
                        await raw.remove_listener(INBOX_CHANNEL, woken)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("web inbox listener: %s; listening again in 5 s", type(exc).__name__)
                try:
                    await asyncio.wait_for(self.stopping.wait(), timeout=5)
                except asyncio.TimeoutError:
                    pass

    async def on_shutdown(self, app: web.Application) -> None:
        self.stopping.set()
        self.signals.notify_all()
        listener = getattr(self, "listener", None)
        if listener is not None:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)


CHAT = web.AppKey("web_chat", WebChat)


image_type = stored_media.image_type  # the image format from the file's first bytes


def _client_id(value: Any) -> str:
    if not isinstance(value, str) or not CLIENT_ID.match(value):
        raise WebError(400, "invalid_client_id", "client_id must be 32 lowercase hexadecimal characters")
    return value


def _message_id(value: Any) -> str:
    if not isinstance(value, str) or not MESSAGE_ID.match(value):
        raise WebError(400, "invalid_message_id", "message_id must be 1 to 24 letters, digits, - or _")
    return value


def _language_code(value: Any) -> str | None:
    return value if isinstance(value, str) and LANGUAGE_CODE.match(value) else None


def _index_html() -> str:
    """index.html with each static file's URL carrying a hash of its content (safe long caching)."""
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    for name in ("chat.js", "chat.css"):
        version = hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]
        html = html.replace(f"/static/{name}", f"/static/{name}?v={version}")
    page_title = STRINGS["title"]
    title = " · ".join(dict.fromkeys(translate(language, page_title) for language in LANGUAGES))
    return html.replace("{{title}}", title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


def setup(app: web.Application, runtime: Runtime, limits: ChatLimits | None = None) -> WebChat:
    """Add the web chat's routes; its WebChannel joins runtime.channels for the dispatcher."""
    chat = WebChat(runtime, limits)
    app[CHAT] = chat
    chat.links = app[LINKS] if LINKS in app else setup_media(app, runtime)
    if not any(getattr(channel, "platform", None) == PLATFORM for channel in runtime.channels):
        runtime.channels.append(chat.channel)
    else:  # a second app on the same runtime (tests): wake this app's streams too
        chat.channel = next(c for c in runtime.channels if getattr(c, "platform", None) == PLATFORM)
        chat.signals = getattr(chat.channel, "signals", chat.signals)

    def guarded(handler):
        async def run(request: web.Request) -> web.StreamResponse:
            try:
                response = await handler(request)
            except WebError as error:
                return error.response()
            except web.HTTPException:
                raise
            except Exception as exc:
                if unstorable_input(exc):
                    return WebError(400, "invalid_input", "a value in the request cannot be used").response()
                if OUTAGE.failed(exc):
                    return WebError(503, "unavailable", "the service is briefly unavailable; please try again",
                                    retry_after=RETRY_AFTER_OUTAGE).response()
                log.exception("web chat request %s failed", request.path)
                return WebError(500, "internal_error", "something went wrong; please try again").response()
            OUTAGE.ok()
            return response

        return run

    app.router.add_get("/", guarded(chat.index))
    app.router.add_get("/chat/strings", guarded(chat.strings))
    app.router.add_post("/chat/send", guarded(chat.send))
    app.router.add_post("/chat/photo", guarded(chat.photo))
    app.router.add_post("/chat/voice", guarded(chat.voice))
    app.router.add_get("/chat/inbox", guarded(chat.inbox))
    app.router.add_get("/chat/events", guarded(chat.events))
    app.router.add_static("/static/", STATIC_DIR, show_index=False, follow_symlinks=False)
    app.router.add_get("/favicon.ico", favicon)
    app.on_startup.append(chat.on_startup)
    app.on_shutdown.append(chat.on_shutdown)
    return chat
