"""python-telegram-bot's rate limiter, backed by the pace every instance shares.

The dialogs' direct answers take their slots from the same `SharedPacer` key as the
dispatcher's notifications ("telegram:<bot id>"), so the bot stays under Telegram's
limit whichever instance sends what (a notification's send, whose slot the dispatcher
took already, takes none here). A 429 pauses the key for every instance. Answers
are not held to the one-a-second pace of a chat: they answer what the person just did,
and Telegram allows such short bursts in a private chat.
"""

from __future__ import annotations

from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

from storage.pacing import SLOT_TAKEN, SharedPacer

from . import render

SENDING = {"sendMessage", "sendPhoto", "sendDocument", "sendLocation", "sendMediaGroup", "copyMessage",
           "forwardMessage", "editMessageText", "editMessageReplyMarkup"}


def pace_key(token: str) -> str:
    """The bot's pacing key: its id, the part of the token before the colon."""
    return f"telegram:{token.split(':')[0]}"


class SharedRateLimiter(BaseRateLimiter[None]):
    def __init__(self, pacer: SharedPacer, key: str, per_second: float):
        self.pacer, self.key, self.interval = pacer, key, 1.0 / per_second

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def process_request(self, callback, args: Any, kwargs: dict[str, Any], endpoint: str, data: dict[str, Any],
                              rate_limit_args: None):
        if endpoint in SENDING and "chat_id" in data and SLOT_TAKEN.get() != self.key:
            await self.pacer.wait(self.key, self.interval)
        try:
            return await callback(*args, **kwargs)
        except RetryAfter as exc:
            await self.pacer.pause(self.key, render.retry_after_seconds(exc))
            raise
