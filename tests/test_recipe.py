"""One recipe for a session: a rule given once reaches a file analysis, the live host (OBS's engine) and the command
line's camera mode; the "away from the camera" rule on its own."""

from __future__ import annotations

import io
import json

import cv2
import pytest

from obs_mindflow.camera import run_live
from obs_mindflow.engine.host import SessionHost
from obs_mindflow.engine.recipe import DEFAULT_RULES, SessionRecipe
from obs_mindflow.engine.session.events import AWAY, Event
from obs_mindflow.engine.session.rules import AwayMonitor
from obs_mindflow.engine.session.session import Session
from obs_mindflow.engine.video import FileSettings, analyze_file
from tests.conftest import SAMPLE
from tests.test_report import FER, FER_NEG, result


class CountingRule:
    """A rule from outside the engine: counts the results it observed, raises nothing."""

    made: list["CountingRule"] = []

    def __init__(self, labels, negative_labels) -> None:
        self.labels, self.seen = tuple(labels), 0
        CountingRule.made.append(self)

    def reset(self) -> None:
        self.seen = 0

    def observe(self, result, time_s):
        self.seen += 1
        return ()

    def check(self, time_s, stats, timestamp=None):
        return None


@pytest.fixture
def counting():
    CountingRule.made.clear()
    yield CountingRule
    CountingRule.made.clear()


def away_events(events, *, away_seconds=180.0):
    s = Session(FER, FER_NEG, rules=(AwayMonitor(FER, FER_NEG, away_seconds=away_seconds),))
    out = []
    for i, (t, e) in enumerate(events, 1):
        out.extend(ev for ev in s.add(result(t, e, seq=i)) if ev.kind == AWAY)
    return out


def test_away_is_said_once_per_absence_after_a_face():
    face = [(t, "happy") for t in range(0, 60)]
    gone = [(60 + t, "") for t in range(0, 200)]
    back = [(260 + t, "neutral") for t in range(0, 5)] + [(265 + t, "") for t in range(0, 200)]
    events = away_events(face + gone + back)
    assert [round(e.time_s) for e in events] == [239, 444]       # 180 s without a face, twice
    assert "No face in the camera for 3 min 00 s" in events[0].message and events[0].data["seconds"] >= 180


@pytest.mark.parametrize("events", [
    [(t, "") for t in range(0, 400)],                                    # no face from the start: not "away"
    [(0, "happy"), (1, "happy")] + [(2 + t, "") for t in range(0, 100)] + [(1000, ""), (1001, "")],   # a pause
    [(t, "happy" if t % 100 else "") for t in range(0, 600)],           # brief losses only
])
def test_no_away_without_a_long_absence_of_analysed_time(events):
    assert away_events(events) == []


def test_the_default_recipe_has_the_away_rule():
    assert AwayMonitor in DEFAULT_RULES and SessionRecipe().rules == DEFAULT_RULES
    with pytest.raises(ValueError, match="away_seconds"):
        AwayMonitor(FER, FER_NEG, away_seconds=0)


def test_a_rule_in_the_recipe_reaches_a_file_analysis(tmp_path, counting):
    recipe = FileSettings(max_seconds=16.0).recipe().replace(rules=(counting, AwayMonitor))
    seen = []
    done = analyze_file(SAMPLE, FileSettings(max_seconds=16.0), tmp_path, recipe=recipe, on_events=seen.extend)
    (rule,) = counting.made
    assert rule.seen == done.run.analysed > 0 and rule.labels == tuple(json.loads(
        (done.finished.folder / "summary.json").read_text())["labels"])


def test_a_rule_in_the_recipe_reaches_the_live_host(default_model, astronaut, tmp_path, counting):
    with SessionHost(default_model, SessionRecipe(rules=(counting,)), report_root=tmp_path,
                     log=lambda *a: None) as live:
        live.start_session("a test")
        for i in range(3):
            assert live.submit(astronaut.copy(), 1.0 + i)
            live.analyzer.wait_for(live.analyzer.stats().submitted, timeout=10)
        assert counting.made[-1].seen == 3


def test_the_camera_mode_drives_a_session_host_built_from_the_recipe(default_model, tmp_path, counting):
    """A real capture (the sample clip, read as a camera is: frame by frame, on the wall clock) through a
    SessionHost: the recipe's rule sees the results, the session ends with its report."""
    host = SessionHost(default_model, SessionRecipe(rules=(counting,)), report_root=tmp_path, log=lambda *a: None)
    cap = cv2.VideoCapture(str(SAMPLE))
    assert cap.isOpened()
    out = io.StringIO()
    finished, interrupted, stopped = run_live(host, cap, source="camera test", rate=0, stream=out)
    assert not interrupted and stopped == "camera test stopped delivering frames"
    assert finished.ok and finished.folder is not None and (finished.folder / "report.html").is_file()
    assert finished.snapshot.updates == counting.made[-1].seen > 0      # the rule saw every recorded result
    assert "Hz" in out.getvalue() and host.analyzer.stats().analysed > 0


@pytest.mark.parametrize("language, expected", [
    ("ja-JP", "MindFlow: 3 分 00 秒 のあいだ カメラに顔が映っていません — カメラはまだあなたに向いていますか？"),
    ("", "MindFlow: No face in the camera for 3 min 00 s — is the camera still pointing at you?")])
def test_the_away_line_in_the_log_speaks_the_recipes_language(default_model, tmp_path, language, expected):
    lines = []
    with SessionHost(default_model, SessionRecipe(language=language), report_root=tmp_path,
                     log=lambda level, text: lines.append(text)) as host:
        message = away_events([(t, "" if t > 10 else "happy") for t in range(0, 400)])[0].message
        host._on_away(Event(AWAY, 200.0, None, message, {"seconds": 180.0}))     # as the recorder hands it over
    assert lines and lines[-1].startswith(expected), lines
