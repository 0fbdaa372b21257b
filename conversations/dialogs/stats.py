"""📊 on the staff desk (and /stats): this month's key indicators of the person's unit, with a chart."""

from __future__ import annotations

from storage import indicators
from storage.indicators import Period, Scope
from storage.models import Node, Role
from storage.people import active_roles

from ..context import Context
from ..figures import KEY_FIGURES, digits, labelled, shown, value_of
from ..protocol import Inbound
from ..router import Router

router = Router()

# Grid chiefs, instructors and grid centre staff see their unit's figures (issue 12).
STATS_ROLES = indicators.READER_ROLES
DESK_FIGURES = ("reported", "closed", "overdue_open", "on_time_closed_rate", "closed_rate", "satisfaction_rate",
                "composite_score")


def unit_of(assignments) -> Node | None:
    """The widest node among the person's roles that read indicators."""
    nodes = [a.node for a in assignments if a.role in STATS_ROLES and a.node is not None]
    return min(nodes, key=lambda n: len(n.path), default=None)


def chart_path(node: Node, period: Period) -> str:
    """The chart's address on our own server (bot/web/bulletins.py)."""
    return f"/bulletin/{node.code}/{period.label}/chart/rates.png"


@router.command("stats")
@router.press("staff:stats")
async def show_stats(ctx: Context, message: Inbound, argument: str) -> None:
    node = unit_of(await active_roles(ctx.session, ctx.person.id))
    if node is None:
        ctx.say(ctx.t("The indicators are for grid chiefs, grid instructors and grid centre staff."),
                [[ctx.button("☰ Menu", "menu:main")]])
        return
    period = Period.of(ctx.now)
    report = await indicators.compute(ctx.session, Scope(node), period, now=ctx.now)
    month = ctx.t("{year}-{month}", year=digits(ctx.language, str(period.first.year)),
                  month=digits(ctx.language, f"{period.first.month:02d}"))
    lines = [ctx.t("📊 {unit}, {month}, so far:", unit=node.name(ctx.language), month=month)]
    for key, msgid, kind in KEY_FIGURES:
        if key in DESK_FIGURES:
            value = shown(ctx.language, value_of(report.total, key, report.weights), kind)
            lines.append("• " + labelled(ctx.language, ctx.t(msgid), value))
    lines.append(ctx.t("A rate without cases to count is shown as —."))
    ctx.say("\n".join(lines), [[ctx.button("🗂 Staff desk", "menu:staff")]], photo_file_ids=[chart_path(node, period)])
