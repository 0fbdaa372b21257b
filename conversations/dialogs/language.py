"""First contact and /language: 中文 or བོད་ཡིག."""

from __future__ import annotations

from ..context import Context
from ..i18n import LANGUAGE_NAMES, N_, translate
from ..dialog import Dialog, finish
from ..protocol import Button, Inbound
from ..router import Router


class LanguageDialog(Dialog):
    name = "language"
    STATES = ["choose"]
    TRANSITIONS: list = []

    async def prompt_choose(self, ctx: Context) -> None:
        hint = ctx.data.get("hint")
        order = [hint] + [code for code in LANGUAGE_NAMES if code != hint] if hint in LANGUAGE_NAMES else list(LANGUAGE_NAMES)
        buttons = [[Button(("✓ " if code == hint else "") + LANGUAGE_NAMES[code], f"lang:{code}")] for code in order]
        # Shown in both languages: we do not know yet which one the person reads.
        ask = N_("Please choose your language.")
        ctx.say(f"{translate('zh', ask)}\n{translate('bo', ask)}", buttons)

    async def on_choose(self, ctx: Context, message: Inbound) -> None:
        code = message.data.removeprefix("lang:") if message.kind == "button" else ""
        if code not in LANGUAGE_NAMES:
            await self.prompt_choose(ctx)
            return
        await set_language(ctx, code)


async def set_language(ctx: Context, code: str) -> None:
    ctx.person.language = code
    ctx.person.language_chosen = True
    first = not ctx.data.get("returning")
    deep_link = ctx.data.get("deep_link")
    finish(ctx)
    if first:
        ctx.say(
            ctx.t(
                "Welcome to the grid service of Lhasa. Tell us about a problem in your neighbourhood "
                "and follow it until it is solved."
            )
        )
    else:
        ctx.say(ctx.t("Language changed."))
    if deep_link and await ctx.show("deep_link", argument=deep_link):
        return
    await ctx.show("menu")


router = Router()
router.add_dialogs(LanguageDialog)


@router.command("language")
@router.press("menu:language")
async def change_language(ctx: Context, message: Inbound, argument: str) -> None:
    await LanguageDialog().begin(ctx, hint=ctx.language, returning=True)


@router.press("lang:")
async def language_chosen(ctx: Context, message: Inbound, code: str) -> None:
    if code not in LANGUAGE_NAMES:
        await LanguageDialog().begin(ctx, hint=ctx.language, returning=True)
        return
    if ctx.dialog_state.dialog in (None, LanguageDialog.name):
        await set_language(ctx, code)
        return
    # An old language button pressed in the middle of another dialog: switch, and ask again in the new language.
    ctx.person.language = code
    await ctx.dialog_named().prompt(ctx)


@router.command("start")
async def start(ctx: Context, message: Inbound, argument: str) -> None:
    if argument and await ctx.show("deep_link", argument=argument):
        return
    await ctx.show("menu")
