"""What a finished session's report says, worked out once at the session's end and handed to every writer (the
summary text, ``summary.json``, ``timeline.csv``, ``report.html`` and the history row): the statistics, the session's
own facts (:class:`SessionInfo`), the most negative segments, the ranked moments, the chapters and the clock the
times are shown on."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..formatting import format_clock, media_clock
from .events import Event
from .moments import Chapters, Moment, make_chapters, ranked
from .snapshot import Segment, StatsSnapshot, top_negative_segments

#: The segments' length and the face time each needs (:func:`top_negative_segments`' defaults), and how many.
SEGMENT_S, SEGMENT_MIN_FACE_S, TOP_SEGMENTS = 300.0, 60.0, 3


@dataclass(frozen=True)
class SessionInfo:
    """What a report says about its session besides the statistics. ``started_at``: aware wall time of the first
    result; ``nudges``: the nudge events of the session; ``recovered``: rebuilt from a checkpoint; ``calibration``:
    the personal baseline the readings rest on (``{"applied": False}`` when none); ``moments``: the session's
    moments (start order); ``media_offset_s``: for a video file, the video time (seconds) of the first analysed
    frame — session time 0 — so times shown are video times; ``None`` for a live session (times since its start);
    ``history_link``: the page links to ``../history.html`` (the report root's history); ``language``: the page's
    (an ``i18n`` locale such as ``de-DE``; ``""``: English)."""

    model: str
    labels: tuple[str, ...]
    negative_labels: tuple[str, ...]
    started_at: datetime
    source: str = ""
    recovered: bool = False
    nudges: tuple[Event, ...] = ()
    calibration: dict[str, Any] = field(default_factory=lambda: {"applied": False})
    moments: tuple[Moment, ...] = ()
    media_offset_s: float | None = None
    history_link: bool = False
    language: str = ""

    def media(self, offset_s: float) -> float:
        """Media time (seconds) of a session offset: the video's own time for a file, the offset itself live."""
        return offset_s + (self.media_offset_s or 0.0)

    def wall(self, offset_s: float) -> datetime:
        """Wall time of a session offset (seconds since the first result)."""
        return self.started_at + timedelta(seconds=offset_s)


@dataclass(frozen=True)
class ReportFacts:
    """A finished session as its report shows it. ``info``: ``None`` for a session that recorded no result (only
    the summary text is written then); ``model``: the model's name. ``segments``: the most negative 5-minute
    segments, highest first; ``moments``: every moment, best first (:func:`~.moments.ranked`); ``chapters``: the
    YouTube chapters in media time. Build it with :meth:`of`."""

    snapshot: StatsSnapshot
    info: SessionInfo | None
    segments: tuple[Segment, ...]
    moments: tuple[Moment, ...]
    chapters: Chapters
    model: str = ""

    @classmethod
    def of(cls, snapshot: StatsSnapshot, info: SessionInfo | None, *, model: str = "") -> "ReportFacts":
        """The facts of ``snapshot`` and ``info`` (``model``: the model's name when there is no ``info``)."""
        moments = info.moments if info is not None else ()
        offset = (info.media_offset_s if info is not None else None) or 0.0
        segs = top_negative_segments(snapshot, TOP_SEGMENTS, segment_seconds=SEGMENT_S,
                                     min_face_seconds=SEGMENT_MIN_FACE_S)
        return cls(snapshot, info, tuple(segs), tuple(ranked(moments)),
                   make_chapters(moments, snapshot.duration_s, offset_s=offset),
                   info.model if info is not None else model)

    @property
    def video(self) -> bool:
        """The times are a video file's own (else: since the session's start, and the wall clock)."""
        return self.info is not None and self.info.media_offset_s is not None

    def media(self, offset_s: float) -> float:
        """Media time (seconds) of a session offset (:meth:`SessionInfo.media`)."""
        return self.info.media(offset_s) if self.info is not None else offset_s

    def media_clock(self, offset_s: float) -> str:
        """``HH:MM:SS`` of a session offset in media time: the video's own time for a file, since the start live."""
        return media_clock(self.media(offset_s))

    def clock(self, offset_s: float, seconds: bool = False) -> str:
        """A session offset as the report shows it: the video's ``HH:MM:SS`` for a file; live, the wall clock
        ``HH:MM`` (``HH:MM:SS`` with ``seconds``), or the elapsed time when the start is unknown."""
        if self.video:
            return self.media_clock(offset_s)
        return format_clock(offset_s, self.info.started_at if self.info is not None else None, seconds=seconds)
