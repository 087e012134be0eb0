"""The live engine of one loaded model: the Analyzer, the sessions it runs one after another, their events, and the
view the outputs show. What the OBS adapter (``obs_mindflow/obs/``) drives; it never imports obspython and is
unit-tested with plain frames.

Threads:

- :meth:`SessionHost.submit` — OBS's graphics thread (``script_tick``): a mailbox put, never blocks.
- ``_on_result`` — the Analyzer's worker thread: records the result (O(1)), publishes the session's events on
  :attr:`SessionHost.bus`, publishes the overlay state (at most ``overlay_hz`` times per second).
- :meth:`view` / :meth:`values` / :meth:`status_line` — OBS's graphics thread (the text timer: obs-scripting runs
  Python timers from its tick) and UI thread (properties).
- sessions (start, finish, reset, report now) and :meth:`close` — OBS's UI thread (frontend events, buttons).

Analysis only runs while a session is active and not paused (privacy: nothing is analysed otherwise). Times are
``time.monotonic()`` seconds, the clock the adapter stamps frames with.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..i18n import Words, words
from . import dockview, views
from .baseline import (DEFAULT_SECONDS, Baseline, BaselineCollector, BaselineCorrection, BaselineError,
                       CalibrationProgress, correction_for, reference_of)
from .formatting import format_duration
from .model import ExpressionModel
from .recipe import SessionRecipe
from .reports.files import FinishedSession
from .reports.recorder import SessionRecorder
from .results import AnalysisResult
from .session.events import (AWAY, CALIBRATION_DONE, CALIBRATION_FAILED, FACE_FOUND, MOMENT_STARTED, NUDGE, Event,
                             EventBus)

LogFn = Callable[[int, str], None]

STALE_AFTER_S = 3.0      # no result for this long while capturing → the text says "no video"
MOMENT_SHOWN_S = 8.0     # a moment that has just started stays in the overlay state this long (the page's toast)
NUDGE_SHOWN_S = 60.0     # a nudge stays in the {nudge} placeholder and the overlay message this long
TREND_POINTS = 120       # overlay trend: at most this many points (decimated as the session grows)
TREND_STEP_S = 10.0      # initial trend resolution, seconds of session time


def _default_log(level: int, message: str) -> None:
    logging.getLogger(__name__).log(level, "%s", message)


class _Trend:
    """The overlay's trend line: ``(seconds since start, rolling negative share)``, at most ``TREND_POINTS`` points;
    when full, every other point is dropped and the step doubles. A window without a readable face adds no point
    (its share is undefined). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self._points: list[tuple[float, float]] = []
            self._step = TREND_STEP_S
            self._next = 0.0

    def add(self, duration_s: float, share: float | None) -> None:
        with self._lock:
            if share is not None and duration_s >= self._next:
                self._points.append((round(duration_s, 1), round(share, 4)))
                self._next = duration_s + self._step
                if len(self._points) > TREND_POINTS:
                    self._points = self._points[::2]
                    self._step *= 2

    def points(self) -> tuple[tuple[float, float], ...]:
        with self._lock:
            return tuple(self._points)


class SessionHost:
    """The engine of one loaded model, plus the current session (if any).

    ``recipe``: how sessions are built (:class:`~obs_mindflow.engine.recipe.SessionRecipe`: thresholds, rules,
    nudge, moments, minimum report length, a first baseline; :meth:`set_recipe` changes it between sessions);
    ``report_root``: folder receiving one sub-folder per session (``None``: no folder, the summary only);
    ``overlay``: ``None`` or an object with ``publish(dict)`` (an ``OverlayServer``) and maybe
    ``publish_dock(dict)`` (:mod:`.dockview`); ``log(level, text)``: the adapter's logger (``logging`` levels; may be
    called from the worker thread). Subscribe to :attr:`bus` for the sessions' events (on the worker thread).
    """

    def __init__(self, model: ExpressionModel, recipe: SessionRecipe = SessionRecipe(), *,
                 report_root: str | Path | None, overlay=None, log: LogFn = _default_log, overlay_hz: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.model = model
        self.card = model.card
        self.recipe = recipe
        self.report_root = None if report_root is None else Path(report_root).expanduser()
        self.overlay = overlay
        self.log = log
        self.clock = clock
        self.bus = EventBus()
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
        self._moment: dict | None = None          # the last moment started (the overlay's toast)
        self._moment_at = -1e9
        self._trend = _Trend()
        self._collector: BaselineCollector | None = None
        self._calibration_source = ""
        self._calibration_seq = 0
        self._correction: BaselineCorrection | None = None
        self.calibration_message = ""   # the outcome of the last calibration, for the status ("" before any)
        self.bus.subscribe(self._on_face_found, (FACE_FOUND,))
        self.bus.subscribe(self._on_nudge, (NUDGE,))
        self.bus.subscribe(self._on_moment, (MOMENT_STARTED,))
        self.bus.subscribe(self._on_away, (AWAY,))
        self.analyzer = recipe.replace(baseline=None).open_analyzer(model, on_result=self._on_result)
        if recipe.baseline is not None:
            self.apply_baseline(recipe.baseline)
        self.analyzer.start()

    @classmethod
    def open(cls, recipe: SessionRecipe, **kwargs) -> "SessionHost":
        """Load the recipe's model and start the analysis worker. Raises ``ModelCardError`` / ``ModelLoadError``
        (their messages say what to fix), ``ValueError`` (threads) and ``BaselineError`` (another model's
        baseline)."""
        return cls(recipe.load_model(), recipe, **kwargs)

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
        """Frames are wanted now: a session runs or a calibration is in progress, not paused, not closed."""
        return (self.active or self._collector is not None) and not self._paused and not self._closed

    @property
    def recorder(self) -> SessionRecorder | None:
        return self._recorder

    def set_recipe(self, recipe: SessionRecipe) -> None:
        """Build the sessions started from now on with ``recipe`` (rules, nudge, moments, minimum report length);
        its "uncertain" threshold and smoothing apply at once. The model, threads and baseline stay: a new model is
        a new host, a baseline is :meth:`apply_baseline`'s."""
        old, self.recipe = self.recipe, recipe
        if (recipe.uncertain_below, recipe.smoother) != (old.uncertain_below, old.smoother):
            # From the card each time: 0 brings back the model's own threshold, not the streamer's last one.
            self.analyzer.set_smoother_options(recipe.smoother_options(self.model.card))

    def set_paused(self, paused: bool) -> None:
        """Pause/resume analysis. While paused the adapter captures nothing; the paused time is "not analysed"."""
        self._paused = bool(paused)
        self._publish(force=True)

    # ---------------------------------------------------------------- sessions
    def start_session(self, source: str = "") -> None:
        """Begin a new session (a running one is finished first)."""
        if self._closed:
            raise RuntimeError("this SessionHost is closed; create a new one")
        self.finish_session()
        rec = self.recipe.make_recorder(self.report_root, self.card, source=source)
        rec.set_calibration(self.baseline)          # the baseline in force now (a calibration may have made it)
        with self._lock:
            self._recorder = rec
            self._source = source
            self._first_seq = self.analyzer.stats().submitted
            self._face_seen = False
            self._trend.clear()
            self._nudge_text, self._nudge_at = "", -1e9
            self._moment, self._moment_at = None, -1e9
        self._publish(force=True)

    def finish_session(self) -> FinishedSession | None:
        """End the running session and write its report folder; ``None`` when none runs. Safe to call twice."""
        with self._lock:
            rec = self._recorder
        if rec is None or rec.finished:
            return None
        finished = rec.finish()
        self.bus.publish_all(finished.events)          # raised by the finish itself (a moment still running ends)
        self._publish(force=True)
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
        :class:`~obs_mindflow.engine.reports.storage.ReportError` when the folder cannot be written."""
        rec = self._recorder
        if rec is None or rec.finished:
            raise RuntimeError("no session is running: start one (Start session, or start streaming/recording)")
        return rec.write_report_now()

    # ---------------------------------------------------------------- calibration (a personal baseline)
    @property
    def baseline(self) -> Baseline | None:
        """The personal baseline applied to every reading now, ``None`` when uncalibrated."""
        c = self._correction
        return None if c is None else c.baseline

    @property
    def calibrating(self) -> bool:
        return self._collector is not None

    def start_calibration(self, seconds: float = DEFAULT_SECONDS, source: str = "") -> None:
        """Record the streamer's resting face for ``seconds`` (of the frames' time): frames are captured even
        outside a session; a running session goes on. The outcome is a ``calibration_done`` event (data: the
        baseline's dict; it is applied at once) or ``calibration_failed`` (message: why, and what to do). Raises
        :class:`~obs_mindflow.engine.baseline.BaselineError` when this model cannot be calibrated (no neutral
        reference in its card)."""
        if self._closed:
            raise RuntimeError("this SessionHost is closed; create a new one")
        reference_of(self.card)
        with self._lock:
            self._collector = BaselineCollector(self.card, seconds=seconds)
            self._calibration_source = source
            self._calibration_seq = self.analyzer.stats().submitted
        self.calibration_message = ""
        self._publish(force=True)

    def cancel_calibration(self) -> bool:
        """Stop a calibration in progress without changing the baseline. True when one was running."""
        with self._lock:
            running, self._collector = self._collector is not None, None
        if running:
            self.calibration_message = "calibration cancelled; the previous calibration (if any) still applies"
            self._publish(force=True)
        return running

    def calibration_progress(self) -> CalibrationProgress | None:
        c = self._collector
        return None if c is None else c.progress()

    def apply_baseline(self, baseline: Baseline) -> None:
        """Correct every reading from now on with ``baseline``. Raises
        :class:`~obs_mindflow.engine.baseline.BaselineError` (nothing changes) when it belongs to another model or
        label order, or the model has no neutral reference."""
        baseline.check_model(self.card)
        correction = correction_for(baseline, self.card)
        self._correction = correction
        self.analyzer.set_transforms([correction])
        rec = self._recorder
        if rec is not None and not rec.finished:
            rec.set_calibration(baseline)
        self._publish(force=True)          # the dock shows the calibration outside sessions too

    def clear_baseline(self) -> None:
        """Read the model's output uncorrected from now on."""
        self._correction = None
        self.analyzer.set_transforms([])
        rec = self._recorder
        if rec is not None and not rec.finished:
            rec.set_calibration(None)
        self._publish(force=True)

    def _feed_calibration(self, result: AnalysisResult) -> None:
        c = self._collector
        if c is None or result.seq <= self._calibration_seq:
            return
        c.add(result)
        if not c.done:
            return
        with self._lock:
            if self._collector is not c:
                return
            self._collector = None
        try:
            baseline = c.finish(source=self._calibration_source)
            self.calibration_message = f"calibrated: {baseline.describe()}"   # before apply_baseline publishes it
            self.apply_baseline(baseline)
        except BaselineError as exc:
            self.calibration_message = f"calibration refused: {exc}"
            self.bus.publish(Event(CALIBRATION_FAILED, 0.0, result.timestamp, str(exc),
                                   {"key": exc.key, "values": exc.values}))
            self._publish(force=True)      # the last frame of a calibration: no later result may publish it
        else:
            self.bus.publish(Event(CALIBRATION_DONE, 0.0, result.timestamp, self.calibration_message,
                                   baseline.to_dict()))

    # ---------------------------------------------------------------- frames and results
    def submit(self, frame: np.ndarray, timestamp: float) -> bool:
        """Hand a frame (BGRA/BGR/gray uint8, owned by the callee from now on) to the analysis. Never blocks.
        Returns False when no analysis is wanted now (no session, paused, closed)."""
        if not self.capturing:
            return False
        self.analyzer.submit(frame, timestamp)
        return True

    def _on_result(self, result: AnalysisResult) -> None:
        if self._collector is not None:
            self._feed_calibration(result)
        rec = self._recorder
        if rec is not None and not rec.finished and result.seq > self._first_seq:
            self.bus.publish_all(rec.add(result))
            snap = rec.snapshot(timeline=False)
            self._trend.add(snap.duration_s, snap.rolling_negative_share)
        self._publish(result)

    def _on_face_found(self, event: Event) -> None:
        if not self._face_seen:
            self._face_seen = True
            w, h = event.data["frame_size"]
            self.log(logging.INFO, f"MindFlow: first face in this session ({event.data['emotion']}, frame {w}x{h})")

    def _on_moment(self, event: Event) -> None:
        d = event.data
        self._moment = {"id": d.get("id"), "title": d.get("title", ""), "emotion": d.get("emotion", ""),
                        "negative": bool(d.get("negative")), "start_s": d.get("start_s", event.time_s)}
        self._moment_at = self.clock()

    def _on_away(self, event: Event) -> None:
        # info, not a warning: OBS raises its Script Log window at each warning, over a streamer who may be away
        w = words(self.recipe.language)
        text = event.message if w.lang == "en-US" else w("rules.away", duration=format_duration(
            event.data.get("seconds", 0.0), w))
        self.log(logging.INFO, f"MindFlow: {text}")

    def _on_nudge(self, event: Event) -> None:
        self._nudge_text, self._nudge_at = event.message, self.clock()
        self.log(logging.WARNING, f"MindFlow nudge: {event.message}")

    def latest(self) -> AnalysisResult:
        """The newest result of the running session (an empty one before its first)."""
        r = self.analyzer.latest()
        if r.seq <= self._first_seq:
            return AnalysisResult.empty(self.card.labels)
        return r

    # ---------------------------------------------------------------- outputs
    def view(self, result: AnalysisResult | None = None) -> views.LiveView:
        """What the outputs show now (see :mod:`obs_mindflow.engine.views`)."""
        r = result if result is not None and result.seq > self._first_seq else self.latest()
        rec = self._recorder
        snap = rec.snapshot(timeline=False) if rec is not None else None
        trend = self._trend.points() if snap is not None and snap.started else ()
        now = self.clock()
        progress = self.calibration_progress()
        return views.LiveView(
            model=self.card.name, labels=self.card.labels, negative_labels=self.card.negative_labels,
            active=self.active, paused=self._paused,
            stale=bool(self.capturing and r.seq and now - r.timestamp > STALE_AFTER_S),
            face=r.face_present, emotion=r.emotion, confidence=r.confidence, probabilities=r.probabilities_dict(),
            faces=r.num_faces, rate_hz=self.analyzer.stats().rate_hz, session=snap, trend=trend,
            nudge=self._nudge_text if now - self._nudge_at <= NUDGE_SHOWN_S else "",
            calibrating=progress is not None, calibration_progress=progress.fraction if progress else 0.0,
            calibrated=self._correction is not None,
            calibration_message=progress.describe() if progress else self.calibration_message,
            moment=self._moment if self._moment is not None and now - self._moment_at <= MOMENT_SHOWN_S else None,
            updated=time.time())

    def values(self, words: Words | None = None) -> dict[str, str]:
        """The text template's placeholder values (:func:`obs_mindflow.engine.views.text_values`; the session's
        length in the units of ``words``' language)."""
        return views.text_values(self.view(), words)

    def overlay_state(self) -> dict:
        """The overlay state (:func:`obs_mindflow.engine.views.overlay_state`)."""
        return views.overlay_state(self.view())

    def publish(self) -> None:
        """Publish the overlay's (and the dock's) state now, e.g. to a new overlay server."""
        self._publish(force=True)

    def _publish(self, result: AnalysisResult | None = None, force: bool = False) -> None:
        overlay = self.overlay
        if overlay is None:
            return
        now = self.clock()
        if not force and now - self._last_publish < self._overlay_period:
            return
        self._last_publish = now
        try:
            view = self.view(result)
            state = views.overlay_state(view)
            overlay.publish(state)
            if hasattr(overlay, "publish_dock"):      # the streamer's private dock: everything, unfiltered
                overlay.publish_dock(dockview.dock_state(state, view, self._recorder, self.analyzer.stats()))
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
        progress = self.calibration_progress()
        if progress is not None:
            parts.append(progress.describe())
        elif self.baseline is not None:
            parts.append(f"calibrated to your face ({self.baseline.describe()})")
        else:
            parts.append("not calibrated")
        if st.errors:
            parts.append(f"{st.errors} analysis errors, last: {st.last_error}")
        if rec is not None and rec.last_error is not None:
            parts.append(f"report: {rec.last_error}")
        return "; ".join(parts)

    # ---------------------------------------------------------------- the end
    def close(self, timeout: float = 2.0) -> FinishedSession | None:
        """Stop and join the analysis worker, then finish the running session (report written). Idempotent.
        The overlay server is not stopped here: its owner (the adapter) stops it."""
        if self._closed:
            return None
        self._closed = True
        self.analyzer.close(timeout)       # first: a frame being analysed is still recorded
        return self.finish_session()

    def __enter__(self) -> "SessionHost":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
