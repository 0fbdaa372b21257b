"""Report a problem (上报): matter → description → place → address → photos → phone → confirm."""

from __future__ import annotations

from datetime import timedelta

from storage import cases, grids, matters
from storage.cases import LocationOutsideGrids, Photo
from storage.lifecycle import CaseError, MatterNotPublished
from sqlalchemy import select

from storage.models import Department, Matter, Node, NodeLevel

from .. import i18n, text
from ..context import Context
from ..dialog import BACK, CANCEL, Dialog, finish
from ..i18n import N_
from ..protocol import Button, Inbound
from ..router import Router
from ..wording import STATE_NAMES

MAX_DESCRIPTION = 1000
VOICE_DESCRIPTION = N_("🎤 Described in a voice message (listen to the recording).")
MIN_DESCRIPTION = 4
MAX_ADDRESS = 200
MAX_PHOTOS = 3
PAGE_SIZE = 6
FIELDS = ["choose_matter", "describe", "locate", "address", "photos", "phone"]
# Matters about safety (fire, gas, collapse, flood; anything for the police): emergency numbers first.
SAFETY_WORK_KINDS = ("safety_hazard", "disaster_prevention")


# What, where and photos: the steps a resident's report and a grid worker's patrol log share.
SHARED_STATES = ["choose_matter", "describe", "confirm_wylie", "locate", "address", "photos"]
SHARED_STEPS = [
    # forward
    dict(trigger="next", source="choose_matter", dest="describe"),
    dict(trigger="next", source="describe", dest="locate"),
    dict(trigger="wylie", source="describe", dest="confirm_wylie"),
    dict(trigger="next", source="confirm_wylie", dest="locate"),
    dict(trigger="next", source="locate", dest="address"),
    dict(trigger="next", source="address", dest="photos"),
    # back
    dict(trigger="back", source="describe", dest="choose_matter"),
    dict(trigger="back", source="confirm_wylie", dest="describe"),
    dict(trigger="back", source="locate", dest="describe"),
    dict(trigger="back", source="address", dest="locate"),
    dict(trigger="back", source="photos", dest="address"),
]


class ReportDialog(Dialog):
    name = "report"
    STATES = SHARED_STATES + ["phone", "confirm"]
    TRANSITIONS = [
        *SHARED_STEPS,
        dict(trigger="next", source="photos", dest="phone"),
        dict(trigger="next", source="phone", dest="confirm"),
        dict(trigger="back", source="phone", dest="photos"),
        dict(trigger="back", source="confirm", dest="phone"),
        # editing one answer from the summary, and coming back to it
        dict(trigger="review", source=FIELDS + ["confirm_wylie"], dest="confirm"),
        *[dict(trigger=f"edit_{field}", source="confirm", dest=field) for field in FIELDS],
    ]

    async def advance(self, ctx: Context) -> None:
        """Next step, or straight back to the summary when the person was editing one answer."""
        if ctx.data.get("editing"):
            ctx.data.pop("editing")
            await self.go(ctx, "review")
        else:
            await self.go(ctx, "next")

    async def retry(self, ctx: Context, problem: str) -> None:
        """Say what was wrong, then ask the same question again (with its buttons)."""
        ctx.say(problem)
        await self.prompt(ctx)

    def nav(self, ctx: Context, *extra: list[Button]) -> list[list[Button]]:
        return [*extra, [ctx.button("◀ Back", BACK), ctx.button("✖ Cancel", CANCEL)]]

    # -- the kind of problem --------------------------------------------------------------

    async def prompt_choose_matter(self, ctx: Context) -> None:
        listed = await matters.published_matters(ctx.session)
        pages = max(1, -(-len(listed) // PAGE_SIZE))
        page = max(0, min(int(ctx.data.get("page", 0)), pages - 1))
        rows = [[Button(m.name(ctx.language), f"matter:{m.code}")] for m in listed[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]]
        paging = []
        if page > 0:
            paging.append(ctx.button("◀ Previous", f"page:{page - 1}"))
        if page < pages - 1:
            paging.append(ctx.button("More ▶", f"page:{page + 1}"))
        if paging:
            rows.append(paging)
        rows.append([ctx.button("✖ Cancel", CANCEL)])
        ctx.say(
            ctx.t("What kind of problem is it? Choose below, or type a few words and I will suggest the right kind.")
            + "\n" + ctx.t("Page {page} of {pages}", page=i18n.number(ctx.language, page + 1), pages=i18n.number(ctx.language, pages)),
            rows,
        )

    async def on_choose_matter(self, ctx: Context, message: Inbound) -> None:
        if message.kind == "button" and message.data.startswith("page:"):
            page = message.data.split(":", 1)[1]
            ctx.data["page"] = text.small_number(page)
            ctx.touch()
            await self.prompt_choose_matter(ctx)
            return
        if message.kind == "button" and message.data.startswith("matter:"):
            matter = await self._matter(ctx, message.data.split(":", 1)[1])
            if matter is None:
                return
            ctx.data["matter"] = matter.code
            await self.advance(ctx)
            return
        if message.kind == "text":
            typed = text.clean(message.text)
            if not typed:
                await self.prompt_choose_matter(ctx)
                return
            # Tibetan typed in Latin letters is matched as Tibetan (the description step asks to confirm it).
            suggestions = await matters.suggest_matters(ctx.session, text.wylie_to_tibetan(typed) or typed)
            ctx.data["typed"] = typed[:MAX_DESCRIPTION]
            ctx.touch()
            if not suggestions:
                ctx.say(ctx.t("I could not find a matching kind of problem. Please choose one from the list."))
                await self.prompt_choose_matter(ctx)
                return
            rows = [[Button(m.name(ctx.language), f"matter:{m.code}")] for m in suggestions]
            rows.append([ctx.button("Show the whole list", "page:0")])
            rows.append([ctx.button("✖ Cancel", CANCEL)])
            ctx.say(ctx.t("Is it one of these?"), rows)
            return
        await self.retry(ctx, ctx.t("Please choose a kind of problem from the buttons, or type a few words."))

    async def _matter(self, ctx: Context, code: str) -> Matter | None:
        try:
            return await cases.published_matter(ctx.session, code)
        except MatterNotPublished:
            ctx.say(ctx.t("This kind of problem is no longer on the published list. Please choose another."))
            ctx.data.pop("matter", None)
            ctx.touch()
            await self.prompt_choose_matter(ctx)
            return None

    # -- the description ---------------------------------------------------------------

    async def prompt_describe(self, ctx: Context) -> None:
        if self.name == ReportDialog.name and await self._about_safety(ctx):
            ctx.say(ctx.t("In danger right now? Call {fire} (fire), {police} (police) or {ambulance} (ambulance) first: "
                          "this report does not reach them at once.", fire="119", police="110", ambulance="120"))
        extra = []
        if ctx.data.get("typed") and not ctx.data.get("description"):
            extra.append([ctx.button("Use what I typed", "describe:typed")])
        ctx.say(
            ctx.t("Please describe the problem in a few sentences: what is wrong, since when, who is affected. "
                  "(at most {limit} characters)", limit=i18n.number(ctx.language, MAX_DESCRIPTION))
            + "\n" + ctx.t("You may also send a voice message instead."),
            self.nav(ctx, *extra),
        )

    async def _about_safety(self, ctx: Context) -> bool:
        code = ctx.data.get("matter")
        matter = await ctx.session.scalar(select(Matter).where(Matter.code == code)) if code else None
        if matter is None:
            return False
        department = await ctx.session.get(Department, matter.department_id)
        return matter.work_kind in SAFETY_WORK_KINDS or (department is not None and department.code == "public_security")

    async def on_describe(self, ctx: Context, message: Inbound) -> None:
        if message.kind == "voice":
            # A voice description counts as the description; staff play the recording.
            ctx.data["voice"] = ctx.photo_answer(message)
            ctx.data["description"] = i18n.translate(ctx.language, VOICE_DESCRIPTION)
            ctx.data["description_language"] = ctx.language
            ctx.data.pop("wylie", None)
            ctx.touch()
            ctx.say(ctx.t("Voice message received: it will be the description of your report."))
            await self.advance(ctx)
            return
        if message.kind == "button" and message.data == "describe:typed" and ctx.data.get("typed"):
            typed = ctx.data["typed"]
        elif message.kind == "text":
            typed = text.clean(message.text)
        else:
            await self.retry(ctx, ctx.t("Please type the description as a text message."))
            return
        if len(typed) < MIN_DESCRIPTION:
            await self.retry(ctx, ctx.t("The description is too short. Please say a little more about the problem."))
            return
        if len(typed) > MAX_DESCRIPTION:
            await self.retry(
                ctx,
                ctx.t("The description is too long: {length} characters. Please shorten it to {limit}.",
                      length=i18n.number(ctx.language, len(typed)), limit=i18n.number(ctx.language, MAX_DESCRIPTION)),
            )
            return
        ctx.data["description"] = typed
        ctx.data.pop("voice", None)
        ctx.data["description_language"] = text.description_language(typed, ctx.language)
        converted = text.wylie_to_tibetan(typed)
        if converted:
            ctx.data["wylie"] = converted
            ctx.touch()
            await self.go(ctx, "wylie")
            return
        ctx.data.pop("wylie", None)
        await self.advance(ctx)

    async def prompt_confirm_wylie(self, ctx: Context) -> None:
        ctx.say(
            ctx.t("It looks like you typed Tibetan in Latin letters (Wylie). Did you mean:\n\n{tibetan}",
                  tibetan=ctx.data["wylie"]),
            self.nav(ctx, [ctx.button("Yes, use the Tibetan script", "wylie:yes")],
                     [ctx.button("No, keep what I typed", "wylie:no")]),
        )

    async def on_confirm_wylie(self, ctx: Context, message: Inbound) -> None:
        if message.data == "wylie:yes":
            ctx.data["description"] = ctx.data["wylie"]
            ctx.data["description_language"] = "bo"
        elif message.data != "wylie:no":
            await self.prompt_confirm_wylie(ctx)
            return
        ctx.data.pop("wylie", None)
        await self.advance(ctx)

    # -- the place ----------------------------------------------------------------------

    async def prompt_locate(self, ctx: Context) -> None:
        parent = ctx.data.get("place_parent")
        places = await grids.children(ctx.session, parent)
        while parent is None and len(places) == 1 and places[0].level != NodeLevel.grid:
            places = await grids.children(ctx.session, places[0].code)  # skip a level with only one choice
        rows = [[Button(p.name(ctx.language), f"place:{p.code}")] for p in places]
        if parent is None:
            for grid in reversed(await self.suggested_grids(ctx)):
                rows.insert(0, [Button("📍 " + grid.name(ctx.language), f"place:{grid.code}")])
        if parent is None:
            text_ = ctx.t("Where is the problem? Share your location with the button below, or choose the place step by step.")
        else:
            node = await grids.node_by_code(ctx.session, parent)
            text_ = ctx.t("Choose the place in {area}:", area=node.name(ctx.language) if node else "")
            rows.append([ctx.button("⬆ Up one level", "place:up")])
        ctx.say(text_, self.nav(ctx, *rows), request_location=True)

    async def suggested_grids(self, ctx: Context) -> list[Node]:
        """Grids offered first: the one the resident reported from or chose before."""
        home = await ctx.session.get(Node, ctx.person.home_grid_id) if ctx.person.home_grid_id else None
        return [home] if home is not None else []

    async def on_locate(self, ctx: Context, message: Inbound) -> None:
        if message.kind == "location" and message.latitude is not None:
            grid = await grids.find_grid(ctx.session, message.latitude, message.longitude)
            if grid is None:
                ctx.say(ctx.t("That location is outside every grid we serve. Please choose the place from the list instead."))
                await self.prompt_locate(ctx)
                return
            ctx.data.update(grid=grid.code, latitude=message.latitude, longitude=message.longitude)
            ctx.data.pop("place_parent", None)
            await self._placed(ctx, grid)
            return
        if message.kind == "button" and message.data.startswith("place:"):
            code = message.data.split(":", 1)[1]
            if code == "up":
                parent = await grids.node_by_code(ctx.session, ctx.data.get("place_parent") or "")
                ctx.data["place_parent"] = None
                if parent is not None and parent.parent_id is not None:
                    above = await ctx.session.get(type(parent), parent.parent_id)
                    ctx.data["place_parent"] = above.code if above and above.level not in (NodeLevel.city, NodeLevel.district) else None
                ctx.touch()
                await self.prompt_locate(ctx)
                return
            node = await grids.node_by_code(ctx.session, code)
            if node is None:
                await self.prompt_locate(ctx)
                return
            if node.level != NodeLevel.grid:
                ctx.data["place_parent"] = node.code
                ctx.touch()
                await self.prompt_locate(ctx)
                return
            ctx.data.update(grid=node.code, latitude=None, longitude=None)
            ctx.data.pop("place_parent", None)
            await self._placed(ctx, node)
            return
        ctx.say(ctx.t("Please share your location with the button, or choose a place from the list."))
        await self.prompt_locate(ctx)

    async def _placed(self, ctx: Context, grid) -> None:
        ctx.say(ctx.t("Grid: {grid}", grid=await grids.place_name(ctx.session, grid, ctx.language)))
        await self.advance(ctx)

    async def prompt_address(self, ctx: Context) -> None:
        ctx.say(
            ctx.t("Add an address or a landmark (building, street, door number) so the grid worker finds it, or skip."),
            self.nav(ctx, [ctx.button("Skip", "address:skip")]),
        )

    async def on_address(self, ctx: Context, message: Inbound) -> None:
        if message.kind == "button" and message.data == "address:skip":
            ctx.data["address"] = None
        elif message.kind == "text":
            typed = text.clean(message.text)
            if not typed:
                await self.retry(ctx, ctx.t("The address is empty. Type an address or press Skip."))
                return
            if len(typed) > MAX_ADDRESS:
                await self.retry(ctx, ctx.t("The address is too long. Please keep it under {limit} characters.",
                              limit=i18n.number(ctx.language, MAX_ADDRESS)))
                return
            ctx.data["address"] = typed
        else:
            await self.retry(ctx, ctx.t("Type an address or press Skip."))
            return
        await self.advance(ctx)

    # -- photos and phone -------------------------------------------------------------------

    async def prompt_photos(self, ctx: Context) -> None:
        count = len(ctx.data.get("photos", []))
        ctx.say(
            ctx.t("You may send up to {limit} photos of the problem. Press Done when finished, or Skip.",
                  limit=i18n.number(ctx.language, MAX_PHOTOS))
            + ("\n" + ctx.t("Photos received: {count}", count=i18n.number(ctx.language, count)) if count else ""),
            self.nav(ctx, [ctx.button("Done", "photos:done") if count else ctx.button("Skip", "photos:done")]),
        )

    async def on_photos(self, ctx: Context, message: Inbound) -> None:
        photos = ctx.data.setdefault("photos", [])
        if message.kind == "photo":
            if len(photos) >= MAX_PHOTOS:
                ctx.say(ctx.t("You have already sent {limit} photos, the most one report can carry. Press Done.",
                              limit=i18n.number(ctx.language, MAX_PHOTOS)),
                        self.nav(ctx, [ctx.button("Done", "photos:done")]))
                return
            photos.append(ctx.photo_answer(message))
            ctx.touch()
            if len(photos) >= MAX_PHOTOS:
                await self.advance(ctx)
            else:
                ctx.say(ctx.t("Photo {count} received. Send another, or press Done.", count=i18n.number(ctx.language, len(photos))),
                        self.nav(ctx, [ctx.button("Done", "photos:done")]))
            return
        if message.kind == "button" and message.data == "photos:done":
            await self.advance(ctx)
            return
        await self.retry(ctx, ctx.t("Please send a photo, or press Done."))

    async def prompt_phone(self, ctx: Context) -> None:
        ctx.say(
            ctx.t("May the grid worker call you about it? Share or type your phone number, or stay anonymous. "
                  "Your number is shown only to the grid worker and the department handling the case."),
            self.nav(ctx, [ctx.button("Stay anonymous", "phone:anonymous")]),
            request_contact=True,
        )

    async def late_photo(self, ctx: Context, message: Inbound) -> bool:
        """A photo that arrives after the photo step (slow upload, or sent out of turn) is kept."""
        if message.kind != "photo":
            return False
        photos = ctx.data.setdefault("photos", [])
        if len(photos) < MAX_PHOTOS:
            photos.append(ctx.photo_answer(message))
            ctx.touch()
            ctx.say(ctx.t("Photo {count} received.", count=i18n.number(ctx.language, len(photos))))
        else:
            ctx.say(ctx.t("You have already sent {limit} photos, the most one report can carry. Press Done.",
                          limit=i18n.number(ctx.language, MAX_PHOTOS)))
        await self.prompt(ctx)
        return True

    async def on_phone(self, ctx: Context, message: Inbound) -> None:
        if await self.late_photo(ctx, message):
            return
        if message.kind == "button" and message.data == "phone:anonymous":
            ctx.data.update(phone=None, anonymous=True)
        elif message.kind in ("contact", "text") and (phone := text.normalised_phone(message.phone or message.text)):
            ctx.data.update(phone=phone, anonymous=False)
        else:
            await self.retry(ctx, ctx.t("That does not look like a phone number. Type digits only, for example 13800000000, or stay anonymous."))
            return
        await self.advance(ctx)

    # -- summary and submit -----------------------------------------------------------------

    async def prompt_confirm(self, ctx: Context) -> None:
        try:
            matter = await cases.published_matter(ctx.session, ctx.data.get("matter") or "")
        except MatterNotPublished:
            # Withdrawn while the person was answering (or while the draft waited): choose again.
            ctx.say(ctx.t("This kind of problem is no longer on the published list. Please choose another."))
            ctx.data["editing"] = True
            await self.go(ctx, "edit_choose_matter")
            return
        grid = await grids.node_by_code(ctx.session, ctx.data["grid"])
        place = await grids.place_name(ctx.session, grid, ctx.language) if grid else ""
        if ctx.data.get("address"):
            place += f" · {ctx.data['address']}"
        summary = ctx.t(
            "Please check your report:\n\nKind: {matter}\nDescription: {description}\nPlace: {place}\nPhotos: {photos}\nPhone: {phone}",
            matter=matter.name(ctx.language),
            description=ctx.data["description"],
            place=place,
            photos=i18n.number(ctx.language, len(ctx.data.get("photos", []))),
            phone=ctx.data.get("phone") or ctx.t("anonymous"),
        )
        if ctx.data.get("voice"):
            summary += "\n" + ctx.t("The description is your voice message; staff will listen to it.")
        nearby = await self.nearby(ctx, matter)
        duplicates = []
        for case, metres in nearby:
            summary += "\n\n" + ctx.t(
                "A similar case is already open about {metres} m from here: {number} · {matter} · {state} · "
                "followed by {count} people. If it is the same problem, you may follow it instead of reporting it again.",
                metres=i18n.number(ctx.language, int(round(metres))), number=case.number, matter=case.matter.name(ctx.language),
                state=ctx.t(STATE_NAMES[case.state]), count=i18n.number(ctx.language, len(case.followers) + 1))
            duplicates.append([ctx.button("👥 Follow {number} instead", f"follow:{case.number}", number=case.number)])
        ctx.say(
            summary,
            [
                *duplicates,
                [ctx.button("✅ Submit", "confirm:submit")],
                [ctx.button("Edit kind", "edit:choose_matter"), ctx.button("Edit description", "edit:describe")],
                [ctx.button("Edit place", "edit:locate"), ctx.button("Edit address", "edit:address")],
                [ctx.button("Edit photos", "edit:photos"), ctx.button("Edit phone", "edit:phone")],
                [ctx.button("◀ Back", BACK), ctx.button("✖ Cancel", CANCEL)],
            ],
        )

    async def nearby(self, ctx: Context, matter: Matter) -> list:
        """Open cases of the same matter close to the reported spot (only when a location was shared)."""
        if ctx.data.get("latitude") is None or ctx.data.get("longitude") is None:
            return []
        return await cases.nearby_open_cases(ctx.session, matter.code, ctx.data["latitude"], ctx.data["longitude"],
                                             now=ctx.now, metres=ctx.settings.get("duplicate_metres", cases.DUPLICATE_METRES))

    async def follow_instead(self, ctx: Context, number: str) -> None:
        """Support the open case instead of filing a repeat: the person follows it and gets its notices."""
        matter = await cases.published_matter(ctx.session, ctx.data["matter"])
        if number not in [c.number for c, _ in await self.nearby(ctx, matter)]:
            ctx.say(ctx.t("Please press Submit, or edit an answer."))
            await self.prompt_confirm(ctx)
            return
        case = await cases.load_case(ctx.session, number)
        await cases.add_follower(ctx.session, case, ctx.person.id, "supporter", ctx.now)
        finish(ctx)
        ctx.say(ctx.t("Thank you. You now follow case {number} and will be told what happens; your report was not filed "
                      "again. Followers of this case: {count}.", number=case.number,
                      count=i18n.number(ctx.language, len(case.followers) + 1)),
                [[ctx.button("Open case {number}", f"case:{case.number}", number=case.number)], [ctx.button("☰ Menu", "menu:main")]])

    async def on_confirm(self, ctx: Context, message: Inbound) -> None:
        if await self.late_photo(ctx, message):
            return
        if message.kind == "button" and message.data.startswith("follow:"):
            await self.follow_instead(ctx, message.data.removeprefix("follow:"))
            return
        if message.kind == "button" and message.data.startswith("edit:"):
            field = message.data.split(":", 1)[1]
            if field in FIELDS:
                ctx.data["editing"] = True
                if field == "photos":
                    ctx.data["photos"] = []
                if field == "describe":
                    ctx.data.pop("voice", None)
                ctx.touch()
                await self.go(ctx, f"edit_{field}")
                return
        if message.kind == "button" and message.data == "confirm:submit":
            await self.submit(ctx)
            return
        ctx.say(ctx.t("Please press Submit, or edit an answer."))
        await self.prompt_confirm(ctx)

    async def submit(self, ctx: Context) -> None:
        data = ctx.data
        try:
            async with ctx.session.begin_nested():
                case = await cases.open_case(
                    ctx.session, **draft_fields(ctx),
                    contact_phone=data.get("phone"), anonymous=bool(data.get("anonymous")),
                )
        except MatterNotPublished:
            ctx.say(ctx.t("This kind of problem is no longer on the published list. Please choose another."))
            data["editing"] = True
            ctx.touch()
            await self.go(ctx, "edit_choose_matter")
            return
        except (LocationOutsideGrids, CaseError):
            ctx.say(ctx.t("Sorry, the report could not be filed. Please check the place and try again."))
            data["editing"] = True
            ctx.touch()
            await self.go(ctx, "edit_locate")
            return
        ctx.person.home_grid_id = case.grid_id
        finish(ctx)
        ctx.say(
            ctx.t(
                "Your report has been filed. Case number: {number}\n\nGrid: {grid}\nTime limit for handling: {limit}, "
                "counted from when a department receives it.\n\nKeep the number: type it here at any time to see what has happened.",
                number=case.number,
                grid=await grids.place_name(ctx.session, case.grid, ctx.language),
                limit=i18n.duration(ctx.language, timedelta(hours=case.matter.time_limit_hours)),
            )
            + "\n\n" + ctx.t("Access code: {number} · {code}. With the number and this code you can follow the case "
                              "from any app or phone: type both, for example when you change phone.",
                              number=case.number, code=i18n.digits(ctx.language, case.access_code))
        )
        await ctx.show("menu")


def draft_fields(ctx: Context) -> dict:
    """The answers collected so far, as `storage.cases.open_case` takes them."""
    data = ctx.data
    return dict(
        reporter_id=ctx.person.id,
        matter_code=data["matter"],
        description=data["description"],
        language=data.get("description_language", ctx.language),
        grid_code=data["grid"],
        latitude=data.get("latitude"),
        longitude=data.get("longitude"),
        address=data.get("address"),
        photos=[Photo(**p) for p in data.get("photos", []) + ([data["voice"]] if data.get("voice") else [])],
        now=ctx.now,
    )

normalised_phone = text.normalised_phone  # where it was before; the phone check lives in conversations.text


router = Router()


@router.command("report")
@router.press("menu:report")
async def start_report(ctx: Context, message: Inbound, argument: str) -> None:
    state = ctx.dialog_state
    if state.draft and state.draft.get("dialog") == ReportDialog.name:
        ctx.say(
            ctx.t("You have an unfinished report from {time}. Continue it, or start a new one?", time=ctx.time(state.draft_saved_at)),
            [[ctx.button("▶ Continue my unfinished report", "resume:report")], [ctx.button("Start a new report", "resume:discard")]],
        )
        return
    await ReportDialog().begin(ctx)


def keep_draft(ctx: Context) -> bool:
    """Keep the open report (or patrol log) as the draft, if the person has answered anything yet."""
    state = ctx.dialog_state
    answered = any(state.data.get(key) for key in ("matter", "typed", "description"))
    if state.dialog not in (ReportDialog.name, "patrol") or not answered:
        return False
    state.draft = {"dialog": state.dialog, "state": state.state, "data": dict(state.data)}
    state.draft_saved_at = ctx.now
    return True


@router.press("resume:report")
async def resume_report(ctx: Context, message: Inbound, argument: str) -> None:
    state = ctx.dialog_state
    if not state.draft:
        finish(ctx)
        ctx.say(ctx.t("There is no unfinished report any more: drafts are kept for 24 hours."))
        await ReportDialog().begin(ctx)
        return
    draft = state.draft
    state.draft, state.draft_saved_at = None, None
    keep_draft(ctx)  # a report open right now is not lost: it becomes the draft in its place
    state.dialog, state.state, state.data = draft["dialog"], draft["state"], dict(draft["data"])
    ctx.say(ctx.t("Welcome back. Let us continue your report where you left it."))
    await ctx.dialog_named(state.dialog).prompt(ctx)


@router.press("resume:discard")
async def discard_draft(ctx: Context, message: Inbound, argument: str) -> None:
    ctx.dialog_state.draft, ctx.dialog_state.draft_saved_at = None, None
    await ReportDialog().begin(ctx)


router.add_dialogs(ReportDialog)
