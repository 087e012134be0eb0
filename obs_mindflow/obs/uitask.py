"""Run a call on OBS's UI (Qt) thread: ``obs_queue_task(OBS_TASK_UI, …)`` through ctypes.

Script callbacks run on different threads: ``script_tick`` and ``timer_add`` callbacks on OBS's graphics thread;
frontend events, property buttons and ``script_load``/``script_unload`` on the UI thread; hotkeys on the hotkey
thread. A frontend call that changes the UI must come from the UI thread: ``obs_frontend_set_current_scene_collection``
triggers a Qt action *synchronously*, so from a timer callback it rebuilds OBS's widgets off the GUI thread (seen:
"QWidget::repaint: Recursive repaint detected", then OBS crashing while painting its main window at exit, about one
run in ten). ``obspython`` does not wrap ``obs_queue_task`` (it takes a C function pointer); ctypes does.

MindFlow's OBS actions (show a source, switch a scene when a moment starts) run through :func:`run_on_ui_thread`.
"""

from __future__ import annotations

import ctypes
import logging
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
