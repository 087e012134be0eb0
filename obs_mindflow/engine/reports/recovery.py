"""Crash recovery: session folders an earlier run left ``UNFINISHED`` (OBS crashed, the machine lost power) are
finalised from their last checkpoint, so no session is lost: the report (with the moments kept in the checkpoint;
one still running then ends at the checkpoint) and the session's row in the history."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Callable

from ..session.events import NUDGE
from ..session.session import Session
from ..session.stats import StatsStateError
from ..session.facts import ReportFacts, SessionInfo
from ..session.summary import format_summary
from .files import FinishedSession, finalise_folder
from .history_page import record_session
from .storage import (HTML_FILE, MARKER_FILE, SCHEMA_VERSION, STATE_FILE, UNRECOVERABLE_FILE, ReportError,
                      is_live_here, marker_says_alive)


def _recover_one(folder: Path, history: bool = True) -> FinishedSession:
    for tmp in folder.glob(".*.tmp"):
        try:
            tmp.unlink()
        except OSError:
            pass
    state_path = folder / STATE_FILE
    try:
        doc = json.loads(state_path.read_bytes())
        if not isinstance(doc, dict) or doc.get("schema_version") != SCHEMA_VERSION:
            raise StatsStateError(f"unknown checkpoint schema {doc.get('schema_version') if isinstance(doc, dict) else doc!r}")
        session = Session.from_state(doc)
        started_at = session.started_at
        info = SessionInfo(session.model, session.labels, session.negative_labels, started_at, session.source, True,
                           session.events(NUDGE), session.calibration, moments=session.moments(),
                           media_offset_s=session.media_offset_s, history_link=history,
                           language=str(doc.get("language") or ""))      # the report's, as the session began
    except FileNotFoundError:
        leftovers = [p for p in folder.iterdir() if p.name != MARKER_FILE]
        if not leftovers:  # crashed before the first checkpoint: nothing worth keeping
            try:
                (folder / MARKER_FILE).unlink()
                folder.rmdir()
            except OSError:
                pass
        msg = f"MindFlow: the interrupted session in {folder} had no checkpoint yet; nothing to recover."
        return FinishedSession(folder=None if not leftovers else folder, summary_text=msg, snapshot=None,
                               recovered=True)
    except (OSError, ValueError, KeyError, TypeError, StatsStateError) as exc:
        msg = (f"MindFlow could not recover the interrupted session in {folder}: its checkpoint {state_path.name} is "
               f"unreadable ({exc}). The folder is kept and marked {UNRECOVERABLE_FILE}; delete it if you do not need it.")
        try:
            os.replace(folder / MARKER_FILE, folder / UNRECOVERABLE_FILE)
        except OSError:
            pass
        return FinishedSession(folder=folder, summary_text=msg, snapshot=None,
                               error=ReportError(msg, folder), recovered=True)
    snap = session.snapshot()
    facts = ReportFacts.of(snap, info)
    text = format_summary(facts)
    try:
        finalise_folder(folder, facts, text)
    except OSError as exc:
        err = ReportError.from_os_error(exc, folder, during="report")
        return FinishedSession(folder=folder, summary_text=f"{text}\nReport NOT saved: {err}", snapshot=snap,
                               error=err, recovered=True)
    text = f"{text}\nReport: {folder / HTML_FILE}"
    note = record_session(folder.parent, folder, facts) if history else ""
    if note:
        text += f"\n{note}"
    return FinishedSession(folder=folder, summary_text=text, snapshot=snap, recovered=True, history_note=note)


def recover_unfinished(report_root: str | Path, *, history: bool = True) -> list[FinishedSession]:
    """Finalise every session folder under ``report_root`` still marked ``UNFINISHED`` (OBS crashed, the machine
    lost power) from its last checkpoint: writes the three report files (the summary says it was recovered) and
    marks the folder finished. Folders of a recorder still running — in this process, or in another live process
    on this machine — are left alone. Each recovered session gets its row in the history under ``report_root``
    (unless ``history`` is False). Never raises for I/O; problems are in each result's ``error``."""
    root = Path(report_root).expanduser()
    if not root.is_dir():
        return []
    out: list[FinishedSession] = []
    for folder in sorted(root.iterdir()):
        marker = folder / MARKER_FILE
        try:
            if not folder.is_dir() or not marker.is_file():
                continue
        except OSError:
            continue
        if is_live_here(folder) or marker_says_alive(marker):
            continue
        out.append(_recover_one(folder, history))
    return out


def recover_sessions(report_root: Path, log: Callable[[int, str], None]) -> int:
    """Finalise sessions an earlier crash left unfinished under ``report_root`` and log each summary with
    ``log(level, text)`` (``logging`` levels). Returns how many folders were handled. Never raises."""
    try:
        done = recover_unfinished(report_root)
    except Exception as exc:  # noqa: BLE001 - recovery must never stop the script from loading
        log(logging.WARNING, f"MindFlow: could not look for unfinished sessions in {report_root}: {exc}")
        return 0
    for f in done:
        log(logging.WARNING if f.error else logging.INFO,
            f"MindFlow: finalised a session that an earlier OBS run left unfinished ({f.folder}):")
        for line in f.summary_text.splitlines():
            log(logging.INFO, line)
    return len(done)
