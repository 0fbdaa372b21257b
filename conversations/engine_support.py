"""Kept for code written against the old registry; new code asks the context instead.

The engine builds the registry of dialogs and views from the feature routers (`router.add_dialogs`,
`@router.view`); a dialog hands over by name with `ctx.begin_dialog(name)`, `ctx.dialog_named()` and
`await ctx.show(view)`. `DIALOGS` here is that registry, built on first use (no dialog is imported when
this module is), and `register` adds a dialog to it.
"""

from __future__ import annotations

from typing import Any

from .context import Context
from .dialog import Dialog

_registered: dict[str, Dialog] = {}


def register(dialog: Dialog) -> None:
    """Deprecated: add the dialog to a feature router with `router.add_dialogs(...)`."""
    _registered[dialog.name] = dialog


def current_dialog(ctx: Context) -> Dialog:
    return ctx.dialog_named()


def __getattr__(name: str) -> Any:
    if name == "DIALOGS":
        from .engine import FEATURE_ROUTERS

        return {**{k: v for router in FEATURE_ROUTERS for k, v in router.dialogs.items()}, **_registered}
    raise AttributeError(name)
