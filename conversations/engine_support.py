"""The registry of dialogs by name, shared by the engine and the routes that start dialogs."""

from __future__ import annotations

from .context import Context
from .dialog import Dialog
from .dialogs.additions import AddToCaseDialog, AttachDialog
from .dialogs.cases import LookupDialog, RateDialog
from .dialogs.grid import GridDialog
from .dialogs.language import LanguageDialog
from .dialogs.patrol import PatrolDialog
from .dialogs.report import ReportDialog
from .dialogs.staff import ActionDialog, FeedbackDialog, ProfileDialog

DIALOGS: dict[str, Dialog] = {
    d.name: d
    for d in (
        LanguageDialog(), ReportDialog(), LookupDialog(), RateDialog(), GridDialog(),
        PatrolDialog(), ActionDialog(), FeedbackDialog(), ProfileDialog(), AddToCaseDialog(), AttachDialog(),
    )
}


def register(dialog: Dialog) -> None:
    DIALOGS[dialog.name] = dialog


def current_dialog(ctx: Context) -> Dialog:
    return DIALOGS[ctx.dialog_state.dialog]
