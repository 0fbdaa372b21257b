"""The notification dispatcher with a fake channel: retries, backoff, unreachable people, rendering per language."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.dispatcher import Dispatcher
from conversations.engine import Engine
from storage.cases import CaseStore
from storage.models import Notification
from storage.timeutil import utcnow
from conversations.notices import NOTICES
from tests.test_dialogs_resident import case_number_in, report_transcript, start
from tests.transcript import fixed_parts


class FlakyWeb:
    """A channel whose first `failures` sends to `flaky_chat` fail."""

    platform = "web"

    def __init__(self, flaky_chat: str = "", failures: int = 0):
        self.flaky_chat, self.failures = flaky_chat, failures
        self.sent: list[tuple[str, str]] = []

    async def send(self, chat_id, reply):
        if chat_id == self.flaky_chat and self.failures:
            self.failures -= 1
            raise ConnectionError("network down")
        self.sent.append((chat_id, reply.text))


class TelegramOnly:
    platform = "telegram"

    async def send(self, chat_id, reply):  # pragma: no cover - nobody here has Telegram
        raise AssertionError("not expected")


async def accepted_case(demo, language="bo"):
    engine = Engine(demo)
    chat = await start(engine, f"notified-{language}", language)
    await chat.run(report_transcript(language))
    number = case_number_in(chat)
    store = CaseStore(demo)
    async with demo() as session:
        from storage.models import Identity

        centre = await session.scalar(select(Identity.person_id).where(Identity.external_id == "demo-centre-gesang"))
    await store.act(number, centre, "accept")
    return number


async def pending(demo, key: str) -> Notification:
    async with demo() as session:
        return await session.scalar(select(Notification).where(Notification.message_key == key))


async def test_a_failed_send_is_retried_with_backoff_then_delivered_in_the_residents_language(demo):
    number = await accepted_case(demo, "bo")
    channel = FlakyWeb("notified-bo", failures=1)
    dispatcher = Dispatcher(demo, [channel])
    await dispatcher.drain_once()
    first = await pending(demo, "accept.reporter")
    assert first.sent_at is None and first.attempts == 1 and first.last_error.startswith("ConnectionError")
    assert first.next_attempt_at > utcnow() + timedelta(seconds=3)
    # Not due yet: nothing is sent again until the backoff has passed.
    await dispatcher.drain_once()
    assert not [t for chat, t in channel.sent if chat == "notified-bo"]
    async with demo.begin() as session:
        row = await session.get(Notification, first.id)
        row.next_attempt_at = utcnow() - timedelta(seconds=1)
    await dispatcher.drain_once()
    texts = [t for chat, t in channel.sent if chat == "notified-bo" and number in t]
    assert len(texts) == 1
    assert all(part in texts[0] for part in fixed_parts("bo", NOTICES["accept.reporter"]))  # in Tibetan
    assert (await pending(demo, "accept.reporter")).sent_at is not None


async def test_a_person_with_no_reachable_platform_does_not_stop_the_drain(demo):
    await accepted_case(demo, "zh")
    dispatcher = Dispatcher(demo, [TelegramOnly()])
    assert await dispatcher.drain_once() > 0
    row = await pending(demo, "accept.reporter")
    assert row.sent_at is None and row.last_error == "no reachable platform identity"


async def test_a_revoked_member_of_staff_is_no_longer_told(demo):
    from storage.staff import find_person, revoke_staff

    await accepted_case(demo, "zh")  # the report told the grid's worker
    async with demo.begin() as session:
        await revoke_staff(session, (await find_person(session, "demo-worker-g01")).id)
    channel = FlakyWeb()
    await Dispatcher(demo, [channel]).drain_once()
    assert not [chat for chat, _ in channel.sent if chat == "demo-worker-g01"]
    row = await pending(demo, "report.grid_workers")
    assert row.gave_up_at is not None and row.last_error == "recipient no longer concerned"


async def test_a_notification_waits_for_a_person_who_blocked_every_channel(demo):
    """Given up only after three days: until then each try waits longer, and the first try after they
    write to us again goes through."""
    from storage import outbox

    await accepted_case(demo, "zh")
    row = await pending(demo, "accept.reporter")
    async with demo.begin() as session:
        leased = await outbox.lease_due(session, "w", 100)
        assert row.id in [n.id for n in leased]
        await outbox.mark_failed(session, row.id, "w", "no reachable platform identity", now=row.created_at + timedelta(days=2))
    assert (await pending(demo, "accept.reporter")).gave_up_at is None
    async with demo.begin() as session:
        await outbox.lease_due(session, "w", 100, now=row.created_at + timedelta(days=3))
        await outbox.mark_failed(session, row.id, "w", "no reachable platform identity", now=row.created_at + timedelta(days=3))
    assert (await pending(demo, "accept.reporter")).gave_up_at is not None


async def test_an_unanswered_dialog_is_closed_and_the_person_told_without_writing_first(demo):
    from conversations.i18n import translate

    engine = Engine(demo)
    chat = await start(engine, "gone-quiet", "bo")
    await chat.run(report_transcript("bo")[:3])
    assert await engine.close_idle_dialogs() == []  # not idle yet
    engine.clock = lambda: utcnow() + timedelta(minutes=31)
    [(person_id, replies)] = await engine.close_idle_dialogs()
    channel = FlakyWeb()
    assert await Dispatcher(demo, [channel]).send_to_person(person_id, replies)
    told = "\n".join(text for chat_id, text in channel.sent if chat_id == "gone-quiet")
    assert all(part in told for part in fixed_parts(
        "bo", "Your unfinished report was put aside after {minutes} minutes without an answer. It is kept for 24 hours."))
    assert "resume:report" in [d for r in replies for d in r.button_data()]
    assert await engine.close_idle_dialogs() == []  # told once
    await chat.run([(  # their next message is simply handled: the notice is not repeated
        "/menu", lambda c: "resume:report" in c.buttons() and translate("bo", "Your unfinished report was put aside "
                                                                          "after {minutes} minutes without an answer. "
                                                                          "It is kept for 24 hours.")[:10] not in c.text)])
