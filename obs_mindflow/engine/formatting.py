"""How every output writes durations, percentages and clock times: the script log, the text source, the panel, the
reports, the history page and the command line. Standard library only (the OBS script formats with it while numpy
may be missing)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable


def aware(dt: datetime) -> datetime:
    """An aware datetime; a naive one is taken as local time."""
    return dt if dt.tzinfo is not None and dt.utcoffset() is not None else dt.astimezone()


def format_duration(seconds: float, words: Callable[..., str] | None = None) -> str:
    """``"1 h 02 min"``, ``"12 min 05 s"``, ``"45 s"`` (seconds rounded to whole seconds); with ``words`` (an
    :class:`obs_mindflow.i18n.Words`), in its language's units (``"12 分 05 秒"``)."""
    s = int(round(max(0.0, seconds)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if words is not None:
        if h:
            return words("duration.hours_minutes", h=h, m=f"{m:02d}")
        if m:
            return words("duration.minutes_seconds", m=m, s=f"{sec:02d}")
        return words("duration.seconds", n=sec)
    if h:
        return f"{h} h {m:02d} min"
    if m:
        return f"{m} min {sec:02d} s"
    return f"{sec} s"


def format_percent(x: float) -> str:
    """``0.213`` → ``"21 %"`` (whole percent)."""
    return f"{100 * x:.0f} %"


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


def media_clock(offset_s: float) -> str:
    """``HH:MM:SS`` of a media time or an elapsed time (seconds, whole seconds down): the reports' times."""
    return format_clock(offset_s, seconds=True)


def short_clock(seconds: float, long: bool | None = None) -> str:
    """``MM:SS``, or ``H:MM:SS`` when ``long`` (``None``: when ``seconds`` reaches an hour) — as YouTube reads
    chapter times, and the command line's progress line."""
    s = int(max(0.0, seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if long is None:
        long = h > 0
    return f"{h}:{m:02d}:{sec:02d}" if long else f"{m + 60 * h:02d}:{sec:02d}"
