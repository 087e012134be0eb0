"""The personal baseline in OBS: the calibrate button and hotkey, the outcome of a calibration (from the engine's
worker, handed to OBS's UI thread), and the baselines stored in the script's settings object per model.

Part of the OBS adapter (imports obspython). One :class:`Calibration` per load, made by the controller with what
it needs and nothing more (:class:`Needs`: the engine, the settings and their ``obs_data``, the log, a way to the
UI thread, the overlay's refresh). Its ``note`` is what the panel's status says about the last calibration (""
when there is nothing to say).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import obspython as obs

from ..engine.baseline import Baseline, BaselineError, say_reason
from ..engine.session.events import CALIBRATION_DONE, CALIBRATION_FAILED, Event
from .baselines import BACKUP_KEY, BaselineStore
from .language import ui_words
from .settings import BASELINES_KEY

if TYPE_CHECKING:
    from ..engine.host import SessionHost
    from .scriptlog import ScriptLog
    from .settings import Settings

#: The engine's events this module handles (subscribe on the host's bus).
KINDS = (CALIBRATION_DONE, CALIBRATION_FAILED)


@dataclass(frozen=True)
class Needs:
    """What calibrating reads and calls, each at the moment it is needed: ``host()`` the engine (``None`` without
    a model), ``settings()``, ``settings_data()`` the script's ``obs_data`` (``None`` before load, after unload),
    ``log``, ``on_ui(fn)`` runs ``fn`` on OBS's UI thread (from the engine's worker), ``publish()`` refreshes the
    overlay page's state now, ``closed()`` the load is over."""

    host: Callable[[], SessionHost | None]
    settings: Callable[[], Settings]
    settings_data: Callable[[], Any]
    log: ScriptLog
    on_ui: Callable[[Callable[[], None]], None]
    publish: Callable[[], None]
    closed: Callable[[], bool]


class Calibration:
    def __init__(self, needs: Needs) -> None:
        self.needs = needs
        self.note = ""
        self._auto = False

    # ---------------------------------------------------------------- buttons and hotkeys (UI thread)
    def toggle(self) -> None:
        """The calibrate button or hotkey: start a calibration, or cancel the one running."""
        host = self.needs.host()
        if host is not None and host.calibrating:
            host.cancel_calibration()
            self.note = ui_words()("calibration.cancelled")
            self.needs.log.info(f"MindFlow: {self.note}")
            return
        self.start()

    def start(self, auto: bool = False) -> None:
        """Calibrate for the set time (``auto``: at a session's start — a refusal is then logged quietly)."""
        s, host = self.needs.settings(), self.needs.host()
        if host is None:
            self.note = ui_words()("calibration.no_model")
            return
        if not s.video_source:
            self.note = ui_words()("calibration.no_webcam")
            return
        try:
            host.start_calibration(seconds=s.calibration_s, source=s.video_source)
        except (BaselineError, RuntimeError) as exc:
            w = ui_words()
            self.note = w("calibration.cannot", reason=exc.say(w) if isinstance(exc, BaselineError) else str(exc))
            self.needs.log.info(f"MindFlow: {self.note}")
            return
        self._auto = auto
        self.note = ""
        w = ui_words()
        self.needs.log.info("MindFlow: " + w("calibration.started_auto" if auto else "calibration.started",
                                             seconds=w.number(s.calibration_s)))

    def clear(self) -> None:
        host = self.needs.host()
        if host is None:
            return
        if host.calibrating:
            host.cancel_calibration()
        host.clear_baseline()
        store = self._store()
        if store.get(host.card.name) is not None:
            self._save_store(store.remove(host.card.name))
        self.note = ui_words()("calibration.cleared", model=host.card.name)
        self.needs.log.info(f"MindFlow: {self.note}")

    # ---------------------------------------------------------------- the outcome
    def on_event(self, event: Event) -> None:
        """On the engine's worker thread: hand the outcome to the UI thread (it writes the settings object)."""
        log = self.needs.log

        def handle() -> None:
            with log.queued():
                self._outcome(event)
        self.needs.on_ui(handle)

    def _outcome(self, event: Event) -> None:
        needs = self.needs
        host = needs.host()
        if needs.closed() or host is None:
            return
        # the outcome on the overlay page now: no frames are analysed after a calibration outside a session
        needs.publish()
        w = ui_words()
        if event.kind == CALIBRATION_DONE and isinstance(event.data, dict):
            self._save_store(self._store().put(host.card.name, event.data))
            self.note = ""
            made = host.baseline.describe(w) if host.baseline is not None else event.message
            needs.log.info("MindFlow: " + w("calibration.stored", baseline=made, model=host.card.name))
        else:
            data = event.data if isinstance(event.data, dict) else {}
            self.note = w("calibration.refused", reason=say_reason(event.message, data.get("key", ""),
                                                                   data.get("values", {}), w))
            # asked for by the streamer: a warning (the Script Log opens); at a session's start: quietly
            needs.log.log(logging.INFO if self._auto else logging.WARNING, f"MindFlow: {self.note}")

    # ---------------------------------------------------------------- the stored baselines (settings object)
    def _store(self) -> BaselineStore:
        data = self.needs.settings_data()
        return BaselineStore(obs.obs_data_get_string(data, BASELINES_KEY) if data is not None else "")

    def _save_store(self, text: str) -> None:
        """Write the baselines setting (UI thread); an unreadable earlier text is kept under BACKUP_KEY first."""
        data = self.needs.settings_data()
        if data is None:
            return
        old = obs.obs_data_get_string(data, BASELINES_KEY)
        if old and BaselineStore(old).unreadable:
            obs.obs_data_set_string(data, BACKUP_KEY, old)
        obs.obs_data_set_string(data, BASELINES_KEY, text)

    def apply_stored(self) -> None:
        """The stored baseline of the loaded model, applied — unless it is unreadable or belongs to another model or
        label order: then uncalibrated, the reason in the panel and the log, the stored text left as it is."""
        log, host = self.needs.log, self.needs.host()
        if host is None:
            return
        store = self._store()
        name = host.card.name
        if store.unreadable:
            self.note = store.problem
            log.warning(f"MindFlow: {store.problem}")
            return
        doc = store.get(name)
        if doc is None:
            return
        try:
            baseline = Baseline.from_dict(doc, where=f"the stored calibration for '{name}'")
            host.apply_baseline(baseline)
        except BaselineError as exc:
            self.note = ui_words()("calibration.stored_not_applied", reason=exc.say(ui_words()))
            log.warning(f"MindFlow: {self.note}")
        else:
            self.note = ""
            log.info("MindFlow: " + ui_words()("calibration.applied_stored", model=name,
                                               baseline=baseline.describe(ui_words())))
