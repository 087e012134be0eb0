"""`analyze A B DIR/ --jobs N`: many recordings through the one per-file function, resumable from the history, a
file's error never stopping the batch (obs_mindflow.batch, obs_mindflow.engine.video.analyze_file)."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from obs_mindflow.batch import find_videos
from obs_mindflow.engine.reports.history import History, InputKey, find_analysed
from obs_mindflow.engine.video import FileSettings, analyze_file
from tests.conftest import ROOT, SAMPLE

CUT = "4"      # seconds of each copy of the sample to analyse: the batch machinery, not the clip, is under test


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "obs_mindflow", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


@pytest.fixture()
def archive(tmp_path):
    videos = tmp_path / "videos"
    (videos / "sub").mkdir(parents=True)
    shutil.copy(SAMPLE, videos / "a.mp4")
    shutil.copy(SAMPLE, videos / "sub" / "b.mkv.mp4")
    (videos / "notes.txt").write_text("not a video, not looked at")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video\n" * 100)
    return tmp_path, videos, bad


def test_batch_errors_do_not_stop_it_and_a_second_run_skips_what_is_done(archive):
    tmp, videos, bad = archive
    reports = tmp / "reports"
    args = ("analyze", str(videos), str(bad), str(tmp / "missing.mp4"), "--report-dir", str(reports),
            "--max-seconds", CUT)
    first = run_cli(*args)
    assert first.returncode == 1, first.stderr
    out = first.stdout
    assert "2 analysed, 0 skipped" in out and "2 failed" in out
    failed = out.split("Failed:\n", 1)[1].splitlines()
    assert failed[0].startswith(f"  {bad}: ") and "cannot open" in failed[0]
    assert failed[1].startswith(f"  {tmp / 'missing.mp4'}: video not found")
    assert len(folders(reports)) == 2 and f"History: {reports / 'history.html'}" in out
    assert "Traceback" not in first.stderr and "files" in first.stderr          # the overall progress bar
    with History.open(reports) as h:
        rows = h.rows()
    assert sorted(Path(r.input.path).name for r in rows) == ["a.mp4", "b.mkv.mp4"]
    assert all(r.input.size == SAMPLE.stat().st_size and len(r.input.settings_key) == 32 for r in rows)

    second = run_cli(*args)
    assert second.returncode == 1
    assert "0 analysed, 2 skipped" in second.stdout and "2 failed" in second.stdout
    assert "skipped a.mp4: analysed on" in second.stderr
    assert len(folders(reports)) == 2                                        # nothing analysed again

    forced = run_cli("analyze", str(videos), "--report-dir", str(reports), "--max-seconds", CUT, "--force", "-q")
    assert forced.returncode == 0, forced.stderr
    assert "2 analysed, 0 skipped" in forced.stdout and "Failed" not in forced.stdout
    assert len(folders(reports)) == 4 and forced.stderr == ""


def test_batch_in_two_processes(archive):
    tmp, videos, _ = archive
    shutil.copy(SAMPLE, videos / "c.mp4")
    reports = tmp / "reports"
    out = run_cli("analyze", str(videos), "--report-dir", str(reports), "--max-seconds", CUT, "--jobs", "2")
    assert out.returncode == 0, out.stderr
    assert "3 analysed" in out.stdout and "3/3 files" in out.stderr
    done = folders(reports)
    assert len(done) == 3 and all((f / "summary.json").is_file() for f in done)
    assert len(History.open(reports).rows()) == 3


def test_find_videos_expands_folders_once_each_in_the_order_given(archive):
    tmp, videos, bad = archive
    files, failed, order = find_videos([bad, videos, videos / "a.mp4", tmp / "nothing", tmp / "videos" / "sub"])
    assert [f.name for f in files] == ["bad.mp4", "a.mp4", "b.mkv.mp4"]          # notes.txt is not a video
    assert [b.error[:15] for b in failed] == ["video not found"]
    assert sorted(order, key=order.get) == [str(bad), str(videos / "a.mp4"), str(videos / "sub" / "b.mkv.mp4"),
                                            str(tmp / "nothing")]


@pytest.mark.parametrize("change", [
    {"rate": 2.0}, {"max_seconds": 10.0}, {"calibrate_seconds": 5.0}, {"nudge": True},
    {"model": "fer-mini-xception"},
])
def test_the_settings_key_follows_what_changes_a_report(change):
    base = FileSettings()
    assert base.key() == FileSettings().key() == dataclasses.replace(base, threads=4).key()   # speed only
    assert dataclasses.replace(base, **change).key() != base.key()


def test_the_settings_key_follows_the_baseline_files_content(tmp_path):
    f = tmp_path / "baseline.json"
    f.write_text("{}")
    a = FileSettings(baseline=str(f)).key()
    f.write_text('{"x": 1}')
    assert FileSettings(baseline=str(f)).key() != a


def test_an_interrupted_file_is_not_taken_as_done(tmp_path):
    video = tmp_path / "v.mp4"
    shutil.copy(SAMPLE, video)
    key = InputKey.of(video, FileSettings().key())

    def stop(t, analysed, result):
        if t >= 3.0:
            raise KeyboardInterrupt

    done = analyze_file(video, FileSettings(), tmp_path / "r", input_key=key, on_progress=stop)
    assert done.interrupted and done.finished.ok and done.finished.folder is not None
    (row,) = History.open(tmp_path / "r").rows()
    assert row.input is None and find_analysed(tmp_path / "r", key) is None
    full = analyze_file(video, FileSettings(max_seconds=4.0), tmp_path / "r",
                        input_key=InputKey.of(video, FileSettings(max_seconds=4.0).key()))
    assert not full.interrupted and full.run.last_s >= 3.5
    assert find_analysed(tmp_path / "r", InputKey.of(video, FileSettings(max_seconds=4.0).key())) is not None
