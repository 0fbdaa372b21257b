"""A grid worker logs what they found on patrol: resolved on the spot (closed at once), or reported up (Art. 17)."""

from __future__ import annotations

from storage import cases, grids, lifecycle
from storage.lifecycle import CaseError
from storage.models import CaseSource, Node
from storage.people import active_roles

from .. import text
from ..context import Context
from ..dialog import finish
from ..protocol import Inbound
from ..router import Router
from .report import MAX_DESCRIPTION, SHARED_STATES, SHARED_STEPS, ReportDialog, draft_fields

MAX_RESIDENTS = 300


class PatrolDialog(ReportDialog):
    name = "patrol"
    STATES = SHARED_STATES + ["other_grid", "residents", "outcome", "result"]
    TRANSITIONS = [
        *SHARED_STEPS,
        dict(trigger="other_grid", source="locate", dest="other_grid"),  # the place is in someone else's grid
        dict(trigger="next", source="other_grid", dest="address"),
        dict(trigger="back", source="other_grid", dest="locate"),
        dict(trigger="next", source="photos", dest="residents"),
        dict(trigger="next", source="residents", dest="outcome"),
        dict(trigger="resolved", source="outcome", dest="result"),  # 当场解决
        dict(trigger="back", source="residents", dest="photos"),
        dict(trigger="back", source="outcome", dest="residents"),
        dict(trigger="back", source="result", dest="outcome"),
    ]

    async def suggested_grids(self, ctx: Context) -> list[Node]:
        """The worker's own grids come first."""
        return [a.node for a in await active_roles(ctx.session, ctx.person.id)
                if a.role in lifecycle.GRID_WORKERS and a.node is not None]

    async def _placed(self, ctx: Context, grid: Node) -> None:
        """A place in another grid is said at once: log it for that grid, or choose another place."""
        own = await self.suggested_grids(ctx)
        if any(mine.contains(grid) for mine in own):
            ctx.data.pop("other_grid", None)
            await super()._placed(ctx, grid)
            return
        ctx.data["other_grid"] = grid.code
        await self.go(ctx, "other_grid")

    async def prompt_other_grid(self, ctx: Context) -> None:
        grid = await grids.node_by_code(ctx.session, ctx.data["other_grid"])
        name = await grids.place_name(ctx.session, grid, ctx.language)
        ctx.say(ctx.t("This place is in {grid}, which is not one of your grids. You can log it for that grid: "
                      "its grid workers and its grid work organ are told and take it from there. Or choose another place.",
                      grid=name),
                self.nav(ctx, [ctx.button("⬆ Log it for that grid", "other_grid:log")],
                         [ctx.button("📍 Choose another place", "other_grid:place")]))

    async def on_other_grid(self, ctx: Context, message: Inbound) -> None:
        if message.data == "other_grid:log":
            grid = await grids.node_by_code(ctx.session, ctx.data["other_grid"])
            await super()._placed(ctx, grid)
        elif message.data == "other_grid:place":
            ctx.data.pop("other_grid", None)
            ctx.data.update(grid=None, latitude=None, longitude=None)
            await self.go(ctx, "back")
        else:
            await self.prompt_other_grid(ctx)

    async def prompt_residents(self, ctx: Context) -> None:
        ctx.say(ctx.t("Which residents are concerned, if any? Type names or households, or skip."),
                self.nav(ctx, [ctx.button("Skip", "residents:skip")]))

    async def on_residents(self, ctx: Context, message: Inbound) -> None:
        if message.kind == "button" and message.data == "residents:skip":
            ctx.data["residents"] = None
        elif message.kind == "text" and text.clean(message.text):
            ctx.data["residents"] = text.clean(message.text)[:MAX_RESIDENTS]
        else:
            await self.retry(ctx, ctx.t("Type names or households, or press Skip."))
            return
        await self.advance(ctx)

    async def may_resolve(self, ctx: Context) -> bool:
        """Part-time grid workers report up; resolving on the spot closes a case (full-time workers only)."""
        allowed = lifecycle.roles_for("resolve_on_spot")
        return any(a.role in allowed for a in await active_roles(ctx.session, ctx.person.id))

    async def prompt_outcome(self, ctx: Context) -> None:
        report_up = [ctx.button("⬆ Report it up to the grid centre", "outcome:report")]
        if ctx.data.get("other_grid"):
            # Resolving on the spot is for the grid's own workers: here it is reported to that grid.
            ctx.say(ctx.t("It will be reported to the grid it belongs to."), self.nav(ctx, report_up))
            return
        if not await self.may_resolve(ctx):
            ctx.say(ctx.t("The grid centre and a department will take it from here."), self.nav(ctx, report_up))
            return
        ctx.say(ctx.t("Could you resolve it on the spot, or does it need the grid centre and a department?"),
                self.nav(ctx, [ctx.button("✔ Resolved on the spot", "outcome:resolved")], report_up))

    async def on_outcome(self, ctx: Context, message: Inbound) -> None:
        if message.data == "outcome:resolved" and not ctx.data.get("other_grid") and await self.may_resolve(ctx):
            await self.go(ctx, "resolved")
        elif message.data == "outcome:report":
            await self.file(ctx, result=None)
        else:
            await self.prompt_outcome(ctx)

    async def prompt_result(self, ctx: Context) -> None:
        ctx.say(ctx.t("What did you do? Describe the result."), self.nav(ctx))

    async def on_result(self, ctx: Context, message: Inbound) -> None:
        typed = text.clean(message.text) if message.kind == "text" else ""
        if not typed or len(typed) > MAX_DESCRIPTION:
            await self.retry(ctx, ctx.t("Please describe the result as a text message."))
            return
        await self.file(ctx, result=typed)

    async def file(self, ctx: Context, result: str | None) -> None:
        data = ctx.data
        try:
            async with ctx.session.begin_nested():
                # For another grid the worker reports it as anyone would: that grid's workers and centre are told.
                source = CaseSource.resident_report if data.get("other_grid") else CaseSource.worker_patrol
                case = await cases.open_case(
                    ctx.session, **draft_fields(ctx),
                    source=source, concerned_residents=data.get("residents"),
                )
                if result is not None:
                    case = await cases.act(ctx.session, case.id, ctx.person.id, "resolve_on_spot", result=result, now=ctx.now)
        except CaseError:
            await self.retry(ctx, ctx.t("Sorry, the report could not be filed. Please check the place and try again."))
            return
        finish(ctx)
        if data.get("other_grid"):
            ctx.say(ctx.t("Case {number} is logged for {grid}; its grid workers and its grid work organ have been told.",
                          number=case.number, grid=await grids.place_name(ctx.session, case.grid, ctx.language)))
        elif result is not None:
            ctx.say(ctx.t("Case {number} is logged and closed as resolved on the spot.", number=case.number))
        else:
            ctx.say(ctx.t("Case {number} is logged and reported up to the grid centre.", number=case.number))
        await ctx.show("desk")


router = Router()


@router.command("patrol")
@router.press("staff:patrol")
async def start_patrol(ctx: Context, message: Inbound, argument: str) -> None:
    roles = await active_roles(ctx.session, ctx.person.id)
    if not any(a.role in lifecycle.GRID_WORKERS for a in roles):
        ctx.say(ctx.t("This is for grid workers."))
        return
    await PatrolDialog().begin(ctx)


router.add_dialogs(PatrolDialog)
