"""Calibrating to the streamer's face in a real OBS (issue 13, the OBS side): the calibrate hotkey pressed the way
OBS's frontend delivers hotkeys (routed to the UI thread), on a still neutral face (Grace Hopper's portrait as the
webcam: the bundled clip starts with a smile, which a calibration rightly refuses); progress and result in the panel
and on the overlay page; the baseline stored in the script's settings, applied after an OBS restart, and named in
the session's report.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from .obs_harness import ROOT, TEXT, WEBCAM, ObsConfig, ObsProcess, check_clean_exit, saved_script_settings
from .panel_driver import PanelDriver, panel_hooks

pytestmark = pytest.mark.e2e

MODEL = "mindflow-ferplus-r3d"          # = catalog.DEFAULT_MODEL
LABELS = json.loads((ROOT / "models" / MODEL / "card.json").read_text())["labels"]
LOADED = r"MindFlow: OBS finished loading"
NEUTRAL_FACE = ROOT / "tests" / "data" / "faces" / "grace_hopper.jpg"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _overlay_state(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/state.json", timeout=10) as reply:
        return json.loads(reply.read())


def test_calibrate_hotkey_stores_a_baseline_applied_after_a_restart_and_reported(obs_ready, tmp_path):
    reports = tmp_path / "reports"
    port = _free_port()
    cfg = ObsConfig(workdir=tmp_path, record=False, webcam_image=NEUTRAL_FACE, hooks=panel_hooks(tmp_path),
                    script_settings={"video_source": WEBCAM, "text_source": TEXT, "report_dir": str(reports),
                                     "rate_hz": 10.0, "calibration_s": 8.0, "min_report_s": 0,
                                     "overlay_enabled": True, "overlay_port": port})
    with ObsProcess(cfg) as run:
        assert run.wait_for(LOADED, 90), "the script never logged OBS's FINISHED_LOADING:\n" + run.log()[-3000:]
        panel = PanelDriver(run, cfg)
        p = panel.send("open")
        assert "Not calibrated" in p["status"] and p["calibrate"] == "Calibrate to my face (8 s)", p.describe()
        assert f"http://127.0.0.1:{port}/overlay" in (p["overlay_url"] or ""), p.describe()
        browser = "Browser source: yes" in run.log()   # Debian's OBS has none: then the URL and no button
        assert (p["add_overlay"] is not None) == browser, p.describe()
        panel.send("hotkey mindflow.calibrate")
        # obs-scripting runs a script's hotkeys on its own thread; MindFlow hands them to the UI thread
        assert run.wait_for(r"MindFlow: calibrating for 8 s", 30), run.log()[-3000:]
        p = panel.send("press refresh")
        assert p["calibrate"] == "Cancel calibration" and "Calibrating:" in p["status"], p.describe()
        assert _overlay_state(port)["calibration"]["active"] is True
        done = run.wait_for(r"MindFlow: calibrat(ed|ion refused)[^\n]*", 120)
        assert done and done.group(0).startswith("MindFlow: calibrated"), \
            "\n".join(ln for ln in run.log().splitlines() if "MindFlow" in ln)[-3000:]
        assert f"stored for model '{MODEL}'" in done.group(0)
        p = panel.send("press refresh")
        assert "Calibrated to your face (made " in p["status"], p.describe()
        assert p["clear_calibration"] == "Clear calibration" and p["calibrate"].startswith("Calibrate to my face")
        state = _overlay_state(port)["calibration"]
        assert state["applied"] is True and state["active"] is False and state["message"].startswith("calibrated")
        first = run.stop(timeout=30)
    assert "Traceback" not in first.log, "\n".join(first.script_lines())
    check_clean_exit(first)
    saved = saved_script_settings(cfg, cfg.collections[0])
    assert saved is not None and saved.get("baselines"), f"no baseline in the saved settings: {saved}"
    stored = json.loads(saved["baselines"])[MODEL]
    assert stored["model"] == MODEL and stored["labels"] == LABELS and stored["face_frames"] >= 30, stored

    # An OBS restart with what OBS saved: the baseline applies when the model loads; a recording is reported with it.
    with ObsProcess(cfg, fresh_config=False, start_recording=True) as run:
        assert run.wait_for(LOADED, 90), "the script never logged OBS's FINISHED_LOADING:\n" + run.log()[-3000:]
        assert f"MindFlow: stored calibration applied to '{MODEL}'" in run.log()
        assert run.wait_for(r"MindFlow: first face in this session", 90), run.log()[-3000:]
        time.sleep(1.0)
        second = run.stop(timeout=30)                 # OBS exits while recording: the session ends and is reported
    assert "Traceback" not in second.log, "\n".join(second.script_lines())
    check_clean_exit(second)
    folders = sorted(p for p in reports.iterdir() if p.is_dir())
    assert len(folders) == 1, folders
    summary = json.loads((folders[0] / "summary.json").read_text(encoding="utf-8"))
    assert summary["calibration"]["applied"] is True, summary["calibration"]
    assert summary["calibration"].get("created") == stored["created"]
    assert "Calibrated to your face" in summary["summary_text"]
    assert Path(folders[0] / "report.html").is_file()
