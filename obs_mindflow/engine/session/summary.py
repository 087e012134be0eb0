"""The session summary as plain text (the script log, the CLI, ``summary.json``), from the session's
:class:`~obs_mindflow.engine.session.facts.ReportFacts`, in its language. Imports without numpy (the OBS script may
show :func:`basis_lines` while numpy is missing); the words are the catalogues' (:mod:`obs_mindflow.i18n`), the
formatters :mod:`obs_mindflow.engine.formatting`'s."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...i18n import Words, words
from ..formatting import format_duration, format_percent
from ..views import report_moment_title

if TYPE_CHECKING:
    from .facts import ReportFacts
    from .snapshot import StatsSnapshot


def format_summary(facts: ReportFacts, *, top: int = 3) -> str:
    """A short plain-text block for the OBS script log, in plain words (each line short: OBS's Script Log does not
    wrap), listing only the expressions that were seen, in the session's language (``info.language``; English when
    empty).

    Clock times are :meth:`ReportFacts.clock`'s: a file's own times, else wall-clock ``HH:MM`` (elapsed ``HH:MM``
    since the start when the session recorded no start). A recovered session says it was rebuilt from the last
    checkpoint after an unclean exit; the basis lines say what the figures rest on (:func:`basis_lines`); the best
    ``top`` moments are named at their media time ``HH:MM:SS``.
    """
    from .facts import SEGMENT_S

    s, info = facts.snapshot, facts.info
    w = words(info.language if info is not None else "")
    model_name = facts.model
    lines = [w("summary.head_model", model=model_name) if model_name else w("summary.head")]
    if info is not None and info.recovered:
        lines.append(w("summary.recovered"))
    if not s.started or s.duration_s <= 0:
        lines.append(w("summary.nothing"))
        lines.append(w("report.disclaimer"))
        return "\n".join(lines)
    clock = facts.clock
    duration = format_duration(s.duration_s, w)
    if facts.video:       # a file: its own times (the wall clock of the analysis says nothing about the video)
        lines.append(w("summary.length_video", duration=duration, start=clock(0), end=clock(s.duration_s)))
    elif info is not None:
        lines.append(w("summary.length_span", duration=duration, start=clock(0), end=clock(s.duration_s)))
    else:
        lines.append(w("summary.length", duration=duration))
    gaps = [w("summary.no_face", duration=format_duration(s.no_face_s, w))] if s.no_face_s >= 0.5 else []
    if s.not_analysed_s >= 0.5:
        gaps.append(w("summary.not_analysed", duration=format_duration(s.not_analysed_s, w)))
    lines.append(w("summary.face_in_view_gaps", share=format_percent(s.coverage), gaps="; ".join(gaps)) if gaps
                 else w("summary.face_in_view", share=format_percent(s.coverage)))
    if s.negative_share is not None:
        shown = [(lab, v) for lab, v in s.profile() if format_percent(v) != "0 %"]
        lines.append(w("summary.showed", shares=", ".join(f"{w.emotion(lab)} {format_percent(v)}"
                                                          for lab, v in shown)))
        neg_names = ", ".join(w.emotion(lab) for lab in s.negative_labels) or w("summary.no_negative_labels")
        lines.append(w("summary.negative", names=neg_names, share=format_percent(s.negative_share)))
        ln = s.longest_negative
        if ln is not None and ln.duration_s > 0:
            lines.append(w("summary.longest", duration=format_duration(ln.duration_s, w),
                           start=clock(ln.start_s, True), end=clock(ln.end_s, True)))
        else:
            lines.append(w("summary.longest_none"))
        segs = facts.segments[:top]
        if segs:
            lines.append(w("summary.segments", minutes=w.number(SEGMENT_S / 60), segments="; ".join(
                f"{clock(g.start_s)}–{clock(g.end_s)} ({format_percent(g.negative_share)})" for g in segs)))
        lines.append(w("summary.most_often", emotion=w.emotion(s.dominant)))
        if facts.moments:
            lines.append(w("summary.moments", count=len(facts.moments), best=", ".join(
                f"{report_moment_title(m.title, m.emotion, w)} {facts.media_clock(m.start_s)}"
                for m in facts.moments[:top])))
    else:
        lines.append(w("report.no_profile"))
    lines.extend(basis_lines(s, info.calibration if info is not None else None, w))
    lines.append(w("report.disclaimer"))
    return "\n".join(lines)


def basis_lines(snapshot: StatsSnapshot, calibration: dict | None, w: Words | None = None) -> list[str]:
    """What the figures rest on: the personal baseline (or none) and the uncertain share, with the definition of the
    negative share, in ``w``'s language (English without). ``calibration``: ``{"applied": bool, "created",
    "seconds", "face_frames", "model", "applied_from_s"}`` as a session records it."""
    s, c = snapshot, calibration or {}
    w = w or words("")
    if c.get("applied"):
        values = dict(when=str(c.get("created", "")).replace("T", " ")[:16], frames=c.get("face_frames"),
                      seconds=f"{float(c.get('seconds', 0)):.0f}")
        base = (w("basis.calibrated_from", **values, applied=format_duration(c["applied_from_s"], w))
                if c.get("applied_from_s") else w("basis.calibrated", **values))
    else:
        base = w("basis.not_calibrated")
    if s.face_s + s.uncertain_s > 0:
        return [base, w("basis.uncertain_readable", share=format_percent(s.uncertain_share))]
    return [base, w("basis.readable")]
