"""obs_mindflow.obs.capabilities against the fake ``obspython`` of tests/fakes/obs.py: version parsing, feature
detection as OBS 29, 30.2 and 32 expose it, the recording-chapter helper, and the one capabilities line the script
logs at load. (The real OBS: tests/e2e/test_chapters_e2e.py.)"""

from __future__ import annotations

import importlib
import sys

import pytest

from tests.fakes.obs import (entry, fake_obs, load, logged, make_fake_obs,  # noqa: F401  (fixtures)
                              settings_data)

MODULE = "obs_mindflow.obs.capabilities"


def _obs(version="29.0.2", chapters=None, browser=False, canvases=False, recording=False):
    """A fake obspython shaped like one OBS: ``chapters`` is what obs_frontend_recording_add_chapter returns (None:
    the function does not exist, as before OBS 30.2)."""
    o = make_fake_obs()
    if version is not None:
        o.obs_get_version_string = lambda: version
    o.recording = recording
    o.chapter_calls = []
    if chapters is not None:
        def add_chapter(name):
            o.chapter_calls.append(name)
            if isinstance(chapters, Exception):
                raise chapters
            return chapters
        o.obs_frontend_recording_add_chapter = add_chapter
    names = {"ffmpeg_source": "Media Source"} | ({"browser_source": "Browser"} if browser else {})
    o.obs_source_get_display_name = lambda uid: names.get(uid)
    if canvases:
        o.obs_frontend_get_canvases = lambda: []
    return o


@pytest.fixture
def caps_module(monkeypatch):
    """Imports capabilities against a fake set by ``use(o)``."""
    def use(o):
        monkeypatch.setitem(sys.modules, "obspython", o)
        sys.modules.pop(MODULE, None)
        return importlib.import_module(MODULE)
    yield use
    sys.modules.pop(MODULE, None)


@pytest.mark.parametrize("text, expected", [
    ("32.2.2", (32, 2, 2)),
    ("30.2.3-3", (30, 2, 3)),
    ("29.0.2.1-1+b1", (29, 0, 2)),
    ("31.0", (31, 0, 0)),
    ("33", (33, 0, 0)),
    ("", (0, 0, 0)),
    ("unknown", (0, 0, 0)),
])
def test_parse_version(caps_module, text, expected):
    assert caps_module(make_fake_obs()).parse_version(text) == expected


@pytest.mark.parametrize("kw, version, chapters, browser, canvases", [
    (dict(version="29.0.2"), (29, 0, 2), False, False, False),                               # Debian 12
    (dict(version="30.2.3", chapters=False), (30, 2, 3), True, False, False),                # Debian 13
    (dict(version="32.2.2", chapters=False, canvases=True), (32, 2, 2), True, False, True),  # Debian unstable
    (dict(version="32.0.1", chapters=False, browser=True, canvases=True), (32, 0, 1), True, True, True),  # Windows
    (dict(version=None), (0, 0, 0), False, False, False),                                    # a bare binding
])
def test_detect(caps_module, kw, version, chapters, browser, canvases):
    caps = caps_module(_obs(**kw)).detect()
    assert (caps.version, caps.chapters, caps.browser_source, caps.canvases) == (version, chapters, browser, canvases)
    line = caps.log_line()
    assert "\n" not in line and line.startswith("MindFlow: OBS ")
    assert f"recording chapters: {'yes' if chapters else 'no'}" in line
    assert f"Browser source: {'yes' if browser else 'no'}" in line
    assert f"Python {sys.version_info[0]}.{sys.version_info[1]}." in line


def test_detect_falls_back_to_the_packed_version(caps_module):
    o = _obs(version=None)
    o.obs_get_version = lambda: (30 << 24) | (2 << 16) | 3
    caps = caps_module(o).detect()
    assert caps.version == (30, 2, 3) and caps.version_text == "30.2.3"


def _marker(caps_module, **kw):
    o = _obs(**kw)
    messages = []
    return o, caps_module(o).ChapterMarker(log_fn=messages.append), messages


def test_chapter_added_while_recording_hybrid_mp4(caps_module):
    o, marker, messages = _marker(caps_module, version="32.2.2", chapters=True, recording=True)
    assert marker.add_chapter("happy moment") is True
    assert marker.add_chapter(42) is True
    assert o.chapter_calls == ["happy moment", "42"] and marker.added == 2
    assert messages == []


def test_format_without_chapters_is_logged_once_per_recording(caps_module):
    o, marker, messages = _marker(caps_module, version="30.2.3", chapters=False, recording=True)
    assert [marker.add_chapter(n) for n in ("a", "b", "c")] == [False, False, False]
    assert len(o.chapter_calls) == 3
    assert len(messages) == 1 and "Hybrid MP4" in messages[0]
    marker.recording_started()                    # a new recording may use another format
    assert marker.add_chapter("d") is False
    assert len(messages) == 2


def test_obs_without_chapters_is_logged_once_and_never_called(caps_module):
    o, marker, messages = _marker(caps_module, version="29.0.2", recording=True)
    assert marker.add_chapter("a") is False and marker.add_chapter("b") is False
    assert len(messages) == 1 and "29.0.2" in messages[0] and "30.2" in messages[0]


def test_no_chapter_while_nothing_is_recorded(caps_module):
    o, marker, messages = _marker(caps_module, version="32.2.2", chapters=True, recording=False)
    assert marker.add_chapter("a") is False
    assert o.chapter_calls == [] and messages == []


def test_an_error_from_obs_is_logged_once_and_not_raised(caps_module):
    o, marker, messages = _marker(caps_module, version="32.2.2", chapters=RuntimeError("boom"), recording=True)
    assert marker.add_chapter("a") is False and marker.add_chapter("b") is False
    assert len(messages) == 1 and "RuntimeError: boom" in messages[0]


def test_the_script_logs_the_capabilities_once_at_load(entry, fake_obs, tmp_path):
    fake_obs.obs_get_version_string = lambda: "32.2.2"
    fake_obs.obs_frontend_recording_add_chapter = lambda name: True
    load(entry, fake_obs, settings_data(fake_obs, tmp_path))
    lines = [ln for ln in logged(fake_obs).splitlines() if ln.startswith("MindFlow: OBS ")]
    assert len(lines) == 1, lines
    assert "OBS 32.2.2" in lines[0] and "recording chapters: yes" in lines[0]
