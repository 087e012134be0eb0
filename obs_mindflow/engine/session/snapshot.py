"""What a session looks like at one moment: immutable snapshot types and the reads made from them.

:class:`StatsSnapshot` is what :class:`~obs_mindflow.engine.session.stats.SessionStats` hands to everything that
shows or writes a session (views, summary text, reports). All times are **seconds**; offsets are seconds since the
session's start. This module needs numpy and the standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np


def negative_mask(labels: Sequence[str], negative_labels: Sequence[str]) -> np.ndarray:
    """Boolean mask over ``labels``: True where the label counts as negative."""
    negatives = set(negative_labels)
    return np.array([lab in negatives for lab in labels], bool)


def group_rows(rows: np.ndarray, per: int) -> np.ndarray:
    """Sum every ``per`` consecutive rows of ``rows`` (the last group may be partial)."""
    per = max(1, int(per))
    m = -(-len(rows) // per)
    if m == 0:
        return rows
    pad = np.zeros((m * per - len(rows),) + rows.shape[1:])
    return np.concatenate([rows, pad]).reshape((m, per) + rows.shape[1:]).sum(axis=1)


@dataclass(frozen=True)
class NegativeStretch:
    """A continuous stretch of negative displayed emotions. Offsets in **seconds since the session's start**."""

    duration_s: float
    start_s: float
    end_s: float

    def to_dict(self) -> dict[str, float]:
        return {"duration_s": self.duration_s, "start_s": self.start_s, "end_s": self.end_s}


@dataclass(frozen=True)
class TimelineBin:
    """One timeline bin. Times in **seconds since the session's start**; ``width_s`` is shorter for the last bin.

    ``seconds`` per label (card order); ``face_s`` is their sum (readable-face time); ``shares`` are shares of it
    (all zero when ``face_s`` is 0); ``negative_share`` and ``dominant`` are ``None`` / ``""`` when no readable face
    was visible in the bin; ``uncertain_s``: a face was visible but could not be read.
    """

    index: int
    start_s: float
    width_s: float
    seconds: tuple[float, ...]
    uncertain_s: float
    no_face_s: float
    not_analysed_s: float
    face_s: float
    shares: tuple[float, ...]
    negative_s: float
    negative_share: float | None
    dominant: str


@dataclass(frozen=True)
class Segment:
    """A stretch of the timeline (e.g. 5 minutes), in **seconds since the session's start**."""

    start_s: float
    end_s: float
    face_s: float
    negative_share: float

    def to_dict(self) -> dict[str, float]:
        return {"start_s": self.start_s, "end_s": self.end_s, "face_s": self.face_s,
                "negative_share": self.negative_share}


@dataclass(frozen=True, eq=False)
class StatsSnapshot:
    """A consistent, immutable copy of :class:`SessionStats` at one moment. Times in **seconds**.

    - ``duration_s`` = ``analysed_s`` + ``not_analysed_s``; ``analysed_s`` = ``face_s`` + ``uncertain_s`` +
      ``no_face_s``; ``face_s`` is **readable**-face time, ``uncertain_s`` face time that could not be read.
    - ``seconds`` / ``shares``: per label in card order; shares of readable-face time (``face_s``); so is
      ``negative_share`` — ``None`` when no readable face was seen (the share is undefined, not 0), as
      ``rolling_negative_share`` is over its window.
    - ``coverage``: ``(face_s + uncertain_s) / analysed_s`` — a face was visible (0 before anything was analysed);
      ``uncertain_share``: ``uncertain_s / (face_s + uncertain_s)``.
    - ``rolling_*``: over the last ``rolling_seconds`` of session time (``rolling_window_s`` is shorter early on).
    - ``timeline``: read-only ``(n_bins, len(labels) + 3)`` float64 array of seconds per bin — one column per label,
      then uncertain, no-face, not-analysed — with bins of ``bin_seconds`` (the last one may be partial); ``None`` when
      the snapshot was taken with ``timeline=False``.
    - ``first_timestamp`` / ``last_timestamp``: on the caller's clock (``None`` before the first update).

    Equality is identity (it holds an array); compare ``to_dict()`` instead.
    """

    labels: tuple[str, ...]
    negative_labels: tuple[str, ...]
    updates: int
    duration_s: float
    analysed_s: float
    face_s: float
    uncertain_s: float
    no_face_s: float
    not_analysed_s: float
    coverage: float
    seconds: tuple[float, ...]
    shares: tuple[float, ...]
    negative_s: float
    negative_share: float | None
    dominant: str
    current_emotion: str
    label_changes: int
    face_losses: int
    clock_resets: int
    longest_negative: NegativeStretch | None
    rolling_seconds: float
    rolling_window_s: float
    rolling_face_s: float
    rolling_negative_share: float | None
    rolling_coverage: float
    max_gap_seconds: float
    bin_seconds: float
    timeline: np.ndarray | None
    first_timestamp: float | None
    last_timestamp: float | None

    @property
    def started(self) -> bool:
        return self.updates > 0

    @property
    def uncertain_share(self) -> float:
        """Share of face-visible time that could not be read (0..1)."""
        visible = self.face_s + self.uncertain_s
        return self.uncertain_s / visible if visible > 0 else 0.0

    def profile(self) -> list[tuple[str, float]]:
        """``(label, share of face time)`` sorted by share, largest first (card order breaks ties)."""
        order = sorted(range(len(self.labels)), key=lambda i: (-self.shares[i], i))
        return [(self.labels[i], self.shares[i]) for i in order]

    def timeline_bins(self) -> list[TimelineBin]:
        """The timeline as :class:`TimelineBin` records (empty when the snapshot has no timeline)."""
        if self.timeline is None or len(self.timeline) == 0:
            return []
        c = len(self.labels)
        tl = self.timeline
        neg_mask = negative_mask(self.labels, self.negative_labels)
        secs = tl[:, :c]
        face = secs.sum(axis=1)
        neg = secs[:, neg_mask].sum(axis=1)
        has = face > 0
        shares = np.divide(secs, face[:, None], out=np.zeros_like(secs), where=has[:, None])
        starts = np.arange(len(tl)) * self.bin_seconds
        widths = np.clip(self.duration_s - starts, 0.0, self.bin_seconds)
        dom = np.argmax(secs, axis=1)
        out = []
        for i, (st, wd, sc, nf, na, fc, sh, ng, h, d) in enumerate(zip(
                starts.tolist(), widths.tolist(), secs.tolist(), tl[:, c + 1].tolist(), tl[:, c + 2].tolist(),
                face.tolist(), shares.tolist(), neg.tolist(), has.tolist(), dom.tolist())):
            out.append(TimelineBin(index=i, start_s=st, width_s=wd, seconds=tuple(sc), uncertain_s=float(tl[i, c]),
                                   no_face_s=nf,
                                   not_analysed_s=na, face_s=fc, shares=tuple(sh), negative_s=ng,
                                   negative_share=(ng / fc if h else None), dominant=self.labels[d] if h else ""))
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict. Timeline seconds are rounded to milliseconds."""
        d: dict[str, Any] = {
            "labels": list(self.labels),
            "negative_labels": list(self.negative_labels),
            "updates": self.updates,
            "duration_s": self.duration_s,
            "analysed_s": self.analysed_s,
            "face_s": self.face_s,
            "uncertain_s": self.uncertain_s,
            "uncertain_share": self.uncertain_share,
            "no_face_s": self.no_face_s,
            "not_analysed_s": self.not_analysed_s,
            "coverage": self.coverage,
            "seconds": dict(zip(self.labels, self.seconds)),
            "shares": dict(zip(self.labels, self.shares)),
            "profile": [{"label": lab, "share": s} for lab, s in self.profile()],
            "negative_s": self.negative_s,
            "negative_share": self.negative_share,
            "dominant": self.dominant,
            "current_emotion": self.current_emotion,
            "label_changes": self.label_changes,
            "face_losses": self.face_losses,
            "clock_resets": self.clock_resets,
            "longest_negative": None if self.longest_negative is None else self.longest_negative.to_dict(),
            "rolling": {"seconds": self.rolling_seconds, "window_s": self.rolling_window_s,
                        "face_s": self.rolling_face_s, "negative_share": self.rolling_negative_share,
                        "coverage": self.rolling_coverage},
            "max_gap_seconds": self.max_gap_seconds,
            "first_timestamp": self.first_timestamp,
            "last_timestamp": self.last_timestamp,
        }
        if self.timeline is not None:
            d["timeline"] = {
                "bin_seconds": self.bin_seconds,
                "columns": [*self.labels, "uncertain", "no_face", "not_analysed"],
                "rows": np.round(self.timeline, 3).tolist(),
            }
        return d



def top_negative_segments(snapshot: StatsSnapshot, n: int = 3, *, segment_seconds: float = 300.0,
                          min_face_seconds: float = 60.0) -> list[Segment]:
    """The ``n`` segments of ``segment_seconds`` (aligned to the session start, from the timeline) with the highest
    negative share of face time, highest first. Segments with less than ``min_face_seconds`` of face-visible time or
    no negative time at all are skipped. When the timeline bins are wider than ``segment_seconds`` (sessions of
    days), segments are one bin wide."""
    tl = snapshot.timeline
    if tl is None or len(tl) == 0 or n <= 0:
        return []
    c = len(snapshot.labels)
    per = max(1, int(round(segment_seconds / snapshot.bin_seconds)))
    width = per * snapshot.bin_seconds
    neg_mask = negative_mask(snapshot.labels, snapshot.negative_labels)
    face_g = group_rows(tl[:, :c].sum(axis=1), per)
    neg_g = group_rows(tl[:, :c][:, neg_mask].sum(axis=1), per)
    segs = []
    for i in range(len(face_g)):
        if face_g[i] >= min_face_seconds and neg_g[i] > 0:
            start = i * width
            segs.append(Segment(start_s=start, end_s=min(start + width, snapshot.duration_s),
                                face_s=float(face_g[i]), negative_share=float(neg_g[i] / face_g[i])))
    segs.sort(key=lambda s: (-s.negative_share, s.start_s))
    return segs[:n]

