"""Frontend hotkeys: registered at ``script_load`` (bindings loaded from the script's settings), saved in
``script_save``, unregistered at ``script_unload``. Imports obspython.

The callbacks must be module-level functions of the script (OBS's Python binding ignores bound methods); the
script passes them in. obs-scripting calls a script's hotkey callbacks on its own "defer" thread
(``defer_call_post``), not on the UI thread: the script hands the work to the UI thread.
"""

from __future__ import annotations

import logging
from typing import Callable

import obspython as obs

from .objects import data_array

#: ``(hotkey name, description shown in Settings > Hotkeys, settings key of its bindings)``.
HOTKEYS = (
    ("mindflow.session", "MindFlow: start / stop session", "hotkey_session"),
    ("mindflow.calibrate", "MindFlow: calibrate to my face (again: cancel)", "hotkey_calibrate"),
    ("mindflow.pause", "MindFlow: pause / resume analysis", "hotkey_pause"),
    ("mindflow.reset", "MindFlow: reset session (report written, new session)", "hotkey_reset"),
)

log = logging.getLogger("obs_mindflow")


class Hotkeys:
    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._callbacks: dict[str, Callable] = {}

    def register(self, settings: object, callbacks: dict[str, Callable[[bool], None]]) -> None:
        """``callbacks``: hotkey name → ``callback(pressed)``."""
        for name, description, key in HOTKEYS:
            cb = callbacks[name]
            hid = obs.obs_hotkey_register_frontend(name, description, cb)
            self._ids[key], self._callbacks[key] = hid, cb
            with data_array(settings, key) as arr:
                if arr is not None:
                    obs.obs_hotkey_load(hid, arr)

    def id_of(self, name: str) -> int | None:
        """The OBS hotkey id of the hotkey called ``name`` ("mindflow.calibrate"), ``None`` when not registered."""
        keys = {n: key for n, _, key in HOTKEYS}
        return self._ids.get(keys.get(name, ""))

    def save(self, settings: object) -> None:
        for key, hid in self._ids.items():
            arr = obs.obs_hotkey_save(hid)
            try:
                obs.obs_data_set_array(settings, key, arr)
            finally:
                obs.obs_data_array_release(arr)

    def unregister(self) -> None:
        """Unregister the hotkeys. OBS frees a script's callbacks itself when it unloads the script, so a failure
        here is only logged: obspython raises "No active script" when OBS's graphics thread ran a script
        callback while the UI thread was unloading this one (obs-scripting keeps the "current script" in a global)."""
        for key, cb in self._callbacks.items():
            unregister_callback(obs.obs_hotkey_unregister, cb, f"hotkey {key}")
        self._ids.clear()
        self._callbacks.clear()


def unregister_callback(remove: Callable[[Callable], None], cb: Callable, what: str) -> None:
    """``remove(cb)`` (an obspython ``*_remove``/``*_unregister`` call), logging instead of raising a
    ``RuntimeError`` — see :meth:`Hotkeys.unregister`."""
    try:
        remove(cb)
    except RuntimeError as exc:
        log.info("MindFlow: %s not unregistered by the script (%s); OBS frees it with the script", what, exc)
