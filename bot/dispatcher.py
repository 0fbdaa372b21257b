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
from dataclasses import dataclass
from datetime import timedelta
from typing import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from conversations import notices
from conversations.protocol import Reply
from storage import access, outbox
from storage.db import writing
from storage.models import Case, Identity, Notification, Person
from storage.pacing import SLOT_TAKEN, SharedPacer
from storage.people import active_roles
from storage.timeutil import utcnow

from .channels import Blocked, Channel, Pacing, RetryLater, Undeliverable

log = logging.getLogger("gridbot.dispatcher")

PLATFORM_PREFERENCE = ("telegram", "wechat", "web")  # then any other platform with a channel
CHAT_MARGIN = 0.02  # seconds added to a chat's interval, for clocks that tick unevenly
RENEW_AFTER = 20.0  # seconds into a lease at which a recipient's task renews it


def _ready(reply: Reply) -> Callable[[], Awaitable[Reply]]:
    async def make() -> Reply:
        return reply

    return make


@dataclass
class Leased:
    """One recipient's leased notices, in order, and what sending them needs (read with the lease)."""

    notices: list[Notification]
    person: Person
    identities: list[Identity]
    reporters: dict[int, int]  # case id -> reporter id


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

    @property
    def channels(self) -> dict[str, Channel]:
        return {c.platform: c for c in self._channels}

    # -- draining ------------------------------------------------------------------------------

    async def drain_once(self, stop: asyncio.Event | None = None) -> int:
        """Lease a batch and send it, one task per recipient; returns how many were leased.
        When `stop` is set, what is left is released for the next pass or another dispatcher."""
        leased = await self._lease(self.batch)
        tasks = [asyncio.create_task(self._serve(one, stop)) for one in leased.values()]
        if tasks:
            await asyncio.gather(*tasks)
        return sum(len(one.notices) for one in leased.values())

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
                for one in leased.values():
                    task = asyncio.create_task(self._serve(one, stop))
                    active.add(task)
                    task.add_done_callback(active.discard)
                stopping = asyncio.ensure_future(stop.wait())
                try:
                    await asyncio.wait([stopping, *active], timeout=0.05 if leased else self.idle_seconds,
                                       return_when=asyncio.FIRST_COMPLETED)
                finally:
                    stopping.cancel()
            if active:
                await asyncio.gather(*active, return_exceptions=True)
        finally:
            async with self.sessionmaker.begin() as session:
                await writing(session)
                await outbox.release(session, self.worker)

    async def _lease(self, limit: int, recipients: int | None = None) -> dict[int, Leased]:
        """Leased notices per recipient, in order (at most `recipients` people), with what sending
        them needs read at once for all of them: no burst of reads per notice."""
        async with self.pacer.gate, self.sessionmaker.begin() as session:
            await writing(session)
            paced = tuple(p for p, c in self.channels.items() if getattr(c, "pacing", None) is not None)
            rows = await outbox.lease_due(session, self.worker, limit, per_recipient=self.per_recipient,
                                          paced_platforms=paced)
            by_recipient: dict[int, list[Notification]] = {}
            for row in rows:
                by_recipient.setdefault(row.recipient_id, []).append(row)
            if recipients is not None and len(by_recipient) > recipients:
                extra = list(by_recipient)[recipients:]
                await outbox.postpone(session, self.worker, [n.id for r in extra for n in by_recipient.pop(r)], utcnow())
            if not by_recipient:
                return {}
            people = {p.id: p for p in await session.scalars(select(Person).where(Person.id.in_(by_recipient)))}
            identities: dict[int, list[Identity]] = {}
            for identity in await session.scalars(select(Identity).where(Identity.person_id.in_(by_recipient))
                                                  .order_by(Identity.id)):
                identities.setdefault(identity.person_id, []).append(identity)
            case_ids = {n.case_id for notices_ in by_recipient.values() for n in notices_}
            reporters = dict((await session.execute(select(Case.id, Case.reporter_id).where(Case.id.in_(case_ids)))).all())
        return {
            recipient: Leased(notices_, people[recipient], identities.get(recipient, []), reporters)
            for recipient, notices_ in by_recipient.items()
        }

    async def _serve(self, leased: Leased, stop: asyncio.Event | None) -> None:
        """One recipient's leased notices, one after the other."""
        ids = [n.id for n in leased.notices]
        held = {"ids": ids, "renewed": time.monotonic()}

        async def keep_lease() -> None:
            if time.monotonic() - held["renewed"] > RENEW_AFTER:
                await self._record(outbox.renew, self.worker, held["ids"])
                held["renewed"] = time.monotonic()

        for index, notification in enumerate(leased.notices):
            held["ids"] = rest = ids[index:]
            if stop is not None and stop.is_set():
                await self._record(outbox.postpone, self.worker, rest, utcnow())
                return
            await keep_lease()
            try:
                go_on = await self._deliver(leased, notification, rest[1:], keep_lease)
            except Exception:
                log.exception("notification %s: delivery failed", notification.id)
                go_on = False  # its lease runs out and it is tried again, the person's later ones after it
            if not go_on:
                return

    async def _deliver(self, leased: Leased, notification: Notification, rest: list[int], keep_lease=None) -> bool:
        """Send one notification; False when the recipient's other leased notices must wait."""
        notification_id, person = notification.id, leased.person
        concerned = leased.reporters.get(notification.case_id) == person.id
        if not concerned:
            async with self.sessionmaker() as session:
                concerned = await self._still_concerned(session, notification)
        if not concerned:
            await self._give_up(notification_id, "recipient no longer concerned")
            return True
        identity, reason = self._choose(leased.identities)
        if identity is None:
            if reason == "blocked":
                await self._give_up(notification_id, "blocked on every platform")
            else:
                await self._record(outbox.mark_failed, notification_id, self.worker, "no reachable platform identity")
            return True
        identity_id, platform, chat_id = identity.id, identity.platform, identity.chat_id or identity.external_id
        channel = self.channels.get(platform)
        if channel is None:  # the platform stopped meanwhile (shutdown): another pass, or another instance
            await self._record(outbox.postpone, self.worker, [notification_id, *rest], utcnow())
            return False
        pacing: Pacing | None = getattr(channel, "pacing", None)
        try:
            await self._paced_send(channel, pacing, chat_id, lambda: self._render(person.language, notification), keep_lease)
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
        except Undeliverable as exc:  # no route left on that platform for this notice (e.g. WeChat's window)
            await self._record(outbox.give_up, notification_id, self.worker, str(exc))
            self._count_given_up("undeliverable", 1)
            log.info("notification %s given up: %s", notification_id, exc)
            return True
        except Exception as exc:  # any other failure: retried with backoff, the person's later notices after it
            self.failures += 1
            self.count(f'send_failures{{platform="{platform}"}}', 1)
            log.warning("send of notification %s failed: %s", notification_id, type(exc).__name__)
            retry_at = await self._record(outbox.mark_failed, notification_id, self.worker, f"{type(exc).__name__}: {exc}")
            if retry_at is not None:
                await self._record(outbox.postpone, self.worker, rest, retry_at)
                return False
            return True
        await self._record(outbox.mark_sent, notification_id, self.worker)
        self.sent += 1
        self.count(f'notifications_sent{{platform="{platform}"}}', 1)
        return True

    async def _paced_send(self, channel: Channel, pacing: Pacing | None, chat_id: str,
                          reply: Callable[[], Awaitable[Reply]], keep_lease=None) -> None:
        """Wait until the chat is free, then for the bot's slot, then make the reply and send. The chat is
        then free again one interval after the send came back, so however unevenly requests travel,
        two messages to one chat arrive at least the interval apart. (One sender per chat: the lease.)"""
        if pacing is None:
            await channel.send(chat_id, await reply())
            return
        chat_key, interval = f"{pacing.key}:chat:{chat_id}", pacing.chat_interval(chat_id) + CHAT_MARGIN
        await self.pacer.wait_until_free(chat_key, keep_lease)
        await self.pacer.wait(pacing.key, 1.0 / pacing.per_second, while_waiting=keep_lease)
        taken = SLOT_TAKEN.set(pacing.key)  # the platform's own limiter must not take a second slot
        try:
            await channel.send(chat_id, await reply())
        finally:
            SLOT_TAKEN.reset(taken)
            await self.pacer.pause(chat_key, interval)

    async def _render(self, language: str, notification: Notification):
        async with self.sessionmaker() as session:
            return await notices.render(session, language, notification)

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
                await self._paced_send(channel, pacing, chat_id, _ready(reply))
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
        return self._choose(list(await session.scalars(select(Identity).where(Identity.person_id == person_id)
                                                       .order_by(Identity.id))))

    def _choose(self, identities: list[Identity]) -> tuple[Identity | None, str | None]:
        """Where to reach the person: (identity, None), or (None, "blocked") when every platform they
        use is blocked, or (None, "unreachable") when no platform of theirs has a channel here."""
        channels = self.channels
        order = [p for p in PLATFORM_PREFERENCE if p in channels] + [p for p in channels if p not in PLATFORM_PREFERENCE]
        for platform in order:
            for identity in identities:
                if identity.platform == platform and identity.blocked_at is None:
                    return identity, None
        if identities and all(identity.blocked_at is not None for identity in identities):
            return None, "blocked"
        return None, "unreachable"
