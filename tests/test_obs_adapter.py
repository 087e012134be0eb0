"""The OBS adapter without OBS: a fake ``obspython`` is injected into ``sys.modules`` (only in this file) and the
script's entry module is driven like OBS does — load, update, ticks, timers, events, buttons, unload.

Also the adapter's pure modules: template formatting, settings validation and logging, the session lifecycle state
machine, the dependency check and install command, timing statistics.
"""

from __future__ import annotations

import importlib
import itertools
import logging
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from conftest import load_photo, paste

from obs_mindflow.obs import deps
from obs_mindflow.obs.lifecycle import Action, SessionLifecycle
from obs_mindflow.obs.metrics import DurationStats
from obs_mindflow.obs.settings import CUSTOM_MODEL, DEFAULT_MODEL_CHOICE, FIELDS, Settings, validate
from obs_mindflow.obs.template import DEFAULT_TEMPLATE, PLACEHOLDERS, TemplateError, check_template, render

ROOT = Path(__file__).resolve().parents[1]
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# ====================================================================================================================
# Template formatting
# ====================================================================================================================

VALUES = {k: f"<{k}>" for k in PLACEHOLDERS} | {"emotion": "happy", "negative_share": "12 %", "confidence": "83 %"}


@pytest.mark.parametrize("template, expected", [
    (DEFAULT_TEMPLATE, "happy · 12 % negative"),
    ("{emotion}", "happy"),
    ("{emotion} ({confidence})", "happy (83 %)"),
    ("no placeholder", "no placeholder"),
    ("", ""),
    ("{{literal}} {emotion}", "{literal} happy"),
    ("{emotion}\\n{negative_share}", "happy\n12 %"),
    ("[{emotion:>7}]", "[  happy]"),
    ("{duration} {coverage} {rolling_negative} {dominant} {faces} {rate} {model} {nudge}",
     "<duration> <coverage> <rolling_negative> <dominant> <faces> <rate> <model> <nudge>"),
])
def test_template_renders(template, expected):
    assert check_template(template) == ""
    assert render(template, VALUES) == expected


@pytest.mark.parametrize("template, fragment", [
    ("{mood}", "unknown placeholder {mood}"),
    ("{emotion} {Emotion}", "unknown placeholder {Emotion}"),
    ("{emotion", "malformed"),
    ("emotion}", "malformed"),
    ("{}", "empty or numbered placeholder"),
    ("{0}", "empty or numbered placeholder"),
    ("{emotion!r}", "conversions are not supported"),
    ("{emotion.upper}", "unknown placeholder {emotion.upper}"),
    ("{emotion[0]}", "unknown placeholder {emotion[0]}"),
    ("{emotion:{rate}}", "nested placeholders"),
])
def test_template_errors_say_what_and_list_the_placeholders(template, fragment):
    message = check_template(template)
    assert fragment in message
    with pytest.raises(TemplateError, match=".+"):
        render(template, VALUES)
    if "unknown" in fragment:
        assert "{emotion}" in message and "{negative_share}" in message  # the known ones are listed


def test_template_bad_format_spec_is_a_template_error():
    assert check_template("{emotion:d}") == ""          # only formatting can tell
    with pytest.raises(TemplateError, match="cannot be formatted"):
        render("{emotion:d}", VALUES)


# ====================================================================================================================
# Settings
# ====================================================================================================================

def test_fields_table_matches_the_settings_dataclass():
    names = [name for name, _, _ in FIELDS]
    assert len(names) == len(set(names))
    assert set(names) == set(Settings.__dataclass_fields__)
    defaults = Settings()
    for name, kind, default in FIELDS:
        assert getattr(defaults, name) == default
        assert kind in ("string", "double", "int", "bool")


@pytest.mark.parametrize("raw, field, expected, problem", [
    ({}, "rate_hz", 5.0, None),
    ({"rate_hz": 7.5}, "rate_hz", 7.5, None),
    ({"rate_hz": 0.0}, "rate_hz", 1.0, "outside 1–15 Hz; using 1 Hz"),
    ({"rate_hz": 60.0}, "rate_hz", 15.0, "using 15 Hz"),
    ({"rate_hz": float("nan")}, "rate_hz", 5.0, None),
    ({"rate_hz": "fast"}, "rate_hz", 5.0, None),
    ({"overlay_port": 80}, "overlay_port", 8765, "overlay port 80 is outside"),
    ({"overlay_port": 9000}, "overlay_port", 9000, None),
    ({"template": "{mood}"}, "template", "{mood}", "unknown placeholder {mood}"),
    ({"model": CUSTOM_MODEL, "model_folder": ""}, "model", CUSTOM_MODEL, "no model folder is set"),
    ({"model": CUSTOM_MODEL, "model_folder": "/x/dan"}, "model_choice", "/x/dan", None),
    ({"model": "fer-mini-xception"}, "model_choice", "fer-mini-xception", None),
    ({"video_source": 12}, "video_source", "", None),
])
def test_settings_validation(raw, field, expected, problem):
    s, problems = validate(raw)
    assert getattr(s, field) == expected
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problem in problems[0]


def test_settings_log_line_is_one_line_with_every_setting():
    s, _ = validate({"video_source": "Cam", "text_source": "Txt", "overlay_enabled": True, "overlay_port": 9001})
    line = s.log_line()
    assert "\n" not in line
    for part in ("video_source='Cam'", "text_source='Txt'", "rate=5 Hz", f"model='{DEFAULT_MODEL_CHOICE}'",
                 "overlay=on, port 9001", "nudge=off", "report_dir='(default)'"):
        assert part in line


# ====================================================================================================================
# Session lifecycle
# ====================================================================================================================

def _actions(lc, *calls):
    return [getattr(lc, c)().action if not isinstance(c, tuple) else getattr(lc, c[0])(*c[1:]).action
            for c in calls]


S, F, N = Action.START, Action.FINISH, Action.NONE


@pytest.mark.parametrize("calls, expected", [
    (["recording_started", "recording_stopped"], [S, F]),
    (["streaming_started", "streaming_stopped"], [S, F]),
    (["streaming_started", "recording_started", "streaming_stopped", "recording_stopped"], [S, N, N, F]),
    (["recording_started", "streaming_started", "recording_stopped", "streaming_stopped"], [S, N, N, F]),
    (["recording_started", "recording_stopped", "recording_started", "recording_stopped"], [S, F, S, F]),
    (["recording_started", "shutdown", "recording_stopped"], [S, F, N]),          # OBS exits while recording
    (["recording_started", "shutdown", "shutdown"], [S, F, N]),                   # SCRIPTING_SHUTDOWN + unload
    (["recording_started", "recording_stopped", "shutdown"], [S, F, N]),          # stopped, then exit
    (["shutdown", "recording_started"], [N, N]),                                  # nothing after shutdown
    (["button", "button"], [S, F]),
    (["button", "recording_started", "recording_stopped", "button"], [S, N, N, F]),   # manual runs until the button
    (["recording_started", "button", "recording_stopped"], [S, F, N]),            # the button stops any session
    (["recording_started", "button", "button", "recording_stopped"], [S, F, S, N]),
    (["recording_stopped", "streaming_stopped"], [N, N]),
    ([("loaded", False, True), "recording_stopped"], [S, F]),                     # reloaded mid-recording
    ([("loaded", True, False), "shutdown"], [S, F]),
    ([("loaded", False, False), "recording_started"], [N, S]),
])
def test_lifecycle(calls, expected):
    lc = SessionLifecycle()
    assert _actions(lc, *calls) == expected


EVENTS = ["streaming_started", "streaming_stopped", "recording_started", "recording_stopped", "button"]


@hsettings(max_examples=300, deadline=None)
@given(st.booleans(), st.booleans(), st.lists(st.sampled_from(EVENTS), max_size=30), st.integers(1, 3))
def test_lifecycle_finishes_every_session_exactly_once(streaming, recording, events, shutdowns):
    lc = SessionLifecycle()
    active = False
    trail = [lc.loaded(streaming, recording)] + [getattr(lc, e)() for e in events]
    trail += [lc.shutdown() for _ in range(shutdowns)] + [getattr(lc, e)() for e in events[:5]]
    for t in trail:
        if t.action is Action.START:
            assert not active, "a session started while one runs"
            active = True
        elif t.action is Action.FINISH:
            assert active, "a finish without a session"
            active = False
    assert not active and lc.started == lc.finished and lc.closed
    # an output-started session never outlives the outputs
    lc2 = SessionLifecycle()
    for e in events:
        lc2_t = getattr(lc2, e)()  # noqa: F841
        if lc2.active and not lc2.manual:
            assert lc2.live


# ====================================================================================================================
# Dependencies and the install command
# ====================================================================================================================

@pytest.mark.parametrize("version, system, machine, name", [
    ((3, 11), "Linux", "x86_64", "py3.11-linux-x86_64"),
    ((3, 12), "Windows", "AMD64", "py3.12-windows-x86_64"),
    ((3, 10), "Darwin", "arm64", "py3.10-darwin-arm64"),
    ((3, 11), "Linux", "aarch64", "py3.11-linux-arm64"),
])
def test_deps_dir_is_per_python_version_and_platform(version, system, machine, name):
    assert deps.deps_dir(version, system, machine) == deps.DEPS_ROOT / name
    assert deps.DEPS_ROOT == ROOT / ".deps"


@pytest.mark.parametrize("system, prefix, version, python", [
    ("linux", "/usr", (3, 11), "/usr/bin/python3.11"),
    ("linux", "/opt/py", (3, 12), "/opt/py/bin/python3.12"),
    ("windows", r"C:\Python311", (3, 11), r"C:\Python311" + "\\python.exe"),
    ("darwin", "/Library/Frameworks/Python.framework/Versions/3.11", (3, 11),
     "/Library/Frameworks/Python.framework/Versions/3.11/bin/python3.11"),
])
def test_install_command_names_the_python_obs_uses(system, prefix, version, python):
    cmd = deps.install_command(system, prefix, version)
    assert python in cmd
    assert "install_obs_deps.py" in cmd
    assert "sys.executable" not in cmd


def test_install_command_quotes_paths_with_spaces_on_windows():
    cmd = deps.install_command("windows", r"C:\Program Files\Python311", (3, 11), root=Path(r"C:\My Stuff\mf"))
    assert cmd.startswith('"C:\\Program Files\\Python311\\python.exe"')


def test_check_reports_missing_modules_and_describe_says_how_to_install(tmp_path):
    status = deps.check(tmp_path, modules=["numpy", "mindflow_no_such_module"])
    assert not status.ok
    assert [name for name, _ in status.missing] == ["mindflow_no_such_module"]
    assert "numpy" in status.versions
    text = deps.describe_missing(status, "linux", "/usr", (3, 11))
    assert "mindflow_no_such_module" in text
    assert "/usr/bin/python3.11" in text and "install_obs_deps.py" in text and str(tmp_path) in text


def test_check_finds_the_real_packages():
    status = deps.check()
    assert status.ok, status.summary()
    assert set(status.versions) == {"numpy", "cv2", "onnxruntime"}


@pytest.mark.parametrize("system, version, ok", [
    # Linux: the Python the distribution's OBS links (Debian 12: 3.11, 13: 3.13, unstable: 3.14), while wheels exist
    ("linux", (3, 9), True), ("linux", (3, 11), True), ("linux", (3, 13), True), ("linux", (3, 14), True),
    ("linux", (3, 8), False), ("linux", (3, 15), False),
    # official Windows/macOS OBS: Python Settings accepts up to 3.12; the wheels start at 3.10
    ("windows", (3, 10), True), ("windows", (3, 12), True), ("windows", (3, 13), False), ("windows", (3, 9), False),
    ("darwin", (3, 11), True), ("darwin", (3, 14), False),
])
def test_python_version_limits_per_platform(system, version, ok):
    assert (deps.python_version_problem(version, system, installed=[]) == "") is ok


@pytest.mark.parametrize("system, installed, expected", [
    ("windows", [], r"C:\Users\me\AppData\Local\Programs\Python\Python312"),
    ("windows", [((3, 11), r"D:\Py311")], r"D:\Py311"),
    ("darwin", [], "/Library/Frameworks/Python.framework/Versions/3.12"),
])
def test_python_version_problem_names_the_python_to_set_in_obs(system, installed, expected, monkeypatch):
    monkeypatch.setenv("LOCALAPPDATA", r"C:\Users\me\AppData\Local")
    text = deps.python_version_problem((3, 13), system, installed=installed)
    assert "Tools > Scripts > Python Settings" in text
    assert f"set {'that' if installed else 'its'} folder" in text and expected in text
    assert "install_obs_deps.py" in text


def test_wheel_ranges_match_what_check_wheels_checks():
    from tools.check_wheels import TARGETS, versions

    assert {t.system for t in TARGETS} == set(deps.WHEEL_PYTHONS)
    assert versions("linux")[0] == (3, 9) and versions("linux")[-1] == (3, 14)
    assert versions("windows") == [(3, 10), (3, 11), (3, 12)]


def test_pip_command_targets_the_folder():
    cmd = deps.pip_command("/usr/bin/python3.11", Path("/x/.deps/py3.11-linux-x86_64"))
    assert cmd[:4] == ["/usr/bin/python3.11", "-m", "pip", "install"]
    assert cmd[cmd.index("--target") + 1] == "/x/.deps/py3.11-linux-x86_64"
    assert cmd[-1].endswith("requirements.txt")


# ====================================================================================================================
# Timing statistics
# ====================================================================================================================

def test_duration_stats_percentiles_and_bounded_ring():
    d = DurationStats(size=100)
    assert np.isnan(d.percentile(50)) and d.summary() == "no samples"
    for v in range(1, 201):
        d.add(float(v))
    assert d.count == 200 and d.max_ms == 200.0
    assert len(d.values()) == 100                       # bounded: only the last 100 kept
    assert d.percentile(50) == 150.0 and d.percentile(99) == 199.0 and d.percentile(100) == 200.0


# ====================================================================================================================
# A fake obspython
# ====================================================================================================================

class FakeData:
    def __init__(self, obs, values=None):
        self.obs, self.values, self.defaults, self.arrays, self.refs = obs, dict(values or {}), {}, {}, 1
        obs.live.add(self)

    def get(self, name, default):
        return self.values.get(name, self.defaults.get(name, default))


class FakeArray:
    def __init__(self, obs, items=()):
        self.obs, self.items, self.refs = obs, list(items), 1
        obs.live.add(self)


class FakeSource:
    def __init__(self, obs, name, unversioned_id, flags, width=480, height=270):
        self.obs, self.name, self.id, self.flags = obs, name, unversioned_id, flags
        self.width, self.height = width, height
        self.refs, self.removed, self.showing, self.updates = 1, False, 0, []


class FakeProps:
    def __init__(self):
        self.items = {}


class FakeProp:
    def __init__(self, name, kind, description, **kw):
        self.name, self.kind, self.description = name, kind, description
        self.items, self.visible, self.info_type, self.long_description, self.callback = [], True, None, "", None
        self.__dict__.update(kw)


class FakeGfx:
    def __init__(self, obs, kind, size=None):
        self.obs, self.kind, self.size = obs, kind, size
        obs.gfx.add(self)


def make_fake_obs():
    """A module object standing in for obspython, recording what the script does."""
    o = types.ModuleType("obspython")
    o.live, o.gfx, o.logs, o.timers, o.event_callbacks = set(), set(), [], [], []
    o.hotkeys, o.hotkey_loaded, o.sources, o.graphics_depth, o.calls = {}, {}, {}, 0, []
    o.streaming, o.recording, o.collection = False, False, "A"
    ids = itertools.count(1)
    consts = dict(LOG_DEBUG=400, LOG_INFO=300, LOG_WARNING=200, LOG_ERROR=100, OBS_TEXT_DEFAULT=0,
                  OBS_TEXT_PASSWORD=1, OBS_TEXT_MULTILINE=2, OBS_TEXT_INFO=3, OBS_TEXT_INFO_NORMAL=0,
                  OBS_TEXT_INFO_WARNING=1, OBS_TEXT_INFO_ERROR=2, OBS_COMBO_TYPE_LIST=2, OBS_COMBO_TYPE_EDITABLE=1,
                  OBS_COMBO_FORMAT_STRING=3, OBS_PATH_FILE=0, OBS_PATH_DIRECTORY=2, OBS_SOURCE_VIDEO=1,
                  OBS_SOURCE_ASYNC=4, GS_BGRA=5, GS_ZS_NONE=0, GS_CLEAR_COLOR=1, GS_BLEND_ONE=1, GS_BLEND_ZERO=0)
    events = ["STREAMING_STARTING", "STREAMING_STARTED", "STREAMING_STOPPING", "STREAMING_STOPPED",
              "RECORDING_STARTING", "RECORDING_STARTED", "RECORDING_STOPPING", "RECORDING_STOPPED",
              "SCENE_CHANGED", "FINISHED_LOADING", "SCRIPTING_SHUTDOWN", "SCENE_COLLECTION_CHANGING"]
    for i, e in enumerate(events):
        consts[f"OBS_FRONTEND_EVENT_{e}"] = 100 + i
    o.__dict__.update(consts)

    o.script_log = lambda level, text: o.logs.append((level, text))
    # data
    o.obs_data_create = lambda: FakeData(o)

    def data_release(d):
        d.refs -= 1
        if d.refs == 0:
            o.live.discard(d)
    o.obs_data_release = data_release
    o.obs_data_addref = lambda d: setattr(d, "refs", d.refs + 1)
    o.obs_data_get_string = lambda d, n: d.get(n, "")
    o.obs_data_get_double = lambda d, n: d.get(n, 0.0)
    o.obs_data_get_int = lambda d, n: d.get(n, 0)
    o.obs_data_get_bool = lambda d, n: d.get(n, False)
    for kind in ("string", "double", "int", "bool"):
        setattr(o, f"obs_data_set_{kind}", lambda d, n, v: d.values.__setitem__(n, v))
        setattr(o, f"obs_data_set_default_{kind}", lambda d, n, v: d.defaults.__setitem__(n, v))

    def get_array(d, key):
        if key not in d.arrays:
            return None
        arr = d.arrays[key]
        arr.refs += 1
        o.live.add(arr)
        return arr

    def set_array(d, key, arr):
        arr.refs += 1
        d.arrays[key] = arr

    def array_release(arr):
        arr.refs -= 1
        if arr.refs <= 0:
            o.live.discard(arr)
    o.obs_data_get_array, o.obs_data_set_array, o.obs_data_array_release = get_array, set_array, array_release
    # sources
    def add_source(name, uid, flags, **kw):
        o.sources[name] = FakeSource(o, name, uid, flags, **kw)
        return o.sources[name]
    o.add_source = add_source

    def get_by_name(name):
        src = o.sources.get(name)
        if src is None or src.removed:
            return None
        src.refs += 1
        return src
    o.obs_get_source_by_name = get_by_name
    o.obs_source_release = lambda s: setattr(s, "refs", s.refs - 1)

    def enum_sources():
        out = [s for s in o.sources.values() if not s.removed]
        for s in out:
            s.refs += 1
        return out
    o.obs_enum_sources = enum_sources
    o.source_list_release = lambda lst: [o.obs_source_release(s) for s in lst]
    o.obs_source_get_output_flags = lambda s: s.flags
    o.obs_source_get_name = lambda s: s.name
    o.obs_source_get_unversioned_id = lambda s: s.id
    o.obs_source_get_width = lambda s: s.width
    o.obs_source_get_height = lambda s: s.height
    o.obs_source_removed = lambda s: s.removed
    o.obs_source_inc_showing = lambda s: setattr(s, "showing", s.showing + 1)
    o.obs_source_dec_showing = lambda s: setattr(s, "showing", s.showing - 1)
    o.obs_source_update = lambda s, d: s.updates.append(dict(d.values))
    o.obs_source_get_display_name = lambda uid: {"ffmpeg_source": "Media Source"}.get(uid)
    o.obs_source_video_render = lambda s: o.calls.append(("render", s.name))
    # frontend
    o.obs_frontend_add_event_callback = lambda cb: o.event_callbacks.append(cb)
    o.obs_frontend_remove_event_callback = lambda cb: cb in o.event_callbacks and o.event_callbacks.remove(cb)
    o.obs_frontend_streaming_active = lambda: o.streaming
    o.obs_frontend_recording_active = lambda: o.recording
    o.obs_frontend_recording_stop = lambda: o.calls.append(("recording_stop",))
    o.obs_frontend_get_current_scene_collection = lambda: o.collection
    o.obs_frontend_set_current_scene_collection = lambda name: o.calls.append(("set_collection", name))
    o.timer_add = lambda cb, ms: o.timers.append((cb, ms))
    o.timer_remove = lambda cb: o.timers.__setitem__(slice(None), [t for t in o.timers if t[0] is not cb])
    # hotkeys

    def hotkey_register(name, description, cb):
        hid = next(ids)
        o.hotkeys[hid] = (name, description, cb)
        return hid

    def hotkey_save(hid):
        return FakeArray(o, [{"key": f"OBS_KEY_{hid}"}])
    o.obs_hotkey_register_frontend = hotkey_register
    o.obs_hotkey_load = lambda hid, arr: o.hotkey_loaded.__setitem__(hid, list(arr.items))
    o.obs_hotkey_save = hotkey_save

    def hotkey_unregister(cb):
        for hid, (_, _, c) in list(o.hotkeys.items()):
            if c is cb:
                del o.hotkeys[hid]
    o.obs_hotkey_unregister = hotkey_unregister
    # properties
    o.obs_properties_create = FakeProps

    def add(props, name, kind, description, **kw):
        p = FakeProp(name, kind, description, **kw)
        props.items[name] = p
        return p
    o.obs_properties_add_text = lambda props, n, d, t: add(props, n, "text", d, text_type=t)
    o.obs_properties_add_list = lambda props, n, d, t, f: add(props, n, "list", d, combo_type=t, combo_format=f)
    o.obs_properties_add_float_slider = lambda props, n, d, lo, hi, step: add(props, n, "float", d, range=(lo, hi))
    o.obs_properties_add_int = lambda props, n, d, lo, hi, step: add(props, n, "int", d, range=(lo, hi))
    o.obs_properties_add_bool = lambda props, n, d: add(props, n, "bool", d)
    o.obs_properties_add_path = lambda props, n, d, t, f, default: add(props, n, "path", d, path_type=t)
    o.obs_properties_add_button = lambda props, n, d, cb: add(props, n, "button", d, callback=cb)
    o.obs_properties_get = lambda props, n: props.items.get(n)
    o.obs_property_list_add_string = lambda p, label, value: p.items.append((label, value))
    o.obs_property_set_visible = lambda p, v: setattr(p, "visible", v)
    o.obs_property_set_long_description = lambda p, t: setattr(p, "long_description", t)
    o.obs_property_text_set_info_type = lambda p, t: setattr(p, "info_type", t)
    o.obs_property_text_set_info_word_wrap = lambda p, w: None
    o.obs_property_set_modified_callback = lambda p, cb: setattr(p, "callback", cb)
    # graphics

    def enter():
        o.graphics_depth += 1

    def leave():
        assert o.graphics_depth > 0
        o.graphics_depth -= 1

    def in_graphics(fn):
        def wrapped(*a):
            assert o.graphics_depth > 0, f"{fn.__name__} outside obs_enter_graphics()"
            return fn(*a)
        wrapped.__name__ = fn.__name__
        return wrapped
    o.obs_enter_graphics, o.obs_leave_graphics = enter, leave
    o.gs_texrender_create = in_graphics(lambda fmt, zs: FakeGfx(o, "texrender"))
    o.gs_stagesurface_create = in_graphics(lambda w, h, fmt: FakeGfx(o, "stagesurf", (w, h)))
    o.gs_texrender_destroy = in_graphics(lambda t: o.gfx.discard(t))
    o.gs_stagesurface_destroy = in_graphics(lambda s: o.gfx.discard(s))
    o.gs_texrender_reset = in_graphics(lambda t: None)
    o.gs_texrender_begin = in_graphics(lambda t, w, h: True)
    o.gs_texrender_end = in_graphics(lambda t: None)
    o.gs_texrender_get_texture = in_graphics(lambda t: ("texture", t))
    o.gs_stage_texture = in_graphics(lambda s, tex: o.calls.append(("stage", s.size)))
    o.gs_clear = in_graphics(lambda *a: None)
    o.gs_ortho = in_graphics(lambda *a: o.calls.append(("ortho",) + a))
    o.gs_blend_state_push = in_graphics(lambda: None)
    o.gs_blend_state_pop = in_graphics(lambda: None)
    o.gs_blend_function = in_graphics(lambda a, b: None)
    o.vec4 = lambda: object()
    o.vec4_zero = lambda v: None
    return o


class FakeMapper:
    """Stands in for the ctypes map: returns a frame with a real face (the astronaut) of the staged size."""

    photo = None

    def read(self, surf, w, h):
        assert surf.obs.graphics_depth > 0
        if FakeMapper.photo is None:
            FakeMapper.photo = load_photo("astronaut.png")
        import cv2
        face = cv2.resize(FakeMapper.photo, (h, h))
        return cv2.cvtColor(paste((h, w), face, (w - h) // 2, 0), cv2.COLOR_BGR2BGRA)


ADAPTER_MODULES = ["mindflow_obs", "obs_mindflow.obs.obsdata", "obs_mindflow.obs.objects", "obs_mindflow.obs.capture", "obs_mindflow.obs.sources",
                   "obs_mindflow.obs.hotkeys", "obs_mindflow.obs.controller", "obs_mindflow.obs.capabilities"]


@pytest.fixture
def fake_obs(monkeypatch):
    o = make_fake_obs()
    o.add_source("Webcam", "v4l2_input", 1)
    o.add_source("Emotion text", "text_ft2_source", 1)
    o.add_source("Mic", "pulse_input_capture", 2)
    monkeypatch.setitem(sys.modules, "obspython", o)
    monkeypatch.setattr(deps, "add_to_path", lambda folder=None: Path("/nonexistent"))  # keep the venv's packages
    package = importlib.import_module("obs_mindflow.obs")

    def forget_adapter():
        # the modules importing obspython are imported afresh against each fake (``from . import x`` would
        # otherwise find the previous test's module as an attribute of the package)
        for name in ADAPTER_MODULES:
            sys.modules.pop(name, None)
            if name.startswith("obs_mindflow.obs."):
                package.__dict__.pop(name.rsplit(".", 1)[1], None)
    forget_adapter()
    monkeypatch.syspath_prepend(str(ROOT / "obs_mindflow"))
    yield o
    forget_adapter()


@pytest.fixture
def entry(fake_obs, monkeypatch):
    """The script's entry module imported against the fake obspython, with the ctypes parts faked: the stage
    mapper, and the UI-thread queue (tasks collect in ``fake_obs.ui_tasks``; the test runs them)."""
    capture = importlib.import_module("obs_mindflow.obs.capture")
    monkeypatch.setattr(capture, "StageMapper", FakeMapper)
    uitask = importlib.import_module("obs_mindflow.obs.uitask")
    fake_obs.ui_tasks = []
    monkeypatch.setattr(uitask, "run_on_ui_thread", lambda fn: fake_obs.ui_tasks.append(fn) is None)
    module = importlib.import_module("mindflow_obs")
    yield module
    if module._script is not None:
        module.script_unload()


def settings_data(o, tmp_path, **values):
    base = {"video_source": "Webcam", "text_source": "Emotion text", "report_dir": str(tmp_path / "reports"),
            "rate_hz": 15.0}
    base.update(values)
    return FakeData(o, base)


def load(entry, o, data):
    entry.script_defaults(data)
    entry.script_description()
    entry.script_load(data)
    entry.script_update(data)
    return entry._script


def logged(o):
    return "\n".join(text for _, text in o.logs)


def fire(entry, o, event_name):
    for cb in list(o.event_callbacks):
        cb(getattr(o, f"OBS_FRONTEND_EVENT_{event_name}"))


def run_ticks(entry, script, seconds, until=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        entry.script_tick(1 / 60)
        for cb, _ in list(sys.modules["obspython"].timers):
            cb()
        if until is not None and until():
            return True
        time.sleep(1 / 60)
    return until is None


# ====================================================================================================================
# The entry module against the fake
# ====================================================================================================================

def test_properties_have_the_right_names_and_types(entry, fake_obs, tmp_path):
    load(entry, fake_obs, settings_data(fake_obs, tmp_path))
    props = entry.script_properties()
    kinds = {name: p.kind for name, p in props.items.items()}
    expected = {"status": "text", "video_source": "list", "text_source": "list", "template": "text",
                "rate_hz": "float", "model": "list", "model_folder": "path", "report_dir": "path",
                "nudge_enabled": "bool", "overlay_enabled": "bool", "overlay_port": "int", "session": "button",
                "reset": "button", "write_report": "button", "open_reports": "button", "add_overlay": "button",
                "refresh": "button"}
    for name, kind in expected.items():
        assert kinds.get(name) == kind, f"property {name}: {kinds.get(name)} != {kind}"
    assert props.items["status"].text_type == fake_obs.OBS_TEXT_INFO
    assert props.items["rate_hz"].range == (1.0, 15.0)
    assert props.items["overlay_port"].range == (1024, 65535)
    assert props.items["report_dir"].path_type == fake_obs.OBS_PATH_DIRECTORY
    video = [v for _, v in props.items["video_source"].items]
    assert "Webcam" in video and "Emotion text" in video and "Mic" not in video   # video output only
    assert [v for _, v in props.items["text_source"].items] == ["", "Emotion text"]
    models = [v for _, v in props.items["model"].items]
    assert "fer-mini-xception" in models and models[-1] == CUSTOM_MODEL
    assert props.items["model_folder"].visible is False
    assert "{negative_share}" in props.items["template"].long_description
    assert props.items["session"].description == "Start session"
    assert "last_error" not in props.items
    entry.script_unload()


def test_defaults_cover_every_field(entry, fake_obs, tmp_path):
    data = FakeData(fake_obs)
    entry.script_defaults(data)
    assert set(data.defaults) == {name for name, _, _ in FIELDS}
    assert data.defaults["template"] == DEFAULT_TEMPLATE and data.defaults["rate_hz"] == 5.0
    assert data.defaults["report_dir"]                # the real default folder, shown in the path picker


def test_settings_logged_once_per_change(entry, fake_obs, tmp_path):
    data = settings_data(fake_obs, tmp_path)
    load(entry, fake_obs, data)
    lines = [t for _, t in fake_obs.logs if t.startswith("MindFlow settings:")]
    assert len(lines) == 1                            # load + an identical update: one line
    data.values["rate_hz"] = 3.0
    entry.script_update(data)
    lines = [t for _, t in fake_obs.logs if t.startswith("MindFlow settings:")]
    assert len(lines) == 2 and "rate=3 Hz" in lines[-1]
    assert entry._script.capture.interval_s == pytest.approx(1 / 3)
    entry.script_unload()


def test_recording_session_end_to_end_with_fakes(entry, fake_obs, tmp_path):
    o = fake_obs
    script = load(entry, o, settings_data(o, tmp_path))
    assert not script.lifecycle.active
    fire(entry, o, "FINISHED_LOADING")
    fire(entry, o, "RECORDING_STARTED")
    assert script.lifecycle.active and script.host.active
    text_source = o.sources["Emotion text"]
    assert run_ticks(entry, script, 20, until=lambda: any("happy" in u.get("text", "") for u in text_source.updates)), \
        f"the text source never showed the face's emotion: {text_source.updates[-3:]} {logged(o)[-2000:]}"
    updates = [u["text"] for u in text_source.updates]
    assert all(a != b for a, b in zip(updates, updates[1:])), "the text source was written without a change"
    webcam = o.sources["Webcam"]
    assert webcam.showing == 1, "the webcam is kept showing while analysed"
    assert ("ortho", 0.0, 480.0, 0.0, 270.0, -100.0, 100.0) in o.calls
    assert ("stage", (480, 270)) in o.calls
    assert o.graphics_depth == 0
    fire(entry, o, "RECORDING_STOPPED")
    assert not script.lifecycle.active
    run_ticks(entry, script, 0.1)
    assert webcam.showing == 0 and webcam.refs == 1, "the webcam is released when the session ends"
    fire(entry, o, "SCRIPTING_SHUTDOWN")
    entry.script_unload()
    log = logged(o)
    assert log.count("MindFlow session summary") == 1
    assert "MindFlow: OBS finished loading" in log
    folders = [p for p in (tmp_path / "reports").iterdir()]
    assert len(folders) == 1 and (folders[0] / "summary.json").is_file()


def test_exit_while_recording_finishes_exactly_once(entry, fake_obs, tmp_path):
    o = fake_obs
    o.recording = True                                # a reload mid-recording
    script = load(entry, o, settings_data(o, tmp_path))
    assert script.lifecycle.active
    assert "OBS was already recording at script load" in logged(o)
    assert run_ticks(entry, script, 20, until=lambda: script.host.recorder.stats.updates > 3)
    fire(entry, o, "SCRIPTING_SHUTDOWN")
    entry.script_unload()
    entry.script_unload()                             # a second unload is harmless
    assert logged(o).count("MindFlow session summary") == 1
    assert [p.name for p in (tmp_path / "reports").iterdir() if (p / "summary.json").is_file()]


def test_unload_goes_on_when_obs_has_no_current_script(entry, fake_obs, tmp_path):
    """obs-scripting keeps the "current script" in a global that a script callback on the graphics thread resets
    while the UI thread unloads: obspython's *_unregister/*_remove then raise "No active script". Unload must still
    finish the session and release everything else (OBS frees the script's callbacks itself)."""
    o = fake_obs
    data = settings_data(o, tmp_path)
    script = load(entry, o, data)
    fire(entry, o, "RECORDING_STARTED")
    assert run_ticks(entry, script, 20, until=lambda: script.host.recorder.stats.updates >= 2)

    def no_active_script(cb):
        raise RuntimeError("No active script, report this to Jim")
    o.obs_hotkey_unregister = o.timer_remove = o.obs_frontend_remove_event_callback = no_active_script
    entry.script_unload()
    assert entry._script is None and not o.gfx and data.refs == 1
    assert all(s.refs == 1 and s.showing == 0 for s in o.sources.values())
    assert "MindFlow session summary" in logged(o)
    assert len(list((tmp_path / "reports").iterdir())) == 1


def test_a_tick_during_release_skips(entry, fake_obs, tmp_path):
    """script_tick (graphics thread) and script_unload (UI thread) can overlap: a tick that finds release() in
    progress captures nothing, and release() waits for a tick in progress."""
    o = fake_obs
    script = load(entry, o, settings_data(o, tmp_path))
    fire(entry, o, "RECORDING_STARTED")
    run_ticks(entry, script, 20, until=lambda: script.capture.captures >= 2)
    capture = script.capture
    before = capture.captures
    with capture._busy:                      # as if release() were running on another thread
        assert capture.tick(True) is None
    assert capture.captures == before
    entry.script_unload()
    assert capture.tick(True) is None and not o.gfx


def test_unload_releases_everything(entry, fake_obs, tmp_path):
    o = fake_obs
    data = settings_data(o, tmp_path)
    script = load(entry, o, data)
    assert len(o.hotkeys) == 2 and len(o.timers) == 1 and len(o.event_callbacks) == 1
    entry.script_properties()
    fire(entry, o, "RECORDING_STARTED")
    run_ticks(entry, script, 20, until=lambda: script.capture.captures >= 2)
    assert o.gfx, "graphics objects exist while capturing"
    entry.script_save(data)
    assert set(data.arrays) == {"hotkey_pause", "hotkey_reset"}
    threads = [script.host.analyzer._thread]
    entry.script_unload()
    assert entry._script is None
    assert not o.gfx, f"graphics objects left: {o.gfx}"
    assert o.graphics_depth == 0
    assert not o.hotkeys and not o.timers and not o.event_callbacks
    assert all(s.refs == 1 and s.showing == 0 for s in o.sources.values()), \
        {n: (s.refs, s.showing) for n, s in o.sources.items()}
    assert data.refs == 1, "the settings reference taken at load is released"
    assert not any(t.is_alive() for t in threads), "the analysis worker is joined"
    assert "MindFlow capture cost per frame" in logged(o)
    assert not [h for h in logging.getLogger("obs_mindflow").handlers if type(h).__name__ == "_LogHandler"]


def test_hotkeys_load_saved_bindings_pause_and_reset(entry, fake_obs, tmp_path):
    o = fake_obs
    data = settings_data(o, tmp_path)
    data.arrays["hotkey_pause"] = FakeArray(o, [{"key": "OBS_KEY_F9"}])
    script = load(entry, o, data)
    names = {name: hid for hid, (name, _, _) in o.hotkeys.items()}
    assert set(names) == {"mindflow.pause", "mindflow.reset"}
    assert o.hotkey_loaded[names["mindflow.pause"]] == [{"key": "OBS_KEY_F9"}]
    fire(entry, o, "RECORDING_STARTED")
    pause_cb = o.hotkeys[names["mindflow.pause"]][2]
    pause_cb(True)
    assert script.host.paused
    run_ticks(entry, script, 0.3)
    assert script.capture.captures == 0 and o.sources["Webcam"].showing == 0, "nothing is captured while paused"
    assert "paused" in o.sources["Emotion text"].updates[-1]["text"]
    pause_cb(False)                                   # key release: no toggle
    assert script.host.paused
    pause_cb(True)
    assert not script.host.paused
    assert run_ticks(entry, script, 20, until=lambda: script.host.recorder.stats.updates > 2)
    o.hotkeys[names["mindflow.reset"]][2](True)      # reset: the first session's report is written
    assert logged(o).count("MindFlow session summary") == 1
    entry.script_unload()
    assert logged(o).count("MindFlow session summary") == 2


def test_missing_model_is_shown_as_last_error_without_crashing(entry, fake_obs, tmp_path):
    o = fake_obs
    script = load(entry, o, settings_data(o, tmp_path, model=CUSTOM_MODEL, model_folder=str(tmp_path / "nope")))
    assert script.host is None
    assert "model" in script.problems and "nope" in script.last_error
    props = entry.script_properties()
    assert props.items["last_error"].info_type == o.OBS_TEXT_INFO_ERROR
    assert "nope" in props.items["last_error"].description
    assert props.items["model_folder"].visible
    fire(entry, o, "RECORDING_STARTED")               # a session without a model: a warning, no crash
    run_ticks(entry, script, 0.2)
    assert "session not started" in logged(o)
    data = settings_data(o, tmp_path)                 # fixing the setting loads the model and starts the session
    entry.script_update(data)
    assert script.host is not None and script.host.active and "model" not in script.problems
    entry.script_unload()


def test_missing_sources_give_messages_not_crashes(entry, fake_obs, tmp_path):
    o = fake_obs
    script = load(entry, o, settings_data(o, tmp_path, video_source="Gone", text_source="Old text"))
    fire(entry, o, "RECORDING_STARTED")
    run_ticks(entry, script, 0.3)
    assert "video source 'Gone' not found" in script.problems["source"]
    assert "text source 'Old text' not found" in script.problems["text"]
    props = entry.script_properties()
    assert ("Gone (missing)", "Gone") in props.items["video_source"].items
    assert "Gone" in props.items["last_error"].description or "Old text" in props.items["last_error"].description
    log = logged(o)
    assert log.count("video source 'Gone' not found") <= 2     # logged once (plus the problem line), not per tick
    entry.script_unload()


def test_removed_and_renamed_source_and_zero_size(entry, fake_obs, tmp_path):
    o = fake_obs
    data = settings_data(o, tmp_path)
    script = load(entry, o, data)
    fire(entry, o, "RECORDING_STARTED")
    assert run_ticks(entry, script, 20, until=lambda: script.capture.captures >= 1)
    cam = o.sources["Webcam"]
    cam.name = "Face cam"                              # renamed in OBS: followed, the setting updated
    run_ticks(entry, script, 0.3)
    assert data.values["video_source"] == "Face cam" and script.settings.video_source == "Face cam"
    n = script.capture.captures
    assert run_ticks(entry, script, 20, until=lambda: script.capture.captures > n)
    cam.width = cam.height = 0                         # inactive webcam: skipped silently
    n = script.capture.captures
    run_ticks(entry, script, 0.4)
    assert script.capture.captures <= n + 1 and "source" not in script.problems
    cam.removed = True                                 # removed: released, reported
    run_ticks(entry, script, 0.3)
    assert "was removed" in script.problems["source"] and cam.showing == 0 and cam.refs == 1
    entry.script_unload()


def test_unknown_placeholder_is_reported_and_shown(entry, fake_obs, tmp_path):
    o = fake_obs
    script = load(entry, o, settings_data(o, tmp_path, template="{emotion} {mood}"))
    assert "unknown placeholder {mood}" in script.problems["settings"]
    fire(entry, o, "RECORDING_STARTED")
    run_ticks(entry, script, 0.3)
    assert "template" not in script.problems, "reported once (by the settings validation), not twice"
    assert "unknown placeholder {mood}" in entry.script_properties().items["last_error"].description
    assert o.sources["Emotion text"].updates[-1]["text"].startswith("MindFlow: text template error")
    data = settings_data(o, tmp_path, template="{emotion:d}")   # only formatting can tell: reported then
    entry.script_update(data)
    run_ticks(entry, script, 0.3)
    assert "cannot be formatted" in script.problems["template"]
    data.values["template"] = "{emotion}"
    entry.script_update(data)
    assert run_ticks(entry, script, 20, until=lambda: "template" not in script.problems and not
                     o.sources["Emotion text"].updates[-1]["text"].startswith("MindFlow"))
    entry.script_unload()


def test_buttons(entry, fake_obs, tmp_path, monkeypatch):
    o = fake_obs
    script = load(entry, o, settings_data(o, tmp_path))
    props = entry.script_properties()
    assert props.items["session"].callback(props, props.items["session"]) is True
    assert script.lifecycle.active and script.lifecycle.manual
    props.items["write_report"].callback(props, None)
    assert "report" in script.problems and "no result" in script.problems["report"]   # nothing analysed yet
    assert run_ticks(entry, script, 20, until=lambda: script.host.recorder.stats.updates > 2)
    props.items["write_report"].callback(props, None)
    assert "report" not in script.problems and "report.html" in script.notice
    opened = []
    monkeypatch.setattr("obs_mindflow.obs.controller.open_folder", lambda p: opened.append(p) or "")
    props.items["open_reports"].callback(props, None)
    assert opened == [tmp_path / "reports"]
    props.items["add_overlay"].callback(props, None)
    assert "enable the overlay" in script.notice
    props = entry.script_properties()
    assert props.items["session"].description == "Stop session"
    props.items["session"].callback(props, None)
    assert not script.lifecycle.active and logged(o).count("MindFlow session summary") == 1
    entry.script_unload()
    assert logged(o).count("MindFlow session summary") == 1


def test_overlay_without_browser_source_explains(entry, fake_obs, tmp_path):
    o = fake_obs
    script = load(entry, o, settings_data(o, tmp_path, overlay_enabled=True, overlay_port=18765))
    if "overlay" in script.problems:
        pytest.skip(f"port taken here: {script.problems['overlay']}")
    assert script.overlay is not None and script.overlay.url.endswith(":18765/overlay")
    props = entry.script_properties()
    assert "18765" in props.items["overlay_url"].description
    script.add_overlay_source()
    assert "no Browser source" in script.notice
    entry.script_unload()
    assert script.overlay is None


def test_missing_dependencies_still_load_and_say_how_to_install(fake_obs, monkeypatch, tmp_path):
    o = fake_obs
    missing = deps.DepStatus((("onnxruntime", "ModuleNotFoundError: No module named 'onnxruntime'"),),
                             {"numpy": "2", "cv2": "4"}, deps.deps_dir())
    monkeypatch.setattr(deps, "check", lambda *a, **k: missing)
    entry = importlib.import_module("mindflow_obs")
    data = settings_data(o, tmp_path)
    load(entry, o, data)
    assert entry._script is None
    assert data.defaults["rate_hz"] == 5.0 and data.defaults["template"] == DEFAULT_TEMPLATE  # defaults all the same
    description = entry.script_description()
    assert "onnxruntime" in description and "install_obs_deps.py" in description
    assert "python3." in description or "python.exe" in description
    props = entry.script_properties()
    assert props.items["deps"].info_type == o.OBS_TEXT_INFO_ERROR
    assert props.items["check_deps"].kind == "button"
    assert "onnxruntime" in logged(o)
    entry.script_tick(0.016)                           # nothing runs, nothing crashes
    monkeypatch.setattr(deps, "check", lambda *a, **k: deps.DepStatus((), {"numpy": "2"}, deps.deps_dir()))
    props.items["check_deps"].callback(props, None)    # installed meanwhile: "Check again" starts MindFlow
    assert entry._script is not None and entry._script.host is not None
    entry.script_unload()
    assert data.refs == 1
