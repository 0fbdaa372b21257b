"""Drains the outbox: each notification rendered in the recipient's language, sent on their platform.

At least once, and at most once per (event, recipient) thanks to the outbox's
unique key and per-message commits. Failed sends are retried with backoff,
HTTP 429 waits for `retry_after`, people who blocked the bot are skipped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from conversations import notices
from storage import access, outbox
from storage.db import writing
from storage.models import Case, Identity, Notification, Person
from storage.people import active_roles

from .channels import Blocked, Channel, RetryLater, Undeliverable

log = logging.getLogger("gridbot.dispatcher")

# Telegram allows about 30 messages a second per bot and one a second per chat.
GLOBAL_PER_SECOND = 25
PER_CHAT_INTERVAL = 1.0
PLATFORM_PREFERENCE = ("telegram", "wechat", "web")


class RateLimiter:
    """A global pace and a per-chat pace, for this process."""

    def __init__(self, per_second: float = GLOBAL_PER_SECOND, per_chat_interval: float = PER_CHAT_INTERVAL):
        self.interval = 1.0 / per_second
        self.per_chat_interval = per_chat_interval
        self.next_global = 0.0
        self.next_chat: dict[str, float] = defaultdict(float)

    async def wait(self, chat_key: str) -> None:
        now = time.monotonic()
        start = max(now, self.next_global, self.next_chat[chat_key])
        self.next_global = start + self.interval
        self.next_chat[chat_key] = start + self.per_chat_interval
        if start > now:
            await asyncio.sleep(start - now)


class Dispatcher:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        channels: list[Channel],
        *,
        limiter: RateLimiter | None = None,
        batch: int = 50,
        idle_seconds: float = 1.0,
    ):
        self.sessionmaker = sessionmaker
        self.channels = {c.platform: c for c in channels}
        self.limiter = limiter or RateLimiter()
        self.batch = batch
        self.idle_seconds = idle_seconds
        self.worker = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.sent = 0
        self.failures = 0

    async def drain_once(self, stop: asyncio.Event | None = None) -> int:
        """Lease a batch and try each message once; returns how many were tried. Stops early when
        `stop` is set: the rest of the batch is released for the next pass or another dispatcher."""
        async with self.sessionmaker.begin() as session:
            await writing(session)
            leased = [n.id for n in await outbox.lease_due(session, self.worker, self.batch)]
        for notification_id in leased:
            if stop is not None and stop.is_set():
                break
            await self._deliver(notification_id)
        return len(leased)

    async def _deliver(self, notification_id: int) -> None:
        async with self.sessionmaker() as session:
            notification = await session.get(Notification, notification_id)
            person = await session.get(Person, notification.recipient_id)
            if not await self._still_concerned(session, notification):
                identity = None
                concerned = False
            else:
                concerned = True
                identity = await self._identity(session, person.id)
            if identity is not None:
                reply = await notices.render(session, person.language, notification)
                identity_id, platform, chat_id = identity.id, identity.platform, identity.chat_id or identity.external_id
        if not concerned:
            await self._record(outbox.give_up, notification_id, self.worker, "recipient no longer concerned")
            return
        if identity is None:
            await self._record(outbox.mark_failed, notification_id, self.worker, "no reachable platform identity")
            return
        try:
            await self.limiter.wait(f"{platform}:{chat_id}")
            await self.channels[platform].send(chat_id, reply)
        except RetryLater as exc:
            await self._record(outbox.mark_failed, notification_id, self.worker, str(exc), retry_after=exc.seconds)
        except Blocked:
            await self._record(outbox.mark_blocked, notification_id, self.worker, identity_id)
        except Undeliverable as exc:
            await self._record(outbox.give_up, notification_id, self.worker, str(exc))
        except Exception as exc:  # any other failure: retried with backoff
            self.failures += 1
            log.warning("send of notification %s failed: %s", notification_id, type(exc).__name__)
            await self._record(outbox.mark_failed, notification_id, self.worker, f"{type(exc).__name__}: {exc}")
        else:
            self.sent += 1
            await self._record(outbox.mark_sent, notification_id, self.worker)

    async def _record(self, mark, *args, **kwargs) -> None:
        async with self.sessionmaker.begin() as session:
            await writing(session)
            await mark(session, *args, **kwargs)

    async def send_to_person(self, person_id: int, replies: list) -> bool:
        """Best effort, outside the outbox: a notice that is not about a case (a dialog closed for
        lack of an answer). Returns whether it was handed to a platform."""
        async with self.sessionmaker() as session:
            identity = await self._identity(session, person_id)
            if identity is None:
                return False
            platform, chat_id = identity.platform, identity.chat_id or identity.external_id
        try:
            for reply in replies:
                await self.limiter.wait(f"{platform}:{chat_id}")
                await self.channels[platform].send(chat_id, reply)
        except Exception as exc:
            log.info("notice to person %s not sent: %s", person_id, type(exc).__name__)
            return False
        return True

    async def _still_concerned(self, session: AsyncSession, notification: Notification) -> bool:
        """Staff whose role was revoked since the step (or who moved) are no longer told about the case."""
        case = await session.get(Case, notification.case_id)
        if case is None or case.reporter_id == notification.recipient_id:
            return True
        return access.can_view(notification.recipient_id, await active_roles(session, notification.recipient_id), case)

    async def _identity(self, session: AsyncSession, person_id: int) -> Identity | None:
        identities = list(
            await session.scalars(select(Identity).where(Identity.person_id == person_id, Identity.blocked_at.is_(None)))
        )
        for platform in PLATFORM_PREFERENCE:
            if platform not in self.channels:
                continue
            for identity in identities:
                if identity.platform == platform:
                    return identity
        return None

    async def run(self, stop: asyncio.Event) -> None:
        """Drain until `stop` is set; sleeps briefly when the outbox is empty."""
        try:
            while not stop.is_set():
                try:
                    tried = await self.drain_once(stop)
                except Exception:
                    log.exception("dispatcher pass failed")
                    tried = 0
                if not tried:
                    try:
                        await asyncio.wait_for(stop.wait(), timeout=self.idle_seconds)
                    except asyncio.TimeoutError:
                        pass
        finally:
            async with self.sessionmaker.begin() as session:
                await writing(session)
                await outbox.release(session, self.worker)
