"""Session statistics: how a streaming session went emotionally, time-weighted from the engine's results.

Everything here is driven by the results' own timestamps (seconds on the caller's clock), never by the wall clock,
and never counts frames as time: the analysis rate varies with load, so a result stands for the time until the next
one (*sample and hold*).

Time accounting (all in **seconds**)
------------------------------------
Each ``update(timestamp, emotion)`` closes the interval since the previous update and books it to the **previous**
state (a label; "uncertain" — a face that could not be read; or "no face" when the previous emotion was ``""``). An interval longer than ``max_gap_seconds``
(analysis paused, OBS hiccup, a laptop asleep) is booked to the previous state only up to ``max_gap_seconds``; the
rest is **not analysed** time: it counts in the session's duration and in the timeline, but in no share.

- *analysed time* = readable-face time + uncertain time + no-face time;
- *face coverage* = (readable-face + uncertain time) / analysed time — a face was visible;
- label shares and the negative share are shares of **readable-face** time (``face_s``): time with a face that could
  be read; the *uncertain share* is uncertain time / face-visible time;
- the *duration* runs from the first to the last timestamp (the last result's state has not lasted yet);
- a timestamp earlier than the previous one (a clock reset, a seek in a video file) is a zero-length interval:
  session time never goes backwards, and the jump is counted in ``clock_resets``.

Memory is bounded whatever the session length: the timeline holds at most ``max_bins`` bins (adjacent bins are
merged, doubling the bin width, when it would grow beyond); the rolling window is a fixed ring of slots; nothing
grows per update.

This module needs numpy and the standard library only.
"""

from __future__ import annotations

import base64
import math
import threading
from typing import Any, Iterable, Sequence

import numpy as np

from ...errors import MindFlowError
from .rolling import RollingWindow
from .snapshot import NegativeStretch, StatsSnapshot

STATE_FORMAT = "mindflow.session_stats"
STATE_VERSION = 2      # 2: an "uncertain" column after the labels (version 1 states are read too)
UNCERTAIN = "uncertain"

_INF = math.inf


# --------------------------------------------------------------------------------------------------------------------
# Array (de)serialisation for checkpoints: exact, compact, fast
# --------------------------------------------------------------------------------------------------------------------

def _pack(a: np.ndarray) -> dict[str, Any]:
    a = np.ascontiguousarray(a, dtype="<f8")
    return {"dtype": "<f8", "shape": list(a.shape), "b64": base64.b64encode(a.tobytes()).decode("ascii")}


def _unpack(d: Any, name: str) -> np.ndarray:
    try:
        if d.get("dtype") != "<f8":
            raise ValueError(f"dtype {d.get('dtype')!r}")
        raw = base64.b64decode(d["b64"].encode("ascii"), validate=True)
        shape = tuple(int(x) for x in d["shape"])
        return np.frombuffer(raw, dtype="<f8").reshape(shape).copy()
    except Exception as exc:  # noqa: BLE001 - any malformation is the same error for the caller
        raise StatsStateError(f"checkpoint field {name!r} is not a valid packed array: {exc}") from exc


class StatsStateError(MindFlowError, ValueError):
    """A saved statistics state (``SessionStats.to_state()``) is malformed or from an incompatible version."""


# --------------------------------------------------------------------------------------------------------------------
# SessionStats
# --------------------------------------------------------------------------------------------------------------------

def positive_seconds(name: str, v: float) -> float:
    """``v`` as a finite number of seconds > 0, else ``ValueError`` naming ``name``."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of seconds, got {v!r}") from None
    if not (0 < f < _INF):
        raise ValueError(f"{name} must be a finite number of seconds > 0, got {v!r}")
    return f


class SessionStats:
    """Time-weighted statistics of one session (see the module docstring for the accounting rules).

    ``labels``: the model's labels in card order; ``negative_labels``: the subset counted as negative.
    ``bin_seconds``: initial timeline resolution (seconds); ``rolling_seconds``: the live rolling window (seconds);
    ``max_gap_seconds``: the longest interval booked to the previous state, the rest is not analysed;
    ``max_bins`` (even): the timeline cap — beyond it adjacent bins merge and the bin width doubles;
    ``rolling_slots``: resolution of the rolling window (``rolling_seconds / rolling_slots`` seconds per slot).

    Thread-safe: ``update`` (engine worker thread) and ``snapshot`` (UI thread) take one lock; both are cheap —
    ``update`` is O(1) amortised, ``snapshot(timeline=False)`` is O(``rolling_slots``), the timeline copy is
    O(bins) ≤ ``max_bins`` rows.
    """

    def __init__(self, labels: Sequence[str], negative_labels: Iterable[str] = (), *, bin_seconds: float = 10.0,
                 rolling_seconds: float = 300.0, max_gap_seconds: float = 2.0, max_bins: int = 8192,
                 rolling_slots: int = 60) -> None:
        labels = tuple(labels)
        if len(labels) < 1 or not all(isinstance(x, str) and x for x in labels):
            raise ValueError(f"labels must be a non-empty list of non-empty strings (the model card's labels), "
                             f"got {labels!r}")
        if len(set(labels)) != len(labels):
            raise ValueError(f"labels must be unique, got {labels!r}")
        negative_labels = tuple(negative_labels)
        strangers = [x for x in negative_labels if x not in labels]
        if strangers:
            raise ValueError(f"negative_labels {strangers} are not among the labels {labels}; "
                             f"use the model card's negative_labels")
        if not isinstance(max_bins, int) or max_bins < 2 or max_bins % 2:
            raise ValueError(f"max_bins must be an even integer >= 2, got {max_bins!r}")
        if not isinstance(rolling_slots, int) or rolling_slots < 1:
            raise ValueError(f"rolling_slots must be an integer >= 1, got {rolling_slots!r}")
        self.labels = labels
        self.negative_labels = tuple(x for x in labels if x in negative_labels)
        self.bin_seconds = positive_seconds("bin_seconds", bin_seconds)
        self.rolling_seconds = positive_seconds("rolling_seconds", rolling_seconds)
        self.max_gap_seconds = positive_seconds("max_gap_seconds", max_gap_seconds)
        self.max_bins = max_bins
        self.rolling_slots = rolling_slots
        c = len(labels)
        self._c = c
        if UNCERTAIN in labels:
            raise ValueError(f"a label may not be called {UNCERTAIN!r}: it is MindFlow's state for a face that cannot "
                             f"be read")
        self._k = c + 3                       # columns: labels…, uncertain, no face, not analysed
        self._index = {lab: i for i, lab in enumerate(labels)}
        self._index[UNCERTAIN] = c
        self._index[""] = c + 1
        self._is_neg = [lab in self.negative_labels for lab in labels] + [False, False, False]
        self._rolling = RollingWindow(self.rolling_seconds, rolling_slots)
        self._lock = threading.Lock()
        self._reset_locked()

    # ---------------------------------------------------------------- state
    def _reset_locked(self) -> None:
        k = self._k
        self._updates = 0
        self._state = -1                      # index of the current state; -1 before the first update
        self._origin = 0.0                    # session time = timestamp - origin
        self._t = 0.0                         # session time of the last update
        self._first_ts: float | None = None
        self._last_ts: float | None = None
        self._last_label = -1                 # last face-visible label (for label changes)
        self._tot = [0.0] * k
        self._label_changes = 0
        self._face_losses = 0
        self._clock_resets = 0
        # timeline: completed bins in _bins[:_cidx], the current one in the list _cur
        self._width = self.bin_seconds
        self._bins = np.zeros((min(self.max_bins, 512), k), np.float64)
        self._cidx = 0
        self._cur = [0.0] * k
        self._cend = self._width
        self._rolling.reset()
        # negative stretches
        self._run_start: float | None = None
        self._run_end = 0.0
        self._longest: tuple[float, float, float] | None = None

    def reset(self) -> None:
        """Forget everything: the next update starts a new session at session time 0."""
        with self._lock:
            self._reset_locked()

    # ---------------------------------------------------------------- updates
    def update(self, timestamp: float, emotion: str) -> float:
        """Record that at ``timestamp`` (seconds, caller's clock) the displayed emotion became ``emotion``
        (``""`` = no face). Returns the session time of this update (seconds since the first update).

        Raises ``ValueError`` for a non-finite timestamp or an emotion that is not one of the labels.
        """
        k = self._index.get(emotion)
        if k is None:
            raise ValueError(f"unknown emotion {emotion!r}: expected one of {self.labels} or '' for no face — "
                             f"build SessionStats from the same model card as the engine")
        ts = float(timestamp)
        if not -_INF < ts < _INF:
            raise ValueError(f"timestamp must be a finite number of seconds, got {timestamp!r}")
        with self._lock:
            return self._update_locked(ts, k)

    def update_result(self, result: Any) -> float:
        """``update(result.timestamp, result.emotion)`` for an :class:`~obs_mindflow.engine.results.AnalysisResult`."""
        return self.update(result.timestamp, result.emotion)

    def _update_locked(self, ts: float, k: int) -> float:
        self._updates += 1
        prev = self._state
        if prev < 0:
            self._origin = ts
            self._first_ts = ts
        else:
            now = ts - self._origin
            t0 = self._t
            dt = now - t0
            if dt > 0:
                gap = self.max_gap_seconds
                if dt <= gap:
                    self._add(prev, t0, now)
                else:
                    self._add(prev, t0, t0 + gap)
                    self._add(self._c + 2, t0 + gap, now)
                self._t = now
            elif dt < 0:                      # clock went backwards: keep session time where it was
                self._origin = ts - t0
                self._clock_resets += 1
            if prev <= self._c and k == self._c + 1:
                self._face_losses += 1
        if k < self._c:
            if self._last_label >= 0 and k != self._last_label:
                self._label_changes += 1
            self._last_label = k
        self._state = k
        self._last_ts = ts
        return self._t

    def _add(self, k: int, t0: float, t1: float) -> None:
        """Book the session-time interval ``[t0, t1)`` (seconds) to column ``k``."""
        d = t1 - t0
        self._tot[k] += d
        # timeline
        if t1 <= self._cend:
            self._cur[k] += d
        else:
            self._timeline_split(k, t0, t1)
        self._rolling.add(t0, t1, analysed=k <= self._c + 1, face=k < self._c, negative=self._is_neg[k])
        # negative stretches
        if self._is_neg[k]:
            if self._run_start is None:
                self._run_start = t0
            self._run_end = t1
        elif self._run_start is not None:
            self._close_run()

    def _close_run(self) -> None:
        start = self._run_start
        assert start is not None
        d = self._run_end - start
        if self._longest is None or d > self._longest[0]:
            self._longest = (d, start, self._run_end)
        self._run_start = None

    def _timeline_split(self, k: int, t0: float, t1: float) -> None:
        while True:
            end = self._cend
            if t1 <= end:
                self._cur[k] += t1 - t0
                return
            if t0 < end:
                self._cur[k] += end - t0
                t0 = end
            self._next_bin()

    def _next_bin(self) -> None:
        i = self._cidx
        if i >= self._bins.shape[0]:
            grown = np.zeros((min(self.max_bins, 2 * self._bins.shape[0]), self._k), np.float64)
            grown[:i] = self._bins[:i]
            self._bins = grown
        self._bins[i] = self._cur
        self._cidx = i + 1
        if self._cidx >= self.max_bins:
            self._merge_bins()
        self._cur = [0.0] * self._k
        self._cend = (self._cidx + 1) * self._width

    def _merge_bins(self) -> None:
        """Halve the number of bins: bin j becomes old bins 2j + 2j+1; the bin width doubles. Sums are kept."""
        n = self._cidx
        half = n // 2
        b = self._bins
        b[:half] = b[0:n:2] + b[1:n:2]
        b[half:] = 0.0
        self._cidx = half
        self._width *= 2.0

    # ---------------------------------------------------------------- reading
    def rolling(self) -> tuple[float, float, float]:
        """Cheap live read: ``(negative share of face time, face coverage, face seconds)`` over the rolling window."""
        with self._lock:
            _, ana, face, neg = self._rolling.totals(self._t)
        return (neg / face if face > 0 else 0.0), (face / ana if ana > 0 else 0.0), face

    @property
    def updates(self) -> int:
        """Number of updates since the start (or the last reset)."""
        return self._updates

    def snapshot(self, *, timeline: bool = True) -> StatsSnapshot:
        """A consistent :class:`StatsSnapshot`. ``timeline=False`` skips the timeline copy (for live display)."""
        with self._lock:
            c = self._c
            tot = list(self._tot)
            longest = self._longest
            if self._run_start is not None:
                d = self._run_end - self._run_start
                if longest is None or d > longest[0]:
                    longest = (d, self._run_start, self._run_end)
            window, r_ana, r_face, r_neg = self._rolling.totals(self._t)
            tl = None
            if timeline:
                has_cur = self._t > self._cidx * self._width
                n = self._cidx + (1 if has_cur else 0)
                tl = np.empty((n, self._k), np.float64)
                tl[:self._cidx] = self._bins[:self._cidx]
                if has_cur:
                    tl[self._cidx] = self._cur
                tl.setflags(write=False)
            state = self._state
            args = dict(updates=self._updates, label_changes=self._label_changes, face_losses=self._face_losses,
                        clock_resets=self._clock_resets, bin_seconds=self._width, duration_s=self._t,
                        first_timestamp=self._first_ts, last_timestamp=self._last_ts)
        face = float(sum(tot[:c]))
        uncertain = tot[c]
        no_face = tot[c + 1]
        analysed = face + uncertain + no_face
        neg = float(sum(t for t, is_neg in zip(tot[:c], self._is_neg) if is_neg))
        secs = tuple(float(x) for x in tot[:c])
        shares = tuple(x / face for x in secs) if face > 0 else (0.0,) * c
        dominant = self.labels[max(range(c), key=lambda i: (secs[i], -i))] if face > 0 else ""
        return StatsSnapshot(
            labels=self.labels, negative_labels=self.negative_labels, analysed_s=analysed, face_s=face,
            uncertain_s=uncertain, no_face_s=no_face, not_analysed_s=tot[c + 2],
            coverage=((face + uncertain) / analysed if analysed > 0 else 0.0),
            seconds=secs, shares=shares, negative_s=neg, negative_share=(neg / face if face > 0 else None),
            dominant=dominant,
            current_emotion=(self.labels[state] if 0 <= state < c else UNCERTAIN if state == c else ""),
            longest_negative=None if longest is None else NegativeStretch(*longest),
            rolling_seconds=self.rolling_seconds, rolling_window_s=window, rolling_face_s=r_face,
            rolling_negative_share=(r_neg / r_face if r_face > 0 else None),
            rolling_coverage=(r_face / r_ana if r_ana > 0 else 0.0), max_gap_seconds=self.max_gap_seconds,
            timeline=tl, **args)

    # ---------------------------------------------------------------- persistence
    def to_state(self) -> dict[str, Any]:
        """Everything needed to rebuild these statistics exactly, as a JSON-able dict (see :meth:`from_state`)."""
        with self._lock:
            return {
                "format": STATE_FORMAT, "version": STATE_VERSION,
                "config": {"labels": list(self.labels), "negative_labels": list(self.negative_labels),
                           "bin_seconds": self.bin_seconds, "rolling_seconds": self.rolling_seconds,
                           "max_gap_seconds": self.max_gap_seconds, "max_bins": self.max_bins,
                           "rolling_slots": self.rolling_slots},
                "updates": self._updates, "state": self._state, "origin": self._origin, "t": self._t,
                "first_ts": self._first_ts, "last_ts": self._last_ts, "last_label": self._last_label,
                "totals": list(self._tot), "label_changes": self._label_changes,
                "face_losses": self._face_losses, "clock_resets": self._clock_resets,
                "width": self._width, "bins": _pack(self._bins[:self._cidx]), "current_bin": list(self._cur),
                "rolling": self._rolling.to_state(),
                "run": None if self._run_start is None else [self._run_start, self._run_end],
                "longest": None if self._longest is None else list(self._longest),
            }

    @classmethod
    def from_state(cls, state: Any) -> "SessionStats":
        """Rebuild statistics saved by :meth:`to_state`. Raises :class:`StatsStateError` when malformed."""
        try:
            if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
                raise StatsStateError(f"not a MindFlow statistics state (format {STATE_FORMAT!r} expected)")
            version = state.get("version")
            if version not in (1, STATE_VERSION):
                raise StatsStateError(f"statistics state version {version!r}; this MindFlow reads versions 1 and "
                                      f"{STATE_VERSION}")
            cfg = state["config"]
            s = cls(cfg["labels"], cfg["negative_labels"], bin_seconds=cfg["bin_seconds"],
                    rolling_seconds=cfg["rolling_seconds"], max_gap_seconds=cfg["max_gap_seconds"],
                    max_bins=cfg["max_bins"], rolling_slots=cfg["rolling_slots"])
            k = s._k
            old = version == 1          # no "uncertain" column: insert an empty one before "no face"

            def floats(v: Any, n: int, name: str, columns: bool = False) -> list[float]:
                if columns and old and isinstance(v, list) and len(v) == n - 1:
                    v = v[:s._c] + [0.0] + v[s._c:]
                if not isinstance(v, list) or len(v) != n:
                    raise StatsStateError(f"{name} must be a list of {n} numbers")
                return [float(x) for x in v]

            s._updates = int(state["updates"])
            s._state = int(state["state"])
            if old and s._state == s._c:
                s._state = s._c + 1
            if not -1 <= s._state < s._c + 2:
                raise StatsStateError(f"state index {s._state} out of range")
            s._origin = float(state["origin"])
            s._t = float(state["t"])
            s._first_ts = None if state["first_ts"] is None else float(state["first_ts"])
            s._last_ts = None if state["last_ts"] is None else float(state["last_ts"])
            s._last_label = int(state["last_label"])
            s._tot = floats(state["totals"], k, "totals", columns=True)
            s._label_changes = int(state["label_changes"])
            s._face_losses = int(state["face_losses"])
            s._clock_resets = int(state["clock_resets"])
            s._width = float(state["width"])
            bins = _unpack(state["bins"], "bins")
            if old and bins.ndim == 2 and bins.shape[1] == k - 1:
                bins = np.insert(bins, s._c, 0.0, axis=1)
            if bins.ndim != 2 or bins.shape[1] != k or bins.shape[0] >= s.max_bins:
                raise StatsStateError(f"bins must have shape (< {s.max_bins}, {k}), got {bins.shape}")
            s._cidx = bins.shape[0]
            cap = s._bins.shape[0]
            while cap <= s._cidx and cap < s.max_bins:
                cap = min(s.max_bins, cap * 2)
            s._bins = np.zeros((cap, k), np.float64)
            s._bins[:s._cidx] = bins
            s._cur = floats(state["current_bin"], k, "current_bin", columns=True)
            s._cend = (s._cidx + 1) * s._width
            s._rolling.load_state(state["rolling"], floats)
            run = state["run"]
            s._run_start, s._run_end = (None, 0.0) if run is None else (float(run[0]), float(run[1]))
            lg = state["longest"]
            s._longest = None if lg is None else (float(lg[0]), float(lg[1]), float(lg[2]))
            return s
        except StatsStateError:
            raise
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise StatsStateError(f"statistics state is malformed: {type(exc).__name__}: {exc}") from exc

