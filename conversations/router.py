"""Routes for commands and button presses that work from anywhere; one router per feature."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Awaitable, Callable

from .context import Context
from .protocol import Inbound

Handler = Callable[[Context, Inbound, str], Awaitable[None]]


@dataclass
class Router:
    """Maps commands (`/report`) and pressed-button prefixes (`menu:report`, `case:`) to handlers.

    A handler gets the context, the message and the argument: the text after the
    command, or what follows the matched button prefix.
    """

    commands: dict[str, Handler] = field(default_factory=dict)
    buttons: dict[str, Handler] = field(default_factory=dict)

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

    def include(self, other: Router) -> None:
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
