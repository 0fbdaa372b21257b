"""Base for dialogs: each one declares its states and transitions as data for `transitions`."""

from __future__ import annotations

from typing import Any, ClassVar

from transitions import Machine, MachineError

from .context import Context
from .protocol import Inbound
from .text import clean, find_case_number

BACK = "nav:back"
CANCEL = "nav:cancel"


class _Holder:
    def __init__(self, state: str):
        self.state = state


class Dialog:
    """A finite-state dialog. Subclasses set `name`, `STATES`, `TRANSITIONS` and write
    `prompt_<state>(ctx)` (what to show on entering the state) and `on_<state>(ctx, message)`
    (what to do with an answer in that state)."""

    name: ClassVar[str]
    STATES: ClassVar[list[str]]
    TRANSITIONS: ClassVar[list[dict[str, Any]]]
    _machine: ClassVar[Machine | None] = None

    @classmethod
    def machine(cls) -> Machine:
        if cls.__dict__.get("_machine") is None:
            cls._machine = Machine(
                model=None,
                states=cls.STATES,
                initial=cls.STATES[0],
                transitions=cls.TRANSITIONS,
                auto_transitions=False,
                ignore_invalid_triggers=False,
            )
        return cls._machine

    @classmethod
    def next_state(cls, state: str, trigger: str) -> str | None:
        """The state `trigger` leads to from `state`, or None when the flow does not allow it."""
        holder = _Holder(state)
        machine = cls.machine()
        machine.add_model(holder, initial=state)
        try:
            getattr(holder, trigger)()
        except (MachineError, AttributeError):
            return None
        finally:
            machine.remove_model(holder)
        return holder.state

    # -- running a dialog -------------------------------------------------------------

    async def begin(self, ctx: Context, **data: Any) -> None:
        ctx.dialog_state.dialog = self.name
        ctx.dialog_state.state = self.STATES[0]
        ctx.dialog_state.data = dict(data)
        await self.prompt(ctx)

    async def go(self, ctx: Context, trigger: str) -> None:
        """Move along the declared flow and show the new step's prompt."""
        target = self.next_state(ctx.state, trigger)
        if target is None:
            raise RuntimeError(f"{self.name}: no transition {trigger!r} from {ctx.state!r}")
        ctx.dialog_state.state = target
        ctx.touch()
        await self.prompt(ctx)

    async def prompt(self, ctx: Context) -> None:
        await getattr(self, f"prompt_{ctx.state}")(ctx)

    async def handle(self, ctx: Context, message: Inbound) -> None:
        if message.kind == "button" and message.data == BACK:
            if self.next_state(ctx.state, "back") is not None:
                await self.go(ctx, "back")
            else:
                await self.cancel(ctx)
            return
        if message.kind == "button" and message.data == CANCEL:
            await self.cancel(ctx)
            return
        if message.media_error:  # a file the adapter refused (too large, not an image…): say why, ask again
            from .dialogs.additions import refuse_media

            refuse_media(ctx, message)
            await self.prompt(ctx)
            return
        await getattr(self, f"on_{ctx.state}")(ctx, message)

    async def cancel(self, ctx: Context) -> None:
        finish(ctx)
        ctx.say(ctx.t("Cancelled. Nothing was sent."))
        await ctx.show("menu")


def finish(ctx: Context) -> None:
    """Close the open dialog."""
    ctx.dialog_state.dialog = None
    ctx.dialog_state.state = None
    ctx.dialog_state.data = {}


class AskCaseNumberDialog(Dialog):
    """Asks for a case number; subclasses say what to do with it in `with_number`."""

    STATES = ["ask_number"]
    TRANSITIONS: list = []

    async def prompt_ask_number(self, ctx: Context) -> None:
        ctx.say(ctx.t("Type the case number, for example LS-20261124-0042."), [[ctx.button("✖ Cancel", CANCEL)]])

    async def on_ask_number(self, ctx: Context, message: Inbound) -> None:
        number = find_case_number(clean(message.text)) if message.kind == "text" else None
        if number is None:
            ctx.say(ctx.t("That is not a case number. A case number looks like LS-20261124-0042."),
                    [[ctx.button("✖ Cancel", CANCEL)]])
            return
        finish(ctx)
        ctx.settings["typed"] = clean(message.text)  # the number may come with its access code
        await self.with_number(ctx, number)

    async def with_number(self, ctx: Context, number: str) -> None:
        raise NotImplementedError
