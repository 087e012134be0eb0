"""SessionHost: the live engine the OBS adapter drives (Analyzer + SessionRecorder + events + views for the text and the
overlay), on the real default model and the real test photos, without OBS."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from conftest import paste

from obs_mindflow.engine.catalog import DEFAULT_MODEL
from obs_mindflow.engine.host import MOMENT_SHOWN_S, SessionHost
from obs_mindflow.engine.reports.recovery import recover_sessions
from obs_mindflow.obs.template import PLACEHOLDERS, render

OVERLAY_KEYS = {"model", "labels", "negative_labels", "paused", "face", "emotion", "confidence", "probabilities",
                "session", "calibration", "moment", "message", "updated"}


class FakeOverlay:
    def __init__(self):
        self.states = []

    def publish(self, state):
        json.dumps(state, allow_nan=False)   # what the real server needs: plain JSON types
        self.states.append(state)


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


@pytest.fixture
def live(default_model, tmp_path):
    logs = []
    clock = Clock()
    session = SessionHost(default_model, report_root=tmp_path / "reports", overlay=FakeOverlay(),
                          log=lambda level, text: logs.append((level, text)), overlay_hz=1000.0, clock=clock)
    session.logs, session.test_clock = logs, clock
    yield session
    session.close()


def feed(live, frame, start, seconds, step=0.2):
    """Submit frames stamped ``start, start+step, …`` and wait for each to be analysed."""
    t = start
    while t < start + seconds - 1e-9:
        live.test_clock.t = t
        assert live.submit(frame, t)
        live.analyzer.wait_for(live.analyzer.stats().submitted, timeout=10)
        t += step
    return t


@pytest.fixture(scope="module")
def face_frame(astronaut):
    return paste((360, 640), astronaut, 64, 0)


def test_nothing_is_analysed_outside_a_session(live, face_frame):
    assert not live.active and not live.capturing
    assert live.submit(face_frame, 0.0) is False
    values = live.values()
    assert set(values) == set(PLACEHOLDERS), "values() must fill exactly the template's placeholders"
    assert values["emotion"] == "no face" and values["negative_share"] == "–"
    assert live.finish_session() is None and live.reset_session() is None


def test_session_values_overlay_and_report(live, face_frame, tmp_path):
    live.start_session(source="Webcam")
    assert live.capturing
    end = feed(live, face_frame, 1000.0, 3.0)
    values = live.values()
    assert values["emotion"] == "happy"
    assert values["negative_share"] == "0 %" and values["dominant"] == "happy"
    assert 80 <= int(values["coverage"].split()[0]) < 100      # the first 0.4 s confirm the face (detector)
    assert values["faces"] == "1" and values["model"] == DEFAULT_MODEL
    assert render("{emotion} · {negative_share} negative", values) == "happy · 0 % negative"
    assert any("first face in this session (happy" in text for _, text in live.logs)

    states = live.overlay.states
    assert states and set(states[-1]) == OVERLAY_KEYS
    last = states[-1]
    assert last["emotion"] == "happy" and last["face"] is True and last["paused"] is False
    assert last["session"]["active"] is True and 0.8 <= last["session"]["coverage"] < 1.0
    assert set(last["probabilities"]) == set(live.card.labels)
    assert 1 <= len(last["session"]["trend"]) <= 120

    no_face = np.full((360, 640, 3), 90, np.uint8)
    feed(live, no_face, end, 2.0)
    assert live.values()["coverage"] != "100 %"

    finished = live.finish_session()
    assert finished is not None and finished.ok and "MindFlow session summary" in finished.summary_text
    assert live.finish_session() is None, "a session is finished once"
    assert live.submit(face_frame, end + 3) is False
    summary = json.loads((finished.folder / "summary.json").read_text())
    assert summary["source"] == "Webcam" and 0 < summary["stats"]["coverage"] < 1
    assert live.overlay.states[-1]["session"]["active"] is False


def test_pause_stops_analysis_and_says_so(live, face_frame):
    live.start_session()
    feed(live, face_frame, 1000.0, 1.0)
    live.set_paused(True)
    assert live.submit(face_frame, 1001.0) is False and not live.capturing and live.active
    assert live.values()["emotion"] == "paused" and live.values()["confidence"] == "–"
    assert live.overlay.states[-1]["paused"] is True and live.overlay.states[-1]["emotion"] == ""
    live.set_paused(False)
    assert live.capturing


def test_stale_results_say_no_video(live, face_frame):
    live.start_session()
    feed(live, face_frame, 1000.0, 0.6)
    live.test_clock.t += 10.0
    assert live.values()["emotion"] == "no video"


def test_write_report_now_and_reset(live, face_frame):
    live.start_session()
    with pytest.raises(RuntimeError, match="no result"):
        live.write_report_now()
    end = feed(live, face_frame, 1000.0, 1.0)
    html = live.write_report_now()
    assert html.is_file() and (html.parent / "summary.json").is_file()
    assert live.active, "writing the report so far does not end the session"
    done = live.reset_session()
    assert done is not None and done.folder == html.parent and live.active
    feed(live, face_frame, end, 1.0)
    second = live.finish_session()
    assert second.folder != done.folder and (second.folder / "report.html").is_file()


def test_close_finishes_joins_and_is_idempotent(default_model, tmp_path, face_frame):
    live = SessionHost(default_model, report_root=tmp_path, log=lambda *a: None)
    live.start_session()
    live.submit(face_frame, 1.0)
    live.analyzer.wait_for(1, timeout=10)
    thread = live.analyzer._thread
    finished = live.close()
    assert finished is not None and finished.folder is not None
    assert not thread.is_alive()
    assert live.close() is None
    assert live.submit(face_frame, 2.0) is False
    with pytest.raises(RuntimeError, match="closed"):
        live.start_session()


def test_recover_sessions_logs_what_it_finalised(tmp_path):
    logs = []
    assert recover_sessions(tmp_path / "missing", lambda level, text: logs.append(text)) == 0 and not logs
    crashed = tmp_path / "2026-01-01T10-00-00"
    crashed.mkdir()
    (crashed / "UNFINISHED").write_text(json.dumps({"pid": 999999, "host": "elsewhere", "started_at": "x"}))
    (crashed / "timeline.csv").write_text("partial")
    assert recover_sessions(tmp_path, lambda level, text: logs.append((level, text))) == 1
    assert any("left unfinished" in text for _, text in logs)
    assert any(level == logging.INFO and "no checkpoint" in text for level, text in logs)


def test_moments_reach_the_bus_and_the_last_one_ends_with_the_session(live, face_frame):
    events = []
    live.bus.subscribe(events.append, ("moment_started", "moment_ended"))
    live.start_session(source="Webcam")
    feed(live, face_frame, 1000.0, 8.0)                       # a smile held for 8 s: a moment (5 s minimum)
    started = [e for e in events if e.kind == "moment_started"]
    assert len(started) == 1 and started[0].data["emotion"] == "happy"
    assert not [e for e in events if e.kind == "moment_ended"]
    moment = live.overlay_state()["moment"]                 # the overlay's toast, for MOMENT_SHOWN_S
    assert moment["id"] == started[0].data["id"] and moment["title"] == started[0].data["title"]
    live.test_clock.t += MOMENT_SHOWN_S + 1
    assert live.overlay_state()["moment"] is None
    live.finish_session()
    ended = [e for e in events if e.kind == "moment_ended"]
    assert len(ended) == 1 and ended[0].data["id"] == started[0].data["id"] and ended[0].data["seconds"] >= 5


def test_a_negative_moment_stays_off_the_page_while_the_share_is_private():
    from obs_mindflow.engine.views import viewer_overlay_state

    tense = {"moment": {"id": 4, "title": "Tense stretch", "negative": True}, "session": {"active": True}}
    laugh = {"moment": {"id": 5, "title": "Big laugh", "negative": False}, "session": {"active": True}}
    assert viewer_overlay_state(tense, hide_negative=True)["moment"] is None
    assert viewer_overlay_state(tense, hide_negative=False)["moment"]["title"] == "Tense stretch"
    assert viewer_overlay_state(laugh, hide_negative=True)["moment"]["title"] == "Big laugh"


def test_the_streamer_s_uncertain_threshold_can_be_taken_back(live, monkeypatch):
    """0 means "the model's own": for a model whose card has no measured threshold (a custom one), SmootherOptions'
    default comes back, not the streamer's last value."""
    import dataclasses

    from obs_mindflow.engine.smoothing import SmootherOptions

    monkeypatch.setattr(live.model, "card", dataclasses.replace(live.model.card, uncertain={}))
    live.set_recipe(live.recipe.replace(uncertain_below=0.55))
    assert live.analyzer.smoother.options.min_confidence == 0.55
    live.set_recipe(live.recipe.replace(uncertain_below=0.0))
    assert live.analyzer.smoother.options.min_confidence == SmootherOptions().min_confidence
