"""A second, test-only OBS script that the end-to-end harness loads beside MindFlow (never shipped, never in
``obs_mindflow/``): it does what a person would do in OBS's window during a test run.

Settings (the harness writes them into the scene collection's ``modules.scripts-tool`` list):

- ``stop_after_s`` — stop the recording this many seconds after it started (``obs_frontend_recording_stop``);
- ``stop_stream_after_s`` — stop streaming this many seconds after it started (``obs_frontend_streaming_stop``);
- ``clock_source`` — a text source that shows OBS's monotonic clock (milliseconds, last 6 digits), set every frame
  before it is rendered: a burnt-in clock for the stream latency bench;
- ``trace_file`` / ``trace_text_source`` — a JSON-lines file: every change of that text source's text and every new
  result of MindFlow's analysis (read from the loaded script's objects), stamped with OBS's monotonic clock on the
  graphics thread (once per frame) — what the streaming test and bench compare the broadcast with;
- ``switch_collection`` / ``switch_after_s`` — switch to that scene collection this many seconds after the
  recording started (OBS then unloads and reloads every script: a reload mid-session);
- ``switch_scene`` / ``switch_scene_after_s`` / ``switch_back_after_s`` — switch to that scene this many seconds after
  the recording started, and back to the scene it left that many seconds after it started (what a moment's action
  does: the control runs of a test of MindFlow's scene switch do it without MindFlow);
- ``load_runtime`` — load numpy, OpenCV and onnxruntime (with a model session) as MindFlow does, touching no OBS
  object (the control runs of :func:`obs_harness.control_runs` do: see :func:`_load_runtime`);
- ``sample_file`` / ``sample_every_s`` — a JSON-lines file: every ``sample_every_s`` seconds (default 10), OBS's
  own frame counters (rendered and lagged frames: ``obs_get_total_frames`` / ``obs_get_lagged_frames``; encoded and
  skipped frames of the video output, through libobs with ctypes as obspython does not wrap them), every Python
  thread's name and native id, and the loaded MindFlow's analyser counters (the soak tool's samples,
  ``tools/soak_obs.py``);
- ``quit_file`` — when this file appears, close OBS's main window as File > Exit does;
- ``stack_dump`` — a file: SIGUSR1 then makes Python write every thread's stack there (the harness sends it to a
  hung OBS before killing it);
- ``panel_commands`` / ``panel_results`` — MindFlow's panel as OBS's Tools > Scripts dialog drives it (see
  :func:`_panel_commands`): the test writes commands to the first file, the results are appended to the second.

Frontend calls that change the UI run on OBS's UI thread (``run_on_ui_thread``, MindFlow's own helper): the timer
below runs on the graphics thread, and a scene-collection switch from there rebuilds Qt widgets off the GUI thread.
Only the standard library and MindFlow's ``obs/uitask.py`` (ctypes) are imported, so the hooks also work where
MindFlow's packages are missing (the missing-dependencies test).

Log lines start with ``MindFlow e2e:``; the harness waits for them.
"""

import ctypes
import faulthandler
import os
import signal
import sys
import time

import obspython as obs

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class _State:
    def __init__(self):
        self.stop_after_s = 0.0
        self.switch_collection = ""
        self.switch_after_s = 0.0
        self.quit_file = ""
        self.stack_file = None
        self.recording_t0 = None
        self.done = set()
        self.stop_stream_after_s = 0.0
        self.streaming_t0 = None
        self.clock_source = ""
        self.trace = None
        self.trace_text_source = ""
        self.last_text = None
        self.last_seq = None
        self.panel_commands = ""
        self.panel_results = ""
        self.panel = None           # the properties object, as the Scripts dialog keeps it
        self.switch_scene = ""
        self.switch_scene_after_s = 0.0
        self.switch_back_after_s = 0.0
        self.scene_left = ""
        self.runtime = None
        self.sample = None
        self.sample_every_s = 10.0
        self.sample_t = 0.0


_state = None


def _log(message):
    obs.script_log(obs.LOG_INFO, "MindFlow e2e: " + message)


def script_description():
    return "MindFlow end-to-end test hooks (tests only)."


def script_load(settings):
    global _state
    if _ROOT not in sys.path:
        sys.path.insert(0, _ROOT)
    _state = _State()
    _state.stop_after_s = max(0.0, obs.obs_data_get_double(settings, "stop_after_s"))
    _state.switch_collection = obs.obs_data_get_string(settings, "switch_collection")
    _state.switch_after_s = max(0.0, obs.obs_data_get_double(settings, "switch_after_s"))
    _state.quit_file = obs.obs_data_get_string(settings, "quit_file")
    path = obs.obs_data_get_string(settings, "stack_dump")
    if path and hasattr(signal, "SIGUSR1"):
        _state.stack_file = open(path, "a", encoding="utf-8")
        faulthandler.register(signal.SIGUSR1, file=_state.stack_file, all_threads=True)
    _state.stop_stream_after_s = max(0.0, obs.obs_data_get_double(settings, "stop_stream_after_s"))
    _state.clock_source = obs.obs_data_get_string(settings, "clock_source")
    trace = obs.obs_data_get_string(settings, "trace_file")
    if trace:
        _state.trace = open(trace, "a", encoding="utf-8")
        _state.trace_text_source = obs.obs_data_get_string(settings, "trace_text_source")
    _state.panel_commands = obs.obs_data_get_string(settings, "panel_commands")
    _state.panel_results = obs.obs_data_get_string(settings, "panel_results")
    _state.switch_scene = obs.obs_data_get_string(settings, "switch_scene")
    _state.switch_scene_after_s = max(0.0, obs.obs_data_get_double(settings, "switch_scene_after_s"))
    _state.switch_back_after_s = max(0.0, obs.obs_data_get_double(settings, "switch_back_after_s"))
    sample = obs.obs_data_get_string(settings, "sample_file")
    if sample:
        _state.sample = open(sample, "a", encoding="utf-8")
        _state.sample_every_s = obs.obs_data_get_double(settings, "sample_every_s") or 10.0
    if obs.obs_data_get_bool(settings, "load_runtime"):
        _state.runtime = _load_runtime()
    obs.timer_add(_on_timer, 100)
    if _state.clock_source or _state.trace is not None:
        obs.timer_add(_on_frame, 1)     # 1 ms: due at every tick, so it runs once per frame
    _log(f"hooks loaded (stop_after_s={_state.stop_after_s:g}, switch_collection={_state.switch_collection!r}, "
         f"switch_after_s={_state.switch_after_s:g}, quit_file={'set' if _state.quit_file else 'none'}, "
         f"stop_stream_after_s={_state.stop_stream_after_s:g}, clock_source={_state.clock_source!r}, "
         f"trace={'on' if _state.trace else 'off'})")


def script_unload():
    global _state
    obs.timer_remove(_on_timer)
    if _state is not None and (_state.clock_source or _state.trace is not None):
        obs.timer_remove(_on_frame)
    s, _state = _state, None
    if s is not None and s.stack_file is not None:
        faulthandler.unregister(signal.SIGUSR1)
        s.stack_file.close()
    if s is not None and s.trace is not None:
        s.trace.close()
    if s is not None and s.sample is not None:
        s.sample.close()
    if s is not None and s.panel is not None:
        obs.obs_properties_destroy(s.panel)


def _load_runtime():
    """Load what MindFlow loads into OBS's process besides its own code — numpy, OpenCV and onnxruntime from the
    packages folder, an inference session on the default model, one inference — and touch no OBS object: a control
    run with it tells OBS's faults that any script loading these libraries meets from faults of MindFlow's own
    (OBS 32 crashes at exit more often with them loaded: docs/obs32-shutdown.md)."""
    try:
        from obs_mindflow.obs import deps
        deps.add_to_path()
        import cv2
        import numpy as np
        import onnxruntime as ort

        from obs_mindflow.engine.catalog import default_model_dir
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(str(default_model_dir() / "model.onnx"), options,
                                       providers=["CPUExecutionProvider"])
        shape = [d if isinstance(d, int) else 1 for d in session.get_inputs()[0].shape]
        session.run(None, {session.get_inputs()[0].name: np.zeros(shape, np.float32)})
        cv2.CascadeClassifier()
    except Exception as e:  # noqa: BLE001 - a control run without the packages (the missing-dependencies test)
        _log(f"runtime not loaded ({type(e).__name__}: {e})")
        return None
    _log(f"runtime loaded (numpy {np.__version__}, OpenCV {cv2.__version__}, onnxruntime {ort.__version__})")
    return session


def _on_timer():
    s = _state
    if s is None:
        return
    if s.quit_file and "quit" not in s.done and os.path.exists(s.quit_file):
        s.done.add("quit")
        _log("closing OBS's main window (as File > Exit does)")
        _on_ui_thread(close_main_window)
    if s.panel_commands and os.path.exists(s.panel_commands):
        _panel_commands(s)
    _stream_hooks(s)
    if s.sample is not None and time.monotonic() - s.sample_t >= s.sample_every_s:
        s.sample_t = time.monotonic()
        try:
            _sample(s)
        except Exception as exc:  # noqa: BLE001 - a test aid must not break OBS; say it once
            if "sample" not in s.done:
                s.done.add("sample")
                _log(f"sample failed: {type(exc).__name__}: {exc}")
    if s.recording_t0 is None:
        if obs.obs_frontend_recording_active():
            s.recording_t0 = time.monotonic()
        return
    age = time.monotonic() - s.recording_t0
    if s.stop_after_s and age >= s.stop_after_s and "stop" not in s.done:
        s.done.add("stop")
        _log(f"stopping the recording {age:.1f} s after it started")
        _on_ui_thread(obs.obs_frontend_recording_stop)
    if s.switch_scene:
        _scene_hooks(s, age)
    if s.switch_collection and s.switch_after_s and age >= s.switch_after_s and "switch" not in s.done:
        s.done.add("switch")
        if obs.obs_frontend_get_current_scene_collection() != s.switch_collection:
            name = s.switch_collection
            _log(f"switching to scene collection '{name}'")
            _on_ui_thread(lambda: obs.obs_frontend_set_current_scene_collection(name))


def _scene_hooks(s, age):
    """Switch to ``switch_scene`` and back (from the 100-ms timer; the switches run on OBS's UI thread)."""
    def switch(name, remember):
        def run():
            current = obs.obs_frontend_get_current_scene()
            if current is not None:
                if remember:
                    s.scene_left = obs.obs_source_get_name(current)
                obs.obs_source_release(current)
            target = obs.obs_get_source_by_name(name)
            if target is not None:
                obs.obs_frontend_set_current_scene(target)
                obs.obs_source_release(target)
        _on_ui_thread(run)
    if age >= s.switch_scene_after_s and "scene" not in s.done:
        s.done.add("scene")
        _log(f"switching to the scene '{s.switch_scene}'")
        switch(s.switch_scene, True)
    if s.switch_back_after_s and age >= s.switch_back_after_s and s.scene_left and "scene back" not in s.done:
        s.done.add("scene back")
        _log(f"switching back to the scene '{s.scene_left}'")
        switch(s.scene_left, False)


def _stream_hooks(s):
    """Stop streaming ``stop_stream_after_s`` after it started (from the 100-ms timer)."""
    if s.streaming_t0 is None:
        if obs.obs_frontend_streaming_active():
            s.streaming_t0 = time.monotonic()
            _log("streaming is active")
        return
    age = time.monotonic() - s.streaming_t0
    if s.stop_stream_after_s and age >= s.stop_stream_after_s and "stop_stream" not in s.done:
        s.done.add("stop_stream")
        _log(f"stopping the stream {age:.1f} s after it started")
        _on_ui_thread(obs.obs_frontend_streaming_stop)


def _on_frame():
    """Once per frame on the graphics thread (a timer due at every tick), before the frame is rendered: the burnt-in
    clock and the trace.

    A timer, not ``script_tick``: obs-scripting calls every script's ``script_tick`` from the graphics thread and then
    sets its current-script global to NULL, while another script's ``script_load`` may be running on the UI thread
    (it lets the graphics thread in whenever it releases the GIL, e.g. importing numpy); MindFlow's load then calls
    ``timer_add`` with no current script and OBS crashes (seen: 3 of 6 runs). Timer callbacks restore the global."""
    s = _state
    if s is None or not (s.clock_source or s.trace):
        return
    now = time.monotonic()
    if s.clock_source:
        _set_text(s.clock_source, f"{int(now * 1000) % 1000000:06d}")
    if s.trace is not None:
        try:
            _trace(s, now)
        except Exception as exc:  # noqa: BLE001 - a test aid must not break OBS; say it once
            if "trace" not in s.done:
                s.done.add("trace")
                _log(f"trace failed: {type(exc).__name__}: {exc}")


def _set_text(name, text):
    source = obs.obs_get_source_by_name(name)
    if source is None:
        return
    data = obs.obs_data_create()
    obs.obs_data_set_string(data, "text", text)
    obs.obs_source_update(source, data)
    obs.obs_data_release(data)
    obs.obs_source_release(source)


def _trace(s, now):
    import json

    lines = []
    if s.trace_text_source:
        source = obs.obs_get_source_by_name(s.trace_text_source)
        if source is not None:
            data = obs.obs_source_get_settings(source)
            text = obs.obs_data_get_string(data, "text")
            obs.obs_data_release(data)
            obs.obs_source_release(source)
            if text != s.last_text:
                s.last_text = text
                lines.append({"kind": "text", "t": now, "text": text})
    # MindFlow's newest analysis result, through the loaded script's objects (the script module OBS imported as
    # "mindflow_obs"; its current load's controller; the engine's session host and its latest result). Test
    # instrumentation only: when those names change, the trace has no results and the bench says so.
    script = getattr(sys.modules.get("mindflow_obs"), "_script", None)
    engine = getattr(script, "host", None) or getattr(script, "live", None)
    latest = getattr(engine, "latest", None)
    if latest is not None:
        r = latest()
        seq = getattr(r, "seq", None)
        if seq != s.last_seq:
            s.last_seq = seq
            timings = getattr(r, "timings", None)
            lines.append({"kind": "result", "t": now, "seq": seq, "ts": getattr(r, "timestamp", None),
                          "emotion": getattr(r, "emotion", None), "face": bool(getattr(r, "face_present", False)),
                          "ms": getattr(timings, "total", None)})
    for line in lines:
        s.trace.write(json.dumps(line) + "\n")
    if lines:
        s.trace.flush()


def _video_counters():
    """``(encoded, skipped)`` frames of OBS's video output (``video_output_get_total_frames`` /
    ``video_output_get_skipped_frames``: the "skipped frames due to encoding lag" of OBS's log), through libobs with
    ctypes; ``(None, None)`` where libobs is not found."""
    mode = getattr(os, "RTLD_NOLOAD", 0) | getattr(os, "RTLD_LAZY", 0)
    for name in ("libobs.so.0", "libobs.so"):
        try:
            lib = ctypes.CDLL(name, mode=mode)
        except OSError:
            continue
        lib.obs_get_video.restype = ctypes.c_void_p
        video = lib.obs_get_video()
        if not video:
            return None, None
        counters = []
        for fn in (lib.video_output_get_total_frames, lib.video_output_get_skipped_frames):
            fn.argtypes = [ctypes.c_void_p]
            fn.restype = ctypes.c_uint32
            counters.append(int(fn(video)))
        return tuple(counters)
    return None, None


def _sample(s):
    import json
    import threading

    encoded, skipped = _video_counters()
    row = {"t": time.monotonic(), "total_frames": obs.obs_get_total_frames(),
           "lagged_frames": obs.obs_get_lagged_frames(), "encoded_frames": encoded, "skipped_frames": skipped,
           "recording": bool(obs.obs_frontend_recording_active()),
           "threads": [[t.name, t.native_id] for t in threading.enumerate()]}
    # The loaded MindFlow's analyser counters (test instrumentation: the names the trace above also reads).
    script = getattr(sys.modules.get("mindflow_obs"), "_script", None)
    host = getattr(script, "host", None) or getattr(script, "live", None)
    analyzer = getattr(host, "analyzer", None)
    if analyzer is not None:
        st = analyzer.stats()
        row.update(submitted=st.submitted, analysed=st.analysed, dropped=st.dropped)
    s.sample.write(json.dumps(row) + "\n")
    s.sample.flush()


def _panel_commands(s):
    """Drive MindFlow's panel the way OBS's Tools > Scripts dialog does, from commands the test wrote (one per line;
    the file is consumed; the first line is the batch id):

    - ``open``: ``script_properties()`` of the loaded MindFlow script, kept like the dialog keeps it (OBS redraws
      from this object when a callback returns True; it does not call ``script_properties`` again);
    - ``press NAME``: click button NAME (``obs_property_button_clicked``, on OBS's UI thread, as a click does);
    - ``set NAME JSON``: what typing into / choosing in a field does (``ControlChanged``): the value into the
      script's settings, ``script_update``, then the property's modified callback — on the UI thread;
    - ``hotkey NAME``: press and release MindFlow's hotkey NAME (``obs_hotkey_trigger_routed_callback`` on the UI
      thread, where OBS's frontend routes hotkeys);
    - ``record start|stop``: start or stop the recording;
    - ``source add NAME FILE``: a Media Source playing FILE, added to the current scene (the Sources dock's "+");
      ``source rename OLD NEW`` (``obs_source_set_name``, the dock's rename); ``source remove NAME``
      (``obs_source_remove``, the dock's delete);
    - ``dump``: append ``{"id", "results", "panel": {name: [text, visible]}, "lists": {name: [the list's values]},
      "settings": {list or text field: its value in the script's settings}, "text": the text source's text}`` to
      ``panel_results``.

    After a ``press`` or ``set`` whose callback returned True, the panel is redrawn as OBS's properties view redraws
    it (``UI/properties-view.cpp``, ``RefreshProperties``): each list whose setting's value is not among its values
    gets its first value written into the setting, then ``script_update`` and the list's modified callback run
    ("trigger a settings update if the index was not found" in ``AddList``) — what turned a renamed webcam into
    "(choose your webcam)" (issue 23).

    ``open`` runs here (a script callback: the panel's callbacks need one to be registered); the others run in order
    on the UI thread. Test instrumentation only: it reaches the script through ``sys.modules["mindflow_obs"]``."""
    import json

    with open(s.panel_commands, encoding="utf-8") as f:
        lines = [ln.strip() for ln in f.read().splitlines() if ln.strip()]
    os.remove(s.panel_commands)
    if not lines:
        return
    batch, results = lines[0], []
    module = sys.modules.get("mindflow_obs")
    if module is None:
        _log(f"panel {batch}: MindFlow's script is not loaded")
        return

    def prop(name):
        return obs.obs_properties_get(s.panel, name) if s.panel is not None else None

    def settings():
        load = getattr(module, "_load", None)
        return getattr(load, "settings", None)

    names = getattr(getattr(module, "_panel", None), "NAMES", ())

    def redraw():
        data = settings()
        for name in names:
            p = prop(name)
            if p is None or obs.obs_property_get_type(p) != obs.OBS_PROPERTY_LIST:
                continue
            values = [obs.obs_property_list_item_string(p, i) for i in range(obs.obs_property_list_item_count(p))]
            if values and obs.obs_data_get_string(data, name) not in values:
                obs.obs_data_set_string(data, name, values[0])
                module.script_update(data)
                obs.obs_property_modified(p, data)
                _log(f"panel redraw: '{name}' was not in its list; OBS set it to {values[0]!r}")

    def run(cmd):
        verb, _, rest = cmd.partition(" ")
        if verb == "press":
            results.append([cmd, bool(obs.obs_property_button_clicked(prop(rest), None))])
            if results[-1][1]:
                redraw()
        elif verb == "set":
            name, _, raw = rest.partition(" ")
            value, data = json.loads(raw), settings()
            setter = {bool: obs.obs_data_set_bool, int: obs.obs_data_set_int, float: obs.obs_data_set_double,
                      str: obs.obs_data_set_string}[type(value)]
            setter(data, name, value)
            module.script_update(data)
            p = prop(name)
            results.append([cmd, bool(obs.obs_property_modified(p, data)) if p is not None else None])
            if results[-1][1]:
                redraw()
        elif verb == "source":
            results.append([cmd, _source_command(rest)])
        elif verb == "hotkey":
            hid = module._load.hotkeys.id_of(rest)
            obs.obs_hotkey_trigger_routed_callback(hid, True)
            obs.obs_hotkey_trigger_routed_callback(hid, False)
            results.append([cmd, hid])
        elif verb == "record":
            (obs.obs_frontend_recording_start if rest == "start" else obs.obs_frontend_recording_stop)()
            results.append([cmd, True])
        elif verb == "dump":
            shown, lists, values = {}, {}, {}
            for name in names:
                p = prop(name)
                if p is not None:
                    shown[name] = [obs.obs_property_description(p), bool(obs.obs_property_visible(p))]
                    kind = obs.obs_property_get_type(p)
                    if kind == obs.OBS_PROPERTY_LIST:
                        lists[name] = [obs.obs_property_list_item_string(p, i)
                                       for i in range(obs.obs_property_list_item_count(p))]
                    if kind == obs.OBS_PROPERTY_LIST or (kind == obs.OBS_PROPERTY_TEXT and
                                                         obs.obs_property_text_type(p) != obs.OBS_TEXT_INFO):
                        values[name] = obs.obs_data_get_string(settings(), name)
            text = None
            script = getattr(module, "_script", None)
            source_name = getattr(getattr(script, "settings", None), "text_source", "")
            source = obs.obs_get_source_by_name(source_name) if source_name else None
            if source is not None:
                data = obs.obs_source_get_settings(source)
                text = obs.obs_data_get_string(data, "text")
                obs.obs_data_release(data)
                obs.obs_source_release(source)
            with open(s.panel_results, "a", encoding="utf-8") as out:
                out.write(json.dumps({"id": batch, "results": list(results), "panel": shown, "lists": lists,
                                      "settings": values, "text": text}) + "\n")

    for cmd in lines[1:]:
        if cmd == "open":
            if s.panel is not None:
                obs.obs_properties_destroy(s.panel)
            s.panel = module.script_properties()
        else:
            _on_ui_thread(lambda cmd=cmd: run(cmd))
    _log(f"panel batch {batch} queued")


def _source_command(rest):
    """``add NAME FILE`` / ``rename OLD NEW`` / ``remove NAME`` (names without spaces), on the UI thread, through
    the calls OBS's Sources dock makes. Returns whether it was done."""
    verb, *args = rest.split(" ")
    if verb == "add":
        name, path = args
        data = obs.obs_data_create()
        obs.obs_data_set_string(data, "local_file", path)
        obs.obs_data_set_bool(data, "is_local_file", True)
        obs.obs_data_set_bool(data, "looping", True)
        obs.obs_data_set_bool(data, "close_when_inactive", False)
        source = obs.obs_source_create("ffmpeg_source", name, data, None)
        obs.obs_data_release(data)
        scene_source = obs.obs_frontend_get_current_scene()
        obs.obs_scene_add(obs.obs_scene_from_source(scene_source), source)
        obs.obs_source_release(scene_source)
        obs.obs_source_release(source)
        return True
    source = obs.obs_get_source_by_name(args[0])
    if source is None:
        return False
    if verb == "rename":
        obs.obs_source_set_name(source, args[1])
    elif verb == "remove":
        obs.obs_source_remove(source)
    obs.obs_source_release(source)
    return verb in ("rename", "remove")


def _on_ui_thread(fn):
    from obs_mindflow.obs.uitask import run_on_ui_thread

    if not run_on_ui_thread(fn):
        _log("cannot reach OBS's UI thread; the hook does nothing")


def close_main_window():
    """``QWidget::close()`` on OBS's main window — what File > Exit does — through the Qt Widgets library OBS has
    already loaded (Qt 6 or 5; Linux symbol names). Call it on the UI thread.

    The tests stop OBS this way rather than with SIGINT: OBS 29 closes its window from inside its SIGINT handler,
    i.e. in whatever the main thread was doing at that moment, and when that was an X11 call or a paint, OBS
    deadlocked on libxcb's lock or crashed painting (seen: about one run in ten after a scene-collection switch)."""
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
