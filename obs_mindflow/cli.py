"""Command line: the same engine as the OBS script, on a recorded video or a camera.

    python -m obs_mindflow analyze VIDEO [--model DIR] [--rate HZ] [--report-dir DIR] [--baseline FILE]
                                         [--calibrate-seconds S]
    python -m obs_mindflow analyze VIDEO|DIR ... [--jobs N] [--force] [same options]    (a batch)
    python -m obs_mindflow analyze --camera N [--model DIR] [--rate HZ] [--report-dir DIR] [--baseline FILE]
    python -m obs_mindflow calibrate VIDEO|--camera N [--seconds S] [--rate HZ] [--model DIR] --out FILE
    python -m obs_mindflow history [--report-dir DIR]
    python -m obs_mindflow models

Exit status: 0 done, 1 the analysis failed (a batch: a file failed), 2 bad input (unreadable video, bad model, bad or
foreign baseline file, bad option), 3 calibration refused (too few face frames, a held expression: the message says
what to do), 130 stopped with Ctrl-C (the report of what was analysed is still written).

One file, a batch and a cluster share one per-file function, :func:`obs_mindflow.engine.video.analyze_file`; the
batch is :mod:`obs_mindflow.batch`.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TextIO

from . import __version__

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_REFUSED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class InputError(Exception):
    """Bad input from the user (file, camera, option): printed without a traceback, exit status 2."""


class Refused(Exception):
    """A calibration was refused (too few face frames, a held expression): exit status 3."""


def _positive_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--rate must be a number of analyses per second, got {text!r}") from None
    if not math.isfinite(value) or value < 0 or value > 120:
        raise argparse.ArgumentTypeError(f"--rate must be between 0 (every frame) and 120 Hz, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m obs_mindflow",
                                 description="MindFlow: facial-expression self-monitoring for streamers.")
    ap.add_argument("--version", action="version", version=f"MindFlow {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    an = sub.add_parser("analyze", help="analyse a recorded video or a camera and write a session report",
                        description="Analyse a recorded stream (or a live camera) with the same engine as the OBS "
                                    "script and write the end-of-session report.")
    an.add_argument("video", nargs="*", type=Path, metavar="VIDEO",
                    help="a video file OpenCV/FFmpeg can read; several files or folders (searched recursively) make a "
                         "batch: one report per file, skipping files already analysed with the same settings")
    an.add_argument("--camera", type=int, metavar="N", help="analyse camera N live (0 = the first camera)")
    an.add_argument("--jobs", type=int, default=1, metavar="N",
                    help="a batch: analyse N files at once, each in its own process (default 1)")
    an.add_argument("--force", action="store_true",
                    help="a batch: analyse files again even when the history has them with the same model and "
                         "settings")
    an.add_argument("--model", default="", metavar="DIR",
                    help="model folder holding card.json (default: the bundled default; a bare name means models/NAME)")
    an.add_argument("--rate", type=_positive_rate, default=5.0, metavar="HZ",
                    help="analyses per second of video/camera time (default 5, as in OBS; 0 = every frame)")
    an.add_argument("--report-dir", type=Path, default=None, metavar="DIR",
                    help="where the session's report folder goes (default: ~/Documents/MindFlow or ~/MindFlow)")
    an.add_argument("--no-report", action="store_true", help="print the summary only; write no report folder")
    an.add_argument("--nudge", action="store_true",
                    help="print a break nudge when the rolling negative share stays high (off by default)")
    an.add_argument("--uncertain-below", type=_percent, default=0.0, metavar="PCT",
                    help="show 'uncertain' when the smoothed top probability is below PCT %% (default: the threshold "
                         "measured for the model, in its card)")
    an.add_argument("--threads", type=int, default=1, metavar="N",
                    help="onnxruntime and OpenCV threads (default 1)")
    an.add_argument("--max-seconds", type=float, default=0.0, metavar="S",
                    help="stop after S seconds of video/camera time (default: the whole video; a camera runs until Ctrl-C)")
    an.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    cal = an.add_mutually_exclusive_group()
    cal.add_argument("--baseline", type=Path, metavar="FILE",
                     help="correct every reading with this personal baseline (made by `calibrate` with this model)")
    cal.add_argument("--calibrate-seconds", type=_seconds, metavar="S",
                     help="calibrate on the first S seconds of this video (the person as they usually are, talking "
                          "is fine; every frame of them), then analyse the whole video from the start with that "
                          "baseline")
    ca = sub.add_parser("calibrate", help="make a personal baseline from a video or a camera",
                        description="Record the model's reading of a person's resting face (looking at the camera as "
                                    "when streaming; talking is fine) and write it as a baseline file for "
                                    "`analyze --baseline` (the OBS script calibrates from its own panel).")
    src = ca.add_mutually_exclusive_group(required=True)
    src.add_argument("video", nargs="?", type=Path, help="a video file (a clip shorter than --seconds: the whole clip)")
    src.add_argument("--camera", type=int, metavar="N", help="calibrate from camera N live")
    ca.add_argument("--seconds", type=_seconds, default=DEFAULT_CALIBRATION_S, metavar="S",
                    help=f"how long to calibrate, seconds of video/camera time (default {DEFAULT_CALIBRATION_S:g})")
    ca.add_argument("--rate", type=_positive_rate, default=None, metavar="HZ",
                    help="analyses per second (default: every frame of a video — a calibration is short and more "
                         "frames make it steadier; 5 for a camera)")
    ca.add_argument("--model", default="", metavar="DIR", help="model folder (default: the bundled default)")
    ca.add_argument("--threads", type=int, default=1, metavar="N", help="onnxruntime and OpenCV threads (default 1)")
    ca.add_argument("--out", type=Path, required=True, metavar="FILE", help="the baseline file to write (JSON)")
    hi = sub.add_parser("history", help="print the history of sessions and write history.html",
                        description="Print the sessions recorded under the report folder (one row per finished "
                                    "session) and write history.html beside them.")
    hi.add_argument("--report-dir", type=Path, default=None, metavar="DIR",
                    help="the report folder (default: ~/Documents/MindFlow or ~/MindFlow)")
    sub.add_parser("models", help="list the bundled models")
    return ap


DEFAULT_CALIBRATION_S = 20.0


def _percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < 100:
        raise argparse.ArgumentTypeError(f"a percentage from 0 to below 100, got {value:g}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text}")
    return value


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


def _load(args, on_result=None):
    from .engine import (Analyzer, ExpressionModel, ModelCardError, ModelLoadError, ModelOptions,
                         resolve_model_dir)

    if args.threads < 1 or args.threads > 16:
        raise InputError(f"--threads must be between 1 and 16, got {args.threads}")
    folder = resolve_model_dir(args.model)
    try:
        model = ExpressionModel.load(folder, ModelOptions(intra_op_threads=args.threads))
    except (ModelCardError, ModelLoadError) as exc:
        raise InputError(str(exc)) from None
    from .engine.smoothing import options_for_card
    below = getattr(args, "uncertain_below", 0.0) or 0.0
    return Analyzer(model, opencv_threads=args.threads, on_result=on_result,
                    smoother_options=options_for_card(model.card, uncertain_below=below / 100))


def _settings(args):
    """The file settings of ``analyze`` (what a batch sends to its processes and keys its resume on)."""
    from .engine.video import FileSettings

    return FileSettings(model=args.model, rate=args.rate, max_seconds=args.max_seconds, threads=args.threads,
                        baseline=None if args.baseline is None else str(args.baseline),
                        calibrate_seconds=args.calibrate_seconds or 0.0, nudge=args.nudge,
                        uncertain_below=(args.uncertain_below or 0.0) / 100)


def _report_root(args):
    from .engine.reports.storage import default_report_dir

    return None if args.no_report else (args.report_dir or default_report_dir())


def _recorder(args, card, source: str, started_at: datetime, baseline=None):
    """The session's recorder: a report folder under ``--report-dir`` (or the default), none with ``--no-report``;
    ``baseline``: the personal baseline the readings rest on (the report says so)."""
    from .engine.reports.recorder import SessionRecorder
    from .engine.reports.storage import default_report_dir
    from .engine.session.rules import NudgeMonitor

    root = None if args.no_report else (args.report_dir or default_report_dir())
    rec = SessionRecorder(root, card, started_at=started_at, source=source,
                          nudge=NudgeMonitor() if args.nudge else None)
    rec.set_calibration(baseline)
    return rec


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
    from .engine.video import apply_baseline

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
    from .engine.baseline import BaselineCollector, BaselineError

    analyzer = _load(args)
    try:
        if args.video is not None:
            baseline = _calibrate_file(args.video, analyzer, args.seconds, 0.0 if args.rate is None else args.rate)
        else:
            args.rate = 5.0 if args.rate is None else args.rate
            baseline = _calibrate_camera(args, analyzer, BaselineCollector(analyzer.model.card, seconds=args.seconds))
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


def _calibrate_camera(args, analyzer, collector):
    """Frames from camera ``args.camera`` analysed one by one until the collector has its seconds."""
    import cv2

    cap = cv2.VideoCapture(args.camera)
    if not cap.isOpened():
        raise InputError(f"cannot open camera {args.camera}: is it connected, and not used by another program?")
    interval = 0.0 if args.rate == 0 else 1.0 / args.rate
    t0, next_t, seq = time.monotonic(), 0.0, 0
    try:
        while not collector.done:
            ok, frame = cap.read()
            if not ok:
                raise InputError(f"camera {args.camera} stopped delivering frames")
            now = time.monotonic() - t0
            if now >= next_t:
                seq += 1
                collector.add(analyzer.process(frame, now, seq))
                next_t = now + interval
                sys.stderr.write(f"\r{collector.progress().describe()}\033[K")
    finally:
        cap.release()
        sys.stderr.write("\n")
    return collector.finish(source=f"camera {args.camera}")


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
        text = (f"{_clock(video_s)} / {_clock(self.total_s)} · {analysed} analysed · {analysed / elapsed:.0f} fps · "
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


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60:02d}:{rem % 60:02d}"


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
                            on_progress=on_progress, on_events=_report_nudges, on_interrupt=on_interrupt)
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
    from .engine.reports.history import HistoryError, table_text, write_history_page
    from .engine.reports.storage import default_report_dir

    root = (args.report_dir or default_report_dir()).expanduser()
    if not root.is_dir():
        raise InputError(f"no report folder at {root}: no session has been recorded there (give --report-dir)")
    try:
        rows, page, notes = write_history_page(root)
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
    """Live: frames go through the Analyzer's mailbox and worker, as in OBS; a status line shows the latest result."""
    import cv2

    cap = cv2.VideoCapture(args.camera)
    if not cap.isOpened():
        raise InputError(f"cannot open camera {args.camera}: is it connected, and not used by another program? "
                         f"(on Linux check /dev/video{args.camera} and your permissions)")
    started_at = datetime.now().astimezone()
    recorder = None
    analyzer = _load(args, on_result=lambda r: _report_nudges(recorder.add(r)))
    recorder = _recorder(args, analyzer.model.card, f"camera {args.camera}", started_at, baseline)
    if baseline is not None:
        _apply(analyzer, baseline)
    interval = 0.0 if args.rate == 0 else 1.0 / args.rate
    t0 = time.monotonic()
    next_t, last_status, interrupted = 0.0, 0.0, False
    analyzer.start()
    try:
        while True:
            ok, frame = cap.read()
            now = time.monotonic() - t0
            if not ok:
                print(f"\ncamera {args.camera} stopped delivering frames", file=sys.stderr)
                break
            if args.max_seconds > 0 and now >= args.max_seconds:
                break
            if now >= next_t:
                analyzer.submit(frame, now)
                next_t = max(next_t + interval, now) if interval else now
            if not args.quiet and now - last_status >= 0.5:
                last_status = now
                r, st = analyzer.latest(), analyzer.stats()
                conf = f" {r.confidence * 100:.0f}%" if r.emotion else ""
                sys.stderr.write(f"\r{_clock(now)} · {r.emotion or 'no face'}{conf} · {st.rate_hz:.1f} Hz · "
                                 f"{st.dropped} dropped{' · ' + st.last_error if st.last_error else ''}\033[K")
                sys.stderr.flush()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        analyzer.close()
        cap.release()
        if not args.quiet:
            sys.stderr.write("\n")
    return _finish(recorder, EXIT_INTERRUPTED if interrupted else EXIT_OK)


def _report_nudges(events) -> None:
    for event in events or ():
        if event.kind == "nudge":
            print(f"\n[nudge] {event.message}", file=sys.stderr)


def _finish(recorder, code: int) -> int:
    return _report_finished(recorder.finish(), code)


def _report_finished(finished, code: int) -> int:
    print(finished.summary_text)  # names the report folder when one was written
    if finished.error is not None:
        print(f"error: the report could not be written: {finished.error}", file=sys.stderr)
        return code if code != EXIT_OK else EXIT_FAILED
    return code
