"""MindFlow for OBS Studio — add this file in Tools > Scripts (see install.md).

The OBS entry point, kept thin: it puts the checkout and the dependency folder on ``sys.path``, checks that numpy,
OpenCV and onnxruntime import (and says how to install them when they do not), and forwards OBS's callbacks to one
:class:`obs_mindflow.obs.controller.MindFlowScript` created in ``script_load`` and closed in ``script_unload``.
OBS keeps this module cached across scene-collection switches, so no state lives in its globals beyond the current
load's object. Timer, hotkey, button and frontend callbacks are module-level functions (OBS's binding ignores bound
methods).
"""

import html
import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import obspython as obs  # noqa: E402

from obs_mindflow.obs import deps as _deps  # noqa: E402  (standard library only)
from obs_mindflow.obs.settings import CUSTOM_MODEL, RATE_MAX_HZ, RATE_MIN_HZ, TEXT_UPDATE_HZ  # noqa: E402
from obs_mindflow.obs.obsdata import set_defaults  # noqa: E402  (obspython and the settings table only)
from obs_mindflow.obs.template import PLACEHOLDERS  # noqa: E402

_deps.add_to_path()

_script = None            # the MindFlowScript of the current load; None while unloaded or dependencies are missing
_waiting_settings = None  # the settings (a reference) kept while dependencies are missing, for "Check again"

ABOUT = ("MindFlow watches <b>your own face</b> on your webcam and tells you — live in a text source or overlay, and "
         "in a report after each session — how the session went emotionally. Self-monitoring, <b>not a "
         "diagnosis</b>; no frame, number or report leaves this computer. A session starts when you stream or "
         "record (or with the Start session button) and ends when both stop; its summary goes to the script log "
         "and a report folder.")


# ==================================================================================================================
# Lifecycle
# ==================================================================================================================

def script_description():
    status = _deps.check()
    text = ABOUT + "<br><br>"
    if not status.ok:
        msg = html.escape(_deps.describe_missing(status)).replace("\n", "<br>")
        return text + f"<span style='color:#d33'>{msg}</span>"
    text += html.escape(status.summary()) + ".<br>"
    s = _script
    if s is not None:
        text += "Status: " + html.escape(s.status_text()) + "<br>"
        if s.last_error:
            text += f"<span style='color:#d33'>Last error: {html.escape(s.last_error)}</span><br>"
    text += "Live status and errors: see the settings below (Refresh status)."
    return text


def script_defaults(settings):
    from obs_mindflow.engine.reports.storage import default_report_dir  # standard library only

    set_defaults(settings, str(default_report_dir()))


def script_load(settings):
    global _script, _waiting_settings
    if _script is not None:  # a load without the previous unload: close the stale object first
        _script.unload()
    _script = None
    _release_waiting()
    status = _deps.check()
    if not status.ok:
        obs.script_log(obs.LOG_WARNING, _deps.describe_missing(status))
        obs.obs_data_addref(settings)
        _waiting_settings = settings
        return
    _start(settings)


def _start(settings):
    global _script
    from obs_mindflow.obs.controller import MindFlowScript

    script = MindFlowScript({"mindflow.pause": _on_hotkey_pause, "mindflow.reset": _on_hotkey_reset})
    _script = script
    obs.obs_frontend_add_event_callback(_on_frontend_event)
    obs.timer_add(_on_timer, int(1000 / TEXT_UPDATE_HZ))
    script.load(settings)


def script_update(settings):
    if _script is not None:
        _script.update(settings)


def script_save(settings):
    if _script is not None:
        _script.save(settings)


def script_tick(seconds):
    s = _script
    if s is not None:
        s.tick()


def script_unload():
    global _script
    s, _script = _script, None
    if s is not None:
        from obs_mindflow.obs.hotkeys import unregister_callback

        unregister_callback(obs.timer_remove, _on_timer, "the text timer")
        unregister_callback(obs.obs_frontend_remove_event_callback, _on_frontend_event, "the frontend callback")
        s.unload()
    _release_waiting()


def _release_waiting():
    global _waiting_settings
    if _waiting_settings is not None:
        obs.obs_data_release(_waiting_settings)
        _waiting_settings = None


# ==================================================================================================================
# Properties
# ==================================================================================================================

def script_properties():
    props = obs.obs_properties_create()
    s = _script
    if s is None:
        status = _deps.check()
        if not status.ok:
            p = obs.obs_properties_add_text(props, "deps", _deps.describe_missing(status), obs.OBS_TEXT_INFO)
            obs.obs_property_text_set_info_type(p, obs.OBS_TEXT_INFO_ERROR)
            obs.obs_property_text_set_info_word_wrap(p, True)
            obs.obs_properties_add_button(props, "check_deps", "Check again (after installing)", _on_check_deps)
        else:
            obs.obs_properties_add_text(props, "deps", "Dependencies found: click Reload Scripts to start MindFlow.",
                                        obs.OBS_TEXT_INFO)
        return props

    from obs_mindflow.engine import list_models
    from obs_mindflow.obs import sources

    _info(props, "status", "Status: " + s.status_text())
    if s.notice:
        _info(props, "notice", s.notice)
    if s.problems:
        p = _info(props, "last_error", "Last error: " + s.last_error + (
            "" if len(s.problems) < 2 else "  (also: " + "; ".join(
                m for m in s.problems.values() if m != s.last_error) + ")"))
        obs.obs_property_text_set_info_type(p, obs.OBS_TEXT_INFO_ERROR)

    p = obs.obs_properties_add_list(props, "video_source", "Webcam (video source)", obs.OBS_COMBO_TYPE_LIST,
                                    obs.OBS_COMBO_FORMAT_STRING)
    _fill(p, sources.video_source_names(), s.settings.video_source, none_label="(choose a source)")
    p = obs.obs_properties_add_list(props, "text_source", "Text source", obs.OBS_COMBO_TYPE_LIST,
                                    obs.OBS_COMBO_FORMAT_STRING)
    _fill(p, sources.text_source_names(), s.settings.text_source, none_label="(none)")
    p = obs.obs_properties_add_text(props, "template", "Text template", obs.OBS_TEXT_DEFAULT)
    obs.obs_property_set_long_description(p, "Placeholders: " + "; ".join(
        f"{{{k}}}: {v}" for k, v in PLACEHOLDERS.items()) + ". Write \\n for a line break.")
    obs.obs_properties_add_float_slider(props, "rate_hz", "Analyses per second", RATE_MIN_HZ, RATE_MAX_HZ, 0.5)

    p = obs.obs_properties_add_list(props, "model", "Expression model", obs.OBS_COMBO_TYPE_LIST,
                                    obs.OBS_COMBO_FORMAT_STRING)
    for name, title in list_models():
        obs.obs_property_list_add_string(p, title or name, name)
    obs.obs_property_list_add_string(p, "Custom folder (card.json + .onnx; see docs/dan.md)", CUSTOM_MODEL)
    obs.obs_property_set_modified_callback(p, _on_model_modified)
    p = obs.obs_properties_add_path(props, "model_folder", "Custom model folder", obs.OBS_PATH_DIRECTORY, None,
                                    _ROOT)
    obs.obs_property_set_visible(p, s.settings.model == CUSTOM_MODEL)

    obs.obs_properties_add_path(props, "report_dir", "Report folder", obs.OBS_PATH_DIRECTORY, None,
                                str(s.settings.report_root()))
    p = obs.obs_properties_add_bool(props, "nudge_enabled", "Break nudges (opt-in)")
    obs.obs_property_set_long_description(p, "A gentle note in the log, overlay and {nudge} placeholder when "
                                             "negative expressions dominate for 10 minutes.")
    obs.obs_properties_add_bool(props, "overlay_enabled", "Overlay page for a Browser source")
    obs.obs_properties_add_int(props, "overlay_port", "Overlay port (127.0.0.1 only)", 1024, 65535, 1)
    if s.overlay is not None:
        _info(props, "overlay_url", f"Overlay URL: {s.overlay.url}")

    obs.obs_properties_add_button(props, "session", "Stop session" if s.lifecycle.active else "Start session",
                                  _on_button_session)
    obs.obs_properties_add_button(props, "reset", "Reset session (report written, new session)", _on_button_reset)
    obs.obs_properties_add_button(props, "write_report", "Write report now", _on_button_write_report)
    obs.obs_properties_add_button(props, "open_reports", "Open report folder", _on_button_open_reports)
    obs.obs_properties_add_button(props, "add_overlay", "Add overlay as a Browser source", _on_button_add_overlay)
    obs.obs_properties_add_button(props, "refresh", "Refresh status", _on_button_refresh)
    return props


def _info(props, name, text):
    p = obs.obs_properties_add_text(props, name, text, obs.OBS_TEXT_INFO)
    obs.obs_property_text_set_info_word_wrap(p, True)
    return p


def _fill(prop, names, current, none_label):
    obs.obs_property_list_add_string(prop, none_label, "")
    if current and current not in names:
        obs.obs_property_list_add_string(prop, f"{current} (missing)", current)
    for name in names:
        obs.obs_property_list_add_string(prop, name, name)


# ==================================================================================================================
# Callbacks (module-level functions: OBS's Python binding ignores bound methods)
# ==================================================================================================================

def _on_frontend_event(event):
    if _script is not None:
        _script.frontend_event(event)


def _on_timer():
    if _script is not None:
        _script.text_timer()


def _on_hotkey_pause(pressed):
    if pressed and _script is not None:
        _script.toggle_pause()


def _on_hotkey_reset(pressed):
    if pressed and _script is not None:
        _script.reset_session()


def _on_button_session(props, prop):
    if _script is not None:
        _script.toggle_session()
    return True


def _on_button_reset(props, prop):
    if _script is not None:
        _script.reset_session()
    return True


def _on_button_write_report(props, prop):
    if _script is not None:
        _script.write_report_now()
    return True


def _on_button_open_reports(props, prop):
    if _script is not None:
        _script.open_report_folder()
    return True


def _on_button_add_overlay(props, prop):
    if _script is not None:
        _script.add_overlay_source()
    return True


def _on_button_refresh(props, prop):
    return True


def _on_model_modified(props, prop, settings):
    p = obs.obs_properties_get(props, "model_folder")
    obs.obs_property_set_visible(p, obs.obs_data_get_string(settings, "model") == CUSTOM_MODEL)
    return True


def _on_check_deps(props, prop):
    global _waiting_settings
    status = _deps.check()
    if status.ok and _waiting_settings is not None:
        settings, _waiting_settings = _waiting_settings, None
        obs.script_log(obs.LOG_INFO, "MindFlow: dependencies found; starting")
        try:
            _start(settings)
        finally:
            obs.obs_data_release(settings)
    elif not status.ok:
        obs.script_log(obs.LOG_WARNING, _deps.describe_missing(status))
    return True
