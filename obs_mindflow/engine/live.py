"""One live MindFlow run inside OBS, without OBS: Analyzer + SessionRecorder + overlay publishing + text values.

The OBS adapter (``obs_mindflow/obs/``) drives a :class:`LiveSession`; this module never imports obspython and is
unit-tested with plain frames.

Threads:

- :meth:`LiveSession.submit` — OBS's graphics thread (``script_tick``): a mailbox put, never blocks.
- ``_on_result`` — the Analyzer's worker thread: records the result (O(1)), publishes the overlay state (at most
  ``overlay_hz`` times per second), notes events for the log.
- everything else — OBS's UI thread (timers, frontend events, buttons).

Sessions: :meth:`start_session` creates a fresh :class:`SessionRecorder`; :meth:`finish_session` ends it and writes the
report folder (``SessionRecorder.finish`` is idempotent; the adapter's lifecycle state machine makes sure it is asked
once). Analysis only runs while a session is active and not paused (privacy: nothing is analysed otherwise).
Times are ``time.monotonic()`` seconds, the clock the adapter stamps frames with.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from .model import ExpressionModel, ModelOptions
from .pipeline import Analyzer
from .report import FinishedSession, SessionInfo, SessionRecorder, recover_unfinished, write_report
from .results import AnalysisResult
from .stats import NudgeMonitor, format_duration, format_summary

LogFn = Callable[[int, str], None]

NO_VALUE = "–"
STALE_AFTER_S = 3.0      # no result for this long while capturing → the text says "no video"
NUDGE_SHOWN_S = 60.0     # a nudge stays in the {nudge} placeholder this long
TREND_POINTS = 120       # overlay trend: at most this many points (decimated as the session grows)
TREND_STEP_S = 10.0      # initial trend resolution, seconds of session time


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def _default_log(level: int, message: str) -> None:
    logging.getLogger(__name__).log(level, "%s", message)


def recover_sessions(report_root: Path, log: LogFn = _default_log) -> int:
    """Finalise sessions an earlier crash left unfinished under ``report_root`` and log each summary. Returns how many
    folders were handled. Never raises."""
    try:
        done = recover_unfinished(report_root)
    except Exception as exc:  # noqa: BLE001 - recovery must never stop the script from loading
        log(logging.WARNING, f"MindFlow: could not look for unfinished sessions in {report_root}: {exc}")
        return 0
    for f in done:
        log(logging.WARNING if f.error else logging.INFO,
            f"MindFlow: finalised a session that an earlier OBS run left unfinished ({f.folder}):")
        for line in f.summary_text.splitlines():
            log(logging.INFO, line)
    return len(done)


class LiveSession:
    """The engine of one loaded model, plus the current session (if any).

    ``report_root``: folder receiving one sub-folder per session; ``nudge``: opt-in break nudges for the sessions
    started from now on; ``overlay``: an object with ``publish(dict)`` (an ``OverlayServer``) or ``None``;
    ``log(level, text)``: the adapter's logger (``logging`` levels; may be called from the worker thread).
    """

    def __init__(self, model: ExpressionModel, *, report_root: str | Path, nudge: bool = False, overlay=None,
                 log: LogFn = _default_log, overlay_hz: float = 5.0, clock: Callable[[], float] = time.monotonic,
                 analyzer: Analyzer | None = None) -> None:
        self.model = model
        self.card = model.card
        self.report_root = Path(report_root).expanduser()
        self.nudge = bool(nudge)
        self.overlay = overlay
        self.log = log
        self.clock = clock
        self._overlay_period = 1.0 / overlay_hz if overlay_hz > 0 else 0.0
        self._lock = threading.Lock()
        self._recorder: SessionRecorder | None = None
        self._source = ""
        self._first_seq = 0           # results with seq <= this belong to before the session
        self._paused = False
        self._closed = False
        self._face_seen = False
        self._last_publish = -1e9
        self._nudge_text = ""
        self._nudge_at = -1e9
        self._trend: list[list[float]] = []
        self._trend_step = TREND_STEP_S
        self._next_trend = 0.0
        self.analyzer = analyzer or Analyzer(model, on_result=self._on_result, opencv_threads=1)
        if analyzer is not None:
            analyzer.on_result = self._on_result
        self.analyzer.start()

    @classmethod
    def open(cls, model_dir: str | Path, *, threads: int = 1, **kwargs) -> "LiveSession":
        """Load the model in ``model_dir`` and start the analysis worker. Raises ``ModelCardError`` /
        ``ModelLoadError`` (their messages say what to fix)."""
        model = ExpressionModel.load(Path(model_dir), ModelOptions(intra_op_threads=threads))
        return cls(model, **kwargs)

    # ---------------------------------------------------------------- state
    @property
    def active(self) -> bool:
        """A session is running (even when paused)."""
        rec = self._recorder
        return rec is not None and not rec.finished

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def capturing(self) -> bool:
        """Frames are wanted now: a session runs, not paused, not closed."""
        return self.active and not self._paused and not self._closed

    @property
    def recorder(self) -> SessionRecorder | None:
        return self._recorder

    def set_paused(self, paused: bool) -> None:
        """Pause/resume analysis. While paused the adapter captures nothing; the paused time is "not analysed"."""
        self._paused = bool(paused)
        self._publish(self.analyzer.latest(), force=True)

    # ---------------------------------------------------------------- sessions
    def start_session(self, source: str = "") -> None:
        """Begin a new session (a running one is finished first)."""
        if self._closed:
            raise RuntimeError("this LiveSession is closed; create a new one")
        self.finish_session()
        rec = SessionRecorder(self.report_root, self.card, source=source,
                              nudge=NudgeMonitor() if self.nudge else None)
        with self._lock:
            self._recorder = rec
            self._source = source
            self._first_seq = self.analyzer.stats().submitted
            self._face_seen = False
            self._trend, self._trend_step, self._next_trend = [], TREND_STEP_S, 0.0
            self._nudge_text, self._nudge_at = "", -1e9

    def finish_session(self) -> FinishedSession | None:
        """End the running session and write its report folder; ``None`` when none runs. Safe to call twice."""
        with self._lock:
            rec = self._recorder
        if rec is None or rec.finished:
            return None
        finished = rec.finish()
        self._publish(self.analyzer.latest(), force=True)
        return finished

    def reset_session(self) -> FinishedSession | None:
        """Finish the running session (its report is written) and start a new one from the same source."""
        if not self.active:
            return None
        done = self.finish_session()
        self.start_session(self._source)
        return done

    def write_report_now(self) -> Path:
        """Write the report files of the running session so far (the session goes on; the final report replaces
        them). Returns the ``report.html`` path. Raises ``RuntimeError`` when there is nothing to write and
        :class:`~obs_mindflow.engine.report.ReportError` when the folder cannot be written."""
        rec = self._recorder
        if rec is None or rec.finished:
            raise RuntimeError("no session is running: start one (Start session, or start streaming/recording)")
        rec.checkpoint()  # creates the folder; raises RuntimeError before the first result
        snap = rec.snapshot()
        started = rec.started_at
        info = SessionInfo(rec.model_name, rec.labels, rec.negative_labels, started, rec.source, False, rec.nudges)
        text = format_summary(snap, model_name=rec.model_name, started_at=started)
        write_report(rec.folder, snap, info, text)
        return rec.folder / "report.html"

    # ---------------------------------------------------------------- frames and results
    def submit(self, frame: np.ndarray, timestamp: float) -> bool:
        """Hand a frame (BGRA/BGR/gray uint8, owned by the callee from now on) to the analysis. Never blocks.
        Returns False when no analysis is wanted now (no session, paused, closed)."""
        if not self.capturing:
            return False
        self.analyzer.submit(frame, timestamp)
        return True

    def _on_result(self, result: AnalysisResult) -> None:
        rec = self._recorder
        if rec is None or result.seq <= self._first_seq:
            return
        for n in rec.add(result):
            self._nudge_text, self._nudge_at = n.message, self.clock()
            self.log(logging.WARNING, f"MindFlow nudge: {n.message}")
        if result.face_present and not self._face_seen:
            self._face_seen = True
            self.log(logging.INFO, f"MindFlow: first face in this session ({result.emotion or result.raw_label}, "
                                   f"frame {result.frame_size[0]}x{result.frame_size[1]})")
        self._publish(result)

    def latest(self) -> AnalysisResult:
        """The newest result of the running session (an empty one before its first)."""
        r = self.analyzer.latest()
        if r.seq <= self._first_seq:
            return AnalysisResult.empty(self.card.labels)
        return r

    # ---------------------------------------------------------------- outputs
    def values(self) -> dict[str, str]:
        """The text template's placeholder values (see ``obs_mindflow/obs/template.py``), as display text."""
        r = self.latest()
        rec = self._recorder
        snap = rec.snapshot(timeline=False) if rec is not None else None
        now = self.clock()
        if self._paused:
            emotion = "paused"
        elif self.capturing and r.seq and now - r.timestamp > STALE_AFTER_S:
            emotion = "no video"
        else:
            emotion = r.emotion or "no face"
        has_face = snap is not None and snap.face_s > 0
        return {
            "emotion": emotion,
            "confidence": _pct(r.confidence) if r.emotion and not self._paused else NO_VALUE,
            "negative_share": _pct(snap.negative_share) if has_face else NO_VALUE,
            "rolling_negative": _pct(snap.rolling_negative_share) if snap is not None and snap.rolling_face_s > 0
            else NO_VALUE,
            "coverage": _pct(snap.coverage) if snap is not None and snap.analysed_s > 0 else NO_VALUE,
            "duration": format_duration(snap.duration_s) if snap is not None else format_duration(0),
            "dominant": (snap.dominant or NO_VALUE) if has_face else NO_VALUE,
            "faces": str(r.num_faces),
            "rate": f"{self.analyzer.stats().rate_hz:.1f}",
            "model": self.card.name,
            "nudge": self._nudge_text if now - self._nudge_at <= NUDGE_SHOWN_S else "",
        }

    def overlay_state(self, result: AnalysisResult | None = None) -> dict:
        """The overlay state dict (schema in ``obs_mindflow/overlay/server.py``)."""
        r = result if result is not None else self.latest()
        rec = self._recorder
        session: dict = {"active": self.active}
        if rec is not None:
            s = rec.snapshot(timeline=False)
            if s.started and s.duration_s >= self._next_trend:
                self._trend.append([round(s.duration_s, 1), round(s.rolling_negative_share, 4)])
                self._next_trend = s.duration_s + self._trend_step
                if len(self._trend) > TREND_POINTS:
                    self._trend = self._trend[::2]
                    self._trend_step *= 2
            session.update({"duration_s": s.duration_s, "coverage": s.coverage,
                            "profile": dict(zip(s.labels, s.shares)), "negative_share": s.negative_share,
                            "rolling_negative_share": s.rolling_negative_share,
                            "rolling_window_s": s.rolling_seconds, "trend": list(self._trend)})
        message = "paused" if self._paused else (
            self._nudge_text if self.clock() - self._nudge_at <= NUDGE_SHOWN_S else "")
        return {"model": self.card.name, "labels": list(self.card.labels),
                "negative_labels": list(self.card.negative_labels), "paused": self._paused,
                "face": bool(r.face_present) and not self._paused,
                "emotion": "" if self._paused else r.emotion, "confidence": float(r.confidence),
                "probabilities": r.probabilities_dict(), "session": session, "message": message,
                "updated": time.time()}

    def _publish(self, result: AnalysisResult, force: bool = False) -> None:
        overlay = self.overlay
        if overlay is None:
            return
        now = self.clock()
        if not force and now - self._last_publish < self._overlay_period:
            return
        self._last_publish = now
        try:
            overlay.publish(self.overlay_state(result if result.seq > self._first_seq else None))
        except Exception as exc:  # noqa: BLE001 - the overlay must never stop the analysis
            self.log(logging.WARNING, f"MindFlow overlay: could not publish the state: {exc}")

    def status_line(self) -> str:
        """One line for the script's properties: model, session, analysis rate, errors."""
        st = self.analyzer.stats()
        rec = self._recorder
        parts = [f"model {self.card.name}"]
        if self.active and rec is not None:
            snap = rec.snapshot(timeline=False)
            parts.append(("session paused" if self._paused else "session running") +
                         f" for {format_duration(snap.duration_s)}")
            parts.append(f"analysing {st.rate_hz:.1f}/s")
        else:
            parts.append("no session running (starts with streaming or recording, or the Start session button)")
        if st.errors:
            parts.append(f"{st.errors} analysis errors, last: {st.last_error}")
        if rec is not None and rec.last_error is not None:
            parts.append(f"report: {rec.last_error}")
        return "; ".join(parts)

    # ---------------------------------------------------------------- the end
    def close(self, timeout: float = 2.0) -> FinishedSession | None:
        """Finish the running session (report written), stop and join the analysis worker. Idempotent.
        The overlay server is not stopped here: its owner (the adapter) stops it."""
        if self._closed:
            return None
        finished = self.finish_session()
        self._closed = True
        self.analyzer.close(timeout)
        return finished

    def __enter__(self) -> "LiveSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
