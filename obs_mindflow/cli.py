"""Command line: the same engine as the OBS script, on a recorded video or a camera.

    python -m obs_mindflow analyze VIDEO [--model DIR] [--rate HZ] [--report-dir DIR] [--baseline FILE]
                                         [--calibrate-seconds S]
    python -m obs_mindflow analyze VIDEO|DIR ... [--jobs N] [--force] [same options]    (a batch)
    python -m obs_mindflow analyze --camera N [--model DIR] [--rate HZ] [--report-dir DIR] [--baseline FILE]
    python -m obs_mindflow calibrate VIDEO|--camera N [--seconds S] [--rate HZ] [--model DIR] --out FILE
    python -m obs_mindflow history [--report-dir DIR] [--language LANG]
    python -m obs_mindflow models

Exit status: 0 done, 1 the analysis failed (a batch: a file failed), 2 bad input (unreadable video, bad model, bad or
foreign baseline file, bad option), 3 calibration refused (too few face frames, a held expression: the message says
what to do), 130 stopped with Ctrl-C (the report of what was analysed is still written).

One file, a batch and a cluster share one per-file function, :func:`obs_mindflow.engine.video.analyze_file`; the
batch is :mod:`obs_mindflow.batch`.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import TextIO

from .cliargs import build_parser
from .engine.formatting import short_clock
from .errors import MindFlowError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_REFUSED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class InputError(MindFlowError):
    """Bad input from the user (file, camera, option): printed without a traceback, exit status 2."""


class Refused(MindFlowError):
    """A calibration was refused (too few face frames, a held expression): exit status 3."""


def main(argv: list[str] | None = None) -> int:
    # FFmpeg's own log lines ("moov atom not found") would bury our error message; OpenCV reads these at import.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "models":
        return _list_models()
    if args.command == "analyze":
        if bool(args.video) == (args.camera is not None):
            parser.error("analyze: give a video file (or several, or folders) or --camera N, not both")
        if args.jobs < 1 or args.jobs > 64:
            parser.error(f"--jobs must be between 1 and 64, got {args.jobs}")
    from .engine.baseline import BaselineError

    try:
        if args.command == "history":
            return _history(args)
        return _calibrate(args) if args.command == "calibrate" else _analyze(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Refused as exc:
        print(f"calibration refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except BaselineError as exc:       # a baseline file that cannot be used
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # `… | head`: the reader left; not an error
        sys.stderr.close()
        return EXIT_OK


def _list_models() -> int:
    from .engine import DEFAULT_MODEL, MODELS_DIR, ModelCard
    from .engine.card import find_model_folders

    for folder in find_model_folders(MODELS_DIR):
        try:
            card = ModelCard.load(folder)
        except Exception as exc:
            print(f"{folder.name:24s} unreadable card: {exc}")
            continue
        acc = card.accuracy.get("accuracy")
        acc_text = f"{acc * 100:.1f} % {card.accuracy.get('dataset', '')}" if isinstance(acc, (int, float)) else ""
        mark = " (default)" if folder.name == DEFAULT_MODEL else ""
        print(f"{folder.name:24s} {card.title}{mark} — {len(card.labels)} classes; {acc_text}")
    return EXIT_OK


def _recipe(args):
    """The session ``analyze``'s options build (:meth:`FileSettings.recipe`: a file, a batch and a camera alike);
    ``calibrate`` has only a model and threads."""
    if not 1 <= args.threads <= 16:
        raise InputError(f"--threads must be between 1 and 16, got {args.threads}")
    if args.command == "calibrate":
        from .engine.recipe import SessionRecipe

        return SessionRecipe(model=args.model, threads=args.threads)
    return _settings(args).recipe()


def _load(args):
    """The options' Analyzer, not started (a bad model → InputError)."""
    from .engine import ModelCardError, ModelLoadError

    try:
        return _recipe(args).open_analyzer()
    except (ModelCardError, ModelLoadError) as exc:
        raise InputError(str(exc)) from None


def _settings(args):
    """The file settings of ``analyze`` (what a batch sends to its processes and keys its resume on)."""
    from .engine.video import FileSettings

    return FileSettings(model=args.model, rate=args.rate, max_seconds=args.max_seconds, threads=args.threads,
                        baseline=None if args.baseline is None else str(args.baseline),
                        calibrate_seconds=args.calibrate_seconds or 0.0, nudge=args.nudge,
                        uncertain_below=(args.uncertain_below or 0.0) / 100, language=args.language)


def _report_root(args):
    from .engine.reports.storage import default_report_dir

    return None if args.no_report else (args.report_dir or default_report_dir())


def _analyze(args) -> int:
    videos = list(args.video)
    if len(videos) > 1 or (videos and videos[0].is_dir()):
        return _analyze_batch(args, videos)
    args.video = videos[0] if videos else None
    baseline = _read_baseline(args.baseline) if args.baseline is not None else None
    if args.video is not None:
        analyzer = _load(args)
        if args.calibrate_seconds:      # every frame of the calibration part, whatever --rate says for the rest
            baseline = _calibrate_file(args.video, analyzer, args.calibrate_seconds, 0.0, quiet=args.quiet)
        if baseline is not None:
            _apply(analyzer, baseline)
        return _analyze_file(args, analyzer, baseline)
    if args.calibrate_seconds:
        raise InputError("--calibrate-seconds works on a video file; for a camera run `calibrate --camera N --out "
                         "FILE` first, then `analyze --camera N --baseline FILE`")
    return _analyze_camera(args, baseline)


def _read_baseline(path: Path):
    from .engine.baseline import Baseline

    return Baseline.load(path)


def _apply(analyzer, baseline) -> None:
    """Correct the analyzer's readings with ``baseline`` (BaselineError: another model, no reference)."""
    from .engine.recipe import apply_baseline

    apply_baseline(analyzer, baseline)
    print(f"calibrated: {baseline.describe()}", file=sys.stderr)


def _calibrate_file(path: Path, analyzer, seconds: float, rate: float, quiet: bool = False):
    """A baseline from the first ``seconds`` of ``path`` (the whole clip when it is shorter). Refused → Refused."""
    from .engine.video import CalibrationRefused, VideoError, calibrate_file

    try:
        baseline = calibrate_file(path, analyzer, seconds, rate)
    except VideoError as exc:
        raise InputError(str(exc)) from None
    except CalibrationRefused as exc:
        raise Refused(str(exc)) from None
    if not quiet:
        print(f"calibration: {baseline.verdict}", file=sys.stderr)
    return baseline


def _calibrate(args) -> int:
    """``calibrate``: write a baseline file."""
    from .camera import CameraError, calibrate_live, open_camera
    from .engine.baseline import BaselineCollector, BaselineError

    analyzer = _load(args)
    try:
        if args.video is not None:
            baseline = _calibrate_file(args.video, analyzer, args.seconds, 0.0 if args.rate is None else args.rate)
        else:
            collector = BaselineCollector(analyzer.model.card, seconds=args.seconds)
            baseline = calibrate_live(collector, analyzer, open_camera(args.camera), source=f"camera {args.camera}",
                                      rate=5.0 if args.rate is None else args.rate)
    except CameraError as exc:
        raise InputError(str(exc)) from None
    except BaselineError as exc:
        raise Refused(str(exc)) from None
    finally:
        analyzer.close()
    try:
        path = baseline.save(args.out)
    except OSError as exc:
        raise InputError(f"cannot write the baseline file {args.out}: {exc}") from None
    print(f"baseline written to {path}: {baseline.describe()} (model {baseline.model})")
    return EXIT_OK


class _Progress:
    """A one-line progress bar (a TTY) or a line every 10 % (a log/pipe) on ``stream``."""

    def __init__(self, total_s: float, stream: TextIO, enabled: bool) -> None:
        self.total_s, self.stream, self.enabled = total_s, stream, enabled
        self.tty = stream.isatty()
        self.t0 = time.monotonic()
        self._last_draw = 0.0
        self._last_decile = -1

    def update(self, video_s: float, analysed: int, emotion: str, final: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        elapsed = max(now - self.t0, 1e-9)
        frac = min(1.0, video_s / self.total_s) if self.total_s > 0 else 0.0
        speed = video_s / elapsed
        text = (f"{short_clock(video_s)} / {short_clock(self.total_s)} · {analysed} analysed · "
                f"{analysed / elapsed:.0f} fps · "
                f"{speed:.1f}× real time · {emotion or 'no face'}")
        if self.tty:
            if final or now - self._last_draw >= 0.1:
                bar = "#" * int(frac * 30)
                self.stream.write(f"\r[{bar:<30}] {frac * 100:3.0f}% {text}\033[K")
                if final:
                    self.stream.write("\n")
                self.stream.flush()
                self._last_draw = now
        else:
            decile = int(frac * 10)
            if decile > self._last_decile or final:
                self._last_decile = decile
                self.stream.write(f"{frac * 100:3.0f}% {text}\n")
                self.stream.flush()


def _analyze_file(args, analyzer, baseline=None) -> int:
    """One file through :func:`~obs_mindflow.engine.video.analyze_file` (the batch's per-file function too), with a
    progress line; then the summary."""
    from .engine.video import VideoError, analyze_file, video_seconds

    seen = {"t": 0.0, "n": 0, "emotion": ""}
    try:
        progress = _Progress(video_seconds(args.video, args.max_seconds), sys.stderr, not args.quiet)

        def on_progress(t, analysed, result) -> None:
            seen.update(t=t, n=analysed, emotion=result.emotion)
            progress.update(t, analysed, result.emotion)

        def on_interrupt() -> None:
            print("\nstopped: writing the report of what was analysed…", file=sys.stderr)

        done = analyze_file(args.video, _settings(args), _report_root(args), analyzer=analyzer, baseline=baseline,
                            on_progress=on_progress, on_events=_print_events, on_interrupt=on_interrupt)
    except VideoError as exc:
        raise InputError(str(exc)) from None
    finally:
        analyzer.close()
    run = done.run
    progress.update(run.total_s if run is not None else seen["t"], seen["n"], seen["emotion"], final=True)
    if run is not None and run.decode_error:
        print(f"warning: decoding stopped early: {run.decode_error}", file=sys.stderr)
    return _report_finished(done.finished, EXIT_INTERRUPTED if done.interrupted else EXIT_OK)


def _analyze_batch(args, videos) -> int:
    """Several files or folders: :func:`obs_mindflow.batch.run_batch`."""
    from .batch import run_batch

    return run_batch(videos, _settings(args), _report_root(args), jobs=args.jobs, force=args.force,
                     quiet=args.quiet)


def _history(args) -> int:
    """``history``: the sessions under the report folder as a table, and history.html."""
    from .engine.reports.history import HistoryError
    from .engine.reports.history_page import table_text, write_history_page
    from .engine.reports.storage import default_report_dir

    root = (args.report_dir or default_report_dir()).expanduser()
    if not root.is_dir():
        raise InputError(f"no report folder at {root}: no session has been recorded there (give --report-dir)")
    try:
        rows, page, notes = write_history_page(root, args.language)
    except (HistoryError, OSError) as exc:
        raise InputError(str(exc)) from None
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    if rows:
        print(table_text(rows))
    else:
        print(f"No session in the history of {root} yet.")
    print(f"History page: {page}")
    return EXIT_OK


def _analyze_camera(args, baseline=None) -> int:
    """Live: a :class:`~obs_mindflow.engine.host.SessionHost` built from the options' recipe, fed by the camera
    (:func:`obs_mindflow.camera.run_live`)."""
    from .camera import CameraError, open_camera, run_live
    from .engine import ModelCardError, ModelLoadError
    from .engine.host import SessionHost

    try:
        cap = open_camera(args.camera)
    except CameraError as exc:
        raise InputError(str(exc)) from None
    try:
        # The host's log lines are the OBS script log's; here nudges and "away" are printed as they come.
        host = SessionHost.open(_recipe(args).replace(baseline=baseline), report_root=_report_root(args),
                                log=lambda level, text: None)
    except (ModelCardError, ModelLoadError) as exc:
        cap.release()
        raise InputError(str(exc)) from None
    except BaseException:
        cap.release()
        raise
    if baseline is not None:
        print(f"calibrated: {baseline.describe()}", file=sys.stderr)
    finished, interrupted, stopped = run_live(host, cap, source=f"camera {args.camera}", rate=args.rate,
                                              max_seconds=args.max_seconds, quiet=args.quiet)
    if stopped:
        print(stopped, file=sys.stderr)
    return _report_finished(finished, EXIT_INTERRUPTED if interrupted else EXIT_OK)


def _print_events(events) -> None:
    from .camera import print_event

    for event in events:
        print_event(event)


def _report_finished(finished, code: int) -> int:
    print(finished.summary_text)  # names the report folder when one was written
    if finished.error is not None:
        print(f"error: the report could not be written: {finished.error}", file=sys.stderr)
        return code if code != EXIT_OK else EXIT_FAILED
    return code
