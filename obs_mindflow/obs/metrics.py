"""Bounded timing statistics for the graphics-thread work (pure Python; cheap enough for OBS's render thread)."""

from __future__ import annotations

import math


class DurationStats:
    """The last ``size`` durations in **milliseconds** (a ring) plus a running count and maximum.

    ``add`` is O(1) and allocation-free after warm-up; ``percentile`` sorts a copy (call it off the hot path)."""

    def __init__(self, size: int = 4096) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self._ring = [0.0] * size
        self._n = 0
        self.count = 0
        self.max_ms = 0.0

    def add(self, ms: float) -> None:
        self._ring[self._n % len(self._ring)] = ms
        self._n += 1
        self.count += 1
        if ms > self.max_ms:
            self.max_ms = ms

    def values(self) -> list[float]:
        return self._ring[: min(self._n, len(self._ring))]

    def percentile(self, p: float) -> float:
        """The ``p``-th percentile (0..100, nearest rank) of the kept durations; NaN when empty."""
        v = sorted(self.values())
        if not v:
            return math.nan
        k = max(0, min(len(v) - 1, math.ceil(p / 100.0 * len(v)) - 1))
        return v[k]

    def summary(self) -> str:
        if not self.count:
            return "no samples"
        return (f"median {self.percentile(50):.2f} ms, p99 {self.percentile(99):.2f} ms, max {self.max_ms:.2f} ms "
                f"over {self.count}")
