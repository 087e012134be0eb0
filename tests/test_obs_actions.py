"""obs_mindflow.obs.actions against the fake ``obspython`` of tests/fakes/obs.py, with scenes: a moment's chapter and
the opt-in actions (show a source for K seconds, switch to a scene and back) — run on the UI-thread queue, rate-limited,
never during calibration, never fighting the streamer. (The real OBS: tests/e2e/test_moments_e2e.py.)"""

from __future__ import annotations

import importlib
import sys
import types

import pytest
from tests.fakes.obs import (entry, fake_obs, load, logged, make_fake_obs, prop, run_ticks,  # noqa: F401 (fixtures)
                             settings_data, shows)

MODULE = "obs_mindflow.obs.actions"


class Item:
    def __init__(self, name, visible):
        self.name, self.visible = name, visible


class Scene:
    def __init__(self, items):
        self.items = {i.name: i for i in items}


@pytest.fixture
def o(monkeypatch):
    fake = make_fake_obs()
    fake.scenes = {"Scene": Scene([Item("Webcam", True), Item("Confetti", False)]), "BRB": Scene([])}
    for name in fake.scenes:
        fake.add_source(name, "scene", 1)
    fake.current = "Scene"
    fake.recording = True
    fake.chapters = []
    fake.obs_frontend_get_current_scene = lambda: fake.obs_get_source_by_name(fake.current)
    fake.obs_frontend_set_current_scene = lambda src: setattr(fake, "current", src.name)
    fake.obs_scene_from_source = lambda src: fake.scenes.get(src.name)
    fake.obs_scene_find_source_recursive = lambda scene, name: scene.items.get(name)
    fake.obs_sceneitem_visible = lambda item: item.visible
    fake.obs_sceneitem_set_visible = lambda item, v: setattr(item, "visible", v)
    fake.obs_get_version_string = lambda: "32.2.2"
    fake.obs_frontend_recording_add_chapter = lambda name: fake.chapters.append(name) or True
    monkeypatch.setitem(sys.modules, "obspython", fake)
    # The adapter's modules are imported afresh against this fake, and the earlier ones put back afterwards — in
    # sys.modules and as attributes of the package (``from . import uitask`` reads the attribute: a stale one would
    # be a module the next test's fixtures never patched).
    package = importlib.import_module("obs_mindflow.obs")
    saved = {m: sys.modules.pop(m) for m in [m for m in sys.modules if m.startswith("obs_mindflow.obs.")]}
    yield fake
    for name in [m for m in sys.modules if m.startswith("obs_mindflow.obs.")]:
        sys.modules.pop(name, None)
        package.__dict__.pop(name.rsplit(".", 1)[1], None)
    for name, module in saved.items():
        sys.modules[name] = module
        setattr(package, name.rsplit(".", 1)[1], module)


class Clock:
    t = 100.0

    def __call__(self):
        return self.t


def make(o, calibrating=False, **settings):
    actions = importlib.import_module(MODULE)
    caps = importlib.import_module("obs_mindflow.obs.capabilities")
    queued, logs, clock = [], [], Clock()
    a = actions.MomentActions(actions.ActionSettings(**settings), lambda: calibrating, logs.append,
                              chapters=caps.ChapterMarker(log_fn=logs.append), ui=lambda fn: queued.append(fn) or True,
                              clock=clock)
    return a, queued, logs, clock


def moment(emotion="happy", title="Smiles", negative=False):
    return types.SimpleNamespace(kind="moment_started", data={"emotion": emotion, "title": title,
                                                              "negative": negative})


def run(queued):
    while queued:
        queued.pop(0)()


def test_a_moment_adds_a_chapter_on_the_ui_thread_and_no_action_by_default(o):
    a, queued, logs, _ = make(o)
    a.on_event(moment())
    assert o.chapters == [] and len(queued) == 1          # queued, not called from the worker thread
    run(queued)
    assert o.chapters == ["Smiles"] and o.current == "Scene"
    assert not o.scenes["Scene"].items["Confetti"].visible


def test_show_a_source_for_k_seconds(o):
    a, queued, logs, clock = make(o, chapters=False, action="show_source", target="Confetti", seconds=5)
    refs = {name: src.refs for name, src in o.sources.items()}
    a.on_event(moment())
    run(queued)
    confetti = o.scenes["Scene"].items["Confetti"]
    assert confetti.visible and any("showing 'Confetti' for 5 s" in x for x in logs)
    clock.t += 4.9
    a.tick()
    assert not queued and confetti.visible
    clock.t += 0.2
    a.tick()
    run(queued)
    assert not confetti.visible and {name: src.refs for name, src in o.sources.items()} == refs   # all released


def test_switch_to_a_scene_and_back_unless_the_streamer_moved_on(o):
    a, queued, _, clock = make(o, chapters=False, action="switch_scene", target="BRB", seconds=3, min_interval_s=0)
    a.on_event(moment())
    run(queued)
    assert o.current == "BRB"
    clock.t += 3.1
    a.tick()
    run(queued)
    assert o.current == "Scene"
    a.on_event(moment())
    run(queued)
    assert o.current == "BRB"
    o.current = "Scene"                                   # the streamer switched themselves
    o.scenes["Other"] = Scene([])
    o.add_source("Other", "scene", 1)
    o.current = "Other"
    clock.t += 3.1
    a.tick()
    run(queued)
    assert o.current == "Other"


@pytest.mark.parametrize("settings, event, calibrating, acts", [
    (dict(trigger="happy"), moment("sad", "Tense stretch", True), False, False),
    (dict(trigger="negative"), moment("sad", "Tense stretch", True), False, True),
    (dict(trigger="any"), moment("surprise", "Surprise!"), False, True),
    (dict(trigger="happy"), moment(), True, False),                # never during calibration
    (dict(trigger="happy", target=""), moment(), False, False),     # nothing chosen
])
def test_which_moments_act(o, settings, event, calibrating, acts):
    kw = dict(chapters=False, action="switch_scene", target="BRB") | settings
    a, queued, _, _ = make(o, calibrating=calibrating, **kw)
    a.on_event(event)
    run(queued)
    assert (o.current == "BRB") == acts


def test_actions_are_rate_limited(o):
    a, queued, _, clock = make(o, chapters=False, action="show_source", target="Confetti", seconds=1,
                               min_interval_s=60)
    a.on_event(moment())
    run(queued)
    clock.t += 2
    a.tick()
    run(queued)
    a.on_event(moment())                                  # 2 s later: too soon
    run(queued)
    assert not o.scenes["Scene"].items["Confetti"].visible
    clock.t += 60
    a.on_event(moment())
    run(queued)
    assert o.scenes["Scene"].items["Confetti"].visible


def test_a_missing_source_or_scene_is_explained(o):
    a, queued, logs, _ = make(o, chapters=False, action="show_source", target="Nope", min_interval_s=0)
    a.on_event(moment())
    run(queued)
    assert any("'Nope' is not in the current scene" in x for x in logs)
    a.configure(a.settings.__class__(chapters=False, action="switch_scene", target="Nope", min_interval_s=0))
    a.on_event(moment())
    run(queued)
    assert any("no scene called 'Nope'" in x for x in logs) and o.current == "Scene"


def test_unload_hides_a_shown_source_but_leaves_a_scene_switch(o):
    a, queued, _, _ = make(o, chapters=False, action="show_source", target="Confetti")
    a.on_event(moment())
    run(queued)
    a.close()
    assert not o.scenes["Scene"].items["Confetti"].visible
    b, queued, _, _ = make(o, chapters=False, action="switch_scene", target="BRB")
    b.on_event(moment())
    run(queued)
    b.close()
    assert o.current == "BRB" and not queued




# ====================================================================================================================
# Wired into the script (obs/moments.py): the engine's moments → chapters and actions, against the fake obspython
# with the astronaut's smiling face as the webcam (a "Smiles" moment: a broad smile, held)
# ====================================================================================================================

def with_scenes(o, version="32.2.2", chapters=True):
    """The fake as an OBS with two scenes, hidden Confetti in the current one, and (``chapters``) the chapter call."""
    o.scenes = {"Scene": Scene([Item("Webcam", True), Item("Confetti", False)]), "BRB": Scene([])}
    for name in o.scenes:
        o.add_source(name, "scene", 0)
    o.add_source("Confetti", "image_source", 1)
    o.current = "Scene"
    o.chapters = []
    o.obs_frontend_get_current_scene = lambda: o.obs_get_source_by_name(o.current)
    o.obs_frontend_set_current_scene = lambda src: setattr(o, "current", src.name)
    o.obs_frontend_get_scene_names = lambda: list(o.scenes)
    o.obs_scene_from_source = lambda src: o.scenes.get(src.name)
    o.obs_scene_find_source_recursive = lambda scene, name: scene.items.get(name)
    o.obs_sceneitem_visible = lambda item: item.visible
    o.obs_sceneitem_set_visible = lambda item, v: setattr(item, "visible", v)
    o.obs_get_version_string = lambda: version
    if chapters:
        o.obs_frontend_recording_add_chapter = lambda name: o.chapters.append(name) or True
    return o


def run_ui(o):
    """The UI-thread tasks queued so far, then the script's timer (it writes the lines they queued)."""
    while o.ui_tasks:
        o.ui_tasks.pop(0)()
    for cb, _ in list(o.timers):
        cb()


def wait_for_moment(entry, script, o, seconds=30):
    """Ticks (and the UI-thread tasks they queue) until the script has seen a moment start."""
    def seen():
        run_ui(o)
        return "MindFlow: Moment: " in logged(o)
    return run_ticks(entry, script, seconds, until=seen)


def test_a_moment_marks_a_chapter_and_switches_the_scene_and_back(entry, fake_obs, tmp_path):
    o = with_scenes(fake_obs)
    data = settings_data(o, tmp_path, moment_min_s=2.0, action="switch_scene", action_scene="BRB",
                         action_seconds=1.0, action_trigger="happy")
    script = load(entry, o, data)
    assert script.host.recipe.moments.min_seconds == 2.0           # the setting reached the engine
    o.recording = True
    entry._on_frontend_event(o.OBS_FRONTEND_EVENT_RECORDING_STARTED)
    assert run_ticks(entry, script, 30, until=lambda: run_ui(o) or o.current == "BRB"), logged(o)[-2000:]
    assert o.chapters == ["Smiles"]
    assert "switching to the scene 'BRB' for 1 s" in logged(o)
    assert run_ticks(entry, script, 10, until=lambda: run_ui(o) or o.current == "Scene")
    assert "back to the scene 'Scene'" in logged(o)
    props = entry.script_properties()
    assert "chapter: Smiles" in shows(props, "actions_note") and "switched to BRB" in shows(props, "actions_note")
    o.recording = False
    entry._on_frontend_event(o.OBS_FRONTEND_EVENT_RECORDING_STOPPED)
    entry.script_unload()
    assert all(s.refs == 1 for s in o.sources.values()), "a scene or source reference was not released"


def test_what_the_actions_did_is_said_in_the_panels_language(entry, fake_obs, tmp_path):
    o = with_scenes(fake_obs)
    o.locale = "ru-RU"
    data = settings_data(o, tmp_path, moment_min_s=2.0, action="switch_scene", action_scene="BRB",
                         action_seconds=1.0, action_trigger="happy")
    script = load(entry, o, data)
    o.recording = True
    entry._on_frontend_event(o.OBS_FRONTEND_EVENT_RECORDING_STARTED)
    assert run_ticks(entry, script, 30, until=lambda: run_ui(o) or o.current == "BRB"), logged(o)[-2000:]
    assert "переход на сцену «BRB» на 1 с" in logged(o)
    assert run_ticks(entry, script, 10, until=lambda: run_ui(o) or o.current == "Scene")
    assert "возврат на сцену «Scene»" in logged(o)
    note = shows(entry.script_properties(), "actions_note")
    assert "глава: " in note and "переход на BRB" in note and "switched" not in note, note
    o.recording = False
    entry._on_frontend_event(o.OBS_FRONTEND_EVENT_RECORDING_STOPPED)
    entry.script_unload()


def test_moment_lengths_reach_the_next_session(entry, fake_obs, tmp_path):
    o = with_scenes(fake_obs)
    data = settings_data(o, tmp_path)
    script = load(entry, o, data)
    moments = script.host.recipe.moments
    assert (moments.min_seconds, moments.negative_min_seconds) == (5.0, 10.0)   # defaults
    data.values.update(moment_min_s=8.0, moment_negative_min_s=30.0)
    entry.script_update(data)
    moments = script.host.recipe.moments
    assert (moments.min_seconds, moments.negative_min_seconds) == (8.0, 30.0)
    entry.script_unload()


def test_no_action_while_calibrating_and_a_shown_source_hidden_at_unload(entry, fake_obs, tmp_path):
    o = with_scenes(fake_obs, chapters=False)
    data = settings_data(o, tmp_path, moment_min_s=2.0, action="show_source", action_source="Confetti",
                         action_seconds=60.0, calibration_s=120.0)
    script = load(entry, o, data)
    entry._on_frontend_event(o.OBS_FRONTEND_EVENT_RECORDING_STARTED)
    script.calibration.toggle()
    assert script.host.calibrating and script.moments.actions.calibrating()
    assert run_ticks(entry, script, 30, until=lambda: run_ui(o) or "during calibration: no action" in logged(o))
    confetti = o.scenes["Scene"].items["Confetti"]
    assert not confetti.visible
    script.calibration.toggle()                                    # cancelled: the next moment acts
    assert not script.moments.actions.calibrating()
    entry._on_frontend_event(o.OBS_FRONTEND_EVENT_RECORDING_STOPPED)
    entry._on_frontend_event(o.OBS_FRONTEND_EVENT_RECORDING_STARTED)
    assert run_ticks(entry, script, 30, until=lambda: run_ui(o) or confetti.visible), logged(o)[-2000:]
    entry.script_unload()                                          # 60 s not over: hidden again at unload
    assert not confetti.visible


def test_obs_without_chapters_says_so_once_and_only_while_recording(entry, fake_obs, tmp_path):
    o = with_scenes(fake_obs, version="29.0.2", chapters=False)
    script = load(entry, o, settings_data(o, tmp_path, moment_min_s=2.0))
    props = entry.script_properties()
    assert "cannot add recording chapters" in shows(props, "moments_note")
    entry.script_properties()
    script.toggle_session()                                        # a session without a recording: no note
    assert wait_for_moment(entry, script, o)
    assert "cannot add recording chapters" not in logged(o)
    script.toggle_session()
    o.recording = True
    entry._on_frontend_event(o.OBS_FRONTEND_EVENT_RECORDING_STARTED)
    assert run_ticks(entry, script, 30, until=lambda: run_ui(o) or "cannot add recording chapters" in logged(o))
    o.recording = False
    entry._on_frontend_event(o.OBS_FRONTEND_EVENT_RECORDING_STOPPED)
    o.recording = True
    entry._on_frontend_event(o.OBS_FRONTEND_EVENT_RECORDING_STARTED)
    assert run_ticks(entry, script, 30, until=lambda: run_ui(o) or logged(o).count("MindFlow: Moment: ") >= 3)
    entry.script_unload()
    log = logged(o)
    assert log.count("cannot add recording chapters") == 1 and "lists its moments as chapters" in log


def test_chapters_can_be_turned_off_and_leave_negative_moments_out_by_default(o):
    a, queued, _, _ = make(o)
    a.on_event(moment("sad", "Tense stretch", True))
    run(queued)
    assert o.chapters == []                                        # chapters end up public: opt-in
    a.configure(a.settings.__class__(chapters_negative=True))
    a.on_event(moment("sad", "Tense stretch", True))
    run(queued)
    assert o.chapters == ["Tense stretch"]
    a.configure(a.settings.__class__(chapters=False))
    a.on_event(moment())
    run(queued)
    assert o.chapters == ["Tense stretch"]


def test_the_moments_group_shows_what_applies(entry, fake_obs, tmp_path):
    o = with_scenes(fake_obs)
    data = settings_data(o, tmp_path)
    load(entry, o, data)
    props = entry.script_properties()
    group = prop(props, "moments")
    assert group is not None and group.kind == "group"
    assert [v for _, v in prop(props, "action").items] == ["none", "show_source", "switch_scene"]
    triggers = [v for _, v in prop(props, "action_trigger").items]
    assert triggers[:2] == ["any", "negative"] and "happy" in triggers and "neutral" in triggers
    assert [v for _, v in prop(props, "action_scene").items] == ["", "Scene", "BRB"]
    assert "Confetti" in [v for _, v in prop(props, "action_source").items]
    assert shows(props, "chapters_enabled") is not None and shows(props, "chapters_negative") is not None
    assert "Hybrid MP4" in shows(props, "moments_note")
    for name in ("action_trigger", "action_source", "action_scene", "action_seconds", "action_interval_s",
                 "actions_note"):
        assert shows(props, name) is None, f"{name} is shown while no action is chosen"
    data.values["action"] = "switch_scene"
    entry.script_update(data)
    action = prop(props, "action")
    assert action.callback(props, action, data) is True
    assert shows(props, "action_scene") is not None and shows(props, "action_source") is None
    assert "Choose the scene" in shows(props, "actions_note")
    data.values.update(action_scene="BRB", action_trigger="joy")
    entry.script_update(data)
    prop(props, "action_scene").callback(props, prop(props, "action_scene"), data)
    assert "no 'joy' emotion" in shows(props, "actions_note")
    data.values.update(action_trigger="happy", chapters_enabled=False)
    entry.script_update(data)
    assert prop(props, "chapters_enabled").callback(props, prop(props, "chapters_enabled"), data) is True
    assert "switches to the scene 'BRB'" in shows(props, "actions_note")
    assert shows(props, "chapters_negative") is None and "No recording chapters" in shows(props, "moments_note")
    entry.script_unload()


def test_the_moments_group_speaks_the_panels_language(entry, fake_obs, tmp_path):
    """OBS in German: the Moments group's notes are German, with OBS's own German menu names."""
    o = with_scenes(fake_obs)
    o.locale = "de-DE"
    data = settings_data(o, tmp_path)
    load(entry, o, data)
    props = entry.script_properties()
    assert "(Einstellungen > Ausgabe > Aufnahme > Aufnahmeformat)" in shows(props, "moments_note")
    data.values["action"] = "switch_scene"
    entry.script_update(data)
    prop(props, "action").callback(props, prop(props, "action"), data)
    assert shows(props, "actions_note") == "Wählen Sie die Szene, zu der gewechselt wird."
    data.values.update(action_scene="BRB", action_trigger="happy", chapters_enabled=False)
    entry.script_update(data)
    prop(props, "chapters_enabled").callback(props, prop(props, "chapters_enabled"), data)
    assert "wechselt MindFlow für einige Sekunden zur Szene „BRB“" in shows(props, "actions_note")
    assert shows(props, "moments_note").startswith("Keine Aufnahmekapitel:")
    entry.script_unload()


def test_a_chapter_is_titled_in_the_viewers_language(o):
    """Chapters end up in published videos: titled in the language chosen for viewers."""
    from obs_mindflow import i18n

    a, queued, _, _ = make(o, words=i18n.words("de-DE"))
    a.on_event(moment("happy", "Big laugh"))
    a.on_event(moment("surprise", "Surprise!"))
    run(queued)
    assert o.chapters == ["Großes Lachen", "Überraschung!"]
