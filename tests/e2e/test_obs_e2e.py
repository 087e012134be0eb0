"""MindFlow in a real OBS Studio (headless, Xvfb): a recorded session is analysed, shown in the text source and
reported; a mid-session script reload (scene-collection switch) and an exit while still recording lose nothing.

Each run starts OBS with ``--startrecording`` on the bundled sample clip as the webcam (an ``ffmpeg_source`` looping
``samples/mindflow-sample.mp4``), waits for the script's log lines, and closes OBS as File > Exit does (the
test-only hooks script ``obs_test_hooks.py``; SIGINT where it is not running; SIGKILL after a timeout, with the hung
OBS's native and Python stacks in the failure message). Skipped where ``obs``/``xvfb-run`` are missing, unless
``MINDFLOW_REQUIRE_OBS=1`` (CI) makes that a failure.
"""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from .obs_harness import TEXT, WEBCAM, ObsConfig, ObsProcess, check_clean_exit, saved_source_settings

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = "mindflow-ferplus-r3d"          # = catalog.DEFAULT_MODEL (tests/test_card.py checks)
LABELS = tuple(json.loads((ROOT / "models" / DEFAULT_MODEL / "card.json").read_text())["labels"])
#: What the overlay and the text source may show for a face: a label, or "uncertain" when the face cannot be read
#: (engine/results.py UNCERTAIN: split or low confidence, too small or blurred).
SHOWN = LABELS + ("uncertain",)
LOADED = r"MindFlow: OBS finished loading"
SUMMARY = "MindFlow session summary"
IDLE = "MindFlow ready"        # the text source outside a session (the idle_text setting)


def _settings(report_dir: Path, **extra) -> dict:
    return {"video_source": WEBCAM, "text_source": TEXT, "report_dir": str(report_dir), "rate_hz": 5.0,
            "idle_text": IDLE, "min_report_s": 0, **extra}


def _check_clean_exit(result, workdir: Path) -> None:
    assert "Traceback" not in result.log, "a Python traceback in the OBS log:\n" + "\n".join(result.script_lines())
    # Exit status 0, no leaks, not killed (OBS files in workdir); when not, control runs without MindFlow tell OBS's
    # own shutdown faults (a warning) from ours (a failure).
    check_clean_exit(result)


def _session_folders(report_dir: Path) -> list[Path]:
    return sorted(p for p in report_dir.iterdir() if p.is_dir()) if report_dir.is_dir() else []


def _check_report(folder: Path) -> dict:
    for name in ("summary.json", "timeline.csv", "report.html"):
        assert (folder / name).is_file(), f"{name} missing in {folder}: {sorted(p.name for p in folder.iterdir())}"
    assert not (folder / "UNFINISHED").exists(), f"{folder} is still marked unfinished"
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert summary["labels"] == list(LABELS)
    assert summary["stats"]["coverage"] > 0, f"no face time in {folder}: {summary['stats']}"
    assert summary["stats"]["duration_s"] > 1.0
    return summary


def _saved_text(cfg: ObsConfig, collection: str) -> str:
    settings = saved_source_settings(cfg, collection, TEXT)
    assert settings is not None, f"text source '{TEXT}' not found in the saved collection {collection}"
    return settings.get("text", "")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_recording_session_is_analysed_shown_and_reported(obs_ready, tmp_path):
    reports = tmp_path / "reports"
    port = _free_port()
    cfg = ObsConfig(workdir=tmp_path, script_settings=_settings(reports, overlay_enabled=True, overlay_port=port),
                    hooks={"stop_after_s": 8.0})
    with ObsProcess(cfg) as run:
        assert run.wait_for(LOADED, 90), "the script never logged OBS's FINISHED_LOADING:\n" + run.log()[-3000:]
        assert run.wait_for(r"MindFlow: first face in this session", 90), "no face analysed:\n" + run.log()[-3000:]
        time.sleep(1.0)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/state.json", timeout=10) as reply:
            state = json.loads(reply.read())
        assert state["labels"] == list(LABELS) and state["session"]["active"] is True, state
        assert state["emotion"] in SHOWN and state["face"] is True, f"the overlay state shows no face: {state}"
        assert run.wait_for(re.escape(SUMMARY), 90), \
            "no end-of-session summary after the recording stopped:\n" + run.log()[-3000:]
        time.sleep(0.5)
        result = run.stop(timeout=30)
    _check_clean_exit(result, tmp_path)

    log = result.log
    assert "MindFlow: session started (recording started)" in log
    assert "MindFlow: session ended (recording stopped (no output active any more))" in log
    assert log.count(SUMMARY) == 1, "the session must be summarised exactly once"
    assert re.search(r"Your face was in view [1-9]\d* %", log), "the summary says no face was seen"
    assert "MindFlow capture cost per frame" in log
    assert f"MindFlow: overlay at http://127.0.0.1:{port}/overlay" in log

    text = _saved_text(cfg, cfg.collections[0])
    assert text == IDLE, f"after the session the text source shows {text!r}, not the idle text"
    shown = [ln for ln in log.splitlines() if "MindFlow: session result:" in ln]
    assert len(shown) == 1 and "report: " in shown[0], shown

    folders = _session_folders(reports)
    assert len(folders) == 1, f"expected one session folder, got {folders}"
    summary = _check_report(folders[0])
    assert summary["source"] == WEBCAM


def test_reload_mid_session_and_exit_while_recording_keep_both_reports(obs_ready, tmp_path):
    reports = tmp_path / "reports"
    cfg = ObsConfig(workdir=tmp_path, collections=("A", "B"), script_settings=_settings(reports),
                    hooks={"switch_collection": "B", "switch_after_s": 5.0},
                    collection_hooks={"B": {"switch_collection": "", "switch_after_s": 0.0}})
    with ObsProcess(cfg) as run:
        assert run.wait_for(LOADED, 90), "the script never logged OBS's FINISHED_LOADING:\n" + run.log()[-3000:]
        assert run.wait_for(r"Switched to scene collection 'B'", 90), "the scene collection did not switch"
        assert run.wait_for(r"Switched to scene collection 'B'(.|\n)*MindFlow: first face in this session", 90), \
            "no face analysed after the reload:\n" + run.log()[-3000:]
        time.sleep(2.0)
        assert run.running(), "OBS exited on its own"
        result = run.stop(timeout=30)   # still recording: scripts are unloaded before the output stops
    _check_clean_exit(result, tmp_path)

    log = result.log
    assert "MindFlow: session ended (the script is unloading)" in log, "the reload did not end the first session"
    assert "MindFlow: session started (OBS was already recording at script load)" in log
    assert "MindFlow: session ended (OBS is exiting (scripting shutdown))" in log
    assert log.count(SUMMARY) == 2, "each of the two sessions must be summarised exactly once"
    assert "recording stopped" not in log.split("Switched to scene collection 'B'")[1].split(SUMMARY)[0]

    folders = _session_folders(reports)
    assert len(folders) == 2, f"expected two session folders (before and after the reload), got {folders}"
    for folder in folders:
        _check_report(folder)
    # OBS saves the scene collection before it shuts scripting down, so an exit while recording saves the session's
    # last text; the next load replaces it with the idle text (test_panel_e2e: the source's old text is replaced).
    text = _saved_text(cfg, "B")
    assert any(label in text for label in SHOWN), f"the text source shows {text!r}, naming none of {SHOWN}"


def test_missing_dependencies_load_and_print_the_install_command(obs_ready, tmp_path):
    """A checkout without the .deps folder (a fresh install before the helper ran): the script still loads in OBS and
    logs what is missing with the exact command for OBS's Python."""
    import shutil

    copy = tmp_path / "MindFlow copy"
    shutil.copytree(ROOT / "obs_mindflow", copy / "obs_mindflow", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "tools", copy / "tools", ignore=shutil.ignore_patterns("__pycache__", "train", "dan"))
    shutil.copy(ROOT / "requirements.txt", copy / "requirements.txt")
    settings = _settings(tmp_path / "reports")
    cfg = ObsConfig(workdir=tmp_path, script_path=copy / "obs_mindflow" / "mindflow_obs.py", script_settings=settings)
    with ObsProcess(cfg) as run:
        assert run.wait_for(r"==== Recording Start", 90), "OBS did not finish loading:\n" + run.log()[-3000:]
        time.sleep(1.0)
        result = run.stop(timeout=30)
    _check_clean_exit(result, tmp_path)
    log = result.log
    if "MindFlow needs" not in log and f"model '{DEFAULT_MODEL}' loaded" in log:
        pytest.skip("OBS's Python has numpy, OpenCV and onnxruntime system-wide: nothing is missing to report")
    assert "MindFlow needs" in log and "they are missing" in log, "\n".join(result.script_lines())
    assert f"{obs_ready} '{copy / 'tools' / 'install_obs_deps.py'}'" in log, \
        "the log must give the exact install command for OBS's Python:\n" + "\n".join(result.script_lines())
    assert "Loaded python script: mindflow_obs.py" in log
