"""MindFlow's panel through OBS's real widgets (issue 23): Tools > Scripts opened with the mouse, keys typed into the
text template's field and buttons clicked with xdotool, on Xvfb — what OBS's properties view really does when a
callback returns True (it rebuilds every widget from the properties object, focus and all), which the hooks' panel
commands (test_panel_e2e.py) can only imitate.

- typing ``{emotion} ({confidence})`` at 60 ms a key keeps every key (it left "{em" when each change of the
  template's note redrew the panel under the cursor), and so does typing at the field's start (each redraw put a
  new field there, its caret at the end: the rest of the keys went to the end);
- a double click on Start session starts one session;
- the webcam renamed during that session (through OBS's own call) is still chosen after the next click on Refresh
  status (OBS's rebuild wrote "(choose your webcam)" into the setting when the list did not hold the new name).

Needs xdotool, tesseract and ffmpeg (x11grab) besides OBS; the menu position is OBS 29's at 1280x800
(tools/panel_screenshots.py, whose Screen this uses).
"""

from __future__ import annotations

import os
import shutil
import time

import pytest

from tools.panel_screenshots import Screen

from .obs_harness import TEXT, WEBCAM, ObsConfig, ObsProcess, check_clean_exit
from .panel_driver import PanelDriver, panel_hooks

pytestmark = [pytest.mark.e2e, pytest.mark.obs_versions(29)]

LOADED = r"MindFlow: OBS finished loading"
TYPED = "{emotion} ({confidence})"
PREFIX = "{dominant} · "


@pytest.fixture
def screen_tools(obs_ready, obs_version):
    if obs_version[0] != 29:
        pytest.skip(f"not applicable to this OBS version: the Tools menu's position is OBS 29's (this is OBS "
                    f"{'.'.join(map(str, obs_version))})")      # tests/conftest.py lets this skip pass in CI
    missing = [t for t in ("xdotool", "tesseract", "ffmpeg") if shutil.which(t) is None]
    if missing:
        message = f"{', '.join(missing)} not installed (apt install xdotool tesseract-ocr ffmpeg)"
        if os.environ.get("MINDFLOW_REQUIRE_OBS") == "1":
            pytest.fail(f"MINDFLOW_REQUIRE_OBS=1 but {message}")
        pytest.skip(message)


def click_field(screen: Screen, label: str) -> None:
    """Click into the field right of the form label ``label`` (its line, as tesseract reads it, starts with it)."""
    lines = screen.lines()
    for text, x, y in lines:
        if text.startswith(label) and x >= 525:
            screen.xdotool("mousemove", str(min(x + 250, 1150)), str(y), "click", "1")
            time.sleep(0.8)
            return
    raise AssertionError(f"no '{label}' on the screen: {[t for t, _, _ in lines]}")


def test_typing_a_double_click_and_a_rename_through_obs_real_widgets(obs_ready, screen_tools, tmp_path):
    cfg = ObsConfig(workdir=tmp_path, record=False, hooks=panel_hooks(tmp_path),
                    script_settings={"video_source": WEBCAM, "text_source": TEXT, "report_dir": str(tmp_path / "r"),
                                     "rate_hz": 5.0, "idle_text": "MindFlow ready", "template": "{emotion}"})
    with ObsProcess(cfg) as run:
        assert run.wait_for(LOADED, 90), "the script never logged OBS's FINISHED_LOADING:\n" + run.log()[-3000:]
        panel = PanelDriver(run, cfg)
        panel.send("open")                                  # the hooks' own copy: it reads the script's settings
        screen = Screen(run)
        screen.open_scripts()

        # 3. Typing into the real field at 60 ms a key, through states the template's note complains about.
        click_field(screen, "Text template")
        screen.xdotool("key", "ctrl+a", "BackSpace")
        screen.xdotool("type", "--delay", "60", TYPED)
        time.sleep(1.5)
        p = panel.send()
        assert p.settings["template"] == TYPED, f"the field kept {p.settings['template']!r} of {TYPED!r}"
        # ... and at its start: a redraw puts a new field under the cursor, its caret at the end.
        screen.xdotool("key", "Home")
        screen.xdotool("type", "--delay", "60", PREFIX)
        time.sleep(1.5)
        p = panel.send()
        assert p.settings["template"] == PREFIX + TYPED, f"the field holds {p.settings['template']!r}"

        # 9. A double click on Start session (the second click lands on the redrawn "Stop session").
        lines = [(t, x, y) for t, x, y in screen.lines() if t == "Start session" and x >= 525]
        assert lines, "no Start session button on the screen"
        _, x, y = lines[0]
        screen.xdotool("mousemove", str(x), str(y), "click", "--repeat", "2", "--delay", "150", "1")
        assert run.wait_for(r"MindFlow: session started \(started with the button\)", 30), run.log()[-3000:]
        time.sleep(2.0)
        p = panel.send("press refresh")
        assert "Session running since" in (p["status"] or ""), p.describe()

        # 2. The webcam renamed during the session, then a real click on Refresh status: OBS rebuilds the panel.
        assert run.wait_for(r"MindFlow: first face in this session", 90), "no face analysed:\n" + run.log()[-3000:]
        p = panel.send(f"source rename {WEBCAM} FaceCam")
        assert p.results[0][1] is True
        assert run.wait_for(rf"MindFlow: source '{WEBCAM}' renamed to 'FaceCam'", 30), run.log()[-3000:]
        screen.click_text("Refresh status")
        time.sleep(1.0)
        p = panel.send()
        assert p.settings["video_source"] == "FaceCam", f"after OBS's redraw the webcam setting is " \
                                                     f"{p.settings['video_source']!r}"
        shown = [t for t, _, _ in screen.lines()]
        if not any("FaceCam" in t for t in shown):
            screen.grab(tmp_path / "after-refresh.png")
        assert any("FaceCam" in t for t in shown), f"the Webcam list does not show FaceCam: {shown}"
        result = run.stop(timeout=30)

    assert "Traceback" not in result.log, "\n".join(result.script_lines())
    check_clean_exit(result)
    assert result.log.count("MindFlow: session started") == 1, "the double click started more than one session"
    assert "no video source chosen" not in result.log
