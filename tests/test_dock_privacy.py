"""Privacy of the dock, end to end on the real engine: a SessionHost on the real default model and real photos publishes
through the OBS side's ViewerOverlay to a real OverlayServer; everything the viewers' routes ever send (the stream and
/state.json) is read back, and none of the dock's private figures is in it — while the dock's own stream has them.

Also the dock state itself: built from the same view as the overlay's, with the moments so far, the analysis rate,
the engine's problems and (from the OBS side) the panel's last error and whether the share is hidden from viewers."""

from __future__ import annotations

import json

import pytest

from conftest import paste
from test_dock_server import DockSSE
from test_host import Clock, feed
from test_overlay_server import request

from obs_mindflow.engine.host import SessionHost
from obs_mindflow.engine.views import PRIVATE_SESSION_KEYS
from obs_mindflow.obs.overlayout import ViewerOverlay
from obs_mindflow.overlay.dock import new_token
from obs_mindflow.overlay.server import OverlayServer

ERROR = "sentinel: the webcam source 'Cam 7f3a' was removed"
#: Keys only the dock's state carries (its block) or that disclose the hidden share.
DOCK_ONLY = ("dock", "moments", "moments_total", "hidden_from_viewers", "rate_hz", "problem", "stale")


@pytest.fixture(scope="module")
def face_frame(astronaut):
    return paste((360, 640), astronaut, 64, 0)


@pytest.fixture
def rig(default_model, tmp_path):
    token = new_token()
    with OverlayServer(port=0, max_rate_hz=50.0, max_clients=4, dock_token=token) as server:
        viewer = ViewerOverlay(server, hide_negative=True)
        viewer.error = ERROR
        clock = Clock()
        host = SessionHost(default_model, report_root=tmp_path / "reports", overlay=viewer, overlay_hz=1000.0,
                           clock=clock)
        host.test_clock = clock
        try:
            yield server, viewer, host, token
        finally:
            host.close()


def keys_of(x, found=None):
    """Every key of every dict in ``x``, recursively."""
    found = set() if found is None else found
    if isinstance(x, dict):
        for k, v in x.items():
            found.add(k)
            keys_of(v, found)
    elif isinstance(x, list):
        for v in x:
            keys_of(v, found)
    return found


def test_the_dock_s_figures_never_reach_the_viewers(rig, face_frame):
    server, viewer, host, token = rig
    with DockSSE(server.port, "/events") as viewers, DockSSE(server.port, f"/dock/{token}/events") as mine:
        polled = []
        host.start_session("Cam")
        feed(host, face_frame, 1000.0, 8.0)                     # a smile held 8 s: a moment
        polled.append(json.loads(request(server.port, "/state.json").body))
        viewer.hide_negative = False                            # the streamer shows the share for a while
        feed(host, face_frame, 1008.0, 1.0)
        polled.append(json.loads(request(server.port, "/state.json").body))
        viewer.hide_negative = True                             # and hides it again
        feed(host, face_frame, 1009.0, 1.0)
        host.finish_session()
        ended = lambda events: events and events[-1].get("session", {}).get("active") is False  # noqa: E731
        dock_states = mine.wait_until(ended)
        viewer_states = viewers.wait_until(ended) + polled + [json.loads(request(server.port, "/state.json").body)]

    # the dock had everything: the hidden share, its trend, the moments with their times, the error, the rate
    during = [s for s in dock_states if s.get("session", {}).get("active")]
    last = during[-1]
    assert {"negative_share", "rolling_negative_share", "trend", "profile"} <= set(last["session"])
    assert last["dock"]["hidden_from_viewers"] is True and last["dock"]["error"] == ERROR
    assert last["dock"]["moments_total"] >= 1 and last["dock"]["moments"][0]["title"]
    assert last["dock"]["moments"][0]["clock"] and last["dock"]["moments"][0]["start_s"] >= 0
    assert last["dock"]["rate_hz"] > 0
    assert dock_states[-1]["session"]["active"] is False and dock_states[-1]["dock"]["moments_total"] >= 1

    # the viewers never got any of it: no dock block, no error, and no share while it was hidden
    assert len(viewer_states) >= 5
    shown_while_allowed = 0
    for state in viewer_states:
        assert not keys_of(state) & set(DOCK_ONLY), state
        assert ERROR not in json.dumps(state)
        if state.get("private") is True:
            assert not set(state["session"]) & set(PRIVATE_SESSION_KEYS), state["session"]
        elif "negative_share" in state.get("session", {}):
            shown_while_allowed += 1
    assert shown_while_allowed >= 1, "the share reached the overlay while the streamer showed it"
    assert viewer_states[-1]["private"] is True
    raw = viewers.raw.decode()
    assert ERROR not in raw and '"dock"' not in raw and '"moments"' not in raw


def test_the_dock_shows_a_new_error_at_once_without_the_engine(rig):
    server, viewer, host, token = rig
    with DockSSE(server.port, f"/dock/{token}/events") as mine, DockSSE(server.port, "/events") as viewers:
        first = mine.wait(1)[-1]
        viewer.error = "the model could not be loaded"
        viewer.publish_dock()                                   # what OverlayOutput.set_error does
        got = mine.wait(2)[-1]
        assert got["dock"]["error"] == "the model could not be loaded"
        assert got.get("session") == first.get("session")
        viewers.wait(1)
        assert "could not be loaded" not in viewers.raw.decode()


def test_a_session_start_reaches_the_dock_before_any_frame(rig):
    server, viewer, host, token = rig
    with DockSSE(server.port, f"/dock/{token}/events") as mine:
        mine.wait(1)
        host.start_session("Cam")
        got = mine.wait(2)[-1]
        assert got["session"]["active"] is True and got["dock"]["moments_total"] == 0


def test_the_dock_says_what_the_engine_could_not_do(default_model, tmp_path, face_frame):
    """A report folder that cannot be written: the dock's ``problem`` says so in the report's own words."""
    blocker = tmp_path / "file"
    blocker.write_text("a file where the report folder should be")
    with OverlayServer(port=0, dock_token=new_token()) as server:
        viewer = ViewerOverlay(server, hide_negative=True)
        clock = Clock()
        host = SessionHost(default_model, report_root=blocker / "reports", overlay=viewer, overlay_hz=1000.0,
                           clock=clock)
        host.test_clock = clock
        try:
            host.start_session("Cam")
            host.recorder.checkpoint_every_s = 0.5
            feed(host, face_frame, 1000.0, 2.0)
            host.recorder.flush(5)
            feed(host, face_frame, 1002.0, 0.4)
            state = json.loads(request(server.port, f"/dock/{server.dock_token}/state.json").body)
            assert "could not write" in state["dock"]["problem"]
            assert state["dock"]["error"] == state["dock"]["problem"]    # no panel error: the engine's
        finally:
            host.close()


def test_the_dock_shows_the_calibration_outside_sessions(rig, hopper):
    """Calibrated, cleared, a stored baseline applied at load: the dock says so at once, with no session running."""
    server, viewer, host, token = rig

    def dock_calibration():
        return json.loads(request(server.port, f"/dock/{token}/state.json").body)["calibration"]

    frame = paste((360, 640), hopper[:360, :400], 120, 0)
    host.start_calibration(seconds=2.0)
    t = 100.0
    while host.calibrating and t < 110:
        host.submit(frame, t)
        host.analyzer.wait_for(host.analyzer.stats().submitted, timeout=10)
        t += 0.05
    baseline = host.baseline
    assert baseline is not None and not host.active
    assert dock_calibration()["applied"] is True and dock_calibration()["message"].startswith("calibrated")
    host.clear_baseline()
    assert dock_calibration()["applied"] is False
    host.apply_baseline(baseline)                         # what the OBS side does with a stored calibration at load
    assert dock_calibration()["applied"] is True


def test_the_dock_shows_a_refused_calibration_at_once(default_model, tmp_path, astronaut):
    """A calibration's last frame is the last result outside a session: its outcome must be published with it, even
    when the publish rate (5/s, as in OBS) would have held that frame's state back."""
    with OverlayServer(port=0, dock_token=new_token()) as server:
        clock = Clock()
        host = SessionHost(default_model, report_root=tmp_path, overlay=ViewerOverlay(server, hide_negative=True),
                           overlay_hz=5.0, clock=clock)
        try:
            frame = paste((360, 640), astronaut, 64, 0)         # a held smile: refused
            host.start_calibration(seconds=2.0)
            t = 100.0
            while host.calibrating and t < 110:
                clock.t = t                                     # the publish rate runs on this clock
                host.submit(frame, t)
                host.analyzer.wait_for(host.analyzer.stats().submitted, timeout=10)
                t += 0.05
            assert host.calibration_message.startswith("calibration refused")
            state = json.loads(request(server.port, f"/dock/{server.dock_token}/state.json").body)
            assert state["calibration"] == {"active": False, "progress": 0.0, "applied": False,
                                            "message": host.calibration_message}
        finally:
            host.close()
