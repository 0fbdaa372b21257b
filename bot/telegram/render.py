"""From platform-neutral `Reply` objects to Telegram messages, and sending them.

* `Reply.buttons` become an inline keyboard; each button's callback data is checked
  against Telegram's 64-byte limit (the engine checks permission again when a
  button is pressed: callback data is never trusted).
* `Reply.request_location` / `request_contact` become a one-time reply keyboard.
  A message carries one keyboard only, so when the reply also has inline buttons
  the reply keyboard travels in a second, short message (its text is the button's
  own translated label).
* A reply keyboard still on screen is removed (`ReplyKeyboardRemove`) with the
  next answer that does not ask for a location or contact. Whether one is on
  screen is remembered per chat in this process only: after a restart, or when
  another instance answered, a stale "share location" button may stay until the
  person uses it; pressing it is harmless (the dialogs accept a location anywhere).
* Texts longer than 4096 UTF-16 code units are split at paragraph, line or
  syllable boundaries; the buttons go with the last part.
* `Reply.media` (a case's photos and voice notes, from any platform) go before the
  text: by Telegram file id when the file came through Telegram, else uploaded from
  the attachments directory. `Reply.location` becomes a location message, also before the text.
"""

from __future__ import annotations

import asyncio
import logging
import os
import unicodedata
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Sequence

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from telegram.error import RetryAfter, TelegramError

from conversations.protocol import Button, Reply
from storage import media as stored_media

log = logging.getLogger("gridbot.telegram")

MAX_TEXT = 4096  # Bot API limit for sendMessage text, in UTF-16 code units
MAX_CALLBACK_DATA = 64  # bytes
REMOVE_PLACEHOLDER = "✓"  # text of the rare message that only removes a reply keyboard (then deleted)
_BREAKS = ("\n\n", "\n", "。", "། ", "།", " ", "་")  # preferred places to split a long text


class CallbackDataTooLong(ValueError):
    pass


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _fit(text: str, limit: int) -> int:
    """The largest index i such that text[:i] has at most `limit` UTF-16 code units."""
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > limit:
            return index
    return len(text)


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split `text` into parts Telegram accepts, at natural boundaries where possible."""
    if utf16_len(text) <= limit:
        return [text]
    parts: list[str] = []
    rest = text
    while utf16_len(rest) > limit:
        cut = _fit(rest, limit)
        window = rest[:cut]
        for mark in _BREAKS:
            at = window.rfind(mark)
            if at >= cut // 2:
                cut = at + len(mark)
                break
        # Never separate a Tibetan stack or an accented letter from its combining marks.
        while 0 < cut < len(rest) and unicodedata.category(rest[cut])[0] == "M":
            cut -= 1
        if cut == 0:
            cut = _fit(rest, limit)
        part, rest = rest[:cut].rstrip(), rest[cut:].lstrip("\n")
        if part:
            parts.append(part)
    if rest.strip():
        parts.append(rest)
    return parts


def check_callback_data(data: str) -> str:
    if not data or len(data.encode("utf-8")) > MAX_CALLBACK_DATA:
        raise CallbackDataTooLong(f"callback data must be 1-{MAX_CALLBACK_DATA} bytes: {data!r}")
    return data


def inline_keyboard(rows: Sequence[Sequence[Button]]) -> InlineKeyboardMarkup | None:
    """Inline buttons; a button whose data Telegram would refuse is left out (and logged: a dialog bug)."""
    keyboard = []
    for row in rows:
        buttons = []
        for button in row:
            try:
                buttons.append(InlineKeyboardButton(button.label, callback_data=check_callback_data(button.data)))
            except CallbackDataTooLong:
                log.error("button left out: callback data of %d bytes (limit %d)", len(button.data.encode()), MAX_CALLBACK_DATA)
        if buttons:
            keyboard.append(buttons)
    return InlineKeyboardMarkup(keyboard) if keyboard else None


def request_keyboard(reply: Reply) -> ReplyKeyboardMarkup | None:
    buttons = []
    if reply.request_location:
        buttons.append([KeyboardButton(reply.location_label or "📍", request_location=True)])
    if reply.request_contact:
        buttons.append([KeyboardButton(reply.contact_label or "📞", request_contact=True)])
    if not buttons:
        return None
    return ReplyKeyboardMarkup(buttons, resize_keyboard=True, one_time_keyboard=True)


@dataclass
class Outgoing:
    """One Bot API call: a text message, a photo or voice note (file id or stored file), a location."""

    text: str = ""
    markup: InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None = None
    photo: str | Path | None = None
    voice: str | Path | None = None
    location: tuple[float, float] | None = None
    delete_after: bool = False  # the keyboard-removal placeholder

    @property
    def is_text(self) -> bool:
        return self.photo is None and self.voice is None and self.location is None


def media_messages(reply: Reply, platform: str, root: str | Path | None) -> list[Outgoing]:
    """The reply's evidence as Bot API calls: Telegram's own file id where there is one, else the stored file."""
    out = []
    for file_id in reply.photo_file_ids:
        if file_id.startswith("/"):  # one of our own images (a chart): Telegram fetches it by public URL
            public = os.environ.get("GRIDBOT_PUBLIC_URL", "").rstrip("/")
            if not public.startswith("https://"):
                continue
            file_id = public + file_id
        out.append(Outgoing(photo=file_id))
    for entry in reply.media:
        source: str | Path | None = None
        if entry.get("platform") == platform and entry.get("file_id"):
            source = entry["file_id"]
        elif entry.get("path") and root is not None:
            source = stored_media.resolve(root, entry["path"])
        if source is None:
            continue
        out.append(Outgoing(voice=source) if entry.get("kind") == "voice" else Outgoing(photo=source))
    return out


def render(replies: Sequence[Reply], *, keyboard_shown: bool = False, platform: str = "telegram",
           root: str | Path | None = None) -> tuple[list[Outgoing], bool]:
    """The messages to send for `replies`, and whether a reply keyboard is on screen afterwards."""
    if not replies:
        return [], keyboard_shown
    out: list[Outgoing] = []
    shown = keyboard_shown
    requested = False
    for reply in replies:
        out.extend(media_messages(reply, platform, root))
        if reply.location:  # before the text, so that the card and its buttons come last
            out.append(Outgoing(location=(float(reply.location[0]), float(reply.location[1]))))
        parts = split_text(reply.text or "…")
        messages = [Outgoing(text=part) for part in parts]
        inline = inline_keyboard(reply.buttons)
        keyboard = request_keyboard(reply)
        if inline is not None:
            messages[-1].markup = inline
        if keyboard is not None:
            requested = shown = True
            if inline is None:
                messages[-1].markup = keyboard
            else:
                labels = [label for label, wanted in ((reply.location_label, reply.request_location),
                                                      (reply.contact_label, reply.request_contact)) if wanted and label]
                messages.append(Outgoing(text="\n".join(labels) or "…", markup=keyboard))
        out.extend(messages)
    if shown and not requested:
        remove = ReplyKeyboardRemove()
        bare = next((m for m in out if m.markup is None and m.is_text), None)
        if bare is not None:
            bare.markup = remove
        else:
            out.append(Outgoing(text=REMOVE_PLACEHOLDER, markup=remove, delete_after=True))
        shown = False
    return out, shown


async def send(bot: Bot, chat_id: int | str, messages: Sequence[Outgoing], *, wait_on_flood: float = 0.0) -> int:
    """Send in order; returns how many went out.

    A `RetryAfter` of at most `wait_on_flood` seconds is waited out and the message
    sent again (up to three times); a longer one, and other errors of text messages,
    propagate. A photo or a keyboard placeholder that fails is logged and skipped.
    """
    sent = 0
    for message in messages:
        if not message.is_text:
            try:
                await _with_flood_wait(lambda: _send_other(bot, chat_id, message), wait_on_flood)
                sent += 1
            except (TelegramError, OSError) as exc:
                log.warning("media or location not sent to chat %s: %s", chat_id, type(exc).__name__)
            continue
        result = await _with_flood_wait(
            lambda: bot.send_message(chat_id, message.text, reply_markup=message.markup), wait_on_flood
        )
        sent += 1
        if message.delete_after:
            try:
                await bot.delete_message(chat_id, result.message_id)
            except TelegramError as exc:
                log.info("keyboard placeholder not deleted in chat %s: %s", chat_id, type(exc).__name__)
    return sent


async def _send_other(bot: Bot, chat_id: int | str, message: Outgoing):
    if message.location is not None:
        return await bot.send_location(chat_id, latitude=message.location[0], longitude=message.location[1])
    source = message.photo if message.photo is not None else message.voice
    if isinstance(source, Path):  # a stored file: uploaded (read off the event loop)
        source = await asyncio.to_thread(source.read_bytes)
    if message.photo is not None:
        return await bot.send_photo(chat_id, source)
    return await bot.send_voice(chat_id, source)


async def _with_flood_wait(call, wait_on_flood: float, tries: int = 3):
    for attempt in range(tries):
        try:
            return await call()
        except RetryAfter as exc:
            seconds = retry_after_seconds(exc)
            if seconds > wait_on_flood or attempt == tries - 1:
                raise
            log.warning("flood control: waiting %.0f s before sending again", seconds)
            await asyncio.sleep(seconds)


def retry_after_seconds(exc: RetryAfter) -> float:
    """`RetryAfter.retry_after` is an int or a timedelta depending on PTB_TIMEDELTA (PTB 22.2+)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class KeyboardMemory:
    """Which chats have a reply keyboard on screen (this process only, bounded)."""

    def __init__(self, size: int = 20_000):
        self.size = size
        self._chats: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, chat_id: object) -> bool:
        return str(chat_id) in self._chats

    def set(self, chat_id: object, shown: bool) -> None:
        key = str(chat_id)
        if shown:
            self._chats[key] = None
            self._chats.move_to_end(key)
            while len(self._chats) > self.size:
                self._chats.popitem(last=False)
        else:
            self._chats.pop(key, None)
