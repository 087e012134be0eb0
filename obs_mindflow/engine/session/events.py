"""The event seam: what happened in a session, as typed events, and the bus that hands them to whoever listens.

A :class:`~obs_mindflow.engine.session.session.Session` turns results into events (a face found or lost, the
displayed label changing) and runs its rules (the break nudge, moments), which raise events of their own.
The owner of the session publishes them on an :class:`EventBus`; subscribers are the script log, the overlay, the
report (through the session's kept events) and OBS actions (recording chapters, opt-in actions on moments).

Threads: events are published on the thread that produced them — the analysis worker — so a subscriber must be
quick and must not block; one that needs OBS's UI thread queues its work there (``obs/uitask.run_on_ui_thread``).
A subscriber that raises is logged and skipped; the others still get the event.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

log = logging.getLogger(__name__)

# Event kinds (strings, so a subscriber can filter without importing anything).
SESSION_STARTED = "session_started"
SESSION_FINISHED = "session_finished"
FACE_FOUND = "face_found"          # a face is detected after frames without one (the first one too);
                                   # data: {"emotion": displayed or raw label, "frame_size": [w, h]}
FACE_LOST = "face_lost"            # no face detected in this frame after frames with one
LABEL_CHANGED = "label_changed"    # the displayed (smoothed) label changed; data: {"from": ..., "to": ...}
NUDGE = "nudge"                    # the opt-in break nudge; data: {"negative_share": ...}
AWAY = "away"                      # no face in view for a while after one was (rules.AwayMonitor); data: {"seconds"}
CALIBRATION_DONE = "calibration_done"      # a personal baseline was made and applied; data: the baseline's dict
CALIBRATION_FAILED = "calibration_failed"  # refused; message: why and what to do
MOMENT_STARTED = "moment_started"  # an episode of one emotion has just qualified as a moment (session/moments.py);
                                   # data: Moment.to_dict() so far — id, kind ("sustained"|"spike"), emotion,
                                   # negative, start_s (back-dated to the episode's start), end_s, seconds, peak,
                                   # peak_s, mean, score, title, open=True; message: "Moment: <title>"
MOMENT_ENDED = "moment_ended"      # that moment is over (the same id; the final figures, open=False); raised at the
                                   # next emotion, merge_gap_s after the face was lost, or when the session ends


@dataclass(frozen=True)
class Event:
    """One thing that happened. ``time_s``: seconds since the session's start (session time); ``timestamp``: the
    result's timestamp on the caller's clock (seconds), ``None`` when not tied to a result; ``message``: a short
    human sentence (may be empty); ``data``: kind-specific details (JSON types only)."""

    kind: str
    time_s: float
    timestamp: float | None = None
    message: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "time_s": self.time_s, "timestamp": self.timestamp, "message": self.message,
                "data": dict(self.data)}


Subscriber = Callable[[Event], None]


class EventBus:
    """Subscribers by kind. :meth:`publish` calls each matching subscriber in subscription order, on the caller's
    thread; subscribing and publishing may happen on different threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: tuple[tuple[Subscriber, frozenset[str] | None], ...] = ()

    def subscribe(self, fn: Subscriber, kinds: Iterable[str] | None = None) -> Callable[[], None]:
        """Call ``fn(event)`` for every event (or only those of ``kinds``). Returns a function that unsubscribes."""
        entry = (fn, None if kinds is None else frozenset(kinds))
        with self._lock:
            self._subs = self._subs + (entry,)

        def unsubscribe() -> None:
            with self._lock:
                self._subs = tuple(s for s in self._subs if s is not entry)

        return unsubscribe

    def publish(self, event: Event) -> None:
        for fn, kinds in self._subs:   # a tuple: safe to iterate while another thread subscribes
            if kinds is not None and event.kind not in kinds:
                continue
            try:
                fn(event)
            except Exception as exc:  # noqa: BLE001 - one broken subscriber must not silence the others
                log.error("event subscriber %r failed on %s: %s: %s", fn, event.kind, type(exc).__name__, exc)

    def publish_all(self, events: Iterable[Event]) -> None:
        for e in events:
            self.publish(e)
