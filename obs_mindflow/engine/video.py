"""Analyse a video file with the engine, deterministically and faster than real time.

:func:`analyze_video` is the one per-file function the CLI uses (and a batch or a cluster would call per file):
frames are decoded in a reader thread and analysed in the caller's thread, none dropped; at ``rate`` analyses per
second of **video time** (0 = every frame) the frame due is analysed and the others are only grabbed. Result
timestamps are the frames' positions in the video (seconds), so a session's time is the video's own time.
"""

from __future__ import annotations

import math
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .pipeline import Analyzer
from .results import AnalysisResult


class VideoError(Exception):
    """The file cannot be analysed (missing, a folder, not a video, no decodable frame); the message says why."""


@dataclass(frozen=True)
class VideoRun:
    """What :func:`analyze_video` did. ``analysed``: frames analysed; ``last_s``: video time of the last one
    (seconds); ``total_s``: the part of the video that was to be analysed (seconds; 0 when unknown); ``fps``: the
    container's frame rate (30 when it does not say); ``decode_error``: why decoding stopped early, else ``""``."""

    analysed: int
    last_s: float
    total_s: float
    fps: float
    decode_error: str = ""


def open_video(path: Path) -> Any:
    """A ``cv2.VideoCapture`` for ``path``, or :class:`VideoError` saying what is wrong with it."""
    import cv2

    if not path.exists():
        raise VideoError(f"video not found: {path}")
    if path.is_dir():
        raise VideoError(f"{path} is a folder; give a video file")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise VideoError(f"cannot open {path} as a video: OpenCV/FFmpeg does not recognise it "
                         f"(is it a complete video file? try re-muxing it to .mp4 or .mkv)")
    return cap


def _timing(cap: Any, max_seconds: float) -> tuple[float, float]:
    """``(fps, seconds to analyse)`` of an open capture: 30 fps when the container does not say, 0 s when unknown."""
    import cv2

    fps = cap.get(cv2.CAP_PROP_FPS)
    if not math.isfinite(fps) or fps <= 0 or fps > 1000:
        fps = 30.0
    frames = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    total_s = frames / fps if math.isfinite(frames) and frames > 0 else 0.0
    if max_seconds > 0:
        total_s = min(total_s, max_seconds) if total_s else max_seconds
    return fps, total_s


def video_seconds(path: str | Path, max_seconds: float = 0.0) -> float:
    """How many seconds of ``path`` :func:`analyze_video` would analyse (0 when the container does not say).
    Raises :class:`VideoError`."""
    cap = open_video(Path(path))
    try:
        return _timing(cap, max_seconds)[1]
    finally:
        cap.release()


def analyze_video(path: str | Path, analyzer: Analyzer, recorder: Any, rate: float = 5.0,
                  on_progress: Callable[[float, int, AnalysisResult], None] | None = None,
                  max_seconds: float = 0.0, on_events: Callable[[tuple], None] | None = None) -> VideoRun:
    """Analyse ``path`` from its start: every analysed result goes to ``recorder.add`` (a ``SessionRecorder`` or
    anything with ``add(result)`` returning events), the events it returns to ``on_events(events)`` when there are
    any, and the progress to ``on_progress(video_s, analysed, result)``.

    ``rate``: analyses per second of video time, 0 for every frame; ``max_seconds``: stop after that much video
    (0 = the whole file). The analyzer is :meth:`~Analyzer.reset` first and left open. Raises :class:`VideoError`
    when the file cannot be opened or yields no frame; a ``KeyboardInterrupt`` propagates after the reader thread is
    joined and the file closed (what was analysed stays in the recorder)."""
    path = Path(path)
    cap = open_video(path)
    fps, total_s = _timing(cap, max_seconds)
    step = 0.0 if rate == 0 else 1.0 / rate
    frames: queue.Queue = queue.Queue(maxsize=8)
    stop = threading.Event()
    failure: list[str] = []

    def read() -> None:
        index, next_t = 0, 0.0
        try:
            while not stop.is_set():
                t = index / fps
                if max_seconds > 0 and t >= max_seconds:
                    break
                if t + 1e-9 >= next_t:
                    ok, frame = cap.read()
                    if not ok:
                        break
                    while not stop.is_set():
                        try:
                            frames.put((frame, t), timeout=0.2)
                            break
                        except queue.Full:
                            continue
                    next_t += step
                    if step and next_t < t:  # the video's timeline jumped
                        next_t = t + step
                elif not cap.grab():
                    break
                index += 1
        except Exception as exc:  # a decoder error mid-file: analyse what we have
            failure.append(f"{type(exc).__name__}: {exc}")
        finally:
            frames.put(None)

    analyzer.reset()
    reader = threading.Thread(target=read, name="mindflow-reader", daemon=True)
    analysed, last_t = 0, 0.0
    reader.start()
    try:
        while True:
            item = frames.get()
            if item is None:
                break
            frame, t = item
            analysed += 1
            result = analyzer.process(frame, t, analysed)
            events = recorder.add(result)
            if events and on_events is not None:
                on_events(events)
            last_t = t
            if on_progress is not None:
                on_progress(t, analysed, result)
    finally:
        stop.set()
        reader.join(2.0)
        cap.release()
    if analysed == 0:
        reason = failure[0] if failure else "no frame could be decoded"
        raise VideoError(f"{path}: {reason} — is the file complete and a video?")
    return VideoRun(analysed=analysed, last_s=last_t, total_s=total_s, fps=fps,
                    decode_error=failure[0] if failure else "")
