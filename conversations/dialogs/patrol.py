"""A grid worker logs what they found on patrol: resolved on the spot (closed at once), or reported up (Art. 17)."""

from __future__ import annotations

from storage import cases, lifecycle
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
    STATES = SHARED_STATES + ["residents", "outcome", "result"]
    TRANSITIONS = [
        *SHARED_STEPS,
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
        if not await self.may_resolve(ctx):
            ctx.say(ctx.t("The grid centre and a department will take it from here."), self.nav(ctx, report_up))
            return
        ctx.say(ctx.t("Could you resolve it on the spot, or does it need the grid centre and a department?"),
                self.nav(ctx, [ctx.button("✔ Resolved on the spot", "outcome:resolved")], report_up))

    async def on_outcome(self, ctx: Context, message: Inbound) -> None:
        if message.data == "outcome:resolved" and await self.may_resolve(ctx):
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
                case = await cases.open_case(
                    ctx.session, **draft_fields(ctx),
                    source=CaseSource.worker_patrol, concerned_residents=data.get("residents"),
                )
                if result is not None:
                    case = await cases.act(ctx.session, case.id, ctx.person.id, "resolve_on_spot", result=result, now=ctx.now)
        except CaseError:
            await self.retry(ctx, ctx.t("Sorry, the report could not be filed. Please check the place and try again."))
            return
        finish(ctx)
        if result is not None:
            ctx.say(ctx.t("Case {number} is logged and closed as resolved on the spot.", number=case.number))
        else:
            ctx.say(ctx.t("Case {number} is logged and reported up to the grid centre.", number=case.number))
        from .staff import show_desk

        await show_desk(ctx)


router = Router()


@router.command("patrol")
@router.press("staff:patrol")
async def start_patrol(ctx: Context, message: Inbound, argument: str) -> None:
    roles = await active_roles(ctx.session, ctx.person.id)
    if not any(a.role in lifecycle.GRID_WORKERS for a in roles):
        ctx.say(ctx.t("This is for grid workers."))
        return
    await PatrolDialog().begin(ctx)
