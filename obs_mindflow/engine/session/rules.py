"""Rules watch a running session and raise events: the opt-in break nudge, "away from the camera", and the emotion
moments (:mod:`.moments`).

A rule has ``check(time_s, stats, timestamp)`` → an :class:`~obs_mindflow.engine.session.events.Event` or ``None``,
called by the :class:`~obs_mindflow.engine.session.session.Session` once per second of session time (rules read
the statistics' cheap live values, never the timeline), and ``reset()``. A rule that needs every result (the
moments, :mod:`.moments`) also has ``observe(result, time_s)`` → a tuple of events, called with each result before
the checks, and may have ``close(time_s, timestamp)`` → a tuple of events, called once when the session ends
(:meth:`Session.close`). Rules decide; they never log, write or show anything themselves — subscribers of the
events do.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Protocol, Sequence

from .events import AWAY, NUDGE, Event
from .stats import SessionStats, positive_seconds
from ..formatting import format_duration

if TYPE_CHECKING:
    from ...i18n import Words

_INF = math.inf


class Rule(Protocol):
    def check(self, time_s: float, stats: SessionStats, timestamp: float | None = None) -> Event | None: ...

    def reset(self) -> None: ...


def _minutes_phrase(seconds: float) -> str:
    m = seconds / 60
    if m >= 1 and abs(m - round(m)) < 1e-9:
        return "minute" if round(m) == 1 else f"{round(m)} minutes"
    return format_duration(seconds)


class NudgeMonitor:
    """Opt-in break nudge. Feed it the rolling negative share (over ``rolling_seconds``) with :meth:`update`; when it
    stays above ``threshold`` for ``sustain_seconds`` it returns a ``nudge`` event, then stays quiet for
    ``cooldown_seconds``. All times in **seconds of session time** (from the results' timestamps).

    A check only counts as "above" when a face was visible for at least ``min_face_coverage`` of the analysed time
    in the window, so a few seconds of face in a mostly empty window cannot trigger it. The wording is a nudge,
    never a diagnosis.
    """

    def __init__(self, threshold: float = 0.6, sustain_seconds: float = 600, rolling_seconds: float = 300,
                 cooldown_seconds: float = 1800, *, min_face_coverage: float = 0.5, words: Words | None = None) -> None:
        if not 0 <= float(threshold) < 1:
            raise ValueError(f"threshold is a share of face time in [0, 1), got {threshold!r}")
        if not 0 <= float(min_face_coverage) <= 1:
            raise ValueError(f"min_face_coverage is a share in [0, 1], got {min_face_coverage!r}")
        self.threshold = float(threshold)
        self.sustain_seconds = positive_seconds("sustain_seconds", sustain_seconds)
        self.rolling_seconds = positive_seconds("rolling_seconds", rolling_seconds)
        cd = float(cooldown_seconds)
        if not 0 <= cd < _INF:
            raise ValueError(f"cooldown_seconds must be a finite number of seconds >= 0, got {cooldown_seconds!r}")
        self.cooldown_seconds = cd
        self.min_face_coverage = float(min_face_coverage)
        self.words = words          # the message's language (the streamer's); None: English
        self.reset()

    def reset(self) -> None:
        self._above_since: float | None = None
        self._last_nudge: float | None = None

    @property
    def message(self) -> str:
        if self.words is not None and self.words.lang != "en-US":
            return self.words("rules.nudge", duration=format_duration(self.sustain_seconds, self.words))
        return (f"Negative expressions have dominated the last {_minutes_phrase(self.sustain_seconds)} — "
                f"consider a short break.")

    def update(self, time_s: float, negative_share: float, coverage: float = 1.0,
               timestamp: float | None = None) -> Event | None:
        """One check at session time ``time_s`` (seconds). Returns a ``nudge`` event (``data["negative_share"]``:
        the rolling share that triggered it) or ``None``."""
        if negative_share > self.threshold and coverage >= self.min_face_coverage:
            if self._above_since is None:
                self._above_since = time_s
            if time_s - self._above_since >= self.sustain_seconds and (
                    self._last_nudge is None or time_s - self._last_nudge >= self.cooldown_seconds):
                self._last_nudge = time_s
                return Event(NUDGE, time_s, timestamp, self.message, {"negative_share": negative_share})
        else:
            self._above_since = None
        return None


    def check(self, time_s: float, stats: SessionStats, timestamp: float | None = None) -> Event | None:
        """The rule's call: the rolling negative share and coverage of ``stats`` at session time ``time_s``."""
        share, coverage, _ = stats.rolling()
        return self.update(time_s, share, coverage, timestamp)


class AwayMonitor:
    """"Away from the camera": no face in the analysed frames for ``away_seconds`` of session time (the camera was
    knocked aside or covered, the webcam source shows an empty frame, or the streamer left without pausing).
    Returns one ``away`` event per absence (``data["seconds"]``: how long the face has been out of view); a face seen
    again re-arms it. Only analysed time counts: a gap between two results longer than ``max_gap_s`` (a pause, no
    picture) adds ``max_gap_s`` at most, and the watch starts at the session's first face (a camera pointed
    elsewhere from the start is not "away"). Times in **seconds of session time**.

    Made per session as ``AwayMonitor(labels, negative_labels)`` (a rule factory for
    :class:`~obs_mindflow.engine.recipe.SessionRecipe`; the labels are not used).
    """

    def __init__(self, labels: Sequence[str] = (), negative_labels: Sequence[str] = (), *,
                 away_seconds: float = 180.0, max_gap_s: float = 2.0) -> None:
        self.away_seconds = positive_seconds("away_seconds", away_seconds)
        self.max_gap_s = positive_seconds("max_gap_s", max_gap_s)
        self.reset()

    def reset(self) -> None:
        self._away_s: float | None = None      # seconds without a face since the last one (None: no face yet)
        self._last_t = 0.0
        self._told = False

    @property
    def message(self) -> str:
        return (f"No face in the camera for {format_duration(self.away_seconds)} — is the camera still pointing at "
                f"you? (pause the session while you are away)")

    def observe(self, result: Any, time_s: float) -> tuple[Event, ...]:
        step, self._last_t = min(max(time_s - self._last_t, 0.0), self.max_gap_s), time_s
        if result.face_present:
            self._away_s, self._told = 0.0, False
        elif self._away_s is not None:
            self._away_s += step
        return ()

    def check(self, time_s: float, stats: SessionStats, timestamp: float | None = None) -> Event | None:
        if self._told or self._away_s is None or self._away_s < self.away_seconds:
            return None
        self._told = True
        return Event(AWAY, time_s, timestamp, self.message, {"seconds": round(self._away_s, 1)})
