"""The package's shape, as the house rules state it: every module of ``obs_mindflow/`` at most 450 lines, and data
flowing one way — no two modules import each other (at run time, inside functions or under ``TYPE_CHECKING``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "obs_mindflow"
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)
MAX_LINES = 450


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every ``obs_mindflow`` module ``path`` imports, wherever the import statement is."""
    here = _name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    known = {_name(p) for p in MODULES}
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("obs_mindflow"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            if not base.startswith("obs_mindflow"):
                continue
            for a in node.names:          # "from . import status" names a module; "from .x import y" a name in x
                out.add(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base)
    return {m for m in out if m in known and m != here}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_450_lines(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines: split it by job"


def test_no_two_modules_import_each_other():
    graph = {_name(p): _imports(p) for p in MODULES}
    both = sorted({tuple(sorted((a, b))) for a, deps in graph.items() for b in deps
                   if a in graph.get(b, ()) and not (a.startswith(b + ".") or b.startswith(a + "."))})
    assert both == [], f"modules that import each other (one of them must not): {both}"


def test_the_check_sees_relative_imports():
    """The graph is not empty by mistake: the controller's imports are found."""
    deps = _imports(PACKAGE / "obs" / "controller.py")
    assert {"obs_mindflow.obs.status", "obs_mindflow.engine.host", "obs_mindflow.obs.calibration"} <= deps


@pytest.mark.parametrize("module, name, also", [
    ("obs_mindflow.engine.card", "ModelCardError", ValueError),
    ("obs_mindflow.engine.model", "ModelLoadError", RuntimeError),
    ("obs_mindflow.engine.detector", "DetectorError", RuntimeError),
    ("obs_mindflow.engine.frames", "FrameError", ValueError),
    ("obs_mindflow.engine.baseline", "BaselineError", ValueError),
    ("obs_mindflow.engine.session.stats", "StatsStateError", ValueError),
    ("obs_mindflow.engine.video", "VideoError", Exception),
    ("obs_mindflow.engine.video", "CalibrationRefused", Exception),
    ("obs_mindflow.engine.reports.storage", "ReportError", Exception),
    ("obs_mindflow.engine.reports.history", "HistoryError", Exception),
    ("obs_mindflow.overlay.server", "OverlayError", RuntimeError),
    ("obs_mindflow.overlay.dock", "DockTokenError", ValueError),
    ("obs_mindflow.camera", "CameraError", Exception),
    ("obs_mindflow.cli", "InputError", Exception),
])
def test_mindflow_s_errors_share_one_base(module, name, also):
    """Callers that show the message and go on (the panel, a batch) catch MindFlowError; the old bases stay, so
    code catching ValueError or RuntimeError still does."""
    import importlib

    from obs_mindflow.errors import MindFlowError

    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, MindFlowError) and issubclass(cls, also)
