"""My cases, a case by number, the case card with its timeline, and rating a closed case."""

from __future__ import annotations

import re

from sqlalchemy import select

from storage import access, cases, grids, lifecycle
from storage.cases import TooManyTries
from storage.lifecycle import CaseError, CaseNotFound
from storage.models import Case, Department
from storage.people import active_roles

from .. import text
from ..evidence import case_media
from ..context import Context
from ..dialog import BACK, CANCEL, Dialog, finish
from ..protocol import Button, Inbound
from ..router import Router
from ..wording import ACTION_NAMES, INTERNAL_NOTES, MEDIA_NAMES, RATING_NAMES, ROLE_NAMES, STATE_NAMES, localised_reason
from .menu import show_menu

CASE_NUMBER = re.compile(r"\bLS-[0-9]{8}-[0-9]{4,}\b", re.IGNORECASE)
# "LS-20261201-0007 · 4821": a case number with its access code (any separator but digits)
WITH_CODE = re.compile(r"\bLS-[0-9]{8}-[0-9]{4,}[^0-9A-Za-z]{1,5}([0-9]{4})\b", re.IGNORECASE)
LIST_SIZE = 10
MAX_COMMENT = 500


def find_case_number(typed: str) -> str | None:
    """A case number in what was typed (Tibetan digits too), as stored: LS-YYYYMMDD-NNNN."""
    match = CASE_NUMBER.search((typed or "").translate(text.ASCII_DIGITS))
    return match.group(0).upper() if match else None


def find_access_code(typed: str) -> str | None:
    """The access code typed after a case number, if any."""
    match = WITH_CODE.search((typed or "").translate(text.ASCII_DIGITS))
    return match.group(1) if match else None


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
        [Button(f"{c.number} · {ctx.t(STATE_NAMES[c.state])} · {ctx.time(c.updated_at)}", f"case:{c.number}")]
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
    resident_view = case.reporter_id == ctx.person.id or access.is_follower(ctx.person.id, case)
    if not resident_view or any(access.covers(a, case) for a in assignments):
        from .staff import staff_card

        await staff_card(ctx, case, assignments, await case_card(ctx, case, for_staff=True))
        return
    card = await case_card(ctx, case)
    if case.reporter_id == ctx.person.id and case.access_code:
        card += "\n\n" + ctx.t("Access code: {code}. With the case number and this code the case can be followed "
                                "from any app or phone.", code=case.access_code)
    events = await cases.timeline(ctx.session, case.id)
    ctx.say(card, card_buttons(ctx, case), media=case_media(ctx, case, events, for_staff=False))


# Notes a reporter may read in their timeline; the rest (comments, prompts, extension reasons,
# failed checks, relayed feedback) are internal to staff (Art. 19).
PUBLIC_NOTES = ("reject", "submit_result", "resolve_on_spot", "verify_pass", "reopen", "reply_to_resident", "merge")
# Notes a resident wrote: read by their author and by staff, not by other followers.
OWN_NOTES = ("add_to_case", "resubmit", "reopen", "rate")


async def case_card(ctx: Context, case: Case, *, for_staff: bool = False) -> str:
    lines = [
        ctx.t("Case {number}", number=case.number),
        ctx.t("Kind: {matter}", matter=case.matter.name(ctx.language)),
        ctx.t("Status: {state}", state=ctx.t(STATE_NAMES[case.state])),
        ctx.t("Grid: {grid}", grid=await grids.place_name(ctx.session, case.grid, ctx.language)),
        ctx.t("Reported: {time}", time=ctx.time(case.created_at)),
    ]
    if case.handling_deadline and case.state in ("transferred", "in_progress"):
        lines.append(ctx.t("To be handled by: {time}", time=ctx.time(case.handling_deadline)))
    if case.verification_deadline and case.state == "handled":
        lines.append(ctx.t("To be checked on site by: {time}", time=ctx.time(case.verification_deadline)))
    if case.result_text:
        lines.append(ctx.t("Result: {result}", result=case.result_text))
    if case.rejection_reason:
        lines.append(ctx.t("Reason: {reason}", reason=localised_note(ctx, case.rejection_reason)))
    lines.append("")
    lines.append(ctx.t("What has happened:"))
    departments = {}
    for event in await cases.timeline(ctx.session, case.id):
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
        mine = event.actor_id == ctx.person.id
        readable = for_staff or mine or (event.action in PUBLIC_NOTES and event.action not in OWN_NOTES)
        if event.action == "rate" and event.data.get("rating") in RATING_NAMES:
            line += f": {ctx.t(RATING_NAMES[event.data['rating']])}"
        elif event.note and event.action != "report" and readable:
            line += f": {localised_note(ctx, event.note)}"
        if for_staff and event.action in INTERNAL_NOTES and event.note:
            line += " " + ctx.t("(staff only)")
        elif for_staff and event.action == "reply_to_resident":
            line += " " + ctx.t("(the resident can read this)")
        if event.action in ("add_to_case", "resubmit") and "note" not in event.data:
            line += ": " + ", ".join(ctx.t(MEDIA_NAMES[k]) for k in event.data.get("content", "").split("+") if k in MEDIA_NAMES)
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
    rows.append([ctx.button("📋 My cases", "menu:cases"), ctx.button("☰ Menu", "menu:main")])
    return rows


class AskCaseNumberDialog(Dialog):
    """Asks for a case number; subclasses say what to do with it in `with_number`."""

    STATES = ["ask_number"]
    TRANSITIONS: list = []

    async def prompt_ask_number(self, ctx: Context) -> None:
        ctx.say(ctx.t("Type the case number, for example LS-20261124-0042."), [[ctx.button("✖ Cancel", CANCEL)]])

    async def on_ask_number(self, ctx: Context, message: Inbound) -> None:
        number = find_case_number(text.clean(message.text)) if message.kind == "text" else None
        if number is None:
            ctx.say(ctx.t("That is not a case number. A case number looks like LS-20261124-0042."),
                    [[ctx.button("✖ Cancel", CANCEL)]])
            return
        finish(ctx)
        ctx.settings["typed"] = text.clean(message.text)  # the number may come with its access code
        await self.with_number(ctx, number)

    async def with_number(self, ctx: Context, number: str) -> None:
        raise NotImplementedError


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
            await show_menu(ctx)
            return
        except CaseError:
            finish(ctx)
            ctx.say(ctx.t("This case cannot be rated now."))
            await show_menu(ctx)
            return
        finish(ctx)
        if case.state != "closed":
            ctx.say(ctx.t("Thank you. Case {number} has been reopened and goes back to the grid centre.", number=number))
        else:
            ctx.say(ctx.t("Thank you for your rating."))
        await show_menu(ctx)


router = Router()


@router.command("cases")
@router.press("menu:cases")
async def open_my_cases(ctx: Context, message: Inbound, argument: str) -> None:
    await show_my_cases(ctx)


@router.press("cases:")
async def more_cases(ctx: Context, message: Inbound, offset: str) -> None:
    await show_my_cases(ctx, int(offset) if offset.isdigit() else 0)


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
        await show_menu(ctx)
        return
    if case.state != "closed" or case.satisfaction is not None:
        ctx.say(ctx.t("This case cannot be rated now."))
        await show_menu(ctx)
        return
    await RateDialog().begin(ctx, number=case.number)
