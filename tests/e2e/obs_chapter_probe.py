"""A test-only OBS script for tests/e2e/test_chapters_e2e.py (never shipped): MindFlow's recording-chapter helper
(:class:`obs_mindflow.obs.capabilities.ChapterMarker`) called inside a real OBS, as a MindFlow feature will call it
— from a timer, i.e. OBS's graphics thread — while OBS records.

Settings: ``chapters`` (names separated by ``|``), ``after_s`` (seconds after the recording started). Log lines
start with ``MindFlow e2e:``: the capabilities line at load, then ``add_chapter('NAME') -> True|False`` per name.
MindFlow's own messages (OBS without chapters, a format without chapters) go to the script log as warnings.
"""

import os
import sys
import time

import obspython as obs

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class _State:
    def __init__(self, names, after_s, marker):
        self.names, self.after_s, self.marker = names, after_s, marker
        self.t0 = None
        self.done = False


_state = None


def _log(message):
    obs.script_log(obs.LOG_INFO, "MindFlow e2e: " + message)


def script_description():
    return "MindFlow end-to-end test: recording chapters (tests only)."


def script_load(settings):
    global _state
    if _ROOT not in sys.path:
        sys.path.insert(0, _ROOT)
    from obs_mindflow.obs.capabilities import ChapterMarker, detect

    caps = detect()
    _log(caps.log_line())
    names = [n for n in obs.obs_data_get_string(settings, "chapters").split("|") if n]
    marker = ChapterMarker(caps, log_fn=lambda m: obs.script_log(obs.LOG_WARNING, m))
    _state = _State(names, max(0.0, obs.obs_data_get_double(settings, "after_s")), marker)
    obs.timer_add(_on_timer, 100)


def script_unload():
    global _state
    obs.timer_remove(_on_timer)
    _state = None


def _on_timer():
    s = _state
    if s is None or s.done:
        return
    if s.t0 is None:
        if obs.obs_frontend_recording_active():
            s.t0 = time.monotonic()
        return
    if time.monotonic() - s.t0 >= s.after_s:
        s.done = True
        for name in s.names:
            _log(f"add_chapter({name!r}) -> {s.marker.add_chapter(name)}")
