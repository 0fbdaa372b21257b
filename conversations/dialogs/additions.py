"""A case is a conversation: the resident adds text, photos or voice notes to their open case, and
answers what staff wrote to them; a photo or voice note sent outside a dialog is offered to an open case."""

from __future__ import annotations

from storage import cases
from storage.lifecycle import CaseError, CaseNotFound, NotAllowedInState, NotPermitted, State

from .. import i18n, text
from ..context import Context
from ..dialog import CANCEL, Dialog, finish
from ..i18n import N_
from ..protocol import Button, Inbound
from ..router import Router

MAX_ADDITION = 1000

MEDIA_REFUSALS = {
    "too_large": N_("That file is too large. A photo may have at most {photo_mb} MB, a voice note at most {voice_mb} MB."),
    "not_media": N_("That file is not a photo or a voice recording we can read. Please send a picture or a voice message."),
    "too_long": N_("That voice note is too long: at most {minutes} minutes. Please record a shorter one."),
    "empty": N_("That file is empty. Please send it again."),
}


def refuse_media(ctx: Context, message: Inbound) -> bool:
    """Explain a file the adapter refused (nothing was stored); True when there was one."""
    if message.kind not in ("photo", "voice") or not message.media_error:
        return False
    from storage.media import MAX_PHOTO_BYTES, MAX_VOICE_BYTES, MAX_VOICE_SECONDS

    template = MEDIA_REFUSALS.get(message.media_error, MEDIA_REFUSALS["not_media"])
    params = dict(photo_mb=i18n.number(ctx.language, MAX_PHOTO_BYTES // (1024 * 1024)),
                  voice_mb=i18n.number(ctx.language, MAX_VOICE_BYTES // (1024 * 1024)),
                  minutes=i18n.number(ctx.language, MAX_VOICE_SECONDS // 60))
    ctx.say(ctx.t(template, **{k: v for k, v in params.items() if "{" + k + "}" in template}))
    return True


async def add(ctx: Context, number: str, *, note: str | None = None, media: list[dict] | None = None) -> bool:
    """Fire `add_to_case` (or `resubmit`, for a case rejected for insufficient information); says what
    happened when it was refused. True when the addition was kept."""
    photos = [cases.Photo(**m) for m in media or []]
    try:
        async with ctx.session.begin_nested():
            case = await cases.load_case(ctx.session, number)
            trigger = "resubmit" if case.state == State.rejected else "add_to_case"
            await cases.act(ctx.session, number, ctx.person.id, trigger, now=ctx.now, photos=photos, note=note)
        if trigger == "resubmit":
            ctx.say(ctx.t("Thank you. Case {number} goes back to the grid centre with what you added.", number=number))
    except CaseNotFound:
        ctx.say(ctx.t("No case with the number {number} was found among the cases you can see.", number=number))
        return False
    except NotAllowedInState:
        await closed_case(ctx, number)
        return False
    except NotPermitted:
        ctx.say(ctx.t("Only the person who reported case {number} can add to it.", number=number))
        return False
    except CaseError:  # InvalidInput: the case holds as many files as it can
        ctx.say(ctx.t("Case {number} already holds as many photos and voice notes as it can keep.", number=number))
        return False
    return True


async def closed_case(ctx: Context, number: str) -> None:
    """An addition to a case that is over: offer what is possible instead (rating to reopen, or a new report)."""
    case = await cases.load_case(ctx.session, number)
    rows = []
    if case.state == State.closed and case.satisfaction is None and case.reporter_id == ctx.person.id:
        rows.append([ctx.button("⭐ Rate the outcome", f"rate:{case.number}")])
    rows.append([ctx.button("📝 Report a problem", "menu:report")])
    rows.append([ctx.button("☰ Menu", "menu:main")])
    ctx.say(ctx.t("Case {number} is no longer open, so nothing can be added to it. If the problem is still there, "
                  "rate the outcome as unsatisfied within 7 days of closing to reopen it, or report it again.",
                  number=case.number), rows)
    finish(ctx)


class AddToCaseDialog(Dialog):
    """Text, photos or voice notes for one open case; each one is kept (and staff told) as it arrives."""

    name = "add"
    STATES = ["collect"]
    TRANSITIONS: list = []

    async def prompt_collect(self, ctx: Context) -> None:
        done = [ctx.button("Done", "added:done")] if ctx.data.get("added") else []
        ctx.say(ctx.t("What would you like to add to case {number}? Type it, or send photos or a voice message.",
                      number=ctx.data["number"]), [done + [ctx.button("✖ Cancel", CANCEL)]])

    async def on_collect(self, ctx: Context, message: Inbound) -> None:
        number = ctx.data["number"]
        if message.kind == "button" and message.data == "added:done":
            finish(ctx)
            await ctx.show("case", number=number)
            return
        if message.kind in ("photo", "voice"):
            kept = await add(ctx, number, media=[ctx.photo_answer(message)])
        elif message.kind == "text" and (typed := text.clean(message.text)):
            if len(typed) > MAX_ADDITION:
                ctx.say(ctx.t("That is too long: at most {limit} characters.", limit=i18n.number(ctx.language, MAX_ADDITION)))
                return
            kept = await add(ctx, number, note=typed)
        else:
            await self.prompt_collect(ctx)
            return
        if kept:
            ctx.data["added"] = ctx.data.get("added", 0) + 1
            ctx.touch()
            ctx.say(ctx.t("Added to case {number}. The staff handling it have been told. Send more, or press Done.",
                          number=number), [[ctx.button("Done", "added:done")]])
        elif ctx.dialog_state.dialog == self.name:
            finish(ctx)


class AttachDialog(Dialog):
    """A photo or voice note sent outside any dialog: which open case is it for?"""

    name = "attach"
    STATES = ["choose_case"]
    TRANSITIONS: list = []

    async def prompt_choose_case(self, ctx: Context) -> None:
        numbers = ctx.data["numbers"]
        if len(numbers) == 1:
            question = ctx.t("Add this to your open case {number}?", number=numbers[0])
            rows = [[ctx.button("➕ Add it to case {number}", f"attach:{numbers[0]}", number=numbers[0])]]
        else:
            question = ctx.t("Which of your open cases is this for?")
            rows = [[Button(n, f"attach:{n}")] for n in numbers]
        rows.append([ctx.button("📝 Report a new problem", "menu:report")])
        rows.append([ctx.button("✖ Cancel", CANCEL)])
        ctx.say(question, rows)

    async def on_choose_case(self, ctx: Context, message: Inbound) -> None:
        choice = message.data.removeprefix("attach:") if message.kind == "button" else ""
        if choice not in ctx.data["numbers"]:
            await self.prompt_choose_case(ctx)
            return
        media = ctx.data["media"]
        finish(ctx)
        if await add(ctx, choice, media=[media]):
            ctx.say(ctx.t("Added to case {number}. The staff handling it have been told.", number=choice),
                    [[ctx.button("Open case {number}", f"case:{choice}", number=choice)], [ctx.button("☰ Menu", "menu:main")]])


async def media_outside_dialogs(ctx: Context, message: Inbound) -> None:
    """A photo or voice note with no dialog open: offer it to an open case, or a new report."""
    if refuse_media(ctx, message):
        await ctx.show("menu")
        return
    open_cases = await cases.open_cases_of(ctx.session, ctx.person.id)
    if not open_cases:
        ctx.say(ctx.t("You have no open case to add this to. To report a problem, start a report: "
                      "you can send photos and voice messages in it."),
                [[ctx.button("📝 Report a problem", "menu:report")], [ctx.button("☰ Menu", "menu:main")]])
        return
    await AttachDialog().begin(ctx, numbers=[c.number for c in open_cases], media=ctx.photo_answer(message))


router = Router()
router.add_dialogs(AddToCaseDialog, AttachDialog)


@router.press("add:")
async def start_addition(ctx: Context, message: Inbound, number: str) -> None:
    """➕ on the case card, or ↩ Answer under a message from staff."""
    try:
        case = await cases.case_for_person(ctx.session, ctx.person.id, number)
    except CaseNotFound:
        ctx.say(ctx.t("No case with the number {number} was found among the cases you can see.", number=number.upper()))
        await ctx.show("menu")
        return
    if case.reporter_id != ctx.person.id:
        ctx.say(ctx.t("Only the person who reported case {number} can add to it.", number=case.number))
        await ctx.show("menu")
        return
    if case.state not in cases.lifecycle.OPEN_STATES and not cases.may_resubmit(case, ctx.now):
        await closed_case(ctx, case.number)
        return
    await AddToCaseDialog().begin(ctx, number=case.number)
