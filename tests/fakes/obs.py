"""A fake ``obspython`` for the OBS adapter's unit tests — the only place fakes stand in for OBS (the end-to-end tests
run a real OBS): the calls MindFlow makes, recorded (sources, properties, data, timers, hotkeys, frontend events,
graphics), and the fixtures that import the script's entry module against it (``fake_obs``, ``entry``) with the
helpers that drive it as OBS does (``load``, ``run_ticks``, ``fire``, ``hotkey``, ``prop``, ``shows``…).

Test modules import what they use from here, fixtures included::

    from tests.fakes.obs import entry, fake_obs, load  # noqa: F401  (fixtures)
"""

from __future__ import annotations

import importlib
import itertools
import sys
import time
import types
from pathlib import Path

import pytest

from obs_mindflow.obs import deps
from tests.conftest import ROOT, load_photo, paste


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
        self.settings = {"font": {"face": "DejaVu Sans", "size": 48}} if unversioned_id.startswith("text_") else {}


class FakeProps:
    def __init__(self):
        self.items = {}

    def find(self, name):
        if name in self.items:
            return self.items[name]
        for p in self.items.values():
            if p.kind == "group":
                found = p.content.find(name)
                if found is not None:
                    return found
        return None


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
                  OBS_COMBO_FORMAT_STRING=3, OBS_GROUP_NORMAL=1, OBS_PATH_FILE=0, OBS_PATH_DIRECTORY=2, OBS_SOURCE_VIDEO=1,
                  OBS_SOURCE_ASYNC=4, GS_BGRA=5, GS_ZS_NONE=0, GS_CLEAR_COLOR=1, GS_BLEND_ONE=1, GS_BLEND_ZERO=0)
    events = ["STREAMING_STARTING", "STREAMING_STARTED", "STREAMING_STOPPING", "STREAMING_STOPPED",
              "RECORDING_STARTING", "RECORDING_STARTED", "RECORDING_STOPPING", "RECORDING_STOPPED",
              "SCENE_CHANGED", "FINISHED_LOADING", "SCRIPTING_SHUTDOWN", "SCENE_COLLECTION_CHANGING"]
    for i, e in enumerate(events):
        consts[f"OBS_FRONTEND_EVENT_{e}"] = 100 + i
    o.__dict__.update(consts)

    o.script_log = lambda level, text: o.logs.append((level, text))
    o.locale = "en-US"                                   # OBS's UI language (Settings > General > Language)
    o.obs_get_locale = lambda: o.locale
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
    o.obs_source_get_settings = lambda src: FakeData(o, src.settings)

    def get_obj(d, key):
        value = d.values.get(key)
        return FakeData(o, value) if isinstance(value, dict) else None
    o.obs_data_get_obj = get_obj
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
    o.obs_source_get_display_name = lambda uid: {"ffmpeg_source": "Media Source", "v4l2_input": "Video Capture Device",
                                                  "text_ft2_source": "Text (FreeType 2)",
                                                  "image_source": "Image"}.get(uid)
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
    o.obs_properties_add_int_slider = lambda props, n, d, lo, hi, step: add(props, n, "int", d, range=(lo, hi))
    o.obs_properties_add_int = lambda props, n, d, lo, hi, step: add(props, n, "int", d, range=(lo, hi))
    o.obs_properties_add_bool = lambda props, n, d: add(props, n, "bool", d)
    o.obs_properties_add_path = lambda props, n, d, t, f, default: add(props, n, "path", d, path_type=t)
    o.obs_properties_add_button = lambda props, n, d, cb: add(props, n, "button", d, callback=cb)
    o.obs_properties_add_group = lambda props, n, d, t, content: add(props, n, "group", d, content=content)
    o.obs_properties_get = lambda props, n: props.find(n)
    o.obs_property_description = lambda p: p.description
    o.obs_property_set_description = lambda p, d: setattr(p, "description", d)
    o.obs_property_visible = lambda p: p.visible
    o.obs_property_text_info_type = lambda p: p.info_type if p.info_type is not None else 0
    o.obs_property_list_add_string = lambda p, label, value: p.items.append((label, value))
    o.obs_property_set_visible = lambda p, v: setattr(p, "visible", v)
    o.obs_property_set_long_description = lambda p, t: setattr(p, "long_description", t)
    o.obs_property_text_set_info_type = lambda p, t: setattr(p, "info_type", t)
    o.obs_property_text_set_info_word_wrap = lambda p, w: None
    o.obs_property_set_modified_callback = lambda p, cb: setattr(p, "callback", cb)
    o.obs_property_list_item_count = lambda p: len(p.items)
    o.obs_property_list_item_name = lambda p, i: p.items[i][0]
    o.obs_property_list_item_string = lambda p, i: p.items[i][1]
    o.obs_property_list_clear = lambda p: p.items.clear()
    kinds = {"bool": 1, "int": 2, "float": 3, "text": 4, "path": 5, "list": 6, "button": 8, "group": 12}
    o.__dict__.update({f"OBS_PROPERTY_{k.upper()}": v for k, v in kinds.items()})
    o.obs_property_get_type = lambda p: kinds[p.kind]
    # signals: libobs's global handler (a rename in OBS calls the connected callbacks with its calldata)
    o.signals = {}
    o.obs_get_signal_handler = lambda: "global"
    o.signal_handler_connect = lambda sh, name, cb: o.signals.setdefault((sh, name), []).append(cb)
    o.signal_handler_disconnect = lambda sh, name, cb: (  # obs-scripting: nothing when not connected
        cb in o.signals.get((sh, name), []) and o.signals[(sh, name)].remove(cb))
    o.calldata_string = lambda cd, key: cd[key]

    def rename_source(old, new):
        src = o.sources.pop(old)
        src.name = new
        o.sources[new] = src
        for cb in list(o.signals.get(("global", "source_rename"), [])):
            cb({"source": src, "prev_name": old, "new_name": new})
    o.rename_source = rename_source
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


ADAPTER_MODULES = ["mindflow_obs", "obs_mindflow.obs.obsdata", "obs_mindflow.obs.objects", "obs_mindflow.obs.capture",
                   "obs_mindflow.obs.sources", "obs_mindflow.obs.scriptlog", "obs_mindflow.obs.textout",
                   "obs_mindflow.obs.calibration", "obs_mindflow.obs.actions", "obs_mindflow.obs.moments",
                   "obs_mindflow.obs.status",
                   "obs_mindflow.obs.hotkeys", "obs_mindflow.obs.controller", "obs_mindflow.obs.filebuttons",
                   "obs_mindflow.obs.renames", "obs_mindflow.obs.capabilities",
                   "obs_mindflow.obs.panel", "obs_mindflow.obs.language"]


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
    if module._script is not None or module._load is not None:
        module.script_unload()


def settings_data(o, tmp_path, **values):
    base = {"video_source": "Webcam", "text_source": "Emotion text", "report_dir": str(tmp_path / "reports"),
            "rate_hz": 15.0, "min_report_s": 0}
    base.update(values)
    return FakeData(o, base)


def load(entry, o, data):
    entry.script_defaults(data)
    entry.script_description()
    entry.script_load(data)
    entry.script_update(data)
    return entry._script


def logged(o):
    """The script log as written, with wrapped lines joined again."""
    return "\n".join(text for _, text in o.logs).replace("\n    ", " ")


def fire(entry, o, event_name):
    for cb in list(o.event_callbacks):
        cb(getattr(o, f"OBS_FRONTEND_EVENT_{event_name}"))


def hotkey(o, name):
    """Press function of MindFlow's hotkey ``name`` as OBS delivers it: the callback (obs-scripting's defer thread),
    then the UI-thread tasks it queued."""
    cb = next(c for _, (n, _, c) in o.hotkeys.items() if n == name)

    def press(pressed=True):
        cb(pressed)
        while o.ui_tasks:
            o.ui_tasks.pop(0)()
    return press


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


def prop(props, name):
    """A property of the panel, also inside its Advanced group."""
    return props.find(name)


def shows(props, name):
    """What a property shows: its text when visible, ``None`` when hidden."""
    p = props.find(name)
    return p.description if p is not None and p.visible else None
