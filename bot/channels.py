"""What the notification dispatcher needs from a platform: send one reply to one chat."""

from __future__ import annotations

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


class Channel(Protocol):
    platform: str

    async def send(self, chat_id: str, reply: Reply) -> None:
        """Deliver the reply, or raise RetryLater, Blocked, Undeliverable, or any other exception for a retry."""
