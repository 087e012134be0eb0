"""One session in memory: the statistics, the rules that watch them, and the events they raised.

:class:`Session` is fed the engine's results in order (``add``) and answers with the events each one raised. It
writes nothing: :class:`~obs_mindflow.engine.reports.recorder.SessionRecorder` persists a session (checkpoints, the
report folder), the CLI's ``--no-report`` uses a recorder without a folder, and the live host publishes the events.

Times: results carry timestamps in seconds on the caller's clock; the session's own time (``time_s`` of events,
offsets in reports) is seconds since its first result. ``started_at`` is the wall clock of the first result (or the
one given), used only to label reports, never to measure. With ``media_clock=True`` (a video file) the timestamps
are the media's own time: :attr:`Session.media_offset_s` is the media time of session time 0 (the first analysed
frame's), so media time = session time + offset.
"""

from __future__ import annotations

import math
import threading
from datetime import datetime
from typing import Any, Iterable, Sequence

from .events import FACE_FOUND, FACE_LOST, LABEL_CHANGED, MOMENT_ENDED, MOMENT_STARTED, NUDGE, Event
from .moments import Moment, moments_from_events
from .rules import Rule
from .snapshot import StatsSnapshot
from .stats import SessionStats
from ..formatting import aware
from ..smoothing import UNCERTAIN

#: Events of these kinds are kept with the session (they appear in its report and checkpoints).
KEPT_KINDS = (NUDGE, MOMENT_STARTED, MOMENT_ENDED)
MAX_KEPT_EVENTS = 100      # per kind, the oldest dropped first
MAX_KEPT_MOMENTS = 500     # ended moments; beyond it the lowest-ranked is dropped (a started one is dropped when its
                           # moment ends: only a moment still running keeps its moment_started)


class Session:
    """A session's statistics, rules and kept events.

    ``labels``/``negative_labels``: from the model card; ``model``: the card's name; ``source``: free text for the
    report (a source name, a video file); ``rules``: objects with ``check(time_s, stats, timestamp)`` and
    ``reset()`` (see :mod:`.rules`), checked once per second of session time, and those with ``observe(result,
    time_s)`` also given every result; ``rolling_seconds``: the live rolling window of the statistics;
    ``started_at``: fixed wall time of the first result (default: the clock at the first ``add``); ``bin_seconds``,
    ``max_gap_seconds``: passed to :class:`SessionStats`; ``media_clock``: the results' timestamps are a media file's
    own time (see :attr:`media_offset_s`).

    Threads: ``add`` for one producer (the analysis worker); the reads may come from any thread.
    """

    def __init__(self, labels: Sequence[str], negative_labels: Iterable[str] = (), *, model: str = "",
                 source: str = "", rules: Sequence[Rule] = (), rolling_seconds: float = 300.0,
                 started_at: datetime | None = None, bin_seconds: float = 10.0, max_gap_seconds: float = 2.0,
                 media_clock: bool = False) -> None:
        self.stats = SessionStats(labels, negative_labels, bin_seconds=bin_seconds, max_gap_seconds=max_gap_seconds,
                                  rolling_seconds=rolling_seconds)
        self.labels = self.stats.labels
        self.negative_labels = self.stats.negative_labels
        self.model = str(model)
        self.source = str(source)
        self.rules = tuple(rules)
        self._observers = tuple(r for r in self.rules if callable(getattr(r, "observe", None)))
        self.media_clock = bool(media_clock)
        self._fixed_start = None if started_at is None else aware(started_at)
        self._lock = threading.Lock()
        self.reset()

    def reset(self, *, forget_start: bool = False) -> None:
        """Forget everything (statistics, rule states, events); the next result starts a new session.
        ``forget_start``: also forget a ``started_at`` given at construction (the next session takes the clock)."""
        with self._lock:
            if forget_start:
                self._fixed_start = None
            self.stats.reset()
            for rule in self.rules:
                rule.reset()
            self._started_at: datetime | None = self._fixed_start
            self._next_check = 0.0
            self._kept: list[Event] = []
            self._face = False
            self._label = ""
            self.time_s = 0.0         # session time of the last result (seconds since the first)
            self._calibration: dict[str, Any] | None = None

    # ---------------------------------------------------------------- feeding
    def add(self, result: Any) -> tuple[Event, ...]:
        """Record one :class:`~obs_mindflow.engine.results.AnalysisResult`; returns the events it raised (usually
        none). Raises ``ValueError`` when the result's labels are not this session's."""
        labels = result.labels
        if labels is not self.labels and tuple(labels) != self.labels:
            raise ValueError(f"result labels {labels} differ from the session's model card labels {self.labels}: "
                             f"start a new session (a new SessionRecorder) when the model changes")
        events: list[Event] = []
        with self._lock:
            if self._started_at is None:
                self._started_at = datetime.now().astimezone()
            # A face seen but not yet shown (the smoother's warm-up) is face time not yet read: "uncertain".
            shown = result.emotion or (UNCERTAIN if result.face_present else "")
            t = self.time_s = self.stats.update(result.timestamp, shown)
            ts = result.timestamp
            for rule in self._observers:
                events.extend(rule.observe(result, t))
            face = bool(result.face_present)
            if face != self._face:
                data = {"emotion": result.emotion or result.raw_label, "frame_size": list(result.frame_size)}
                events.append(Event(FACE_FOUND, t, ts, data=data) if face else Event(FACE_LOST, t, ts))
                self._face = face
            if result.emotion != self._label:
                if result.emotion and self._label:
                    events.append(Event(LABEL_CHANGED, t, ts, data={"from": self._label, "to": result.emotion}))
                self._label = result.emotion
            if self.rules and t >= self._next_check:
                self._next_check = math.floor(t) + 1.0
                for rule in self.rules:
                    e = rule.check(t, self.stats, ts)
                    if e is not None:
                        events.append(e)
            self._keep_locked(events)
        return tuple(events)

    def close(self) -> tuple[Event, ...]:
        """The session ends: rules with ``close(time_s, timestamp)`` end what they have open (a moment still
        running). Returns the events raised (kept like any other). Called by the recorder's ``finish``; the session
        takes no more results meaningfully afterwards (``reset`` starts a new one)."""
        events: list[Event] = []
        with self._lock:
            if self.stats.updates == 0:
                return ()
            ts = self.stats.snapshot(timeline=False).last_timestamp
            for rule in self.rules:
                close = getattr(rule, "close", None)
                if callable(close):
                    events.extend(close(self.time_s, ts))
            self._keep_locked(events)
        return tuple(events)

    def _keep_locked(self, events: Iterable[Event]) -> None:
        for e in events:
            if e.kind not in KEPT_KINDS:
                continue
            if e.kind == MOMENT_ENDED:
                mid = e.data.get("id")
                self._kept = [k for k in self._kept if not (k.kind == MOMENT_STARTED and k.data.get("id") == mid)]
            self._kept.append(e)
            same = [k for k in self._kept if k.kind == e.kind]
            if e.kind == MOMENT_ENDED and len(same) > MAX_KEPT_MOMENTS:
                worst = min(same, key=lambda k: (float(k.data.get("score", 0.0)), -k.time_s))
                self._kept.remove(worst)
            elif e.kind != MOMENT_ENDED and len(same) > MAX_KEPT_EVENTS:
                self._kept.remove(same[0])

    def set_calibration(self, baseline: Any | None) -> None:
        """The personal baseline (a :class:`~obs_mindflow.engine.baseline.Baseline`) that corrects the readings from
        now on, or ``None`` for none: what the report says the session rests on."""
        with self._lock:
            if baseline is None:
                self._calibration = None if self.stats.updates == 0 else {
                    "applied": False, "cleared_at_s": self.time_s}
                return
            self._calibration = {"applied": True, "created": baseline.created, "seconds": round(baseline.seconds, 3),
                                 "face_frames": baseline.face_frames, "model": baseline.model,
                                 "applied_from_s": self.time_s if self.stats.updates else 0.0}

    @property
    def calibration(self) -> dict[str, Any]:
        """``{"applied": bool, ...}``: see :meth:`set_calibration` (``applied_from_s``: session time from which it
        applied, 0 for the whole session)."""
        with self._lock:
            return dict(self._calibration) if self._calibration else {"applied": False}

    # ---------------------------------------------------------------- reading
    @property
    def started_at(self) -> datetime | None:
        """Wall time of the first result (aware), ``None`` before it."""
        return self._started_at

    @property
    def updates(self) -> int:
        return self.stats.updates

    def events(self, kind: str | None = None) -> tuple[Event, ...]:
        """The kept events (of ``kind``), oldest first."""
        with self._lock:
            return tuple(e for e in self._kept if kind is None or e.kind == kind)

    def moments(self) -> tuple[Moment, ...]:
        """The session's moments (see :mod:`.moments`), in start order; one still running ends at the last
        result (``open=True``)."""
        with self._lock:
            kept = tuple(self._kept)
            end = self.time_s
        return tuple(moments_from_events(kept, end))

    @property
    def media_offset_s(self) -> float | None:
        """With ``media_clock``: the media time (seconds) of session time 0 — the first analysed frame's timestamp
        (0 before any result); ``None`` for a live session (its times are seconds since the session's start)."""
        if not self.media_clock:
            return None
        first = self.stats.snapshot(timeline=False).first_timestamp
        return float(first) if first is not None else 0.0

    def snapshot(self, *, timeline: bool = True) -> StatsSnapshot:
        return self.stats.snapshot(timeline=timeline)

    # ---------------------------------------------------------------- persistence
    def to_state(self) -> dict[str, Any]:
        """Everything a report needs to be rebuilt after a crash, as JSON types (read by :meth:`from_state`).
        Call after the first result (``started_at`` is known)."""
        with self._lock:
            return {"model": self.model, "labels": list(self.labels), "negative_labels": list(self.negative_labels),
                    "source": self.source,
                    "started_at": None if self._started_at is None else self._started_at.isoformat(),
                    "events": [e.to_dict() for e in self._kept],
                    "media_clock": self.media_clock,
                    "calibration": dict(self._calibration) if self._calibration else {"applied": False},
                    "stats": self.stats.to_state()}

    @classmethod
    def from_state(cls, doc: dict[str, Any]) -> "Session":
        """A finished session rebuilt from :meth:`to_state` (a checkpoint). Raises ``KeyError``/``ValueError``/
        ``TypeError`` or :class:`~obs_mindflow.engine.session.stats.StatsStateError` when malformed."""
        stats = SessionStats.from_state(doc["stats"])
        s = cls(tuple(doc["labels"]), tuple(doc["negative_labels"]), model=str(doc.get("model", "")),
                source=str(doc.get("source", "")), started_at=datetime.fromisoformat(doc["started_at"]),
                media_clock=bool(doc.get("media_clock", False)))
        s.stats = stats
        s.time_s = stats.snapshot(timeline=False).duration_s
        cal = doc.get("calibration")
        s._calibration = dict(cal) if isinstance(cal, dict) and cal.get("applied") else None
        if "events" in doc:
            s._kept = [Event(str(e["kind"]), float(e["time_s"]), e.get("timestamp"), str(e.get("message", "")),
                             dict(e.get("data") or {})) for e in doc["events"] if e["kind"] in KEPT_KINDS]
        else:       # checkpoints written before moments: nudges only
            s._kept = [Event(NUDGE, float(n["time_s"]), n.get("timestamp"), str(n["message"]),
                             {"negative_share": float(n["negative_share"])}) for n in doc.get("nudges", [])]
        return s
