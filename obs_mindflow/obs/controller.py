"""The MindFlow script's state for one load: created in ``script_load``, closed in ``script_unload``.

Part of the OBS adapter (imports obspython). It owns the session lifecycle (pure state machine), the engine
(:class:`~obs_mindflow.engine.host.SessionHost`, one per loaded model), the overlay server, the source capture, the
personal baseline and what the panel shows (:meth:`MindFlowScript.panel_view`), and turns OBS's callbacks into calls
on them. Nothing here survives a reload: the entry module creates a new :class:`MindFlowScript` in every
``script_load`` (the entry module owns the hotkeys, the timer and the frontend callback).

Threads: ``load``/``update``/``unload``/buttons/hotkeys/frontend events run on OBS's UI thread (the frontend routes
hotkeys there); ``tick`` and the timer (``text_timer``) run on OBS's graphics thread (the scripting host runs Python
timers from its tick). Neither blocks: the heavy work is in the engine's worker thread, whose log lines are queued
and written by the next timer call. The engine's events (a calibration's outcome) arrive on its worker thread and
are handed to the UI thread (``run_on_ui_thread``) before they touch OBS (the settings object).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import textwrap
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator

import obspython as obs

from ..engine import DetectorError, ModelCardError, ModelLoadError, resolve_model_dir, views
from ..engine.baseline import Baseline, BaselineError
from ..engine.host import SessionHost, recover_sessions
from ..engine.reports.files import FinishedSession
from ..engine.reports.storage import ReportError
from ..engine.session.events import CALIBRATION_DONE, CALIBRATION_FAILED, Event
from ..engine.session.summary import format_duration, format_percent
from ..overlay.server import OverlayError, OverlayServer
from . import sources, uitask
from .baselines import BACKUP_KEY, BaselineStore
from .capabilities import detect as detect_capabilities
from .capture import SourceCapture
from .desktop import open_folder
from .lifecycle import Action, SessionLifecycle, Transition
from .obsdata import read_settings
from .panel import ERROR, NORMAL, WARNING, Item, PanelView
from .settings import BASELINES_KEY, CUSTOM_MODEL, Settings, validate
from .template import TemplateError, check_template, private_placeholders_used, render

_OBS_LEVEL = {logging.DEBUG: "LOG_DEBUG", logging.INFO: "LOG_INFO", logging.WARNING: "LOG_WARNING",
              logging.ERROR: "LOG_ERROR", logging.CRITICAL: "LOG_ERROR"}

SETTINGS_LOG_QUIET_S = 1.0
LOG_WIDTH = 120                 # characters per script-log line (wrapped beyond)      # the settings line is logged once the settings stopped changing for this long

REPORT_FILE = "report.html"


class ScriptLog:
    """``script_log`` for the threads OBS calls the script on; lines from other threads (the engine's worker, the
    overlay server, the checkpoint writer) are queued and written by :meth:`flush` from the next timer call, because
    ``script_log`` only knows the calling script inside OBS's own callbacks."""

    def __init__(self) -> None:
        self._threads: set[int] = set()
        self._queue: collections.deque = collections.deque(maxlen=500)
        self._local = threading.local()
        self.dropped = 0

    def bind_thread(self) -> None:
        """Mark the calling thread as one OBS runs the script on (UI thread at load, graphics thread at tick)."""
        self._threads.add(threading.get_ident())

    def log(self, level: int, message: str) -> None:
        if threading.get_ident() in self._threads and not getattr(self._local, "queued", False):
            self._write(level, message)
        else:
            self.queue(level, message)

    @contextlib.contextmanager
    def queued(self) -> Iterator[None]:
        """Queue every line of the calling thread meanwhile: for work OBS does not run as one of the script's
        callbacks (a UI-thread task), where ``script_log`` would not know the script ("[Unknown Script]")."""
        before = getattr(self._local, "queued", False)
        self._local.queued = True
        try:
            yield
        finally:
            self._local.queued = before

    def queue(self, level: int, message: str) -> None:
        """Written by the next :meth:`flush` (from a call outside OBS's script callbacks: a UI-thread task)."""
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append((level, message))

    def debug(self, message: str) -> None:
        self.log(logging.DEBUG, message)

    def info(self, message: str) -> None:
        self.log(logging.INFO, message)

    def warning(self, message: str) -> None:
        self.log(logging.WARNING, message)

    def flush(self) -> None:
        while self._queue:
            try:
                level, message = self._queue.popleft()
            except IndexError:
                break
            self._write(level, message)

    @staticmethod
    def _write(level: int, message: str) -> None:
        """One ``script_log`` call per line; long prose lines are wrapped (OBS's Script Log window does not wrap);
        a line naming a path or a command stays whole, so it can be copied."""
        obs_level = getattr(obs, _OBS_LEVEL.get(level, "LOG_INFO"))
        for line in str(message).splitlines() or [""]:
            pieces = [line] if len(line) <= LOG_WIDTH or "/" in line or "\\" in line else textwrap.wrap(
                line, LOG_WIDTH, subsequent_indent="    ", break_long_words=False, break_on_hyphens=False)
            for piece in pieces or [""]:
                obs.script_log(obs_level, piece)


class _LogHandler(logging.Handler):
    """Forwards the package's ``logging`` records (engine, report, overlay) to the script log."""

    def __init__(self, sink: ScriptLog) -> None:
        super().__init__(logging.INFO)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.sink.log(record.levelno, f"MindFlow {record.name.rsplit('.', 1)[-1]}: {record.getMessage()}")
        except Exception:  # noqa: BLE001 - logging must never raise into the engine
            pass


class _ViewerOverlay:
    """What the engine publishes to: the overlay server, with the private numbers left out while the streamer
    hides their negative share from viewers (the page is on stream)."""

    def __init__(self, server: OverlayServer, hide_negative: bool) -> None:
        self.server = server
        self.hide_negative = hide_negative

    def publish(self, state: dict) -> None:
        self.server.publish(views.viewer_overlay_state(state, self.hide_negative))


def result_line(finished: FinishedSession, min_report_s: float = 0.0) -> str:
    """One line for the panel and the log: how long, how much face, the main expressions, where the report is."""
    s = finished.snapshot
    parts = []
    if s is not None and s.started and s.duration_s > 0:
        parts.append(format_duration(s.duration_s))
        parts.append(f"face in view {format_percent(s.coverage)}")
        if s.face_s > 0:
            top = [f"{label} {format_percent(v)}" for label, v in s.profile()[:2] if format_percent(v) != "0 %"]
            if top:
                parts.append(", ".join(top))
            parts.append(f"negative {format_percent(s.negative_share)}")
    else:
        parts.append("nothing was analysed")
    if finished.error is not None:
        parts.append(f"report NOT saved: {finished.error}")
    elif finished.folder is not None:
        parts.append(f"report: {finished.folder / REPORT_FILE}")
    elif s is not None and s.started and s.duration_s > 0 and s.duration_s < min_report_s:
        parts.append(f"no report (shorter than {min_report_s:g} s)")
    else:
        parts.append("no report")
    return "; ".join(parts)


class MindFlowScript:
    """Everything one load of the script holds."""

    def __init__(self) -> None:
        self.log = ScriptLog()
        self.settings = Settings()
        self.problems: dict[str, str] = {}
        self.last_error = ""
        self.notice = ""            # the outcome of the last button or hotkey, shown in the panel
        self.template_problem = ""  # the typed template's problem (the panel only: it is typed key by key)
        self.lifecycle = SessionLifecycle()
        self.host: SessionHost | None = None
        self.overlay: OverlayServer | None = None
        self._viewer_overlay: _ViewerOverlay | None = None
        self.capture = SourceCapture(log=lambda m: self.log.info(f"MindFlow: {m}"))
        self.capabilities = detect_capabilities()
        self._settings_data = None
        self._engine_key: tuple | None = None
        self._template = self.settings.template      # the template in use (the last usable one typed)
        self._working_template = ""                  # the last template that rendered
        self._last_text: str | None = None
        self._text_target = ""
        self._capture_failed = ""
        self._handler: _LogHandler | None = None
        self._old_level = logging.NOTSET
        self._settings_changed_at: float | None = None
        self._logged_settings: Settings | None = None
        self._session_since: datetime | None = None
        self._session_reason = ""
        self.last_result = ""
        self.last_report: Path | None = None
        self.calibration_note = ""
        self._calibration_auto = False
        self._pending_events: collections.deque = collections.deque()   # UI work when no UI-thread queue exists
        self._unsubscribe: Callable[[], None] | None = None
        self.panel_refreshed_at = datetime.now()
        self.closed = False

    # ================================================================ problems (shown in the panel)
    def set_problem(self, area: str, message: str) -> None:
        """Record (and log once, as a warning) the current problem of ``area``; ``""`` clears it."""
        old = self.problems.get(area, "")
        if message == old:
            return
        if message:
            self.problems[area] = message
            self.last_error = message
            self.log.warning(f"MindFlow {area}: {message}")
        else:
            self.problems.pop(area, None)
            if self.last_error == old:
                remaining = list(self.problems.values())
                self.last_error = remaining[-1] if remaining else ""

    # ================================================================ load / update / save / unload
    def load(self, data: Any, bind: bool = True) -> None:
        """``bind``: the calling thread is one OBS runs the script's callbacks on (``script_load``); ``False`` for a
        start from a UI-thread task (after the install button): the log lines are then queued for the timer."""
        if bind:
            self.log.bind_thread()
        self.log.info(self.capabilities.log_line())   # which OBS, and its chapters, Browser source, canvases
        obs.obs_data_addref(data)
        self._settings_data = data
        pkg = logging.getLogger("obs_mindflow")
        self._handler = _LogHandler(self.log)
        pkg.addHandler(self._handler)
        self._old_level = pkg.level       # restored at unload: the logger outlives this load
        if pkg.level == logging.NOTSET or pkg.level > logging.INFO:
            pkg.setLevel(logging.INFO)
        self.apply(read_settings(data), first=True)
        recover_sessions(self.settings.report_root(), self.log.log)
        self.run(self.lifecycle.loaded(obs.obs_frontend_streaming_active(), obs.obs_frontend_recording_active()))

    def update(self, data: Any) -> None:
        if not self.closed:
            self.apply(read_settings(data))

    def apply(self, raw: dict[str, Any], first: bool = False) -> None:
        """Validate and apply settings (OBS calls this on every key typed in the panel: quick and quiet): keep the
        last usable template while the typed one has a problem, reload the model when it changed, start/stop the
        overlay, re-point the capture. The settings line is logged once they stopped changing (the timer)."""
        new, problems = validate(raw)
        self.set_problem("settings", "; ".join(problems))
        self.template_problem = check_template(new.template)
        if self.template_problem:
            new = dataclasses.replace(new, template=self._template)
        self._template = new.template
        old, self.settings = self.settings, new
        if first or new != old:
            self._settings_changed_at = time.monotonic() - (SETTINGS_LOG_QUIET_S if first else 0.0)
        if first:
            self._log_settings()
        if (new.template, new.hide_negative_share, new.idle_text, new.text_source) != (
                old.template, old.hide_negative_share, old.idle_text, old.text_source):
            self._last_text = None
        if old.text_source and new.text_source != old.text_source and not first:
            sources.set_text(old.text_source, old.idle_text)    # the source left behind shows no stale emotion
        self.capture.source_name = new.video_source
        self.capture.interval_s = 1.0 / new.rate_hz
        self._capture_failed = ""
        self._apply_overlay()
        if self.host is None or new.engine_key() != self._engine_key:
            self._open_engine()
        else:
            self.host.report_root = new.report_root()
            self.host.nudge = new.nudge_enabled
            self.host.min_report_s = float(new.min_report_s)
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
            self.log.info("MindFlow: the model changed; ending the current session with the old model")
            self._finished(self.host.close())
            self._drop_host()
        folder = resolve_model_dir(s.model_choice)
        t0 = time.perf_counter()
        try:
            host = SessionHost.open(folder, report_root=s.report_root(), nudge=s.nudge_enabled,
                                    overlay=self._viewer_overlay, log=self.log.log,
                                    min_report_s=float(s.min_report_s))
        except (ModelCardError, ModelLoadError, DetectorError, OSError, ValueError) as exc:
            self.set_problem("model", f"no model loaded: {exc}")
            return
        self.set_problem("model", "")
        self.host = host
        self._unsubscribe = host.bus.subscribe(self._on_calibration_event, (CALIBRATION_DONE, CALIBRATION_FAILED))
        self.log.info(f"MindFlow: model '{host.card.name}' loaded from {folder} in "
                      f"{(time.perf_counter() - t0) * 1e3:.0f} ms")
        self._apply_stored_baseline()
        if self.lifecycle.active:
            self._start_session("the session goes on with the new model")

    def _drop_host(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.host = None

    def _apply_overlay(self) -> None:
        s = self.settings
        if self.overlay is not None and (not s.overlay_enabled or self.overlay.requested_port != s.overlay_port):
            self.overlay.stop()
            self.overlay = None
            self._viewer_overlay = None
            self.log.info("MindFlow: overlay stopped")
        if s.overlay_enabled and self.overlay is None:
            server = OverlayServer(port=s.overlay_port)
            try:
                server.start()
            except OverlayError as exc:
                self.set_problem("overlay", str(exc))
            else:
                self.overlay = server
                self._viewer_overlay = _ViewerOverlay(server, s.hide_negative_share)
                self.set_problem("overlay", "")
                self.log.info(f"MindFlow: overlay at {server.url} (add it as a Browser source, about 420x360)")
        if not s.overlay_enabled:
            self.set_problem("overlay", "")
        if self._viewer_overlay is not None:
            self._viewer_overlay.hide_negative = s.hide_negative_share
        if self.host is not None:
            self.host.overlay = self._viewer_overlay

    def unload(self) -> None:
        """Finish the session (summary logged, report written), join every thread, destroy the graphics objects,
        leave the idle text on the text source, release every OBS object. Idempotent."""
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
            if self.overlay is not None:
                self.overlay.stop()
                self.overlay = None
            self._write_text(self.settings.idle_text, quiet=True)
            self.log.flush()
            if self._handler is not None:
                pkg = logging.getLogger("obs_mindflow")
                pkg.removeHandler(self._handler)
                pkg.setLevel(self._old_level)
                self._handler = None
            if self._settings_data is not None:
                obs.obs_data_release(self._settings_data)
                self._settings_data = None

    # ================================================================ sessions
    def run(self, t: Transition) -> FinishedSession | None:
        """Carry out a lifecycle transition."""
        if t.action is Action.START:
            self._start_session(t.reason)
        elif t.action is Action.FINISH:
            self._session_since = None
            if self.host is not None and self.host.active:
                self.log.info(f"MindFlow: session ended ({t.reason})")
                finished = self.host.finish_session()
                self._finished(finished)
                # the idle text at once (OBS may be exiting: it saves the scene collection before the next timer)
                self._write_text(self.settings.idle_text, quiet=True)
                return finished
            self.log.info(f"MindFlow: {t.reason}; no session was running")
        return None

    def _start_session(self, reason: str) -> None:
        self._last_text = None
        if self.host is None:
            self.log.warning(f"MindFlow: session not started ({reason}): no model is loaded — {self.last_error}")
            return
        if not self.settings.video_source:
            self.notice = ("OBS started an output, but no webcam is chosen: choose it in 'Webcam (video source)' "
                           "below and the session starts")
            self.log.info(f"MindFlow: no session ({reason}): no webcam is chosen in MindFlow's settings")
            return
        self.host.start_session(source=self.settings.video_source)
        self._session_since, self._session_reason = datetime.now(), reason
        if "no webcam" in self.notice:
            self.notice = ""
        self.log.info(f"MindFlow: session started ({reason}); analysing '{self.settings.video_source}' at "
                      f"{self.settings.rate_hz:g} Hz")
        if self.settings.calibrate_each_session and not self.host.calibrating:
            self.start_calibration(auto=True)

    def _finished(self, finished: FinishedSession | None) -> None:
        """A session ended: its summary in the log, its one-line result in the panel and the log."""
        if finished is None:
            return
        for line in finished.summary_text.splitlines():
            self.log.info(line)
        self.last_result = result_line(finished, self.settings.min_report_s)
        self.last_report = (finished.folder / REPORT_FILE) if finished.folder is not None and finished.ok else None
        self.log.info(f"MindFlow: session result: {self.last_result}")
        self.set_problem("report", str(finished.error) if finished.error else "")

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
            self.run(handlers[event]())

    # ---------------------------------------------------------------- buttons and hotkeys (UI thread)
    def toggle_session(self, shown_label: str | None = None) -> None:
        """The Start/Stop button (``shown_label``: what the panel showed when it was pressed — the panel may be
        older than the state: it acts as labelled) or the start/stop hotkey (``None``: toggles)."""
        active = self.host is not None and self.host.active
        if shown_label is not None:
            wants_start = shown_label.lower().startswith("start")
            if wants_start and active:
                self.notice = "a session is already running (" + self._session_reason + "); it goes on"
                return
            if not wants_start and not active:
                self.notice = "no session was running" + (f" (last one: {self.last_result})" if self.last_result
                                                          else "")
                return
        if not active and self.lifecycle.active:
            # an output runs but no session (no webcam was chosen then): the button starts it, tied to the output
            self._start_session("started with the button while OBS is live")
            return
        if not active:
            if self.host is None:
                self.notice = "no model is loaded, so no session can start: see the error above"
                return
            if not self.settings.video_source:
                self.notice = ("choose your webcam first: 'Webcam (video source)' below lists the sources that can "
                               "show a face")
                return
        self.notice = ""
        self.run(self.lifecycle.button())

    def reset_session(self) -> None:
        if self.host is None or not self.host.active:
            self.notice = "no session to reset"
            self.log.info("MindFlow: no session to reset")
            return
        self.log.info("MindFlow: session reset: its report is written and a new session starts")
        self._finished(self.host.reset_session())
        self._session_since = datetime.now()

    def toggle_pause(self) -> None:
        if self.host is None:
            return
        self.host.set_paused(not self.host.paused)
        self._last_text = None
        self.log.info("MindFlow: analysis " + ("paused: nothing is captured" if self.host.paused else "resumed"))

    def write_report_now(self) -> None:
        if self.host is None:
            self.set_problem("report", "no model is loaded, so there is no session to report")
            return
        try:
            path = self.host.write_report_now()
        except (RuntimeError, ReportError, OSError) as exc:
            self.set_problem("report", str(exc))
        else:
            self.set_problem("report", "")
            rec = self.host.recorder
            if rec is not None:
                rec.min_report_s = 0.0     # asked for: this session keeps its report however short it is
            self.last_report = path
            self.notice = f"report of the session so far written (kept at the end): {path}"
            self.log.info(f"MindFlow: {self.notice}")

    def open_report_folder(self) -> None:
        problem = open_folder(self.settings.report_root())
        self.set_problem("report folder", problem)

    def open_last_report(self) -> None:
        path = self.last_report
        if path is None or not path.is_file():
            self.notice = "no report to open yet" if path is None else f"the report {path} is gone"
            return
        self.notice = ""
        self.set_problem("report folder", open_folder(path))

    def add_overlay_source(self) -> str:
        if self.overlay is None:
            msg = "tick 'Overlay page' first (Advanced), then add the Browser source"
        else:
            msg = sources.add_browser_source(self.overlay.url)
        self.notice = msg
        self.log.info(f"MindFlow overlay: {msg}")
        return msg

    # ---------------------------------------------------------------- calibration (a personal baseline)
    def toggle_calibration(self) -> None:
        """The calibrate button or hotkey: start a calibration, or cancel the one running."""
        if self.host is not None and self.host.calibrating:
            self.host.cancel_calibration()
            self.calibration_note = "calibration cancelled; the previous calibration (if any) still applies"
            self.log.info(f"MindFlow: {self.calibration_note}")
            return
        self.start_calibration()

    def start_calibration(self, auto: bool = False) -> None:
        host = self.host
        if host is None:
            self.calibration_note = "no model is loaded, so there is nothing to calibrate: see the error above"
            return
        if not self.settings.video_source:
            self.calibration_note = "choose your webcam first ('Webcam (video source)' below), then calibrate"
            return
        seconds = self.settings.calibration_s
        try:
            host.start_calibration(seconds=seconds, source=self.settings.video_source)
        except (BaselineError, RuntimeError) as exc:
            self.calibration_note = f"cannot calibrate: {exc}"
            self.log.info(f"MindFlow: {self.calibration_note}")
            return
        self._calibration_auto = auto
        self.calibration_note = ""
        self.log.info(f"MindFlow: calibrating for {seconds:g} s: look at the camera as you do when streaming "
                      f"(talking is fine)" + (" — at the start of the session" if auto else ""))

    def clear_calibration(self) -> None:
        host = self.host
        if host is None:
            return
        if host.calibrating:
            host.cancel_calibration()
        host.clear_baseline()
        store = self._store()
        if store.get(host.card.name) is not None:
            self._save_store(store, store.remove(host.card.name))
        self.calibration_note = f"calibration for '{host.card.name}' cleared: the readings are the model's own"
        self.log.info(f"MindFlow: {self.calibration_note}")

    def _on_calibration_event(self, event: Event) -> None:
        """On the engine's worker thread: hand the outcome to the UI thread (it writes the settings object)."""
        def handle() -> None:
            with self.log.queued():
                self._calibration_outcome(event)
        if not uitask.run_on_ui_thread(handle):
            self._pending_events.append(handle)

    def _calibration_outcome(self, event: Event) -> None:
        if self.closed or self.host is None:
            return
        if self._viewer_overlay is not None:
            # the outcome on the overlay page now: no frames are analysed after a calibration outside a session
            self._viewer_overlay.publish(self.host.overlay_state())
        auto = self._calibration_auto
        if event.kind == CALIBRATION_DONE and isinstance(event.data, dict):
            store = self._store()
            self._save_store(store, store.put(self.host.card.name, event.data))
            self.calibration_note = ""
            self.log.info(f"MindFlow: {event.message} — stored for model '{self.host.card.name}'")
        else:
            self.calibration_note = f"calibration refused: {event.message}"
            # asked for by the streamer: a warning (the Script Log opens); at a session's start: quietly
            self.log.log(logging.INFO if auto else logging.WARNING, f"MindFlow: {self.calibration_note}")

    def _store(self) -> BaselineStore:
        text = obs.obs_data_get_string(self._settings_data, BASELINES_KEY) if self._settings_data is not None else ""
        return BaselineStore(text)

    def _save_store(self, before: BaselineStore, text: str) -> None:
        """Write the baselines setting (UI thread); an unreadable earlier text is kept under BACKUP_KEY first."""
        data = self._settings_data
        if data is None:
            return
        old = obs.obs_data_get_string(data, BASELINES_KEY)
        if old and BaselineStore(old).unreadable:
            obs.obs_data_set_string(data, BACKUP_KEY, old)
        obs.obs_data_set_string(data, BASELINES_KEY, text)

    def _apply_stored_baseline(self) -> None:
        """The stored baseline of the loaded model, applied — unless it is unreadable or belongs to another model or
        label order: then uncalibrated, the reason in the panel and the log, the stored text left as it is."""
        host = self.host
        if host is None:
            return
        store = self._store()
        name = host.card.name
        if store.unreadable:
            self.calibration_note = store.problem
            self.log.warning(f"MindFlow: {store.problem}")
            return
        doc = store.get(name)
        if doc is None:
            return
        try:
            baseline = Baseline.from_dict(doc, where=f"the stored calibration for '{name}'")
            host.apply_baseline(baseline)
        except BaselineError as exc:
            self.calibration_note = f"stored calibration not applied: {exc}"
            self.log.warning(f"MindFlow: {self.calibration_note}")
        else:
            self.calibration_note = ""
            self.log.info(f"MindFlow: stored calibration applied to '{name}' ({baseline.describe()})")

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
            self._capture_failed = f"capture stopped: {type(exc).__name__}: {exc}"
            self.set_problem("capture", self._capture_failed + " (change a setting to retry)")
            return
        if got is not None and host is not None:
            host.submit(*got)

    def text_timer(self) -> None:
        """Every 250 ms: flush queued log lines, log the settings once they settled, follow a source rename, keep the
        text source showing the session (or the idle text outside one)."""
        if self.closed:
            return
        self.log.bind_thread()
        while self._pending_events:
            self._pending_events.popleft()()
        self.log.flush()
        if self._settings_changed_at is not None and time.monotonic() - self._settings_changed_at >= \
                SETTINGS_LOG_QUIET_S:
            self._log_settings()
        if self.capture.renamed_to:
            self._follow_rename(self.capture.renamed_to)
        host = self.host
        wanted = host is not None and host.capturing
        self.set_problem("source", self.capture.problem if wanted else "")
        self._update_text()

    def session_text(self) -> str | None:
        """What the text source should show now: the rendered template during a session (the private placeholders
        blank while hidden from viewers), the idle text outside one; ``None``: leave it (the template cannot be
        rendered and no earlier one could)."""
        host = self.host
        if host is None or not host.active:
            return self.settings.idle_text
        values = views.viewer_text_values(host.values(), self.settings.hide_negative_share)
        candidates = [self._template]
        if self._working_template and self._working_template != self._template:
            candidates.append(self._working_template)
        for template in candidates:
            try:
                text = render(template, values)
            except TemplateError as exc:     # a format only rendering can refuse ({emotion:d}): the panel says so
                if template == self._template:
                    self.template_problem = str(exc)
                continue
            self._working_template = template
            return text
        return None

    def _update_text(self) -> None:
        name = self.settings.text_source
        if name != self._text_target:
            self._text_target, self._last_text = name, None
        if not name:
            self.set_problem("text", "")
            return
        text = self.session_text()
        if text is not None and text != self._last_text:
            self._write_text(text, quiet=not (self.host is not None and self.host.active))

    def _write_text(self, text: str, quiet: bool = False) -> None:
        """Write the text source. ``quiet``: the idle text — a missing source is not a problem then (OBS loads
        scripts before the scene collection's sources and removes the sources before unloading scripts); the next
        timer call tries again."""
        name = self.settings.text_source
        if not name:
            return
        problem = sources.set_text(name, text)
        if not (quiet and problem):
            self.set_problem("text", problem)
        self._last_text = None if problem else text

    def _follow_rename(self, new: str) -> None:
        if self._settings_data is not None:
            obs.obs_data_set_string(self._settings_data, "video_source", new)
        self.settings = dataclasses.replace(self.settings, video_source=new)
        self.capture.follow_rename(new)

    # ---------------------------------------------------------------- what the panel shows (UI thread)
    def status_text(self) -> str:
        """The status in one line (the log, the script description)."""
        return " ".join(self._status_lines()[0])

    def _status_lines(self) -> tuple[list[str], str]:
        """The status lines and their stable key (without times and rates)."""
        host = self.host
        lines, key = [], []
        if host is None:
            lines.append("No model is loaded: see the error below.")
            key.append("no model")
        elif host.active:
            since = self._session_since.strftime("%H:%M:%S") if self._session_since else "?"
            paused = " — paused: nothing is captured" if host.paused else ""
            lines.append(f"● Session running since {since} ({self._session_reason}){paused}.")
            key.append(f"running {since} {host.paused}")
            v = host.view()
            rate = f"analysing {v.rate_hz:.1f} frames per second"
            if v.paused:
                face = "paused"
            elif v.stale:
                face = f"no picture from '{self.settings.video_source}' — is the webcam on?"
            elif v.face:
                face = "your face is found"
            else:
                face = "no face found yet — face the camera"
            lines.append(f"{rate}; {face}.")
            key.append(face)
        else:
            live = self.lifecycle.live
            lines.append("No session running." + (" OBS is live but no webcam is chosen." if live and not
                                                   self.settings.video_source else
                                                   " One starts when you stream or record, or with Start session."))
            key.append(f"idle {live}")
        if host is not None:
            progress = host.calibration_progress()
            if progress is not None:
                lines.append(f"Calibrating: {progress.fraction * 100:.0f} % ({progress.elapsed_s:.0f} of "
                             f"{progress.seconds:.0f} s, {progress.face_frames} frames with your face) — look at the "
                             f"camera as when streaming; talking is fine.")
                key.append("calibrating")
            elif host.baseline is not None:
                lines.append(f"Calibrated to your face ({host.baseline.describe()}).")
                key.append("calibrated " + host.baseline.created)
            else:
                lines.append("Not calibrated: press 'Calibrate to my face' for readings true to your face.")
                key.append("uncalibrated")
            if self.calibration_note and progress is None:
                lines.append(self.calibration_note[0].upper() + self.calibration_note[1:] + ".")
                key.append(self.calibration_note)
        if self.overlay is not None:
            lines.append(f"Overlay page: {self.overlay.url}")
            key.append(self.overlay.url)
        return lines, "|".join(key)

    def panel_view(self, now: datetime | None = None) -> PanelView:
        """What the panel shows now (:mod:`obs_mindflow.obs.panel`)."""
        now = now or datetime.now()
        s = self.settings
        host = self.host
        lines, key = self._status_lines()
        key += "|" + "|".join(f"{k}:{v}" for k, v in sorted(self.problems.items()))
        status = "\n".join(lines) + f"\nStatus as of {now:%H:%M:%S} — press Refresh status to update."
        items: dict[str, Item] = {"status": Item(status)}
        active = host is not None and host.active
        setup = ""
        if not s.video_source:
            setup = ("First setup: choose your webcam in 'Webcam (video source)' below, and a text source if you want "
                     "your emotion on stream; then press Start session to try it (no stream or recording needed).")
        if self.notice:
            setup = (setup + "\n" if setup else "") + self.notice[0].upper() + self.notice[1:] + "."
        items["setup"] = Item(setup, visible=bool(setup), kind=WARNING if not s.video_source else NORMAL)
        if self.problems:
            others = [m for m in self.problems.values() if m != self.last_error]
            err = "Last error: " + self.last_error + (f"  (also: {'; '.join(others)})" if others else "")
        else:
            err = ""
        items["last_error"] = Item(err, visible=bool(err), kind=ERROR)
        for name in ("deps", "install_deps", "check_deps"):
            items[name] = Item(visible=False)
        items["session"] = Item("Stop session" if active else "Start session", visible=host is not None)
        items["refresh"] = Item("Refresh status")
        calibrating = host is not None and host.calibrating
        items["calibrate"] = Item("Cancel calibration" if calibrating else
                                  f"Calibrate to my face ({s.calibration_s:g} s)", visible=host is not None)
        items["clear_calibration"] = Item(visible=host is not None and host.baseline is not None and not calibrating)
        result = f"Last session: {self.last_result}" if self.last_result else ""
        items["result"] = Item(result, visible=bool(result))
        items["open_report"] = Item(visible=self.last_report is not None)
        for name in ("video_source", "text_source", "template", "hide_negative_share", "idle_text", "rate_hz", "model",
                     "calibration_s", "calibrate_each_session", "nudge_enabled", "report_dir", "min_report_s",
                     "open_reports", "advanced", "overlay_enabled"):
            items[name] = Item(visible=True)
        note, kind = "", NORMAL
        if self.template_problem:
            note, kind = (f"Not used yet (the text source keeps the last usable template): "
                          f"{self.template_problem}"), ERROR
        elif s.hide_negative_share and private_placeholders_used(s.template):
            hidden = ", ".join("{" + p + "}" for p in private_placeholders_used(s.template))
            note = (f"{hidden} shows nothing on stream while 'Hide the negative share from viewers' is on.")
        items["template_note"] = Item(note, visible=bool(note), kind=kind)
        items["overlay_port"] = Item(visible=s.overlay_enabled)
        if self.overlay is not None:
            url = f"Overlay URL: {self.overlay.url}"
            if not self.capabilities.browser_source:
                url += (" — this OBS has no Browser source: open the URL in a browser window and capture that window "
                        "(Window Capture)")
        else:
            url = ""
        items["overlay_url"] = Item(url, visible=bool(url))
        items["add_overlay"] = Item(visible=self.overlay is not None and self.capabilities.browser_source)
        items["model_folder"] = Item(visible=s.model == CUSTOM_MODEL)
        items["write_report"] = Item(visible=active)
        items["reset"] = Item(visible=active)
        return PanelView(items, key)
