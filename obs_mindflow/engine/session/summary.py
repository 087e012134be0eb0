"""The session summary as plain text (the script log, the CLI, ``summary.json``), from the session's
:class:`~obs_mindflow.engine.session.facts.ReportFacts`. Imports without numpy (the OBS script shows the disclaimer
and :func:`basis_lines` while numpy may be missing); the formatters are :mod:`obs_mindflow.engine.formatting`'s."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..formatting import format_duration, format_percent

if TYPE_CHECKING:
    from .facts import ReportFacts
    from .snapshot import StatsSnapshot

DISCLAIMER = ("MindFlow is an aid to self-reflection, not a diagnosis: expression models misread faces, "
              "lighting and context, and a face is not a feeling.")


def format_summary(facts: ReportFacts, *, top: int = 3) -> str:
    """A short plain-text block for the OBS script log, in plain words (each line short: OBS's Script Log does not
    wrap), listing only the expressions that were seen.

    Clock times are :meth:`ReportFacts.clock`'s: a file's own times, else wall-clock ``HH:MM`` (elapsed ``HH:MM``
    since the start when the session recorded no start). A recovered session says it was rebuilt from the last
    checkpoint after an unclean exit; the basis lines say what the figures rest on (:func:`basis_lines`); the best
    ``top`` moments are named at their media time ``HH:MM:SS``.
    """
    from .facts import SEGMENT_S

    s, info = facts.snapshot, facts.info
    model_name = facts.model
    head = "MindFlow session summary" + (f" (model {model_name})" if model_name else "")
    lines = [head]
    if info is not None and info.recovered:
        lines.append("Recovered after an unclean exit from the last checkpoint: the final minute or so may be missing.")
    if not s.started or s.duration_s <= 0:
        lines.append("No analysis results were recorded in this session.")
        lines.append(DISCLAIMER)
        return "\n".join(lines)
    clock = facts.clock
    when = ""
    if facts.video:       # a file: its own times (the wall clock of the analysis says nothing about the video)
        when = f" (video {clock(0)}–{clock(s.duration_s)})"
    elif info is not None:
        when = f" ({clock(0)}–{clock(s.duration_s)})"
    lines.append(f"Length: {format_duration(s.duration_s)}{when}")
    gaps = [f"no face {format_duration(s.no_face_s)}"] if s.no_face_s >= 0.5 else []
    if s.not_analysed_s >= 0.5:
        gaps.append(f"not analysed (paused or no picture) {format_duration(s.not_analysed_s)}")
    lines.append(f"Your face was in view {format_percent(s.coverage)} of the time" +
                 (f" ({'; '.join(gaps)})" if gaps else ""))
    if s.negative_share is not None:
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
        segs = facts.segments[:top]
        if segs:
            lines.append(f"Most negative {SEGMENT_S / 60:g} minutes: " + "; ".join(
                f"{clock(g.start_s)}–{clock(g.end_s)} "
                f"({format_percent(g.negative_share)})" for g in segs))
        lines.append(f"Most often: {s.dominant}")
        if facts.moments:
            lines.append(f"Moments: {len(facts.moments)} (best: " + ", ".join(
                f"{m.title} {facts.media_clock(m.start_s)}" for m in facts.moments[:top]) + ")")
    else:
        lines.append("No face was visible, so there is no emotion profile.")
    lines.extend(basis_lines(s, info.calibration if info is not None else None))
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

