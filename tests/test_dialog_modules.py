"""Each dialog module stands alone: the engine builds the registry from the feature routers and a
dialog hands over to another feature by name, so no dialog module imports another."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from conversations.engine import FEATURE_ROUTERS, Engine

DIALOGS_DIR = Path(__file__).resolve().parent.parent / "conversations" / "dialogs"
MODULES = sorted(p.stem for p in DIALOGS_DIR.glob("*.py") if p.stem != "__init__")
# The patrol log is the report's steps plus the worker's own (a subclass, declared as data); the one
# dependency left between dialog modules, and it goes one way.
SUBCLASSES = {("patrol", "report")}


def imported_dialog_modules(module: str) -> set[str]:
    tree = ast.parse((DIALOGS_DIR / f"{module}.py").read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:  # from .staff import …
                found.add(node.module.split(".")[0])
            elif node.level == 2 and node.module in ("dialogs", "engine_support", "engine"):
                found.add(node.module)
            elif node.level == 1 and not node.module:
                found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("module", MODULES)
def test_a_dialog_module_imports_no_other_dialog_and_not_the_engine(module):
    others = {m for m in imported_dialog_modules(module) if (module, m) not in SUBCLASSES}
    assert not others, f"conversations/dialogs/{module}.py imports {sorted(others)}: hand over by name instead"


IMPORT_ALONE = """
import importlib, sys
for module in sys.argv[1:]:
    for name in [n for n in sys.modules if n.startswith("conversations")]:
        del sys.modules[name]
    importlib.import_module("conversations.dialogs." + module)
    loaded = sorted(n.rsplit(".", 1)[1] for n in sys.modules if n.startswith("conversations.dialogs."))
    assert set(loaded) <= {module, "report"}, (module, loaded)
"""


def test_each_dialog_module_imports_on_its_own():
    subprocess.run([sys.executable, "-c", IMPORT_ALONE, *MODULES], check=True, cwd=DIALOGS_DIR.parent.parent, timeout=120)


def test_the_engine_registry_has_every_dialog_and_view(demo):
    engine = Engine(demo)
    assert {"language", "report", "lookup", "rate", "grid", "patrol", "action", "feedback", "profile"} <= set(engine.dialogs)
    assert {"menu", "case", "staff_card", "desk", "deep_link"} <= set(engine.router.views)
    assert sum(len(r.dialogs) for r in FEATURE_ROUTERS) == len({k for r in FEATURE_ROUTERS for k in r.dialogs})


def test_two_features_cannot_claim_one_name():
    from conversations.dialogs.report import ReportDialog
    from conversations.router import Router

    first, second = Router(), Router()
    first.add_dialogs(ReportDialog)
    second.add_dialogs(ReportDialog)
    with pytest.raises(ValueError, match="report"):
        first.include(second)
