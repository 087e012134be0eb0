"""The ``history.html`` page and the ``history`` command's table, drawn from the rows of :mod:`.history`: negative
share and emotion profile per session over the weeks, a table of sessions; and a finished session's row added with
the page written again (:func:`record_session`). Standard library only (no numpy): the page's helpers come from
:mod:`.html`."""

from __future__ import annotations

import html
import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

from ..formatting import format_duration, format_percent
from ...i18n import FALLBACK, Words, say, words
from .history import History, HistoryRow, InputKey, relative_report
from .storage import HISTORY_DB, HISTORY_HTML, atomic_write

if TYPE_CHECKING:
    from ..session.facts import ReportFacts

log = logging.getLogger(__name__)


def _week_start(dt: datetime) -> datetime:
    d = dt.replace(hour=0, minute=0, second=0, microsecond=0)
    return d - timedelta(days=d.weekday())


def _date(dt: datetime, w: Words, key: str = "hist.date") -> str:
    """A date with the catalogue's month (and weekday) names, not the process locale's: ``07 Dec 2026``."""
    return w(key, dd=f"{dt.day:02d}", mon=w("history.months_short").split(",")[dt.month - 1], year=dt.year,
             wd=w("hist.weekdays_short").split(",")[dt.weekday()], time=f"{dt:%H:%M}")


def _history_svg(rows: Sequence[HistoryRow], colours: Mapping[str, str], order: Sequence[str], w: Words) -> str:
    """Profile columns (stacked in ``order`` from the bottom: the same place for an emotion in every column) above
    the negative share, one column per session, weeks marked."""
    from .html import NEGATIVE_FILL, NEGATIVE_LINE, esc

    width, left, right, top = 952, 58, 16, 10
    prof_h, gap, neg_h = 150, 26, 110
    neg_top = top + prof_h + gap
    axis_y = neg_top + neg_h + 18
    height = axis_y + 8
    plot_w = width - left - right
    n = len(rows)
    slot = plot_w / max(n, 1)
    bar_w = max(1.0, min(slot * 0.72, 36.0))
    parts = [f'<svg class="chart" id="history-chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
             f'aria-label="Emotion profile and negative share per session, oldest first">']
    for v in (0.0, 0.5, 1.0):
        y = neg_top + neg_h * (1 - v)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" class="tick">{int(v * 100)} %</text>')
    parts.append(f'<text x="{left - 8}" y="{top + prof_h / 2 + 4:.1f}" text-anchor="end" class="tick">'
                 f'{esc(w("hist.profile"))}</text>')
    pts: list[str] = []
    prev_week = None
    for i, r in enumerate(rows):
        cx = left + slot * (i + 0.5)
        x0 = cx - bar_w / 2
        week = _week_start(r.started_at)
        if week != prev_week:
            xw = left + slot * i
            if i:
                parts.append(f'<line x1="{xw:.1f}" y1="{top}" x2="{xw:.1f}" y2="{axis_y - 12}" class="tickline"/>')
            parts.append(f'<text x="{xw + 3:.1f}" y="{axis_y}" class="tick">'
                         f'{esc(w("hist.week_of", date=_date(week, w, "hist.date_short")))}</text>')
            prev_week = week
        y = top + prof_h
        total = sum(r.profile.values())
        if total > 0:
            for lab in sorted(r.profile, key=lambda x: order.index(x) if x in order else len(order)):
                h = prof_h * r.profile[lab] / total
                if h <= 0:
                    continue
                y -= h
                parts.append(f'<rect x="{x0:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.2f}" '
                             f'fill="{colours.get(lab, "#999")}" data-label="{esc(lab)}"/>')
        else:
            parts.append(f'<rect x="{x0:.1f}" y="{top + prof_h - 3}" width="{bar_w:.1f}" height="3" fill="#d5d9e0"/>')
        if r.negative_share is not None:
            yn = neg_top + neg_h * (1 - r.negative_share)
            parts.append(f'<rect x="{x0:.1f}" y="{yn:.1f}" width="{bar_w:.1f}" '
                         f'height="{neg_top + neg_h - yn:.1f}" fill="{NEGATIVE_FILL}" class="neg-bar"/>')
            pts.append(f"{'L' if pts else 'M'}{cx:.1f},{yn:.1f}")
    if len(pts) > 1:
        parts.append(f'<path d="{" ".join(pts)}" fill="none" stroke="{NEGATIVE_LINE}" class="avg"/>')
    for p in pts:
        x, y = p[1:].split(",")
        parts.append(f'<circle cx="{x}" cy="{y}" r="3.5" fill="{NEGATIVE_LINE}"/>')
    parts.append("</svg>")
    return "".join(parts)


def recorded_at(row: HistoryRow) -> datetime:
    """When the session happened: a live session's start; for a file analysed afterwards, the file's modification
    time (when its recording ended) — not when it was analysed (aware, local time)."""
    if row.input is not None and row.input.mtime_ns > 0:
        return datetime.fromtimestamp(row.input.mtime_ns / 1e9).astimezone()
    return row.started_at


def source_of(row: HistoryRow) -> str:
    """What was analysed: the file's name (analysed afterwards) or the OBS source (live); ``"–"`` when unknown."""
    if row.input is not None:
        return Path(row.input.path).name
    return row.source or "–"


def render_history_html(rows: Sequence[HistoryRow], *, root: Path | None = None, max_chart: int = 120,
                        language: str = "") -> str:
    """``history.html``: tiles, a chart of the last ``max_chart`` sessions (profile bars above, negative share
    below, weeks marked) and a table of every session, newest first, each linking to its report. Sessions are in the
    order they happened (:func:`recorded_at`: a file analysed later sits where it was recorded). Self-contained
    like ``report.html`` (its style sheet and helpers), in ``language`` (an ``i18n`` locale; ``""``: English)."""
    from .html import NEGATIVE_FILL, NEGATIVE_LINE, esc, label_colours, page

    w = words(language)

    def prose(key: str) -> str:         # a paragraph's text: only <, > and & need escaping there
        return html.escape(w(key), quote=False)

    rows = sorted(rows, key=recorded_at)

    labels: list[str] = []
    for r in rows:
        labels.extend(lab for lab in r.profile if lab not in labels)
    colours = label_colours(labels)
    weight = {lab: sum(r.profile.get(lab, 0.0) * r.face_s for r in rows) for lab in labels}
    order = sorted(labels, key=lambda lab: (-weight[lab], labels.index(lab)))    # the biggest at the bottom
    total_s = sum(r.duration_s for r in rows)
    face = sum(r.face_s for r in rows if r.negative_share is not None)
    neg = sum(r.face_s * r.negative_share for r in rows if r.negative_share is not None)
    doms = [r.dominant for r in rows if r.dominant]
    most = max(set(doms), key=lambda d: (doms.count(d), d)) if doms else ""
    first, last = (recorded_at(rows[0]), recorded_at(rows[-1])) if rows else (None, None)
    span = (f"{_date(first, w)} – {_date(last, w)}" if first and last else w("hist.no_session_yet"))
    tiles = [(w("hist.tile_sessions"), str(len(rows)), span, ""),
             (w("hist.tile_time"), format_duration(total_s, w), w("hist.all_sessions"), ""),
             (w("report.tile_negative"), format_percent(neg / face) if face > 0 else "–", w("hist.tile_negative_sub"),
              "neg"),
             (w("hist.tile_most"), w.emotion(most) or "–", w("hist.tile_most_sub"), ""),
             (w("hist.tile_calibrated"), w("hist.of", count=sum(r.calibrated for r in rows), total=len(rows)),
              w("hist.tile_calibrated_sub"), "")]
    tile_html = "".join(
        f'<div class="tile {cls}"><div class="k">{esc(k)}</div><div class="v">{esc(v)}</div>'
        f'<div class="s">{esc(sub)}</div></div>' for k, v, sub, cls in tiles)
    shown = list(rows)[-max_chart:]
    if shown:
        chart = _history_svg(shown, colours, order, w)
        sub = (w("hist.chart_sub_more", shown=len(shown), count=len(rows)) if len(shown) < len(rows) else
               w("hist.chart_sub"))
        legend = "".join(f'<span><i style="background:{colours[lab]}"></i>{esc(w.emotion(lab))}</span>'
                         for lab in labels)
        legend = (f'<div class="legend"><span><i style="background:{NEGATIVE_FILL}"></i>'
                  f'{esc(w("report.negative_share"))}</span><span><i class="line" '
                  f'style="background:{NEGATIVE_LINE}"></i>{esc(w("hist.session_to_session"))}</span>{legend}</div>')
        chart_html = f'<p class="sub">{esc(sub)}</p>{chart}{legend}'
    else:
        chart_html = f'<p class="small">{esc(w("hist.no_session"))}</p>'
    body_rows = []
    for r in reversed(rows):
        prof = sorted(r.profile.items(), key=lambda kv: -kv[1])
        prof_text = ", ".join(f"{w.emotion(lab)} {format_percent(v)}" for lab, v in prof if v > 0) or w("hist.no_face")
        total = sum(r.profile.values())
        mini = "".join(f'<i style="width:{100 * r.profile[lab] / total:.1f}%;background:{colours[lab]}"></i>'
                       for lab in order if total > 0 and r.profile.get(lab, 0) > 0)
        top = f"{w.emotion(prof[0][0])} {format_percent(prof[0][1])}" if total > 0 else w("hist.no_face")
        prof_cell = f'<span class="mini" title="{esc(prof_text)}">{mini}</span>{esc(top)}'
        link = f"{r.report}/report.html"
        when = _date(recorded_at(r), w, "hist.date_time")
        note = (f"<br><small>{esc(w('hist.recovered'))}</small>" if r.recovered else "") + (
            f'<br><small>{esc(w("hist.analysed", date=_date(r.started_at, w)))}</small>' if r.input is not None
            else "")
        body_rows.append(
            f'<tr><td class="time"><a href="{esc(link)}">{esc(when)}</a>{note}</td>'
            f'<td class="src" title="{esc(r.input.path if r.input is not None else r.source)}">'
            f'{esc(source_of(r))}</td><td class="time">{esc(format_duration(r.duration_s, w))}</td>'
            f'<td class="num">{esc(format_percent(r.coverage))}</td>'
            f'<td class="num neg">{esc(format_percent(r.negative_share)) if r.negative_share is not None else "–"}'
            f'</td><td class="num">{esc(format_percent(r.uncertain_share))}</td><td class="prof">{prof_cell}</td>'
            f'<td>{esc(w("hist.yes" if r.calibrated else "hist.no"))}</td><td>{esc(r.model)}</td>'
            f'<td class="num">{r.moments}</td>'
            f'</tr>')
    heads = "".join(f"<th>{esc(w('hist.col_' + c))}</th>" for c in ("session", "source", "length", "face",
                                                                    "negative", "uncertain", "profile",
                                                                    "calibrated", "model", "moments"))
    table = (f'<table class="rows"><thead><tr>{heads}</tr></thead><tbody>' + "".join(body_rows) +
             "</tbody></table>") if rows else ""
    where = f" · {esc(root)}" if root is not None else ""
    body = f"""<header><div class="brand">MindFlow</div>
<h1>{esc(w("hist.heading"))}</h1>
<p class="meta">{esc(w("hist.count_one" if len(rows) == 1 else "hist.count", count=len(rows)))}{where}</p>
<p class="basis">{prose("hist.basis")}</p></header>
<section class="tiles">{tile_html}</section>
<section class="card" id="history"><h2>{esc(w("hist.chart"))}</h2>{chart_html}</section>
<section class="card" id="sessions"><h2>{esc(w("hist.tile_sessions"))}</h2>
<p class="sub">{prose("hist.sessions_sub")}</p>{table}</section>
<p class="note">{esc(w("report.disclaimer"))}</p>
<footer>{esc(w("hist.footer", db=HISTORY_DB))}</footer>"""
    return page(w("hist.title"), body, "en" if w.lang == "en-US" else w.lang)   # English: as it always was


def table_text(rows: Iterable[HistoryRow]) -> str:
    """The history as a plain-text table (the ``history`` command), oldest first."""
    head = ("started", "length", "face", "negative", "uncertain", "dominant", "cal", "moments", "model", "source",
            "report")
    lines = [head]
    for r in sorted(rows, key=recorded_at):
        lines.append((recorded_at(r).strftime("%Y-%m-%d %H:%M"), format_duration(r.duration_s),
                      format_percent(r.coverage),
                      format_percent(r.negative_share) if r.negative_share is not None else "–",
                      format_percent(r.uncertain_share), r.dominant or "–", "yes" if r.calibrated else "no",
                      str(r.moments), r.model, source_of(r), r.report))
    widths = [max(len(str(x[i])) for x in lines) for i in range(len(head))]
    right = {1, 2, 3, 4, 7}
    return "\n".join("  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                               for i, (c, w) in enumerate(zip(line, widths))).rstrip() for line in lines)


def record_session(root: str | Path, folder: Path, facts: "ReportFacts", input: InputKey | None = None) -> str:
    """Add the finished session in ``folder`` to the history under ``root`` and rewrite ``history.html``. Never
    raises: returns ``""`` when all went well, else sentences for the summary, in the session's language (what was
    set aside or upgraded, or why the history could not be updated)."""
    root = Path(root).expanduser()
    language = facts.info.language if facts.info is not None else ""     # the newest session's
    w = words(language or FALLBACK)
    try:
        with History.open(root) as h:
            h.add(HistoryRow.from_session(relative_report(root, folder), facts, input))
            rows = h.rows()
            notes = list(h.notes)
        atomic_write(root / HISTORY_HTML, render_history_html(rows, root=root, language=language))
        return " ".join(say(n, w) for n in notes)
    except Exception as exc:  # noqa: BLE001 - the history must never fail a session's finish
        log.warning("history not updated: %s", exc)
        return w("problem.history_not_updated", detail=say(exc, w))


def write_history_page(root: str | Path, language: str = "") -> tuple[list[HistoryRow], Path, list[str]]:
    """Read the history under ``root`` and write ``history.html`` there, in ``language``. Returns ``(rows, page,
    notes)``. Raises :class:`HistoryError` or ``OSError``."""
    root = Path(root).expanduser()
    with History.open(root) as h:
        rows, notes = h.rows(), list(h.notes)
    page = root / HISTORY_HTML
    atomic_write(page, render_history_html(rows, root=root, language=language))
    return rows, page, notes
