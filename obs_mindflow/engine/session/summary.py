"""The session summary as plain text (the script log, the CLI, ``summary.json``) and the small formatters every
output shares: durations, clock times, percentages. Pure Python: the formatters are imported where numpy may be
missing (the text template); only :func:`format_summary` needs a
:class:`~obs_mindflow.engine.session.snapshot.StatsSnapshot`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from .moments import Moment
    from .snapshot import StatsSnapshot

DISCLAIMER = ("MindFlow is an aid to self-reflection, not a diagnosis: expression models misread faces, "
              "lighting and context, and a face is not a feeling.")


def aware(dt: datetime) -> datetime:
    """An aware datetime; a naive one is taken as local time."""
    return dt if dt.tzinfo is not None and dt.utcoffset() is not None else dt.astimezone()


def format_duration(seconds: float) -> str:
    """``"1 h 02 min"``, ``"12 min 05 s"``, ``"45 s"`` (seconds rounded to whole seconds)."""
    s = int(round(max(0.0, seconds)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{h} h {m:02d} min"
    if m:
        return f"{m} min {sec:02d} s"
    return f"{sec} s"


def format_clock(offset_s: float, started_at: datetime | None = None, *, seconds: bool = False) -> str:
    """A session offset as a clock time: wall clock ``HH:MM`` when ``started_at`` is given, else the elapsed time
    since the start as ``HH:MM`` (``HH:MM:SS`` with ``seconds=True``)."""
    if started_at is not None:
        t = started_at + timedelta(seconds=offset_s)
        return t.strftime("%H:%M:%S" if seconds else "%H:%M")
    s = int(max(0.0, offset_s)) if seconds else int(offset_s // 60) * 60   # whole seconds down, as chapters
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h:02d}:{m:02d}:{sec:02d}" if seconds else f"{h:02d}:{m:02d}"



def format_percent(x: float) -> str:
    """``0.213`` → ``"21 %"`` (whole percent)."""
    return f"{100 * x:.0f} %"


def format_summary(snapshot: StatsSnapshot, *, model_name: str = "", started_at: datetime | None = None,
                   recovered: bool = False, top: int = 3, segment_seconds: float = 300.0,
                   calibration: dict | None = None, moments: Sequence[Moment] = (),
                   media_offset_s: float | None = None) -> str:
    """A short plain-text block for the OBS script log, in plain words (each line short: OBS's Script Log does not
    wrap), listing only the expressions that were seen.

    Clock times are wall-clock ``HH:MM`` when ``started_at`` (the wall time of the first result) is given, else
    elapsed ``HH:MM`` since the session start. ``recovered`` adds a line saying the report was rebuilt from the last
    checkpoint after an unclean exit. ``calibration``: the session's personal-baseline record (see
    :func:`basis_lines`). ``moments``: the session's moments (:mod:`.moments`): the best ``top`` are named, at
    ``HH:MM:SS`` since the start (plus ``media_offset_s``, a video file's time of the first analysed frame).
    """
    from .snapshot import top_negative_segments

    s = snapshot
    head = "MindFlow session summary" + (f" (model {model_name})" if model_name else "")
    lines = [head]
    if recovered:
        lines.append("Recovered after an unclean exit from the last checkpoint: the final minute or so may be missing.")
    if not s.started or s.duration_s <= 0:
        lines.append("No analysis results were recorded in this session.")
        lines.append(DISCLAIMER)
        return "\n".join(lines)
    video = media_offset_s is not None
    if video:             # a file: its own times (the wall clock of the analysis says nothing about the video)
        started_at = None

    def clock(t: float, seconds: bool = False) -> str:
        return format_clock((media_offset_s or 0.0) + t, started_at, seconds=seconds or video)
    when = ""
    if video:
        when = f" (video {clock(0)}–{clock(s.duration_s)})"
    elif started_at is not None:
        when = f" ({format_clock(0, started_at)}–{format_clock(s.duration_s, started_at)})"
    lines.append(f"Length: {format_duration(s.duration_s)}{when}")
    gaps = [f"no face {format_duration(s.no_face_s)}"] if s.no_face_s >= 0.5 else []
    if s.not_analysed_s >= 0.5:
        gaps.append(f"not analysed (paused or no picture) {format_duration(s.not_analysed_s)}")
    lines.append(f"Your face was in view {format_percent(s.coverage)} of the time" +
                 (f" ({'; '.join(gaps)})" if gaps else ""))
    if s.face_s > 0:
        shown = [(lab, v) for lab, v in s.profile() if format_percent(v) != "0 %"]
        lines.append("What your face showed: " + ", ".join(f"{lab} {format_percent(v)}" for lab, v in shown))
        neg_names = ", ".join(s.negative_labels) or "none defined by the model card"
        lines.append(f"Negative expressions ({neg_names}): {format_percent(s.negative_share)} of that time")
        ln = s.longest_negative
        if ln is not None and ln.duration_s > 0:
            lines.append(f"Longest negative stretch: {format_duration(ln.duration_s)} "
                         f"({clock(ln.start_s, True)}–{clock(ln.end_s, True)})")
        else:
            lines.append("Longest negative stretch: none")
        segs = top_negative_segments(s, top, segment_seconds=segment_seconds)
        if segs:
            lines.append(f"Most negative {segment_seconds / 60:g} minutes: " + "; ".join(
                f"{clock(g.start_s)}–{clock(g.end_s)} "
                f"({format_percent(g.negative_share)})" for g in segs))
        lines.append(f"Most often: {s.dominant}")
        if moments:
            best = sorted(moments, key=lambda m: (-m.score, m.start_s))[:top]
            off = media_offset_s or 0.0
            lines.append(f"Moments: {len(moments)} (best: " + ", ".join(
                f"{m.title} {format_clock(off + m.start_s, seconds=True)}" for m in best) + ")")
    else:
        lines.append("No face was visible, so there is no emotion profile.")
    lines.extend(basis_lines(s, calibration))
    lines.append(DISCLAIMER)
    return "\n".join(lines)


def basis_lines(snapshot: StatsSnapshot, calibration: dict | None) -> list[str]:
    """What the figures rest on: the personal baseline (or none) and the uncertain share, with the definition of the
    negative share. ``calibration``: ``{"applied": bool, "created", "seconds", "face_frames", "model",
    "applied_from_s"}`` as a session records it."""
    s, c = snapshot, calibration or {}
    if c.get("applied"):
        when = str(c.get("created", "")).replace("T", " ")[:16]
        since = (f", applied from {format_duration(c['applied_from_s'])} into the session"
                 if c.get("applied_from_s") else "")
        base = (f"Calibrated to your face: personal baseline made {when} from {c.get('face_frames')} face frames "
                f"over {float(c.get('seconds', 0)):.0f} s{since}.")
    else:
        base = ("Not calibrated: the readings are the model's own, and every resting face differs (some read as "
                "negative); calibrate to your face for figures you can trust.")
    visible = s.face_s + s.uncertain_s
    unc = (f"Uncertain (a face that could not be read): {format_percent(s.uncertain_share)} of face-visible time. "
           if visible > 0 else "")
    return [base, f"{unc}Shares and the negative share are of the time with a readable face."]

