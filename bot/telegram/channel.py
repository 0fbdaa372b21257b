"""The dispatcher's way out to Telegram: one notification to one chat."""

from __future__ import annotations

from telegram import Bot
from telegram.error import Forbidden, RetryAfter

from conversations.protocol import Reply

from ..channels import Blocked, Pacing, RetryLater
from . import render
from .pacing import pace_key


class TelegramChannel:
    """`bot.channels.Channel` over a python-telegram-bot `Bot`.

    HTTP 429 (`RetryAfter`) becomes `RetryLater(seconds)`, a person who blocked the bot
    or deleted their account (`Forbidden`) becomes `Blocked`; anything else propagates
    and the dispatcher retries with backoff. Notifications never carry a reply keyboard.
    `pacing` is keyed by the bot's id, so every instance serving this bot shares one pace.
    """

    platform = "telegram"

    def __init__(self, bot: Bot, *, per_second: float = 30.0, attachments_dir: str | None = None):
        self.bot = bot
        self.pacing = Pacing(key=pace_key(bot.token), per_second=per_second)
        self.attachments_dir = attachments_dir

    async def send(self, chat_id: str, reply: Reply) -> None:
        plain = Reply(text=reply.text, buttons=reply.buttons, photo_file_ids=reply.photo_file_ids, media=reply.media,
                      location=reply.location)
        messages, _ = render.render([plain], platform=self.platform, root=self.attachments_dir)
        try:
            await render.send(self.bot, chat_id, messages)
        except RetryAfter as exc:
            raise RetryLater(render.retry_after_seconds(exc)) from exc
        except Forbidden as exc:
            raise Blocked(str(exc)) from exc
