"""Pacing shared by instances, and the dispatcher's concurrency, with controllable clocks.

"Two instances" are two engines (two connection pools) on one database: on PostgreSQL
that is what two processes are to each other.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

import pytest
from sqlalchemy import select

from bench.outbox_load import enqueue
from bot.channels import Pacing, RetryLater
from bot.dispatcher import Dispatcher
from storage.db import make_engine, make_sessionmaker
from storage.models import Notification, PacingSlot
from storage.pacing import SharedPacer


class ManualClock:
    """Time that moves only when told (or when someone sleeps)."""

    def __init__(self, start: float = 1_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


class FastClock:
    """Virtual time running `speed` times faster than real time: sleeps are that much shorter."""

    def __init__(self, speed: float):
        self.speed, self.start, self.origin = speed, 1_000_000.0, time.monotonic()

    def __call__(self) -> float:
        return self.start + (time.monotonic() - self.origin) * self.speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self.speed)


def within_bucket(times: list[float], per_second: float, capacity: float) -> bool:
    tokens, last = capacity, times[0]
    for at in times:
        tokens = min(capacity, tokens + (at - last) * per_second) - 1
        last = at
        if tokens < -1e-9:
            return False
    return True


def second_instance(sessionmaker):
    """Another engine on the same database."""
    return make_sessionmaker(make_engine(sessionmaker.kw["bind"].url.render_as_string(hide_password=False)))


class PacedTelegram:
    """A fake Telegram channel with the real pacing; records (chat, virtual time) of each send."""

    platform = "telegram"

    def __init__(self, clock, log: list, pacing: Pacing, *, retry_first: float | None = None):
        self.clock, self.log, self.pacing = clock, log, pacing
        self.retry_first = retry_first

    async def send(self, chat_id, reply) -> None:
        if self.retry_first is not None:
            seconds, self.retry_first = self.retry_first, None
            self.log.append(("429", self.clock()))
            raise RetryLater(seconds)
        self.log.append((chat_id, self.clock()))
        await asyncio.sleep(0.001)


class Inbox:
    platform = "web"

    def __init__(self, clock, log):
        self.clock, self.log = clock, log

    async def send(self, chat_id, reply) -> None:
        self.log.append((chat_id, self.clock()))


async def test_two_instances_get_consecutive_slots_and_share_a_pause(sessionmaker):
    clock = ManualClock()
    other = second_instance(sessionmaker)
    try:
        pacers = [SharedPacer(sessionmaker, clock=clock), SharedPacer(other, clock=clock)]
        slots = [await pacers[i % 2].reserve("telegram:1", 0.5) for i in range(6)]
        assert slots == [clock.now + 0.5 * i for i in range(6)]  # one after the other, whoever asks
        await pacers[0].pause("telegram:1", 42)
        assert await pacers[1].reserve("telegram:1", 0.5) == clock.now + 42  # the pause holds everywhere
        assert await pacers[1].reserve("telegram:1:chat:7", 1.0) == clock.now  # other keys are not held
        clock.now += 100
        assert await pacers[0].reserve("telegram:1", 0.5) == clock.now  # idle time is not saved up
    finally:
        await other.kw["bind"].dispose()


async def test_two_dispatchers_keep_one_pace_per_bot_and_per_chat_and_the_web_is_not_paced(world, sessionmaker):
    clock = FastClock(speed=2)
    pacing = Pacing("telegram:555", per_second=30)
    chats = [("telegram", str(1000 + i), 1) for i in range(60)] + [("telegram", "busy", 5)]
    webs = [("web", f"{i:032x}", 1) for i in range(30)]
    ids = await enqueue(sessionmaker, chats + webs)
    other = second_instance(sessionmaker)
    log: list = []
    try:
        dispatchers = [
            Dispatcher(maker, [PacedTelegram(clock, log, pacing), Inbox(clock, log)],
                       pacer=SharedPacer(maker, clock=clock, sleep=clock.sleep), sleep=clock.sleep)
            for maker in (sessionmaker, other)
        ]
        started = clock()
        stop = asyncio.Event()
        runs = [asyncio.create_task(d.run(stop)) for d in dispatchers]
        for _ in range(600):
            await asyncio.sleep(0.05)
            if len(log) >= 60 + 5 + 30:
                break
        stop.set()
        await asyncio.gather(*runs)
    finally:
        await other.kw["bind"].dispose()

    sends = defaultdict(list)
    for chat, at in log:
        sends[chat].append(at - started)
    assert all(len(sends[chat]) == 1 for _, chat, _ in chats[:60] + webs)  # each once, shared by the two
    telegram = sorted(at for chat, times in sends.items() if not chat.startswith("0") for at in times)
    # 30 a second for the bot, both instances together: a bucket refilled at 30/s that holds only 5
    # (Telegram allows bursts; this allows the jitter of a busy machine) never runs dry.
    assert within_bucket(telegram, per_second=30, capacity=5), [round(t, 3) for t in telegram]
    assert telegram[-1] - telegram[0] >= (len(telegram) - 5) / 30
    busy = sends["busy"]
    assert len(busy) == 5 and all(b - a >= 1.0 for a, b in zip(busy, busy[1:]))  # one a second in one chat
    # The web inbox is not paced: no slots are taken for it, and its notices are all there long
    # before the 65 Telegram sends are done.
    web = [times[0] for chat, times in sends.items() if chat.startswith("0")]
    assert max(web) < telegram[-1] - 1.0
    async with sessionmaker() as session:
        keys = set(await session.scalars(select(PacingSlot.key)))
    assert "telegram:555" in keys and not [key for key in keys if not key.startswith("telegram:555")]
    async with sessionmaker() as session:
        rows = list(await session.scalars(select(Notification).where(Notification.id.in_(ids["busy"]))))
    assert sorted(rows, key=lambda r: r.sent_at) == sorted(rows, key=lambda r: r.id)  # in order


async def test_a_429_pauses_the_bot_for_every_instance_and_keeps_the_chats_order(world, sessionmaker):
    clock = ManualClock()
    pacing = Pacing("telegram:556", per_second=1000, per_chat_interval=0)
    ids = await enqueue(sessionmaker, [("telegram", "first", 3)])
    other = second_instance(sessionmaker)
    log: list = []
    try:
        pacer = SharedPacer(sessionmaker, clock=clock, sleep=clock.sleep)
        one = Dispatcher(sessionmaker, [PacedTelegram(clock, log, pacing, retry_first=30)], pacer=pacer, per_recipient=3)
        await one.drain_once()  # the first send gets a 429 asking for 30 s
        assert [chat for chat, _ in log] == ["429"]
        await enqueue(sessionmaker, [("telegram", "second", 1)])
        # The other instance, a moment later: its send waits for the pause too.
        two = Dispatcher(other, [PacedTelegram(clock, log, pacing)], pacer=SharedPacer(other, clock=clock, sleep=clock.sleep))
        paused_at = clock.now
        await two.drain_once()
        assert [chat for chat, _ in log] == ["429", "second"] and log[1][1] >= paused_at + 30
        async with sessionmaker() as session:
            rows = list(await session.scalars(select(Notification).where(Notification.id.in_(ids["first"]))))
        # "first"'s three notices wait together, so they go out in their order afterwards.
        assert all(row.sent_at is None for row in rows)
        assert len({row.next_attempt_at for row in rows}) == 1
    finally:
        await other.kw["bind"].dispose()


async def test_the_bots_own_answers_share_the_pace_and_a_notice_takes_one_slot_only(sessionmaker):
    from telegram.error import RetryAfter

    from bot.telegram.pacing import SharedRateLimiter
    from storage.pacing import SLOT_TAKEN

    clock = ManualClock()
    pacer = SharedPacer(sessionmaker, clock=clock, sleep=clock.sleep)
    limiter = SharedRateLimiter(pacer, "telegram:77", per_second=10)
    sent = []

    async def send(chat_id):
        sent.append((chat_id, clock.now))
        return True

    start = clock.now
    for chat in ("1", "2", "3"):  # answers to different people: the bot's pace, 10 a second
        await limiter.process_request(send, (chat,), {}, "sendMessage", {"chat_id": chat}, None)
    assert [round(at - start, 3) for _, at in sent] == [0.0, 0.1, 0.2]
    token = SLOT_TAKEN.set("telegram:77")  # the dispatcher took this send's slot already
    try:
        await limiter.process_request(send, ("4",), {}, "sendMessage", {"chat_id": "4"}, None)
    finally:
        SLOT_TAKEN.reset(token)
    assert round(sent[-1][1] - start, 3) == 0.2  # no second slot, no wait

    async def flooded(chat_id):
        raise RetryAfter(9)

    with pytest.raises(RetryAfter):
        await limiter.process_request(flooded, ("5",), {}, "sendMessage", {"chat_id": "5"}, None)
    paused_at = clock.now
    await limiter.process_request(send, ("6",), {}, "sendMessage", {"chat_id": "6"}, None)
    assert sent[-1][1] >= paused_at + 9  # the 429 paused the bot
