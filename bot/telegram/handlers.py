"""One small handler per kind of Telegram update; each turns the update into an `Inbound`.

The handlers only translate: the front door (`adapter.TelegramFrontDoor.handle`) finds
the sender, calls the engine with the update id (a redelivered update is ignored
there, in the same transaction as its effects) and renders the replies. Only
private chats are served; edited messages are ignored (they would replay a step).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from telegram import CallbackQuery, Update
from telegram.error import TelegramError
from telegram.ext import Application, CallbackQueryHandler, ContextTypes, MessageHandler, filters

from conversations.protocol import Inbound

if TYPE_CHECKING:
    from .adapter import TelegramFrontDoor

FRONT_DOOR = "gridbot.front_door"  # key in Application.bot_data

NEW_PRIVATE = filters.UpdateType.MESSAGE & filters.ChatType.PRIVATE


def _door(context: ContextTypes.DEFAULT_TYPE) -> TelegramFrontDoor:
    return context.bot_data[FRONT_DOOR]


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Typed text; a leading slash makes it a command (`/start LS-…`, `/report@GridBot`)."""
    await _door(context).handle(update, Inbound.of_text(update.effective_message.text or ""))


async def on_callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An inline button: answered at once, while the engine works (stops the client's spinner);
    its data is only a request: the engine checks again what the person may see and do."""
    query = update.callback_query
    message = query.message
    if message is not None and message.chat.type != "private":
        return
    answering = asyncio.create_task(_answer(query))
    try:
        await _door(context).handle(update, Inbound.press(query.data or ""))
    finally:
        await answering


async def _answer(query: CallbackQuery) -> None:
    with contextlib.suppress(TelegramError):  # too old, or already answered on a redelivery
        await query.answer()


async def on_location(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    location = update.effective_message.location
    await _door(context).handle(update, Inbound.at(location.latitude, location.longitude))


async def on_contact(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Only the sender's own number (the share-phone button) counts; someone else's card is just text."""
    contact = update.effective_message.contact
    own = contact.user_id is not None and contact.user_id == update.effective_user.id
    await _door(context).handle(update, Inbound("contact", phone=contact.phone_number) if own else Inbound("text", text=""))


async def on_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A photo (the largest size), or an image sent as a file; downloaded when the API allows it."""
    message = update.effective_message
    if message.photo:
        largest = max(message.photo, key=lambda size: (size.width * size.height, size.file_size or 0))
        file_id, size = largest.file_id, largest.file_size
    else:
        file_id, size = message.document.file_id, message.document.file_size
    door = _door(context)
    await door.handle(update, await door.store_media(context.bot, file_id, "photo", size))


async def on_voice(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A voice message (or an audio file): kept as sent (Ogg Opus), within the size and duration limits."""
    message = update.effective_message
    voice = message.voice or message.audio
    door = _door(context)
    duration = voice.duration
    if hasattr(duration, "total_seconds"):  # PTB_TIMEDELTA
        duration = duration.total_seconds()
    seconds = int(duration) if duration is not None else None
    await door.handle(update, await door.store_media(context.bot, voice.file_id, "voice", voice.file_size, seconds))


async def on_other(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stickers, videos, files…: the dialogs answer politely as to an empty message."""
    await _door(context).handle(update, Inbound("text", text=""))


def install(application: Application, door: TelegramFrontDoor) -> None:
    application.bot_data[FRONT_DOOR] = door
    application.add_handler(MessageHandler(NEW_PRIVATE & filters.TEXT, on_text))
    application.add_handler(CallbackQueryHandler(on_callback))
    application.add_handler(MessageHandler(NEW_PRIVATE & filters.LOCATION, on_location))
    application.add_handler(MessageHandler(NEW_PRIVATE & (filters.PHOTO | filters.Document.IMAGE), on_photo))
    application.add_handler(MessageHandler(NEW_PRIVATE & (filters.VOICE | filters.AUDIO), on_voice))
    application.add_handler(MessageHandler(NEW_PRIVATE & filters.CONTACT, on_contact))
    application.add_handler(MessageHandler(NEW_PRIVATE, on_other))
