"""The conversation engine: one message in, replies out, all in one database transaction.

For each message it records the platform's update id (a redelivered update is
ignored), finds the person, reads their open dialog from the database, routes the
message, and writes the dialog back. Nothing about a dialog lives only in memory.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from storage.db import writing
from storage.models import DialogState, Person, ProcessedUpdate
from storage.people import person_for_identity
from storage.timeutil import utcnow

from .context import Context
from .dialog import finish
from .dialogs import additions, cases, console, grid, language, menu, patrol, report, staff, stats
from .i18n import language_from_platform, number
from .protocol import Inbound, Reply
from .router import Router
from .text import clean, find_case_number, without_controls

log = logging.getLogger("gridbot.engine")

DEFAULT_IDLE_MINUTES = 30
DRAFT_HOURS = 24
OFFERED = "_offered"  # in the dialog's answers: the button data of the bot's last answer
FEATURE_ROUTERS = [menu.router, language.router, report.router, cases.router, grid.router, staff.router, patrol.router,
                   stats.router, console.router, additions.router]


class Replies(list):
    """The replies to show, and where the person's dialog now stands (for the adapters' logs).

    For an update seen before, `repeated` is set and the list holds the answer given then.
    `lost` says that answer was never confirmed sent (`Engine.answered`): a push adapter sends it
    again at once. Adapters hold the chat's lock (`storage.locks`) from the update to the
    confirmation, so a copy of an update arriving while its answer is on its way waits for it.
    """

    dialog: str | None = None
    state: str | None = None
    person_id: int | None = None
    repeated: bool = False
    lost: bool = False


@dataclass
class Sender:
    """Who sent a message, as the adapter knows them."""

    platform: str  # "telegram" | "web"
    external_id: str
    chat_id: str | None = None
    language_code: str | None = None  # the platform's hint, e.g. Telegram's language_code
    display_name: str | None = None
    bot: str = ""  # which bot of the platform the message came to (Telegram: the bot's id)

    @property
    def chat(self) -> str:
        return str(self.chat_id or self.external_id)


class Engine:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        idle_minutes: int = DEFAULT_IDLE_MINUTES,
        routers: list[Router] | None = None,
        clock: Callable[[], datetime] = utcnow,
        duplicate_metres: float | None = None,
    ):
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.duplicate_metres = duplicate_metres
        self.idle = timedelta(minutes=idle_minutes)
        # The registry: every feature's commands, buttons, dialogs and views, found by name.
        self.router = Router()
        for router in FEATURE_ROUTERS + list(routers or []):
            self.router.include(router)
        from .engine_support import _registered  # dialogs registered the old way

        self.router.dialogs.update({k: v for k, v in _registered.items() if k not in self.router.dialogs})
        self.dialogs = self.router.dialogs

    async def handle(self, sender: Sender, message: Inbound, *, update_id: str | int | None = None) -> Replies:
        """Process one message; returns the replies to show. A repeated `update_id` returns no replies."""
        started = time.perf_counter()
        _sanitise(message)
        for attempt in range(3):
            try:
                async with self.sessionmaker.begin() as session:
                    await writing(session)
                    processed = None
                    if update_id is not None:
                        processed, first = await _record_update(session, sender, str(update_id), self.clock())
                        if not first:
                            log.info("update %s not handled again: already processed", update_id)
                            return _earlier_answer(processed)
                    ctx = await self._context(session, sender)
                    await self._dispatch(ctx, message)
                    _remember_buttons(ctx)
                    ctx.dialog_state.updated_at = ctx.now
                    ctx.touch()
                    if processed is not None:
                        processed.replies = [reply.to_dict() for reply in ctx.replies]
                    await session.flush()
                log.info(
                    "update=%s person=%s kind=%s dialog=%s state=%s ms=%.1f",
                    update_id, ctx.person.id, message.kind, ctx.dialog_state.dialog, ctx.dialog_state.state,
                    (time.perf_counter() - started) * 1000,
                )
                replies = Replies(ctx.replies)
                replies.dialog, replies.state = ctx.dialog_state.dialog, ctx.dialog_state.state
                replies.person_id = ctx.person.id
                return replies
            except (StaleDataError, IntegrityError):
                # Two messages of one person at once, or one update on two instances:
                # go again, and the update-id check decides which one was first.
                if attempt == 2:
                    raise
        return Replies()

    async def answered(self, sender: Sender, update_id: str | int) -> None:
        """The answer to this update reached the person: a redelivery of it is not answered again."""
        async with self.sessionmaker.begin() as session:
            await writing(session)
            await session.execute(
                update(ProcessedUpdate)
                .where(ProcessedUpdate.platform == sender.platform, ProcessedUpdate.bot == sender.bot,
                       ProcessedUpdate.chat == sender.chat, ProcessedUpdate.update_id == str(update_id))
                .values(answered_at=self.clock())
            )

    async def _context(self, session: AsyncSession, sender: Sender) -> Context:
        hint = language_from_platform(sender.language_code)
        person, _ = await person_for_identity(
            session, sender.platform, sender.external_id, chat_id=sender.chat_id, language=hint,
            display_name=sender.display_name,
        )
        query = select(DialogState).where(DialogState.person_id == person.id).execution_options(populate_existing=True)
        if session.bind.dialect.name == "postgresql":
            query = query.with_for_update()
        state = await session.scalar(query)
        if state is None:
            state = DialogState(person_id=person.id, data={})
            session.add(state)
            await session.flush()
        ctx = Context(session=session, person=person, dialog_state=state, now=self.clock(), platform=sender.platform,
                      registry=self.router)
        ctx.settings["language_hint"] = hint
        if self.duplicate_metres is not None:
            ctx.settings["duplicate_metres"] = self.duplicate_metres
        return ctx

    async def _dispatch(self, ctx: Context, message: Inbound) -> None:
        state = ctx.dialog_state
        if state.draft_saved_at and ctx.now - state.draft_saved_at > timedelta(hours=DRAFT_HOURS):
            state.draft, state.draft_saved_at = None, None

        if not ctx.person.language_chosen:
            await self._first_contact(ctx, message)
            return

        route = self.router.match(message)
        if state.dialog and ctx.now - state.updated_at > self.idle:
            await self._close_idle(ctx)
            if route is None:
                return
            ctx.replies.clear()

        if route is not None:
            handler, argument = route
            keeps_dialog = message.kind == "button" and message.data.startswith(("lang:", "resume:"))
            if state.dialog and not keeps_dialog:
                self._put_aside(ctx)
            await handler(ctx, message, argument)
            return

        if state.dialog in self.dialogs:
            if message.kind == "button" and message.data not in state.data.get(OFFERED, [message.data]):
                # A button of an earlier step: say where the dialog now stands instead of guessing.
                ctx.say(ctx.t("That button belongs to an earlier step. Here is where we are now:"))
                await self.dialogs[state.dialog].prompt(ctx)
                return
            await self.dialogs[state.dialog].handle(ctx, message)
            return

        await self._outside_dialogs(ctx, message)

    async def _first_contact(self, ctx: Context, message: Inbound) -> None:
        """Nobody is served before choosing 中文 or བོད་ཡིག (preselected from the platform's hint)."""
        if ctx.dialog_state.dialog == language.LanguageDialog.name:
            if message.kind == "command" and message.command != "start":
                # /start first, then /join CODE while the question is open: keep it for after the choice.
                ctx.data["then"] = message.text
                ctx.touch()
            then = ctx.data.get("then")
            await self.dialogs["language"].handle(ctx, message)
            if then and ctx.person.language_chosen:
                route = self.router.match(Inbound.of_text(then))
                if route is not None:
                    ctx.replies.clear()
                    await route[0](ctx, Inbound.of_text(then), route[1])
            return
        deep_link = message.argument if message.kind == "command" and message.command == "start" else ""
        # A command sent first (e.g. /join CODE from an invitation) is done once the language is chosen.
        then = message.text if message.kind == "command" and message.command != "start" else ""
        await self.dialogs["language"].begin(ctx, hint=ctx.settings.get("language_hint"), deep_link=deep_link, then=then)

    async def _close_idle(self, ctx: Context) -> None:
        """Close a dialog nobody answered for a while, politely; an unfinished report is kept."""
        if self._put_aside(ctx):
            ctx.say(ctx.t("Your unfinished report was put aside after {minutes} minutes without an answer. "
                          "It is kept for 24 hours.", minutes=number(ctx.language, int(self.idle.total_seconds() // 60))))
        else:
            ctx.say(ctx.t("We stopped where we were, as there was no answer for a while."))
        await menu.show_menu(ctx)

    async def close_idle_dialogs(self, limit: int = 100) -> list[tuple[int, Replies]]:
        """Close the dialogs idle for longer than the limit; returns (person id, the polite notice) for
        each, for the caller to send. Run periodically, so that people are told without writing first."""
        closed: list[tuple[int, Replies]] = []
        async with self.sessionmaker.begin() as session:
            await writing(session)
            now = self.clock()
            query = (
                select(DialogState)
                .where(DialogState.dialog.is_not(None), DialogState.updated_at < now - self.idle)
                .order_by(DialogState.updated_at)
                .limit(limit)
            )
            if session.bind.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            for state in list(await session.scalars(query)):
                person = await session.get(Person, state.person_id)
                ctx = Context(session=session, person=person, dialog_state=state, now=now, platform="", registry=self.router)
                await self._close_idle(ctx)
                state.updated_at = now
                ctx.touch()
                replies = Replies(ctx.replies)
                replies.person_id = person.id
                closed.append((person.id, replies))
        return closed

    def _put_aside(self, ctx: Context) -> bool:
        """Close the open dialog; a report with any answer in it is kept as a draft for 24 hours."""
        saved = report.keep_draft(ctx)
        finish(ctx)
        return saved

    async def _outside_dialogs(self, ctx: Context, message: Inbound) -> None:
        if message.kind == "text":
            typed = clean(message.text)
            number = find_case_number(typed)
            if number:
                await cases.open_typed_case(ctx, typed)
                return
            if len(typed) >= report.MIN_DESCRIPTION:
                # Someone simply describing a problem: start a report with what they typed.
                await self.dialogs["report"].begin(ctx)
                ctx.replies.clear()
                await self.dialogs["report"].handle(ctx, message)
                return
        if message.kind in ("photo", "voice"):
            await additions.media_outside_dialogs(ctx, message)
            return
        if message.kind == "button":
            # A button of a finished dialog (an earlier "Submit", a place): it is done, say so.
            ctx.say(ctx.t("That button belongs to a step that is already finished. What would you like to do now?"))
            await menu.show_menu(ctx)
            return
        if message.kind == "location":
            await self.dialogs["grid"].begin(ctx)
            ctx.replies.clear()
            await self.dialogs["grid"].handle(ctx, message)
            return
        await menu.fallback(ctx)


def _remember_buttons(ctx: Context) -> None:
    """The buttons the open dialog's step offers now, so that a press of an older one is recognised."""
    if ctx.dialog_state.dialog:
        ctx.dialog_state.data[OFFERED] = [d for reply in ctx.replies for d in reply.button_data()]
        ctx.touch()


def _sanitise(message: Inbound) -> None:
    """Whatever a platform delivers: no control characters, bounded lengths (button data is ours, but
    can be forged)."""
    message.text = without_controls(message.text)
    message.argument = without_controls(message.argument, 200)
    message.command = without_controls(message.command, 32)
    message.data = without_controls(message.data, 64)


async def _record_update(
    session: AsyncSession, sender: Sender, update_id: str, now: datetime
) -> tuple[ProcessedUpdate, bool]:
    """The update's record, and whether it is handled now for the first time (False: handled before,
    here or elsewhere). An update stored on arrival and not handled yet is handled now."""
    key = (sender.platform, sender.bot, sender.chat, update_id)
    query = select(ProcessedUpdate).where(
        ProcessedUpdate.platform == key[0], ProcessedUpdate.bot == key[1], ProcessedUpdate.chat == key[2],
        ProcessedUpdate.update_id == key[3],
    ).execution_options(populate_existing=True)
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update()
    seen = await session.scalar(query)
    if seen is not None:
        if seen.processed_at is not None:
            return seen, False
        seen.processed_at, seen.payload = now, None  # the raw update is no longer needed
        return seen, True
    processed = ProcessedUpdate(platform=key[0], bot=key[1], chat=key[2], update_id=key[3], received_at=now,
                                processed_at=now)
    session.add(processed)
    await session.flush()
    return processed, True


def _earlier_answer(processed: ProcessedUpdate) -> Replies:
    replies = Replies(Reply.from_dict(r) for r in processed.replies or [])
    replies.repeated = True
    replies.lost = processed.answered_at is None
    return replies
