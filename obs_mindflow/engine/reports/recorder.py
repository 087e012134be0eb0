"""Persistence of one running session: periodic checkpoints on a background thread, and the report folder at the end.

:class:`SessionRecorder` wraps a :class:`~obs_mindflow.engine.session.session.Session` (statistics, rules, events)
and is what the OBS script and the CLI feed. Without a ``report_root`` it writes nothing (the CLI's
``--no-report``): the same statistics, rules and summary, one code path.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

from ...i18n import Said, words
from ..session.events import NUDGE, Event
from ..session.facts import ReportFacts, SessionInfo
from ..session.moments import MomentDetector, MomentOptions
from ..session.rules import NudgeMonitor, Rule
from ..session.session import Session
from ..session.snapshot import StatsSnapshot
from ..session.summary import format_summary
from .files import FinishedSession, finalise_folder, write_report
from .history import InputKey
from .history_page import record_session
from .storage import (HTML_FILE, MARKER_FILE, SCHEMA_VERSION, STATE_FILE, ReportError, atomic_write,
                      create_session_folder, ensure_session_folder, fallback_report_dir, register_live)

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------------------------
# The recorder
# --------------------------------------------------------------------------------------------------------------------

@dataclass
class _Job:
    seq: int
    generation: int
    doc: dict[str, Any]


class _BackgroundWriter:
    """One daemon thread that runs the latest submitted job; a newer job replaces one not started yet (only the
    newest checkpoint matters). The thread ends after ``idle_s`` without work and restarts on demand."""

    def __init__(self, run: Any, name: str, idle_s: float = 30.0) -> None:
        self._run_job = run
        self._name = name
        self._idle_s = idle_s
        self._cond = threading.Condition()
        self._job: _Job | None = None
        self._busy = False
        self._closing = False
        self._thread: threading.Thread | None = None

    def submit(self, job: _Job) -> None:
        with self._cond:
            self._job = job
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no job is pending or running. Returns ``False`` on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._job is None and not self._busy, timeout)

    def drain(self, timeout: float = 10.0) -> None:
        """Drop a job not started yet, wait for the one in progress, and end and join the thread (a later
        ``submit`` starts a new one). OBS requires every thread joined when a session ends or the script unloads."""
        with self._cond:
            self._job = None
            self._closing = True
            thread = self._thread
            self._cond.notify_all()
        try:
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout)
        finally:
            with self._cond:
                self._closing = False

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._job is None and not self._closing:
                    self._cond.wait(self._idle_s)
                if self._job is None:
                    self._thread = None
                    return
                job, self._job = self._job, None
                self._busy = True
            try:
                self._run_job(job)
            except Exception:  # noqa: BLE001 - recorded in last_error by the job itself; never kill the thread
                pass
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()




class SessionRecorder:
    """Collects one session and writes its report folder. Used by the OBS script and the CLI.

    ``report_root``: the folder that receives one sub-folder per session (see
    :func:`~obs_mindflow.engine.reports.storage.default_report_dir`), or ``None`` to write nothing;
    ``card_like``: anything with ``labels``, ``negative_labels`` and ``name`` (a ``ModelCard``);
    ``started_at``: wall time of the first result (naive = local time); default: the wall clock at the first
    ``add()``; ``checkpoint_every_s``: seconds of **session time** (the results' timestamps) between checkpoints;
    ``source``: free text for the report (camera name, video file); ``nudge``: a :class:`NudgeMonitor` to enable
    break nudges (``None``, the default, disables them; when given, its ``rolling_seconds`` is also the live
    rolling window of the statistics); ``rules``: further rules (see :mod:`obs_mindflow.engine.session.rules`);
    ``bin_seconds``, ``max_gap_seconds``: passed to the statistics; ``min_report_s``: a session shorter than this
    (seconds) leaves no report folder (its checkpoint folder is removed at :meth:`finish`; the summary says so);
    ``moments``: the thresholds of the moments rule (:class:`~obs_mindflow.engine.session.moments.MomentOptions`;
    on by default, ``None`` turns it off); ``media_clock``: the results' timestamps are a video file's own time
    (reports then show video times); ``history``: add each finished session with a report folder to the history
    database under ``report_root`` and rewrite ``history.html`` (never fails the finish: a problem is in the summary
    text and :attr:`FinishedSession.history_note`); ``input_key``: what a batch resumes on, stored in that row.

    Threads: ``add()`` is for the engine's worker thread; ``snapshot()``, ``checkpoint()``, ``write_report_now()``,
    ``finish()`` and ``reset()`` may be called from any other thread (OBS's UI thread). ``add()`` costs a few
    microseconds; at the first result and then every ``checkpoint_every_s`` it also captures the state (well under a
    millisecond, see ``tools/bench_stats.py``) and hands it to a background writer thread, because the write itself
    (JSON, fsync of the file and the folder, ``os.replace``) measured 10–25 ms on an SSD — most of a frame at 30 fps.

    The folder is created at the first checkpoint (an empty session leaves nothing on disk). I/O errors never raise
    from ``add()`` or ``finish()``: a checkpoint that fails becomes :attr:`last_error` (a :class:`ReportError`),
    is logged, and is retried at the next checkpoint; the statistics stay in memory. ``finish()`` returns the error
    in :attr:`FinishedSession.error`. Only :meth:`checkpoint` and :meth:`write_report_now` raise
    :class:`ReportError`.
    """

    def __init__(self, report_root: str | Path | None, card_like: Any, *, started_at: datetime | None = None,
                 checkpoint_every_s: float = 60.0, source: str = "", nudge: NudgeMonitor | None = None,
                 rules: Sequence[Rule] = (), bin_seconds: float = 10.0, max_gap_seconds: float = 2.0,
                 min_report_s: float = 0.0, moments: MomentOptions | None = MomentOptions(), media_clock: bool = False,
                 history: bool = True, input_key: InputKey | None = None, language: str = "") -> None:
        self.root = None if report_root is None else Path(report_root).expanduser()
        every = float(checkpoint_every_s)
        if not 0 < every < math.inf:
            raise ValueError(f"checkpoint_every_s must be a finite number of seconds > 0, got {checkpoint_every_s!r}")
        self.checkpoint_every_s = every
        if not 0 <= float(min_report_s) < math.inf:
            raise ValueError(f"min_report_s must be a number of seconds >= 0, got {min_report_s!r}")
        self.min_report_s = float(min_report_s)
        self.nudge = nudge
        self.history = bool(history)
        self.input_key, self.language = input_key, language     # language: the report's (an i18n locale; "": English)
        self.moments = (None if moments is None else
                        MomentDetector(card_like.labels, card_like.negative_labels, moments))
        self.session = Session(card_like.labels, card_like.negative_labels,
                               model=str(getattr(card_like, "name", "") or ""), source=source,
                               rules=((nudge,) if nudge is not None else ()) + tuple(rules) +
                               ((self.moments,) if self.moments is not None else ()),
                               rolling_seconds=nudge.rolling_seconds if nudge is not None else 300.0,
                               started_at=started_at, bin_seconds=bin_seconds, max_gap_seconds=max_gap_seconds,
                               media_clock=media_clock)
        self.model_name = self.session.model
        self.labels = self.session.labels
        self.negative_labels = self.session.negative_labels
        self.source = self.session.source
        self._lock = threading.Lock()       # recorder fields
        self._io_lock = threading.Lock()    # serialises file writes
        self._seq = 0
        self._written_seq = 0
        self._generation = 0
        self.last_checkpoint_ms = 0.0
        self.max_checkpoint_ms = 0.0
        self._writer = _BackgroundWriter(self._write_state_quietly, name="mindflow-checkpoint")
        self._new_session_locked()

    def _new_session_locked(self, forget_start: bool = False) -> None:
        self._generation += 1
        self.session.reset(forget_start=forget_start)
        self._folder: Path | None = None
        self._next_cp = 0.0
        self._finished = False
        self._result: FinishedSession | None = None
        self._last_error: ReportError | None = None
        self.checkpoints_written = 0
        self.ignored_after_finish = 0

    # ---------------------------------------------------------------- properties
    @property
    def folder(self) -> Path | None:
        """The session folder, once created (at the first checkpoint)."""
        return self._folder

    @property
    def started_at(self) -> datetime | None:
        return self.session.started_at

    @property
    def last_error(self) -> ReportError | None:
        """The error of the last checkpoint attempt, ``None`` when it succeeded."""
        return self._last_error

    @property
    def nudges(self) -> tuple[Event, ...]:
        return self.session.events(NUDGE)

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def stats(self):
        """The session's :class:`~obs_mindflow.engine.session.stats.SessionStats`."""
        return self.session.stats

    def set_calibration(self, baseline: Any | None) -> None:
        """The personal baseline in effect from now on (``None``: none); the report says so."""
        self.session.set_calibration(baseline)

    # ---------------------------------------------------------------- hot path
    def add(self, result: Any) -> tuple[Event, ...]:
        """Record one :class:`AnalysisResult` (engine worker thread). Returns the events it raised (usually none;
        see :mod:`obs_mindflow.engine.session.events`). Results arriving after :meth:`finish` are ignored. Raises
        ``ValueError`` only when the result comes from a model with other labels than this recorder's card."""
        job = None
        with self._lock:
            if self._finished:
                self.ignored_after_finish += 1
                return ()
            events = self.session.add(result)
            t = self.session.time_s
            if self.root is not None and t >= self._next_cp:
                self._next_cp = t + self.checkpoint_every_s
                job = self._capture_locked()
        if job is not None:
            self._writer.submit(job)
        return events

    def snapshot(self, *, timeline: bool = True) -> StatsSnapshot:
        """The current statistics (cheap; ``timeline=False`` for live display)."""
        return self.session.snapshot(timeline=timeline)

    # ---------------------------------------------------------------- checkpoints
    def _capture_locked(self) -> _Job:
        self._seq += 1
        doc = {"schema_version": SCHEMA_VERSION, "kind": "mindflow-session-state", "finished": False,
               "seq": self._seq, "checkpoint_every_s": self.checkpoint_every_s, "language": self.language,
               **self.session.to_state()}
        return _Job(self._seq, self._generation, doc)

    def _ensure_folder_io(self) -> Path:
        """Create the session folder and its UNFINISHED marker (under the I/O lock), again when it was removed
        during the session. Raises ``OSError``."""
        assert self.root is not None and self.session.started_at is not None
        self._folder = ensure_session_folder(self.root, self._folder, self.session.started_at)
        return self._folder

    def _write_state_quietly(self, job: _Job) -> None:
        try:
            self._write_state(job)
        except ReportError:
            pass  # kept in last_error and logged; retried at the next checkpoint

    def _write_state(self, job: _Job, during: str = "checkpoint") -> Path | None:
        """Write a captured checkpoint (I/O lock). Raises :class:`ReportError` and records it in ``last_error``.
        A job of an earlier session, or older than one already written, is skipped (returns ``None``)."""
        with self._io_lock:
            if job.generation != self._generation or job.seq <= self._written_seq:
                return None
            folder = self._folder or self.root
            try:
                t0 = time.perf_counter()
                folder = self._ensure_folder_io()
                path = folder / STATE_FILE
                atomic_write(path, json.dumps(job.doc, separators=(",", ":"), allow_nan=False))
                self._written_seq = job.seq
                self.checkpoints_written += 1
                self.last_checkpoint_ms = (time.perf_counter() - t0) * 1e3
                self.max_checkpoint_ms = max(self.max_checkpoint_ms, self.last_checkpoint_ms)
                self._last_error = None
                return path
            except OSError as exc:
                err = ReportError.from_os_error(exc, folder, during=during)
                self._last_error = err
                log.warning("%s", err)
                raise err from exc

    def flush(self, timeout: float | None = None) -> bool:
        """Wait for the background checkpoint writer to finish pending work (e.g. before reading ``state.json``).
        Returns ``False`` on timeout (seconds)."""
        return self._writer.wait(timeout)

    def _checkpoint_job(self) -> _Job:
        with self._lock:
            if self.root is None:
                raise RuntimeError("this recorder writes no files (no report folder was given)")
            if self._finished:
                raise RuntimeError("the session is finished; start a new one (reset()) to record again")
            if self.session.updates == 0:
                raise RuntimeError("no result recorded yet: nothing to checkpoint")
            return self._capture_locked()

    def checkpoint(self) -> Path:
        """Write a checkpoint now (any thread). Returns the ``state.json`` path. Raises :class:`ReportError`
        (the documented error: names the folder and what to do) and ``RuntimeError`` before the first result,
        after :meth:`finish`, or without a report folder."""
        path = self._write_state(self._checkpoint_job())
        assert path is not None  # the newest job of the current session is never skipped
        return path

    def _info(self, recovered: bool = False) -> SessionInfo:
        s = self.session
        assert s.started_at is not None
        return SessionInfo(s.model, s.labels, s.negative_labels, s.started_at, s.source, recovered, s.events(NUDGE),
                           s.calibration, moments=s.moments(), media_offset_s=s.media_offset_s,
                           history_link=self.root is not None and self.history, language=self.language)

    def write_report_now(self) -> Path:
        """Write the report files of the running session so far, under the I/O lock (the session goes on; the final
        report replaces them). Returns the ``report.html`` path. Raises ``RuntimeError`` when there is nothing to
        write and :class:`ReportError` when the folder cannot be written."""
        job = self._checkpoint_job()
        self._write_state(job)             # creates the folder
        facts = ReportFacts.of(self.session.snapshot(), self._info())
        text = format_summary(facts)
        with self._io_lock:
            folder = self._ensure_folder_io()
            try:
                write_report(folder, facts, text)
            except OSError as exc:
                raise ReportError.from_os_error(exc, folder, during="report") from exc
        return folder / HTML_FILE

    # ---------------------------------------------------------------- the end
    def finish(self) -> FinishedSession:
        """End the session and write ``timeline.csv``, ``report.html`` and ``summary.json`` (once), then mark the
        folder finished (remove ``UNFINISHED`` and ``state.json``). Idempotent: later calls return the same
        :class:`FinishedSession`. Never raises for I/O: a failure is in ``.error`` and the summary text, and the
        report goes to :func:`fallback_report_dir` (final); when that fails too, the checkpoint (if any) stays for
        :func:`~obs_mindflow.engine.reports.recovery.recover_unfinished` and calling ``finish()`` again retries."""
        with self._lock:
            if self._result is not None and (self._result.error is None or self._result.folder != self._folder):
                return self._result
            self._finished = True
            closing = self.session.close()        # a moment still running ends here
            snap = self.session.snapshot()
            job = self._capture_locked() if snap.updates and self.root is not None else None
            info = self._info() if self.session.started_at is not None else None
        self._writer.drain()
        facts = ReportFacts.of(snap, info, model=self.model_name)       # once, for every writer below
        text = format_summary(facts)
        error: ReportError | None = None
        history_note = ""
        folder = self._folder
        if job is not None and snap.duration_s < self.min_report_s:
            job = None
            self._discard_folder()
            folder = None
            text += "\n" + words(self.language)("summary.too_short", seconds=f"{snap.duration_s:.0f}",
                                                 minimum=f"{self.min_report_s:.0f}")
        if job is not None and info is not None:
            try:
                self._write_state(job, during="report")
                with self._io_lock:
                    folder = self._folder
                    assert folder is not None
                    try:
                        finalise_folder(folder, facts, text)
                    except OSError as exc:
                        raise ReportError.from_os_error(exc, folder, during="report") from exc
            except ReportError as exc:
                error, folder = self._save_elsewhere(exc, facts, text)
                w = words(self.language)
                text += "\n" + w("summary.not_saved", error=error.say(w))
                log.warning("%s", error)
            finally:
                if self._folder is not None:
                    register_live(self._folder, False)
        if error is None and folder is not None:
            text += "\n" + words(self.language)("summary.report", path=folder / HTML_FILE)
            if self.history and self.root is not None and info is not None:
                history_note = record_session(self.root, folder, facts, self.input_key)
                if history_note:
                    text += f"\n{history_note}"
        result = FinishedSession(folder=folder, summary_text=text, snapshot=snap, error=error, events=closing,
                                 history_note=history_note)
        with self._lock:
            self._result = result
        return result

    def _save_elsewhere(self, exc: ReportError, facts: ReportFacts, text: str) -> tuple[ReportError, Path | None]:
        """The report folder could not take the finished session: write it under :func:`fallback_report_dir` (with
        its own history row there) and drop the checkpoint left in the report folder, so that the next load does
        not recover the same session twice. Returns the error, its message naming where the session is now."""
        try:
            assert facts.info is not None
            folder = create_session_folder(fallback_report_dir(), facts.info.started_at)
            finalise_folder(folder, facts, text)
            record_session(folder.parent, folder, facts, self.input_key)
        except OSError as second:
            said = Said("problem.not_saved_either", error=exc, detail=second)
            return ReportError.of(said, exc.folder, exc.errno), self._folder
        register_live(folder, False)
        if self._folder is not None:
            register_live(self._folder, False)
            for name in (MARKER_FILE, STATE_FILE):
                try:
                    (self._folder / name).unlink()
                except OSError:
                    pass
        said = Said("problem.saved_instead", error=exc, directory=folder, root=self.root)
        return ReportError.of(said, folder, exc.errno), folder

    def _discard_folder(self) -> None:
        """Remove this session's checkpoint folder (a session too short for a report). Leaves anything else."""
        with self._io_lock:
            folder, self._folder = self._folder, None
            if folder is None:
                return
            register_live(folder, False)
            for name in (STATE_FILE, MARKER_FILE):
                try:
                    (folder / name).unlink()
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    log.warning("could not remove %s: %s", folder / name, exc)
            try:
                folder.rmdir()
            except OSError:
                pass       # something else is in it: keep it

    def reset(self) -> FinishedSession:
        """Finish the current session (its report is written, as by :meth:`finish`) and start a new, empty one.

        Decision: reset never discards data — a streamer who wants a session gone deletes its folder. The new
        session's ``started_at`` is the wall clock at its first result. Returns the finished session."""
        done = self.finish()
        with self._lock:
            self._new_session_locked(forget_start=True)
        return done
