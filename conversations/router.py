"""Routes for commands and button presses that work from anywhere; one router per feature.

A feature's router also names its dialogs and its views (what other features may show, such as the
menu or a case card). The engine builds the registry from all routers, and a dialog hands over to
another feature by name (`ctx.begin_dialog("report")`, `await ctx.show("menu")`), so that no dialog
module imports another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from .context import Context
from .protocol import Inbound

if TYPE_CHECKING:
    from .dialog import Dialog

Handler = Callable[[Context, Inbound, str], Awaitable[None]]
View = Callable[..., Awaitable[Any]]


@dataclass
class Router:
    """Maps commands (`/report`) and pressed-button prefixes (`menu:report`, `case:`) to handlers.

    A handler gets the context, the message and the argument: the text after the
    command, or what follows the matched button prefix.
    """

    commands: dict[str, Handler] = field(default_factory=dict)
    buttons: dict[str, Handler] = field(default_factory=dict)
    dialogs: dict[str, Dialog] = field(default_factory=dict)
    views: dict[str, View] = field(default_factory=dict)

    def command(self, *names: str):
        def register(handler: Handler) -> Handler:
            for name in names:
                self.commands[name] = handler
            return handler

        return register

    def press(self, *prefixes: str):
        def register(handler: Handler) -> Handler:
            for prefix in prefixes:
                self.buttons[prefix] = handler
            return handler

        return register

    def add_dialogs(self, *classes: type[Dialog]) -> None:
        """The feature's dialogs, found by their `name`."""
        for cls in classes:
            self.dialogs[cls.name] = cls()

    def view(self, name: str):
        """Something the feature shows that other features may ask for by name: `await ctx.show(name, ...)`."""
        def register(function: View) -> View:
            self.views[name] = function
            return function

        return register

    def include(self, other: Router) -> None:
        for kind in ("dialogs", "views"):
            mine, theirs = getattr(self, kind), getattr(other, kind)
            clash = sorted(k for k in theirs if k in mine and mine[k] is not theirs[k])
            if clash:
                raise ValueError(f"two features register the {kind} {clash}")
            mine.update(theirs)
        self.commands.update(other.commands)
        self.buttons.update(other.buttons)

    def match(self, message: Inbound) -> tuple[Handler, str] | None:
        if message.kind == "command" and message.command in self.commands:
            return self.commands[message.command], message.argument
        if message.kind == "button":
            for prefix in sorted(self.buttons, key=len, reverse=True):
                if message.data == prefix or (prefix.endswith(":") and message.data.startswith(prefix)):
                    return self.buttons[prefix], message.data[len(prefix):]
        return None
