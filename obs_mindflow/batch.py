"""Many recordings at once: ``python -m obs_mindflow analyze A.mkv B.mp4 DIR/ --jobs N``.

Each file goes through :func:`obs_mindflow.engine.video.analyze_file` — the same per-file function as ``analyze
VIDEO`` — in one of ``N`` worker processes (``--jobs 1``: in this process), with one overall progress bar (tqdm,
seconds of video). One report folder per file and its row in the history under the report root.

Resumable: before analysing, a file is looked up in the history by what it is keyed on — its resolved path, size and
modification time (ns), and the settings key (:meth:`FileSettings.key`: the model's card and ONNX content, rate,
length limit, baseline, calibration, nudge, the engine's thresholds, MindFlow's version). A file found with its report
folder still there is skipped unless ``--force``. An interrupted file's row carries no key, so it is analysed again.

A file's error (unreadable, refused calibration, a report that cannot be written, even a crashed worker) never stops
the batch: errors are listed at the end and the exit status is 1 (2 when nothing at all could be found). Ctrl-C stops the batch (status 130); the files in
progress keep a report of what was analysed.

This module is the CLI's: tqdm is imported here only (the OBS runtime never imports it); without tqdm the progress
is a line per file.
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_mod
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TextIO

from .errors import MindFlowError

VIDEO_EXTENSIONS = frozenset({".mp4", ".mkv", ".mov", ".flv", ".avi", ".webm", ".ts", ".m4v", ".wmv", ".mpg",
                              ".mpeg", ".3gp"})
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
DONE, SKIPPED, FAILED = "done", "skipped", "failed"


@dataclass(frozen=True)
class FileOutcome:
    """One file of a batch (plain values: it crosses processes). ``status``: done, skipped or failed; ``report``:
    its ``report.html`` (``""`` without one); ``error``: why it failed; ``line``: what the batch printed for it."""

    path: str
    status: str
    report: str = ""
    error: str = ""
    line: str = ""
    video_s: float = 0.0
    wall_s: float = 0.0
    interrupted: bool = False


def find_videos(paths: Iterable[str | Path]) -> tuple[list[Path], list[FileOutcome], dict[str, int]]:
    """The files to analyse, in the order given, folders expanded (recursively, video extensions only, sorted),
    each once; a path that does not exist, or a folder without videos, is a failed outcome. Returns ``(files,
    failed, order)``: ``order`` maps each file's and failure's path to its place in the order given."""
    order: dict[str, int] = {}
    files: list[Path] = []
    seen: set[str] = set()
    bad: list[FileOutcome] = []

    def add(p: Path) -> None:
        key = os.path.normcase(str(p.resolve()))
        if key not in seen:
            seen.add(key)
            files.append(p)

    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in VIDEO_EXTENSIONS)
            if not found:
                bad.append(FileOutcome(str(p), FAILED, error=f"no video file in the folder {p} (looked for "
                                                            f"{', '.join(sorted(VIDEO_EXTENSIONS))})"))
            for q in found:
                add(q)
        elif p.exists():
            add(p)
        else:
            bad.append(FileOutcome(str(p), FAILED, error=f"video not found: {p}"))
        for item in files + [Path(b.path) for b in bad]:
            order.setdefault(str(item), len(order))
    return files, bad, order


# --------------------------------------------------------------------------------------------------------------------
# The per-file work (in a worker process, or here with --jobs 1)
# --------------------------------------------------------------------------------------------------------------------

_worker: dict[str, Any] = {"queue": None, "analyzers": {}}


def _init_worker(progress_queue: Any) -> None:
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _worker["queue"] = progress_queue
    _worker["analyzers"] = {}


def _describe(finished: Any, run: Any) -> str:
    snap = finished.snapshot
    from .engine.formatting import format_duration, format_percent

    bits = []
    if snap is not None and snap.started:
        bits.append(format_duration(snap.duration_s))
        bits.append("no face" if snap.negative_share is None else f"negative {format_percent(snap.negative_share)}")
    if run is not None and run.decode_error:
        bits.append(f"decoding stopped early: {run.decode_error}")
    return f" ({', '.join(bits)})" if bits else ""


def analyse_one(path: str, settings: Any, report_root: str | None, settings_key: str,
                on_progress: Callable[[float], None] | None = None, analyzer: Any = None) -> FileOutcome:
    """Analyse one file of a batch with :func:`~obs_mindflow.engine.video.analyze_file`. Never raises but for
    Ctrl-C: every error is a failed :class:`FileOutcome`. ``on_progress(video_s)``: seconds of this file done."""
    from .engine.reports.history import InputKey
    from .engine.video import analyze_file

    t0 = time.monotonic()
    name = Path(path).name
    try:
        key = InputKey.of(path, settings_key) if report_root is not None else None

        def progress(t: float, analysed: int, result: Any) -> None:
            if on_progress is not None:
                on_progress(t)

        interrupted = []
        done = analyze_file(path, settings, report_root, analyzer=analyzer, input_key=key, on_progress=progress,
                            on_interrupt=lambda: interrupted.append(True))
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - one file's failure never stops the batch
        msg = str(exc) or type(exc).__name__
        if not isinstance(exc, MindFlowError):      # a bug, not a file's problem: its type helps whoever reads it
            msg = f"{type(exc).__name__}: {msg}"
        return FileOutcome(path, FAILED, error=msg, line=f"failed  {name}: {msg}", wall_s=time.monotonic() - t0)
    fin = done.finished
    video_s = done.run.last_s if done.run is not None else 0.0
    report = str(fin.folder / "report.html") if fin.folder is not None and fin.error is None else ""
    if fin.error is not None:
        return FileOutcome(path, FAILED, error=str(fin.error), line=f"failed  {name}: {fin.error}",
                           video_s=video_s, wall_s=time.monotonic() - t0)
    where = f" → {report}" if report else ""
    note = f"; {fin.history_note}" if fin.history_note else ""
    state = "stopped" if done.interrupted else "done   "
    return FileOutcome(path, DONE, report=report, line=f"{state} {name}{where}{_describe(fin, done.run)}{note}",
                       video_s=video_s, wall_s=time.monotonic() - t0, interrupted=done.interrupted)


def _worker_run(path: str, settings: Any, report_root: str | None, settings_key: str) -> FileOutcome:
    """A worker process's task: one file, its progress on the batch's queue, the analyzer kept for the next file."""
    q = _worker["queue"]
    q.put(("start", path, 0.0))
    cache = _worker["analyzers"]
    ak = (settings.model, settings.threads)
    if ak not in cache:
        try:
            cache[ak] = settings.recipe().open_analyzer()
        except Exception:  # noqa: BLE001 - analyse_one reports it for this file
            cache[ak] = None
    last = [0.0, 0.0]

    def progress(t: float) -> None:
        now = time.monotonic()
        if now - last[1] >= 0.25:
            q.put(("progress", path, t))
            last[1] = now

    try:
        return analyse_one(path, settings, report_root, settings_key, progress, cache[ak])
    except KeyboardInterrupt:
        return FileOutcome(path, FAILED, error="stopped (Ctrl-C)", line=f"stopped {Path(path).name}",
                           interrupted=True)


# --------------------------------------------------------------------------------------------------------------------
# Progress
# --------------------------------------------------------------------------------------------------------------------

class _Bar:
    """One overall progress bar in seconds of video (tqdm when installed, else a line per file)."""

    def __init__(self, total_s: float, files: int, stream: TextIO, enabled: bool) -> None:
        self.enabled = enabled
        self.stream = stream
        self.files, self.finished = files, 0
        self._bar = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(total=round(total_s, 1), unit="s", unit_scale=False, file=stream, dynamic_ncols=True,
                                 desc=f"0/{files} files", bar_format="{desc} |{bar}| {n:.0f}/{total:.0f} s of video "
                                                                    "[{elapsed}<{remaining}, {rate_fmt}]")

    def advance(self, seconds: float) -> None:
        if self._bar is not None and seconds > 0:
            self._bar.update(round(seconds, 3))

    def file_done(self, line: str) -> None:
        self.finished += 1
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.set_description_str(f"{self.finished}/{self.files} files")
            self._bar.write(line, file=self.stream)
        else:
            self.stream.write(f"[{self.finished}/{self.files}] {line}\n")
            self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


# --------------------------------------------------------------------------------------------------------------------
# The batch
# --------------------------------------------------------------------------------------------------------------------

def run_batch(paths: Sequence[str | Path], settings: Any, report_root: str | Path | None, *, jobs: int = 1,
              force: bool = False, quiet: bool = False, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Analyse every video in ``paths`` (files and folders) with ``settings`` in ``jobs`` processes; print one line
    per file and a closing list; return the exit status (0, 1 when a file failed, 130 on Ctrl-C)."""
    from .engine.reports.history import InputKey, find_analysed
    from .engine.reports.storage import HISTORY_HTML
    from .engine.video import VideoError, video_seconds

    root = None if report_root is None else str(Path(report_root).expanduser())
    files, outcomes, order = find_videos(paths)
    if not files:                          # nothing at all to analyse: bad input
        for o in outcomes:
            print(f"error: {o.error}", file=err)
        return EXIT_BAD_INPUT
    try:
        settings_key = settings.key()
    except Exception as exc:  # noqa: BLE001 - a broken model or baseline: every file would fail the same way
        print(f"error: {exc}", file=err)
        return 2
    todo: list[tuple[str, float]] = []
    for f in files:
        if root is not None and not force:
            try:
                row = find_analysed(root, InputKey.of(f, settings_key))
            except OSError:
                row = None
            if row is not None:
                report = Path(root) / row.report / "report.html"
                outcomes.append(FileOutcome(str(f), SKIPPED, report=str(report), line=(
                    f"skipped {f.name}: analysed on {row.started_at.strftime('%Y-%m-%d %H:%M')} with the same model "
                    f"and settings → {report}")))
                continue
        try:
            todo.append((str(f), video_seconds(f, settings.max_seconds)))
        except VideoError as exc:
            outcomes.append(FileOutcome(str(f), FAILED, error=str(exc), line=f"failed  {f.name}: {exc}"))
    for o in outcomes:
        if not quiet:
            err.write(o.line or f"failed  {o.path}: {o.error}")
            err.write("\n")
    bar = _Bar(sum(s for _, s in todo), len(todo), err, not quiet)
    interrupted = False
    t0 = time.monotonic()
    try:
        if jobs <= 1 or len(todo) <= 1:
            done_list, interrupted = _run_here(todo, settings, root, settings_key, bar)
        else:
            done_list, interrupted = _run_pool(todo, settings, root, settings_key, bar, jobs)
    finally:
        bar.close()
    outcomes.extend(done_list)
    wall = time.monotonic() - t0
    outcomes.sort(key=lambda o: order.get(o.path, len(order)))
    return _closing(outcomes, root, wall, interrupted, out, HISTORY_HTML)


def _run_here(todo: list[tuple[str, float]], settings: Any, root: str | None, settings_key: str,
              bar: _Bar) -> tuple[list[FileOutcome], bool]:
    outcomes: list[FileOutcome] = []
    analyzer = None
    try:
        try:
            analyzer = settings.recipe().open_analyzer()
        except Exception:  # noqa: BLE001 - each file reports it
            analyzer = None
        seen = [0.0]

        def progress(t: float) -> None:
            bar.advance(t - seen[0])
            seen[0] = t

        for path, total in todo:
            seen[0] = 0.0
            try:
                o = analyse_one(path, settings, root, settings_key, progress, analyzer)
            except KeyboardInterrupt:
                return outcomes, True
            bar.advance(total - seen[0])
            bar.file_done(o.line)
            outcomes.append(o)
            if o.interrupted:
                return outcomes, True
    finally:
        if analyzer is not None:
            analyzer.close()
    return outcomes, False


def _run_pool(todo: list[tuple[str, float]], settings: Any, root: str | None, settings_key: str, bar: _Bar,
              jobs: int) -> tuple[list[FileOutcome], bool]:
    """The files in ``jobs`` spawned processes (spawn: the same on every platform, and no fork of a process holding
    onnxruntime's threads). A worker that dies fails only its file(s); the others go on in a new pool."""
    ctx = multiprocessing.get_context("spawn")
    totals = dict(todo)
    outcomes: list[FileOutcome] = []
    pending = [p for p, _ in todo]
    seen: dict[str, float] = {}
    started: set[str] = set()
    fruitless = 0
    while pending:
        q = ctx.Queue()
        pool = ProcessPoolExecutor(max_workers=min(jobs, len(pending)), mp_context=ctx, initializer=_init_worker,
                                   initargs=(q,))
        futures: dict[Future, str] = {pool.submit(_worker_run, p, settings, root, settings_key): p for p in pending}
        pending = []
        broken = False
        before = len(outcomes)
        try:
            while futures:
                done, _ = wait(list(futures), timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(q, bar, seen, started)
                for fut in done:
                    path = futures.pop(fut)
                    try:
                        o = fut.result()
                    except BrokenProcessPool as exc:
                        broken = True
                        if path in started:
                            o = FileOutcome(path, FAILED, error=f"the worker process died ({exc})",
                                            line=f"failed  {Path(path).name}: the worker process died")
                        else:
                            pending.append(path)       # never started: try again in a new pool
                            continue
                    except Exception as exc:  # noqa: BLE001
                        o = FileOutcome(path, FAILED, error=f"{type(exc).__name__}: {exc}",
                                        line=f"failed  {Path(path).name}: {type(exc).__name__}: {exc}")
                    bar.advance(totals.get(path, 0.0) - seen.get(path, 0.0))
                    seen[path] = totals.get(path, 0.0)
                    bar.file_done(o.line)
                    outcomes.append(o)
        except KeyboardInterrupt:
            pool.shutdown(wait=True, cancel_futures=True)
            for fut in futures:
                if fut.done() and not fut.cancelled() and fut.exception() is None:
                    outcomes.append(fut.result())
            return outcomes, True
        finally:
            pool.shutdown(wait=True)
            q.close()
            q.join_thread()
        fruitless = fruitless + 1 if broken and len(outcomes) == before else 0
        if pending and fruitless >= 2:        # the pool breaks before any file starts: give up on the rest
            for path in pending:
                o = FileOutcome(path, FAILED, error="the worker processes could not run",
                                line=f"failed  {Path(path).name}: the worker processes could not run")
                bar.file_done(o.line)
                outcomes.append(o)
            pending = []
    return outcomes, False


def _drain(q: Any, bar: _Bar, seen: dict[str, float], started: set[str]) -> None:
    while True:
        try:
            kind, path, t = q.get_nowait()
        except queue_mod.Empty:
            return
        except (EOFError, OSError):
            return
        started.add(path)
        if kind == "progress":
            bar.advance(t - seen.get(path, 0.0))
            seen[path] = max(t, seen.get(path, 0.0))


def _closing(outcomes: list[FileOutcome], root: str | None, wall_s: float, interrupted: bool, out: TextIO,
             history_html: str) -> int:
    done = [o for o in outcomes if o.status == DONE]
    skipped = [o for o in outcomes if o.status == SKIPPED]
    failed = [o for o in outcomes if o.status == FAILED]
    video = sum(o.video_s for o in done)
    speed = f"; {video / 60:.1f} min of video in {wall_s:.1f} s" if done else ""
    print(f"MindFlow batch: {len(done)} analysed, {len(skipped)} skipped (already analysed with the same model and "
          f"settings; --force analyses them again), {len(failed)} failed{speed}", file=out)
    for o in done:
        if o.report:
            print(f"  {o.report}", file=out)
    if root is not None and (done or skipped):
        print(f"History: {Path(root) / history_html}", file=out)
    if failed:
        print("Failed:", file=out)
        for o in failed:
            print(f"  {o.path}: {o.error}", file=out)
    if interrupted:
        print("Stopped with Ctrl-C: run the same command again to go on (finished files are skipped).", file=out)
        return EXIT_INTERRUPTED
    return EXIT_FAILED if failed else EXIT_OK
