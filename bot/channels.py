"""What the notification dispatcher needs from a platform: send one reply to one chat.

A platform implements `Channel`: `platform` and `send`. One whose API limits how fast a bot
may send also sets `pacing`; the dispatcher then keeps that pace across every instance of
the deployment (slots in the database). Without `pacing` (the web inbox) nothing is paced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from conversations.protocol import Reply


class RetryLater(Exception):
    """The platform asked us to slow down (HTTP 429); try again after `seconds`."""

    def __init__(self, seconds: float):
        super().__init__(f"retry after {seconds} s")
        self.seconds = seconds


class Blocked(Exception):
    """The person blocked the bot or deleted their account: stop sending there."""


class Undeliverable(Exception):
    """No way to reach the person on this platform for this message (e.g. WeChat's 48-hour window is
    closed and no template is configured): give it up, with this reason, instead of retrying."""


@dataclass(frozen=True)
class Pacing:
    """A platform's limits for one bot. `key` names the bot for every instance (e.g. "telegram:123")."""

    key: str
    per_second: float = 30.0  # Telegram: about 30 messages a second per bot
    per_chat_interval: float = 1.0  # …one a second in one chat
    per_group_interval: float = 3.0  # …20 a minute in a group

    def chat_interval(self, chat_id: str) -> float:
        return self.per_group_interval if str(chat_id).startswith("-") else self.per_chat_interval


class Channel(Protocol):
    """Optionally also `pacing: Pacing` (read with getattr; absent or None: not paced)."""

    platform: str

    async def send(self, chat_id: str, reply: Reply) -> None:
        """Deliver the reply, or raise RetryLater, Blocked, Undeliverable, or any other exception for a retry."""
