"""Moments: sustained episodes of one emotion, found live in the smoothed stream, and the chapters made from them.

A **moment** is an episode of one *key* of the displayed (smoothed) emotion: a label (``happy``, ``neutral`` …), or
``negative`` for any run of the card's negative labels (``sad`` then ``angry`` is one negative stretch). It is

- **sustained** when it lasts at least ``min_seconds`` (``calm_min_seconds`` for calm labels such as ``neutral``,
  ``negative_min_seconds`` for a negative stretch), or
- a **spike** when it is shorter but intense: the key's smoothed probability reached ``spike_probability`` and the
  episode lasted ``spike_min_seconds`` (a surprise, a burst of laughter). Calm labels never spike.

Only time with a *readable* face is part of a moment: "uncertain" and no-face time end it, except that a
moment resumes when the same key comes back within ``merge_gap_s`` (a head turned away for a second); the gap is in
the moment's span (``start_s``..``end_s``) but not in its ``seconds``, ``mean`` or ``peak``. Another readable key
ends a moment at once.

Every figure is **session time in seconds** (seconds since the session's first result): time-weighted with the
statistics' sample-and-hold rule (a result stands for the time until the next one, at most ``max_interval_s``).
``peak`` and ``mean`` are the key's smoothed probability (for ``negative``: the sum over the negative labels).

Defaults, and why (checked on the bundled sample clip by ``tests/test_report.py``; the displayed label there runs
happy 0.4–11.0 s and neutral 14.4–25.4 s):

- ``min_seconds`` 5 s: the smoother holds any label at least 2 s (its minimum dwell), so 5 s is clearly more than
  one switch and back; a smile held for 5 s is what a viewer notices.
- ``calm_min_seconds`` and ``negative_min_seconds`` 10 s: a resting face is most of a stream, so a calm moment
  must be longer to say something; an uncalibrated model reads many resting faces as negative for a few seconds,
  so a negative stretch must last too (the sample's 11-s neutral face is a calm moment; its 26 % "angry" reading
  never is a negative one, because the displayed label stays neutral).
- ``spike_probability`` 0.7 with ``spike_min_seconds`` 1 s: with the smoother's 1-s time constant, a clear expression
  read at 0.9 reaches 0.7 after about 1.5 s — a brief, unmistakable expression, not a wobble.
- ``merge_gap_s`` 1.5 s: longer than the smoother's 0.5-s grace for a lost face and half-dwell for "uncertain", shorter
  than its 2-s dwell, so only blips of no face or uncertainty are bridged, never another label.

Ranking: ``score`` = (mean + peak) / 2 × log2(1 + seconds / the key's minimum) × (0.5 for calm labels): longer and
more intense ranks higher, with diminishing returns for length; calm moments count half.

:class:`MomentDetector` is a rule (see :mod:`.rules`): the session calls :meth:`~MomentDetector.observe` with every
result and :meth:`~MomentDetector.close` when the session ends; it raises ``moment_started`` (the episode has just
been held long enough to be sustained, ``start_s`` back-dated to its real start — or, for a spike, when it ends) and
``moment_ended`` (the whole moment, once it is over: at the next key, or ``merge_gap_s`` after the face was lost).
A spike is announced at its end because an intense expression held on becomes a sustained moment with another name
("Big laugh" → "Smiles"): what is said live (the log, a recording chapter, the overlay) is the name the report gives,
and a moment keeps the title it was announced with. No I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping, Sequence

from ...i18n import Said
from ..formatting import short_clock
from .events import MOMENT_ENDED, MOMENT_STARTED, Event

NEGATIVE_KEY = "negative"
SUSTAINED, SPIKE = "sustained", "spike"

#: Chapter titles by label (lowercase) for sustained moments and spikes; unknown labels use the label itself.
_TITLES = {
    "happy": ("Smiles", "Big laugh"), "happiness": ("Smiles", "Big laugh"), "joy": ("Smiles", "Big laugh"),
    "surprise": ("Surprise", "Surprise!"), "surprised": ("Surprise", "Surprise!"),
    "neutral": ("Calm", "Calm"), "calm": ("Calm", "Calm"),
}
_NEGATIVE_TITLES = ("Tense stretch", "Tense moment")


@dataclass(frozen=True)
class MomentOptions:
    """Thresholds of :class:`MomentDetector` (seconds of session time; probabilities 0..1). See the module
    docstring for the defaults and why."""

    min_seconds: float = 5.0
    calm_min_seconds: float = 10.0
    negative_min_seconds: float = 10.0
    spike_probability: float = 0.7
    spike_min_seconds: float = 1.0
    merge_gap_s: float = 1.5
    max_interval_s: float = 2.0     # a result stands for at most this long (= the statistics' max_gap_seconds)
    calm_labels: tuple[str, ...] = ("neutral", "calm")

    def __post_init__(self) -> None:
        for name in ("min_seconds", "calm_min_seconds", "negative_min_seconds", "max_interval_s"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0 < v < math.inf):
                raise ValueError(f"{name} must be a finite number of seconds > 0, got {v!r}")
        for name in ("spike_min_seconds", "merge_gap_s"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0 <= v < math.inf):
                raise ValueError(f"{name} must be a finite number of seconds >= 0, got {v!r}")
        if not (isinstance(self.spike_probability, (int, float)) and 0 < self.spike_probability <= 1):
            raise ValueError(f"spike_probability must be in (0, 1] (1 turns spikes off), got "
                             f"{self.spike_probability!r}")
        object.__setattr__(self, "calm_labels", tuple(str(x) for x in self.calm_labels))

    def to_dict(self) -> dict[str, Any]:
        return {"min_seconds": self.min_seconds, "calm_min_seconds": self.calm_min_seconds,
                "negative_min_seconds": self.negative_min_seconds, "spike_probability": self.spike_probability,
                "spike_min_seconds": self.spike_min_seconds, "merge_gap_s": self.merge_gap_s,
                "max_interval_s": self.max_interval_s, "calm_labels": list(self.calm_labels)}


@dataclass(frozen=True)
class Moment:
    """One moment. Times in **seconds of session time**; ``emotion``: the label (for a negative stretch, the negative
    label shown longest); ``negative``: a stretch of negative labels; ``kind``: ``"sustained"`` or ``"spike"``;
    ``seconds``: readable time of the key inside ``start_s``..``end_s``; ``peak``/``mean``: the key's smoothed
    probability (peak at ``peak_s``; mean time-weighted); ``score``: the ranking score; ``title``: a short name for a
    chapter; ``open``: still running (or cut by a crash) when it was recorded."""

    id: int
    kind: str
    emotion: str
    negative: bool
    start_s: float
    end_s: float
    seconds: float
    peak: float
    peak_s: float
    mean: float
    score: float
    title: str
    open: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "emotion": self.emotion, "negative": self.negative,
                "start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3), "seconds": round(self.seconds, 3),
                "peak": round(self.peak, 4), "peak_s": round(self.peak_s, 3), "mean": round(self.mean, 4),
                "score": round(self.score, 4), "title": self.title, "open": self.open}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Moment":
        """Read :meth:`to_dict`'s output (an event's data). Raises ``KeyError``/``TypeError``/``ValueError``."""
        return cls(id=int(d["id"]), kind=str(d["kind"]), emotion=str(d["emotion"]), negative=bool(d["negative"]),
                   start_s=float(d["start_s"]), end_s=float(d["end_s"]), seconds=float(d["seconds"]),
                   peak=float(d["peak"]), peak_s=float(d["peak_s"]), mean=float(d["mean"]),
                   score=float(d["score"]), title=str(d["title"]), open=bool(d.get("open", False)))


def chapter_title(emotion: str, negative: bool, kind: str) -> str:
    """A short, viewer-safe chapter title: ``Smiles``, ``Big laugh``, ``Calm``, ``Surprise!``, ``Tense stretch`` …"""
    spike = kind == SPIKE
    if negative:
        return _NEGATIVE_TITLES[spike]
    titles = _TITLES.get(emotion.strip().lower())
    if titles is not None:
        return titles[spike]
    name = emotion.strip().capitalize() or "Moment"
    return f"{name}!" if spike else name


@dataclass
class _Episode:
    key: str
    start: float
    end: float                      # end of the last interval booked to the key
    seconds: float = 0.0
    weighted: float = 0.0           # Σ probability × seconds
    peak: float = 0.0
    peak_s: float = 0.0
    per_label: dict[str, float] = field(default_factory=dict)
    announced: bool = False
    id: int = 0
    title: str = ""                 # the title announced (a moment keeps it: one moment, one name)


class MomentDetector:
    """The moments rule (see the module docstring). ``labels``/``negative_labels``: the model card's; ``options``:
    :class:`MomentOptions`. Not thread-safe: the :class:`~.session.Session` calls it under its lock."""

    def __init__(self, labels: Sequence[str], negative_labels: Iterable[str] = (),
                 options: MomentOptions | None = None) -> None:
        self.labels = tuple(labels)
        negatives = set(negative_labels)
        self.negative_labels = tuple(x for x in self.labels if x in negatives)
        self.options = options or MomentOptions()
        self._index = {lab: i for i, lab in enumerate(self.labels)}
        self._neg_idx = [i for i, lab in enumerate(self.labels) if lab in negatives]
        calm = {x.lower() for x in self.options.calm_labels}
        self._calm = {lab for lab in self.labels if lab.lower() in calm and lab not in negatives}
        self.reset()

    def reset(self) -> None:
        self._ep: _Episode | None = None
        self._prev: tuple[float, str | None, float, str] | None = None   # (time, key, probability, label)
        self._next_id = 1

    # ------------------------------------------------------------------ the rule's calls
    def check(self, time_s: float, stats: Any, timestamp: float | None = None) -> Event | None:
        """The once-per-second call of a rule: moments need every result (:meth:`observe`), so nothing here."""
        return None

    def observe(self, result: Any, time_s: float) -> tuple[Event, ...]:
        """One result (an :class:`~obs_mindflow.engine.results.AnalysisResult`) at session time ``time_s``
        (seconds, never decreasing). Returns the events it raised."""
        label = result.emotion
        key = self._key(label)
        p = self._probability(key, getattr(result, "smoothed", None)) if key is not None else 0.0
        return self._step(time_s, key, p, label, result.timestamp)

    def close(self, time_s: float | None = None, timestamp: float | None = None) -> tuple[Event, ...]:
        """The session ends: the open episode ends at the last result (a moment if it qualifies)."""
        ep = self._ep
        self._ep = None
        if ep is None or self._prev is None:
            return ()
        t = self._prev[0] if time_s is None else time_s
        return self._end(ep, t, timestamp)

    # ------------------------------------------------------------------ internals
    def _key(self, label: str) -> str | None:
        if label not in self._index:           # "" (no face) or "uncertain"
            return None
        return NEGATIVE_KEY if label in self.negative_labels else label

    def _probability(self, key: str, smoothed: Any) -> float:
        try:
            if key == NEGATIVE_KEY:
                return float(sum(float(smoothed[i]) for i in self._neg_idx))
            return float(smoothed[self._index[key]])
        except (IndexError, TypeError):
            return 0.0

    def _min_for(self, key: str) -> float:
        o = self.options
        if key == NEGATIVE_KEY:
            return o.negative_min_seconds
        return o.calm_min_seconds if key in self._calm else o.min_seconds

    def _kind(self, ep: _Episode) -> str | None:
        """What the episode qualifies as so far: sustained, spike, or nothing."""
        o = self.options
        if ep.seconds + 1e-9 >= self._min_for(ep.key):
            return SUSTAINED
        if ep.key not in self._calm and ep.peak >= o.spike_probability and ep.seconds + 1e-9 >= o.spike_min_seconds:
            return SPIKE
        return None

    def _step(self, t: float, key: str | None, p: float, label: str, ts: float | None) -> tuple[Event, ...]:
        o = self.options
        events: list[Event] = []
        ep = self._ep
        prev = self._prev
        # 1. the previous result's state lasted until now (at most max_interval_s)
        if ep is not None and prev is not None and prev[1] == ep.key:
            pt, _, pp, plab = prev
            dt = min(max(t - pt, 0.0), o.max_interval_s)
            ep.seconds += dt
            ep.weighted += pp * dt
            ep.end = pt + dt
            if ep.key == NEGATIVE_KEY:
                ep.per_label[plab] = ep.per_label.get(plab, 0.0) + dt
            if not ep.announced and self._kind(ep) == SUSTAINED:
                events.append(self._announce(ep, t, ts))
        self._prev = (t, key, p, label)
        # 2. does the episode go on?
        if ep is not None:
            over = (key is not None and key != ep.key) or t - ep.end > o.merge_gap_s
            if over:
                self._ep = None
                events.extend(self._end(ep, t, ts))
                ep = None
        # 3. a new episode, or the same one going on
        if key is not None:
            if ep is None:
                ep = self._ep = _Episode(key=key, start=t, end=t)
            if p > ep.peak:
                ep.peak, ep.peak_s = p, t
            if not ep.announced and self._kind(ep) == SUSTAINED:
                events.append(self._announce(ep, t, ts))
        return tuple(events)

    def _emotion(self, ep: _Episode) -> str:
        if ep.key != NEGATIVE_KEY:
            return ep.key
        if not ep.per_label:
            return self.negative_labels[0] if self.negative_labels else NEGATIVE_KEY
        return max(ep.per_label, key=lambda lab: (ep.per_label[lab], -self._index.get(lab, 0)))

    def _moment(self, ep: _Episode, kind: str, end_s: float, open_: bool) -> Moment:
        mean = ep.weighted / ep.seconds if ep.seconds > 0 else ep.peak
        weight = 0.5 if ep.key in self._calm else 1.0
        score = (mean + ep.peak) / 2 * math.log2(1 + ep.seconds / self._min_for(ep.key)) * weight
        neg = ep.key == NEGATIVE_KEY
        emotion = self._emotion(ep)
        return Moment(id=ep.id, kind=kind, emotion=emotion, negative=neg, start_s=ep.start, end_s=end_s,
                      seconds=ep.seconds, peak=ep.peak, peak_s=ep.peak_s, mean=mean, score=score,
                      title=ep.title or chapter_title(emotion, neg, kind), open=open_)

    def _announce(self, ep: _Episode, t: float, ts: float | None) -> Event:
        ep.announced = True
        ep.id = self._next_id
        self._next_id += 1
        kind = self._kind(ep) or SUSTAINED
        m = self._moment(ep, kind, ep.end, True)
        # the name said live (the log, a recording chapter, the overlay's toast) is the report's too
        ep.title = m.title
        return Event(MOMENT_STARTED, t, ts, f"Moment: {m.title}", m.to_dict())

    def _end(self, ep: _Episode, t: float, ts: float | None) -> tuple[Event, ...]:
        kind = self._kind(ep)
        if kind is None:
            return ()
        out: list[Event] = []
        if not ep.announced:
            out.append(self._announce(ep, t, ts))
        m = self._moment(ep, kind, ep.end, False)
        out.append(Event(MOMENT_ENDED, t, ts, f"Moment: {m.title}", m.to_dict()))
        return tuple(out)


# --------------------------------------------------------------------------------------------------------------------
# Moments from kept events, ranking, chapters
# --------------------------------------------------------------------------------------------------------------------

def moments_from_events(events: Iterable[Event], end_s: float) -> list[Moment]:
    """The moments of a session from its kept ``moment_started``/``moment_ended`` events, in start order. A moment
    that started but never ended (the session crashed while it ran) ends at ``end_s`` (seconds of session time).
    Malformed event data are skipped."""
    ended: dict[int, Moment] = {}
    started: dict[int, Moment] = {}
    for e in events:
        if e.kind not in (MOMENT_STARTED, MOMENT_ENDED):
            continue
        try:
            m = Moment.from_dict(e.data)
        except (KeyError, TypeError, ValueError):
            continue
        (ended if e.kind == MOMENT_ENDED else started)[m.id] = m
    out = list(ended.values())
    for mid, m in started.items():
        if mid not in ended:
            out.append(replace(m, end_s=max(m.end_s, end_s), open=True))
    out.sort(key=lambda m: (m.start_s, m.id))
    return out


def ranked(moments: Iterable[Moment]) -> list[Moment]:
    """Highest score first (earlier start breaks ties)."""
    return sorted(moments, key=lambda m: (-m.score, m.start_s, m.id))


@dataclass(frozen=True)
class Chapter:
    """One chapter: ``at_s`` in **media seconds** (the video's own time for a file; since the start for a live
    session); ``moment``: the moment's id, ``None`` for the opening "Start"."""

    at_s: float
    time: str
    title: str
    moment: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"at_s": round(self.at_s, 3), "time": self.time, "title": self.title, "moment": self.moment}


@dataclass(frozen=True)
class Chapters:
    """YouTube-style chapters. ``usable``: they meet YouTube's rules (the first at 00:00, at least
    :data:`YOUTUBE_MIN_CHAPTERS`, each at least :data:`YOUTUBE_MIN_SECONDS` long) and ``text`` is the block to paste
    into a video description (``""`` otherwise); ``note`` says what was done and why."""

    chapters: tuple[Chapter, ...]
    usable: bool
    text: str
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {"usable": self.usable, "text": self.text, "note": str(self.note),
                "chapters": [c.to_dict() for c in self.chapters],
                "rules": {"first_at": "00:00", "min_chapters": YOUTUBE_MIN_CHAPTERS,
                          "min_seconds": YOUTUBE_MIN_SECONDS}}


YOUTUBE_MIN_CHAPTERS = 3
YOUTUBE_MIN_SECONDS = 10.0


def make_chapters(moments: Iterable[Moment], duration_s: float, *, offset_s: float = 0.0, max_chapters: int = 12,
                  include_negative: bool = False, min_seconds: float = YOUTUBE_MIN_SECONDS) -> Chapters:
    """Chapters for a video description from the session's moments.

    ``duration_s``: the session's length, ``offset_s``: the media time of session time 0 (a file's first analysed
    frame), both seconds; chapter times are media times. The best-ranked moments are taken while each chapter can
    still last ``min_seconds`` (to the next chapter or the end) — a moment closer than that to a better one is left
    out — up to ``max_chapters``; a moment starting in the first ``min_seconds`` opens the list at 00:00, else an
    opening "Start" chapter does. Negative stretches are left out unless ``include_negative`` (chapters are public).

    Fewer than three chapters: YouTube shows none, so ``usable`` is False, ``text`` is empty and ``note`` says so
    (the chapters found are still listed: they serve as recording chapters or notes)."""
    end = offset_s + max(duration_s, 0.0)
    long = end >= 3600
    picked: list[tuple[float, Moment]] = []
    for m in ranked(moments):
        if len(picked) >= max_chapters:
            break
        if m.negative and not include_negative:
            continue
        at = offset_s + m.start_s
        if at < min_seconds:                     # the opening chapter, at 00:00
            at = 0.0
        if end - at < min_seconds or any(abs(at - a) < min_seconds for a, _ in picked):
            continue
        picked.append((at, m))
    picked.sort(key=lambda x: x[0])
    chapters = [Chapter(at, short_clock(at, long), m.title, m.id) for at, m in picked]
    if not chapters or chapters[0].at_s > 0:
        if len(chapters) >= max_chapters:
            chapters.pop()
        chapters.insert(0, Chapter(0.0, short_clock(0, long), "Start", None))
    chapters[0] = Chapter(0.0, "00:00", chapters[0].title, chapters[0].moment)
    seconds = f"{min_seconds:g}"
    if len(chapters) < YOUTUBE_MIN_CHAPTERS:
        why = Said("report.chapters_too_few", minimum=YOUTUBE_MIN_CHAPTERS, seconds=seconds, count=len(chapters))
        return Chapters(tuple(chapters), False, "", why)
    text = "\n".join(f"{c.time} {c.title}" for c in chapters)
    note = Said("report.chapters_picked" if include_negative else "report.chapters_picked_public",
                count=len(chapters), seconds=seconds)
    return Chapters(tuple(chapters), True, text, note)
