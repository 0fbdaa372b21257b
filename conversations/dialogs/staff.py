"""Staff in the chat: join by invitation, work queues, the case card with the actions the role allows."""

from __future__ import annotations

import re

from sqlalchemy import select

from storage import access, audit, cases, deadlines, grids, indicators, lifecycle
from storage.reading import reading_for
from storage.lifecycle import BY_TRIGGER, CaseError, CaseNotFound
from storage.models import Case, CaseView, Department, Person, Role, RoleAssignment
from storage.people import active_roles
from storage.staff import InvitationRefused, redeem

from .. import i18n, text
from ..text import find_case_number
from ..context import Context
from ..dialog import BACK, CANCEL, AskCaseNumberDialog, Dialog, finish
from ..evidence import case_media
from ..i18n import LANGUAGE_NAMES, N_
from ..protocol import Button, Inbound
from ..router import Router
from ..wording import REJECT_REASONS, RETURN_REASONS, ROLE_NAMES, STATE_NAMES, localised_reason, stored_reason

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
    "request_extension": N_("⏳ Ask for an extension"),
    "approve_extension": N_("✅ Approve the extension"),
    "refuse_extension": N_("✖ Refuse the extension"),
    "return_to_centre": N_("↩ Return to the grid centre (not ours)"),
    "submit_result": N_("📤 Submit the result"),
    "verify_pass": N_("✅ Verified on site: close"),
    "verify_fail": N_("↩ Verification failed: return"),
    "resolve_on_spot": N_("✔ Resolved on the spot"),
    "relay_feedback": N_("💬 Relay the resident's feedback"),
    "comment": N_("🔒 Internal note (staff only)"),
    "prompt": N_("🔔 Prompt the people responsible"),
    "reply_to_resident": N_("✉ Write to the resident (they will read it)"),
    "merge": N_("🔗 Merge into another case (a repeat)"),
    "publish": N_("📢 Publish a wording for the public"),
}
QUESTIONS = {
    "reason": N_("Please give the reason."),
    "result": N_("Please describe the result: what was done."),
    "note": N_("Please type your note."),
    "department": N_("Which department should handle it?"),
    "into": N_("Type the number of the case this one repeats. It must be open and of the same kind; "
               "the reporter will follow that case and be told."),
    "deadline": N_("How much more time is needed? Choose, or type the new date (for example 2026-12-24)."),
    "public_text": N_("Type the wording the public will read: what is wrong and where, without names, phone numbers or house numbers."),
}
# What a typed note is for, said before it is typed: who will read it.
NOTE_QUESTIONS = {
    "reply_to_resident": N_("Type your message to the resident. The resident will read it; people who only follow the case will not."),
    "comment": N_("Type your note. Only staff will read it; the resident will not."),
}
MERGE_REFUSALS = {
    "not_found": N_("There is no case with that number."),
    "same_case": N_("A case cannot be merged into itself."),
    "closed": N_("That case is no longer open: a repeat can only join an open case."),
    "other_matter": N_("That case is of another kind of problem: only repeats of the same kind are merged."),
}
EXTENSION_WORKING_DAYS = (1, 2, 3, 5)
DATE = re.compile(r"\s*(\d{4})-(\d{1,2})-(\d{1,2})\s*")
CONFIRM_FIRST = ("reject",)  # actions asked again before they are done: they cannot be undone
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
        await ctx.show("menu")
        return
    lines = [ctx.t("Your roles:")] + [f"• {ctx.t(ROLE_NAMES[a.role.value])} · {scope_name(ctx, a)}" for a in assignments]
    rows = [[ctx.button("🗂 My work queue", "staff:queue")]]
    if any(a.role in lifecycle.GRID_WORKERS for a in assignments):
        rows.append([ctx.button("📝 Log a case found on patrol", "staff:patrol")])
        if any(a.role in lifecycle.roles_for("verify_pass", True) for a in assignments):
            rows.append([ctx.button("🔍 Cases to verify", "staff:verify")])
        rows.append([ctx.button("💬 Relay a resident's feedback", "staff:feedback")])
    if any(a.role in indicators.READER_ROLES for a in assignments):
        rows.append([ctx.button("📊 Indicators", "staff:stats")])
    rows.append([ctx.button("🖥 Console (sign-in link)", "staff:console")])
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
        current = deadlines.deadline_of(case)
        label = f"{case.number} · {case.matter.name(ctx.language)} · {ctx.t(STATE_NAMES[case.state])}"
        if current:
            label += " · " + ctx.t("due {time}", time=ctx.time(current[1]))
            if deadlines.is_overdue(case, ctx.now):
                label = "⚠ " + label
        rows.append([Button(label, f"case:{case.number}")])
    rows.append([ctx.button("🗂 Staff desk", "menu:staff")])
    heading = ctx.t("Cases to verify on site (within 24 hours of the result):") if only_to_verify else ctx.t("Your work queue, oldest first:")
    ctx.say(heading, rows)


async def staff_card(ctx: Context, case: Case, assignments: list[RoleAssignment], base_text: str) -> None:
    """The case as staff see it: each field as the reading rule allows their role; the view is recorded."""
    reading = reading_for(ctx.person.id, assignments, case)
    description = reading.description()
    lines = [base_text, ""]
    if description is not None:
        lines.append(ctx.t("Description: {description}", description=description))
    else:
        lines.append(ctx.t("Description: withheld, the matter concerns particular people."))
    reporter = await ctx.session.get(Person, case.reporter_id)
    if reporter.language in LANGUAGE_NAMES:
        lines.append(ctx.t("The reporter reads {reads}: write results and reasons in it where you can.",
                           reads=LANGUAGE_NAMES[reporter.language]))
    if reading.address():
        lines.append(ctx.t("Address: {address}", address=reading.address()))
    if case.anonymous:
        lines.append(ctx.t("Reporter: anonymous"))
    else:
        name = reading.reporter_name(reporter.display_name)
        if name:
            lines.append(ctx.t("Reporter: {name}", name=name))
        phone, _masked = reading.phone()
        if phone:
            lines.append(ctx.t("Reporter's phone: {phone}", phone=phone))
    photos = reading.photos()
    pictures = sum(1 for a in photos if a.kind != "voice")
    voices = len(photos) - pictures
    if pictures:
        lines.append(ctx.t("Photos: {count}", count=i18n.number(ctx.language, pictures)))
    if voices:
        lines.append(ctx.t("Voice notes: {count}", count=i18n.number(ctx.language, voices)))
    latitude, longitude = reading.location()
    if latitude is not None and longitude is not None:
        # The coordinates; the reply's `location` makes them a map link (web) or a location message (Telegram).
        lines.append(ctx.t("Location: {coordinates}", coordinates=i18n.digits(ctx.language, f"{latitude:.6f}, {longitude:.6f}")))
    if case.followers:
        lines.append(ctx.t("Followed by: {count}", count=i18n.number(ctx.language, len(case.followers))))
    if reading.concerned_residents():
        lines.append(ctx.t("Residents concerned: {names}", names=reading.concerned_residents()))
    if case.public_text:
        lines.append(ctx.t("Published for the public: {text}", text=case.public_text))
    rows = []
    if audit.may_read_audit(reading.readers):
        summary = await audit.trail_summary(ctx.session, case)
        lines.append(ctx.t("Record: viewed {views} times by {people} people, changed {changes} times.",
                           views=i18n.number(ctx.language, summary.views),
                           people=i18n.number(ctx.language, summary.viewers),
                           changes=i18n.number(ctx.language, summary.changes)))
        rows.append([ctx.button("👁 Who viewed and changed it", f"audit:{case.number}")])
    role = next((a.role.value for a in assignments if access.covers(a, case)), assignments[0].role.value if assignments else "")
    ctx.session.add(CaseView(case_id=case.id, person_id=ctx.person.id, role=role, channel=ctx.platform, viewed_at=ctx.now))
    actions = [t for t in access.allowed_actions(ctx.person.id, assignments, case, ctx.now) if t in ACTION_BUTTONS]
    rows = [[Button(ctx.t(ACTION_BUTTONS[t]), f"act:{case.number}:{t}")] for t in actions] + rows
    rows.append([ctx.button("🗂 My work queue", "staff:queue"), ctx.button("☰ Menu", "menu:main")])
    # Photos and voice notes from any platform, as the reading rule lets this reader see them: each
    # adapter shows them again its own way.
    events = await cases.timeline(ctx.session, case.id)
    media = case_media(ctx, case, events, for_staff=True) if photos else []
    location = [latitude, longitude] if latitude is not None and longitude is not None else None
    ctx.say("\n".join(lines), rows, media=media, location=location)

AUDIT_LINES = 20
SYSTEM_ACTOR = N_("The system")


async def show_audit(ctx: Context, number: str) -> None:
    """Who viewed and who changed a case, newest first: for the grid chief and the grid centre of its area."""
    try:
        case = await cases.case_for_person(ctx.session, ctx.person.id, number)
    except CaseNotFound:
        case = None
    assignments = await active_roles(ctx.session, ctx.person.id)
    if case is None or not audit.may_read_audit(reading_for(ctx.person.id, assignments, case).readers):
        ctx.say(ctx.t("No case with the number {number} was found among the cases you can see.", number=number))
        return
    entries = list(reversed(await audit.case_trail(ctx.session, case)))
    lines = [ctx.t("Who viewed and changed case {number}, newest first:", number=case.number)]
    for entry in entries[:AUDIT_LINES]:
        role = ctx.t(ROLE_NAMES.get(entry.role, SYSTEM_ACTOR))  # the time-limit sweep acts as "system"
        who = entry.name or role
        what = ctx.t("viewed") if entry.kind == "view" else ctx.t("changed")
        lines.append(f"• {ctx.time(entry.at)} · {who} · {role} · {what}")
    if len(entries) > AUDIT_LINES:
        lines.append(ctx.t("… and {count} earlier entries.",
                           count=i18n.number(ctx.language, len(entries) - AUDIT_LINES)))
    ctx.say("\n".join(lines), [[ctx.button("Open case {number}", f"case:{case.number}", number=case.number)]])


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
            if ctx.data["trigger"] in CONFIRM_FIRST and not ctx.data.get("confirmed"):
                await self.prompt_confirmation(ctx)
                return
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
        elif need == "deadline":
            case = await cases.load_case(ctx.session, ctx.data["number"])
            now_due = ctx.t("The time limit now: {time}", time=ctx.time(case.handling_deadline)) + "\n" if case.handling_deadline else ""
            rows = [[Button(ctx.t("{days} more working days", days=i18n.number(ctx.language, d)), f"input:wd:{d}")]
                    for d in EXTENSION_WORKING_DAYS]
            ctx.say(title + now_due + ctx.t(QUESTIONS[need]), rows + [cancel])
        elif need == "reason" and ctx.data["trigger"] == "return_to_centre":
            rows = [[Button(ctx.t(label), f"input:{key}")] for key, label in RETURN_REASONS.items()]
            ctx.say(title + ctx.t("Why is it not yours? Choose the reason."), rows + [cancel])
        elif need == "note" and ctx.data["trigger"] == "return_to_centre":
            ctx.say(title + ctx.t("Please explain to the grid centre, e.g. who should handle it instead."), [cancel])
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

    async def prompt_confirmation(self, ctx: Context) -> None:
        """Not accepting a case cannot be undone: say what the resident will read, and ask."""
        reason = localised_reason(ctx.language, ctx.data["inputs"].get("reason", ""))
        ctx.say(
            ctx.t("Not accept case {number}? This cannot be undone. The resident is told the reason and what they "
                  "can do next. Reason: {reason}", number=ctx.data["number"], reason=reason),
            [[ctx.button("⛔ Yes, do not accept it", "input:confirm")],
             [ctx.button("◀ No, keep the case", CANCEL)]],
        )

    async def on_collect(self, ctx: Context, message: Inbound) -> None:
        if not ctx.data["pending"]:
            if message.kind == "button" and message.data == "input:confirm":
                ctx.data["confirmed"] = True
                ctx.touch()
                await self.fire(ctx)
            else:
                await self.prompt_confirmation(ctx)
            return
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
            elif need == "reason" and ctx.data["trigger"] == "return_to_centre" and choice in RETURN_REASONS:
                value = choice  # the store keeps the listed reason's code
            elif need == "department":
                value = choice
            elif need == "deadline" and choice.startswith("wd:") and text.small_number(choice[3:], limit=30) > 0:
                ctx.data["inputs"]["working_days"] = text.small_number(choice[3:], limit=30)
                value = "working_days"  # the store counts them from the current time limit
            elif need == "into":
                value = find_case_number(choice)
        elif message.kind == "text" and need == "into":
            value = find_case_number(text.clean(message.text))
            if value is None:
                ctx.say(ctx.t("That is not a case number. A case number looks like LS-20261124-0042."))
                return
        elif message.kind == "text" and need == "deadline":
            match = DATE.fullmatch(text.clean(message.text).translate(text.ASCII_DIGITS))
            if match is None:
                ctx.say(ctx.t("Please type the date like this: 2026-12-24."))
                await self.prompt_collect(ctx)
                return
            value = "{}-{:02d}-{:02d}".format(*map(int, match.groups()))
        elif message.kind == "text" and ctx.data["trigger"] == "return_to_centre" and need == "reason":
            value = None
        elif message.kind == "text" and need in ("reason", "result", "note", "public_text"):
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

    async def cancel(self, ctx: Context) -> None:
        """Nothing is done; the case card is shown again."""
        number = ctx.data.get("number")
        finish(ctx)
        ctx.say(ctx.t("Cancelled. Nothing was changed."))
        if number:
            await ctx.show("case", number=number)

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
        if inputs.get("deadline") == "working_days":
            del inputs["deadline"]
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
    "deadline_passed": N_("the time limit has already passed; more time must be asked for before it"),
    "too_many_extensions": N_("this case already had the most extensions allowed"),
    "extension_already_pending": N_("a request for more time is already waiting for the grid centre"),
    "no_extension_pending": N_("there is no request for more time to answer"),
    "not_publishable": N_("cases about particular people are never published"),
    "not_permitted": N_("your role does not allow it"),
    "concurrent_change": N_("someone else changed the case at the same moment; please look again"),
    "missing_input": N_("something is missing"),
    "invalid_input": N_("an answer was not valid"),
}


def _error_text(error: CaseError) -> str:
    if error.code == "invalid_input" and error.details.get("field") == "deadline":
        return N_("the new time limit must be later than the current one and at most 60 days later")
    return ERROR_TEXTS.get(error.code, N_("an answer was not valid"))


router = Router()
router.view("desk")(show_desk)
router.view("staff_card")(staff_card)


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
        typed = message.phone if message.kind == "contact" else message.text if message.kind == "text" else ""
        phone = text.normalised_phone(typed)
        if phone:
            ctx.person.phone = phone
        elif not (message.data == "profile:keep" and ctx.person.phone):
            ctx.say(ctx.t("That does not look like a phone number. Type digits only, for example 13800000000."))
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


@router.press("audit:")
async def open_audit(ctx: Context, message: Inbound, number: str) -> None:
    await show_audit(ctx, number)


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
    if trigger not in access.allowed_actions(ctx.person.id, assignments, case, ctx.now) or trigger not in ACTION_BUTTONS:
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


router.add_dialogs(ActionDialog, FeedbackDialog, ProfileDialog)
