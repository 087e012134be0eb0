"""The last sessions' negative share for the panel: "Last sessions: 28 Nov 20:15 — 12 % negative, 1 h 02 min; …",
newest first, from the history database under the report folder (``engine/reports/history.py``).

Pure Python (no obspython, no numpy): read on OBS's UI thread at load, when the report folder changes and when a
session ends — a quick SQLite read. A history that cannot be read makes the panel say so; nothing else depends on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..engine.formatting import format_duration, format_percent
from ..i18n import Joined, Said, Words, words
from ..engine.reports.history import History, HistoryError, HistoryRow
from ..engine.reports.storage import HISTORY_DB, HISTORY_HTML

SHOWN = 4          # sessions named in the panel (the newest)


def describe_row(row: HistoryRow, w: Words | None = None) -> str:
    """``28 Nov 20:15 — 12 % negative, 1 h 02 min`` (local time; "no face" when none was readable), in ``w``'s
    language (English without)."""
    w = w or words("")
    start = row.started_at.astimezone()
    when = w("history.when", day=start.day, month=w("history.months_short").split(",")[start.month - 1],
             time=f"{start:%H:%M}")
    share = (w("history.no_face") if row.negative_share is None else
             w("history.negative", share=format_percent(row.negative_share)))
    return w("history.row_recovered" if row.recovered else "history.row", when=when, share=share,
             duration=format_duration(row.duration_s, w))


def describe(rows: Iterable[HistoryRow], shown: int = SHOWN, w: Words | None = None) -> str:
    """The panel's line for ``rows`` (oldest first, as :meth:`History.rows` gives them): the newest ``shown``."""
    rows = list(rows)
    if not rows:
        return ""
    w = w or words("")
    newest = "; ".join(describe_row(r, w) for r in reversed(rows[-shown:]))
    if len(rows) > shown:
        return w("history.last_sessions_more", sessions=newest, count=len(rows))
    return w("history.last_sessions", sessions=newest)


@dataclass
class LastSessions:
    """What the panel shows about the history: ``text`` (the line, ``""`` when no session is recorded yet),
    ``problem`` (why the history could not be read, ``""`` when it could) and ``page`` (history.html, when it
    exists)."""

    text: str = ""
    problem: str = ""
    page: Path | None = None
    newest: HistoryRow | None = None
    root: Path | None = None
    words: Words | None = None          # the panel's language (English without)

    def last_session(self) -> tuple[str, Path | None]:
        """The newest session as the panel's "Last session" line and its report (``None`` when gone): what a
        reload shows until its own first session ends (it showed nothing, as if no session had ever run)."""
        row, root = self.newest, self.root
        if row is None or root is None:
            return "", None
        report = root / row.report / "report.html"
        if not report.is_file():
            return "", None
        w = self.words or words("")
        return f"{describe_row(row, w)}; {w('result.report', path=report)}", report

    def refresh(self, root: Path, w: Words | None = None) -> None:
        """Read the history under ``root``, to be shown in ``w``'s language. Never raises; does not create a history
        where there is none yet."""
        self.text, self.problem, self.page, self.newest, self.root, self.words = "", "", None, None, root, w
        try:
            if not (root / HISTORY_DB).is_file():
                return
            with History.open(root) as history:
                rows = history.rows()
                notes = list(history.notes)
        except HistoryError as exc:
            self.problem = Said.of(exc)
            return
        except Exception as exc:  # noqa: BLE001 - a broken history must not break the panel
            self.problem = Said("problem.history_unreadable", root=root, detail=f"{type(exc).__name__}: {exc}")
            return
        self.text = describe(rows, w=w)
        self.newest = rows[-1] if rows else None
        if notes:
            self.problem = Joined(notes, " ")
        page = root / HISTORY_HTML
        self.page = page if page.is_file() else None
