"""``report.html``: one self-contained page per session — inline CSS (``report.css`` beside this module) and SVG,
no script, no external resource. Every string from outside (labels, model, source, messages) is HTML-escaped."""

from __future__ import annotations

import functools
import html
import math
from importlib import resources
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ... import __version__
from ..session.moments import Moment, make_chapters, ranked
from ..session.snapshot import StatsSnapshot, group_rows, negative_mask, top_negative_segments
from ..session.summary import DISCLAIMER, basis_lines, format_clock, format_duration, format_percent
from .storage import SUMMARY_FILE, TIMELINE_FILE

if TYPE_CHECKING:
    from .files import SessionInfo

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
UNCERTAIN_COLOUR = "#b9bfca"   # a face that could not be read
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


esc = _e    # the pages' one escaping helper (history.html uses it too)



@functools.lru_cache(maxsize=1)
def _css() -> str:
    """The page's style sheet (``report.css``, package data)."""
    return "\n" + resources.files(__package__).joinpath("report.css").read_text(encoding="utf-8")


def page(title: str, body: str) -> str:
    """A whole self-contained MindFlow page around ``body`` (HTML, already escaped): the style sheet inline, no
    script, no external resource. ``report.html`` and ``history.html`` share it."""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{_css()}</style></head>
<body><div class="wrap">
{body}
</div></body></html>
"""


#: Tick steps of the time axis, seconds.
_TICK_STEPS = (5, 10, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 14400, 21600, 43200, 86400)


def _nice_tick_seconds(span_s: float, max_ticks: int = 9) -> float:
    for step in _TICK_STEPS:
        if span_s / step <= max_ticks:
            return float(step)
    return 86400.0 * max(1, math.ceil(span_s / (86400 * max_ticks)))


#: The segments' length and the face time each needs (``top_negative_segments``' defaults).
SEGMENT_S, SEGMENT_MIN_FACE_S = 300.0, 60.0


def media_clock(offset_s: float) -> str:
    """``HH:MM:SS`` of a media time (seconds)."""
    return format_clock(offset_s, seconds=True)


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
        parts.append(f'<text x="{left + w + 10:.1f}" y="{y + 22}" class="val">{_e(format_percent(share))}{tag}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _group_timeline(snapshot: StatsSnapshot, max_points: int = 240) -> tuple[float, np.ndarray]:
    """Aggregate timeline bins so that at most ``max_points`` remain. Returns (group width s, rows)."""
    tl = snapshot.timeline if snapshot.timeline is not None else np.zeros((0, len(snapshot.labels) + 2))
    per = max(1, math.ceil(len(tl) / max_points))
    return per * snapshot.bin_seconds, group_rows(tl, per)


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
    lane_y, lane_h = strip_y + strip_h + 6, 16
    axis_y = lane_y + lane_h + 18
    live = info.media_offset_s is None
    height = axis_y + (22 if live else 8)
    plot_w = width - left - right
    dur = max(snapshot.duration_s, 1e-9)
    c = len(snapshot.labels)
    gw, rows = _group_timeline(snapshot)
    neg_mask = negative_mask(snapshot.labels, snapshot.negative_labels)

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
        fv, un, nf, na = face[i], rows[i, c], rows[i, c + 1], rows[i, c + 2]
        if fv >= max(un, nf, na) and fv > 0:
            col = colours[snapshot.labels[int(np.argmax(rows[i, :c]))]]
        elif un >= max(nf, na) and un > 0:
            col = UNCERTAIN_COLOUR
        else:
            col = NO_FACE_COLOUR if nf >= na else NOT_ANALYSED_COLOUR
        parts.append(f'<rect x="{x0:.2f}" y="{strip_y}" width="{max(x1 - x0, 0.5) + 0.3:.2f}" height="{strip_h}" '
                     f'fill="{col}"/>')
    parts.append(f'<text x="{left - 8}" y="{strip_y + 15}" text-anchor="end" class="tick">dominant</text>')
    # moments: a lane under the strip, the ten best-ranked numbered
    parts.append(f'<text x="{left - 8}" y="{lane_y + 12}" text-anchor="end" class="tick">moments</text>')
    rank = {m.id: i for i, m in enumerate(ranked(info.moments), 1)}
    for m in info.moments:
        x0, x1 = x_of(m.start_s), x_of(m.end_s)
        col = NEGATIVE_LINE if m.negative else colours.get(m.emotion, "#888")
        parts.append(f'<rect x="{x0:.2f}" y="{lane_y}" width="{max(x1 - x0, 2.0):.2f}" height="{lane_h}" rx="3" '
                     f'fill="{col}" class="moment" data-moment="{m.id}" data-rank="{rank.get(m.id, 0)}">'
                     f'<title>{_e(f"#{rank.get(m.id, 0)} {m.title} ({m.emotion})")}</title></rect>')
        if rank.get(m.id, 99) <= 10:
            parts.append(f'<text x="{(x0 + max(x1, x0 + 2)) / 2:.1f}" y="{lane_y + 12}" text-anchor="middle" '
                         f'class="mrank">{rank[m.id]}</text>')
    # time axis: time since the start (a file: the video's own time), and for a live session the wall clock below
    offset = info.media_offset_s or 0.0
    step = _nice_tick_seconds(dur)
    start = info.started_at
    t = math.ceil(offset / step - 1e-9) * step - offset
    while t <= dur + 1e-6:
        x = x_of(t)
        parts.append(f'<line x1="{x:.1f}" y1="{top + plot_h}" x2="{x:.1f}" y2="{lane_y + lane_h + 4}" '
                     f'class="tickline"/>')
        anchor = "start" if x - left < 30 else "end" if width - right - x < 30 else "middle"
        parts.append(f'<text x="{x:.1f}" y="{axis_y}" text-anchor="{anchor}" class="tick" data-tick="elapsed">'
                     f'{_e(media_clock(offset + t))}</text>')
        if live:
            parts.append(f'<text x="{x:.1f}" y="{axis_y + 14}" text-anchor="{anchor}" class="tick wall">'
                         f'{_e(format_clock(t, start, seconds=step < 60))}</text>')
        t += step
    parts.append(f'<text x="{left - 8}" y="{axis_y}" text-anchor="end" class="tick">'
                 f'{"elapsed" if live else "video"}</text>')
    if live:
        parts.append(f'<text x="{left - 8}" y="{axis_y + 14}" text-anchor="end" class="tick wall">clock</text>')
    parts.append(f'<line x1="{left}" y1="{y_of(0):.1f}" x2="{width - right}" y2="{y_of(0):.1f}" class="axis"/>')
    parts.append("</svg>")
    return "".join(parts)



MAX_LISTED_MOMENTS = 20


def _moments_html(moments: tuple[Moment, ...], info: SessionInfo, colours: dict[str, str]) -> str:
    """The ranked moments (the best :data:`MAX_LISTED_MOMENTS`), times in ``HH:MM:SS`` since the start (a file: the
    video's own time)."""
    if not moments:
        return ('<p class="small">No moment: no emotion was held long enough (or intensely enough) to count. What '
                'counts is in summary.json ("moments").</p>')
    offset = info.media_offset_s or 0.0
    best = ranked(moments)
    rows = []
    for i, m in enumerate(best[:MAX_LISTED_MOMENTS], 1):
        col = NEGATIVE_LINE if m.negative else colours.get(m.emotion, "#888")
        what = f"{m.title} ({m.emotion}{', negative' if m.negative else ''})"
        kind = "spike" if m.kind == "spike" else "held"
        rows.append(f'<tr data-moment="{m.id}"><td class="num">{i}</td>'
                    f'<td class="time">{_e(media_clock(offset + m.start_s))}–{_e(media_clock(offset + m.end_s))}</td>'
                    f'<td><i class="dot" style="background:{col}"></i>{_e(what)}</td><td>{_e(kind)}</td>'
                    f'<td class="num">{_e(format_duration(m.seconds))}</td>'
                    f'<td class="num">{_e(format_percent(m.peak))}</td><td class="num">{_e(format_percent(m.mean))}'
                    f'</td></tr>')
    more = (f'<p class="small">{len(best) - MAX_LISTED_MOMENTS} more in summary.json.</p>'
            if len(best) > MAX_LISTED_MOMENTS else "")
    return ('<table class="rows" id="moment-list"><thead><tr><th>#</th><th>When</th><th>What</th><th>Kind</th>'
            '<th>Held</th><th>Peak</th><th>Mean</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table>" + more)


def _chapters_html(snapshot: StatsSnapshot, info: SessionInfo) -> str:
    ch = make_chapters(info.moments, snapshot.duration_s, offset_s=info.media_offset_s or 0.0)
    if ch.usable:
        return (f'<p class="sub">Paste into the video description (YouTube: the first at 00:00, at least 3, each at '
                f'least 10 s). {_e(ch.note)}</p><pre class="chapters" id="chapters">{_e(ch.text)}</pre>')
    listed = "".join(f"<li><b>{_e(c.time)}</b> {_e(c.title)}</li>" for c in ch.chapters)
    return (f'<p class="small" id="chapters-note">No chapter block: {_e(ch.note)}.</p>'
            f'<ol class="segs">{listed}</ol>')


def render_html(snapshot: StatsSnapshot, info: SessionInfo, summary_text: str = "") -> str:
    """``report.html``: one self-contained page — inline CSS and SVG, no script, no external resource.
    Every string from outside (labels, model, source, messages) is HTML-escaped."""
    s = snapshot
    colours = label_colours(s.labels)
    start = info.started_at
    video = info.media_offset_s is not None       # a file: its own times, never the clock of the analysis

    def clock(t: float, seconds: bool = False) -> str:
        """A session offset as shown: the video's time (hh:mm:ss) for a file, the wall clock live."""
        return media_clock(info.media(t)) if video else format_clock(t, start, seconds=seconds)
    if video:
        span = f"video {clock(0)}–{clock(s.duration_s)}"
        date = "analysed " + start.strftime("%A %d %B %Y")
    else:
        span = f"{start.strftime('%H:%M')}–{info.wall(s.duration_s).strftime('%H:%M')}"
        date = start.strftime("%A %d %B %Y")
    meta = [date, span, f"model {info.model}"] + ([f"source {info.source}"] if info.source else [])
    ln = s.longest_negative
    negative = s.face_s > 0 and format_percent(s.negative_share) != "0 %"
    stretch = ln is not None and ln.duration_s > 0
    tiles = [      # the negative tiles are red only when there is something negative to say
        ("Duration", format_duration(s.duration_s), span, ""),
        ("Face visible", format_percent(s.coverage), f"of analysed time; {format_percent(s.uncertain_share)} uncertain",
         ""),
        ("Negative", format_percent(s.negative_share) if s.face_s > 0 else "–", "of readable-face time",
         "neg" if negative else ""),
        ("Dominant", s.dominant or "–",
         f"{format_percent(s.shares[s.labels.index(s.dominant)])} of face time" if s.dominant else "no face seen", ""),
        ("Longest negative", format_duration(ln.duration_s) if stretch else "none",
         f"{clock(ln.start_s, True)}–{clock(ln.end_s, True)}" if stretch else "no negative stretch",
         "neg" if stretch else ""),
    ]
    tile_html = "".join(
        f'<div class="tile {cls}" data-metric="{_e(k.lower().replace(" ", "-"))}"><div class="k">{_e(k)}</div>'
        f'<div class="v">{_e(v)}</div><div class="s">{_e(sub)}</div></div>' for k, v, sub, cls in tiles)
    legend = "".join(f'<span><i style="background:{colours[lab]}"></i>{_e(lab)}</span>' for lab in s.labels)
    legend += (f'<span><i style="background:{UNCERTAIN_COLOUR}"></i>uncertain</span>'
               f'<span><i style="background:{NO_FACE_COLOUR}"></i>no face</span>'
               f'<span><i style="background:{NOT_ANALYSED_COLOUR};border:1px solid #d5d9e0"></i>not analysed</span>')
    segs = top_negative_segments(s, 3, segment_seconds=SEGMENT_S, min_face_seconds=SEGMENT_MIN_FACE_S)
    if segs:
        seg_html = "<ol class=\"segs\">" + "".join(
            f"<li><b>{_e(clock(g.start_s))}–{_e(clock(g.end_s))}</b> · "
            f"{_e(format_percent(g.negative_share))} negative</li>" for g in segs) + "</ol>"
    elif s.duration_s < SEGMENT_S or s.face_s < SEGMENT_MIN_FACE_S:
        seg_html = (f'<p class="small">The session is too short to compare 5-minute segments (each needs '
                    f'{SEGMENT_MIN_FACE_S:.0f} s of your face): the Negative tile above covers all of it.</p>')
    else:
        seg_html = ('<p class="small">No 5-minute segment had negative expressions for long enough to compare '
                    f'(each needs {SEGMENT_MIN_FACE_S:.0f} s of your face).</p>')
    if info.nudges:
        nudge_html = "<ol class=\"segs\">" + "".join(
            f"<li><b>{_e(clock(n.time_s))}</b> · {_e(n.message)}</li>" for n in info.nudges) + "</ol>"
    else:
        nudge_html = '<p class="small">No break nudge during this session.</p>'
    neg_names = ", ".join(s.negative_labels) or "none"
    step_s = _group_timeline(s)[0]
    avg_s = step_s * _average_groups(step_s)
    profile = (_profile_svg(s, colours) if s.face_s > 0
               else '<p class="small">No face was visible, so there is no emotion profile.</p>')
    recovered = '<span class="badge">recovered after an unclean exit</span>' if info.recovered else ""
    changes = (f"The shown expression changed {s.label_changes} times "
               f"({s.label_changes / (s.duration_s / 60):.1f} a minute)" if s.duration_s > 0 else "")
    if info.media_offset_s is not None:
        time_note = "Times are the video's own (hh:mm:ss)."
    else:
        time_note = "Times are hh:mm:ss since the start; the clock time is under the axis."
    history = ('<a class="hist" href="../history.html">All sessions (history)</a>' if info.history_link else "")
    body = f"""<header><div class="brand">MindFlow</div>
<h1>Session report{recovered}</h1>
<p class="meta">{' · '.join(_e(m) for m in meta)}</p>
<p class="basis" id="basis">{' '.join(_e(x) for x in basis_lines(s, info.calibration))}</p></header>
<section class="tiles">{tile_html}</section>
<section class="card" id="profile"><h2>Emotion profile</h2>
<p class="sub">Share of face-visible time per displayed emotion. Negative: {_e(neg_names)}.</p>{profile}</section>
<section class="card" id="timeline"><h2>Negative expressions over time</h2>
<p class="sub">Share of face-visible time with a negative emotion, in {_e(_span_phrase(step_s))} steps; the line is
the {_e(_span_phrase(avg_s))} average. The strip below shows the dominant emotion, the lane under it the moments
(numbered by rank). {_e(time_note)}</p>
{_timeline_svg(s, info, colours)}
<div class="legend"><span><i style="background:{NEGATIVE_FILL}"></i>negative share</span>
<span><i class="line" style="background:{NEGATIVE_LINE}"></i>{_e(_span_phrase(avg_s))} average</span>{legend}</div>
</section>
<section class="card" id="moments"><h2>Moments</h2>
<p class="sub">Emotions held for a while, or brief and intense, ranked (longer and more intense first; calm counts
half). Uncertain and no-face time are not part of a moment. {_e(time_note)}</p>
{_moments_html(info.moments, info, colours)}</section>
<section class="card" id="chapter-card"><h2>Chapters</h2>{_chapters_html(s, info)}</section>
<div class="cols">
<section class="card"><h2>Most negative 5-minute segments</h2>{seg_html}</section>
<section class="card"><h2>Break nudges</h2>{nudge_html}</section>
</div>
<p class="note">{_e(DISCLAIMER)}</p>
<footer>Made on this computer by MindFlow {_e(__version__)}; nothing left it. {_e(changes)}.
Face visible {_e(format_duration(s.face_s))}, no face {_e(format_duration(s.no_face_s))}, not analysed
{_e(format_duration(s.not_analysed_s))}. Data: {_e(SUMMARY_FILE)}, {_e(TIMELINE_FILE)}. {history}</footer>"""
    return page(f"MindFlow session {start.strftime('%Y-%m-%d %H:%M')}", body)

