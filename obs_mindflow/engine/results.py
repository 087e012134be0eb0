"""Immutable analysis results. "No face" is an empty result, never ``None``."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

UNCERTAIN = "uncertain"   # = smoothing.UNCERTAIN: a face is tracked but cannot be read


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class Timings:
    """Per-stage wall time of one analysis, in **milliseconds**."""

    detect: float = 0.0
    preprocess: float = 0.0
    infer: float = 0.0
    smooth: float = 0.0
    total: float = 0.0


@dataclass(frozen=True)
class AnalysisResult:
    """What the engine made of one frame. Safe to share between threads (arrays are read-only copies).

    - ``seq``: the frame's sequence number from ``Analyzer.submit`` (1, 2, …); 0 for the initial empty result.
    - ``timestamp``: the frame's timestamp in **seconds**, on the caller's clock (``time.monotonic()`` live,
      the video position for files).
    - ``frame_size``: ``(width, height)`` of the analysed frame in pixels.
    - ``boxes``: ``(N, 4)`` int32 face boxes ``(x, y, w, h)`` — top-left corner, width, height — in the frame's
      pixel coordinates; the primary face first.
    - ``probabilities``: ``(N, C)`` float32 per-face probabilities as the model gives them (after the card's
      temperature), columns in ``labels`` order.
    - ``adjusted``: ``(N, C)`` float32 the same after the Analyzer's transforms (e.g. a personal baseline); what the
      smoother was fed. Equal to ``probabilities`` when there are none.
    - ``labels``: the model's class names in output order (from its card).
    - ``emotion``: the smoothed, displayed emotion of the primary face: a label, ``"uncertain"`` when a face is
      tracked but cannot be read (low or split confidence, too small, blurred), ``""`` when no face is tracked.
    - ``confidence``: smoothed probability of the top label (0..1; 0 when ``emotion`` is ``""``).
    - ``face_px``: height of the primary face box in pixels (0 when none); ``sharpness``: its contrast-normalised
      Laplacian variance on a 48×48 crop (0 when none; FER+ faces: median 0.72, none below 0.12).
    - ``smoothed``: ``(C,)`` float32 smoothed probabilities of the primary face (zeros when none).
    - ``timings``: per-stage milliseconds.
    """

    seq: int
    timestamp: float
    frame_size: tuple[int, int]
    labels: tuple[str, ...]
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int32))
    probabilities: np.ndarray | None = None
    adjusted: np.ndarray | None = None
    emotion: str = ""
    confidence: float = 0.0
    smoothed: np.ndarray | None = None
    timings: Timings = field(default_factory=Timings)
    face_px: int = 0
    sharpness: float = 0.0

    def __post_init__(self) -> None:
        c = len(self.labels)
        boxes = np.asarray(self.boxes, dtype=np.int32).reshape(-1, 4)
        probs = (np.zeros((len(boxes), c), np.float32) if self.probabilities is None
                 else np.asarray(self.probabilities, dtype=np.float32))
        if probs.shape != (len(boxes), c):
            raise ValueError(f"probabilities must have shape ({len(boxes)}, {c}) for {len(boxes)} boxes and "
                             f"{c} labels, got {probs.shape}")
        adjusted = probs if self.adjusted is None else np.asarray(self.adjusted, dtype=np.float32)
        if adjusted.shape != probs.shape:
            raise ValueError(f"adjusted must have the shape of probabilities {probs.shape}, got {adjusted.shape}")
        smoothed = (np.zeros(c, np.float32) if self.smoothed is None
                    else np.asarray(self.smoothed, dtype=np.float32).reshape(-1))
        if smoothed.shape != (c,):
            raise ValueError(f"smoothed must have shape ({c},), got {smoothed.shape}")
        if self.emotion and self.emotion != UNCERTAIN and self.emotion not in self.labels:
            raise ValueError(f"emotion {self.emotion!r} is not one of the labels {self.labels} (or 'uncertain')")
        object.__setattr__(self, "boxes", _frozen(boxes))
        frozen = _frozen(probs)
        object.__setattr__(self, "probabilities", frozen)
        object.__setattr__(self, "adjusted", frozen if adjusted is probs else _frozen(adjusted))
        object.__setattr__(self, "smoothed", _frozen(smoothed))
        object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "frame_size", (int(self.frame_size[0]), int(self.frame_size[1])))

    @classmethod
    def empty(cls, labels: tuple[str, ...], timestamp: float = 0.0, seq: int = 0,
              frame_size: tuple[int, int] = (0, 0)) -> "AnalysisResult":
        """A result with no face."""
        return cls(seq=seq, timestamp=timestamp, frame_size=frame_size, labels=tuple(labels))

    @property
    def num_faces(self) -> int:
        return int(self.boxes.shape[0])

    @property
    def face_present(self) -> bool:
        """A face was detected in this very frame (``emotion`` may persist briefly after it is lost)."""
        return self.num_faces > 0

    @property
    def readable(self) -> bool:
        """A label is displayed (a face is tracked and could be read)."""
        return self.emotion in self.labels

    @property
    def raw_label(self) -> str:
        """Unsmoothed top label of the primary face, ``""`` when no face."""
        if not self.num_faces:
            return ""
        return self.labels[int(np.argmax(self.probabilities[0]))]

    def probabilities_dict(self, smoothed: bool = True) -> dict[str, float]:
        """``{label: probability}`` for the primary face (smoothed by default)."""
        row = self.smoothed if smoothed else (self.probabilities[0] if self.num_faces else np.zeros(len(self.labels)))
        return {label: float(p) for label, p in zip(self.labels, row)}
