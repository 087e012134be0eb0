"""The analysis pipeline: detect → classify → transform → smooth, in one background worker fed by a one-slot mailbox.

The *transform* seam sits between the model's probabilities and the smoother: a chain of functions
``(N, C) probabilities → (N, C) probabilities`` (rows sum to 1), e.g. a personal baseline correction; set with
:meth:`Analyzer.set_transforms` at any time (the next frame uses the new chain).

``Analyzer`` is what the OBS script and the CLI drive::

    with Analyzer(ExpressionModel.load(folder)) as analyzer:    # start() is called by __enter__
        analyzer.submit(frame, time.monotonic())                # never blocks; newest frame wins
        result = analyzer.latest()                              # never blocks; an AnalysisResult, never None

Threading: ``submit`` and ``latest`` may be called from any thread (OBS's graphics thread and UI thread); the single
daemon worker does the heavy work (OpenCV and onnxruntime release the GIL while they compute). ``on_result`` (given at
construction) is called in the worker thread for every result, in order; it must be quick (session statistics are
O(1) per result). :meth:`Analyzer.process` is the same work synchronously, for video files.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Callable, Sequence

import cv2
import numpy as np

from .detector import DetectorOptions, FaceDetector
from .frames import check_frame, to_gray
from .model import ExpressionModel
from .results import AnalysisResult, Timings
from .smoothing import EmotionSmoother, SmootherOptions, options_for_card

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnalyzerStats:
    """Counters since ``start()``: frames ``submitted``, ``analysed``, ``dropped`` (overwritten in the mailbox before
    the worker took them), worker ``errors``, the ``last_error`` text (``""`` if none) and the achieved analysis
    ``rate_hz`` over the last few seconds."""

    submitted: int
    analysed: int
    dropped: int
    errors: int
    last_error: str
    rate_hz: float
    running: bool


Transform = Callable[[np.ndarray], np.ndarray]

QUALITY_SIZE = 48          # face quality is measured on a gray crop of this size (the FER models' input)


@dataclass(frozen=True)
class QualityOptions:
    """When a detected face is too poor to read (the display says "uncertain"). ``min_face_px``: face box height in
    pixels of the analysed frame — below 3/4 of the 48-px input of the FER models a crop is upsampled by more than a
    third; ``min_sharpness``: contrast-normalised Laplacian variance of the 48×48 gray crop. Measured on FER+
    validation faces: none of the originals is below 0.12 (1 % below 0.22), a Gaussian blur of σ 1.2 px puts 99 %
    below it, σ 0.8 px 56 %, a 24-px face scaled up 78 %, dim light (gamma 1.8, 60 % gain) none; the sample clip's
    faces, soft but read clearly, are at 0.25–1.5 (in OBS a little lower)."""

    min_face_px: int = 36
    min_sharpness: float = 0.12


def face_quality(frame: np.ndarray, box: np.ndarray) -> tuple[int, float]:
    """``(height px, sharpness)`` of one ``(x, y, w, h)`` face box in ``frame`` (see :class:`QualityOptions`)."""
    x, y, w, h = (int(v) for v in box)
    crop = frame[max(0, y):max(0, y) + h, max(0, x):max(0, x) + w]
    if crop.size == 0:
        return 0, 0.0
    gray = cv2.resize(to_gray(crop), (QUALITY_SIZE, QUALITY_SIZE), interpolation=cv2.INTER_AREA).astype(np.float32)
    sharp = float(cv2.Laplacian(gray, cv2.CV_32F).var() / (gray.var() + 1.0))
    return h, sharp


class Analyzer:
    """Face detection + expression model + probability transforms + smoothing behind a latest-frame mailbox and one
    worker thread."""

    def __init__(self, model: ExpressionModel, *, detector: FaceDetector | None = None,
                 detector_options: DetectorOptions | None = None,
                 smoother_options: SmootherOptions | None = None,
                 transforms: Sequence[Transform] = (), quality_options: QualityOptions | None = None,
                 on_result: Callable[[AnalysisResult], None] | None = None,
                 opencv_threads: int = 1, name: str = "mindflow-analyzer") -> None:
        self.model = model
        self.detector = detector or FaceDetector(detector_options)
        self.smoother = EmotionSmoother(model.labels, smoother_options or options_for_card(model.card))
        self._transforms: tuple[Transform, ...] = tuple(transforms)
        self.quality = quality_options or QualityOptions()
        self._on_result = on_result
        self.opencv_threads = opencv_threads
        self.name = name
        self._cond = threading.Condition()
        self._slot: tuple[np.ndarray, float, int] | None = None
        self._seq = 0
        self._done = 0  # highest sequence number handled by the worker (analysed or failed)
        self._dropped = 0
        self._analysed = 0
        self._errors = 0
        self._last_error = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._process_lock = threading.Lock()
        self._latest = AnalysisResult.empty(model.labels)
        self._recent: list[float] = []  # monotonic times of recent analyses (bounded)

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> "Analyzer":
        """Start the worker (idempotent). Raises ``RuntimeError`` after ``close()``."""
        if self._closed:
            raise RuntimeError("this Analyzer is closed; create a new one")
        if self._thread is None:
            if self.opencv_threads > 0:
                cv2.setNumThreads(self.opencv_threads)
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        return self

    def close(self, timeout: float = 2.0) -> bool:
        """Stop the worker and wait up to ``timeout`` seconds for it. Idempotent. Returns True when it has ended."""
        self._closed = True
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)
            if t.is_alive():
                log.warning("analysis worker did not stop within %.1f s (a model call still running?)", timeout)
                return False
        return True

    def __enter__(self) -> "Analyzer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def reset(self) -> None:
        """Forget the detector's tracking and the smoother's state (a new video, a new session): the next frame is
        analysed as the first. Counters and transforms stay."""
        with self._process_lock:
            self.detector.reset()
            self.smoother.reset()
            self._latest = AnalysisResult.empty(self.model.labels)

    def set_smoother_options(self, options: SmootherOptions) -> None:
        """New smoothing and "uncertain" thresholds (any thread; from the next frame, the smoothed state kept)."""
        with self._process_lock:
            self.smoother.options = options

    def set_transforms(self, transforms: Sequence[Transform]) -> None:
        """Replace the probability transforms (any thread; the next analysed frame uses them)."""
        self._transforms = tuple(transforms)

    @property
    def transforms(self) -> tuple[Transform, ...]:
        return self._transforms

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    # -- producer / consumer ---------------------------------------------------------------------------------

    def submit(self, frame: np.ndarray, timestamp: float | None = None) -> int:
        """Put ``frame`` in the mailbox, replacing any frame not yet taken (counted as dropped). Never blocks.

        ``frame`` is gray/BGR/BGRA uint8 and must not be modified afterwards (pass a copy you own).
        ``timestamp`` is in seconds (default ``time.monotonic()``). Returns the frame's sequence number.
        """
        ts = time.monotonic() if timestamp is None else float(timestamp)
        with self._cond:
            if self._slot is not None:
                self._dropped += 1
            self._seq += 1
            self._slot = (frame, ts, self._seq)
            self._cond.notify()
            return self._seq

    def latest(self) -> AnalysisResult:
        """The newest result (an empty one before the first analysis). Never blocks."""
        return self._latest

    def stats(self) -> AnalyzerStats:
        now = time.monotonic()
        recent = [t for t in self._recent if now - t <= 5.0]
        rate = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) >= 2 and recent[-1] > recent[0] else 0.0
        return AnalyzerStats(submitted=self._seq, analysed=self._analysed, dropped=self._dropped,
                             errors=self._errors, last_error=self._last_error, rate_hz=rate, running=self.running)

    def wait_for(self, seq: int, timeout: float = 5.0) -> AnalysisResult:
        """Block until frame ``seq`` (or a newer one) has been handled — analysed, dropped or failed — and return
        the latest result. For tests and tools."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._done < seq:
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    break
                self._cond.wait(min(left, 0.1))
            return self._latest

    # -- the work --------------------------------------------------------------------------------------------

    def process(self, frame: np.ndarray, timestamp: float, seq: int = 0) -> AnalysisResult:
        """Analyse one frame synchronously (the worker's own path; also used by the CLI for video files).

        Raises :class:`~obs_mindflow.engine.frames.FrameError` for a frame that is not an image.
        """
        with self._process_lock:
            t0 = time.perf_counter()
            frame = check_frame(frame)
            h, w = frame.shape[:2]
            boxes = self.detector.detect(frame, timestamp)
            t1 = time.perf_counter()
            if len(boxes):
                batch = self.model.preprocess(frame, boxes)
                t2 = time.perf_counter()
                probs = self.model.postprocess(self.model.infer(batch))
                t3 = time.perf_counter()
            else:
                probs = np.zeros((0, len(self.model.labels)), np.float32)
                t2 = t3 = t1
            adjusted = probs
            for transform in self._transforms:
                adjusted = transform(adjusted)
            face_px, sharpness = face_quality(frame, boxes[0]) if len(boxes) else (0, 0.0)
            q = self.quality
            readable = face_px >= q.min_face_px and sharpness >= q.min_sharpness
            state = self.smoother.update(timestamp, adjusted[0] if len(adjusted) else None, readable)
            t4 = time.perf_counter()
            ms = 1000.0
            result = AnalysisResult(
                seq=seq, timestamp=timestamp, frame_size=(w, h), labels=self.model.labels, boxes=boxes,
                probabilities=probs, adjusted=adjusted, emotion=state.label, confidence=state.confidence, smoothed=state.probabilities,
                timings=Timings(detect=(t1 - t0) * ms, preprocess=(t2 - t1) * ms, infer=(t3 - t2) * ms,
                                smooth=(t4 - t3) * ms, total=(t4 - t0) * ms),
                face_px=face_px, sharpness=sharpness)
            self._latest = result
            self._analysed += 1
            self._recent.append(time.monotonic())
            if len(self._recent) > 64:
                del self._recent[:32]
            return result

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                while self._slot is None and not self._stop.is_set():
                    self._cond.wait(0.5)
                if self._stop.is_set():
                    return
                frame, ts, seq = self._slot
                self._slot = None
            try:
                result = self.process(frame, ts, seq)
                if self._on_result is not None:
                    self._on_result(result)
            except Exception as exc:  # never let one bad frame end the analysis
                self._errors += 1
                self._last_error = f"{type(exc).__name__}: {exc}"
                if self._errors <= 5 or self._errors % 100 == 0:
                    log.error("analysis error #%d on frame %d: %s\n%s", self._errors, seq, self._last_error,
                              traceback.format_exc(limit=4))
            finally:
                with self._cond:
                    self._done = seq
                    self._cond.notify_all()
