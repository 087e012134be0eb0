"""The `analyze` CLI on the bundled sample clip, and its bad-input paths."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from obs_mindflow import __version__
from tests.conftest import ROOT, SAMPLE


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "obs_mindflow", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    reports = tmp_path_factory.mktemp("reports")
    out = run_cli("analyze", str(SAMPLE), "--report-dir", str(reports))
    return out, reports


def test_sample_clip_summary_and_reports(sample_run):
    out, reports = sample_run
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "happy" in text and "neutral" in text
    assert "negative" in text.lower()
    assert "not a diagnosis" in text
    folders = [p for p in reports.iterdir() if p.is_dir()]
    assert len(folders) == 1
    folder = folders[0]
    assert str(folder) in text
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["schema_version"] == 1
    stats = summary["stats"]
    assert 0.6 < stats["coverage"] < 0.97  # the clip shows no face for 8 of its 28 s (1.5 s of each held by smoothing)
    rows = list(csv.DictReader((folder / "timeline.csv").open()))
    assert len(rows) >= 2
    html = (folder / "report.html").read_text()
    assert "happy" in html and "<svg" in html


def test_sample_clip_profile_is_happy_then_neutral(sample_run):
    out, reports = sample_run
    folder = next(p for p in reports.iterdir() if p.is_dir())
    summary = json.loads((folder / "summary.json").read_text())
    blob = json.dumps(summary)
    assert '"happy"' in blob and '"neutral"' in blob
    shares = summary["stats"]["shares"]
    assert shares["happy"] > 0.3 and shares["neutral"] > 0.3
    assert shares["happy"] + shares["neutral"] > 0.85


def test_sample_clip_moments_follow_its_script(sample_run):
    """The clip's script (tools/make_sample.py): 0–10 s a smiling face, 10–14 s none, 14–24 s a neutral face, 24–28 s
    none. The detector confirms a face over 0.4 s, the smoother averages its first 0.6 s before showing a label
    and holds a lost face 0.5 s, so the displayed emotion runs happy ~1.0–11 s and neutral ~15.0–25.4 s (up to 0.5 s
    later: after a second without a face the detector searches the frame every 0.5 s): one "Smiles" moment from 0:00
    and one "Calm" moment (at least the 10 s a calm moment needs) from 0:14, in the video's own time."""
    _, reports = sample_run
    folder = next(p for p in reports.iterdir() if p.is_dir())
    doc = json.loads((folder / "summary.json").read_text())
    assert doc["media"] == {"clock": "video", "offset_s": 0.0, "note": doc["media"]["note"]}
    moments = sorted(doc["moments"], key=lambda m: m["start_s"])
    assert [(m["emotion"], m["kind"], m["title"]) for m in moments] == [("happy", "sustained", "Smiles"),
                                                                        ("neutral", "sustained", "Calm")]
    happy, calm = moments
    assert happy["start_s"] <= 1.5 and 10.0 <= happy["end_s"] <= 12.0 and happy["peak"] > 0.7
    assert abs(calm["start_s"] - 14.0) <= 1.5 and 24.0 <= calm["end_s"] <= 26.5
    assert happy["start"] in ("00:00:00", "00:00:01") and calm["start"] in ("00:00:14", "00:00:15")
    assert happy["rank"] == 1
    assert happy["seconds"] > 9 and calm["seconds"] >= 10
    ch = doc["chapters"]                        # two chapters only: YouTube needs three, so no block to paste
    assert not ch["usable"] and ch["text"] == "" and "at least 3" in ch["note"]
    assert [c["title"] for c in ch["chapters"]] == ["Smiles", "Calm"]
    assert ch["chapters"][0]["time"] == "00:00" and ch["chapters"][1]["time"] == calm["start"][3:]
    rows = list(csv.DictReader((folder / "timeline.csv").open()))
    assert [r["video_seconds"] for r in rows[:3]] == ["0.000", "10.000", "20.000"]
    assert [r["elapsed"] for r in rows[:3]] == ["00:00:00", "00:00:10", "00:00:20"]
    page = (folder / "report.html").read_text()
    assert 'id="moment-list"' in page and f"{calm['start']}–00:00:25" in page and 'href="../history.html"' in page
    assert page.count('class="moment"') == 2 and ">00:00:05</text>" in page           # lane and hh:mm:ss ticks
    assert f"Moments: 2 (best: Smiles {happy['start']}, Calm {calm['start']})" in sample_run[0].stdout
    assert (reports / "history.html").is_file()


def test_progress_goes_to_stderr(sample_run):
    out, _ = sample_run
    assert "100%" in out.stderr and "fps" in out.stderr


def test_no_report_and_rate(tmp_path):
    out = run_cli("analyze", str(SAMPLE), "--no-report", "--rate", "2", "--max-seconds", "8", "-q")
    assert out.returncode == 0, out.stderr
    assert "happy" in out.stdout
    assert out.stderr.strip() == ""


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.mp4", "video not found"),
    (lambda d: d, "no video file in the folder"),          # a folder is a batch; this one holds no video
    (lambda d: _write(d / "text.mp4", b"this is not a video\n" * 100), "cannot open"),
    (lambda d: _write(d / "empty.mkv", b""), "cannot open"),
    (lambda d: _write(d / "truncated.mp4", SAMPLE.read_bytes()[:2000]), ""),
])
def test_unreadable_video_clear_error_nonzero_exit(tmp_path, make, message):
    path = make(tmp_path)
    out = run_cli("analyze", str(path), "--report-dir", str(tmp_path / "r"))
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    assert out.stderr.startswith("error: ") and message in out.stderr
    assert "Traceback" not in out.stderr


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("args, message", [
    (["--rate", "-1"], "--rate must be between"),
    (["--rate", "fast"], "--rate must be a number"),
    (["--model", "/nonexistent/model"], "model folder not found"),
    (["--threads", "0"], "--threads must be between"),
    (["--uncertain-below", "120"], "a percentage from 0 to below 100"),
])
def test_bad_options(args, message):
    out = run_cli("analyze", str(SAMPLE), *args)
    assert out.returncode == 2
    assert message in out.stderr


def test_uncertain_below_shapes_the_report_and_the_resume_key(tmp_path):
    """A streamer's 'uncertain' threshold: a high one turns most of the sample's readings uncertain, and a batch does
    not take a report made with another threshold for this one."""
    from obs_mindflow.engine.video import FileSettings

    out = run_cli("analyze", str(SAMPLE), "--no-report", "--uncertain-below", "99", "--rate", "5")
    assert out.returncode == 0, out.stderr
    assert "Uncertain (a face that could not be read):" in out.stdout
    share = float(out.stdout.split("Uncertain (a face that could not be read):")[1].split("%")[0])
    assert share > 50, out.stdout
    assert FileSettings(uncertain_below=0.6).key() != FileSettings().key()


def test_version_is_the_package_version():
    out = run_cli("--version")
    assert (out.returncode, out.stdout) == (0, f"MindFlow {__version__}\n")


def test_models_command_lists_the_default():
    out = run_cli("models")
    assert out.returncode == 0
    assert "fer-mini-xception" in out.stdout and "(default)" in out.stdout


def test_ctrl_c_stops_cleanly_and_keeps_what_was_analysed(tmp_path):
    import signal

    reports = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "-m", "obs_mindflow", "analyze", str(SAMPLE), "--rate", "0",
                             "--report-dir", str(reports)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1,
                            # a shell's background job inherits SIGINT ignored, and Python keeps it so
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # Interrupt when progress reaches 10 % of the clip (the whole clip takes ~1.5 s on a fast machine, so a fixed
    # sleep could land after the end).
    seen = []
    while True:
        line = proc.stderr.readline()
        seen.append(line)
        if not line or (" analysed · " in line and int(line.split("%")[0]) >= 10):
            break
    assert line, "analyze ended before printing progress: " + "".join(seen)
    proc.send_signal(signal.SIGINT)
    out, rest = proc.communicate(timeout=60)
    err = "".join(seen) + rest
    assert proc.returncode == 130, (out, err)
    assert "stopped" in err and "Traceback" not in err
    folder = next(p for p in reports.iterdir() if p.is_dir())
    summary = json.loads((folder / "summary.json").read_text())
    assert 0 < summary["stats"]["duration_s"] < 27  # only part of the 28-s clip
    assert "not a diagnosis" in out
