"""Drains the outbox: each notification rendered in the recipient's language, sent on their platform.

Concurrent across recipients, in order within one: a lease takes a person's due notices
(no other dispatcher holds that person meanwhile) and one task sends them one after the
other. A platform with limits (`Channel.pacing`, Telegram) is paced through slots in the
database, so every instance together keeps about 30 messages a second per bot and one a
second per chat; the web inbox is a database insert and is not paced. A 429 pauses that
bot everywhere for `retry_after`; a person who blocked the bot is marked at once, their
notices moved to their other platform or given up with the reason (metric and log line).

At least once, and at most once per (event, recipient) thanks to the outbox's unique key
and per-message commits; a dispatcher killed mid-send leaves leases that run out.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections import Counter
from datetime import timedelta
from typing import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from conversations import notices
from storage import access, outbox
from storage.db import writing
from storage.models import Case, Identity, Notification, Person
from storage.pacing import SharedPacer
from storage.people import active_roles
from storage.timeutil import utcnow

from .channels import Blocked, Channel, Pacing, RetryLater

log = logging.getLogger("gridbot.dispatcher")

PLATFORM_PREFERENCE = ("telegram", "web")  # then any other platform with a channel
CHAT_MARGIN = 0.02  # seconds added to a chat's interval, for clocks that tick unevenly
RENEW_AFTER = 20.0  # seconds into a lease at which a recipient's task renews it


class Dispatcher:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        channels: list[Channel],
        *,
        pacer: SharedPacer | None = None,
        batch: int = 100,
        concurrency: int = 1000,
        per_recipient: int = 10,
        idle_seconds: float = 0.25,
        count: Callable[[str, int], None] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self.sessionmaker = sessionmaker
        self._channels = channels  # the runtime's list: Telegram joins it once started
        self.pacer = pacer or SharedPacer(sessionmaker)
        self.batch = batch
        self.concurrency = concurrency
        self.per_recipient = per_recipient
        self.idle_seconds = idle_seconds
        self.count = count or (lambda name, by=1: None)
        self.sleep = sleep
        self.worker = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.sent = 0
        self.failures = 0
        self.given_up: Counter[str] = Counter()
        self.wake = asyncio.Event()  # set to lease at once (a new notification was written here)

    @property
    def channels(self) -> dict[str, Channel]:
        return {c.platform: c for c in self._channels}

    # -- draining ------------------------------------------------------------------------------

    async def drain_once(self, stop: asyncio.Event | None = None) -> int:
        """Lease a batch and send it, one task per recipient; returns how many were leased.
        When `stop` is set, what is left is released for the next pass or another dispatcher."""
        leased = await self._lease(self.batch)
        tasks = [asyncio.create_task(self._serve(ids, stop)) for ids in leased.values()]
        if tasks:
            await asyncio.gather(*tasks)
        return sum(len(ids) for ids in leased.values())

    async def run(self, stop: asyncio.Event) -> None:
        """Drain until `stop` is set: new recipients are leased as soon as tasks finish."""
        active: set[asyncio.Task] = set()
        try:
            while not stop.is_set():
                room = self.concurrency - len(active)
                leased = {}
                if room > 0:
                    try:
                        leased = await self._lease(self.batch, recipients=room)
                    except Exception:
                        log.exception("dispatcher lease failed")
                for ids in leased.values():
                    task = asyncio.create_task(self._serve(ids, stop))
                    active.add(task)
                    task.add_done_callback(active.discard)
                waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wake.wait())]
                try:
                    await asyncio.wait(
                        [*waits, *active], timeout=0.05 if leased else self.idle_seconds,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    for waiter in waits:
                        waiter.cancel()
                self.wake.clear()
            if active:
                await asyncio.gather(*active, return_exceptions=True)
        finally:
            async with self.sessionmaker.begin() as session:
                await writing(session)
                await outbox.release(session, self.worker)

    async def _lease(self, limit: int, recipients: int | None = None) -> dict[int, list[int]]:
        """Leased notification ids per recipient, in order (at most `recipients` people)."""
        async with self.pacer.gate, self.sessionmaker.begin() as session:
            await writing(session)
            rows = await outbox.lease_due(session, self.worker, limit, per_recipient=self.per_recipient)
            by_recipient: dict[int, list[int]] = {}
            for row in rows:
                by_recipient.setdefault(row.recipient_id, []).append(row.id)
            if recipients is not None and len(by_recipient) > recipients:
                extra = list(by_recipient)[recipients:]
                await outbox.postpone(session, self.worker, [i for r in extra for i in by_recipient.pop(r)], utcnow())
        return by_recipient

    async def _serve(self, ids: list[int], stop: asyncio.Event | None) -> None:
        """One recipient's leased notices, one after the other."""
        held = {"ids": ids, "renewed": time.monotonic()}

        async def keep_lease() -> None:
            if time.monotonic() - held["renewed"] > RENEW_AFTER:
                await self._record(outbox.renew, self.worker, held["ids"])
                held["renewed"] = time.monotonic()

        for index, notification_id in enumerate(ids):
            held["ids"] = rest = ids[index:]
            if stop is not None and stop.is_set():
                await self._record(outbox.postpone, self.worker, rest, utcnow())
                return
            await keep_lease()
            try:
                go_on = await self._deliver(notification_id, rest[1:], keep_lease)
            except Exception:
                log.exception("notification %s: delivery failed", notification_id)
                go_on = True  # its lease runs out and it is tried again
            if not go_on:
                return

    async def _deliver(self, notification_id: int, rest: list[int], keep_lease=None) -> bool:
        """Send one notification; False when the recipient's other leased notices must wait."""
        async with self.sessionmaker() as session:
            notification = await session.get(Notification, notification_id)
            person = await session.get(Person, notification.recipient_id)
            concerned = await self._still_concerned(session, notification)
            identity = reason = None
            if concerned:
                identity, reason = await self._identity(session, person.id)
            if identity is not None:
                reply = await notices.render(session, person.language, notification)
                identity_id, platform, chat_id = identity.id, identity.platform, identity.chat_id or identity.external_id
        if not concerned:
            await self._give_up(notification_id, "recipient no longer concerned")
            return True
        if identity is None:
            if reason == "blocked":
                await self._give_up(notification_id, "blocked on every platform")
            else:
                await self._record(outbox.mark_failed, notification_id, self.worker, "no reachable platform identity")
            return True
        channel = self.channels.get(platform)
        if channel is None:  # the platform stopped meanwhile (shutdown): another pass, or another instance
            await self._record(outbox.postpone, self.worker, [notification_id, *rest], utcnow())
            return False
        pacing: Pacing | None = getattr(channel, "pacing", None)
        try:
            await self._paced_send(channel, pacing, chat_id, reply, keep_lease)
        except RetryLater as exc:
            self.count(f'send_retry_later{{platform="{platform}"}}', 1)
            log.warning("%s asked to wait %.1f s: pausing that bot's sending on every instance", platform, exc.seconds)
            if pacing is not None:
                await self.pacer.pause(pacing.key, exc.seconds)
            now = utcnow()
            await self._record(outbox.mark_failed, notification_id, self.worker, str(exc), retry_after=exc.seconds, now=now)
            await self._record(outbox.postpone, self.worker, rest, now + timedelta(seconds=exc.seconds))
            return False
        except Blocked:
            async with self.pacer.gate, self.sessionmaker.begin() as session:
                await writing(session)
                given_up = await outbox.mark_blocked(session, notification_id, self.worker, identity_id)
            if given_up:
                self._count_given_up("blocked", given_up)
                log.info("person %s blocked the bot on %s and has no other platform: %d notices given up",
                         person.id, platform, given_up)
            else:
                log.info("person %s blocked the bot on %s: their notices go to their other platform", person.id, platform)
            return False  # the rest was released with the person's other notices
        except Exception as exc:  # any other failure: retried with backoff
            self.failures += 1
            self.count(f'send_failures{{platform="{platform}"}}', 1)
            log.warning("send of notification %s failed: %s", notification_id, type(exc).__name__)
            await self._record(outbox.mark_failed, notification_id, self.worker, f"{type(exc).__name__}: {exc}")
            return True
        self.sent += 1
        self.count(f'notifications_sent{{platform="{platform}"}}', 1)
        await self._record(outbox.mark_sent, notification_id, self.worker)
        return True

    async def _paced_send(self, channel: Channel, pacing: Pacing | None, chat_id: str, reply, keep_lease=None) -> None:
        """Wait until the chat is free, then for the bot's slot, then send. The chat is then free again
        one interval after the send came back, so however unevenly requests travel, two messages to
        one chat arrive at least the interval apart. (One sender per chat at a time: the lease.)"""
        if pacing is None:
            await channel.send(chat_id, reply)
            return
        chat_key, interval = f"{pacing.key}:chat:{chat_id}", pacing.chat_interval(chat_id) + CHAT_MARGIN
        await self.pacer.wait_until_free(chat_key, keep_lease)
        await self.pacer.wait(pacing.key, 1.0 / pacing.per_second, while_waiting=keep_lease)
        try:
            await channel.send(chat_id, reply)
        finally:
            await self.pacer.pause(chat_key, interval)

    async def _give_up(self, notification_id: int, reason: str) -> None:
        await self._record(outbox.give_up, notification_id, self.worker, reason)
        self._count_given_up(reason.split(" ")[0], 1)
        log.info("notification %s given up: %s", notification_id, reason)

    def _count_given_up(self, reason: str, by: int) -> None:
        self.given_up[reason] += by
        self.count(f'notifications_given_up{{reason="{reason}"}}', by)

    async def _record(self, mark, *args, **kwargs):
        async with self.pacer.gate, self.sessionmaker.begin() as session:
            await writing(session)
            return await mark(session, *args, **kwargs)

    # -- outside the outbox ----------------------------------------------------------------------

    async def send_to_person(self, person_id: int, replies: list) -> bool:
        """Best effort, outside the outbox: a notice that is not about a case (a dialog closed for
        lack of an answer), paced like the rest. Returns whether it was handed to a platform."""
        async with self.sessionmaker() as session:
            identity, _ = await self._identity(session, person_id)
            if identity is None:
                return False
            platform, chat_id = identity.platform, identity.chat_id or identity.external_id
        channel = self.channels.get(platform)
        if channel is None:
            return False
        pacing: Pacing | None = getattr(channel, "pacing", None)
        try:
            for reply in replies:
                await self._paced_send(channel, pacing, chat_id, reply)
        except Exception as exc:
            log.info("notice to person %s not sent: %s", person_id, type(exc).__name__)
            return False
        return True

    # -- who, where ----------------------------------------------------------------------------

    async def _still_concerned(self, session: AsyncSession, notification: Notification) -> bool:
        """Staff whose role was revoked since the step (or who moved) are no longer told about the case."""
        reporter = await session.scalar(select(Case.reporter_id).where(Case.id == notification.case_id))
        if reporter is None or reporter == notification.recipient_id:
            return True
        case = await session.get(Case, notification.case_id)
        return access.can_view(notification.recipient_id, await active_roles(session, notification.recipient_id), case)

    async def _identity(self, session: AsyncSession, person_id: int) -> tuple[Identity | None, str | None]:
        """Where to reach the person: (identity, None), or (None, "blocked") when every platform they
        use is blocked, or (None, "unreachable") when no platform of theirs has a channel here."""
        identities = list(await session.scalars(select(Identity).where(Identity.person_id == person_id)))
        channels = self.channels
        order = [p for p in PLATFORM_PREFERENCE if p in channels] + [p for p in channels if p not in PLATFORM_PREFERENCE]
        for platform in order:
            for identity in identities:
                if identity.platform == platform and identity.blocked_at is None:
                    return identity, None
        if identities and all(identity.blocked_at is not None for identity in identities):
            return None, "blocked"
        return None, "unreachable"
