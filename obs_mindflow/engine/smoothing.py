"""Temporal smoothing of per-frame probabilities into a displayed emotion that does not flicker.

Two stages:

1. **Exponential smoothing in time.** ``s ← s + α (p − s)`` with ``α = 1 − exp(−Δt / τ)``. Because α depends on the
   real time step Δt (seconds) and the time constant τ (``time_constant_s``), 5 and 30 analyses per second produce
   the same curve: a step in the input reaches 63 % after τ seconds at any rate.
2. **Hysteresis with a minimum dwell.** The displayed label changes only when another label's smoothed probability
   leads the displayed one by at least ``switch_margin`` continuously for ``switch_hold_s`` seconds, and not sooner
   than ``min_dwell_s`` after the previous change.

Default bounds, and why (the tests in ``tests/test_smoothing.py`` check them at 5 and 30 Hz):

- *Steady expression with per-frame noise* (the top class leads by 0.2 on average, each probability jittered by
  σ = 0.15 per frame, far noisier than a real model on a still face): **at most 2 label changes per minute**.
  With τ = 1 s the EMA divides the noise by about 3 at 5 Hz and 8 at 30 Hz, so the smoothed lead almost never
  falls below −0.15 (the margin). Even a dead tie between two classes (the worst case) is held to at most a few
  changes per minute by the margin and the 2-s dwell — a viewer reads a label in well under 2 s. The margin on the
  smoothed curve is the hysteresis; no extra hold is needed by default (``switch_hold_s`` = 0: measured with
  ``tests/test_smoothing.py``'s noise model over 50 seeds, margin 0.15 without a hold flickers as little as margin
  0.1 with a 0.5-s hold, and switches 0.4 s sooner).
- *A real change* (a clear expression replacing another): **displayed within 2.5 s**. The smoothed challenger
  needs about 0.9 τ to lead by the margin for a clean swap of 0.8/0.1 probabilities, plus ``switch_hold_s``,
  plus at most one analysis interval (0.2 s at 5 Hz) — ≈ 1.1 s, well inside 2.5 s (the streamed smiling ↔ neutral
  faces of the sample: 1.0 s, ``tools/bench_stream.py``).
- *Face lost*: the last emotion stays ``face_lost_grace_s`` (0.5 s: two missed detections in a row at 5 analyses a
  second) so a missed detection does not blank the display; after that the display is empty (``""``) and the
  smoothed state is cleared.

- *A face appears*: the first label waits ``warmup_s`` (0.6 s: 3 analyses at 5 Hz, 18 at 30 Hz) and is the
  **mean** of the readings so far, not the first frame's: the first label is held for the 2-s dwell, so a first frame
  caught mid-word (read "surprise" while the next 49 of 55 frames read neutral, on a real talking clip) would
  otherwise be shown for 2 s. Smoothing goes on from that mean. The cost, measured in a real OBS streaming the
  sample clip (``tools/bench_stream.py --clip sample``, before and after, one machine): a face that appears reaches
  the text source 1.5 s after it appears instead of 0.76 s (median; 0.52 s of it is the detector's confirmation,
  0.78 s the warm-up at 5 analyses a second); a lost face and a change between two faces are not delayed.

3. **"Uncertain" instead of a confident wrong label.** When the smoothed top probability is below
   ``min_confidence``, its lead over the second is below ``min_margin``, or the frame says the face cannot be read
   (too small or blurred: ``readable=False``) for ``uncertain_hold_s`` (1 s — a change between two clear
   expressions passes through low confidence for a moment and shows no "uncertain" on the way), the display becomes
   :data:`UNCERTAIN`. It is left as soon as the face reads clearly again — past the thresholds by half the switch
   margin, a band that keeps a borderline face from flickering. It counts as face time that could not be read.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

#: The displayed state when a face is visible but cannot be read reliably (never a model label).
UNCERTAIN = "uncertain"
_UNC = -2


@dataclass(frozen=True)
class SmootherOptions:
    """Time constants in **seconds**, margins in probability units (0..1)."""

    time_constant_s: float = 1.0
    switch_margin: float = 0.15
    switch_hold_s: float = 0.0
    min_dwell_s: float = 2.0
    face_lost_grace_s: float = 0.5
    max_gap_s: float = 5.0  # a longer pause between updates (analysis paused) restarts smoothing from the new input
    # A face that appears (or comes back after face_lost_grace_s) is shown after this long, its readings
    # averaged meanwhile; until then the display stays as with no face. 0: the first frame is shown at once.
    warmup_s: float = 0.6
    # Below this smoothed top probability, or a lead over the second below min_margin, the display is "uncertain".
    # A model's card carries its own (``uncertain``: see :func:`options_for_card`, measured by
    # tools/train/reference.py on faces it never trained on: the largest thresholds below which single-frame
    # readings are right at most a third of the time); these defaults are the first default model's. 0: check off.
    min_confidence: float = 0.38
    min_margin: float = 0.01
    # "Uncertain" is shown once the face has been unreadable this long: a change between two clear expressions
    # passes through low smoothed confidence for a moment and must not flash "uncertain" on the way.
    uncertain_hold_s: float = 1.0

    def __post_init__(self) -> None:
        if self.time_constant_s <= 0:
            raise ValueError(f"time_constant_s must be > 0, got {self.time_constant_s}")
        if not (0 <= self.min_confidence < 1 and 0 <= self.min_margin < 1):
            raise ValueError(f"min_confidence and min_margin are probabilities in [0, 1), got "
                             f"{self.min_confidence}, {self.min_margin}")
        for name in ("switch_margin", "switch_hold_s", "min_dwell_s", "face_lost_grace_s", "max_gap_s",
                     "uncertain_hold_s", "warmup_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class SmoothedState:
    """The smoother's output after one update: ``label`` is ``""`` when no face is being tracked, :data:`UNCERTAIN`
    when a face is tracked but cannot be read; ``confidence`` is the smoothed probability of the top label (0 when no
    face)."""

    label: str
    confidence: float
    probabilities: np.ndarray  # (C,) float32, zeros when no face


def options_for_card(card, base: SmootherOptions | None = None, uncertain_below: float = 0.0) -> SmootherOptions:
    """``base`` (default: :class:`SmootherOptions`' defaults) with the "uncertain" thresholds measured for the
    model of ``card`` (a :class:`~.card.ModelCard`), where its card has them. ``uncertain_below`` > 0: the
    streamer's own ``min_confidence`` instead (the setting "say uncertain below this confidence")."""
    base = base or SmootherOptions()
    values = {k: v for k, v in (getattr(card, "uncertain", None) or {}).items() if k in ("min_confidence", "min_margin")}
    if uncertain_below:
        if not 0 < uncertain_below < 1:
            raise ValueError(f"uncertain_below is a probability in (0, 1), got {uncertain_below}")
        values["min_confidence"] = float(uncertain_below)
    return dataclasses.replace(base, **values)


class EmotionSmoother:
    """Turns a stream of ``(timestamp_s, probabilities | None)`` into a stable displayed label. Not thread-safe."""

    def __init__(self, labels: tuple[str, ...] | list[str], options: SmootherOptions | None = None) -> None:
        self.labels = tuple(labels)
        self.options = options or SmootherOptions()
        self.reset()

    def reset(self) -> None:
        self._s: np.ndarray | None = None
        self._shown = -1
        self._shown_since = -math.inf
        self._challenger = -1
        self._challenger_since = 0.0
        self._last_t: float | None = None
        self._last_face_t = -math.inf
        self._readable = True
        self._warm_n = 0
        self._warm_since = 0.0
        self.changes = 0

    def update(self, timestamp: float, probabilities: np.ndarray | None, readable: bool = True) -> SmoothedState:
        """Feed one analysis. ``probabilities``: ``(C,)`` for the primary face, or ``None`` when no face was found;
        ``readable``: False when the face in this frame is too small or blurred to be read.

        Timestamps are seconds and should not decrease; a step backwards is treated as zero elapsed time.
        """
        o = self.options
        t = float(timestamp)
        dt = 0.0 if self._last_t is None else max(0.0, t - self._last_t)
        self._last_t = t if self._last_t is None else max(t, self._last_t)
        if probabilities is None:
            if self._s is not None and t - self._last_face_t > o.face_lost_grace_s:
                self._clear()
            return self._state()
        p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
        if p.shape != (len(self.labels),):
            raise ValueError(f"expected {len(self.labels)} probabilities, got shape {p.shape}")
        if self._s is None or dt > o.max_gap_s:
            self._s = p.copy()
            self._warm_n, self._warm_since = 1, t
        elif self._shown == -1:                               # warming up: the mean of the readings so far
            self._warm_n += 1
            self._s += (p - self._s) / self._warm_n
        else:
            alpha = 1.0 - math.exp(-dt / o.time_constant_s)
            self._s += alpha * (p - self._s)
        self._last_face_t = t
        self._readable = readable
        self._decide(t)
        return self._state()

    def _clear(self) -> None:
        self._s = None
        if self._shown != -1:
            self.changes += 1
        self._shown = -1
        self._challenger = -1

    def _decide(self, t: float) -> None:
        o, s = self.options, self._s
        if self._shown == -1 and t - self._warm_since < o.warmup_s:
            return
        top = int(np.argmax(s))
        if o.min_confidence > 0 or o.min_margin > 0 or not self._readable:
            second = float(np.partition(s, -2)[-2]) if len(s) > 1 else 0.0
            # Leaving "uncertain" needs a clearer read: half the switch margin above each threshold, at most half
            # the way to 1 (a streamer's high threshold must stay reachable, or "uncertain" would never clear).
            leaving = self._shown == _UNC
            conf = o.min_confidence + (min(o.switch_margin, 1.0 - o.min_confidence) / 2 if leaving else 0.0)
            margin = o.min_margin + (min(o.switch_margin, 1.0 - o.min_margin) / 2 if leaving else 0.0)
            if (not self._readable or s[top] < conf
                    or s[top] - second < (margin if o.min_margin > 0 else 0.0)):
                top = _UNC
        if top == _UNC or self._shown == _UNC:
            self._decide_uncertain(top, t)
            return
        if self._shown == -1:
            self._show(top, t)
            return
        if top == self._shown or s[top] - s[self._shown] < o.switch_margin:
            self._challenger = -1
            return
        if top != self._challenger:
            self._challenger, self._challenger_since = top, t
        if t - self._challenger_since >= o.switch_hold_s and t - self._shown_since >= o.min_dwell_s:
            self._show(top, t)

    def _decide_uncertain(self, top: int, t: float) -> None:
        """Changes to and from "uncertain" (it has no probability, so no margin): into it once the face has been
        unreadable for ``uncertain_hold_s`` and the shown label's dwell is over; out of it after ``switch_hold_s``
        once the thresholds are passed by half the switch margin, at most half the way to 1 (the band keeps a
        borderline face from flickering)."""
        o = self.options
        if self._shown == -1:
            self._show(top, t)
            return
        if top == self._shown:
            self._challenger = -1
            return
        if top != self._challenger:
            self._challenger, self._challenger_since = top, t
        held = t - self._challenger_since
        if self._shown == _UNC:
            if held >= o.switch_hold_s:
                self._show(top, t)
        elif held >= o.uncertain_hold_s and t - self._shown_since >= o.min_dwell_s:
            self._show(top, t)

    def _show(self, index: int, t: float) -> None:
        self._shown, self._shown_since = index, t
        self._challenger = -1
        self.changes += 1

    def _state(self) -> SmoothedState:
        if self._s is None or self._shown == -1:
            return SmoothedState("", 0.0, np.zeros(len(self.labels), np.float32))
        if self._shown == _UNC:
            return SmoothedState(UNCERTAIN, float(self._s.max()), self._s.astype(np.float32))
        return SmoothedState(self.labels[self._shown], float(self._s[self._shown]), self._s.astype(np.float32))
