"""`WeChatFrontDoor`: the WeChat Official Account (公众号) in front of the platform-neutral dialogs.

WeChat POSTs each message to `WECHAT_PATH` (default `/wechat`) and gives up after 5 s,
retrying up to three times. So the front door checks the request (signature, timestamp,
safe XML, safe-mode decryption), starts handling the message and answers "success" as
soon as it is handled, or after `ack_seconds` (2 s) in any case; the dialog's answers go
out through the customer-service API, never as a passive reply, so a slow database never
makes WeChat retry. A retry of one message (the same MsgId; for events the same sender
and CreateTime) is recognised by the engine's processed-update record (platform "wechat",
update id prefixed by the account's app id) and never handled twice; copies arriving at
this instance while the first is in hand are answered at once.

What people send becomes an `Inbound`: text (a tapped menu option or a typed option
number becomes the button it stands for), location, image (downloaded and stored like
other photos), voice (WeChat's `Recognition` text is taken as typed text and shown back, the audio kept
in the attachments directory; without recognition, and for those who chose Tibetan, as
WeChat recognises Mandarin only, the audio goes to the dialog as an attachment and the
person is asked to type), subscribe (a parametric QR code's scene chooses that grid, like
`/?grid=CODE`), scan, menu clicks; other kinds get a polite answer.

One person's messages are handled one after the other, different people's concurrently
(at most `active`, 32, at once).
Logs carry ids, kinds and timings, never what people wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import OrderedDict

import aiohttp
from aiohttp import web
from sqlalchemy import select

from conversations import i18n
from conversations.engine import Replies, Sender
from conversations.i18n import N_
from conversations.protocol import Inbound, Reply
from storage import media as stored_media
from storage.models import Identity, Person, WeChatAccount
from storage.timeutil import utcnow

from ..runtime import Runtime
from ..telegram.adapter import _exception_summary
from . import render
from .api import QuotaExhausted, WeChatAPI, WeChatError
from .channel import WeChatChannel
from .config import WeChatConfig
from .followers import PLATFORM, Followers
from .inbound import MAX_BODY, Incoming, Refused, check_request, field, read_message

log = logging.getLogger("gridbot.wechat")

UNSUPPORTED = N_("Sorry, this kind of message cannot be handled here. Please send text, a photo, "
                 "a voice message or your location.")
VOICE_HEARD = N_("Voice message: “{text}”")
TYPED_NUMBER = re.compile(r"^\s*(\d{1,2})\s*[.。、]?\s*$")
RECENT = 4096
QR_RETRY_SECONDS = 300


class WeChatFrontDoor:
    def __init__(self, runtime: Runtime, config: WeChatConfig, *, http: aiohttp.ClientSession | None = None,
                 clock=utcnow, active: int = 32):
        self.runtime = runtime
        self.config = config
        self.clock = clock
        self._own_http = http is None
        self.http = http
        self.api: WeChatAPI | None = None
        self.followers = Followers(runtime.sessionmaker, config.app_id)
        self.channel: WeChatChannel | None = None
        self._tasks: set[asyncio.Task] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        self._slots = asyncio.Semaphore(active)  # messages handled at once (database connections)
        self._pending: dict[str, int] = {}
        self._in_hand: OrderedDict[str, asyncio.Task] = OrderedDict()
        self._accepting = False
        self._qr_urls: dict[str, str] = {}
        self._qr_failed: dict[str, float] = {}
        self._tag: int | None = None
        self._tag_read_at: float | None = None
        db = getattr(runtime, "db", None)
        self._engine_gate = asyncio.Lock() if db is not None and db.dialect.name == "sqlite" else contextlib.nullcontext()

    # -- lifecycle -----------------------------------------------------------------------------------

    async def start(self, app: web.Application | None = None) -> None:
        if self.http is None:
            self.http = aiohttp.ClientSession()
        self.api = WeChatAPI(self.config, self.runtime.sessionmaker, self.http, clock=self.clock)
        self.channel = WeChatChannel(self.api, self.followers, self.config, clock=self.clock)
        if app is not None:
            app.router.add_get(self.config.path, self.verify)
            app.router.add_post(self.config.path, self.receive)
            from ..web import notice

            app[notice.WECHAT_QR] = self.qr_url
        self.runtime.channels.append(self.channel)
        self._accepting = True
        log.info("wechat front door started: app_id=%s path=%s safe_mode=%s", self.config.app_id, self.config.path,
                 bool(self.config.aes_key))

    async def stop(self) -> None:
        self._accepting = False
        if self.channel in self.runtime.channels:
            self.runtime.channels.remove(self.channel)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=10)
        if self._own_http and self.http is not None:
            await self.http.close()
        log.info("wechat front door stopped")

    async def drain(self) -> None:
        """Wait until every message in hand is handled (tests)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    # -- HTTP ---------------------------------------------------------------------------------------------

    async def verify(self, request: web.Request) -> web.Response:
        """The server URL check: echo `echostr` when the signature is WeChat's."""
        try:
            check_request(self.config, dict(request.query))
        except Refused as refused:
            log.warning("wechat URL check refused: %s", refused.reason)
            return web.Response(status=refused.status, text=refused.reason)
        return web.Response(text=request.query.get("echostr", ""))

    async def receive(self, request: web.Request) -> web.Response:
        """A message from WeChat: 403 when not signed by WeChat, 400 when unreadable, else "success"."""
        if request.content_length is not None and request.content_length > MAX_BODY:
            return web.Response(status=400, text="body too large")
        try:
            body = await _read_body(request)
            incoming = read_message(self.config, dict(request.query), body)
        except Refused as refused:
            log.warning("wechat request refused (%s): %s", refused.status, refused.reason)
            self.runtime.count(f'updates_refused{{platform="{PLATFORM}"}}')
            return web.Response(status=refused.status, text=refused.reason)
        if not self._accepting:
            return web.Response(status=503)  # stopping: WeChat retries, maybe elsewhere
        update_id = incoming.update_id(self.config.app_id)
        task = self._in_hand.get(update_id)
        if task is None:
            task = asyncio.create_task(self.process(incoming, update_id), name=f"wechat-{update_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            task.add_done_callback(lambda t: t.cancelled() or t.exception())  # logged in process()
            self._in_hand[update_id] = task
            while len(self._in_hand) > RECENT:
                self._in_hand.popitem(last=False)
        else:
            self.runtime.count(f'updates_duplicate{{platform="{PLATFORM}"}}')
        done, _ = await asyncio.wait({task}, timeout=self.config.ack_seconds)
        if task in done and not task.cancelled() and task.exception() is not None:
            # Nothing of it was kept (the engine's transaction rolled back): WeChat will deliver it again.
            self._in_hand.pop(update_id, None)
            return web.Response(status=500)
        return web.Response(text="success")

    # -- one message -----------------------------------------------------------------------------------

    async def process(self, incoming: Incoming, update_id: str) -> None:
        openid = incoming.openid
        lock = self._locks.setdefault(openid, asyncio.Lock())
        self._pending[openid] = self._pending.get(openid, 0) + 1
        try:
            async with lock, self._slots:
                await self._process(incoming, update_id)
        except Exception as exc:
            self.runtime.count(f'updates_failed{{platform="{PLATFORM}"}}')
            log.error("wechat update=%s failed:\n%s", update_id, _exception_summary(exc))
            raise
        finally:
            self._pending[openid] -= 1
            if not self._pending[openid]:
                del self._pending[openid]
                self._locks.pop(openid, None)

    async def _process(self, incoming: Incoming, update_id: str) -> None:
        started = time.perf_counter()
        openid, kind = incoming.openid, incoming.kind
        self.runtime.count(f'updates_received{{platform="{PLATFORM}"}}')
        now = self.clock()
        if kind == "unsubscribe":
            await self.followers.unsubscribed(openid, now)
            log.info("wechat update=%s kind=unsubscribe", update_id)
            return
        inbound, before = await self.inbound(incoming)
        if inbound is None:
            log.info("wechat update=%s kind=%s ignored", update_id, kind)
            return
        await self.followers.wrote(openid, now)
        sender = Sender(platform=PLATFORM, external_id=openid, chat_id=openid, bot=self.config.app_id)
        async with self._engine_gate:
            replies = await self.runtime.engine.handle(sender, inbound, update_id=update_id)
        to_send = list(replies) if not replies.repeated or replies.lost else []
        language = await self._language(replies.person_id)
        if to_send and before:
            to_send = [Reply(text=i18n.translate(language, msgid, **params)) for msgid, params in before] + to_send
        sent = await self.send_replies(openid, to_send, language)
        if to_send and sent:
            await self.runtime.engine.answered(sender, update_id)  # a retry of this message is not answered again
        if not replies.repeated:
            self.runtime.count(f'updates_handled{{platform="{PLATFORM}"}}')
            self.runtime.count(f'dialog_steps{{platform="{PLATFORM}"}}', len(replies))
            await self._menu_language(openid, language)
        else:
            self.runtime.count(f'updates_duplicate{{platform="{PLATFORM}"}}')
        log.info("wechat update=%s kind=%s inbound=%s dialog=%s state=%s replies=%d messages=%d ms=%.1f",
                 update_id, kind, inbound.kind, replies.dialog, replies.state, len(replies), sent,
                 (time.perf_counter() - started) * 1000)

    async def inbound(self, incoming: Incoming) -> tuple[Inbound | None, list[tuple[str, dict]]]:
        """The message as an `Inbound` (None: nothing to handle), and notes to show before the answer."""
        message, kind, openid = incoming.message, incoming.kind, incoming.openid
        if kind == "text":
            menu_id = field(message, "bizmsgmenuid")
            if menu_id and str(menu_id).isdigit():
                data = await self.followers.option(openid, menu_id=int(menu_id))
                if data:
                    return Inbound.press(data), []
            content = message.content or ""
            typed = TYPED_NUMBER.match(content)
            if typed:
                data = await self.followers.option(openid, typed=int(typed.group(1)))
                if data:
                    return Inbound.press(data), []
            return Inbound.of_text(content.strip()), []
        if kind == "location":
            try:
                return Inbound.at(float(message.location_x), float(message.location_y)), []
            except (TypeError, ValueError):
                return Inbound("text", text=""), [(UNSUPPORTED, {})]
        if kind == "image":
            return await self.store_media(message.media_id or "", "photo"), []
        if kind == "voice":
            kept = await self.store_media(message.media_id or "", "voice")
            heard = (message.recognition or "").strip()
            # WeChat recognises Mandarin only: for those who chose Tibetan its words would be a guess.
            if heard and await self._language_of(openid) != "bo":
                inbound = Inbound.of_text(heard)
                if inbound.kind == "text":
                    # The audio is kept beside the photos; the dialogs take the words.
                    inbound.photo_path, inbound.photo_sha256, inbound.photo_size = (
                        kept.photo_path, kept.photo_sha256, kept.photo_size)
                return inbound, [(VOICE_HEARD, {"text": heard})]
            # Not recognised (or a Tibetan speaker): the recording itself is the message, a voice note
            # the dialogs take as a description or an addition, as from Telegram and the web chat.
            return kept, []
        if kind in ("subscribe", "subscribe_scan", "scan"):
            scene = (getattr(message, "scene_id", "") or "").removeprefix("qrscene_")
            if scene and re.fullmatch(r"[A-Za-z0-9_-]{1,32}", scene):
                return Inbound.of_text(f"/start grid_{scene}"), []
            return Inbound.of_text("/start"), []
        if kind == "click":
            key = (message.key or "")[:64]
            return (Inbound.press(key) if key else None), []
        if incoming.fields.get("MsgType") == "event":
            return None, []  # WeChat's notifications about the account: nothing for the dialogs
        # video, shortvideo, link, file, miniprogram page, …: a polite word and the menu.
        return Inbound("text", text=""), [(UNSUPPORTED, {})]

    async def store_media(self, media_id: str, kind: str) -> Inbound:
        """Download a person's image or voice and keep it through `storage.media.store_media` (content
        check, stored once under its SHA-256, a copy without EXIF for photos): it becomes the case's
        evidence like a photo from any platform. A file that fails the check is refused with its reason;
        when the download fails the media id alone is kept (WeChat keeps it for three days)."""
        if not media_id:
            return Inbound(kind, photo_file_id=None)
        try:
            media = await self.api.media(media_id)
        except (WeChatError, aiohttp.ClientError, asyncio.TimeoutError) as exc:
            log.info("wechat media kept as id only: %s", type(exc).__name__)
            return Inbound(kind, photo_file_id=media_id)
        try:
            stored = await stored_media.store_media(self.runtime.settings.attachments_dir, media.data, kind,
                                                    platform=PLATFORM)
        except stored_media.MediaRefused as refused:
            return Inbound.refused(kind, refused.code, media_id)
        except OSError as exc:
            log.error("wechat media not stored: %s", type(exc).__name__)
            return Inbound(kind, photo_file_id=media_id)
        return Inbound.stored(kind, stored, media_id)

    async def send_replies(self, openid: str, replies: list[Reply], language: str) -> int:
        """Send the answers through the customer-service API; returns how many messages went out."""
        if not replies:
            return 0
        menus = [render.options_of(r) for r in replies if r.buttons]
        serials = await self.followers.number_menus(openid, menus)
        sent = 0
        for payload in render.render_all(openid, replies, language, serials):
            for attempt in range(3):
                try:
                    await self.api.send_custom(payload)
                    sent += 1
                    break
                except QuotaExhausted:
                    log.warning("wechat answer not sent: API quota reached")
                    return sent
                except WeChatError as exc:
                    if payload["msgtype"] == "image" or exc.code != -1 or attempt == 2:
                        log.warning("wechat answer message not sent: %s", exc)
                        break
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    if attempt == 2:
                        log.warning("wechat answer message not sent: %s", type(exc).__name__)
                        break
                await asyncio.sleep(0.2 * 2 ** attempt)
        return sent

    async def _language_of(self, openid: str) -> str | None:
        async with self.runtime.sessionmaker() as session:
            return await session.scalar(
                select(Person.language).join(Identity, Identity.person_id == Person.id)
                .where(Identity.platform == PLATFORM, Identity.external_id == openid, Person.language_chosen.is_(True))
            )

    async def _language(self, person_id: int | None) -> str:
        if person_id is None:
            return "zh"
        async with self.runtime.sessionmaker() as session:
            return await session.scalar(select(Person.language).where(Person.id == person_id)) or "zh"

    async def _menu_language(self, openid: str, language: str) -> None:
        """The account's Tibetan menu is shown to followers carrying the language tag (see `gridbot wechat menu`)."""
        follower = await self.followers.get(openid)
        if follower is None or follower.menu_language == language:
            return
        if follower.menu_language is None and language == "zh":  # untagged already: the default menu
            await self.followers.set_menu_language(openid, language)
            return
        tag = await self._language_tag()
        if tag is None:
            return
        path = "/cgi-bin/tags/members/batchtagging" if language == "bo" else "/cgi-bin/tags/members/batchuntagging"
        try:
            await self.api.call(path, {"openid_list": [openid], "tagid": tag})
        except (WeChatError, aiohttp.ClientError, asyncio.TimeoutError) as exc:
            log.info("wechat language tag not changed: %s", exc)
            return
        await self.followers.set_menu_language(openid, language)

    async def _language_tag(self) -> int | None:
        """The Tibetan menu's user tag (set by `gridbot wechat menu`), read at most once a minute."""
        now = time.monotonic()
        if self._tag_read_at is None or now - self._tag_read_at > 60:
            async with self.runtime.sessionmaker() as session:
                account = await session.get(WeChatAccount, self.config.app_id)
            self._tag = account.language_tag_id if account is not None else None
            self._tag_read_at = now
        return self._tag

    # -- the notice board's QR code --------------------------------------------------------------------

    async def qr_url(self, grid_code: str) -> str | None:
        """The content of the account's permanent parametric QR code for a grid (scene = grid code)."""
        if grid_code in self._qr_urls:
            return self._qr_urls[grid_code]
        failed_at = self._qr_failed.get(grid_code)
        if failed_at is not None and time.monotonic() - failed_at < QR_RETRY_SECONDS:
            return None  # a public page: its views must not spend the API quota while WeChat refuses
        try:
            data = await self.api.create_qrcode(grid_code)
        except (WeChatError, aiohttp.ClientError, asyncio.TimeoutError) as exc:
            log.warning("wechat QR code for grid %s not made: %s", grid_code, exc)
            self._qr_failed[grid_code] = time.monotonic()
            return None
        url = data.get("url")
        if url:
            self._qr_urls[grid_code] = url
        return url




async def _read_body(request: web.Request) -> bytes:
    """The body, refused (400) as soon as it is longer than WeChat's messages can be."""
    body = bytearray()
    async for chunk in request.content.iter_chunked(16 * 1024):
        body += chunk
        if len(body) > MAX_BODY:
            raise Refused(400, "body too large")
    return bytes(body)
