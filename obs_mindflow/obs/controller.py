"""The MindFlow script's state for one load: created in ``script_load``, closed in ``script_unload``.

Part of the OBS adapter (imports obspython). :class:`MindFlowScript` owns the settings, the session lifecycle (pure
state machine, :mod:`.lifecycle`), the engine (:class:`~obs_mindflow.engine.host.SessionHost`, one per loaded model),
the overlay server and the source capture, and turns OBS's callbacks into calls on them. Its other jobs live beside it,
one module each (:mod:`.scriptlog`, :mod:`.overlayout`, :mod:`.textout`, :mod:`.calibration`, :mod:`.moments`,
:mod:`.lastsessions`, :mod:`.status`); it holds one of each per load and hands each what it needs, never itself.

Nothing here survives a reload: the entry module (hotkeys, timer, frontend callback) makes one in each ``script_load``.

Threads: ``load``/``update``/``unload``/buttons/hotkeys/frontend events run on OBS's UI thread (the frontend routes
hotkeys there); ``tick`` and the timer (``text_timer``) run on OBS's graphics thread (the scripting host runs Python
timers from its tick). Neither blocks: the heavy work is in the engine's worker thread, whose log lines are queued and
written by the next timer call. The engine's events (a calibration's outcome, a moment) arrive on its worker thread and
are handed to the UI thread (``run_on_ui_thread``) before they touch OBS.
"""

from __future__ import annotations

import collections
import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import obspython as obs

from ..engine import views
from ..engine.host import SessionHost
from ..engine.reports.files import FinishedSession
from ..engine.reports.recovery import recover_sessions
from ..errors import MindFlowError
from ..i18n import Joined, Said, say
from ..overlay.server import OverlayServer
from . import status, uitask
from .calibration import KINDS as CALIBRATION_KINDS, Calibration, Needs
from .capabilities import detect as detect_capabilities
from .capture import SourceCapture
from .lastsessions import LastSessions
from .language import ui_words, viewer_words
from .lifecycle import Action, SessionLifecycle, Transition
from .moments import Moments
from .obsdata import read_settings
from .overlayout import OverlayOutput
from .panel import PanelView
from .renames import Renames, follow_renames
from .scriptlog import PackageLogging, ScriptLog
from .settings import Settings, validate
from .textout import TextOutput

SETTINGS_LOG_QUIET_S = 1.0      # the settings line is logged once the settings stopped changing for this long
#: A second press of Start/Stop session this soon after the first is a double click: ignored (issue 23). Qt's
#: default double-click interval is 400 ms; a slow double click on a loaded machine takes longer.
DOUBLE_PRESS_S = 1.0
#: Problems logged as warnings: a report not written, no model, the capture stopped. OBS 29-32 show and raise the
#: Script Log window at every warning (``ScriptLogWindow::AddLogMsg``), leaving it scrolled where it was.
WARNING_AREAS = ("report", "model", "capture")


class MindFlowScript:
    """Everything one load of the script holds."""

    def __init__(self) -> None:
        self.log = ScriptLog()
        self.settings = Settings()
        self.problems: dict[str, str] = {}
        self.last_error = ""
        self.notice = ""            # the outcome of the last button or hotkey, shown in the panel
        self.lifecycle = SessionLifecycle()
        self.host: SessionHost | None = None
        self.overlay_out = OverlayOutput(self.set_problem, self.log.info)
        self.capture = SourceCapture(log=lambda m: self.log.info(f"MindFlow: {m}"))
        self.capabilities = detect_capabilities()
        self.settings_data = None
        self.text = TextOutput(self.settings, self.set_problem)
        self.calibration = Calibration(Needs(
            host=lambda: self.host, settings=lambda: self.settings, settings_data=lambda: self.settings_data,
            log=self.log, on_ui=lambda fn: uitask.run_on_ui_thread(fn) or self.pending_ui.append(fn),
            publish=lambda: self.overlay_out.refresh(self.host), closed=lambda: self.closed))
        self.moments = Moments(self.settings, self.capabilities, self.log,
                               calibrating=lambda: (h := self.host) is not None and h.calibrating)
        self.last_sessions = LastSessions()
        self.session_since: datetime | None = None
        self.session_reason = ""
        self.last_result = ""
        self.last_report: Path | None = None
        self.pending_ui: collections.deque = collections.deque()   # UI work when no UI-thread queue exists
        self.renames = Renames()    # sources renamed in OBS (the entry module's signal callback adds them)
        self.closed = False
        self._logging = PackageLogging(self.log)
        self._engine_key: tuple | None = None
        self._capture_failed = ""
        self._settings_changed_at: float | None = None
        self._logged_settings: Settings | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._last_press = (float("-inf"), False)   # the last Start/Stop session press: monotonic s, active after

    @property
    def overlay(self) -> OverlayServer | None:
        """The overlay page's server (``None`` while off)."""
        return self.overlay_out.server

    # ================================================================ problems (shown in the panel)
    def set_problem(self, area: str, message: str) -> None:
        """Record (and log once) the current problem of ``area``; ``""`` clears it. A warning only where a report is
        lost or nothing can run (:data:`WARNING_AREAS`): OBS opens its Script Log window over everything at each
        warning; the rest is the panel's red line and an info line."""
        old = self.problems.get(area, "")
        if message == old:
            return
        if message:
            self.problems[area] = message
            self.last_error = message
            self.log.log(logging.WARNING if area in WARNING_AREAS else logging.INFO,
                         f"MindFlow {area}: {say(message, ui_words())}")
        else:
            self.problems.pop(area, None)
            if self.last_error == old:
                self.last_error = next(reversed(self.problems.values()), "")     # the newest problem left
        self.overlay_out.set_error(say(self.last_error, ui_words()))       # the dock shows it at once

    # ================================================================ load / update / save / unload
    def load(self, data: Any, bind: bool = True) -> None:
        """``bind``: the calling thread is one OBS runs the script's callbacks on (``script_load``); ``False`` for a
        start from a UI-thread task (after the install button): the log lines are then queued for the timer."""
        if bind:
            self.log.bind_thread()
        self.log.info(self.capabilities.log_line())   # which OBS, and its chapters, Browser source, canvases
        obs.obs_data_addref(data)
        self.settings_data = data
        self._logging.attach()
        self.apply(read_settings(data), first=True)
        recover_sessions(self.settings.report_root(), self.log.log)
        self.last_sessions.refresh(self.settings.report_root(), ui_words())
        self.last_result, self.last_report = self.last_sessions.last_session()   # kept across a reload
        self.run(self.lifecycle.loaded(obs.obs_frontend_streaming_active(), obs.obs_frontend_recording_active()))

    def update(self, data: Any) -> None:
        if not self.closed:
            self.apply(read_settings(data))

    def apply(self, raw: dict[str, Any], first: bool = False) -> None:
        """Validate and apply settings (OBS calls this on every key typed in the panel: quick and quiet): keep the
        last usable template while the typed one has a problem, reload the model when it changed, start/stop the
        overlay, re-point the capture, the moments' options for the next session and the actions at once. The
        settings line is logged once they stopped changing (the timer)."""
        new, problems = validate(raw)
        self.set_problem("settings", Joined(problems) if problems else "")
        new = self.text.check(new)
        old, self.settings = self.settings, new
        if first or new != old:
            self._settings_changed_at = time.monotonic() - (SETTINGS_LOG_QUIET_S if first else 0.0)
        if first:
            self._log_settings()
        self.text.configure(old, new, first)
        self.capture.source_name = new.video_source
        self.capture.interval_s = 1.0 / new.rate_hz
        self._capture_failed = ""
        self.overlay_out.apply(new, viewer_words(new))
        if self.host is not None and self.host.overlay is not self.overlay_out.viewer:
            self.host.overlay = self.overlay_out.viewer
            self.host.publish()             # a new server: its overlay and dock start from the state now
        self.moments.configure(new)
        if not first and new.report_root() != old.report_root():
            self.last_sessions.refresh(new.report_root(), ui_words())
        if self.host is None or new.engine_key() != self._engine_key:
            self._open_engine()
        else:
            self.host.report_root = new.report_root()
            self.host.set_recipe(new.recipe(ui_words().lang))      # its reports in OBS's language
        if (not first and self.lifecycle.active and self.host is not None and not self.host.active
                and new.video_source):
            self._start_session("a webcam was chosen while OBS is live")

    def _log_settings(self) -> None:
        """The settings line, at debug level, once per real change (not per key typed)."""
        if self.settings != self._logged_settings:
            self._logged_settings = self.settings
            self.log.debug(self.settings.log_line())
        self._settings_changed_at = None

    def _open_engine(self) -> None:
        s = self.settings
        self._engine_key = s.engine_key()
        if self.host is not None:
            running = self.host.active
            if running:
                self.log.info("MindFlow: the model changed; ending the current session with the old model")
                if self.host.recorder is not None:
                    self.host.recorder.min_report_s = 0.0   # ended by the change, not by the streamer: kept
            self._finished(self.host.close())
            self._drop_host()
            if running:
                self.notice = Said("notice.model_changed")
        recipe = s.recipe(ui_words().lang)      # the reports in OBS's language (the streamer's)
        t0 = time.perf_counter()
        try:
            host = SessionHost.open(recipe, report_root=s.report_root(), overlay=self.overlay_out.viewer,
                                    log=self.log.log)
        except (MindFlowError, OSError, ValueError) as exc:
            self.set_problem("model", Said("problem.no_model", reason=exc))
            return
        self.set_problem("model", "")
        self.host = host
        self._unsubscribe = host.bus.subscribe(self.calibration.on_event, CALIBRATION_KINDS)
        self.moments.attach(host)
        self.log.info(f"MindFlow: model '{host.card.name}' loaded from {recipe.model_dir()} in "
                      f"{(time.perf_counter() - t0) * 1e3:.0f} ms")
        self.calibration.apply_stored()
        if self.lifecycle.active:
            self._start_session("the session goes on with the new model")

    def _drop_host(self) -> None:
        self.moments.detach()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.host = None

    def unload(self) -> None:
        """Finish the session (summary logged, report written), join every thread, destroy the graphics objects,
        undo a moment's action that can be undone, leave the idle text on the text source, release every OBS
        object. Idempotent."""
        if self.closed:
            return
        self.closed = True
        self.log.bind_thread()
        self.log.flush()
        try:
            self.run(self.lifecycle.shutdown("the script is unloading"))
            if self.host is not None:
                self._finished(self.host.close())
                self._drop_host()
            self.log.info(self.capture.cost_summary())
        finally:
            self.capture.release()
            self.moments.close()
            self.overlay_out.stop()
            self.text.write_idle()
            self.log.flush()
            self._logging.detach()
            if self.settings_data is not None:
                obs.obs_data_release(self.settings_data)
                self.settings_data = None

    # ================================================================ sessions
    def run(self, t: Transition) -> FinishedSession | None:
        """Carry out a lifecycle transition."""
        if t.action is Action.START:
            self._start_session(t.reason)
        elif t.action is Action.FINISH:
            self.session_since = None
            if self.host is not None and self.host.active:
                self.log.info(f"MindFlow: session ended ({t.reason})")
                finished = self.host.finish_session()
                self._finished(finished)
                # the idle text at once (OBS may be exiting: it saves the scene collection before the next timer)
                self.text.write_idle()
                return finished
            self.log.info(f"MindFlow: {t.reason}; no session was running")
        return None

    def _start_session(self, reason: str) -> None:
        self.text.invalidate()
        if self.host is None:
            self.log.warning(f"MindFlow: session not started ({reason}): no model is loaded — {self.last_error}")
            return
        if not self.settings.video_source:
            self.notice = Said("notice.output_no_webcam")
            self.log.info(f"MindFlow: no session ({reason}): no webcam is chosen in MindFlow's settings")
            return
        self.host.start_session(source=self.settings.video_source)
        self.session_since, self.session_reason = datetime.now(), reason
        if getattr(self.notice, "key", "") == "notice.output_no_webcam":
            self.notice = ""
        self.log.info(f"MindFlow: session started ({reason}); analysing '{self.settings.video_source}' at "
                      f"{self.settings.rate_hz:g} Hz")
        if self.settings.calibrate_each_session and not self.host.calibrating:
            self.calibration.start(auto=True)

    def _finished(self, finished: FinishedSession | None) -> None:
        """A session ended: its summary in the log, its one-line result in the panel and the log, the last sessions
        read again (the session is now one of them)."""
        if finished is None:
            return
        for line in finished.summary_text.splitlines():
            self.log.info(line)
        result = status.result_line(finished, self.settings.min_report_s)
        self.log.info(f"MindFlow: session result: {result}")
        s = finished.snapshot
        if finished.folder is None and finished.ok and (s is None or not s.started or s.duration_s <= 0):
            # nothing analysed (stopped at once): the panel keeps pointing at the last real session
            self.notice = Said("notice.nothing_analysed_last" if self.last_result else "notice.nothing_analysed")
        else:
            self.last_result = result
            self.last_report = (finished.folder / status.REPORT_FILE) if finished.folder is not None and finished.ok \
                else None
        self.set_problem("report", Said.of(finished.error) if finished.error else "")
        self.last_sessions.refresh(self.settings.report_root(), ui_words())

    def frontend_event(self, event: int) -> None:
        if self.closed:
            return
        self.log.flush()
        lc = self.lifecycle
        handlers = {
            obs.OBS_FRONTEND_EVENT_STREAMING_STARTED: lc.streaming_started,
            obs.OBS_FRONTEND_EVENT_STREAMING_STOPPED: lc.streaming_stopped,
            obs.OBS_FRONTEND_EVENT_RECORDING_STARTED: lc.recording_started,
            obs.OBS_FRONTEND_EVENT_RECORDING_STOPPED: lc.recording_stopped,
        }
        if event == obs.OBS_FRONTEND_EVENT_FINISHED_LOADING:
            self.log.info("MindFlow: OBS finished loading")
        elif event == obs.OBS_FRONTEND_EVENT_SCRIPTING_SHUTDOWN:
            self.run(lc.shutdown("OBS is exiting (scripting shutdown)"))
        elif event in handlers:
            if event == obs.OBS_FRONTEND_EVENT_RECORDING_STARTED:
                self.moments.recording_started()
            self.run(handlers[event]())
            if lc.active and lc.manual and self.host is not None and self.host.active:
                rec = (obs.OBS_FRONTEND_EVENT_RECORDING_STARTED, obs.OBS_FRONTEND_EVENT_RECORDING_STOPPED)
                what = "recording" if event in rec else "stream"
                verb = "stopped" if event in (rec[1], obs.OBS_FRONTEND_EVENT_STREAMING_STOPPED) else "started"
                self.notice = Said("notice.manual_goes_on", change=Said(f"notice.{what}_{verb}"))
                self.log.info(f"MindFlow: {say(self.notice, ui_words())}")

    # ---------------------------------------------------------------- buttons and hotkeys (UI thread)
    def toggle_session(self, shown_label: str | None = None) -> None:
        """The Start/Stop button (``shown_label``: what the panel showed when it was pressed — the panel may be
        older than the state: it acts as labelled) or the start/stop hotkey (``None``: toggles)."""
        active = self.host is not None and self.host.active
        now = time.monotonic()
        if shown_label is not None and now - self._last_press[0] < DOUBLE_PRESS_S and active == self._last_press[1]:
            self.notice = Said("notice.double_press_active" if active else "notice.double_press_idle",
                               seconds=f"{DOUBLE_PRESS_S:g}")
            return
        self._toggle(shown_label)
        if shown_label is not None:    # the press and the state it left (a recording may change it meanwhile)
            self._last_press = (now, self.host is not None and self.host.active)

    def _toggle(self, shown_label: str | None) -> None:
        active = self.host is not None and self.host.active
        if shown_label is not None:
            wants_start = shown_label.lower().startswith("start")
            if wants_start and active:
                reason = self.session_reason
                self.notice = Said("notice.already_running",
                                   reason=Said(status.REASON_KEYS[reason]) if reason in status.REASON_KEYS else reason)
                return
            if not wants_start and not active:
                self.notice = (Said("notice.none_running_last", result=self.last_result) if self.last_result
                               else Said("notice.none_running"))
                return
        if not active and self.lifecycle.active:
            # an output runs but no session (no webcam was chosen then): the button starts it, tied to the output
            self._start_session("started with the button while OBS is live")
            return
        if not active:
            if self.host is None:
                self.notice = Said("notice.no_model")
                return
            if not self.settings.video_source:
                self.notice = Said("notice.choose_webcam")
                return
        self.notice = ""
        self.run(self.lifecycle.button())

    def reset_session(self) -> None:
        if self.host is None or not self.host.active:
            self.notice = Said("notice.no_session_to_reset")
            self.log.info("MindFlow: no session to reset")
            return
        self.log.info("MindFlow: session reset: its report is written and a new session starts")
        self._finished(self.host.reset_session())
        self.session_since = datetime.now()

    def toggle_pause(self) -> None:
        if self.host is None:
            return
        self.host.set_paused(not self.host.paused)
        self.text.invalidate()
        self.log.info("MindFlow: analysis " + ("paused: nothing is captured" if self.host.paused else "resumed"))

    # ---------------------------------------------------------------- graphics thread
    def tick(self) -> None:
        """``script_tick``: capture at the analysis rate and hand frames to the engine. Never blocks."""
        if self.closed or self._capture_failed:
            return
        self.log.bind_thread()
        host = self.host
        try:
            got = self.capture.tick(host is not None and host.capturing)
        except Exception as exc:  # noqa: BLE001 - never raise every frame into OBS: stop capturing, say why
            self._capture_failed = f"{type(exc).__name__}: {exc}"
            self.set_problem("capture", Said("problem.capture_stopped", detail=self._capture_failed))
            return
        if got is not None and host is not None:
            host.submit(*got)

    def text_timer(self) -> None:
        """Every timer call (``TEXT_UPDATE_HZ`` times a second): run UI work that had no UI-thread queue, flush
        queued log lines, log the settings once they settled, follow a source rename, queue the way back of a
        moment's action once due, keep the text source showing the session (or the idle text outside one)."""
        if self.closed:
            return
        self.log.bind_thread()
        while self.pending_ui:
            self.pending_ui.popleft()()
        self.log.flush()
        if self._settings_changed_at is not None and time.monotonic() - self._settings_changed_at >= \
                SETTINGS_LOG_QUIET_S:
            self._log_settings()
        self.settings, changes = follow_renames(self.renames, self.capture, self.settings, self.settings_data,
                                                self.log.info)
        if changes:
            self.text.settings = self.settings
            self.moments.configure(self.settings)
        self.moments.tick()
        host = self.host
        wanted = host is not None and host.capturing
        self.set_problem("source", self.capture.problem if wanted else "")
        rec = host.recorder if host is not None and host.active else None   # a failed checkpoint, until one works
        self.set_problem("checkpoint", Said.of(rec.last_error) if rec is not None and rec.last_error else "")
        self.text.update(host)

    # ---------------------------------------------------------------- what the panel shows (UI thread)
    def panel_state(self) -> status.PanelState:
        """This load's state as the panel shows it, now (an immutable value; :mod:`obs_mindflow.obs.status`)."""
        h, o, s, hist = self.host, self.overlay, self.settings, self.last_sessions
        view = h.view() if h is not None and h.active else None
        labels, b = (h.card.labels, h.baseline) if h is not None else ((), None)
        return status.PanelState(
            s, model_loaded=h is not None, active=view is not None, paused=h is not None and h.paused, view=view,
            values=views.text_values(view) if view is not None else None, baseline=b.describe(ui_words()) if b else "",
            calibration=h.calibration_progress() if h is not None else None, baseline_created=b.created if b else "",
            calibration_note=self.calibration.note, labels=labels, session_since=self.session_since,
            session_reason=self.session_reason, manual=self.lifecycle.manual, live=self.lifecycle.live,
            overlay_url=o.url if o is not None else "", dock_url=(o.dock_url or "") if o is not None else "",
            browser_source=self.capabilities.browser_source, problems=tuple(self.problems.items()),
            last_error=self.last_error, notice=self.notice, last_result=self.last_result,
            has_last_report=self.last_report is not None, history_text=hist.text, history_problem=hist.problem,
            has_history_page=hist.page is not None, template_problem=self.text.problem,
            moment_items=self.moments.panel_items(s, labels or None))

    def panel_view(self, now: datetime | None = None) -> PanelView:
        """What the panel shows now (:mod:`obs_mindflow.obs.status`)."""
        return status.panel_view(self.panel_state(), now)
