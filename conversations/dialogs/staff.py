"""Staff in the chat: join by invitation, work queues, the case card with the actions the role allows."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from storage import access, cases, grids, lifecycle
from storage.lifecycle import BY_TRIGGER, CaseError, CaseNotFound
from storage.models import Case, CaseView, Department, Person, Role, RoleAssignment
from storage.people import active_roles
from storage.staff import InvitationRefused, redeem

from .. import i18n, text
from ..context import Context
from ..dialog import BACK, CANCEL, Dialog, finish
from ..evidence import case_media
from ..i18n import N_
from ..protocol import Button, Inbound
from ..router import Router
from ..wording import REJECT_REASONS, ROLE_NAMES, STATE_NAMES, stored_reason
from .cases import AskCaseNumberDialog, find_case_number
from .menu import LANGUAGE_NAMES, show_menu

MAX_NOTE = 1000
STAFF_ROLES = [r for r in Role if r not in (Role.resident, Role.administrator)]

# The buttons for lifecycle actions, in the reader's language.
ACTION_BUTTONS = {
    "accept": N_("✅ Accept"),
    "reject": N_("⛔ Reject"),
    "escalate": N_("⬆ Escalate to the next level"),
    "refer_to_joint_meeting": N_("👥 Refer to the joint meeting"),
    "transfer": N_("➡ Transfer to a department"),
    "start_handling": N_("▶ Start handling"),
    "extend_deadline": N_("⏳ Ask for an extension"),
    "submit_result": N_("📤 Submit the result"),
    "verify_pass": N_("✅ Verified on site: close"),
    "verify_fail": N_("↩ Verification failed: return"),
    "resolve_on_spot": N_("✔ Resolved on the spot"),
    "relay_feedback": N_("💬 Relay the resident's feedback"),
    "comment": N_("🔒 Internal note (staff only)"),
    "prompt": N_("🔔 Prompt the people responsible"),
    "reply_to_resident": N_("✉ Write to the resident (they will read it)"),
    "merge": N_("🔗 Merge into another case (a repeat)"),
}
QUESTIONS = {
    "reason": N_("Please give the reason."),
    "result": N_("Please describe the result: what was done."),
    "note": N_("Please type your note."),
    "department": N_("Which department should handle it?"),
    "hours": N_("How much more time is needed?"),
    "into": N_("Type the number of the case this one repeats. It must be open and of the same kind; "
               "the reporter will follow that case and be told."),
}
# What a typed note is for, said before it is typed: who will read it.
NOTE_QUESTIONS = {
    "reply_to_resident": N_("Type your message to the resident. The resident, and anyone following the case, will read it."),
    "comment": N_("Type your note. Only staff will read it; the resident will not."),
}
MERGE_REFUSALS = {
    "not_found": N_("There is no case with that number."),
    "same_case": N_("A case cannot be merged into itself."),
    "closed": N_("That case is no longer open: a repeat can only join an open case."),
    "other_matter": N_("That case is of another kind of problem: only repeats of the same kind are merged."),
}
EXTENSIONS = (24, 48, 72, 168)
PHOTO_ACTIONS = ("submit_result", "verify_fail")  # a result or a failed check may come with photos
MAX_PHOTOS = 3


def staff_roles(assignments: list[RoleAssignment]) -> list[RoleAssignment]:
    return [a for a in assignments if a.role in STAFF_ROLES]


def scope_name(ctx: Context, assignment: RoleAssignment) -> str:
    if assignment.department is not None:
        return assignment.department.name(ctx.language)
    return assignment.node.name(ctx.language) if assignment.node is not None else ""


async def show_desk(ctx: Context) -> None:
    """The staff desk: what this person's roles let them do."""
    assignments = staff_roles(await active_roles(ctx.session, ctx.person.id))
    if not assignments:
        ctx.say(ctx.t("This is for grid staff. Staff join with an invitation code: /join CODE"))
        await show_menu(ctx)
        return
    lines = [ctx.t("Your roles:")] + [f"• {ctx.t(ROLE_NAMES[a.role.value])} · {scope_name(ctx, a)}" for a in assignments]
    rows = [[ctx.button("🗂 My work queue", "staff:queue")]]
    if any(a.role in lifecycle.GRID_WORKERS for a in assignments):
        rows.append([ctx.button("📝 Log a case found on patrol", "staff:patrol")])
        rows.append([ctx.button("🔍 Cases to verify", "staff:verify")])
        rows.append([ctx.button("💬 Relay a resident's feedback", "staff:feedback")])
    rows.append([ctx.button("☰ Menu", "menu:main")])
    ctx.say("\n".join(lines), rows)


async def show_queue(ctx: Context, only_to_verify: bool = False) -> None:
    found = await cases.queue_for(ctx.session, ctx.person.id, limit=30)
    if only_to_verify:
        found = [c for c in found if c.state == lifecycle.State.handled]
    if not found:
        ctx.say(ctx.t("Nothing is waiting for you."), [[ctx.button("🗂 Staff desk", "menu:staff")]])
        return
    rows = []
    for case in found:
        due = case.verification_deadline if case.state == lifecycle.State.handled else case.handling_deadline
        label = f"{case.number} · {case.matter.name(ctx.language)} · {ctx.t(STATE_NAMES[case.state])}"
        if due:
            label += " · " + ctx.t("due {time}", time=ctx.time(due))
        rows.append([Button(label, f"case:{case.number}")])
    rows.append([ctx.button("🗂 Staff desk", "menu:staff")])
    heading = ctx.t("Cases to verify on site (within 24 hours of the result):") if only_to_verify else ctx.t("Your work queue, oldest first:")
    ctx.say(heading, rows)


async def staff_card(ctx: Context, case: Case, assignments: list[RoleAssignment], base_text: str) -> None:
    """The case as staff see it: personal data only where the role needs it; the view is recorded."""
    lines = [base_text, "", ctx.t("Description: {description}", description=case.description)]
    reads = await ctx.session.scalar(select(Person.language).where(Person.id == case.reporter_id))
    if reads in LANGUAGE_NAMES:
        lines.append(ctx.t("The reporter reads {reads}: write results and reasons in it where you can.",
                           reads=LANGUAGE_NAMES[reads]))
    if case.address:
        lines.append(ctx.t("Address: {address}", address=case.address))
    if case.anonymous:
        lines.append(ctx.t("Reporter: anonymous"))
    elif case.contact_phone:
        phone = case.contact_phone if access.sees_phone(assignments, case) else access.mask_phone(case.contact_phone)
        lines.append(ctx.t("Reporter's phone: {phone}", phone=phone))
    photos = sum(1 for a in case.attachments if a.kind != "voice")
    voices = len(case.attachments) - photos
    if photos:
        lines.append(ctx.t("Photos: {count}", count=i18n.number(ctx.language, photos)))
    if voices:
        lines.append(ctx.t("Voice notes: {count}", count=i18n.number(ctx.language, voices)))
    if case.latitude is not None and case.longitude is not None:
        # The coordinates; the reply's `location` makes them a map link (web) or a location message (Telegram).
        lines.append(ctx.t("Location: {coordinates}", coordinates=f"{case.latitude:.6f}, {case.longitude:.6f}"))
    if case.followers:
        lines.append(ctx.t("Followed by: {count}", count=i18n.number(ctx.language, len(case.followers))))
    if case.concerned_residents and access.sees_phone(assignments, case):
        lines.append(ctx.t("Residents concerned: {names}", names=case.concerned_residents))
    role = next((a.role.value for a in assignments if access.covers(a, case)), assignments[0].role.value if assignments else "")
    ctx.session.add(CaseView(case_id=case.id, person_id=ctx.person.id, role=role, channel=ctx.platform, viewed_at=ctx.now))
    actions = [t for t in access.allowed_actions(ctx.person.id, assignments, case) if t in ACTION_BUTTONS]
    rows = [[Button(ctx.t(ACTION_BUTTONS[t]), f"act:{case.number}:{t}")] for t in actions]
    rows.append([ctx.button("🗂 My work queue", "staff:queue"), ctx.button("☰ Menu", "menu:main")])
    # Photos and voice notes from any platform: each adapter shows them again its own way.
    events = await cases.timeline(ctx.session, case.id)
    location = [case.latitude, case.longitude] if case.latitude is not None and case.longitude is not None else None
    ctx.say("\n".join(lines), rows, media=case_media(ctx, case, events, for_staff=True), location=location)


class ActionDialog(Dialog):
    """Collects what a lifecycle action needs (its `needs` in storage.lifecycle), then fires it."""

    name = "action"
    STATES = ["collect"]
    TRANSITIONS: list = []

    async def begin(self, ctx: Context, **data) -> None:
        needs = list(BY_TRIGGER[data["trigger"]].get("needs", []))
        if data["trigger"] in PHOTO_ACTIONS:
            needs.append("photos")
        await super().begin(ctx, pending=needs, inputs={}, photos=[], **data)  # fires at once when nothing is needed

    async def prompt_collect(self, ctx: Context) -> None:
        if not ctx.data["pending"]:
            await self.fire(ctx)
            return
        need = ctx.data["pending"][0]
        title = f"{ctx.data['number']} · {ctx.t(ACTION_BUTTONS[ctx.data['trigger']])}\n"
        cancel = [ctx.button("✖ Cancel", CANCEL)]
        if need == "department":
            departments = list(await ctx.session.scalars(select(Department).order_by(Department.code)))
            case = await cases.load_case(ctx.session, ctx.data["number"])
            owner = case.matter.department_id
            departments.sort(key=lambda d: d.id != owner)
            rows = [[Button(("✓ " if d.id == owner else "") + d.name(ctx.language), f"input:{d.code}")] for d in departments]
            ctx.say(title + ctx.t(QUESTIONS[need]), rows + [cancel])
        elif need == "hours":
            rows = [[Button(i18n.duration(ctx.language, timedelta(hours=h)), f"input:{h}")] for h in EXTENSIONS]
            ctx.say(title + ctx.t(QUESTIONS[need]), rows + [cancel])
        elif need == "photos":
            ctx.say(title + ctx.t("You may send up to {limit} photos, then press Done.", limit=i18n.number(ctx.language, MAX_PHOTOS)),
                    [[ctx.button("Done", "input:done")], cancel])
        elif need == "reason" and ctx.data["trigger"] == "reject":
            rows = [[Button(ctx.t(label), f"input:{key}")] for key, label in REJECT_REASONS.items()]
            ctx.say(title + ctx.t("Choose the reason, or type it."), rows + [cancel])
        elif need == "into":
            # Likely originals first: open cases of the same kind close by (the reporter typed no number).
            case = await cases.load_case(ctx.session, ctx.data["number"])
            nearby = []
            if case.latitude is not None and case.longitude is not None:
                nearby = [c for c, _ in await cases.nearby_open_cases(ctx.session, case.matter.code, case.latitude,
                                                                      case.longitude, now=ctx.now, limit=4) if c.id != case.id]
            rows = [[Button(f"{c.number} · {ctx.time(c.created_at)}", f"input:{c.number}")] for c in nearby[:3]]
            ctx.say(title + ctx.t(QUESTIONS[need]), rows + [cancel])
        elif need == "note" and ctx.data["trigger"] in NOTE_QUESTIONS:
            ctx.say(title + ctx.t(NOTE_QUESTIONS[ctx.data["trigger"]]), [cancel])
        else:
            ctx.say(title + ctx.t(QUESTIONS[need]), [cancel])

    async def on_collect(self, ctx: Context, message: Inbound) -> None:
        need = ctx.data["pending"][0]
        value = None
        if need == "photos":
            await self.collect_photo(ctx, message)
            return
        if message.kind == "button" and message.data.startswith("input:"):
            choice = message.data.removeprefix("input:")
            if need == "reason" and choice in REJECT_REASONS:
                if choice == "duplicate":
                    ctx.data["awaiting_duplicate"] = True
                    ctx.touch()
                    ctx.say(ctx.t("Type the number of the case it duplicates."), [[ctx.button("✖ Cancel", CANCEL)]])
                    return
                value = i18n.translate("zh", REJECT_REASONS[choice])  # stored in the official language
            elif need == "department":
                value = choice
            elif need == "into":
                value = find_case_number(choice)
            elif need == "hours" and choice.isdigit():
                value = int(choice)
        elif message.kind == "text" and need == "into":
            value = find_case_number(text.clean(message.text))
            if value is None:
                ctx.say(ctx.t("That is not a case number. A case number looks like LS-20261124-0042."))
                return
        elif message.kind == "text" and need in ("reason", "result", "note"):
            typed = text.clean(message.text)
            if ctx.data.get("awaiting_duplicate"):
                number = find_case_number(typed)
                if number is None:
                    ctx.say(ctx.t("That is not a case number. A case number looks like LS-20261124-0042."))
                    return
                value = stored_reason(number)
            elif typed and len(typed) <= MAX_NOTE:
                value = typed
            elif typed:
                ctx.say(ctx.t("That is too long: at most {limit} characters.", limit=i18n.number(ctx.language, MAX_NOTE)))
                return
        if value is None:
            ctx.say(ctx.t("Please answer with the buttons, or type the text."))
            await self.prompt_collect(ctx)
            return
        ctx.data["inputs"][need] = value
        ctx.data["pending"] = ctx.data["pending"][1:]
        ctx.data.pop("awaiting_duplicate", None)
        ctx.touch()
        await self.prompt_collect(ctx)

    async def collect_photo(self, ctx: Context, message: Inbound) -> None:
        if message.kind == "photo" and len(ctx.data["photos"]) < MAX_PHOTOS:
            ctx.data["photos"].append(ctx.photo_answer(message))
            ctx.touch()
            if len(ctx.data["photos"]) < MAX_PHOTOS:
                ctx.say(ctx.t("Photo {count} received. Send another, or press Done.",
                              count=i18n.number(ctx.language, len(ctx.data["photos"]))),
                        [[ctx.button("Done", "input:done")]])
                return
        elif not (message.kind == "button" and message.data == "input:done"):
            await self.prompt_collect(ctx)
            return
        ctx.data["pending"] = ctx.data["pending"][1:]
        ctx.touch()
        await self.prompt_collect(ctx)

    async def fire(self, ctx: Context) -> None:
        number, trigger, inputs = ctx.data["number"], ctx.data["trigger"], dict(ctx.data["inputs"])
        photos = [cases.Photo(**p) for p in ctx.data.get("photos", [])]
        finish(ctx)
        try:
            async with ctx.session.begin_nested():
                case = await cases.act(ctx.session, number, ctx.person.id, trigger, now=ctx.now, photos=photos, **inputs)
        except CaseNotFound:
            ctx.say(ctx.t("No case with the number {number} was found among the cases you can see.", number=number))
            return
        except CaseError as error:
            refusal = MERGE_REFUSALS.get(error.details.get("reason")) if error.details.get("field") == "into" else None
            ctx.say(ctx.t(refusal) if refusal else ctx.t("This action is not possible now: {reason}", reason=ctx.t(_error_text(error))),
                    [[ctx.button("Open case {number}", f"case:{number}", number=number)]])
            return
        ctx.say(
            ctx.t("Done. Case {number} is now: {state}", number=case.number, state=ctx.t(STATE_NAMES[case.state])),
            [[ctx.button("Open case {number}", f"case:{case.number}", number=case.number)],
             [ctx.button("🗂 My work queue", "staff:queue")]],
        )


ERROR_TEXTS = {
    "not_allowed_in_state": N_("the case has moved on meanwhile"),
    "not_permitted": N_("your role does not allow it"),
    "concurrent_change": N_("someone else changed the case at the same moment; please look again"),
    "missing_input": N_("something is missing"),
    "invalid_input": N_("an answer was not valid"),
}


def _error_text(error: CaseError) -> str:
    return ERROR_TEXTS.get(error.code, N_("an answer was not valid"))


router = Router()


@router.command("join")
async def join(ctx: Context, message: Inbound, argument: str) -> None:
    code = argument.strip()
    if not code:
        ctx.say(ctx.t("Send the invitation code after the command, like this: /join ABCD-EFGH-JKLM"))
        return
    try:
        assignment = await redeem(ctx.session, ctx.person.id, code, now=ctx.now)
    except InvitationRefused:
        ctx.say(ctx.t("This invitation code cannot be used. Please ask the administrator for a new one."))
        return
    await ctx.session.refresh(assignment, ["node", "department"])
    ctx.say(ctx.t("Welcome. You now work here as: {role} · {scope}",
                  role=ctx.t(ROLE_NAMES[assignment.role.value]), scope=scope_name(ctx, assignment)))
    if assignment.role in grids.PUBLISHED_ROLES:
        await ProfileDialog().begin(ctx)  # the grid publishes their name and number (Art. 20)
        return
    await show_desk(ctx)


@router.command("profile")
async def edit_profile(ctx: Context, message: Inbound, argument: str) -> None:
    await ProfileDialog().begin(ctx)


class ProfileDialog(Dialog):
    """The name and phone number a grid's notice board and 'my grid' card show for a member of staff."""

    name = "profile"
    STATES = ["ask_name", "ask_phone"]
    TRANSITIONS = [
        dict(trigger="next", source="ask_name", dest="ask_phone"),
        dict(trigger="back", source="ask_phone", dest="ask_name"),
    ]

    async def prompt_ask_name(self, ctx: Context) -> None:
        rows = [[Button("✓ " + ctx.person.display_name, "profile:keep")]] if ctx.person.display_name else []
        ctx.say(ctx.t("Please type your name as residents will see it on the grid's public notice."),
                rows + [[ctx.button("✖ Cancel", CANCEL)]])

    async def on_ask_name(self, ctx: Context, message: Inbound) -> None:
        if message.kind == "text" and 0 < len(text.clean(message.text)) <= 60:
            ctx.person.display_name = text.clean(message.text)
        elif not (message.data == "profile:keep" and ctx.person.display_name):
            await self.prompt_ask_name(ctx)
            return
        await self.go(ctx, "next")

    async def prompt_ask_phone(self, ctx: Context) -> None:
        rows = [[Button("✓ " + ctx.person.phone, "profile:keep")]] if ctx.person.phone else []
        ctx.say(ctx.t("Please share or type the phone number residents can call you on."),
                rows + [[ctx.button("◀ Back", BACK), ctx.button("✖ Cancel", CANCEL)]], request_contact=True)

    async def on_ask_phone(self, ctx: Context, message: Inbound) -> None:
        from .report import normalised_phone

        typed = message.phone if message.kind == "contact" else message.text if message.kind == "text" else ""
        phone = normalised_phone(typed)
        if phone:
            ctx.person.phone = phone
        elif not (message.data == "profile:keep" and ctx.person.phone):
            ctx.say(ctx.t("That does not look like a phone number. Type digits only, for example 13800000000, or stay anonymous."))
            await self.prompt_ask_phone(ctx)
            return
        finish(ctx)
        ctx.say(ctx.t("Thank you. Residents of your grid will see: {name} {phone}",
                      name=ctx.person.display_name, phone=ctx.person.phone))
        await show_desk(ctx)


@router.command("desk")
@router.press("menu:staff")
async def open_desk(ctx: Context, message: Inbound, argument: str) -> None:
    await show_desk(ctx)


@router.command("queue")
@router.press("staff:queue")
async def open_queue(ctx: Context, message: Inbound, argument: str) -> None:
    await show_queue(ctx)


@router.press("staff:verify")
async def open_to_verify(ctx: Context, message: Inbound, argument: str) -> None:
    await show_queue(ctx, only_to_verify=True)


@router.press("staff:feedback")
async def relay_feedback(ctx: Context, message: Inbound, argument: str) -> None:
    await FeedbackDialog().begin(ctx)


@router.press("act:")
async def start_action(ctx: Context, message: Inbound, argument: str) -> None:
    number, _, trigger = argument.rpartition(":")
    try:
        case = await cases.case_for_person(ctx.session, ctx.person.id, number)
    except CaseNotFound:
        ctx.say(ctx.t("No case with the number {number} was found among the cases you can see.", number=number))
        return
    assignments = await active_roles(ctx.session, ctx.person.id)
    if trigger not in access.allowed_actions(ctx.person.id, assignments, case) or trigger not in ACTION_BUTTONS:
        moved_on = ERROR_TEXTS["not_allowed_in_state"]
        ctx.say(ctx.t("This action is not possible now: {reason}", reason=ctx.t(moved_on)),
                [[ctx.button("Open case {number}", f"case:{case.number}", number=case.number)]])
        return
    await ActionDialog().begin(ctx, number=case.number, trigger=trigger)


class FeedbackDialog(AskCaseNumberDialog):
    """A grid worker records a resident's feedback, gathered in person, against a case."""

    name = "feedback"

    async def with_number(self, ctx: Context, number: str) -> None:
        await start_action(ctx, Inbound.press(f"act:{number}:relay_feedback"), f"{number}:relay_feedback")
