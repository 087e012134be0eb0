"""The panel's buttons that write or open files: "Write report now", "Open last report", "Open the history page",
"Open report folder", and "Add overlay as a Browser source". Each takes the load's state (``self``: the few things
:class:`Files` names, which the controller has) and runs on OBS's UI thread; what happened goes to its ``notice``
or its problems (the panel). Part of the OBS adapter (imports obspython through :mod:`.sources`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..engine.reports.storage import ReportError
from ..i18n import Said, say
from . import sources
from .desktop import open_folder
from .language import ui_words

if TYPE_CHECKING:
    from ..engine.host import SessionHost
    from ..overlay.server import OverlayServer
    from .lastsessions import LastSessions
    from .scriptlog import ScriptLog
    from .settings import Settings


class Files(Protocol):
    """What the buttons read and write: the engine, the settings, the overlay server, the last sessions, the last
    report, the panel's notice and problems, the log."""

    host: SessionHost | None
    settings: Settings
    overlay: OverlayServer | None
    last_sessions: LastSessions
    last_report: Path | None
    notice: str
    log: ScriptLog

    def set_problem(self, area: str, message: str) -> None: ...


def write_report_now(self: Files) -> None:
    if self.host is None:
        self.set_problem("report", Said("problem.report_no_model"))
        return
    try:
        path = self.host.write_report_now()
    except (RuntimeError, ReportError, OSError) as exc:
        self.set_problem("report", Said.of(exc))
    else:
        self.set_problem("report", "")
        rec = self.host.recorder
        if rec is not None:
            rec.min_report_s = 0.0     # asked for: this session keeps its report however short it is
        self.last_report = path
        self.notice = Said("notice.report_written", path=path)
        self.log.info(f"MindFlow: {say(self.notice, ui_words())}")


def open_report_folder(self: Files) -> None:
    problem = open_folder(self.settings.report_root())
    self.set_problem("report folder", problem)


def open_last_report(self: Files) -> None:
    _open_file(self, self.last_report, "report")


def open_history(self: Files) -> None:
    self.last_sessions.refresh(self.settings.report_root())
    _open_file(self, self.last_sessions.page, "history")


def _open_file(self: Files, path: Path | None, what: str) -> None:
    if path is None or not path.is_file():
        self.notice = Said(f"notice.nothing_to_open_{what}") if path is None else Said(f"notice.gone_{what}", path=path)
        return
    self.notice = ""
    self.set_problem("report folder", open_folder(path))


def add_overlay_source(self: Files) -> str:
    if self.overlay is None:
        msg = Said("notice.tick_overlay")
    else:
        msg = sources.add_browser_source(self.overlay.url)
    self.notice = msg
    self.log.info(f"MindFlow overlay: {say(msg, ui_words())}")
    return msg
