"""My grid (Art. 20): its name and area, its workers and their numbers, the supervision phone."""

from __future__ import annotations


from storage import grids
from storage.models import Node, NodeLevel

from ..context import Context
from ..dialog import CANCEL, Dialog, finish
from ..protocol import Button, Inbound
from ..router import Router
from ..wording import ROLE_NAMES



class GridDialog(Dialog):
    """Choose a grid step by step (when the person has none yet), then show its public card."""

    name = "grid"
    STATES = ["choose"]
    TRANSITIONS: list = []

    async def prompt_choose(self, ctx: Context) -> None:
        parent = ctx.data.get("parent")
        places = await grids.children(ctx.session, parent)
        while parent is None and len(places) == 1 and places[0].level != NodeLevel.grid:
            places = await grids.children(ctx.session, places[0].code)
        rows = [[Button(p.name(ctx.language), f"place:{p.code}")] for p in places]
        rows.append([ctx.button("✖ Cancel", CANCEL)])
        ctx.say(ctx.t("Which grid do you live in? Choose step by step, or share your location."), rows, request_location=True)

    async def on_choose(self, ctx: Context, message: Inbound) -> None:
        node = None
        if message.kind == "location" and message.latitude is not None:
            node = await grids.find_grid(ctx.session, message.latitude, message.longitude)
            if node is None:
                ctx.say(ctx.t("That location is outside every grid we serve. Please choose the place from the list instead."))
                await self.prompt_choose(ctx)
                return
        elif message.kind == "button" and message.data.startswith("place:"):
            node = await grids.node_by_code(ctx.session, message.data.split(":", 1)[1])
        if node is None:
            await self.prompt_choose(ctx)
            return
        if node.level != NodeLevel.grid:
            ctx.data["parent"] = node.code
            ctx.touch()
            await self.prompt_choose(ctx)
            return
        finish(ctx)
        ctx.person.home_grid_id = node.id
        await show_grid_card(ctx, node)


async def show_grid(ctx: Context, grid_code: str | None = None) -> bool:
    """Show the person's grid (or the given one); False when they have none yet."""
    node = None
    if grid_code:
        node = await grids.node_by_code(ctx.session, grid_code)
        if node is not None and node.level == NodeLevel.grid:
            ctx.person.home_grid_id = node.id
        else:
            node = None
    if node is None and ctx.person.home_grid_id:
        node = await ctx.session.get(Node, ctx.person.home_grid_id)
    if node is None:
        return False
    await show_grid_card(ctx, node)
    return True


async def show_grid_card(ctx: Context, grid: Node) -> None:
    people = await grids.published_staff(ctx.session, grid.id)
    lines = [
        ctx.t("Grid: {grid}", grid=await grids.place_name(ctx.session, grid, ctx.language)),
        ctx.t("Grid code: {code}", code=grid.code),
    ]
    area = grid.area_bo if ctx.language == "bo" else grid.area_zh
    if area:
        lines.append(ctx.t("Area: {area}", area=area))
    if people:
        lines.append("")
        for role, name, phone in people:
            lines.append("• " + ctx.t("{label}: {value}", label=ctx.t(ROLE_NAMES[role.value]),
                                      value=f"{name or ''} {phone or ''}".strip()))
    else:
        lines.append(ctx.t("No grid worker is listed for this grid yet."))
    if grid.supervision_phone:
        lines.append("")
        lines.append(ctx.t("Supervision and complaints phone: {phone}", phone=grid.supervision_phone))
    ctx.say(
        "\n".join(lines),
        [[ctx.button("📝 Report a problem here", "menu:report"), ctx.button("Choose another grid", "grid:choose")],
         [ctx.button("☰ Menu", "menu:main")]],
    )


router = Router()
router.add_dialogs(GridDialog)


@router.command("grid")
@router.press("menu:grid")
async def open_my_grid(ctx: Context, message: Inbound, argument: str) -> None:
    if not await show_grid(ctx, argument.strip() or None):
        await GridDialog().begin(ctx)


@router.press("grid:choose")
async def choose_another_grid(ctx: Context, message: Inbound, argument: str) -> None:
    await GridDialog().begin(ctx)


@router.view("deep_link")
async def open_deep_link(ctx: Context, argument: str) -> bool:
    """`/start grid_CODE` (Telegram deep link, and the web page's `?grid=CODE`): show that grid."""
    if argument.startswith("grid_"):
        return await show_grid(ctx, argument.removeprefix("grid_"))
    return False
