"""/console: a one-time sign-in link to the grid-centre console, for staff (no passwords to manage)."""

from __future__ import annotations

import os

from storage import console_logins

from .. import i18n
from ..context import Context
from ..protocol import Inbound
from ..router import Router


router = Router()


def console_link(secret: str) -> str:
    """Absolute with GRIDBOT_PUBLIC_URL (Telegram needs it), else a path on this server."""
    base = os.environ.get("GRIDBOT_PUBLIC_URL", "").rstrip("/")
    return f"{base}/console/login/{secret}"


@router.command("console")
@router.press("staff:console")
async def send_console_link(ctx: Context, message: Inbound, argument: str) -> None:
    if not await console_logins.is_staff(ctx.session, ctx.person.id):
        ctx.say(ctx.t("This is for grid staff. Staff join with an invitation code: /join CODE"))
        await ctx.show("menu")
        return
    secret = await console_logins.create_link(ctx.session, ctx.person.id, ctx.now)
    minutes = i18n.number(ctx.language, int(console_logins.LINK_LIFETIME.total_seconds() // 60))
    ctx.say(ctx.t("Your sign-in link to the grid-centre console, for the next {minutes} minutes and one use only:",
                  minutes=minutes) + "\n" + console_link(secret) + "\n"
            + ctx.t("Do not pass it on: whoever opens it acts in your name."),
            [[ctx.button("🗂 Staff desk", "menu:staff")]])
