"""Analyse a video file with the engine, deterministically and faster than real time.

:func:`analyze_video` runs a file through an Analyzer into anything with ``add(result)``: frames are decoded in a
reader thread and analysed in the caller's thread, none dropped; at ``rate`` analyses per second of **video time**
(0 = every frame) the frame due is analysed and the others are only grabbed. Result timestamps are the frames'
positions in the video (seconds), so a session's time is the video's own time.

:func:`analyze_file` is the one per-file function — a file to its report folder and history row — that the CLI's
``analyze VIDEO``, its batch (``analyze A B DIR/ --jobs N``) and a cluster (docs/scaling.md) all call: settings in a
picklable :class:`FileSettings`, the optional calibration on the file's first seconds, a
:class:`~obs_mindflow.engine.reports.recorder.SessionRecorder` on the video's clock, and the finish.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import queue
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..errors import MindFlowError
from .digest import file_sha256
from .pipeline import Analyzer
from .recipe import SessionRecipe, apply_baseline
from .results import AnalysisResult

if TYPE_CHECKING:
    from .baseline import Baseline
    from .reports.files import FinishedSession
    from .reports.history import InputKey


class VideoError(MindFlowError):
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


# --------------------------------------------------------------------------------------------------------------------
# One file, start to report: the function the CLI, its batch and a cluster share
# --------------------------------------------------------------------------------------------------------------------

class CalibrationRefused(MindFlowError):
    """The calibration on the file's first seconds was refused (too few face frames, a held expression); the message
    says what to do."""


@dataclass(frozen=True)
class FileSettings:
    """Everything that shapes a file's report — plain values, so a batch can send it to other processes.

    ``model``: a model folder or a bundled model's name (``""``: the default); ``rate``: analyses per second of video
    time (0 = every frame); ``max_seconds``: analyse only the first seconds (0 = all); ``threads``: onnxruntime and
    OpenCV threads; ``baseline``: a personal-baseline file to correct every reading with; ``calibrate_seconds``:
    calibrate on the file's first seconds instead (0 = no); ``nudge``: break nudges in the report;
    ``uncertain_below``: show "uncertain" below this confidence (0 = the threshold measured for the model);
    ``language``: the summary's and the report's (an ``i18n`` locale; it changes words, not results, so
    :meth:`key` leaves it out). :meth:`recipe` is the session these settings build."""

    model: str = ""
    rate: float = 5.0
    max_seconds: float = 0.0
    threads: int = 1
    baseline: str | None = None
    calibrate_seconds: float = 0.0
    nudge: bool = False
    uncertain_below: float = 0.0
    language: str = ""

    def recipe(self, baseline: "Baseline | None" = None) -> SessionRecipe:
        """The session these settings build (``baseline``: the personal baseline read or made for the file; the
        engine's defaults for the rest, its rules included)."""
        return SessionRecipe(model=self.model, threads=self.threads, uncertain_below=self.uncertain_below,
                             nudge=self.nudge, baseline=baseline, language=self.language)

    def key(self) -> str:
        """A digest of the model (its card and ONNX file's content) and of every setting and default that changes a
        report (the smoother's, detector's, quality and moment thresholds, MindFlow's version), with the baseline
        file's content: the settings half of what a batch resumes on. ``threads`` is left out (it changes speed,
        not results). Raises ``OSError`` / ``ModelCardError`` when the model or the baseline cannot be read."""
        from .. import __version__
        from .card import ModelCard
        from .catalog import resolve_model_dir
        from .detector import DetectorOptions
        from .pipeline import QualityOptions
        from .session.moments import MomentOptions
        from .smoothing import options_for_card

        folder = resolve_model_dir(self.model)
        card = ModelCard.load(folder)
        doc = {"mindflow": __version__, "model": card.name, "model_sha256": file_sha256(card.model_path),
               "card_sha256": file_sha256(Path(folder) / "card.json"), "rate": self.rate,
               "max_seconds": self.max_seconds,
               "baseline_sha256": file_sha256(Path(self.baseline)) if self.baseline else None,
               "calibrate_seconds": self.calibrate_seconds, "nudge": self.nudge,
               "smoother": dataclasses.asdict(options_for_card(card, uncertain_below=self.uncertain_below)),
               "detector": _plain(DetectorOptions()),
               "quality": _plain(QualityOptions()), "moments": MomentOptions().to_dict()}
        return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _plain(options: Any) -> Any:
    return dataclasses.asdict(options) if dataclasses.is_dataclass(options) else repr(options)


def calibrate_file(path: str | Path, analyzer: Analyzer, seconds: float, rate: float = 5.0) -> Baseline:
    """A personal baseline from the first ``seconds`` of ``path`` (the whole clip when it is shorter). Raises
    :class:`VideoError` and :class:`CalibrationRefused`."""
    from .baseline import BaselineCollector, BaselineError

    path = Path(path)
    collector = BaselineCollector(analyzer.model.card, seconds=seconds)
    run = analyze_video(path, analyzer, collector, rate, max_seconds=seconds)
    collector.seconds = min(seconds, max(run.last_s, 1e-9))     # a shorter clip: the whole clip
    try:
        return collector.finish(source=f"file: {path.name}")
    except BaselineError as exc:
        raise CalibrationRefused(str(exc)) from None


@dataclass(frozen=True)
class FileRun:
    """What :func:`analyze_file` did: ``finished`` the recorder's outcome (folder, summary text, error); ``run`` the
    video pass (``None`` when it was interrupted before its end); ``interrupted``: stopped by Ctrl-C (the report
    holds what was analysed); ``baseline``: the personal baseline the readings rest on, if any."""

    path: Path
    finished: "FinishedSession"
    run: VideoRun | None
    interrupted: bool = False
    baseline: "Baseline | None" = None


def analyze_file(path: str | Path, settings: FileSettings, report_root: str | Path | None, *,
                 recipe: SessionRecipe | None = None, analyzer: Analyzer | None = None,
                 baseline: "Baseline | None" = None,
                 input_key: "InputKey | None" = None, started_at: datetime | None = None,
                 on_progress: Callable[[float, int, AnalysisResult], None] | None = None,
                 on_events: Callable[[tuple], None] | None = None,
                 on_message: Callable[[str], None] | None = None,
                 on_interrupt: Callable[[], None] | None = None) -> FileRun:
    """Analyse the video ``path`` with ``settings`` and write its report folder under ``report_root`` (``None``:
    no folder, the summary only) and its history row (with ``input_key``, what a batch resumes on).

    ``settings`` say how the file is read (rate, length, calibration) and key a batch's resume; ``recipe``: how its
    session is built (default: ``settings.recipe()``; the baseline is the one read or made here).
    ``analyzer``: reuse a loaded one (a batch worker keeps one per model; left open), else one is loaded from the
    recipe and closed at the end. ``baseline``: an already loaded personal baseline (else ``settings.baseline`` is
    read, or ``settings.calibrate_seconds`` calibrates on the file's first seconds). ``on_progress(video_s, analysed,
    result)`` and ``on_events(events)`` as in :func:`analyze_video`; ``on_message(text)``: the calibration's lines;
    ``on_interrupt()``: Ctrl-C was pressed, the report of what was analysed is about to be written.

    Raises :class:`VideoError` (an unreadable file), :class:`CalibrationRefused`, ``BaselineError`` (a bad or another
    model's baseline file), ``ModelCardError``/``ModelLoadError``; a report that cannot be written is not raised: it
    is in ``FileRun.finished.error``."""
    path = Path(path)
    recipe = recipe if recipe is not None else settings.recipe()
    baseline = baseline if baseline is not None else recipe.baseline
    own = analyzer is None
    if analyzer is None:
        analyzer = recipe.replace(baseline=None).open_analyzer()
    try:
        if baseline is None and settings.baseline:
            from .baseline import Baseline

            baseline = Baseline.load(settings.baseline)
        if baseline is None and settings.calibrate_seconds:
            # every frame of the calibration part, whatever the rate of the rest (a calibration is short)
            baseline = calibrate_file(path, analyzer, settings.calibrate_seconds, 0.0)
            if on_message is not None:
                on_message(f"calibration: {baseline.verdict}")
        if baseline is not None:
            apply_baseline(analyzer, baseline)
            if on_message is not None:
                on_message(f"calibrated: {baseline.describe()}")
        else:
            analyzer.set_transforms([])
        recorder = recipe.replace(baseline=baseline).make_recorder(
            report_root, analyzer.model.card, source=f"file: {path.name}",
            started_at=started_at or datetime.now().astimezone(), media_clock=True, input_key=input_key)
        run, interrupted = None, False
        try:
            run = analyze_video(path, analyzer, recorder, settings.rate, on_progress,
                                max_seconds=settings.max_seconds, on_events=on_events)
        except KeyboardInterrupt:
            interrupted = True
            recorder.input_key = None       # a part of the file: a batch must analyse it again
            if on_interrupt is not None:
                on_interrupt()
        except VideoError:
            recorder.finish()          # nothing was analysed: no folder is left behind
            raise
        return FileRun(path, recorder.finish(), run, interrupted, baseline)
    finally:
        if own:
            analyzer.close()
