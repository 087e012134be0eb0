"""A session's data files: ``summary.json`` and ``timeline.csv``, and the step that writes a whole report folder.

Every writer is given the session's :class:`~obs_mindflow.engine.session.facts.ReportFacts` (worked out once when
the session ends); :class:`FinishedSession` is what finishing (or recovering) a session gives back. The page itself
is :mod:`.html`'s.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ... import __version__
from ...i18n import words
from ..session.events import Event
from ..session.facts import ReportFacts
from ..session.snapshot import StatsSnapshot
from ..session.summary import format_summary
from .html import render_html
from .storage import (HTML_FILE, MARKER_FILE, SCHEMA_VERSION, STATE_FILE, SUMMARY_FILE, TIMELINE_FILE, ReportError,
                      atomic_write, fsync_dir, iso)


@dataclass(frozen=True)
class FinishedSession:
    """The outcome of :meth:`SessionRecorder.finish` or :func:`recover_unfinished`.

    ``folder``: the session folder (``None`` when no result was ever recorded, the recorder writes no files, or the
    folder could never be created); ``summary_text``: the block for the script log (it mentions any error);
    ``snapshot``: the final statistics (``None`` only for an unrecoverable folder); ``error``: the
    :class:`ReportError` when the files could not be written, else ``None``; ``recovered``: finalised from a
    checkpoint after an unclean exit; ``events``: what ending the session raised (a moment still running ends:
    ``moment_ended``) — the live host may publish them; ``history_note``: what happened to the history row
    (``""``: written, or no history for this session; else the sentence that is also in the summary text).
    """

    folder: Path | None
    summary_text: str
    snapshot: StatsSnapshot | None
    error: ReportError | None = None
    recovered: bool = False
    events: tuple[Event, ...] = ()
    history_note: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


def moments_doc(facts: ReportFacts) -> list[dict[str, Any]]:
    """``summary.json``'s ``"moments"``: every moment, ranked (``rank`` 1 = best), with media times."""
    info = facts.info
    assert info is not None
    out = []
    for i, m in enumerate(facts.moments, 1):
        out.append({"rank": i, **m.to_dict(), "start": facts.media_clock(m.start_s),
                    "end": facts.media_clock(m.end_s), "media_start_s": round(info.media(m.start_s), 3),
                    "media_end_s": round(info.media(m.end_s), 3), "at": iso(info.wall(m.start_s))})
    return out


def build_summary(facts: ReportFacts, summary_text: str) -> dict[str, Any]:
    """The ``summary.json`` document (``"schema_version": 1``; ``moments``, ``chapters``, ``media`` and
    ``mindflow_version`` added without a version change: readers of version 1 ignore them). ``summary_text`` and
    ``disclaimer`` are in the session's language (``info.language``); every other field, the definitions included,
    is as it always was."""
    snapshot, info = facts.snapshot, facts.info
    assert info is not None
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "mindflow-session-summary",
        "mindflow_version": __version__,
        "model": info.model,
        "labels": list(info.labels),
        "negative_labels": list(info.negative_labels),
        "started_at": iso(info.started_at),
        "ended_at": iso(info.wall(snapshot.duration_s)),
        "source": info.source,
        "recovered": info.recovered,
        "stats": snapshot.to_dict(),
        "uncertain_share": snapshot.uncertain_share,
        "calibration": dict(info.calibration),
        "definitions": {
            "coverage": "share of the analysed time with a face visible (readable or uncertain)",
            "shares": "share of the time with a readable face, per displayed emotion",
            "negative_share": "share of the time with a readable face showing a negative emotion "
                              "(negative_labels); uncertain time is not in it",
            "uncertain_share": "share of the face-visible time when the face could not be read (low or split "
                               "confidence, too small, blurred)",
        },
        "top_negative_segments": [
            {**g.to_dict(), "start": iso(info.wall(g.start_s)), "end": iso(info.wall(g.end_s))}
            for g in facts.segments],
        "nudges": [{"time_s": n.time_s, "timestamp": n.timestamp, "negative_share": n.data.get("negative_share"),
                    "message": n.message, "at": iso(info.wall(n.time_s))} for n in info.nudges],
        "media": {"clock": "session" if info.media_offset_s is None else "video",
                  "offset_s": info.media_offset_s or 0.0,
                  "note": ("times are seconds since the session's first result" if info.media_offset_s is None else
                           "session time = video time - offset_s (the first analysed frame's video time)")},
        "moments": moments_doc(facts),
        "chapters": facts.chapters.to_dict(),
        "summary_text": summary_text,
        "disclaimer": words(info.language)("report.disclaimer"),
        "files": {"timeline": TIMELINE_FILE, "html": HTML_FILE},
    }


def render_timeline_csv(facts: ReportFacts) -> str:
    """``timeline.csv``: a header, then one row per timeline bin.

    Columns: ``time`` (ISO wall time of the bin start), ``seconds_since_start``, ``bin_seconds`` (the last bin may be
    shorter), ``share_<label>`` per label (share of the bin's face-visible time, 0..1), ``face_seconds``,
    ``uncertain_seconds``, ``no_face_seconds``, ``not_analysed_seconds``, ``negative_share`` (0..1), ``dominant``,
    ``elapsed`` (``HH:MM:SS`` of the bin start: since the start, or the video's own time for a file) and
    ``video_seconds`` (a file: the video time of the bin start = ``seconds_since_start`` + the offset of the first
    analysed frame; empty for a live session). Shares, negative share and dominant are of readable-face time, empty
    when no readable face was seen in the bin.
    """
    snapshot, info = facts.snapshot, facts.info
    assert info is not None
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["time", "seconds_since_start", "bin_seconds", *(f"share_{lab}" for lab in snapshot.labels),
                "face_seconds", "uncertain_seconds", "no_face_seconds", "not_analysed_seconds", "negative_share",
                "dominant", "elapsed", "video_seconds"])
    video = info.media_offset_s is not None
    for b in snapshot.timeline_bins():
        has_face = b.negative_share is not None
        w.writerow([iso(info.wall(b.start_s)), f"{b.start_s:.3f}", f"{b.width_s:.3f}",
                    *((f"{s:.4f}" if has_face else "") for s in b.shares),
                    f"{b.face_s:.3f}", f"{b.uncertain_s:.3f}", f"{b.no_face_s:.3f}", f"{b.not_analysed_s:.3f}",
                    f"{b.negative_share:.4f}" if b.negative_share is not None else "", b.dominant,
                    facts.media_clock(b.start_s), f"{info.media(b.start_s):.3f}" if video else ""])
    return out.getvalue()


def write_report(folder: str | Path, facts: ReportFacts, summary_text: str | None = None) -> str:
    """Write ``timeline.csv``, ``report.html`` and, last, ``summary.json`` into ``folder`` (each atomically).
    Returns the summary text (``None``: :func:`format_summary`'s). Raises ``OSError``."""
    folder = Path(folder)
    if summary_text is None:
        summary_text = format_summary(facts)
    atomic_write(folder / TIMELINE_FILE, render_timeline_csv(facts))
    atomic_write(folder / HTML_FILE, render_html(facts, summary_text))
    doc = build_summary(facts, summary_text)
    atomic_write(folder / SUMMARY_FILE, summary_json(doc))
    return summary_text


def finalise_folder(folder: Path, facts: ReportFacts, summary_text: str) -> None:
    """The final report files, then the session's checkpoint files removed: the folder reads as finished.
    Raises ``OSError``."""
    write_report(folder, facts, summary_text)
    for name in (MARKER_FILE, STATE_FILE):
        try:
            os.unlink(folder / name)
        except FileNotFoundError:
            pass
    fsync_dir(folder)


def summary_json(doc: dict[str, Any]) -> str:
    """Indented JSON, with the timeline one compact row per line (readable, and fast: the C encoder does the
    rows, which are most of the file)."""
    timeline = doc.get("stats", {}).get("timeline")
    if not timeline:
        return json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False)
    placeholder = "\x00mindflow-timeline-rows\x00"
    rows = timeline["rows"]
    doc = {**doc, "stats": {**doc["stats"], "timeline": {**timeline, "rows": placeholder}}}
    text = json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False)
    marker = json.dumps(placeholder, ensure_ascii=False)
    assert text.count(marker) == 1
    body = ",\n".join(json.dumps(r, separators=(",", ":"), allow_nan=False) for r in rows)
    return text.replace(marker, f"[\n{body}\n]" if rows else "[]")

