"""My cases, a case by number, the case card with its timeline, and rating a closed case."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from storage import access, cases, deadlines, grids, lifecycle
from storage.cases import TooManyTries
from storage.reading import STAFF_READERS, CaseReading, reading_for
from storage.lifecycle import CaseError, CaseNotFound
from storage.models import Case, Department
from storage.people import active_roles

from .. import i18n, text
from ..evidence import case_media
from ..text import find_access_code, find_case_number
from ..context import Context
from ..dialog import BACK, CANCEL, AskCaseNumberDialog, Dialog, finish
from ..protocol import Button, Inbound
from ..router import Router
from ..wording import (
    ACTION_NAMES,
    DEADLINE_LABELS,
    INTERNAL_NOTES,
    MEDIA_NAMES,
    RATING_NAMES,
    RETURN_REASONS,
    ROLE_NAMES,
    STATE_NAMES,
    localised_reason,
    next_steps_after_rejection,
)

LIST_SIZE = 10
MAX_COMMENT = 500


def not_found(ctx: Context, number: str) -> None:
    ctx.say(ctx.t("No case with the number {number} was found among the cases you can see.", number=number.upper()) + "\n"
            + ctx.t("To follow a case someone else reported, type its number with its access code, "
                    "for example LS-20261124-0042 1234."),
            [[ctx.button("🔎 Look up a case", "menu:lookup"), ctx.button("☰ Menu", "menu:main")]])


async def open_typed_case(ctx: Context, typed: str) -> None:
    """A case number typed, maybe with its access code: the code makes the person a follower."""
    number = find_case_number(typed)
    code = find_access_code(typed)
    if code:
        try:
            case = await cases.case_for_person(ctx.session, ctx.person.id, number)
        except CaseNotFound:
            try:
                case = await cases.follow_with_code(ctx.session, ctx.person.id, number, code, now=ctx.now)
            except TooManyTries:
                ctx.say(ctx.t("Too many wrong tries. Please wait an hour, then type the number and code again."),
                        [[ctx.button("☰ Menu", "menu:main")]])
                return
            if case is None:  # a wrong code, or no such case: the same answer
                not_found(ctx, number)
                return
            ctx.say(ctx.t("You now follow case {number}: you will be told what happens, as its reporter is.",
                          number=case.number))
    await show_case(ctx, number)


async def show_my_cases(ctx: Context, offset: int = 0) -> None:
    found = await cases.cases_reported_by(ctx.session, ctx.person.id, limit=LIST_SIZE + 1, offset=offset)
    followed = await cases.cases_followed_by(ctx.session, ctx.person.id) if offset == 0 else []
    if not found and followed:
        rows = [[Button(f"👥 {c.number} · {ctx.t(STATE_NAMES[c.state])}", f"case:{c.number}")] for c in followed]
        ctx.say(ctx.t("Cases you follow:"), rows + [[ctx.button("☰ Menu", "menu:main")]])
        return
    if not found:
        ctx.say(ctx.t("You have not reported any case yet."), [[ctx.button("📝 Report a problem", "menu:report")],
                                                               [ctx.button("☰ Menu", "menu:main")]])
        return
    rows = [
        [Button(f"{c.number} · {c.matter.name(ctx.language)} · {ctx.t(STATE_NAMES[c.state])} · {ctx.time(c.updated_at)}",
                f"case:{c.number}")]
        for c in found[:LIST_SIZE]
    ]
    if len(found) > LIST_SIZE:
        rows.append([ctx.button("Older cases ▶", f"cases:{offset + LIST_SIZE}")])
    rows.append([ctx.button("☰ Menu", "menu:main")])
    ctx.say(ctx.t("Your cases, newest first. Choose one to see what has happened:"), rows)
    if followed:
        ctx.say(ctx.t("Cases you follow:"),
                [[Button(f"👥 {c.number} · {ctx.t(STATE_NAMES[c.state])}", f"case:{c.number}")] for c in followed])


async def show_case(ctx: Context, number: str) -> None:
    """The case card, only for people who may see it; anyone else gets 'not found'."""
    try:
        case = await cases.case_for_person(ctx.session, ctx.person.id, number)
    except CaseNotFound:
        not_found(ctx, number)
        return
    assignments = await active_roles(ctx.session, ctx.person.id)
    reading = reading_for(ctx.person.id, assignments, case)
    resident_view = case.reporter_id == ctx.person.id or access.is_follower(ctx.person.id, case)
    if not resident_view or any(access.covers(a, case) for a in assignments):
        await ctx.show("staff_card", case=case, assignments=assignments, base_text=await case_card(ctx, case, reading))
        return
    card = await case_card(ctx, case, reading)
    if case.reporter_id == ctx.person.id and case.access_code:
        card += "\n\n" + ctx.t("Access code: {code}. With the case number and this code the case can be followed "
                                "from any app or phone.", code=i18n.digits(ctx.language, case.access_code))
    events = await cases.timeline(ctx.session, case.id)
    media = case_media(ctx, case, events, for_staff=False) if reading.photos() else []
    ctx.say(card, card_buttons(ctx, case), media=media)


async def case_card(ctx: Context, case: Case, reading: CaseReading) -> str:
    """The case and its timeline as this reader may read it (storage.reading: internal notes only for staff)."""
    lines = [
        ctx.t("Case {number}", number=case.number),
        ctx.t("Kind: {matter}", matter=case.matter.name(ctx.language)),
        ctx.t("Status: {state}", state=ctx.t(STATE_NAMES[case.state])),
        ctx.t("Grid: {grid}", grid=await grids.place_name(ctx.session, case.grid, ctx.language)),
        ctx.t("Reported: {time}", time=ctx.time(case.created_at)),
    ]
    for_staff = bool(reading.readers & set(STAFF_READERS))
    current = deadlines.deadline_of(case)
    if current is not None:
        stage, due = current
        line = ctx.t(DEADLINE_LABELS[stage], time=ctx.time(due))
        if deadlines.is_overdue(case, ctx.now):
            line += " " + ctx.t("⚠ overdue")
        lines.append(line)
    if for_staff:
        if case.pending_extension:
            lines.append(ctx.t("More time asked for: until {time}",
                               time=ctx.time(datetime.fromisoformat(case.pending_extension["deadline"]))))
        if case.extension_count:
            lines.append(ctx.t("Extensions granted: {count}", count=i18n.number(ctx.language, case.extension_count)))
        if case.supervising_node is not None:
            lines.append(ctx.t("Supervised by: {centre}", centre=case.supervising_node.name(ctx.language)))
    if reading.result():
        lines.append(ctx.t("Result: {result}", result=reading.result()))
    if reading.rejection_reason():
        lines.append(ctx.t("Reason: {reason}", reason=localised_note(ctx, reading.rejection_reason())))
        if not for_staff:
            lines.append(next_steps_after_rejection(ctx.language, case.rejection_reason)[0])
    lines.append("")
    lines.append(ctx.t("What has happened:"))
    departments = {}
    for event in await cases.timeline(ctx.session, case.id):
        seen = reading.event(event)
        if not seen.shown:
            continue
        if event.action == "transfer" and event.data.get("department"):
            code = event.data["department"]
            if code not in departments:
                departments[code] = await ctx.session.scalar(select(Department).where(Department.code == code))
            sent_to = ACTION_NAMES[event.action]
            action = ctx.t(sent_to, department=departments[code].name(ctx.language) if departments[code] else code)
        elif event.action in ("merge", "merged_in"):
            action = ctx.t(ACTION_NAMES[event.action], number=event.data.get("into") or event.data.get("case", ""))
        else:
            action = ctx.t(ACTION_NAMES.get(event.action, event.action))
        who = ctx.t("You") if event.actor_id == ctx.person.id else ctx.t(ROLE_NAMES.get(event.actor_role, event.actor_role))
        line = f"• {ctx.time(event.created_at)} · {who} · {action}"
        details = []
        if event.action == "rate" and seen.data.get("rating") in RATING_NAMES:
            details.append(ctx.t(RATING_NAMES[seen.data["rating"]]))
        if event.action == "approve_extension" and seen.data.get("deadline"):
            details.append(ctx.time(datetime.fromisoformat(seen.data["deadline"])))
        if event.action == "return_to_centre" and seen.data.get("reason") in RETURN_REASONS:
            details.append(ctx.t(RETURN_REASONS[seen.data["reason"]]))
        if seen.note and event.action != "report":
            details.append(localised_note(ctx, seen.note))
        elif event.action in ("add_to_case", "resubmit") and "note" not in event.data:
            details.append(", ".join(ctx.t(MEDIA_NAMES[k]) for k in event.data.get("content", "").split("+")
                                     if k in MEDIA_NAMES))
        if details:
            line = ctx.t("{label}: {value}", label=line, value=" · ".join(details))
        if for_staff and event.action in INTERNAL_NOTES and event.note:
            line += " " + ctx.t("(staff only)")
        elif for_staff and event.action == "reply_to_resident":
            line += " " + ctx.t("(the resident can read this)")
        lines.append(line)
    return "\n".join(lines)


def localised_note(ctx: Context, note: str) -> str:
    """Reasons chosen from a list are stored in the official language; show them in the reader's."""
    return localised_reason(ctx.language, note)


def card_buttons(ctx: Context, case: Case) -> list[list[Button]]:
    rows = []
    if case.reporter_id == ctx.person.id and case.state in lifecycle.OPEN_STATES:
        rows.append([ctx.button("➕ Add details, photos or a voice note", f"add:{case.number}")])
    if case.reporter_id == ctx.person.id and cases.may_resubmit(case, ctx.now):
        rows.append([ctx.button("➕ Add the missing information", f"add:{case.number}")])
    if case.reporter_id == ctx.person.id and case.state == "closed" and case.satisfaction is None:
        rows.append([ctx.button("⭐ Rate the outcome", f"rate:{case.number}")])
    if "withdraw" in access.allowed_actions(ctx.person.id, [], case, ctx.now):
        rows.append([ctx.button("↩ Withdraw my report", f"withdraw:{case.number}")])
    rows.append([ctx.button("📋 My cases", "menu:cases"), ctx.button("☰ Menu", "menu:main")])
    return rows


class LookupDialog(AskCaseNumberDialog):
    """Look up a case by its number."""

    name = "lookup"

    async def with_number(self, ctx: Context, number: str) -> None:
        await open_typed_case(ctx, ctx.settings.get("typed") or number)


class RateDialog(Dialog):
    """Rate a closed case: satisfied / basically satisfied / unsatisfied, then an optional comment."""

    name = "rate"
    STATES = ["choose_rating", "comment"]
    TRANSITIONS = [
        dict(trigger="next", source="choose_rating", dest="comment"),
        dict(trigger="back", source="comment", dest="choose_rating"),
    ]

    async def prompt_choose_rating(self, ctx: Context) -> None:
        ctx.say(
            ctx.t("How satisfied are you with how case {number} was handled?", number=ctx.data["number"]),
            [[ctx.button(RATING_NAMES[r], f"rating:{r}")] for r in RATING_NAMES] + [[ctx.button("✖ Cancel", CANCEL)]],
        )

    async def on_choose_rating(self, ctx: Context, message: Inbound) -> None:
        rating = message.data.removeprefix("rating:") if message.kind == "button" else ""
        if rating not in RATING_NAMES:
            await self.prompt_choose_rating(ctx)
            return
        ctx.data["rating"] = rating
        await self.go(ctx, "next")

    async def prompt_comment(self, ctx: Context) -> None:
        question = (
            ctx.t("Please tell us what is still wrong. Your case will be reopened.")
            if ctx.data["rating"] == "unsatisfied"
            else ctx.t("Would you like to add a comment? Type it, or press Skip.")
        )
        ctx.say(question, [[ctx.button("Skip", "comment:skip")], [ctx.button("◀ Back", BACK), ctx.button("✖ Cancel", CANCEL)]])

    async def on_comment(self, ctx: Context, message: Inbound) -> None:
        if message.kind == "button" and message.data == "comment:skip":
            comment = None
        elif message.kind == "text" and text.clean(message.text):
            comment = text.clean(message.text)[:MAX_COMMENT]
        else:
            await self.prompt_comment(ctx)
            return
        number = ctx.data["number"]
        try:
            async with ctx.session.begin_nested():
                case = await cases.rate(ctx.session, number, ctx.person.id, ctx.data["rating"], comment, now=ctx.now)
        except CaseNotFound:
            finish(ctx)
            ctx.say(ctx.t("No case with the number {number} was found among the cases you can see.", number=number))
            await ctx.show("menu")
            return
        except CaseError:
            finish(ctx)
            ctx.say(ctx.t("This case cannot be rated now."))
            await ctx.show("menu")
            return
        finish(ctx)
        if case.state != "closed":
            ctx.say(ctx.t("Thank you. Case {number} has been reopened and goes back to the grid centre.", number=number))
        else:
            ctx.say(ctx.t("Thank you for your rating."))
        await ctx.show("menu")


class WithdrawDialog(Dialog):
    """The resident withdraws their report before handling starts (撤回), with an optional reason."""

    name = "withdraw"
    STATES = ["confirm"]
    TRANSITIONS: list = []

    async def prompt_confirm(self, ctx: Context) -> None:
        ctx.say(
            ctx.t("Do you want to withdraw case {number}? The grid centre will stop working on it. "
                  "You may type why, or press Withdraw.", number=ctx.data["number"]),
            [[ctx.button("↩ Withdraw", "confirm:withdraw")], [ctx.button("✖ Keep my report", CANCEL)]],
        )

    async def on_confirm(self, ctx: Context, message: Inbound) -> None:
        if message.kind == "text" and text.clean(message.text):
            reason = text.clean(message.text)[:MAX_COMMENT]
        elif message.kind == "button" and message.data == "confirm:withdraw":
            reason = None
        else:
            await self.prompt_confirm(ctx)
            return
        number = ctx.data["number"]
        finish(ctx)
        try:
            async with ctx.session.begin_nested():
                await cases.act(ctx.session, number, ctx.person.id, "withdraw", now=ctx.now, reason=reason)
        except CaseNotFound:
            ctx.say(ctx.t("No case with the number {number} was found among the cases you can see.", number=number))
            await ctx.show("menu")
            return
        except CaseError:
            ctx.say(ctx.t("Case {number} can no longer be withdrawn: the department has started handling it.", number=number),
                    [[ctx.button("Open case {number}", f"case:{number}", number=number)]])
            return
        ctx.say(ctx.t("Case {number} is withdrawn. Thank you for letting us know.", number=number))
        await ctx.show("menu")


router = Router()


router.add_dialogs(LookupDialog, RateDialog, WithdrawDialog)


@router.view("case")
async def case_view(ctx: Context, number: str) -> None:
    await show_case(ctx, number)


@router.press("withdraw:")
async def withdraw_report(ctx: Context, message: Inbound, number: str) -> None:
    await WithdrawDialog().begin(ctx, number=number)


@router.command("cases")
@router.press("menu:cases")
async def open_my_cases(ctx: Context, message: Inbound, argument: str) -> None:
    await show_my_cases(ctx)


@router.press("cases:")
async def more_cases(ctx: Context, message: Inbound, offset: str) -> None:
    await show_my_cases(ctx, text.small_number(offset))


@router.press("case:")
async def open_case_card(ctx: Context, message: Inbound, number: str) -> None:
    await show_case(ctx, number)  # permission is checked again here, whatever the button said


@router.command("case")
@router.press("menu:lookup")
async def look_up_case(ctx: Context, message: Inbound, argument: str) -> None:
    number = find_case_number(argument)
    if number:
        await open_typed_case(ctx, argument)
    else:
        await LookupDialog().begin(ctx)


@router.press("rate:")
async def start_rating(ctx: Context, message: Inbound, number: str) -> None:
    try:
        case = await cases.case_for_person(ctx.session, ctx.person.id, number)
    except CaseNotFound:
        case = None
    if case is None or case.reporter_id != ctx.person.id:
        ctx.say(ctx.t("No case with the number {number} was found among the cases you can see.", number=number.upper()))
        await ctx.show("menu")
        return
    if case.state != "closed" or case.satisfaction is not None:
        ctx.say(ctx.t("This case cannot be rated now."))
        await ctx.show("menu")
        return
    await RateDialog().begin(ctx, number=case.number)
