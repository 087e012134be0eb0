"""``report.html``: one self-contained page per session — inline CSS (``report.css`` beside this module) and SVG,
no script, no external resource. Every string from outside (labels, model, source, messages) is HTML-escaped."""

from __future__ import annotations

import functools
import html
import math
from importlib import resources
from typing import Any, Sequence

import numpy as np

from ... import __version__
from ...i18n import Words, say, words
from ..formatting import format_clock, format_duration, format_percent
from ..session.facts import SEGMENT_MIN_FACE_S, SEGMENT_S, ReportFacts
from ..session.snapshot import StatsSnapshot, group_rows, negative_mask
from ..session.summary import basis_lines
from ..views import report_moment_title
from .storage import SUMMARY_FILE, TIMELINE_FILE

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


def page(title: str, body: str, lang: str = "en") -> str:
    """A whole self-contained MindFlow page around ``body`` (HTML, already escaped) in language ``lang`` (the browser
    picks its fonts by it: CJK glyphs): the style sheet inline, no script, no external resource. ``report.html`` and
    ``history.html`` share it."""
    return f"""<!DOCTYPE html>
<html lang="{_e(lang)}"><head><meta charset="utf-8">
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


def _profile_svg(snapshot: StatsSnapshot, colours: dict[str, str], tr: Words) -> str:
    prof = snapshot.profile()
    width, left, right, row, top = 952, 130, 90, 40, 10
    height = top + row * len(prof) + 26
    top_share = max((s for _, s in prof), default=0.0)
    scale_max = min(1.0, max(0.1, math.ceil(top_share * 10 - 1e-9) / 10))
    plot_w = width - left - right
    parts = [f'<svg class="chart" id="profile-chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
             f'aria-label="{_e(tr("report.profile"))}">']
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
        parts.append(f'<text x="{left - 14}" y="{y + 22}" text-anchor="end" class="lab">{_e(tr.emotion(lab))}</text>')
        parts.append(f'<rect x="{left}" y="{y + 6}" width="{max(w, 0.0):.1f}" height="{row - 14}" rx="5" '
                     f'fill="{colours[lab]}" data-label="{_e(lab)}"/>')
        tag = f' <tspan class="negtag">{_e(tr("report.negative_tag"))}</tspan>' if neg else ""
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


def _span_phrase(seconds: float, w: Words) -> str:
    """``"20-second"``, ``"3-minute"``, ``"1.5-hour"`` in English; ``"20 s"``, ``"3 min"`` … in ``w``'s units
    elsewhere (an adjective made of a number reads well in English only)."""
    english = w.lang == "en-US"
    for unit, size, key in (("hour", 3600, "duration.hours"), ("minute", 60, "duration.minutes"),
                            ("second", 1, "duration.seconds")):
        if seconds >= size and (seconds / size) * 2 == round(seconds / size * 2):
            n = f"{seconds / size:g}"
            return f"{n}-{unit}" if english else w(key, n=n)
    return format_duration(seconds, w)


def _timeline_svg(facts: ReportFacts, colours: dict[str, str], w: Words) -> str:
    left, right, top, plot_h, width = 58, 16, 14, 200, 952
    strip_y, strip_h = top + plot_h + 12, 22
    lane_y, lane_h = strip_y + strip_h + 6, 16
    axis_y = lane_y + lane_h + 18
    snapshot, info = facts.snapshot, facts.info
    assert info is not None
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
             f'aria-label="{_e(w("report.timeline"))}">']
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
    parts.append(f'<text x="{left - 8}" y="{strip_y + 15}" text-anchor="end" class="tick">{_e(w("report.axis_dominant"))}</text>')
    # moments: a lane under the strip, the ten best-ranked numbered
    parts.append(f'<text x="{left - 8}" y="{lane_y + 12}" text-anchor="end" class="tick">{_e(w("report.axis_moments"))}</text>')
    rank = {m.id: i for i, m in enumerate(facts.moments, 1)}
    for m in info.moments:
        x0, x1 = x_of(m.start_s), x_of(m.end_s)
        col = NEGATIVE_LINE if m.negative else colours.get(m.emotion, "#888")
        parts.append(f'<rect x="{x0:.2f}" y="{lane_y}" width="{max(x1 - x0, 2.0):.2f}" height="{lane_h}" rx="3" '
                     f'fill="{col}" class="moment" data-moment="{m.id}" data-rank="{rank.get(m.id, 0)}">'
                     f'<title>{_e(f"#{rank.get(m.id, 0)} {m.title} ({w.emotion(m.emotion)})")}</title></rect>')
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
                     f'{_e(facts.media_clock(t))}</text>')
        if live:
            parts.append(f'<text x="{x:.1f}" y="{axis_y + 14}" text-anchor="{anchor}" class="tick wall">'
                         f'{_e(format_clock(t, start, seconds=step < 60))}</text>')
        t += step
    parts.append(f'<text x="{left - 8}" y="{axis_y}" text-anchor="end" class="tick">'
                 f'{_e(w("report.axis_elapsed" if live else "report.axis_video"))}</text>')
    if live:
        parts.append(f'<text x="{left - 8}" y="{axis_y + 14}" text-anchor="end" class="tick wall">'
                     f'{_e(w("report.axis_clock"))}</text>')
    parts.append(f'<line x1="{left}" y1="{y_of(0):.1f}" x2="{width - right}" y2="{y_of(0):.1f}" class="axis"/>')
    parts.append("</svg>")
    return "".join(parts)



MAX_LISTED_MOMENTS = 20


def _moments_html(facts: ReportFacts, colours: dict[str, str], w: Words) -> str:
    """The ranked moments (the best :data:`MAX_LISTED_MOMENTS`), times in ``HH:MM:SS`` since the start (a file: the
    video's own time)."""
    best = facts.moments
    if not best:
        return f'<p class="small">{_e(w("report.no_moment"))}</p>'
    rows = []
    for i, m in enumerate(best[:MAX_LISTED_MOMENTS], 1):
        col = NEGATIVE_LINE if m.negative else colours.get(m.emotion, "#888")
        what = f"{report_moment_title(m.title, m.emotion, w)} ({w.emotion(m.emotion)}{', ' + w('report.negative_tag') if m.negative else ''})"
        kind = w("report.kind_spike" if m.kind == "spike" else "report.kind_held")
        rows.append(f'<tr data-moment="{m.id}"><td class="num">{i}</td>'
                    f'<td class="time">{_e(facts.media_clock(m.start_s))}–{_e(facts.media_clock(m.end_s))}</td>'
                    f'<td><i class="dot" style="background:{col}"></i>{_e(what)}</td><td>{_e(kind)}</td>'
                    f'<td class="num">{_e(format_duration(m.seconds, w))}</td>'
                    f'<td class="num">{_e(format_percent(m.peak))}</td><td class="num">{_e(format_percent(m.mean))}'
                    f'</td></tr>')
    more = (f'<p class="small">{_e(w("report.more_moments", count=len(best) - MAX_LISTED_MOMENTS))}</p>'
            if len(best) > MAX_LISTED_MOMENTS else "")
    heads = "".join(f"<th>{_e(w('report.col_' + c))}</th>" for c in ("when", "what", "kind", "held", "peak", "mean"))
    return ('<table class="rows" id="moment-list"><thead><tr><th>#</th>' + heads + '</tr></thead><tbody>' +
            "".join(rows) + "</tbody></table>" + more)


def _chapters_html(facts: ReportFacts, w: Words) -> str:
    """The chapter block to paste (its titles in the report's language), or the chapters found and why there is no
    block, and the note (how they were picked), all in the report's language."""
    ch = facts.chapters
    emotions = {m.id: m.emotion for m in facts.moments}
    titles = [w("report.chapter_start") if c.moment is None else
              report_moment_title(c.title, emotions.get(c.moment, ""), w) for c in ch.chapters]
    if ch.usable:
        text = "\n".join(f"{c.time} {t}" for c, t in zip(ch.chapters, titles))
        return (f'<p class="sub">{_e(w("report.chapters_paste"))} {_e(say(ch.note, w))}</p>'
                f'<pre class="chapters" id="chapters">{_e(text)}</pre>')
    listed = "".join(f"<li><b>{_e(c.time)}</b> {_e(t)}</li>" for c, t in zip(ch.chapters, titles))
    return (f'<p class="small" id="chapters-note">{_e(w("report.no_chapters", note=say(ch.note, w)))}</p>'
            f'<ol class="segs">{listed}</ol>')


def _date(day: Any, w: Words) -> str:
    """``Monday 07 December 2026`` in the language of ``w`` (the names from its catalogue, not the process locale)."""
    return w("report.date", weekday=w("report.weekdays").split(",")[day.weekday()], day=f"{day.day:02d}",
             month=w("report.months").split(",")[day.month - 1], year=day.year)


def render_html(facts: ReportFacts, summary_text: str = "") -> str:
    """``report.html``: one self-contained page — inline CSS and SVG, no script, no external resource — in the
    session's language (``info.language``: the streamer's; English when empty). Every string from outside (labels,
    model, source, messages) is HTML-escaped."""
    s, info = facts.snapshot, facts.info
    assert info is not None
    w = words(info.language)
    colours = label_colours(s.labels)
    start = info.started_at
    clock = facts.clock           # a file: its own times, never the clock of the analysis
    if facts.video:
        span = w("report.video_span", start=clock(0), end=clock(s.duration_s))
        date = w("report.analysed_on", date=_date(start, w))
    else:
        span = f"{start.strftime('%H:%M')}–{info.wall(s.duration_s).strftime('%H:%M')}"
        date = _date(start, w)
    meta = [date, span, w("report.model", model=info.model)] + (
        [w("report.source", source=info.source)] if info.source else [])
    ln = s.longest_negative
    negative = s.negative_share is not None and format_percent(s.negative_share) != "0 %"
    stretch = ln is not None and ln.duration_s > 0
    tiles = [      # the negative tiles are red only when there is something negative to say (metric: a stable id)
        ("duration", w("report.tile_duration"), format_duration(s.duration_s, w), span, ""),
        ("face-visible", w("report.tile_face"), format_percent(s.coverage),
         w("report.tile_face_sub", uncertain=format_percent(s.uncertain_share)), ""),
        ("negative", w("report.tile_negative"), "–" if s.negative_share is None else format_percent(s.negative_share),
         w("report.tile_negative_sub"), "neg" if negative else ""),
        ("dominant", w("report.tile_dominant"), w.emotion(s.dominant) if s.dominant else "–",
         w("report.tile_dominant_sub", share=format_percent(s.shares[s.labels.index(s.dominant)])) if s.dominant
         else w("report.tile_no_face_seen"), ""),
        ("longest-negative", w("report.tile_longest"),
         format_duration(ln.duration_s, w) if stretch else w("report.none"),
         f"{clock(ln.start_s, True)}–{clock(ln.end_s, True)}" if stretch else w("report.tile_no_stretch"),
         "neg" if stretch else ""),
    ]
    tile_html = "".join(
        f'<div class="tile {cls}" data-metric="{metric}"><div class="k">{_e(k)}</div>'
        f'<div class="v">{_e(v)}</div><div class="s">{_e(sub)}</div></div>' for metric, k, v, sub, cls in tiles)
    legend = "".join(f'<span><i style="background:{colours[lab]}"></i>{_e(w.emotion(lab))}</span>' for lab in s.labels)
    legend += (f'<span><i style="background:{UNCERTAIN_COLOUR}"></i>{_e(w.emotion("uncertain"))}</span>'
               f'<span><i style="background:{NO_FACE_COLOUR}"></i>{_e(w.emotion("no face"))}</span>'
               f'<span><i style="background:{NOT_ANALYSED_COLOUR};border:1px solid #d5d9e0"></i>'
               f'{_e(w("report.not_analysed"))}</span>')
    segs = facts.segments
    if segs:
        seg_html = "<ol class=\"segs\">" + "".join(
            f"<li><b>{_e(clock(g.start_s))}–{_e(clock(g.end_s))}</b> · "
            f"{_e(w('report.segment_share', share=format_percent(g.negative_share)))}</li>" for g in segs) + "</ol>"
    elif s.duration_s < SEGMENT_S or s.face_s < SEGMENT_MIN_FACE_S:
        seg_html = f'<p class="small">{_e(w("report.segments_short", seconds=f"{SEGMENT_MIN_FACE_S:.0f}"))}</p>'
    else:
        seg_html = f'<p class="small">{_e(w("report.segments_none", seconds=f"{SEGMENT_MIN_FACE_S:.0f}"))}</p>'
    if info.nudges:
        nudge_html = "<ol class=\"segs\">" + "".join(
            f"<li><b>{_e(clock(n.time_s))}</b> · {_e(n.message)}</li>" for n in info.nudges) + "</ol>"
    else:
        nudge_html = f'<p class="small">{_e(w("report.no_nudge"))}</p>'
    neg_names = ", ".join(w.emotion(lab) for lab in s.negative_labels) or w("report.none")
    step_s = _group_timeline(s)[0]
    avg_s = step_s * _average_groups(step_s)
    profile = (_profile_svg(s, colours, w) if s.negative_share is not None else f'<p class="small">{_e(w("report.no_profile"))}</p>')
    recovered = f'<span class="badge">{_e(w("report.recovered"))}</span>' if info.recovered else ""
    per_minute = w.number(s.label_changes / (s.duration_s / 60), ".1f") if s.duration_s > 0 else ""
    changes = w("report.changes", count=s.label_changes, per_minute=per_minute) if s.duration_s > 0 else ""
    time_note = w("report.times_video" if info.media_offset_s is not None else "report.times_live")
    history = (f'<a class="hist" href="../history.html">{_e(w("report.history"))}</a>' if info.history_link else "")
    step, average = _span_phrase(step_s, w), _span_phrase(avg_s, w)
    body = f"""<header><div class="brand">MindFlow</div>
<h1>{_e(w("report.heading"))}{recovered}</h1>
<p class="meta">{' · '.join(_e(m) for m in meta)}</p>
<p class="basis" id="basis">{' '.join(_e(x) for x in basis_lines(s, info.calibration, w))}</p></header>
<section class="tiles">{tile_html}</section>
<section class="card" id="profile"><h2>{_e(w("report.profile"))}</h2>
<p class="sub">{_e(w("report.profile_sub", negative=neg_names))}</p>{profile}</section>
<section class="card" id="timeline"><h2>{_e(w("report.timeline"))}</h2>
<p class="sub">{_e(w("report.timeline_sub", step=step, average=average, times=time_note))}</p>
{_timeline_svg(facts, colours, w)}
<div class="legend"><span><i style="background:{NEGATIVE_FILL}"></i>{_e(w("report.negative_share"))}</span>
<span><i class="line" style="background:{NEGATIVE_LINE}"></i>{_e(w("report.average", span=average))}</span>{legend}</div>
</section>
<section class="card" id="moments"><h2>{_e(w("report.moments"))}</h2>
<p class="sub">{_e(w("report.moments_sub", times=time_note))}</p>
{_moments_html(facts, colours, w)}</section>
<section class="card" id="chapter-card"><h2>{_e(w("report.chapters"))}</h2>{_chapters_html(facts, w)}</section>
<div class="cols">
<section class="card"><h2>{_e(w("report.segments"))}</h2>{seg_html}</section>
<section class="card"><h2>{_e(w("report.nudges"))}</h2>{nudge_html}</section>
</div>
<p class="note">{_e(w("report.disclaimer"))}</p>
<footer>{_e(w("report.footer", version=__version__, changes=changes, face=format_duration(s.face_s, w),
                no_face=format_duration(s.no_face_s, w), not_analysed=format_duration(s.not_analysed_s, w),
                files=f"{SUMMARY_FILE}, {TIMELINE_FILE}"))} {history}</footer>"""
    return page(w("report.title", when=start.strftime("%Y-%m-%d %H:%M")), body, w.lang)

