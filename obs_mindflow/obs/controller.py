"""The MindFlow script's state for one load: created in ``script_load``, closed in ``script_unload``.

Part of the OBS adapter (imports obspython). It owns the session lifecycle (pure state machine), the engine
(:class:`~obs_mindflow.engine.host.SessionHost`, one per loaded model), the overlay server, the source capture and the
hotkeys, and turns OBS's callbacks into calls on them. Nothing here survives a reload: the entry module creates a
new :class:`MindFlowScript` in every ``script_load``.

Threads: ``load``/``update``/``unload``/buttons/frontend events run on OBS's UI thread; ``tick`` and the timer
(``text_timer``) run on OBS's graphics thread (the scripting host runs Python timers from its tick). Neither blocks:
the heavy work is in the engine's worker thread, whose log lines are queued and written by the next timer call.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from typing import Any, Callable

import obspython as obs

from ..engine import DetectorError, ModelCardError, ModelLoadError, resolve_model_dir
from ..engine.host import SessionHost, recover_sessions
from ..engine.reports.files import FinishedSession
from ..engine.reports.storage import ReportError
from ..overlay.server import OverlayError, OverlayServer
from . import sources
from .capabilities import detect as detect_capabilities
from .capture import SourceCapture
from .desktop import open_folder
from .hotkeys import Hotkeys
from .lifecycle import Action, SessionLifecycle, Transition
from .obsdata import read_settings
from .settings import Settings, validate
from .template import TemplateError, render

_OBS_LEVEL = {logging.DEBUG: "LOG_DEBUG", logging.INFO: "LOG_INFO", logging.WARNING: "LOG_WARNING",
              logging.ERROR: "LOG_ERROR", logging.CRITICAL: "LOG_ERROR"}

TEMPLATE_ERROR_TEXT = "MindFlow: text template error (see the script's settings)"


class ScriptLog:
    """``script_log`` for the threads OBS calls the script on; lines from other threads (the engine's worker, the
    overlay server, the checkpoint writer) are queued and written by :meth:`flush` from the next timer call, because
    ``script_log`` only knows the calling script inside OBS's own callbacks."""

    def __init__(self) -> None:
        self._threads: set[int] = set()
        self._queue: collections.deque = collections.deque(maxlen=500)
        self.dropped = 0

    def bind_thread(self) -> None:
        """Mark the calling thread as one OBS runs the script on (UI thread at load, graphics thread at tick)."""
        self._threads.add(threading.get_ident())

    def log(self, level: int, message: str) -> None:
        if threading.get_ident() in self._threads:
            self._write(level, message)
        else:
            if len(self._queue) == self._queue.maxlen:
                self.dropped += 1
            self._queue.append((level, message))

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
        obs_level = getattr(obs, _OBS_LEVEL.get(level, "LOG_INFO"))
        for line in str(message).splitlines() or [""]:
            obs.script_log(obs_level, line)


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


class MindFlowScript:
    """Everything one load of the script holds. ``callbacks``: the entry module's module-level functions for the
    hotkeys (OBS's binding ignores bound methods), by hotkey name."""

    def __init__(self, hotkey_callbacks: dict[str, Callable[[bool], None]]) -> None:
        self.hotkey_callbacks = hotkey_callbacks
        self.log = ScriptLog()
        self.settings = Settings()
        self.problems: dict[str, str] = {}
        self.last_error = ""
        self.notice = ""            # the outcome of the last button, shown in the properties
        self.lifecycle = SessionLifecycle()
        self.host: SessionHost | None = None
        self.overlay: OverlayServer | None = None
        self.capture = SourceCapture(log=lambda m: self.log.info(f"MindFlow: {m}"))
        self.hotkeys = Hotkeys()
        self._settings_data = None
        self._engine_key: tuple | None = None
        self._last_text: str | None = None
        self._capture_failed = ""
        self._handler: _LogHandler | None = None
        self._old_level = logging.NOTSET
        self.closed = False

    # ================================================================ problems (shown in the properties)
    def set_problem(self, area: str, message: str) -> None:
        """Record (and log once) the current problem of ``area``; ``""`` clears it."""
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
    def load(self, data: Any) -> None:
        self.log.bind_thread()
        self.log.info(detect_capabilities().log_line())   # which OBS, and its chapters, Browser source, canvases
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
        self.hotkeys.register(data, self.hotkey_callbacks)
        self.run(self.lifecycle.loaded(obs.obs_frontend_streaming_active(), obs.obs_frontend_recording_active()))

    def update(self, data: Any) -> None:
        if not self.closed:
            self.apply(read_settings(data))

    def save(self, data: Any) -> None:
        if not self.closed:
            self.hotkeys.save(data)

    def apply(self, raw: dict[str, Any], first: bool = False) -> None:
        """Validate and apply settings: log them (one line, when they changed), reload the model when it changed,
        start/stop the overlay, re-point the capture."""
        new, problems = validate(raw)
        self.set_problem("settings", "; ".join(problems))
        old, self.settings = self.settings, new
        if first or new != old:
            self.log.info(new.log_line())
        if new.template != old.template:
            self._last_text = None
        self.capture.source_name = new.video_source
        self.capture.interval_s = 1.0 / new.rate_hz
        self._capture_failed = ""
        self._apply_overlay()
        if self.host is None or new.engine_key() != self._engine_key:
            self._open_engine()
        else:
            self.host.report_root = new.report_root()
            self.host.nudge = new.nudge_enabled

    def _open_engine(self) -> None:
        s = self.settings
        self._engine_key = s.engine_key()
        if self.host is not None:
            self.log.info("MindFlow: the model changed; ending the current session with the old model")
            self._log_finished(self.host.close())
            self.host = None
        folder = resolve_model_dir(s.model_choice)
        t0 = time.perf_counter()
        try:
            host = SessionHost.open(folder, report_root=s.report_root(), nudge=s.nudge_enabled,
                                    overlay=self.overlay, log=self.log.log)
        except (ModelCardError, ModelLoadError, DetectorError, OSError, ValueError) as exc:
            self.set_problem("model", f"no model loaded: {exc}")
            return
        self.set_problem("model", "")
        self.host = host
        self.log.info(f"MindFlow: model '{host.card.name}' loaded from {folder} in "
                      f"{(time.perf_counter() - t0) * 1e3:.0f} ms")
        if self.lifecycle.active:
            self._start_session("the session goes on with the new model")

    def _apply_overlay(self) -> None:
        s = self.settings
        if self.overlay is not None and (not s.overlay_enabled or self.overlay.requested_port != s.overlay_port):
            self.overlay.stop()
            self.overlay = None
            self.log.info("MindFlow: overlay stopped")
        if s.overlay_enabled and self.overlay is None:
            server = OverlayServer(port=s.overlay_port)
            try:
                server.start()
            except OverlayError as exc:
                self.set_problem("overlay", str(exc))
            else:
                self.overlay = server
                self.set_problem("overlay", "")
                self.log.info(f"MindFlow: overlay at {server.url} (add it as a Browser source, about 420x360)")
        if not s.overlay_enabled:
            self.set_problem("overlay", "")
        if self.host is not None:
            self.host.overlay = self.overlay

    def unload(self) -> None:
        """Finish the session (summary logged, report written), join every thread, destroy the graphics objects,
        release every OBS object. Idempotent."""
        if self.closed:
            return
        self.closed = True
        self.log.bind_thread()
        self.log.flush()
        self.hotkeys.unregister()      # first, while OBS most likely still has this script as the current one
        try:
            self.run(self.lifecycle.shutdown("the script is unloading"))
            if self.host is not None:
                self._log_finished(self.host.close())
                self.host = None
            self.log.info(self.capture.cost_summary())
        finally:
            self.capture.release()
            if self.overlay is not None:
                self.overlay.stop()
                self.overlay = None
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
            self.log.info(f"MindFlow: session ended ({t.reason})")
            if self.host is not None:
                finished = self.host.finish_session()
                self._log_finished(finished)
                return finished
        return None

    def _start_session(self, reason: str) -> None:
        self._last_text = None
        if self.host is None:
            self.log.warning(f"MindFlow: session not started ({reason}): no model is loaded — {self.last_error}")
            return
        self.host.start_session(source=self.settings.video_source)
        self.log.info(f"MindFlow: session started ({reason}); analysing '{self.settings.video_source}' at "
                      f"{self.settings.rate_hz:g} Hz")

    def _log_finished(self, finished: FinishedSession | None) -> None:
        if finished is None:
            return
        for line in finished.summary_text.splitlines():
            self.log.info(line)
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
    def toggle_session(self) -> None:
        self.run(self.lifecycle.button())

    def reset_session(self) -> None:
        if self.host is None or not self.host.active:
            self.log.info("MindFlow: no session to reset")
            return
        self.log.info("MindFlow: session reset: its report is written and a new session starts")
        self._log_finished(self.host.reset_session())

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
            self.notice = f"report of the session so far written: {path}"
            self.log.info(f"MindFlow: {self.notice}")

    def open_report_folder(self) -> None:
        problem = open_folder(self.settings.report_root())
        self.set_problem("report folder", problem)

    def add_overlay_source(self) -> str:
        if self.overlay is None:
            msg = "enable the overlay (and press OK/Close) first, then add the Browser source"
        else:
            msg = sources.add_browser_source(self.overlay.url)
        self.notice = msg
        self.log.info(f"MindFlow overlay: {msg}")
        return msg

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
        """Every 250 ms: flush queued log lines, follow a source rename, update the text source when its text
        changed."""
        if self.closed:
            return
        self.log.bind_thread()
        self.log.flush()
        if self.capture.renamed_to:
            self._follow_rename(self.capture.renamed_to)
        self.set_problem("source", self.capture.problem)
        host = self.host
        name = self.settings.text_source
        if host is not None and host.active and name:
            try:
                text = render(self.settings.template, host.values())
                self.set_problem("template", "")
            except TemplateError as exc:
                if str(exc) not in self.problems.get("settings", ""):   # not already reported by the validation
                    self.set_problem("template", str(exc))
                text = TEMPLATE_ERROR_TEXT
            if text != self._last_text:
                problem = sources.set_text(name, text)
                self.set_problem("text", problem)
                if not problem:
                    self._last_text = text

    def _follow_rename(self, new: str) -> None:
        if self._settings_data is not None:
            obs.obs_data_set_string(self._settings_data, "video_source", new)
        self.settings = dataclasses.replace(self.settings, video_source=new)
        self.capture.follow_rename(new)

    # ---------------------------------------------------------------- status for the properties
    def status_text(self) -> str:
        parts = []
        if self.host is not None:
            parts.append(self.host.status_line())
        else:
            parts.append("no model loaded")
        if self.capture.captures:
            w, h = self.capture.frame_size
            parts.append(f"{self.capture.captures} frames captured at {w}x{h}")
        if self.overlay is not None:
            parts.append(f"overlay: {self.overlay.url}")
        return "; ".join(parts)
