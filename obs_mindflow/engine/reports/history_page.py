"""The ``history.html`` page and the ``history`` command's table, drawn from the rows of :mod:`.history`: negative
share and emotion profile per session over the weeks, a table of sessions; and a finished session's row added with
the page written again (:func:`record_session`). Standard library only (no numpy): the page's helpers come from
:mod:`.html`."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

from ..formatting import format_duration, format_percent
from ..session.summary import DISCLAIMER
from .history import History, HistoryRow, InputKey, relative_report
from .storage import HISTORY_DB, HISTORY_HTML, atomic_write

if TYPE_CHECKING:
    from ..session.facts import ReportFacts

log = logging.getLogger(__name__)


def _week_start(dt: datetime) -> datetime:
    d = dt.replace(hour=0, minute=0, second=0, microsecond=0)
    return d - timedelta(days=d.weekday())


def _history_svg(rows: Sequence[HistoryRow], colours: Mapping[str, str], order: Sequence[str]) -> str:
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
    parts.append(f'<text x="{left - 8}" y="{top + prof_h / 2 + 4:.1f}" text-anchor="end" class="tick">profile</text>')
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
            parts.append(f'<text x="{xw + 3:.1f}" y="{axis_y}" class="tick">week of '
                         f'{esc(week.strftime("%d %b"))}</text>')
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


def render_history_html(rows: Sequence[HistoryRow], *, root: Path | None = None, max_chart: int = 120) -> str:
    """``history.html``: tiles, a chart of the last ``max_chart`` sessions (profile bars above, negative share
    below, weeks marked) and a table of every session, newest first, each linking to its report. Sessions are in the
    order they happened (:func:`recorded_at`: a file analysed later sits where it was recorded). Self-contained
    like ``report.html`` (its style sheet and helpers)."""
    from .html import NEGATIVE_FILL, NEGATIVE_LINE, esc, label_colours, page

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
    span = (f"{first.strftime('%d %b %Y')} – {last.strftime('%d %b %Y')}" if first and last else "no session yet")
    tiles = [("Sessions", str(len(rows)), span, ""),
             ("Time analysed", format_duration(total_s), "all sessions", ""),
             ("Negative", format_percent(neg / face) if face > 0 else "–", "of readable-face time, all sessions",
              "neg"),
             ("Most often", most or "–", "dominant emotion, most sessions", ""),
             ("Calibrated", f"{sum(r.calibrated for r in rows)} of {len(rows)}", "sessions with a baseline", "")]
    tile_html = "".join(
        f'<div class="tile {cls}"><div class="k">{esc(k)}</div><div class="v">{esc(v)}</div>'
        f'<div class="s">{esc(sub)}</div></div>' for k, v, sub, cls in tiles)
    shown = list(rows)[-max_chart:]
    if shown:
        chart = _history_svg(shown, colours, order)
        more = (f" The chart shows the last {len(shown)} of {len(rows)} sessions." if len(shown) < len(rows) else "")
        legend = "".join(f'<span><i style="background:{colours[lab]}"></i>{esc(lab)}</span>' for lab in labels)
        legend = (f'<div class="legend"><span><i style="background:{NEGATIVE_FILL}"></i>negative share</span>'
                  f'<span><i class="line" style="background:{NEGATIVE_LINE}"></i>session to session</span>'
                  f'{legend}</div>')
        chart_html = (f'<p class="sub">One column per session, oldest on the left; weeks start on Monday. Above: the '
                      f'share of readable-face time per emotion; below: the negative share.{more}</p>'
                      f'{chart}{legend}')
    else:
        chart_html = '<p class="small">No session has been recorded yet.</p>'
    body_rows = []
    for r in reversed(rows):
        prof = sorted(r.profile.items(), key=lambda kv: -kv[1])
        prof_text = ", ".join(f"{lab} {format_percent(v)}" for lab, v in prof if v > 0) or "no face"
        total = sum(r.profile.values())
        mini = "".join(f'<i style="width:{100 * r.profile[lab] / total:.1f}%;background:{colours[lab]}"></i>'
                       for lab in order if total > 0 and r.profile.get(lab, 0) > 0)
        top = f"{prof[0][0]} {format_percent(prof[0][1])}" if total > 0 else "no face"
        prof_cell = f'<span class="mini" title="{esc(prof_text)}">{mini}</span>{esc(top)}'
        link = f"{r.report}/report.html"
        when = recorded_at(r).strftime("%a %d %b %Y, %H:%M")
        note = ("<br><small>recovered</small>" if r.recovered else "") + (
            f'<br><small>analysed {esc(r.started_at.strftime("%d %b %Y"))}</small>' if r.input is not None else "")
        body_rows.append(
            f'<tr><td class="time"><a href="{esc(link)}">{esc(when)}</a>{note}</td>'
            f'<td class="src" title="{esc(r.input.path if r.input is not None else r.source)}">'
            f'{esc(source_of(r))}</td><td class="time">{esc(format_duration(r.duration_s))}</td>'
            f'<td class="num">{esc(format_percent(r.coverage))}</td>'
            f'<td class="num neg">{esc(format_percent(r.negative_share)) if r.negative_share is not None else "–"}'
            f'</td><td class="num">{esc(format_percent(r.uncertain_share))}</td><td class="prof">{prof_cell}</td>'
            f'<td>{"yes" if r.calibrated else "no"}</td><td>{esc(r.model)}</td><td class="num">{r.moments}</td>'
            f'</tr>')
    table = ('<table class="rows"><thead><tr><th>Session</th><th>Source or file</th><th>Length</th>'
             '<th>Face visible</th><th>Negative</th>'
             '<th>Uncertain</th><th>Profile</th><th>Calibrated</th><th>Model</th><th>Moments</th>'
             '</tr></thead><tbody>' + "".join(body_rows) + "</tbody></table>") if rows else ""
    where = f" · {esc(root)}" if root is not None else ""
    body = f"""<header><div class="brand">MindFlow</div>
<h1>Session history</h1>
<p class="meta">{len(rows)} session{'s' if len(rows) != 1 else ''}{where}</p>
<p class="basis">Each session's figures are as its report gives them: the negative share is of the time with a readable
face, and sessions without a personal baseline rest on the model's own readings.</p></header>
<section class="tiles">{tile_html}</section>
<section class="card" id="history"><h2>Emotion profile and negative share per session</h2>{chart_html}</section>
<section class="card" id="sessions"><h2>Sessions</h2>
<p class="sub">Newest first, by when each session happened (a file analysed later: when it was recorded); each date
opens the session's report.</p>{table}</section>
<p class="note">{esc(DISCLAIMER)}</p>
<footer>Made on this computer by MindFlow from {esc(HISTORY_DB)}; nothing left it.</footer>"""
    return page("MindFlow session history", body)


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
    raises: returns ``""`` when all went well, else sentences for the summary (what was set aside or upgraded, or
    why the history could not be updated)."""
    root = Path(root).expanduser()
    try:
        with History.open(root) as h:
            h.add(HistoryRow.from_session(relative_report(root, folder), facts, input))
            rows = h.rows()
            notes = list(h.notes)
        atomic_write(root / HISTORY_HTML, render_history_html(rows, root=root))
        return " ".join(notes)
    except Exception as exc:  # noqa: BLE001 - the history must never fail a session's finish
        log.warning("history not updated: %s", exc)
        return f"History not updated: {exc}"


def write_history_page(root: str | Path) -> tuple[list[HistoryRow], Path, list[str]]:
    """Read the history under ``root`` and write ``history.html`` there. Returns ``(rows, page, notes)``. Raises
    :class:`HistoryError` or ``OSError``."""
    root = Path(root).expanduser()
    with History.open(root) as h:
        rows, notes = h.rows(), list(h.notes)
    page = root / HISTORY_HTML
    atomic_write(page, render_history_html(rows, root=root))
    return rows, page, notes
