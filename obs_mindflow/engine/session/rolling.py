"""The live rolling window of a session's statistics: analysed, readable-face and negative seconds over the last
``seconds`` of session time, in a fixed ring of slots (bounded memory whatever the session length).

Time is booked as intervals ``[t0, t1)`` of session time (seconds), never decreasing. The window
``[now - seconds, now]`` covers whole slots plus part of the oldest one, weighted by the fraction inside the window
(time within a slot is taken as uniform). Not thread-safe: :class:`~.stats.SessionStats` holds the lock.
"""

from __future__ import annotations

from typing import Any


class RollingWindow:
    """``seconds`` of session time in ``slots`` slots. Absolute slot ``j`` lives at ``j % (slots + 1)``; slots
    ``j - slots .. j`` are valid."""

    def __init__(self, seconds: float, slots: int) -> None:
        self.seconds = seconds
        self.slots = slots
        self.width = seconds / slots
        self.reset()

    def reset(self) -> None:
        n1 = self.slots + 1
        self.neg = [0.0] * n1
        self.face = [0.0] * n1
        self.analysed = [0.0] * n1
        self.j = 0
        self.end = self.width

    def add(self, t0: float, t1: float, analysed: bool, face: bool, negative: bool) -> None:
        """Book ``[t0, t1)``: ``analysed`` (a face or none, seen), ``face`` (a readable face), ``negative``."""
        if not analysed:
            if t1 > self.end:
                self._advance(int(t1 // self.width))
            return
        n1 = self.slots + 1
        while t0 < t1:
            if t0 >= self.end:
                self._advance(max(self.j + 1, int(t0 // self.width)))
                continue
            seg = min(t1, self.end)
            d = seg - t0
            m = self.j % n1
            self.analysed[m] += d
            if face:
                self.face[m] += d
                if negative:
                    self.neg[m] += d
            t0 = seg

    def _advance(self, j: int) -> None:
        """Make absolute slot ``j`` current, clearing the slots that fall out of the ring."""
        n1 = self.slots + 1
        if j <= self.j:
            return
        for s in range(self.j + 1, min(j, self.j + n1) + 1):
            m = s % n1
            self.neg[m] = self.face[m] = self.analysed[m] = 0.0
        self.j = j
        self.end = (j + 1) * self.width

    def totals(self, now: float) -> tuple[float, float, float, float]:
        """``(window_s, analysed_s, face_s, negative_s)`` over the window ending at session time ``now``."""
        w, n = self.width, self.slots
        n1 = n + 1
        nowj = int(now // w)
        frac = (now - nowj * w) / w
        ana = face = neg = 0.0
        for a in range(max(nowj - n, self.j - n, 0), min(nowj, self.j) + 1):
            m = a % n1
            wt = (1.0 - frac) if a == nowj - n else 1.0
            ana += wt * self.analysed[m]
            face += wt * self.face[m]
            neg += wt * self.neg[m]
        return min(now, self.seconds), ana, face, neg

    def to_state(self) -> dict[str, Any]:
        return {"j": self.j, "neg": list(self.neg), "face": list(self.face), "analysed": list(self.analysed)}

    def load_state(self, state: Any, floats) -> None:
        """Restore :meth:`to_state`; ``floats(value, n, name)`` validates a list of ``n`` numbers."""
        n1 = self.slots + 1
        self.j = int(state["j"])
        self.neg = floats(state["neg"], n1, "rolling.neg")
        self.face = floats(state["face"], n1, "rolling.face")
        self.analysed = floats(state["analysed"], n1, "rolling.analysed")
        self.end = (self.j + 1) * self.width
