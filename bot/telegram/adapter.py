"""`TelegramFrontDoor`: the python-telegram-bot v22 `Application` that carries the dialogs.

Modes
* polling (no TELEGRAM_WEBHOOK_URL): PTB's Updater long-polls getUpdates
  (`poll_interval` from TELEGRAM_POLL_INTERVAL). One instance only: Telegram answers
  a second poller with 409 Conflict.
* webhook (TELEGRAM_WEBHOOK_URL set): no Updater; a POST route on the project's
  aiohttp app (the path of the webhook URL) checks the `X-Telegram-Bot-Api-Secret-Token`
  header against TELEGRAM_WEBHOOK_SECRET (403 when it differs), stores the update
  (`storage.updates`), and, holding the chat's lock (`storage.locks`, shared by the
  instances), handles that chat's stored updates oldest first. It answers 200 only once
  the update's effects and answer are committed and the answer sent, 500 when that
  failed and 503 when it takes longer than `ack_wait`: Telegram then delivers the update
  again, maybe to another instance, which finds it stored (and answers it again at once
  if its answer was never confirmed sent). Several instances behind one URL share one
  PostgreSQL: nothing about a conversation lives in memory.

Updates of one person are processed one after the other, in arrival order, those of
different people concurrently (`PerPersonUpdateProcessor`); across instances, in update
order (above). Sends take their slots from the pace every instance shares
(`pacing.SharedRateLimiter`).

Optional Bot API calls (setMyCommands, setWebhook, getFile) that fail are logged and
the bot carries on. Logs carry ids, dialog and state names and timings, never the
text people type, their phone numbers or names.
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import logging
import time
import traceback
from collections import Counter
from typing import Any, Awaitable
from urllib.parse import urlsplit

from aiohttp import web
from telegram import Bot, BotCommand, Update
from telegram.error import Forbidden, TelegramError
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, BaseUpdateProcessor, ContextTypes

from conversations.engine import Sender
from conversations.i18n import N_, translate
from conversations.protocol import Inbound
from storage import media

from storage import updates
from storage.db import write_gate, writing
from storage.pacing import SharedPacer

from ..runtime import Runtime
from . import handlers, render
from .channel import TelegramChannel
from .pacing import SharedRateLimiter, pace_key

log = logging.getLogger("gridbot.telegram")

_HOLDING: contextvars.ContextVar[bool] = contextvars.ContextVar("gridbot_chat_lock_held", default=False)

PLATFORM = "telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
DEFAULT_WEBHOOK_PATH = "/telegram/webhook"
ALLOWED_UPDATES = ["message", "callback_query"]
LONG_POLL_SECONDS = 10  # getUpdates timeout against the real Bot API

# The command menu, per language. Descriptions are translated from the catalogs.
COMMANDS = [
    ("start", N_("Start and show the menu")),
    ("report", N_("Report a problem")),
    ("cases", N_("My cases")),
    ("grid", N_("My grid and its workers")),
    ("language", N_("Change the language")),
    ("help", N_("Help")),
    ("cancel", N_("Cancel what I am doing")),
]


def file_base_url(base_url: str) -> str:
    """The file download base that goes with a Bot API base URL:
    http://host:9000/bot → http://host:9000/file/bot (as api.telegram.org/bot → api.telegram.org/file/bot)."""
    head, _, last = base_url.rstrip("/").rpartition("/")
    return f"{head}/file/{last}"


def webhook_path(url: str) -> str:
    return urlsplit(url).path or DEFAULT_WEBHOOK_PATH


def command_menu(language: str) -> list[BotCommand]:
    """Commands with descriptions in `language`; a Tibetan entry not yet translated falls back to Chinese."""
    menu = []
    for command, msgid in COMMANDS:
        text = translate(language, msgid)
        if text == msgid and language != "zh":
            text = translate("zh", msgid)
        menu.append(BotCommand(command, text[:256]))
    return menu


def _exception_summary(exc: BaseException) -> str:
    """Type and stack of an exception, without its message: messages of database errors
    can quote the parameters, i.e. what people typed."""
    stack = "".join(traceback.format_tb(exc.__traceback__))
    return f"Traceback (most recent call last):\n{stack}{type(exc).__module__}.{type(exc).__qualname__}"


class PerPersonUpdateProcessor(BaseUpdateProcessor):
    """One person's updates in arrival order, different people's concurrently (at most `active` at once)."""

    def __init__(self, active: int = 32):
        super().__init__(max_concurrent_updates=4096)  # waiting updates hold nothing but memory
        self.active = active
        self._slots = asyncio.Semaphore(active)
        self._locks: dict[Any, asyncio.Lock] = {}
        self._pending: Counter = Counter()

    @staticmethod
    def key(update: object) -> Any:
        if isinstance(update, Update):
            if update.effective_user is not None:
                return ("user", update.effective_user.id)
            if update.effective_chat is not None:
                return ("chat", update.effective_chat.id)
        return None

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = self.key(update)
        if key is None:
            async with self._slots:
                await coroutine
            return
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._pending[key] += 1
        try:
            async with lock, self._slots:
                await coroutine
        finally:
            self._pending[key] -= 1
            if not self._pending[key]:
                del self._pending[key]
                self._locks.pop(key, None)

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


class TelegramFrontDoor:
    """Build, start and stop the Telegram side of the product."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        rate_limiter: bool = True,
        ack_wait: float = 50.0,
        active_updates: int = 32,
        order_window: float | None = None,
    ):
        self.runtime = runtime
        self.settings = runtime.settings
        if not self.settings.telegram_token:
            raise ValueError("TELEGRAM_BOT_TOKEN is not set")
        self.webhook_url = self.settings.telegram_webhook_url
        self.ack_wait = ack_wait  # below Telegram's own timeout for a webhook answer
        self.order_window = self.settings.telegram_order_window if order_window is None else order_window
        self.keyboards = render.KeyboardMemory()
        self.channel: TelegramChannel | None = None
        self._accepting = False
        self._webhook_tasks: set[asyncio.Task] = set()
        self._failed: set[int] = set()  # updates whose handling failed, answered 500 on the webhook
        self._answered: dict[int, bool] = {}  # webhook updates handled here: was the answer sent?
        # SQLite has one writer: its busy handler retries with sleeps of up to 100 ms, so
        # concurrent dialog transactions of this process queue here, in order, instead.
        self._runtime_db = getattr(runtime, "db", None)
        self.application = self._build(rate_limiter, active_updates)
        handlers.install(self.application, self)
        self.application.add_error_handler(self._on_error)

    @property
    def mode(self) -> str:
        return "webhook" if self.webhook_url else "polling"

    @property
    def bot(self) -> Bot:
        return self.application.bot

    def _build(self, rate_limiter: bool, active_updates: int) -> Application:
        builder: ApplicationBuilder = Application.builder().token(self.settings.telegram_token)
        base_url = self.settings.telegram_api_base_url
        if base_url:
            builder = builder.base_url(base_url).base_file_url(file_base_url(base_url))
        if rate_limiter and self.runtime.sessionmaker is not None:  # one pace with the dispatcher, on every instance
            pacer = SharedPacer(self.runtime.sessionmaker)
            builder = builder.rate_limiter(SharedRateLimiter(pacer, pace_key(self.settings.telegram_token),
                                                             self.settings.telegram_rate))
        elif rate_limiter:
            builder = builder.rate_limiter(AIORateLimiter())
        builder = builder.concurrent_updates(PerPersonUpdateProcessor(active_updates))
        if self.webhook_url:
            builder = builder.updater(None)
        return builder.build()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, app: web.Application | None = None) -> None:
        """Initialise the bot (getMe), register the command menus, then poll or serve the
        webhook on `app` (call before the aiohttp app starts), and offer the dispatcher a channel."""
        if self.webhook_url:
            if app is None:
                raise ValueError("webhook mode needs the aiohttp application to mount the webhook on")
            app.router.add_post(webhook_path(self.webhook_url), self.webhook)
        try:
            await self.application.initialize()  # getMe: a wrong token or an unreachable API fails here
            await self.set_commands()
            await self.application.start()
            if self.webhook_url:
                await self._set_webhook()
            else:
                await self.application.updater.start_polling(
                    poll_interval=self.settings.telegram_poll_interval,
                    timeout=LONG_POLL_SECONDS,
                    allowed_updates=ALLOWED_UPDATES,
                    error_callback=self._on_polling_error,
                )
        except BaseException:
            if self.application.running:
                await self.application.stop()
            await self.application.shutdown()
            raise
        self._accepting = True
        self.channel = TelegramChannel(self.application.bot, per_second=self.settings.telegram_rate,
                                       attachments_dir=self.settings.attachments_dir)
        self.runtime.channels.append(self.channel)
        log.info("telegram front door started: mode=%s bot_id=%s", self.mode, self.application.bot.id)

    async def stop(self) -> None:
        """Stop fetching, finish the updates in hand, release the HTTP connections.
        The webhook stays registered: other instances may still be serving it."""
        self._accepting = False
        if self.channel in self.runtime.channels:
            self.runtime.channels.remove(self.channel)
        updater = self.application.updater
        if updater is not None and updater.running:
            await updater.stop()
        if self._webhook_tasks:
            await asyncio.gather(*self._webhook_tasks, return_exceptions=True)
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()
        log.info("telegram front door stopped")

    async def set_commands(self) -> bool:
        """The command menu: default and Chinese (zh), Tibetan (bo). Not fatal when refused."""
        ok = True
        for language_code, language in ((None, "zh"), ("zh", "zh"), ("bo", "bo")):
            try:
                await self.application.bot.set_my_commands(command_menu(language), language_code=language_code)
            except TelegramError as exc:
                ok = False
                log.warning("setMyCommands(language_code=%s) failed: %s: %s", language_code, type(exc).__name__, exc)
        return ok

    async def _set_webhook(self) -> None:
        secret = self.settings.telegram_webhook_secret
        if not secret:
            log.warning("TELEGRAM_WEBHOOK_SECRET is not set: webhook requests are not authenticated")
        try:
            await self.application.bot.set_webhook(self.webhook_url, secret_token=secret, allowed_updates=ALLOWED_UPDATES)
        except TelegramError as exc:
            log.error("setWebhook failed (updates will not arrive until it is set): %s: %s", type(exc).__name__, exc)

    # -- webhook -------------------------------------------------------------------------

    async def webhook(self, request: web.Request) -> web.Response:
        """POST from Telegram: 403 with a wrong secret, 400 when not an update; 200 once the update and
        its answer are stored and the answer sent; 500 when that failed, 503 when it took too long
        (Telegram then delivers the update again, maybe to another instance)."""
        secret = self.settings.telegram_webhook_secret
        if secret:
            given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "replace")
            if not hmac.compare_digest(given, secret.encode("utf-8")):
                log.warning("webhook request refused: wrong secret token")
                return web.Response(status=403)
        if not self._accepting:
            return web.Response(status=503)  # stopping: Telegram will deliver it again, maybe elsewhere
        try:
            body = await request.json()
            if not isinstance(body, dict) or type(body.get("update_id")) is not int:
                raise ValueError("no integer update_id")
            update = Update.de_json(body, self.application.bot)
        except Exception as exc:  # not JSON (or nested too deeply), or not an update
            log.warning("webhook request refused: %s", type(exc).__name__)
            return web.Response(status=400)
        if update is None:
            return web.Response(status=400)
        task = asyncio.create_task(self._take(update, body), name=f"telegram-update-{update.update_id}")
        self._webhook_tasks.add(task)
        task.add_done_callback(self._webhook_tasks.discard)
        done, _ = await asyncio.wait({task}, timeout=self.ack_wait)
        if not done:
            return web.Response(status=503)  # still at work: the update is stored, a redelivery finds it
        if task.cancelled() or task.exception() is not None or not task.result():
            return web.Response(status=500)  # not kept (rolled back) or not answered: deliver it again
        return web.Response(status=200)

    async def _take(self, update: Update, body: dict) -> bool:
        """Store the update, then, holding its chat's lock, handle every stored update of that chat in
        update order (a later one that arrived first waits `order_window` for the earlier). True when
        this update is handled and its answer confirmed sent."""
        chat = _chat_of(update)
        if chat is None:  # nobody to answer: nothing to order
            await self.process(update)
            return update.update_id not in self._failed
        bot, update_id = self.bot_key, str(update.update_id)
        sessionmaker = self.runtime.sessionmaker
        arriving = _ARRIVING.setdefault((bot, chat), set())
        arriving.add(update.update_id)  # at once, before any wait: this process's drains wait for it
        try:
            async with self._engine_gate, sessionmaker.begin() as session:
                await writing(session)
                await updates.store_arrival(session, PLATFORM, bot, chat, update_id, body)
        finally:
            arriving.discard(update.update_id)
            if not arriving:
                _ARRIVING.pop((bot, chat), None)
        if self.order_window > 0:
            await asyncio.sleep(self.order_window)
        async with self.runtime.chat_locks().hold(f"{PLATFORM}:{bot}:{chat}"):
            holding = _HOLDING.set(True)
            try:
                tried: set[str] = set()
                while True:  # the oldest waiting update first, looking again after each one
                    async with sessionmaker() as session:
                        queue = [(i, p) for i, p in await updates.waiting(session, PLATFORM, bot, chat) if i not in tried]
                    earlier = _ARRIVING.get((bot, chat), ())
                    if earlier and (not queue or min(earlier) < int(queue[0][0])):
                        await asyncio.sleep(0.005)  # an earlier update reached this process and is being stored
                        continue
                    if not queue:
                        break
                    queued_id, payload = queue[0]
                    tried.add(queued_id)
                    queued = update if queued_id == update_id else Update.de_json(payload, self.application.bot)
                    await self._process_stored(queued, bot, chat, queued_id)
                if update_id not in tried:  # handled before: answered again if that answer was lost
                    await self._process_stored(update, bot, chat, update_id)
            finally:
                _HOLDING.reset(holding)
            if update.update_id in self._answered:  # handled here just now
                return self._answered.pop(update.update_id)
            async with sessionmaker() as session:  # handled before, here or by another instance
                handled, answered = await updates.outcome(session, PLATFORM, bot, chat, update_id)
        return handled and answered

    async def _process_stored(self, update: Update, bot: str, chat: str, update_id: str) -> None:
        await self.process(update)
        if update.update_id in self._failed:
            self._failed.discard(update.update_id)  # stays stored: tried again, in order
            return
        async with self._engine_gate, self.runtime.sessionmaker.begin() as session:
            await writing(session)
            await updates.settle(session, PLATFORM, bot, chat, update_id)

    async def process(self, update: Update) -> None:
        """Process one update through the Application (handlers, per-person ordering, error handler)."""
        app = self.application
        await app.update_processor.process_update(update, app.process_update(update))

    @property
    def _engine_gate(self):
        return write_gate(self._runtime_db)

    @property
    def bot_key(self) -> str:
        return str(self.application.bot.id)

    # -- one update ---------------------------------------------------------------------------

    async def handle(self, update: Update, inbound: Inbound) -> None:
        """Engine in, replies out, confirmed; called by each handler with the update translated. The
        chat's lock is held from the engine to the confirmation, so a copy of the update arriving
        meanwhile (another instance, a redelivery) waits and then finds it answered."""
        user, chat = update.effective_user, update.effective_chat
        if user is None:
            return
        chat_id = chat.id if chat is not None else user.id
        sender = Sender(
            platform=PLATFORM,
            external_id=str(user.id),
            chat_id=str(chat_id),
            language_code=user.language_code,
            display_name=user.first_name,
            bot=self.bot_key,
        )
        if _HOLDING.get():
            await self._answer(update, sender, inbound)
            return
        async with self.runtime.chat_locks().hold(f"{PLATFORM}:{sender.bot}:{sender.chat}"):
            await self._answer(update, sender, inbound)

    async def _answer(self, update: Update, sender: Sender, inbound: Inbound) -> None:
        started = time.perf_counter()
        chat_id = int(sender.chat)
        async with self._engine_gate:
            replies = await self.runtime.engine.handle(sender, inbound, update_id=update.update_id)
        # A redelivered update is not handled again; its answer is sent again if it was never confirmed.
        to_send = list(replies) if not replies.repeated or replies.lost else []
        messages, shown = render.render(to_send, keyboard_shown=chat_id in self.keyboards, platform=PLATFORM,
                                        root=self.settings.attachments_dir)
        sent, delivered = 0, False
        try:
            sent = await render.send(self.application.bot, chat_id, messages, wait_on_flood=30)
            delivered = True
        except Forbidden:
            delivered = True  # blocked: nobody to answer, sending again would not help
            log.info("telegram update=%s user=%s: replies not delivered, the bot is blocked",
                     update.update_id, sender.external_id)
        finally:
            self.keyboards.set(chat_id, shown if sent == len(messages) else False)
        if delivered and (to_send or replies.lost):
            await self.runtime.engine.answered(sender, update.update_id)
        if _HOLDING.get():  # for the webhook's answer (see _take)
            self._answered[update.update_id] = delivered
        # The same counters as the web chat, labelled by platform (see bot/web/metrics.py).
        self.runtime.count(f'updates_received{{platform="{PLATFORM}"}}')
        if not replies.repeated:
            self.runtime.count(f'updates_handled{{platform="{PLATFORM}"}}')
            self.runtime.count(f'dialog_steps{{platform="{PLATFORM}"}}', len(replies))
        else:
            self.runtime.count(f'updates_duplicate{{platform="{PLATFORM}"}}')
        self._log_update(update, int(sender.external_id), inbound, replies, sent, started)

    def _log_update(self, update: Update, user_id: int, inbound: Inbound, replies, sent: int, started: float) -> None:
        """One structured line per update: ids, dialog, state, timing; never what the person wrote."""
        fields = {
            "update_id": update.update_id,
            "user_id": user_id,
            "kind": inbound.kind,
            "dialog": replies.dialog,
            "state": replies.state,
            "replies": len(replies),
            "messages": sent,
            "ms": round((time.perf_counter() - started) * 1000, 1),
        }
        log.info(
            "telegram " + " ".join(f"{key}={value}" for key, value in fields.items()),
            extra={"telegram": fields},
        )

    async def store_media(self, bot: Bot, file_id: str, kind: str, size: int | None,
                          duration: int | None = None) -> Inbound:
        """Download a photo or voice note, check and store it (storage.media): the Inbound to handle.
        A file over the limits is refused before downloading (`media_error`); without getFile (some
        emulators) or on a download failure the file id alone is kept."""
        message = Inbound(kind, photo_file_id=file_id, photo_size=size, duration=duration)
        limit = media.MAX_PHOTO_BYTES if kind == "photo" else media.MAX_VOICE_BYTES
        if size is not None and size > limit:
            message.media_error = "too_large"
            return message
        if kind == "voice" and duration is not None and duration > media.MAX_VOICE_SECONDS:
            message.media_error = "too_long"
            return message
        try:
            telegram_file = await bot.get_file(file_id)
            data = bytes(await telegram_file.download_as_bytearray())
        except (TelegramError, OSError) as exc:
            log.info("%s kept as file id only: getFile/download failed: %s", kind, type(exc).__name__)
            return message
        try:
            stored = await media.store_media(self.settings.attachments_dir, data, kind, platform=PLATFORM,
                                             duration_seconds=duration)
        except media.MediaRefused as refused:
            message.media_error = refused.code
            return message
        except OSError as exc:
            log.error("%s not stored: %s", kind, type(exc).__name__)
            return message
        message = Inbound.stored(kind, stored, file_id)
        if message.duration is None:
            message.duration = duration
        return message

    # -- errors ------------------------------------------------------------------------------

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        exc = context.error
        update_id = update.update_id if isinstance(update, Update) else None
        if update_id is not None and self.mode == "webhook" and len(self._failed) < 10_000:
            self._failed.add(update_id)
        self.runtime.count(f'updates_failed{{platform="{PLATFORM}"}}')
        if isinstance(exc, TelegramError):
            log.warning("telegram update=%s failed: %s: %s", update_id, type(exc).__name__, exc)
        else:
            log.error("telegram update=%s failed:\n%s", update_id, _exception_summary(exc) if exc else "?")

    def _on_polling_error(self, exc: TelegramError) -> None:
        log.warning("getUpdates failed: %s: %s", type(exc).__name__, exc)


def _chat_of(update: Update) -> str | None:
    """The chat an update's answer goes to, as the engine keys it (None: nobody to answer)."""
    if update.effective_user is None:
        return None
    chat = update.effective_chat
    return str(chat.id if chat is not None else update.effective_user.id)


_SQLITE_GATES: dict[str, asyncio.Lock] = {}
# (bot, chat) -> update ids received by this process and not yet stored
_ARRIVING: dict[tuple[str, str], set[int]] = {}


def _sqlite_gate(runtime: Runtime) -> asyncio.Lock:
    """One gate per SQLite database in this process, shared by its front doors."""
    return _SQLITE_GATES.setdefault(str(runtime.db.url), asyncio.Lock())


