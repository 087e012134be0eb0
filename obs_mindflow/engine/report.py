"""End-of-session reports: one folder per session with ``summary.json``, ``timeline.csv`` and ``report.html``.

Folder layout (under a configurable root, :func:`default_report_dir` by default)::

    <root>/2026-11-24T20-15-03/      the session's local start time, filesystem-safe (``-2``, ``-3`` … on a clash)
        UNFINISHED                   marker while the session runs (JSON: pid, host, start); removed when finished
        state.json                   the last checkpoint (everything needed to rebuild the statistics)
        summary.json                 written once at the end: ``"schema_version": 1``, model, labels, times, stats
        timeline.csv                 one row per timeline bin
        report.html                  self-contained page (inline CSS and SVG; no script, no network)

Every file is written atomically (temporary file in the same folder, fsync, ``os.replace``), so a crash or a power
cut leaves either the previous or the new version, never a torn one. The next session calls
:func:`recover_unfinished` to finalise folders still marked unfinished from their last checkpoint.

Wall-clock times: a session has a ``started_at`` (aware datetime, the wall time of its **first result**); a result's
wall time is ``started_at`` plus its offset from the first result's timestamp, in seconds. The wall clock is never
read to measure durations.

I/O errors never reach the engine or OBS: see :class:`ReportError` and :class:`SessionRecorder`.
This module needs numpy and the standard library only.
"""

from __future__ import annotations

import csv
import errno as _errno
import html
import io
import json
import logging
import math
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .stats import (DISCLAIMER, Nudge, NudgeMonitor, SessionStats, StatsSnapshot, StatsStateError, format_clock,
                    format_duration, format_summary, top_negative_segments)

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
SUMMARY_FILE = "summary.json"
TIMELINE_FILE = "timeline.csv"
HTML_FILE = "report.html"
STATE_FILE = "state.json"
MARKER_FILE = "UNFINISHED"
UNRECOVERABLE_FILE = "UNRECOVERABLE"
FOLDER_TIME_FORMAT = "%Y-%m-%dT%H-%M-%S"
MAX_KEPT_NUDGES = 100


# --------------------------------------------------------------------------------------------------------------------
# Errors and small helpers
# --------------------------------------------------------------------------------------------------------------------

class ReportError(Exception):
    """A session report or checkpoint could not be written (unwritable folder, a file in the way, a full disk…).

    The message names the folder, the cause and what to do. ``folder`` is the folder concerned; ``errno`` the OS
    error number (``errno.ENOSPC`` for a full disk) or ``None``. :class:`SessionRecorder` never raises it from
    ``add()`` or ``finish()``: it keeps the statistics in memory, retries at the next checkpoint, and ``finish()``
    returns it in :attr:`FinishedSession.error` (and says so in the summary text).
    """

    def __init__(self, message: str, folder: Path, errno: int | None = None) -> None:
        super().__init__(message)
        self.folder = folder
        self.errno = errno

    @classmethod
    def from_os_error(cls, exc: OSError, folder: Path, *, during: str) -> "ReportError":
        code = exc.errno
        if code in (_errno.ENOSPC, getattr(_errno, "EDQUOT", -1)):
            why = "the disk is full (no space left on device)"
            fix = "free some disk space or choose a report folder on another drive in the MindFlow settings"
        elif code in (_errno.EACCES, _errno.EPERM, _errno.EROFS):
            why = "the folder is not writable (permission denied or read-only)"
            fix = ("choose a writable report folder in the MindFlow settings (the default is ~/Documents/MindFlow) "
                   "or fix the folder's permissions")
        elif code in (_errno.ENOTDIR, _errno.EEXIST):
            why = "a file is in the way where a folder should be"
            fix = "move that file away or choose another report folder in the MindFlow settings"
        else:
            why = exc.strerror or str(exc)
            fix = "check the drive and the folder, or choose another report folder in the MindFlow settings"
        then = ("MindFlow keeps the statistics in memory and retries at the next checkpoint."
                if during == "checkpoint" else
                "The session summary is still shown in the script log; nothing else was lost from memory.")
        where = exc.filename or folder
        msg = f"MindFlow could not write the session {during} in {folder}: {why} ({where}). To fix: {fix}. {then}"
        return cls(msg, Path(folder), code)


def default_report_dir() -> Path:
    """Where reports go by default: ``~/Documents/MindFlow`` when ``~/Documents`` exists, else ``~/MindFlow``
    (the same rule on Windows, macOS and Linux)."""
    home = Path.home()
    docs = home / "Documents"
    return docs / "MindFlow" if docs.is_dir() else home / "MindFlow"


def _aware(dt: datetime) -> datetime:
    """An aware datetime; a naive one is taken as local time."""
    return dt if dt.tzinfo is not None and dt.utcoffset() is not None else dt.astimezone()


def session_folder_name(started_at: datetime) -> str:
    """``2026-11-24T20-15-03``: the local start time, safe on every filesystem (no ``:``)."""
    return _aware(started_at).strftime(FOLDER_TIME_FORMAT)


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds")


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd`` (tests replace this to simulate a full disk)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _fsync_dir(folder: Path) -> None:
    if os.name == "nt":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, fsync, then ``os.replace``.

    Raises ``OSError`` (the temporary file is removed); a reader sees either the old or the new file, never a torn
    one, even when the process is killed mid-write.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o644)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        for attempt in range(5):
            try:
                os.replace(tmp, path)
                break
            except PermissionError:          # Windows: a reader (antivirus, indexer) holds the target briefly
                if os.name != "nt" or attempt == 4:
                    raise
                threading.Event().wait(0.05 * (attempt + 1))
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if os.name == "nt":  # pragma: no cover - exercised on Windows only
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        ok = kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        kernel32.CloseHandle(handle)
        return bool(ok) and code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


_LIVE_LOCK = threading.Lock()
_LIVE_FOLDERS: set[str] = set()


def _register_live(folder: Path, live: bool) -> None:
    key = os.path.normcase(str(folder.resolve()))
    with _LIVE_LOCK:
        (_LIVE_FOLDERS.add if live else _LIVE_FOLDERS.discard)(key)


def _is_live_here(folder: Path) -> bool:
    key = os.path.normcase(str(folder.resolve()))
    with _LIVE_LOCK:
        return key in _LIVE_FOLDERS


# --------------------------------------------------------------------------------------------------------------------
# Report content
# --------------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SessionInfo:
    """What a report says about its session besides the statistics. ``started_at``: aware wall time of the first
    result; ``nudges``: the nudges shown during the session; ``recovered``: rebuilt from a checkpoint."""

    model: str
    labels: tuple[str, ...]
    negative_labels: tuple[str, ...]
    started_at: datetime
    source: str = ""
    recovered: bool = False
    nudges: tuple[Nudge, ...] = ()

    def wall(self, offset_s: float) -> datetime:
        """Wall time of a session offset (seconds since the first result)."""
        return self.started_at + timedelta(seconds=offset_s)


@dataclass(frozen=True)
class FinishedSession:
    """The outcome of :meth:`SessionRecorder.finish` or :func:`recover_unfinished`.

    ``folder``: the session folder (``None`` when no result was ever recorded, or the folder could never be
    created); ``summary_text``: the block for the script log (it mentions any error); ``snapshot``: the final
    statistics (``None`` only for an unrecoverable folder); ``error``: the :class:`ReportError` when the files
    could not be written, else ``None``; ``recovered``: finalised from a checkpoint after an unclean exit.
    """

    folder: Path | None
    summary_text: str
    snapshot: StatsSnapshot | None
    error: ReportError | None = None
    recovered: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def html_path(self) -> Path | None:
        return None if self.folder is None or self.error else self.folder / HTML_FILE


def build_summary(snapshot: StatsSnapshot, info: SessionInfo, summary_text: str) -> dict[str, Any]:
    """The ``summary.json`` document (``"schema_version": 1``)."""
    segs = top_negative_segments(snapshot, 3)
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "mindflow-session-summary",
        "model": info.model,
        "labels": list(info.labels),
        "negative_labels": list(info.negative_labels),
        "started_at": _iso(info.started_at),
        "ended_at": _iso(info.wall(snapshot.duration_s)),
        "source": info.source,
        "recovered": info.recovered,
        "stats": snapshot.to_dict(),
        "top_negative_segments": [
            {**g.to_dict(), "start": _iso(info.wall(g.start_s)), "end": _iso(info.wall(g.end_s))} for g in segs],
        "nudges": [{**n.to_dict(), "at": _iso(info.wall(n.time_s))} for n in info.nudges],
        "summary_text": summary_text,
        "disclaimer": DISCLAIMER,
        "files": {"timeline": TIMELINE_FILE, "html": HTML_FILE},
    }


def render_timeline_csv(snapshot: StatsSnapshot, info: SessionInfo) -> str:
    """``timeline.csv``: a header, then one row per timeline bin.

    Columns: ``time`` (ISO wall time of the bin start), ``seconds_since_start``, ``bin_seconds`` (the last bin may be
    shorter), ``share_<label>`` per label (share of the bin's face-visible time, 0..1), ``face_seconds``,
    ``no_face_seconds``, ``not_analysed_seconds``, ``negative_share`` (0..1) and ``dominant``. Shares, negative
    share and dominant are empty when no face was visible in the bin.
    """
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["time", "seconds_since_start", "bin_seconds", *(f"share_{lab}" for lab in snapshot.labels),
                "face_seconds", "no_face_seconds", "not_analysed_seconds", "negative_share", "dominant"])
    for b in snapshot.timeline_bins():
        has_face = b.face_s > 0
        w.writerow([_iso(info.wall(b.start_s)), f"{b.start_s:.3f}", f"{b.width_s:.3f}",
                    *((f"{s:.4f}" if has_face else "") for s in b.shares),
                    f"{b.face_s:.3f}", f"{b.no_face_s:.3f}", f"{b.not_analysed_s:.3f}",
                    f"{b.negative_share:.4f}" if b.negative_share is not None else "", b.dominant])
    return out.getvalue()


# ---------------------------------------------------------------- HTML

_EMOTION_COLOURS = {
    "happy": "#f2b134", "happiness": "#f2b134", "joy": "#f2b134",
    "neutral": "#9aa5b1", "calm": "#9aa5b1",
    "sad": "#4a7fc1", "sadness": "#4a7fc1",
    "angry": "#d64545", "anger": "#d64545",
    "fear": "#8e6bbf", "fearful": "#8e6bbf", "scared": "#8e6bbf",
    "surprise": "#2bb3a3", "surprised": "#2bb3a3",
    "disgust": "#6b8e23", "disgusted": "#6b8e23",
    "contempt": "#a0522d",
}
_FALLBACK_COLOURS = ("#e07a5f", "#3d5a80", "#81b29a", "#c98bb9", "#f4a259", "#5c946e", "#b56576", "#6d597a")
NEGATIVE_FILL = "#f6c4bd"      # area of the negative share over time (opaque: tests look for it in screenshots)
NEGATIVE_LINE = "#b42318"      # its moving-average line
NO_FACE_COLOUR = "#d5d9e0"
NOT_ANALYSED_COLOUR = "#eef0f4"


def label_colours(labels: Sequence[str]) -> dict[str, str]:
    """A stable colour per label: familiar colours for the usual emotion names, a palette for the rest."""
    out: dict[str, str] = {}
    spare = iter(_FALLBACK_COLOURS * (1 + len(labels) // len(_FALLBACK_COLOURS)))
    for lab in labels:
        c = _EMOTION_COLOURS.get(lab.strip().lower())
        out[lab] = c if c is not None and c not in out.values() else next(spare)
    return out


def _e(s: Any) -> str:
    return html.escape(str(s), quote=True)


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def _nice_tick_minutes(span_s: float, max_ticks: int = 9) -> int:
    for m in (1, 2, 5, 10, 15, 20, 30, 60, 120, 180, 240, 360, 720, 1440):
        if span_s / (60 * m) <= max_ticks:
            return m
    return 1440 * max(1, math.ceil(span_s / (86400 * max_ticks)))


def _profile_svg(snapshot: StatsSnapshot, colours: dict[str, str]) -> str:
    prof = snapshot.profile()
    width, left, right, row, top = 952, 130, 90, 40, 10
    height = top + row * len(prof) + 26
    top_share = max((s for _, s in prof), default=0.0)
    scale_max = min(1.0, max(0.1, math.ceil(top_share * 10 - 1e-9) / 10))
    plot_w = width - left - right
    parts = [f'<svg class="chart" id="profile-chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
             f'aria-label="Emotion profile: share of face-visible time per emotion">']
    for g in range(0, 11):
        v = g / 10
        if v > scale_max + 1e-9:
            break
        x = left + plot_w * v / scale_max
        parts.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 20}" class="grid"/>')
        parts.append(f'<text x="{x:.1f}" y="{height - 4}" text-anchor="middle" class="tick">{g * 10} %</text>')
    for i, (lab, share) in enumerate(prof):
        y = top + i * row
        w = plot_w * share / scale_max
        neg = lab in snapshot.negative_labels
        parts.append(f'<text x="{left - 14}" y="{y + 22}" text-anchor="end" class="lab">{_e(lab)}</text>')
        parts.append(f'<rect x="{left}" y="{y + 6}" width="{max(w, 0.0):.1f}" height="{row - 14}" rx="5" '
                     f'fill="{colours[lab]}" data-label="{_e(lab)}"/>')
        tag = ' <tspan class="negtag">negative</tspan>' if neg else ""
        parts.append(f'<text x="{left + w + 10:.1f}" y="{y + 22}" class="val">{_e(_pct(share))}{tag}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _group_timeline(snapshot: StatsSnapshot, max_points: int = 240) -> tuple[float, np.ndarray]:
    """Aggregate timeline bins so that at most ``max_points`` remain. Returns (group width s, rows)."""
    tl = snapshot.timeline if snapshot.timeline is not None else np.zeros((0, len(snapshot.labels) + 2))
    per = max(1, math.ceil(len(tl) / max_points))
    m = -(-len(tl) // per)
    pad = np.zeros((m * per - len(tl), tl.shape[1]))
    grouped = np.concatenate([tl, pad]).reshape(m, per, tl.shape[1]).sum(axis=1) if m else tl
    return per * snapshot.bin_seconds, grouped


def _average_groups(group_s: float) -> int:
    """Groups in the moving average of the timeline chart: about 5 minutes, and at least 5 groups."""
    return max(5, int(round(300.0 / group_s)))


def _span_phrase(seconds: float, adjective: bool = True) -> str:
    """``"20-second"``, ``"3-minute"``, ``"1.5-hour"`` (or ``"20 s"`` … with ``adjective=False``)."""
    for unit, size, short in (("hour", 3600, "h"), ("minute", 60, "min"), ("second", 1, "s")):
        if seconds >= size and (seconds / size) * 2 == round(seconds / size * 2):
            n = f"{seconds / size:g}"
            return f"{n}-{unit}" if adjective else f"{n} {short}"
    return format_duration(seconds)


def _timeline_svg(snapshot: StatsSnapshot, info: SessionInfo, colours: dict[str, str]) -> str:
    left, right, top, plot_h, width = 58, 16, 14, 200, 952
    strip_y, strip_h = top + plot_h + 12, 22
    axis_y = strip_y + strip_h + 20
    height = axis_y + 8
    plot_w = width - left - right
    dur = max(snapshot.duration_s, 1e-9)
    c = len(snapshot.labels)
    gw, rows = _group_timeline(snapshot)
    neg_mask = np.array([lab in snapshot.negative_labels for lab in snapshot.labels], bool)

    def x_of(t: float) -> float:
        return left + plot_w * min(max(t / dur, 0.0), 1.0)

    def y_of(share: float) -> float:
        return top + plot_h * (1.0 - share)

    parts = [f'<svg class="chart" id="negative-chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
             f'aria-label="Share of negative expressions over time">']
    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = y_of(v)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" class="tick">{int(v * 100)} %</text>')
    # step area of the per-group negative share (gaps where too little face was visible)
    face = rows[:, :c].sum(axis=1) if len(rows) else np.zeros(0)
    neg = rows[:, :c][:, neg_mask].sum(axis=1) if len(rows) else np.zeros(0)
    span = np.minimum(gw, np.maximum(dur - np.arange(len(rows)) * gw, 0.0))
    valid = (face > 0) & (face >= 0.1 * np.maximum(span, 1e-9))
    run: list[str] = []

    def flush() -> None:
        if run:
            parts.append(f'<path d="{" ".join(run)} Z" fill="{NEGATIVE_FILL}" class="neg-area"/>')
            run.clear()

    for i in range(len(rows)):
        x0, x1 = x_of(i * gw), x_of(i * gw + span[i])
        if not valid[i]:
            flush()
            continue
        y = y_of(neg[i] / face[i])
        if not run:
            run.append(f"M{x0:.1f},{y_of(0):.1f}")
        run.append(f"L{x0:.1f},{y:.1f} L{x1:.1f},{y:.1f}")
        if i + 1 == len(rows) or not valid[i + 1]:
            run.append(f"L{x1:.1f},{y_of(0):.1f}")
            flush()
    # centred moving average over _average_groups() groups, drawn as a line
    k = _average_groups(gw)
    if len(rows):
        cf, cn = np.concatenate([[0], np.cumsum(face)]), np.concatenate([[0], np.cumsum(neg)])
        pts: list[str] = []
        for i in range(len(rows)):
            a = max(0, i - k // 2)
            b = min(len(rows), i - k // 2 + k)
            f, nsum = cf[b] - cf[a], cn[b] - cn[a]
            if f > 0 and f >= 0.1 * (min(b * gw, dur) - a * gw):
                pts.append(f"{'L' if pts else 'M'}{x_of(i * gw + span[i] / 2):.1f},{y_of(nsum / f):.1f}")
            elif len(pts) > 1:
                parts.append(f'<path d="{" ".join(pts)}" fill="none" stroke="{NEGATIVE_LINE}" class="avg"/>')
                pts = []
            else:
                pts = []
        if len(pts) > 1:
            parts.append(f'<path d="{" ".join(pts)}" fill="none" stroke="{NEGATIVE_LINE}" class="avg"/>')
    # dominant-emotion strip (no face / not analysed in grey)
    for i in range(len(rows)):
        x0, x1 = x_of(i * gw), x_of(i * gw + span[i])
        fv, nf, na = face[i], rows[i, c], rows[i, c + 1]
        if fv >= max(nf, na) and fv > 0:
            col = colours[snapshot.labels[int(np.argmax(rows[i, :c]))]]
        else:
            col = NO_FACE_COLOUR if nf >= na else NOT_ANALYSED_COLOUR
        parts.append(f'<rect x="{x0:.2f}" y="{strip_y}" width="{max(x1 - x0, 0.5) + 0.3:.2f}" height="{strip_h}" '
                     f'fill="{col}"/>')
    parts.append(f'<text x="{left - 8}" y="{strip_y + 15}" text-anchor="end" class="tick">dominant</text>')
    # clock-time axis
    step = _nice_tick_minutes(dur) * 60
    start = info.started_at
    local_s = start.timestamp() + (start.utcoffset() or timedelta(0)).total_seconds()
    first = math.ceil(local_s / step) * step - local_s
    t = first
    while t <= dur + 1e-6:
        x = x_of(t)
        parts.append(f'<line x1="{x:.1f}" y1="{top + plot_h}" x2="{x:.1f}" y2="{strip_y + strip_h + 4}" '
                     f'class="tickline"/>')
        parts.append(f'<text x="{x:.1f}" y="{axis_y}" text-anchor="middle" class="tick">'
                     f'{_e(format_clock(t, start))}</text>')
        t += step
    parts.append(f'<line x1="{left}" y1="{y_of(0):.1f}" x2="{width - right}" y2="{y_of(0):.1f}" class="axis"/>')
    parts.append("</svg>")
    return "".join(parts)


_CSS = """
:root{--ink:#1d2433;--muted:#5f6b7a;--bg:#f3f4f7;--card:#fff;--line:#e6e8ee;--accent:#5451d6;--neg:#b42318}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
 font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue","DejaVu Sans",Arial,sans-serif}
.wrap{max-width:1080px;margin:0 auto;padding:28px 40px 40px}
.brand{color:var(--accent);font-weight:700;letter-spacing:.12em;text-transform:uppercase;font-size:12px}
h1{font-size:28px;line-height:1.2;margin:4px 0 6px}
.meta{color:var(--muted);margin:0}
.badge{display:inline-block;background:#fff4e5;color:#8a4b00;border-radius:999px;padding:2px 10px;font-size:12px;
 font-weight:600;margin-left:8px;vertical-align:middle}
.tiles{display:grid;grid-template-columns:repeat(5,1fr);gap:12px;margin:22px 0 6px}
.tile{background:var(--card);border-radius:14px;padding:14px 16px;
 box-shadow:0 1px 2px rgba(16,24,40,.05),0 2px 6px rgba(16,24,40,.06)}
.tile .k{font-size:11.5px;text-transform:uppercase;letter-spacing:.07em;color:var(--muted);font-weight:600}
.tile .v{font-size:26px;font-weight:700;margin-top:2px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.tile .s{font-size:12.5px;color:var(--muted)}
.tile.neg .v{color:var(--neg)}
.card{background:var(--card);border-radius:14px;padding:18px 24px 14px;margin:14px 0;
 box-shadow:0 1px 2px rgba(16,24,40,.05),0 2px 6px rgba(16,24,40,.06)}
h2{font-size:16px;margin:0 0 2px}
.sub{color:var(--muted);font-size:13px;margin:0 0 10px}
svg.chart{display:block;overflow:visible}
svg .grid{stroke:var(--line);stroke-width:1}
svg .axis{stroke:#c3c8d2;stroke-width:1}
svg .tickline{stroke:#c3c8d2;stroke-width:1;stroke-dasharray:2 3}
svg .lab{font-size:14px;fill:var(--ink)}
svg .val{font-size:13px;fill:var(--muted);font-weight:600}
svg .negtag{font-size:11px;fill:var(--neg);font-weight:600}
svg .tick{font-size:11.5px;fill:var(--muted)}
svg .avg{stroke-width:2.5;stroke-linejoin:round;stroke-linecap:round}
.legend{display:flex;flex-wrap:wrap;gap:6px 16px;font-size:12.5px;color:var(--muted);margin:6px 0 2px}
.legend i{display:inline-block;width:11px;height:11px;border-radius:3px;margin-right:6px;vertical-align:-1px}
.legend i.line{height:3px;border-radius:2px;vertical-align:3px;width:16px}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:14px}
.cols .card{margin:0}
ol.segs{margin:4px 0 4px;padding-left:20px}
ol.segs li{margin:3px 0}
ol.segs b{font-variant-numeric:tabular-nums}
.small{font-size:13px;color:var(--muted)}
.note{margin:16px 0 0;padding:12px 16px;border-radius:12px;background:#eef0fb;color:#2f3477;font-size:13.5px}
footer{margin-top:12px;color:var(--muted);font-size:12px}
"""


def render_html(snapshot: StatsSnapshot, info: SessionInfo, summary_text: str = "") -> str:
    """``report.html``: one self-contained page — inline CSS and SVG, no script, no external resource.
    Every string from outside (labels, model, source, messages) is HTML-escaped."""
    s = snapshot
    colours = label_colours(s.labels)
    start = info.started_at
    end = info.wall(s.duration_s)
    span = f"{start.strftime('%H:%M')}–{end.strftime('%H:%M')}"
    date = start.strftime("%A %d %B %Y")
    meta = [date, span, f"model {info.model}"] + ([f"source {info.source}"] if info.source else [])
    ln = s.longest_negative
    tiles = [
        ("Duration", format_duration(s.duration_s), span, ""),
        ("Face visible", _pct(s.coverage), "of analysed time", ""),
        ("Negative", _pct(s.negative_share) if s.face_s > 0 else "–", "of face-visible time", "neg"),
        ("Dominant", s.dominant or "–",
         f"{_pct(s.shares[s.labels.index(s.dominant)])} of face time" if s.dominant else "no face seen", ""),
        ("Longest negative", format_duration(ln.duration_s) if ln and ln.duration_s > 0 else "none",
         (f"{format_clock(ln.start_s, start, seconds=True)}–{format_clock(ln.end_s, start, seconds=True)}"
          if ln and ln.duration_s > 0 else "no negative stretch"), "neg"),
    ]
    tile_html = "".join(
        f'<div class="tile {cls}" data-metric="{_e(k.lower().replace(" ", "-"))}"><div class="k">{_e(k)}</div>'
        f'<div class="v">{_e(v)}</div><div class="s">{_e(sub)}</div></div>' for k, v, sub, cls in tiles)
    legend = "".join(f'<span><i style="background:{colours[lab]}"></i>{_e(lab)}</span>' for lab in s.labels)
    legend += (f'<span><i style="background:{NO_FACE_COLOUR}"></i>no face</span>'
               f'<span><i style="background:{NOT_ANALYSED_COLOUR};border:1px solid #d5d9e0"></i>not analysed</span>')
    segs = top_negative_segments(s, 3)
    if segs:
        seg_html = "<ol class=\"segs\">" + "".join(
            f"<li><b>{_e(format_clock(g.start_s, start))}–{_e(format_clock(g.end_s, start))}</b> · "
            f"{_e(_pct(g.negative_share))} negative</li>" for g in segs) + "</ol>"
    else:
        seg_html = '<p class="small">No 5-minute segment had noticeable negative expressions.</p>'
    if info.nudges:
        nudge_html = "<ol class=\"segs\">" + "".join(
            f"<li><b>{_e(format_clock(n.time_s, start))}</b> · {_e(n.message)}</li>" for n in info.nudges) + "</ol>"
    else:
        nudge_html = '<p class="small">No break nudge during this session.</p>'
    neg_names = ", ".join(s.negative_labels) or "none"
    step_s = _group_timeline(s)[0]
    avg_s = step_s * _average_groups(step_s)
    profile = (_profile_svg(s, colours) if s.face_s > 0
               else '<p class="small">No face was visible, so there is no emotion profile.</p>')
    recovered = '<span class="badge">recovered after an unclean exit</span>' if info.recovered else ""
    changes = (f"{s.label_changes} displayed-label changes ({s.label_changes / (s.duration_s / 60):.1f} per minute)"
               if s.duration_s > 0 else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MindFlow session {_e(start.strftime('%Y-%m-%d %H:%M'))}</title>
<style>{_CSS}</style></head>
<body><div class="wrap">
<header><div class="brand">MindFlow</div>
<h1>Session report{recovered}</h1>
<p class="meta">{' · '.join(_e(m) for m in meta)}</p></header>
<section class="tiles">{tile_html}</section>
<section class="card" id="profile"><h2>Emotion profile</h2>
<p class="sub">Share of face-visible time per displayed emotion. Negative: {_e(neg_names)}.</p>{profile}</section>
<section class="card" id="timeline"><h2>Negative expressions over time</h2>
<p class="sub">Share of face-visible time with a negative emotion, in {_e(_span_phrase(step_s))} steps; the line is
the {_e(_span_phrase(avg_s))} average. The strip below shows the dominant emotion.</p>
{_timeline_svg(s, info, colours)}
<div class="legend"><span><i style="background:{NEGATIVE_FILL}"></i>negative share</span>
<span><i class="line" style="background:{NEGATIVE_LINE}"></i>{_e(_span_phrase(avg_s))} average</span>{legend}</div>
</section>
<div class="cols">
<section class="card"><h2>Most negative 5-minute segments</h2>{seg_html}</section>
<section class="card"><h2>Break nudges</h2>{nudge_html}</section>
</div>
<p class="note">{_e(DISCLAIMER)}</p>
<footer>Made on this computer by MindFlow; nothing left it. {_e(changes)}.
Face visible {_e(format_duration(s.face_s))}, no face {_e(format_duration(s.no_face_s))}, not analysed
{_e(format_duration(s.not_analysed_s))}. Data: {_e(SUMMARY_FILE)}, {_e(TIMELINE_FILE)}.</footer>
</div></body></html>
"""


def write_report(folder: str | Path, snapshot: StatsSnapshot, info: SessionInfo,
                 summary_text: str | None = None) -> str:
    """Write ``timeline.csv``, ``report.html`` and, last, ``summary.json`` into ``folder`` (each atomically).
    Returns the summary text. Raises ``OSError``."""
    folder = Path(folder)
    if summary_text is None:
        summary_text = format_summary(snapshot, model_name=info.model, started_at=info.started_at,
                                      recovered=info.recovered)
    atomic_write(folder / TIMELINE_FILE, render_timeline_csv(snapshot, info))
    atomic_write(folder / HTML_FILE, render_html(snapshot, info, summary_text))
    doc = build_summary(snapshot, info, summary_text)
    atomic_write(folder / SUMMARY_FILE, _summary_json(doc))
    return summary_text


def _finalise_folder(folder: Path, snapshot: StatsSnapshot, info: SessionInfo, summary_text: str) -> None:
    """The final report files, then the session's checkpoint files removed: the folder reads as finished.
    Raises ``OSError``."""
    write_report(folder, snapshot, info, summary_text)
    for name in (MARKER_FILE, STATE_FILE):
        try:
            os.unlink(folder / name)
        except FileNotFoundError:
            pass
    _fsync_dir(folder)


def _summary_json(doc: dict[str, Any]) -> str:
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


# --------------------------------------------------------------------------------------------------------------------
# The recorder
# --------------------------------------------------------------------------------------------------------------------

@dataclass
class _Job:
    seq: int
    generation: int
    doc: dict[str, Any]


class _BackgroundWriter:
    """One daemon thread that runs the latest submitted job; a newer job replaces one not started yet (only the
    newest checkpoint matters). The thread ends after ``idle_s`` without work and restarts on demand."""

    def __init__(self, run: Any, name: str, idle_s: float = 30.0) -> None:
        self._run_job = run
        self._name = name
        self._idle_s = idle_s
        self._cond = threading.Condition()
        self._job: _Job | None = None
        self._busy = False
        self._closing = False
        self._thread: threading.Thread | None = None

    def submit(self, job: _Job) -> None:
        with self._cond:
            self._job = job
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no job is pending or running. Returns ``False`` on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._job is None and not self._busy, timeout)

    def drain(self, timeout: float = 10.0) -> None:
        """Drop a job not started yet, wait for the one in progress, and end and join the thread (a later
        ``submit`` starts a new one). OBS requires every thread joined when a session ends or the script unloads."""
        with self._cond:
            self._job = None
            self._closing = True
            thread = self._thread
            self._cond.notify_all()
        try:
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout)
        finally:
            with self._cond:
                self._closing = False

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._job is None and not self._closing:
                    self._cond.wait(self._idle_s)
                if self._job is None:
                    self._thread = None
                    return
                job, self._job = self._job, None
                self._busy = True
            try:
                self._run_job(job)
            except Exception:  # noqa: BLE001 - recorded in last_error by the job itself; never kill the thread
                pass
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()


class SessionRecorder:
    """Collects one session's statistics and writes its report folder. Used by the OBS script and the CLI.

    ``report_root``: the folder that receives one sub-folder per session (see :func:`default_report_dir`);
    ``card_like``: anything with ``labels``, ``negative_labels`` and ``name`` (a ``ModelCard``);
    ``started_at``: wall time of the first result (naive = local time); default: the wall clock at the first
    ``add()``; ``checkpoint_every_s``: seconds of **session time** (the results' timestamps) between checkpoints;
    ``source``: free text for the report (camera name, video file); ``nudge``: a :class:`NudgeMonitor` to enable
    break nudges (``None``, the default, disables them; when given, its ``rolling_seconds`` is also the live
    rolling window of the statistics); ``bin_seconds``, ``max_gap_seconds``: passed to :class:`SessionStats`.

    Threads: ``add()`` is for the engine's worker thread; ``snapshot()``, ``checkpoint()``, ``finish()`` and
    ``reset()`` may be called from any other thread (OBS's UI thread). ``add()`` costs a few microseconds; at the
    first result and then every ``checkpoint_every_s`` it also captures the state (well under a millisecond, see
    ``tools/bench_stats.py``) and hands it to a background writer thread, because the write itself (JSON, fsync of
    the file and the folder, ``os.replace``) measured 10–25 ms on an SSD — most of a frame at 30 fps.

    The folder is created at the first result (an empty session leaves nothing on disk). I/O errors never raise
    from ``add()`` or ``finish()``: a checkpoint that fails becomes :attr:`last_error` (a :class:`ReportError`),
    is logged, and is retried at the next checkpoint; the statistics stay in memory. ``finish()`` returns the error
    in :attr:`FinishedSession.error`. Only an explicit :meth:`checkpoint` raises :class:`ReportError`.
    """

    def __init__(self, report_root: str | Path, card_like: Any, *, started_at: datetime | None = None,
                 checkpoint_every_s: float = 60.0, source: str = "", nudge: NudgeMonitor | None = None,
                 bin_seconds: float = 10.0, max_gap_seconds: float = 2.0) -> None:
        self.root = Path(report_root).expanduser()
        self.model_name = str(getattr(card_like, "name", "") or "")
        self.labels = tuple(card_like.labels)
        self.negative_labels = tuple(card_like.negative_labels)
        every = float(checkpoint_every_s)
        if not 0 < every < math.inf:
            raise ValueError(f"checkpoint_every_s must be a finite number of seconds > 0, got {checkpoint_every_s!r}")
        self.checkpoint_every_s = every
        self.source = str(source)
        self.nudge = nudge
        self._fixed_start = None if started_at is None else _aware(started_at)
        self._stats = SessionStats(self.labels, self.negative_labels, bin_seconds=bin_seconds,
                                   max_gap_seconds=max_gap_seconds,
                                   rolling_seconds=nudge.rolling_seconds if nudge is not None else 300.0)
        self._lock = threading.Lock()       # recorder fields
        self._io_lock = threading.Lock()    # serialises file writes
        self._seq = 0
        self._written_seq = 0
        self._generation = 0
        self.last_checkpoint_ms = 0.0
        self.max_checkpoint_ms = 0.0
        self._writer = _BackgroundWriter(self._write_state_quietly, name="mindflow-checkpoint")
        self._new_session_locked()

    def _new_session_locked(self) -> None:
        self._generation += 1
        self._started_at: datetime | None = self._fixed_start
        self._folder: Path | None = None
        self._next_cp = 0.0
        self._next_check = 0.0
        self._nudges: list[Nudge] = []
        self._finished = False
        self._result: FinishedSession | None = None
        self._last_error: ReportError | None = None
        self.checkpoints_written = 0
        self.ignored_after_finish = 0
        self._stats.reset()
        if self.nudge is not None:
            self.nudge.reset()

    # ---------------------------------------------------------------- properties
    @property
    def folder(self) -> Path | None:
        """The session folder, once created (at the first checkpoint)."""
        return self._folder

    @property
    def started_at(self) -> datetime | None:
        return self._started_at

    @property
    def last_error(self) -> ReportError | None:
        """The error of the last checkpoint attempt, ``None`` when it succeeded."""
        return self._last_error

    @property
    def nudges(self) -> tuple[Nudge, ...]:
        with self._lock:
            return tuple(self._nudges)

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def stats(self) -> SessionStats:
        return self._stats

    # ---------------------------------------------------------------- hot path
    def add(self, result: Any) -> tuple[Nudge, ...]:
        """Record one :class:`AnalysisResult` (engine worker thread). Returns the nudges it triggered (usually
        none). Results arriving after :meth:`finish` are ignored. Raises ``ValueError`` only when the result comes
        from a model with other labels than this recorder's card."""
        labels = result.labels
        if labels is not self.labels and labels != self.labels:
            raise ValueError(f"result labels {labels} differ from the recorder's model card labels {self.labels}: "
                             f"start a new SessionRecorder when the model changes")
        nudges: tuple[Nudge, ...] = ()
        job = None
        with self._lock:
            if self._finished:
                self.ignored_after_finish += 1
                return nudges
            if self._started_at is None:
                self._started_at = datetime.now().astimezone()
            t = self._stats.update(result.timestamp, result.emotion)
            if self.nudge is not None and t >= self._next_check:
                self._next_check = math.floor(t) + 1.0
                share, coverage, _ = self._stats.rolling()
                n = self.nudge.update(t, share, coverage, result.timestamp)
                if n is not None:
                    self._nudges.append(n)
                    del self._nudges[:-MAX_KEPT_NUDGES]
                    nudges = (n,)
            if t >= self._next_cp:
                self._next_cp = t + self.checkpoint_every_s
                job = self._capture_locked()
        if job is not None:
            self._writer.submit(job)
        return nudges

    def snapshot(self, *, timeline: bool = True) -> StatsSnapshot:
        """The current statistics (cheap; ``timeline=False`` for live display)."""
        return self._stats.snapshot(timeline=timeline)

    # ---------------------------------------------------------------- checkpoints
    def _capture_locked(self) -> _Job:
        self._seq += 1
        assert self._started_at is not None
        doc = {
            "schema_version": SCHEMA_VERSION, "kind": "mindflow-session-state", "finished": False,
            "seq": self._seq, "model": self.model_name, "labels": list(self.labels),
            "negative_labels": list(self.negative_labels), "source": self.source,
            "started_at": self._started_at.isoformat(), "checkpoint_every_s": self.checkpoint_every_s,
            "nudge": None if self.nudge is None else {
                "threshold": self.nudge.threshold, "sustain_seconds": self.nudge.sustain_seconds,
                "rolling_seconds": self.nudge.rolling_seconds, "cooldown_seconds": self.nudge.cooldown_seconds,
                "min_face_coverage": self.nudge.min_face_coverage, "state": self.nudge.to_state()},
            "nudges": [n.to_dict() for n in self._nudges],
            "stats": self._stats.to_state(),
        }
        return _Job(self._seq, self._generation, doc)

    def _ensure_folder_io(self) -> Path:
        """Create the session folder and its UNFINISHED marker (under the I/O lock). Raises ``OSError``."""
        if self._folder is not None:
            return self._folder
        assert self._started_at is not None
        self.root.mkdir(parents=True, exist_ok=True)
        base = session_folder_name(self._started_at)
        for i in range(1, 1000):
            candidate = self.root / (base if i == 1 else f"{base}-{i}")
            try:
                os.mkdir(candidate)
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - a thousand sessions in one second
            raise FileExistsError(_errno.EEXIST, "too many session folders with the same start time", str(base))
        marker = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": self._started_at.isoformat(),
                  "note": "MindFlow session in progress; finalised by the next session if it was interrupted"}
        _register_live(candidate, True)
        try:
            atomic_write(candidate / MARKER_FILE, json.dumps(marker))
        except OSError:
            _register_live(candidate, False)
            try:
                os.rmdir(candidate)
            except OSError:
                pass
            raise
        self._folder = candidate
        return candidate

    def _write_state_quietly(self, job: _Job) -> None:
        try:
            self._write_state(job)
        except ReportError:
            pass  # kept in last_error and logged; retried at the next checkpoint

    def _write_state(self, job: _Job, during: str = "checkpoint") -> Path | None:
        """Write a captured checkpoint (I/O lock). Raises :class:`ReportError` and records it in ``last_error``.
        A job of an earlier session, or older than one already written, is skipped (returns ``None``)."""
        with self._io_lock:
            if job.generation != self._generation or job.seq <= self._written_seq:
                return None
            folder = self._folder or self.root
            try:
                t0 = time.perf_counter()
                folder = self._ensure_folder_io()
                path = folder / STATE_FILE
                atomic_write(path, json.dumps(job.doc, separators=(",", ":"), allow_nan=False))
                self._written_seq = job.seq
                self.checkpoints_written += 1
                self.last_checkpoint_ms = (time.perf_counter() - t0) * 1e3
                self.max_checkpoint_ms = max(self.max_checkpoint_ms, self.last_checkpoint_ms)
                self._last_error = None
                return path
            except OSError as exc:
                err = ReportError.from_os_error(exc, folder, during=during)
                self._last_error = err
                log.warning("%s", err)
                raise err from exc

    def flush(self, timeout: float | None = None) -> bool:
        """Wait for the background checkpoint writer to finish pending work (e.g. before reading ``state.json``).
        Returns ``False`` on timeout (seconds)."""
        return self._writer.wait(timeout)

    def checkpoint(self) -> Path:
        """Write a checkpoint now (any thread). Returns the ``state.json`` path. Raises :class:`ReportError`
        (the documented error: names the folder and what to do) and ``RuntimeError`` before the first result or
        after :meth:`finish`."""
        with self._lock:
            if self._finished:
                raise RuntimeError("the session is finished; start a new one (reset()) to record again")
            if self._stats.updates == 0:
                raise RuntimeError("no result recorded yet: nothing to checkpoint")
            job = self._capture_locked()
        path = self._write_state(job)
        assert path is not None  # the newest job of the current session is never skipped
        return path

    # ---------------------------------------------------------------- the end
    def finish(self) -> FinishedSession:
        """End the session and write ``timeline.csv``, ``report.html`` and ``summary.json`` (once), then mark the
        folder finished (remove ``UNFINISHED`` and ``state.json``). Idempotent: later calls return the same
        :class:`FinishedSession`. Never raises for I/O: a failure is in ``.error`` and in the summary text, the
        checkpoint (if any) stays for :func:`recover_unfinished`, and calling ``finish()`` again retries."""
        with self._lock:
            if self._result is not None and self._result.error is None:
                return self._result
            self._finished = True
            snap = self._stats.snapshot()
            job = self._capture_locked() if snap.updates else None
            info = None
            if self._started_at is not None:
                info = SessionInfo(self.model_name, self.labels, self.negative_labels, self._started_at,
                                   self.source, False, tuple(self._nudges))
        self._writer.drain()
        text = format_summary(snap, model_name=self.model_name, started_at=self._started_at)
        error: ReportError | None = None
        folder = self._folder
        if job is not None and info is not None:
            try:
                self._write_state(job, during="report")
                with self._io_lock:
                    folder = self._folder
                    assert folder is not None
                    try:
                        _finalise_folder(folder, snap, info, text)
                    except OSError as exc:
                        raise ReportError.from_os_error(exc, folder, during="report") from exc
                    _register_live(folder, False)
            except ReportError as exc:
                error = exc
                folder = self._folder
                text += f"\nReport NOT saved: {exc}"
                log.warning("%s", exc)
        if error is None and folder is not None:
            text += f"\nReport: {folder / HTML_FILE}"
        result = FinishedSession(folder=folder, summary_text=text, snapshot=snap, error=error)
        with self._lock:
            self._result = result
        return result

    def reset(self) -> FinishedSession:
        """Finish the current session (its report is written, as by :meth:`finish`) and start a new, empty one.

        Decision: reset never discards data — a streamer who wants a session gone deletes its folder. The new
        session's ``started_at`` is the wall clock at its first result. Returns the finished session."""
        done = self.finish()
        with self._lock:
            self._fixed_start = None
            self._new_session_locked()
        return done


# --------------------------------------------------------------------------------------------------------------------
# Recovery
# --------------------------------------------------------------------------------------------------------------------

def _marker_says_alive(marker: Path) -> bool:
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
        pid, host = int(info["pid"]), str(info["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if host != socket.gethostname() or pid == os.getpid():
        return False
    return _pid_alive(pid)


def _recover_one(folder: Path) -> FinishedSession:
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
        stats = SessionStats.from_state(doc["stats"])
        started_at = _aware(datetime.fromisoformat(doc["started_at"]))
        nudges = tuple(Nudge(float(n["time_s"]), n.get("timestamp"), float(n["negative_share"]), str(n["message"]))
                       for n in doc.get("nudges", []))
        info = SessionInfo(str(doc.get("model", "")), tuple(doc["labels"]), tuple(doc["negative_labels"]),
                           started_at, str(doc.get("source", "")), True, nudges)
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
    snap = stats.snapshot()
    text = format_summary(snap, model_name=info.model, started_at=started_at, recovered=True)
    try:
        _finalise_folder(folder, snap, info, text)
    except OSError as exc:
        err = ReportError.from_os_error(exc, folder, during="report")
        return FinishedSession(folder=folder, summary_text=f"{text}\nReport NOT saved: {err}", snapshot=snap,
                               error=err, recovered=True)
    return FinishedSession(folder=folder, summary_text=f"{text}\nReport: {folder / HTML_FILE}", snapshot=snap,
                           recovered=True)


def recover_unfinished(report_root: str | Path) -> list[FinishedSession]:
    """Finalise every session folder under ``report_root`` still marked ``UNFINISHED`` (OBS crashed, the machine
    lost power) from its last checkpoint: writes the three report files (the summary says it was recovered) and
    marks the folder finished. Folders of a recorder still running — in this process, or in another live process
    on this machine — are left alone. Never raises for I/O; problems are in each result's ``error``."""
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
        if _is_live_here(folder) or _marker_says_alive(marker):
            continue
        out.append(_recover_one(folder))
    return out


__all__ = [
    "FinishedSession", "ReportError", "SessionInfo", "SessionRecorder", "atomic_write", "build_summary",
    "default_report_dir", "label_colours", "recover_unfinished", "render_html", "render_timeline_csv",
    "session_folder_name", "write_report", "SCHEMA_VERSION", "SUMMARY_FILE", "TIMELINE_FILE", "HTML_FILE",
    "STATE_FILE", "MARKER_FILE",
]
