"""obs_mindflow.obs.actions against the fake ``obspython`` of test_obs_adapter.py, with scenes: a moment's chapter and
the opt-in actions (show a source for K seconds, switch to a scene and back) — run on the UI-thread queue, rate-limited,
never during calibration, never fighting the streamer. (The real OBS: tests/e2e/test_moments_e2e.py.)"""

from __future__ import annotations

import importlib
import sys
import types

import pytest

from test_obs_adapter import make_fake_obs

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
    for name in [m for m in sys.modules if m.startswith("obs_mindflow.obs.")]:
        monkeypatch.delitem(sys.modules, name)
    yield fake
    for name in [m for m in sys.modules if m.startswith("obs_mindflow.obs.")]:
        sys.modules.pop(name, None)


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


