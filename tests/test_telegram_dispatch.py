"""Notifications to Telegram users through the dispatcher's leases, with a fake channel.

A dispatcher killed mid-drain (its task cancelled without the clean release, as with
kill -9) loses nothing: its leases run out and another dispatcher sends the rest, and
no chat gets the same event twice. Two dispatchers draining at once share the work
(leases serialised: an advisory lock on PostgreSQL, BEGIN IMMEDIATE on SQLite). Flood control
and blocked users follow the Channel protocol. The same against the emulator is in
test_telegram_e2e.py.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot.channels import Blocked, RetryLater
from bot.dispatcher import Dispatcher
from conversations.protocol import Reply
from storage.cases import CaseStore
from storage.models import Identity, Notification
from storage.people import person_for_identity
from storage.timeutil import utcnow

STREET_LIGHT = "GM-0301"


class FakeTelegram:
    """Records (chat id, text) of what reached 'Telegram'; can fail on the n-th send, or stall from
    the n-th on (the process freezes there: every send from then on hangs)."""

    platform = "telegram"

    def __init__(self, *, stall_on: int | None = None, stall_after_delivery: bool = False, raise_on: dict | None = None):
        self.delivered: list[tuple[str, str]] = []
        self.calls = 0
        self.stall_on = stall_on
        self.stall_after_delivery = stall_after_delivery
        self.raise_on = raise_on or {}
        self.stalled = asyncio.Event()

    async def send(self, chat_id: str, reply: Reply) -> None:
        self.calls += 1
        call = self.calls
        if call in self.raise_on:
            raise self.raise_on[call]
        if self.stall_on is not None and call >= self.stall_on and not self.stall_after_delivery:
            self.stalled.set()
            await asyncio.Event().wait()  # dies here, before the message leaves
        await asyncio.sleep(0)
        self.delivered.append((chat_id, reply.text))
        if self.stall_on is not None and call >= self.stall_on and self.stall_after_delivery:
            self.stalled.set()
            await asyncio.Event().wait()  # dies after Telegram accepted it, before the mark commits


class Staff:
    platform = "web"

    async def send(self, chat_id, reply) -> None:
        pass


def dispatcher(sessionmaker, channel) -> Dispatcher:
    # The Staff channel: see StaffInbox in test_telegram_e2e.py.
    return Dispatcher(sessionmaker, [channel, Staff()], batch=500)


async def residents_with_accepted_cases(sessionmaker, count: int) -> dict[str, str]:
    """`count` Telegram residents, each with one accepted case: chat id → case number."""
    store = CaseStore(sessionmaker)
    numbers = {}
    for index in range(count):
        chat = str(880000 + index)
        async with sessionmaker.begin() as session:
            person, _ = await person_for_identity(session, "telegram", chat, chat_id=chat)
            person.language_chosen = True
            person_id = person.id
        case = await store.open_case(reporter_id=person_id, matter_code=STREET_LIGHT, description="路灯坏了三天了",
                                     language="zh", grid_code="5401-D1-01-01-G01")
        numbers[chat] = case.number
    async with sessionmaker() as session:
        centre = await session.scalar(select(Identity.person_id).where(Identity.external_id == "demo-centre-gesang"))
    for number in numbers.values():
        await store.act(number, centre, "accept")
    return numbers


async def expire_leases(sessionmaker, worker: str) -> None:
    async with sessionmaker.begin() as session:
        await session.execute(update(Notification).where(Notification.claimed_by == worker)
                              .values(claimed_until=utcnow() - timedelta(seconds=1)))


async def kill_mid_drain(sessionmaker, channel: FakeTelegram, sends: int) -> Dispatcher:
    """Kill the dispatcher once every one of its `sends` sends has started (the first ones done)."""
    first = dispatcher(sessionmaker, channel)
    task = asyncio.create_task(first.drain_once())
    await asyncio.wait_for(channel.stalled.wait(), timeout=10)
    marked, steady = -1, 0
    for _ in range(1000):  # until every send has started and the marks of those done are written
        await asyncio.sleep(0.01)
        steady = steady + 1 if (first.sent, channel.calls >= sends) == (marked, True) else 0
        marked = first.sent
        if steady >= 30:
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return first


def per_chat(delivered: list[tuple[str, str]], numbers: dict[str, str]) -> Counter:
    return Counter(chat for chat, text in delivered if numbers[chat] in text)


async def test_killed_dispatcher_loses_nothing_and_repeats_nothing(demo):
    numbers = await residents_with_accepted_cases(demo, 6)
    first_channel = FakeTelegram(stall_on=4)
    first = await kill_mid_drain(demo, first_channel, 6)
    assert len(first_channel.delivered) == 3

    second_channel = FakeTelegram()
    second = dispatcher(demo, second_channel)
    assert await second.drain_once() == 0  # the dead dispatcher's leases hold until they run out
    await expire_leases(demo, first.worker)
    await second.drain_once()
    delivered = first_channel.delivered + second_channel.delivered
    assert per_chat(delivered, numbers) == Counter({chat: 1 for chat in numbers})
    assert await second.drain_once() == 0  # nothing left, nothing sent again


async def test_the_one_window_of_at_least_once(demo):
    """Killed after Telegram accepted a message but before its 'sent' mark committed: that
    message is sent again (at least once, never lost); every other chat once."""
    numbers = await residents_with_accepted_cases(demo, 4)
    first_channel = FakeTelegram(stall_on=4, stall_after_delivery=True)
    first = await kill_mid_drain(demo, first_channel, 4)
    await expire_leases(demo, first.worker)
    second_channel = FakeTelegram()
    await dispatcher(demo, second_channel).drain_once()
    counts = per_chat(first_channel.delivered + second_channel.delivered, numbers)
    assert set(counts) == set(numbers)
    assert sorted(counts.values()) == [1, 1, 1, 2]  # the fourth send reached Telegram, its mark did not


async def test_two_dispatchers_at_once_share_the_work(demo):
    numbers = await residents_with_accepted_cases(demo, 8)
    channels = [FakeTelegram(), FakeTelegram()]
    await asyncio.gather(*(dispatcher(demo, channel).drain_once() for channel in channels))
    counts = per_chat(channels[0].delivered + channels[1].delivered, numbers)
    assert counts == Counter({chat: 1 for chat in numbers})


async def test_flood_control_and_blocked_users(demo):
    numbers = await residents_with_accepted_cases(demo, 2)
    channel = FakeTelegram(raise_on={1: RetryLater(42), 2: Blocked("bot was blocked by the user")})
    await dispatcher(demo, channel).drain_once()
    async with demo() as session:
        rows = list(await session.scalars(select(Notification).where(Notification.message_key == "accept.reporter")
                                          .order_by(Notification.id)))
        retried, blocked = sorted(rows, key=lambda row: row.gave_up_at is not None)
        # The 429's recipient: that notice and the next one of the same person wait, in order.
        assert retried.sent_at is None and retried.gave_up_at is None
        wait = (retried.next_attempt_at - utcnow()).total_seconds()
        assert 30 < wait <= 42
        # No other platform: given up at once, with the reason, not retried for days.
        assert blocked.sent_at is None and blocked.gave_up_at is not None
        assert blocked.last_error == "blocked on telegram, no other platform"
        identity = await session.scalar(select(Identity).where(Identity.person_id == blocked.recipient_id,
                                                               Identity.platform == "telegram"))
        assert identity.blocked_at is not None
    assert channel.delivered == []


class Inbox:
    platform = "web"

    def __init__(self):
        self.delivered: list[tuple[str, str]] = []

    async def send(self, chat_id, reply) -> None:
        self.delivered.append((chat_id, reply.text))


async def test_a_blocked_chat_moves_the_persons_pending_notices_to_their_other_platform(demo):
    numbers = await residents_with_accepted_cases(demo, 1)
    [(chat, number)] = numbers.items()
    async with demo.begin() as session:
        person_id = await session.scalar(select(Identity.person_id).where(Identity.external_id == chat))
        session.add(Identity(person_id=person_id, platform="web", external_id="a" * 32, chat_id="a" * 32))
    telegram, web = FakeTelegram(raise_on={1: Blocked("Forbidden: bot was blocked by the user")}), Inbox()
    sender = Dispatcher(demo, [telegram, web])
    while await sender.drain_once():
        pass
    mine = [text for to, text in web.delivered if to == "a" * 32]
    assert len(mine) == 1 and number in mine[0]  # the acceptance, in the web inbox instead
    assert telegram.calls == 1 and telegram.delivered == []  # Telegram is not tried again
    async with demo() as session:
        rows = list(await session.scalars(select(Notification).where(Notification.recipient_id == person_id)))
    assert all(row.sent_at is not None and row.gave_up_at is None for row in rows)
