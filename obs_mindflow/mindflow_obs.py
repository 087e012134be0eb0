"""MindFlow for OBS Studio — add this file in Tools > Scripts (see install.md).

The OBS entry point, kept thin: it puts the checkout and the dependency folder on ``sys.path``, checks that numpy,
OpenCV and onnxruntime import (and offers to install them when they do not — the panel's install button runs the
install helper for OBS's own Python in the background), and forwards OBS's callbacks to one
:class:`obs_mindflow.obs.controller.MindFlowScript` created in ``script_load`` (or once the packages are installed)
and closed in ``script_unload``. OBS keeps this module cached across scene-collection switches, so no state lives in
its globals beyond the current load's objects. Timer, hotkey, button and frontend callbacks are module-level
functions (OBS's binding ignores bound methods); they are registered at every load, with or without the packages.

The panel (Tools > Scripts > MindFlow) is built by :mod:`obs_mindflow.obs.panel` and kept true from the callbacks:
OBS redraws it from the same properties object when a callback returns True.
"""

import logging
import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import obspython as obs  # noqa: E402

from obs_mindflow import __version__  # noqa: E402
from obs_mindflow.obs import deps as _deps  # noqa: E402  (standard library only)
from obs_mindflow.obs import panel as _panel  # noqa: E402  (obspython and light modules only)
from obs_mindflow.obs.hotkeys import Hotkeys, unregister_callback  # noqa: E402
from obs_mindflow.obs.installer import DepsInstall  # noqa: E402  (standard library only)
from obs_mindflow.obs.obsdata import set_defaults  # noqa: E402  (obspython and the settings table only)
from obs_mindflow.obs.settings import TEXT_UPDATE_HZ  # noqa: E402

_deps.add_to_path()


class _Load:
    """What one load holds besides the controller: the settings (a reference), the hotkeys, the install."""

    def __init__(self, settings):
        obs.obs_data_addref(settings)
        self.settings = settings
        self.hotkeys = Hotkeys()
        self.install = None          # DepsInstall while the install button's run is going on or done
        self.install_logged = 0      # install output lines already written to the log
        self.starting = False        # the late start (after an install) is queued on the UI thread
        self.note = ""               # the outcome of "Check again" while packages are missing

    def release(self):
        if self.install is not None:
            self.install.stop()
        obs.obs_data_release(self.settings)


_script = None   # the MindFlowScript of the current load; None while unloaded or the packages are missing
_load = None     # the _Load of the current load


# ==================================================================================================================
# Lifecycle
# ==================================================================================================================

def script_description():
    # Shown above the panel; obs-scripting reads it once per load (a script reload), so it holds nothing that changes:
    # "the packages are missing" stayed there after the install button had installed them (issue 23). The panel
    # below says what is missing.
    from obs_mindflow.obs.language import ui_words

    return ui_words()("panel.about", version=__version__)


def script_defaults(settings):
    from obs_mindflow.engine.reports.storage import default_report_dir  # standard library only

    set_defaults(settings, str(default_report_dir()))


def script_load(settings):
    global _load
    if _script is not None or _load is not None:   # a load without the previous unload: close the stale objects
        script_unload()
    _load = _Load(settings)
    obs.script_log(obs.LOG_INFO, f"MindFlow {__version__} loaded from {_ROOT} (OBS's language: {obs.obs_get_locale()})")
    _load.hotkeys.register(settings, {"mindflow.session": _on_hotkey_session,
                                      "mindflow.calibrate": _on_hotkey_calibrate,
                                      "mindflow.pause": _on_hotkey_pause, "mindflow.reset": _on_hotkey_reset})
    obs.obs_frontend_add_event_callback(_on_frontend_event)
    obs.timer_add(_on_timer, int(1000 / TEXT_UPDATE_HZ))
    obs.signal_handler_connect(obs.obs_get_signal_handler(), "source_rename", _on_source_rename)
    status = _deps.check()
    if not status.ok:
        obs.script_log(obs.LOG_WARNING, "MindFlow: " + _deps.describe_missing(status))
        return
    _start(settings)


def _start(settings, bind=True):
    """Create the controller and load it (``bind``: called from one of OBS's script callbacks)."""
    global _script
    from obs_mindflow.obs.controller import MindFlowScript

    script = MindFlowScript()
    try:
        script.load(settings, bind=bind)
    except Exception:
        script.unload()
        raise
    _script = script      # only now: the timer and the tick (graphics thread) never see a half-loaded script


def script_update(settings):
    if _script is not None:
        _script.update(settings)


def script_save(settings):
    if _load is not None:
        _load.hotkeys.save(settings)


def script_tick(seconds):
    s = _script
    if s is not None:
        s.tick()


def script_unload():
    global _script, _load
    s, _script = _script, None
    load, _load = _load, None
    if load is not None:
        load.hotkeys.unregister()      # first, while OBS most likely still has this script as the current one
    unregister_callback(obs.timer_remove, _on_timer, "the text timer")
    unregister_callback(obs.obs_frontend_remove_event_callback, _on_frontend_event, "the frontend callback")
    unregister_callback(lambda cb: obs.signal_handler_disconnect(obs.obs_get_signal_handler(), "source_rename", cb),
                        _on_source_rename, "the rename signal")
    if s is not None:
        s.unload()
    if load is not None:
        load.release()


# ==================================================================================================================
# The panel
# ==================================================================================================================

_BUTTONS = ("install_deps", "check_deps", "session", "refresh", "calibrate", "clear_calibration", "open_report",
            "open_history", "open_reports", "add_overlay", "write_report", "reset")


def script_properties():
    from obs_mindflow.engine.catalog import MODELS_DIR
    from obs_mindflow.engine.reports.storage import default_report_dir
    from obs_mindflow.obs import sources
    from obs_mindflow.obs.language import ui_words, viewer_language_choices
    from obs_mindflow.obs.moments import ACTION_LABELS, trigger_choices

    s = _script
    current = _current(_LISTS)
    report_dir = str(default_report_dir())
    labels = ()
    if s is not None:
        report_dir = str(s.settings.report_root())
        labels = s.host.card.labels if s.host is not None else ()
    moment_lists = {"action": [(label, value) for value, label in ACTION_LABELS],
                    "action_trigger": trigger_choices(labels, current["action_trigger"]),
                    "action_source": [(n, n) for n in sources.shown_source_names()],
                    "action_scene": [(n, n) for n in sources.scene_names()]}
    ui = ui_words()
    props = _panel.build({name: globals()["_on_button_" + name] for name in _BUTTONS}, _on_modified,
                         video_sources=sources.video_source_choices(), text_sources=sources.text_source_names(),
                         models=_panel.model_choices(words=ui), current=current, models_dir=str(MODELS_DIR),
                         report_dir=report_dir, moment_lists=moment_lists,
                         viewer_languages=viewer_language_choices(ui), ui=ui)
    _panel.apply(props, _view(), force_status=True)
    return props


#: The panel's lists whose items change while OBS runs (sources and scenes added, renamed, removed; the model's
#: labels).
_LISTS = ("video_source", "text_source", "action_trigger", "action_source", "action_scene", "viewer_language")


def _current(names):
    """The settings' values of ``names``, as OBS's properties view reads them (the script's settings object)."""
    if _load is not None:
        return {k: obs.obs_data_get_string(_load.settings, k) for k in names}
    return dict.fromkeys(names, "")


def _lists():
    """The items the panel's changing lists should hold now (:func:`obs_mindflow.obs.panel.list_items`)."""
    from obs_mindflow.obs import sources
    from obs_mindflow.obs.language import ui_words
    from obs_mindflow.obs.moments import trigger_choices

    current = _current(_LISTS)
    s = _script
    labels = s.host.card.labels if s is not None and s.host is not None else ()
    items = _panel.list_items
    w = ui_words()
    empty = {name: w(key) for name, key in _panel.EMPTY_KEYS.items()}
    missing = _panel.missing_entry(w)
    return {"video_source": items(sources.video_source_choices(), current["video_source"], empty["video_source"],
                                  missing),
            "text_source": items([(n, n) for n in sources.text_source_names()], current["text_source"],
                                 empty["text_source"], missing),
            "action_trigger": items(trigger_choices(labels, current["action_trigger"]), current["action_trigger"],
                                    missing=missing),
            "action_source": items([(n, n) for n in sources.shown_source_names()], current["action_source"],
                                   empty["action_source"], missing),
            "action_scene": items([(n, n) for n in sources.scene_names()], current["action_scene"],
                                  empty["action_scene"], missing)}


def _view():
    """What the panel shows now."""
    s = _script
    if s is not None:
        return s.panel_view()
    return _missing_view()


def _missing_view():
    """The panel while the packages are missing: what is missing, the install button and its progress."""
    from datetime import datetime

    from obs_mindflow.obs.language import ui_words

    status = _deps.check()
    load = _load
    install = load.install.snapshot() if load is not None and load.install is not None else None
    items = {name: _panel.Item(visible=False) for name in _panel.SETTINGS + (
        "session", "calibrate", "clear_calibration", "result", "open_report", "history", "open_history",
        "last_error", "setup")}
    text = _deps.describe_missing(status) if not status.ok else "The packages are installed."
    kind = _panel.ERROR
    if install is not None and install.state != "idle":
        text = install.describe() + ("" if install.running or install.state == "done" else "\n\n" + text)
        kind = _panel.NORMAL if install.state in ("running", "done") else _panel.ERROR
    if load is not None and load.note:
        text = load.note + "\n\n" + text
    running = install is not None and install.running
    items["deps"] = _panel.Item(text, kind=kind)
    w = ui_words()
    items["install_deps"] = _panel.Item(w("panel.install_deps"), visible=not status.ok and not running)
    items["check_deps"] = _panel.Item(w("panel.check_deps"), visible=not running)
    now = datetime.now()
    state = "installing" if running else ("missing" if not status.ok else "installed")
    items["status"] = _panel.Item(w("status.packages_" + state) + "\n" + w("status.as_of", time=f"{now:%H:%M:%S}"))
    return _panel.PanelView(items, status_key=f"{state}|{install.phase if install else ''}")


def _refresh(props, force_status=True, typing=False):
    """Bring the open panel up to date, its lists too (``force_status``: also the status's "as of" time — after a
    button; ``typing``: a key typed in a text field — nothing is redrawn, see :func:`obs_mindflow.obs.panel.apply`).
    ``True`` when OBS must redraw it."""
    lists = False if typing or _script is None else _panel.refresh_lists(props, _lists())
    return _panel.apply(props, _view(), force_status, typing) or lists


# ==================================================================================================================
# Callbacks (module-level functions: OBS's Python binding ignores bound methods)
# ==================================================================================================================

def _on_frontend_event(event):
    if _script is not None:
        _script.frontend_event(event)


def _on_source_rename(calldata):
    # libobs's global signal, on the thread that renamed the source: only queued here (the timer applies it)
    s = _script
    if s is not None:
        s.renames.add(obs.calldata_string(calldata, "prev_name"), obs.calldata_string(calldata, "new_name"))


def _on_timer():
    if _script is not None:
        _script.text_timer()
    elif _load is not None:
        _install_timer(_load)


def _hotkey(pressed, action):
    """obs-scripting calls a script's hotkeys on its own thread (``defer_call_post``), not where OBS runs the
    buttons and frontend events: the action runs on OBS's UI thread instead, like everything that changes the
    session, its lines logged by the next timer call."""
    s = _script
    if not pressed or s is None:
        return

    def run():
        if _script is s and not s.closed:
            with s.log.queued():
                action(s)
    if not _queue_on_ui(run):
        run()


def _on_hotkey_session(pressed):
    _hotkey(pressed, lambda s: s.toggle_session())


def _on_hotkey_calibrate(pressed):
    _hotkey(pressed, lambda s: s.calibration.toggle())


def _on_hotkey_pause(pressed):
    _hotkey(pressed, lambda s: s.toggle_pause())


def _on_hotkey_reset(pressed):
    _hotkey(pressed, lambda s: s.reset_session())


def _on_button_session(props, prop):
    from obs_mindflow.obs.language import ui_words

    if _script is not None:       # the controller acts as labelled: the label, in OBS's language, back to English
        stop = obs.obs_property_description(prop) == ui_words()("panel.stop_session")
        _script.toggle_session(shown_label="Stop session" if stop else "Start session")
    return _refresh(props) or True


def _on_button_refresh(props, prop):
    if _script is None and _load is not None and _deps.check().ok and not _load.starting:
        _come_alive(_load)            # installed by hand meanwhile: start, as "Check again" does
    return _refresh(props) or True


def _button(action):
    """A button callback (a plain function, as OBS's binding needs) running ``action(script)``, then the redraw."""
    def callback(props, prop):
        if _script is not None:
            action(_script)
        return _refresh(props) or True
    return callback


_on_button_calibrate = _button(lambda s: s.calibration.toggle())
_on_button_clear_calibration = _button(lambda s: s.calibration.clear())
_on_button_open_report = _button(lambda s: _files().open_last_report(s))
_on_button_open_history = _button(lambda s: _files().open_history(s))
_on_button_open_reports = _button(lambda s: _files().open_report_folder(s))
_on_button_add_overlay = _button(lambda s: _files().add_overlay_source(s))
_on_button_write_report = _button(lambda s: _files().write_report_now(s))
_on_button_reset = _button(lambda s: s.reset_session())


def _files():
    from obs_mindflow.obs import filebuttons   # the reports' modules: imported once MindFlow runs

    return filebuttons


def _on_modified(props, prop, settings):
    # OBS calls script_update (with the new value) just before this: the view is already up to date. Redraw only
    # when something shown changed, and never for a key typed in a text field (a redraw replaces the field under
    # the cursor: keys typed meanwhile are lost).
    typing = obs.obs_property_get_type(prop) == obs.OBS_PROPERTY_TEXT
    return _refresh(props, force_status=False, typing=typing)


# ------------------------------------------------------------------------------------------------------------------
# Installing the packages from the panel
# ------------------------------------------------------------------------------------------------------------------

def _on_button_install_deps(props, prop):
    load = _load
    if load is not None and (load.install is None or not load.install.snapshot().running):
        load.note = ""
        load.install_logged = 0
        load.install = DepsInstall()
        state = load.install.start()
        obs.script_log(obs.LOG_INFO, f"MindFlow: installing the packages for {load.install.python} into "
                                     f"{load.install.folder} (in the background; OBS stays usable)")
        if state.state == "failed":
            obs.script_log(obs.LOG_WARNING, "MindFlow: " + state.describe())
    return _refresh(props) or True


def _on_button_check_deps(props, prop):
    load = _load
    if load is not None and _script is None and not load.starting:
        _deps.refresh_imports()
        status = _deps.check()
        if status.ok:
            _come_alive(load)
        else:
            load.note = "Still missing (checked just now)."
    return _refresh(props) or True


def _install_timer(load):
    """While the packages are missing (every timer call): the install's output to the log, and MindFlow started once
    the install has finished."""
    install = load.install
    if install is None:
        return
    for line in install.take_lines():
        load.install_logged += 1
        obs.script_log(obs.LOG_INFO, "MindFlow install: " + line)
    state = install.snapshot()
    if state.state == "done" and not load.starting:
        obs.script_log(obs.LOG_INFO, f"MindFlow: packages installed ({state.elapsed_s:.0f} s); starting MindFlow")
        load.starting = True          # on OBS's UI thread, where script_load runs (this timer: the graphics thread)
        if not _queue_on_ui(lambda: _come_alive(load, bind=False)):
            _come_alive(load)
    elif state.state == "failed" and load.note != state.message:
        load.note = state.message
        obs.script_log(obs.LOG_WARNING, "MindFlow: " + state.describe())


def _come_alive(load, bind=True):
    """Import the freshly installed packages in this OBS and start MindFlow, on OBS's UI thread (a button; the
    install's end is queued there). ``bind``: called from one of OBS's script callbacks (a button)."""
    if _load is not load or _script is not None:       # unloaded (or started) meanwhile
        return
    load.starting = True
    _deps.refresh_imports()
    status = _deps.check()
    if not status.ok:
        load.starting = False
        load.note = ("The packages were installed but do not import in this OBS: "
                     + "; ".join(f"{n}: {e}" for n, e in status.missing) + ". Restart OBS; if that does not help, "
                     "run the install command below in a terminal and read its output.")
        obs.script_log(obs.LOG_WARNING, "MindFlow: " + load.note)
        return
    try:
        _start(load.settings, bind=bind)
    except Exception as exc:  # noqa: BLE001 - say what happened instead of a silent dead script
        load.starting = False
        load.note = f"MindFlow could not start: {type(exc).__name__}: {exc}. Reload the script (↻)."
        obs.script_log(obs.LOG_ERROR, "MindFlow: " + load.note)
    else:
        _script.log.queue(logging.INFO, f"MindFlow: started with {status.summary()}")


def _queue_on_ui(fn):
    from obs_mindflow.obs.uitask import run_on_ui_thread

    return run_on_ui_thread(fn)
