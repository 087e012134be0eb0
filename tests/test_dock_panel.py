"""The dock in the OBS script (the fake obspython of tests/fakes/obs.py): the panel shows the dock's URL and how to
add it, the URL stays the same across loads (the token is kept per install) and is never written to the script log,
and the panel's last error reaches the dock at once while the viewers' overlay never carries it."""

from __future__ import annotations

import json
import socket

from tests.fakes.obs import entry, fake_obs, load, logged, settings_data, shows  # noqa: F401  (fixtures)
from test_overlay_server import request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_panel_shows_the_dock_url_and_how_to_add_it(entry, fake_obs, tmp_path):  # noqa: F811
    o, port = fake_obs, free_port()
    script = load(entry, o, settings_data(o, tmp_path, overlay_enabled=True, overlay_port=port))
    props = entry.script_properties()
    url = script.overlay.dock_url
    assert url and "/dock/" in url and script.overlay.dock_token not in script.overlay.url
    text = shows(props, "overlay_url")
    assert url in text and "View > Docks > Custom Browser Docks" in text
    assert "this OBS has none" in text                    # the fake, like Debian's OBS, has no browser docks
    assert request(script.overlay.port, url.split(str(script.overlay.port), 1)[1]).status == 200
    token = script.overlay.dock_token
    assert token not in logged(o), "the dock's URL opens private figures: never in the log"
    entry.script_unload()

    again = load(entry, o, settings_data(o, tmp_path, overlay_enabled=True, overlay_port=port))
    assert again.overlay.dock_token == token, "the dock URL must survive a reload"
    entry.script_unload()


def test_the_panel_s_last_error_reaches_the_dock_not_the_viewers(entry, fake_obs, tmp_path):  # noqa: F811
    o, port = fake_obs, free_port()
    script = load(entry, o, settings_data(o, tmp_path, overlay_enabled=True, overlay_port=port))
    token = script.overlay.dock_token
    assert json.loads(request(port, f"/dock/{token}/state.json").body)["dock"]["error"] == ""
    script.set_problem("source", "the webcam source 'Cam 7f3a' was removed")
    dock = json.loads(request(port, f"/dock/{token}/state.json").body)
    assert dock["dock"]["error"] == "the webcam source 'Cam 7f3a' was removed"
    assert dock["dock"]["hidden_from_viewers"] is True
    assert b"Cam 7f3a" not in request(port, "/state.json").body
    script.set_problem("source", "")
    assert json.loads(request(port, f"/dock/{token}/state.json").body)["dock"]["error"] == ""
    entry.script_unload()


def test_a_dock_turned_on_later_shows_the_state_at_once(entry, fake_obs, tmp_path):  # noqa: F811
    """The first setup: the script runs, then the streamer ticks the overlay and adds the dock — which shows the
    model and the calibration at once, not only once a session starts."""
    o, port = fake_obs, free_port()
    data = settings_data(o, tmp_path)
    script = load(entry, o, data)
    assert script.overlay is None and script.host is not None
    data.values.update(overlay_enabled=True, overlay_port=port)
    entry.script_update(data)
    state = json.loads(request(port, f"/dock/{script.overlay.dock_token}/state.json").body)
    assert state["model"] == script.host.card.name
    assert state["calibration"]["applied"] is False and state["session"] == {"active": False}
    assert state["dock"]["moments_total"] == 0 and state["dock"]["hidden_from_viewers"] is True
    entry.script_unload()
