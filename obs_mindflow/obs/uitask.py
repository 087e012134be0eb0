"""Run a call on OBS's UI (Qt) thread: ``obs_queue_task(OBS_TASK_UI, …)`` through ctypes.

Script callbacks run on different threads: ``script_tick`` and ``timer_add`` callbacks on OBS's graphics thread;
frontend events, property buttons and ``script_load``/``script_unload`` on the UI thread; hotkeys on the hotkey
thread. A frontend call that changes the UI must come from the UI thread: ``obs_frontend_set_current_scene_collection``
triggers a Qt action *synchronously*, so from a timer callback it rebuilds OBS's widgets off the GUI thread (seen:
"QWidget::repaint: Recursive repaint detected", then OBS crashing while painting its main window at exit, about one
run in ten). ``obspython`` does not wrap ``obs_queue_task`` (it takes a C function pointer); ctypes does.

Only the end-to-end test hooks need this today; :func:`close_main_window` is theirs too.
"""

from __future__ import annotations

import ctypes
import logging
import os
from typing import Callable

from . import libobs

log = logging.getLogger("obs_mindflow")

OBS_TASK_UI = 0                 # enum obs_task_type (libobs/obs.h): UI, GRAPHICS, AUDIO, DESTROY
_TASK = ctypes.CFUNCTYPE(None, ctypes.c_void_p)

# Queued callbacks stay referenced until they have run (ctypes frees a thunk with its object); finished ones are
# dropped on a later call, never from inside their own call.
_queued: list[tuple[object, list[bool]]] = []


def run_on_ui_thread(fn: Callable[[], None]) -> bool:
    """Queue ``fn`` to run on OBS's UI thread without waiting. ``False`` (and ``fn`` not queued) when libobs
    cannot be reached through ctypes; the caller decides what to do then."""
    try:
        lib = libobs.load("obs_queue_task")
    except OSError as exc:
        log.warning("MindFlow: cannot queue a task on OBS's UI thread: %s", exc)
        return False
    queue = lib.obs_queue_task
    queue.argtypes = [ctypes.c_int, _TASK, ctypes.c_void_p, ctypes.c_bool]
    queue.restype = None
    _queued[:] = [q for q in _queued if not q[1][0]]
    done = [False]

    def call(_param: object) -> None:
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 — an exception must not cross into C
            log.error("MindFlow: a task on OBS's UI thread failed: %s: %s", type(exc).__name__, exc)
        finally:
            done[0] = True

    thunk = _TASK(call)
    _queued.append((thunk, done))
    queue(OBS_TASK_UI, thunk, None, False)
    return True


def close_main_window() -> None:
    """``QWidget::close()`` on OBS's main window — what File > Exit does — through the Qt Widgets library OBS has
    already loaded (Qt 6 or 5; Linux symbol names). Call it on the UI thread.

    The end-to-end tests stop OBS this way rather than with SIGINT: OBS 29 closes its window from inside its SIGINT
    handler, i.e. in whatever the main thread was doing at that moment, and when that was an X11 call or a paint,
    OBS deadlocked on libxcb's lock or crashed painting (seen: about one run in ten after a scene-collection
    switch, backtraces from gdb and core files)."""
    mode = getattr(os, "RTLD_NOLOAD", 0) | getattr(os, "RTLD_LAZY", 0)
    window = None
    for name in ("libobs-frontend-api.so.0", "libobs-frontend-api.so"):   # obspython does not wrap this call
        try:
            get = ctypes.CDLL(name, mode=mode).obs_frontend_get_main_window
        except (OSError, AttributeError):
            continue
        get.argtypes = []
        get.restype = ctypes.c_void_p
        window = get()
        break
    if not window:
        raise RuntimeError("OBS's main window was not found (libobs-frontend-api)")
    for name in ("libQt6Widgets.so.6", "libQt5Widgets.so.5"):
        try:
            close = ctypes.CDLL(name, mode=mode)._ZN7QWidget5closeEv
        except (OSError, AttributeError):
            continue
        close.argtypes = [ctypes.c_void_p]
        close.restype = ctypes.c_bool
        close(window)
        return
    raise OSError("no Qt Widgets library is loaded in this process")
