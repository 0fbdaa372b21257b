"""The main menu, help, and the polite fallback."""

from __future__ import annotations

from ..context import Context
from ..i18n import LANGUAGE_NAMES  # noqa: F401  (where it was before; bot/web/chat.py reads it here)
from ..protocol import Inbound
from ..router import Router


async def show_menu(ctx: Context) -> None:
    rows = []
    if await _is_staff(ctx):
        rows.append([ctx.button("🗂 Staff desk", "menu:staff")])
    if ctx.dialog_state.draft:
        rows.append([ctx.button("▶ Continue my unfinished report", "resume:report")])
    ctx.say(
        ctx.t("What would you like to do?"),
        rows + [
            [ctx.button("📝 Report a problem", "menu:report")],
            [ctx.button("📋 My cases", "menu:cases"), ctx.button("🔎 Look up a case", "menu:lookup")],
            [ctx.button("🏘 My grid", "menu:grid"), ctx.button("❓ Help", "menu:help")],
            [ctx.button("🌐 Language", "menu:language")],
        ],
    )


async def _is_staff(ctx: Context) -> bool:
    from storage.models import Role
    from storage.people import active_roles

    return any(a.role not in (Role.resident, Role.administrator) for a in await active_roles(ctx.session, ctx.person.id))


async def show_help(ctx: Context) -> None:
    ctx.say(
        ctx.t(
            "This service lets you report a problem in your neighbourhood to the grid worker and the grid centre, "
            "and follow what happens to it.\n\n"
            "• Report a problem: choose the kind of problem, describe it, say where it is; you get a case number.\n"
            "• My cases: see your cases and every step taken on them.\n"
            "• Look up a case: type a case number such as LS-20261124-0042.\n"
            "• My grid: your grid worker and the supervision phone number.\n\n"
            "Everything works with the buttons; you can also simply type what is wrong, or a case number."
        )
    )
    await show_menu(ctx)


async def fallback(ctx: Context) -> None:
    ctx.say(ctx.t("Sorry, I did not understand that. Please choose from the menu."))
    await show_menu(ctx)


router = Router()
router.view("menu")(show_menu)


@router.command("menu")
@router.press("menu:main")
async def open_menu(ctx: Context, message: Inbound, argument: str) -> None:
    await show_menu(ctx)


@router.command("help")
@router.press("menu:help")
async def open_help(ctx: Context, message: Inbound, argument: str) -> None:
    await show_help(ctx)


@router.command("cancel")
async def cancel_anything(ctx: Context, message: Inbound, argument: str) -> None:
    # The engine has already put an open report aside as a draft.
    ctx.say(ctx.t("Cancelled. Nothing was sent."))
    await show_menu(ctx)
