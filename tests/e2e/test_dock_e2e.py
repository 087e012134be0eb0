"""The streamer's private dock in a real OBS (issue 27): the panel shows the dock's URL (its token kept per install in
the user's config folder, never in OBS's log); during a recording's session the dock's state carries the negative
share, its trend and the analysis rate while the viewers' overlay, with the share hidden (the default), carries none
of it; a wrong token is refused; when OBS closes the script the dock's URL stops answering.
"""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.error
import urllib.request

import pytest

from .obs_harness import TEXT, WEBCAM, ObsConfig, ObsProcess, check_clean_exit
from .panel_driver import PanelDriver, panel_hooks

pytestmark = pytest.mark.e2e

LOADED = r"MindFlow: OBS finished loading"
DOCK_URL = re.compile(r"http://127\.0\.0\.1:(\d+)/dock/([A-Za-z0-9_-]{22,})")
PRIVATE = ("negative_share", "rolling_negative_share", "trend", "profile")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_the_dock_in_obs_is_private_live_and_gone_with_the_script(obs_ready, tmp_path):
    port = _free_port()
    cfg = ObsConfig(workdir=tmp_path, hooks=panel_hooks(tmp_path),
                    script_settings={"video_source": WEBCAM, "text_source": TEXT, "report_dir": str(tmp_path / "r"),
                                     "rate_hz": 10.0, "min_report_s": 0, "overlay_enabled": True,
                                     "overlay_port": port})
    with ObsProcess(cfg) as run:
        assert run.wait_for(LOADED, 90), "the script never logged OBS's FINISHED_LOADING:\n" + run.log()[-3000:]
        p = PanelDriver(run, cfg).send("open")
        found = DOCK_URL.search(p["overlay_url"] or "")
        assert found and int(found.group(1)) == port, p.describe()
        assert "View > Docks > Custom Browser Docks" in p["overlay_url"], p.describe()
        url, token = found.group(0), found.group(2)
        kept = cfg.config_home / "MindFlow" / "dock-token"          # OBS's XDG_CONFIG_HOME: the user's config
        assert kept.read_text().strip() == token
        status, page = _get(url)
        assert status == 200 and b"MindFlow dock" in page
        wrong = token[:-1] + ("y" if token.endswith("x") else "x")     # one letter off (a token may end in x)
        assert _get(f"http://127.0.0.1:{port}/dock/{wrong}")[0] == 403

        assert run.wait_for(r"MindFlow: first face in this session", 90), run.log()[-3000:]
        deadline, dock = time.monotonic() + 30, {}
        while time.monotonic() < deadline:
            dock = json.loads(_get(url + "/state.json")[1])
            session = dock.get("session", {})
            if session.get("active") and session.get("duration_s", 0) > 3 and dock["dock"].get("rate_hz", 0) > 0:
                break
            time.sleep(0.3)
        assert set(PRIVATE) <= set(dock["session"]), dock
        assert dock["dock"]["hidden_from_viewers"] is True and dock["model"], dock["dock"]
        viewers = json.loads(_get(f"http://127.0.0.1:{port}/state.json")[1])
        assert viewers["private"] is True and viewers["session"]["active"] is True
        assert not set(PRIVATE) & set(viewers["session"]) and "dock" not in viewers, viewers
        result = run.stop(timeout=30)
    assert "Traceback" not in result.log, "\n".join(result.script_lines())
    assert token not in result.log, "the dock's token reached OBS's log"
    check_clean_exit(result)
    with pytest.raises(OSError):                                    # MindFlow is gone: the dock's page says so
        urllib.request.urlopen(url + "/state.json", timeout=5)
