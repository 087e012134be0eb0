"""Faults during a session in a real OBS (headless, Xvfb), each ending with a message that says what to do and no
session data lost — proved by reading the report or the history:

- the report folder's disk is full (a 1-MB tmpfs, mounted as root; skipped with the reason elsewhere): the panel and
  the log say so during the session, and at its end the report goes to a fallback folder that the message names;
- OBS killed with SIGKILL mid-session: the next start recovers the session from its last checkpoint and says so in
  the log, the panel and the history;
- the report folder removed mid-session: made again, the session's report written there whole;
- the overlay's port taken at load: the panel and the log name the port and a free one; the session goes on;
- a corrupted model file and unreadable stored calibrations at load: a clear message, OBS keeps running, the
  previous good model chosen again works;
- a long stretch without frames (OBS stopped with SIGSTOP for 25 s, as a laptop's suspend does): the stretch is
  counted as "not analysed" time, not as "no face".
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from .obs_harness import ROOT, TEXT, WEBCAM, ObsConfig, ObsProcess, check_clean_exit
from .panel_driver import PanelDriver, panel_hooks

pytestmark = pytest.mark.e2e

LOADED = r"MindFlow: OBS finished loading"
FIRST_FACE = r"MindFlow: first face in this session"
SUMMARY = "MindFlow session summary"
DEFAULT_MODEL = "mindflow-ferplus-r3d"


def _settings(reports: Path, **extra) -> dict:
    return {"video_source": WEBCAM, "text_source": TEXT, "report_dir": str(reports), "rate_hz": 5.0,
            "idle_text": "MindFlow ready", "min_report_s": 0, **extra}


def _config(tmp_path: Path, reports: Path, **kw) -> ObsConfig:
    settings = _settings(reports, **kw.pop("settings", {}))
    return ObsConfig(workdir=tmp_path, script_settings=settings, hooks={**panel_hooks(tmp_path), **kw.pop("hooks", {})},
                     **kw)


def _wait(run: ObsProcess, pattern: str, timeout: float = 90) -> None:
    assert run.wait_for(pattern, timeout), f"no {pattern!r} in OBS's log:\n" + run.log()[-3000:]


def _clean_exit(result) -> None:
    assert "Traceback" not in result.log, "a Python traceback in the OBS log:\n" + "\n".join(result.script_lines())
    check_clean_exit(result)


def _shown(panel) -> str:
    """Everything the panel shows, one line per property."""
    return "\n".join(text for text, visible in panel.shown.values() if visible)


def _folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def _summary(folder: Path) -> dict:
    assert not (folder / "UNFINISHED").exists(), f"{folder} is still marked unfinished"
    return json.loads((folder / "summary.json").read_text(encoding="utf-8"))


def _history(root: Path) -> list[sqlite3.Row]:
    with sqlite3.connect(root / "history.sqlite") as db:
        db.row_factory = sqlite3.Row
        return db.execute("SELECT * FROM sessions ORDER BY started_at").fetchall()


def _session_seconds(log: str) -> float:
    """The recording's length as OBS's log states it (``==== Recording Start`` to ``==== Recording Stop``)."""
    def stamp(marker: str) -> float:
        line = next(ln for ln in log.splitlines() if marker in ln)
        h, m, s = line.split(": ", 1)[0].split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)
    return stamp("==== Recording Stop") - stamp("==== Recording Start")


# ====================================================================================================================

@pytest.fixture
def small_disk(tmp_path):
    """A 1-MB tmpfs at ``tmp_path/disk`` (root only); unmounted after the test."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a full disk needs a small tmpfs, which only root can mount (run the tests as root, as CI does)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"could not mount a tmpfs for the full-disk test: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fill(folder: Path) -> Path:
    """Fill the file system under ``folder`` to the last byte."""
    filler = folder / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (65536, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def test_full_disk_keeps_the_session_in_a_fallback_folder_the_message_names(obs_ready, small_disk, tmp_path):
    reports = small_disk / "MindFlow"
    reports.mkdir()
    _fill(small_disk)
    fallback_tmp = tmp_path / "tmp"
    fallback_tmp.mkdir()
    cfg = _config(tmp_path, reports, hooks={"stop_after_s": 20.0}, extra_env={"TMPDIR": str(fallback_tmp)})
    with ObsProcess(cfg) as run:
        _wait(run, LOADED)
        panel = PanelDriver(run, cfg)
        _wait(run, FIRST_FACE)
        _wait(run, r"MindFlow could not write the session checkpoint")
        p = panel.send("open")
        shown = _shown(p)
        assert "disk is full" in shown and "free some disk space" in shown, \
            "the panel does not say the disk is full and what to do:\n" + p.describe()
        _wait(run, SUMMARY)
        time.sleep(1.0)
        p = panel.send("open")
        result = run.stop(timeout=30)
    _clean_exit(result)
    saved = _folders(fallback_tmp / "MindFlow-unsaved")
    assert len(saved) == 1, f"no report in the fallback folder: {saved}\n" + "\n".join(result.script_lines())
    assert f"The report was saved to {saved[0]} instead" in result.log, "\n".join(result.script_lines())
    assert str(saved[0]) in _shown(p), "the panel does not name the fallback folder:\n" + p.describe()
    summary = _summary(saved[0])
    # The whole session is in it: its length is the recording's (20 s, less the model's start), face time seen.
    assert summary["stats"]["duration_s"] > 0.6 * _session_seconds(result.log), summary["stats"]
    assert summary["stats"]["face_s"] > 0
    rows = _history(saved[0].parent)
    assert len(rows) == 1 and abs(rows[0]["duration_s"] - summary["stats"]["duration_s"]) < 1.0
    assert not any((f / "UNFINISHED").exists() for f in _folders(reports)), \
        "the full report folder still holds a checkpoint: the next start would recover the session twice"


def test_sigkill_mid_session_is_recovered_from_the_checkpoint_at_the_next_start(obs_ready, tmp_path):
    reports = tmp_path / "reports"
    cfg = _config(tmp_path, reports)
    with ObsProcess(cfg) as run:
        _wait(run, LOADED)
        _wait(run, FIRST_FACE)
        deadline = time.monotonic() + 150
        state = None
        # The checkpoint at the first result, then one a minute of session time later: wait for the second.
        while time.monotonic() < deadline:
            folders = _folders(reports)
            state = folders[0] / "state.json" if folders else None
            if state is not None and state.is_file() and \
                    json.loads(state.read_text(encoding="utf-8")).get("stats", {}).get("t", 0) > 0:
                break
            time.sleep(2.0)
        checkpoint = json.loads(state.read_text(encoding="utf-8")) if state and state.is_file() else {}
        assert checkpoint, f"no checkpoint in {reports} after 150 s"
        run.kill()                                  # SIGKILL: no unload, no summary
    assert SUMMARY not in run.log()
    folder = _folders(reports)[0]
    assert (folder / "UNFINISHED").is_file() and (folder / "state.json").is_file()

    cfg2 = dataclasses.replace(cfg, record=False)
    with ObsProcess(cfg2, fresh_config=False) as again:
        _wait(again, LOADED)
        p = PanelDriver(again, cfg2).send("open")
        result = again.stop(timeout=30)
    _clean_exit(result)
    assert f"finalised a session that an earlier OBS run left unfinished ({folder})" in result.log, \
        "\n".join(result.script_lines())
    assert "Recovered after an unclean exit from the last checkpoint" in result.log
    assert "(recovered)" in _shown(p), "the panel does not say the last session was recovered:\n" + p.describe()
    summary = _summary(folder)
    assert summary["recovered"] is True and summary["stats"]["duration_s"] >= 50.0, summary["stats"]
    rows = _history(reports)
    assert len(rows) == 1 and rows[0]["recovered"] == 1 and rows[0]["duration_s"] >= 50.0, [dict(r) for r in rows]


def test_report_folder_removed_mid_session_is_made_again_with_the_whole_session(obs_ready, tmp_path):
    reports = tmp_path / "reports"
    cfg = _config(tmp_path, reports, hooks={"stop_after_s": 25.0})
    with ObsProcess(cfg) as run:
        _wait(run, LOADED)
        _wait(run, FIRST_FACE)
        deadline = time.monotonic() + 30
        while not any((f / "state.json").is_file() for f in _folders(reports)) and time.monotonic() < deadline:
            time.sleep(0.5)
        first = _folders(reports)
        assert first, "no session folder after the first result"
        shutil.rmtree(reports)                      # a cloud sync or a cleaner removed it
        _wait(run, SUMMARY)
        time.sleep(1.0)
        result = run.stop(timeout=30)
    _clean_exit(result)
    assert "was removed during the session; MindFlow made it again" in result.log, "\n".join(result.script_lines())
    folders = _folders(reports)
    assert [f.name for f in folders] == [first[0].name], folders
    summary = _summary(folders[0])
    assert summary["stats"]["duration_s"] > 0.6 * _session_seconds(result.log), summary["stats"]
    rows = _history(reports)
    assert len(rows) == 1 and abs(rows[0]["duration_s"] - summary["stats"]["duration_s"]) < 1.0


def test_overlay_port_taken_at_load_names_a_free_port_and_the_session_goes_on(obs_ready, tmp_path):
    reports = tmp_path / "reports"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = _config(tmp_path, reports, hooks={"stop_after_s": 12.0},
                      settings={"overlay_enabled": True, "overlay_port": port})
        with ObsProcess(cfg) as run:
            _wait(run, LOADED)
            p = PanelDriver(run, cfg).send("open")
            _wait(run, SUMMARY)
            time.sleep(1.0)
            result = run.stop(timeout=30)
    _clean_exit(result)
    shown = _shown(p)
    assert f"port {port} is taken" in shown and "set 'Overlay port' to " in shown, \
        "the panel does not say the port is taken and which one to use:\n" + p.describe()
    assert result.log.count(f"port {port} is taken") == 1, "the message must be logged once:\n" + \
        "\n".join(result.script_lines())
    summary = _summary(_folders(reports)[0])
    assert summary["stats"]["face_s"] > 0, "the session did not go on without the overlay"


def test_corrupted_model_and_calibrations_at_load_then_the_good_model_works(obs_ready, tmp_path):
    reports = tmp_path / "reports"
    broken = tmp_path / "broken-model"
    shutil.copytree(ROOT / "models" / DEFAULT_MODEL, broken)
    onnx = next(broken.glob("*.onnx"))
    onnx.write_bytes(onnx.read_bytes()[:4096])      # a download cut short
    cfg = _config(tmp_path, reports, record=False,
                  settings={"model": "__custom__", "model_folder": str(broken), "baselines": "{\"mindflow-ferp"})
    with ObsProcess(cfg) as run:
        _wait(run, LOADED)
        panel = PanelDriver(run, cfg)
        p = panel.send("open")
        shown = _shown(p)
        assert "no model loaded" in shown and str(broken) in shown, p.describe()
        assert run.running(), "OBS exited"
        p = panel.send(f"set model \"{DEFAULT_MODEL}\"", "record start")
        _wait(run, f"model '{DEFAULT_MODEL}' loaded")
        _wait(run, FIRST_FACE)
        p = panel.send()
        assert "stored calibrations are not readable" in _shown(p) or \
            "stored calibrations are not readable" in run.log(), p.describe()
        time.sleep(8.0)
        panel.send("record stop")
        _wait(run, SUMMARY)
        time.sleep(1.0)
        result = run.stop(timeout=30)
    _clean_exit(result)
    summary = _summary(_folders(reports)[0])
    assert summary["model"] == DEFAULT_MODEL and summary["stats"]["face_s"] > 0, summary["stats"]


def test_a_long_stretch_without_frames_is_not_counted_as_no_face(obs_ready, tmp_path):
    reports = tmp_path / "reports"
    cfg = _config(tmp_path, reports)
    pause_s = 25.0
    with ObsProcess(cfg) as run:
        _wait(run, LOADED)
        _wait(run, FIRST_FACE)
        time.sleep(5.0)
        pid = run._obs_pid()
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)               # what a laptop's suspend does to OBS: no frame, no tick
        time.sleep(pause_s)
        os.kill(pid, signal.SIGCONT)
        time.sleep(10.0)
        result = run.stop(timeout=60)
    _clean_exit(result)
    stats = _summary(_folders(reports)[0])["stats"]
    # The stretch is "not analysed" (beyond max_gap_seconds = 2 s, booked to nothing), not "no face": the no-face
    # time is what the clip shows without a face (about a quarter of it), far below the pause.
    assert stats["not_analysed_s"] >= pause_s - 3.0, stats
    assert stats["no_face_s"] < 0.5 * (stats["duration_s"] - stats["not_analysed_s"]) + 1.0, stats
    total = stats["face_s"] + stats["uncertain_s"] + stats["no_face_s"] + stats["not_analysed_s"]
    assert abs(total - stats["duration_s"]) < 0.05, stats
