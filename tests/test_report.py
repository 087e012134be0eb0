"""Session reports (obs_mindflow.engine.reports): folder and file formats, checkpoints, crash recovery, I/O errors,
nudges through the recorder, and the HTML page rendered in a real (headless) Chromium."""

from __future__ import annotations

import csv
import errno
import html
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from obs_mindflow import __version__
from obs_mindflow.engine.reports import files, storage
from obs_mindflow.engine.reports import html as html_module
from obs_mindflow.engine.reports.files import FinishedSession
from obs_mindflow.engine.reports.html import label_colours
from obs_mindflow.engine.reports.recorder import SessionRecorder
from obs_mindflow.engine.reports.recovery import recover_unfinished
from obs_mindflow.engine.reports.storage import (HTML_FILE, MARKER_FILE, STATE_FILE, SUMMARY_FILE, TIMELINE_FILE,
                                                 ReportError, atomic_write, default_report_dir, session_folder_name)
from obs_mindflow.engine.results import AnalysisResult
from obs_mindflow.engine.session.events import NUDGE
from obs_mindflow.engine.session.rules import NudgeMonitor
from obs_mindflow.engine.session.stats import SessionStats
from obs_mindflow.engine.formatting import format_duration
from obs_mindflow import i18n as _i18n

REPO = Path(__file__).resolve().parents[1]
FER = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER_NEG = ("angry", "disgust", "fear", "sad")
TZ = timezone(timedelta(hours=1))
START = datetime(2026, 11, 24, 20, 15, 3, tzinfo=TZ)

DISCLAIMER = _i18n.words("")("report.disclaimer")      # the English disclaimer


@dataclass(frozen=True)
class Card:
    name: str = "fer-test"
    labels: tuple[str, ...] = FER
    negative_labels: tuple[str, ...] = FER_NEG


def result(t: float, emotion: str, labels=FER, seq: int = 1) -> AnalysisResult:
    """A result showing ``emotion`` ("" for no face) with a smoothed probability of 0.5–0.9 for it (varying with
    the time, so that moments have peaks and means to rank by)."""
    if emotion:
        p = 0.7 + 0.2 * math.sin(t / 7.0)
        smoothed = [p if lab == emotion else (1 - p) / (len(labels) - 1) for lab in labels]
        return AnalysisResult(seq=seq, timestamp=t, frame_size=(64, 48), labels=labels, boxes=[[8, 8, 24, 24]],
                              emotion=emotion, confidence=p, smoothed=smoothed)
    return AnalysisResult.empty(labels, timestamp=t, seq=seq)


def realistic(seconds: float, rate: float = 4.0, seed: int = 1, t0: float = 5000.0):
    """(timestamp, emotion) pairs: label runs of a few seconds, mostly neutral/happy, a tense stretch between 35 %
    and 50 % of the session, a few no-face gaps (the streamer leaves) and one 3-minute pause without results."""
    rng = random.Random(seed)
    calm = {"neutral": 50, "happy": 25, "surprise": 8, "sad": 7, "angry": 4, "fear": 3, "disgust": 3}
    tense = {"neutral": 25, "happy": 5, "surprise": 5, "sad": 30, "angry": 25, "fear": 5, "disgust": 5}
    out, t, label, until = [], 0.0, "neutral", 0.0
    pause = (0.7 * seconds, 0.7 * seconds + 180)
    while t <= seconds:
        if pause[0] <= t < pause[1]:
            t = pause[1]
            continue
        if t >= until:
            w = tense if 0.35 * seconds <= t < 0.5 * seconds else calm
            if rng.random() < 0.015:
                label, until = "", t + rng.uniform(10, 60)
            else:
                label = rng.choices(list(w), list(w.values()))[0]
                until = t + rng.expovariate(1 / 8)
        out.append((t0 + t, label))
        t += (1 / rate) * rng.uniform(0.7, 1.3)
    return out


def record(root, events, card=Card(), **kw) -> SessionRecorder:
    rec = SessionRecorder(root, card, **kw)
    for i, (t, e) in enumerate(events, 1):
        rec.add(result(t, e, card.labels, seq=i))
    return rec


# ---------------------------------------------------------------------------------------------------------------
# Folders
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make_documents, expected", [(True, "Documents/MindFlow"), (False, "MindFlow")])
def test_default_report_dir(tmp_path, monkeypatch, make_documents, expected):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("USERPROFILE", str(tmp_path))
    if make_documents:
        (tmp_path / "Documents").mkdir()
    assert default_report_dir() == tmp_path / expected


@pytest.mark.parametrize("started_at, name", [
    (datetime(2026, 11, 24, 20, 15, 3, 999000, tzinfo=TZ), "2026-11-24T20-15-03"),
    (datetime(2027, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "2027-01-02T03-04-05"),
    (datetime(2026, 6, 1, 0, 0, 0), "2026-06-01T00-00-00"),
])
def test_session_folder_name_is_filesystem_safe(started_at, name):
    got = session_folder_name(started_at)
    assert got == name and not set(got) & set(':\\/*?"<>| ')


def test_folder_name_clash_gets_a_suffix(tmp_path):
    a = record(tmp_path, [(0, "happy"), (1, "happy")], started_at=START).finish()
    b = record(tmp_path, [(0, "sad"), (1, "sad")], started_at=START).finish()
    assert (a.folder.name, b.folder.name) == ("2026-11-24T20-15-03", "2026-11-24T20-15-03-2")


# ---------------------------------------------------------------------------------------------------------------
# The three files
# ---------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> FinishedSession:
    root = tmp_path_factory.mktemp("reports")
    rec = record(root, realistic(3600), started_at=START, source="Webcam <Logitech & Co>")
    done = rec.finish()
    assert done.ok, done.error
    return done


def test_folder_holds_exactly_the_report_files(finished):
    assert sorted(p.name for p in finished.folder.iterdir()) == sorted([SUMMARY_FILE, TIMELINE_FILE, HTML_FILE])
    assert finished.folder.name == "2026-11-24T20-15-03"
    assert f"Report: {finished.folder / HTML_FILE}" in finished.summary_text


def test_summary_json_schema(finished):
    doc = json.loads((finished.folder / SUMMARY_FILE).read_text(encoding="utf-8"))
    snap = finished.snapshot
    assert doc["schema_version"] == 1 and doc["kind"] == "mindflow-session-summary"
    assert doc["mindflow_version"] == __version__
    assert f"<footer>Made on this computer by MindFlow {__version__};" in (finished.folder / HTML_FILE).read_text()
    assert (doc["model"], doc["labels"], doc["negative_labels"]) == ("fer-test", list(FER), list(FER_NEG))
    start, end = datetime.fromisoformat(doc["started_at"]), datetime.fromisoformat(doc["ended_at"])
    assert start == START.replace(microsecond=0)
    assert (end - start).total_seconds() == pytest.approx(snap.duration_s, abs=1)
    assert doc["source"] == "Webcam <Logitech & Co>" and doc["recovered"] is False
    stats = doc["stats"]
    for key in ("duration_s", "face_s", "uncertain_s", "no_face_s", "not_analysed_s", "coverage", "negative_share",
                "dominant", "label_changes", "updates"):
        assert stats[key] == getattr(snap, key), key
    assert stats["shares"] == dict(zip(FER, snap.shares))
    assert stats["longest_negative"]["duration_s"] == snap.longest_negative.duration_s
    assert stats["timeline"]["columns"] == [*FER, "uncertain", "no_face", "not_analysed"]
    assert doc["uncertain_share"] == snap.uncertain_share == stats["uncertain_share"]
    assert doc["calibration"] == {"applied": False} and "readable face" in doc["definitions"]["negative_share"]
    assert len(stats["timeline"]["rows"]) == len(snap.timeline)
    assert np.sum(stats["timeline"]["rows"]) == pytest.approx(snap.duration_s, abs=0.01 * len(snap.timeline))
    assert 150 < stats["not_analysed_s"] < 200            # the 3-minute pause, minus the 2 s held
    assert doc["summary_text"].splitlines()[-1] == DISCLAIMER
    assert len(doc["top_negative_segments"]) == 3
    for seg in doc["top_negative_segments"]:
        assert datetime.fromisoformat(seg["start"]) >= start and 0 < seg["negative_share"] <= 1
    # moments, ranked, with hh:mm:ss since the start of a live session; chapters from them
    assert doc["media"]["clock"] == "session" and doc["media"]["offset_s"] == 0.0
    moments = doc["moments"]
    assert [m["rank"] for m in moments] == list(range(1, len(moments) + 1)) and len(moments) > 20
    assert all(a["score"] >= b["score"] for a, b in zip(moments, moments[1:]))
    for m in moments:
        assert 0 <= m["start_s"] < m["end_s"] <= snap.duration_s + 0.002
        assert m["seconds"] <= m["end_s"] - m["start_s"] + 0.002            # (rounded to milliseconds)
        assert m["kind"] in ("sustained", "spike") and m["emotion"] in FER and 0 < m["mean"] <= m["peak"] <= 1
        h, mi, se = (int(x) for x in m["start"].split(":"))
        assert 0 <= m["start_s"] - (3600 * h + 60 * mi + se) < 1     # whole seconds down, as chapters (issue 23)
    ch = doc["chapters"]
    assert ch["usable"] and ch["text"].splitlines()[0].startswith("00:00 ") and 3 <= len(ch["chapters"]) <= 12
    assert not any(m["negative"] for m in moments if m["id"] in {c["moment"] for c in ch["chapters"]})


def test_timeline_csv_parses_and_every_row_has_time_and_seconds(finished):
    with open(finished.folder / TIMELINE_FILE, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    snap = finished.snapshot
    assert len(rows) == len(snap.timeline) == int(np.ceil(snap.duration_s / 10))
    assert list(rows[0]) == ["time", "seconds_since_start", "bin_seconds", *(f"share_{x}" for x in FER),
                             "face_seconds", "uncertain_seconds", "no_face_seconds", "not_analysed_seconds",
                             "negative_share", "dominant", "elapsed", "video_seconds"]
    for i, row in enumerate(rows):
        when = datetime.fromisoformat(row["time"])
        secs = float(row["seconds_since_start"])
        assert secs == pytest.approx(10 * i)
        h, m, sec = (int(x) for x in row["elapsed"].split(":"))
        assert 3600 * h + 60 * m + sec == round(secs) and row["video_seconds"] == ""     # a live session
        assert abs((when - START).total_seconds() - secs) < 1
        total = float(row["face_seconds"]) + float(row["no_face_seconds"]) + float(row["not_analysed_seconds"])
        assert total == pytest.approx(float(row["bin_seconds"]), abs=0.003)
        if float(row["face_seconds"]) > 0:
            assert sum(float(row[f"share_{x}"]) for x in FER) == pytest.approx(1, abs=0.001)
            assert row["dominant"] in FER and 0 <= float(row["negative_share"]) <= 1
        else:
            assert row["negative_share"] == row["dominant"] == row["share_happy"] == ""
    assert sum(r["negative_share"] == "" for r in rows) >= 10    # the pause and the no-face gaps


def headline_texts(snap) -> list[str]:
    return [format_duration(snap.duration_s), f"{100 * snap.coverage:.0f} %", f"{100 * snap.negative_share:.0f} %",
            snap.dominant, format_duration(snap.longest_negative.duration_s)]


def test_html_is_self_contained_escaped_and_holds_the_figures(finished):
    page = (finished.folder / HTML_FILE).read_text(encoding="utf-8")
    for text in headline_texts(finished.snapshot):
        assert html.escape(text) in page
    assert DISCLAIMER in page and "not a diagnosis" in page
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I)
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page.lower() and "@import" not in page and "url(" not in page
    assert "Webcam &lt;Logitech &amp; Co&gt;" in page and "<Logitech" not in page
    assert page.count('<svg class="chart"') == 2


def test_html_escapes_hostile_labels_and_model_name(tmp_path):
    labels = ('<script>alert(1)</script>', 'a"b', "plain")
    card = Card(name="m<o>del", labels=labels, negative_labels=(labels[0],))
    done = record(tmp_path, [(0, labels[0]), (30, labels[1]), (31, "plain"), (40, "plain")], card=card,
                  max_gap_seconds=60).finish()
    page = (done.folder / HTML_FILE).read_text(encoding="utf-8")
    assert "<script" not in page and "m<o>del" not in page and 'a"b' not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "m&lt;o&gt;del" in page and "a&quot;b" in page


@pytest.mark.parametrize("events, expected", [
    ([(0, "happy")], "No analysis results were recorded"),                # one result: no duration yet
    ([(0, ""), (1, ""), (2, "")], "No face was visible"),
    ([(0, "sad"), (3, "sad")], "Negative expressions (angry, disgust, fear, sad): 100 %"),
    ([(0, "happy"), (1, "happy"), (1e5, "happy"), (1e5 + 1, "")], "not analysed (paused or no picture) 27 h 46 min"),  # a day-long pause
])
def test_degenerate_sessions_still_get_a_report(tmp_path, events, expected):
    done = record(tmp_path, events, started_at=START).finish()
    assert done.ok and expected in done.summary_text
    page = (done.folder / HTML_FILE).read_text()
    assert DISCLAIMER in page and page.rstrip().endswith("</html>")
    doc = json.loads((done.folder / SUMMARY_FILE).read_text())
    assert doc["stats"]["updates"] == len(events)
    rows = list(csv.DictReader(open(done.folder / TIMELINE_FILE, newline="")))
    assert len(rows) == len(done.snapshot.timeline)


def test_label_colours_are_distinct_and_stable():
    cols = label_colours(FER + ("contempt", "x", "y"))
    assert len(set(cols.values())) == len(cols)
    assert cols["happy"] == label_colours(("happy",))["happy"]


# ---------------------------------------------------------------------------------------------------------------
# Recorder life cycle
# ---------------------------------------------------------------------------------------------------------------

def test_started_at_maps_timestamps_by_offset(tmp_path):
    done = record(tmp_path, [(1000.0, "happy"), (1005.0, "happy"), (1010.0, "sad"), (1012.5, "")],
                  started_at=START, max_gap_seconds=10).finish()
    doc = json.loads((done.folder / SUMMARY_FILE).read_text())
    assert doc["started_at"] == "2026-11-24T20:15:03+01:00" and doc["ended_at"] == "2026-11-24T20:15:15+01:00"
    first = next(csv.DictReader(open(done.folder / TIMELINE_FILE, newline="")))
    assert first["time"] == "2026-11-24T20:15:03+01:00" and first["seconds_since_start"] == "0.000"


def test_started_at_defaults_to_the_first_result(tmp_path):
    rec = SessionRecorder(tmp_path, Card())
    time.sleep(0.01)
    before = datetime.now().astimezone()
    rec.add(result(7.0, "happy"))
    assert rec.started_at.tzinfo is not None and rec.started_at >= before - timedelta(seconds=1)
    assert (datetime.now().astimezone() - rec.started_at).total_seconds() < 5
    rec.finish()


def test_checkpoints_follow_session_time(tmp_path):
    rec = SessionRecorder(tmp_path, Card(), checkpoint_every_s=60.0, started_at=START)
    for i in range(120):                                  # 0 … 59.5 s
        rec.add(result(i / 2, "happy", seq=i + 1))
    assert rec.flush(10)
    state = json.loads((rec.folder / STATE_FILE).read_text())
    assert state["stats"]["updates"] == 1 and state["finished"] is False
    assert (rec.folder / MARKER_FILE).is_file()
    rec.add(result(60.0, "sad", seq=121))
    assert rec.flush(10)
    state = json.loads((rec.folder / STATE_FILE).read_text())
    assert state["stats"]["updates"] == 121
    assert SessionStats.from_state(state["stats"]).snapshot().to_dict() == rec.snapshot().to_dict()
    rec.finish()


def test_finish_is_idempotent_and_writes_once(tmp_path, monkeypatch):
    calls = []
    real = files.write_report
    monkeypatch.setattr(files, "write_report", lambda *a, **k: calls.append(1) or real(*a, **k))
    rec = record(tmp_path, realistic(120))
    first = rec.finish()
    mtime = (first.folder / SUMMARY_FILE).stat().st_mtime_ns
    assert rec.add(result(1e6, "sad")) == () and rec.ignored_after_finish == 1
    second = rec.finish()
    assert second is first and calls == [1]
    assert (first.folder / SUMMARY_FILE).stat().st_mtime_ns == mtime
    assert not (first.folder / MARKER_FILE).exists() and not (first.folder / STATE_FILE).exists()
    with pytest.raises(RuntimeError, match="finished"):
        rec.checkpoint()


def test_empty_session_leaves_nothing_on_disk(tmp_path):
    done = SessionRecorder(tmp_path / "r", Card()).finish()
    assert done.ok and done.folder is None and "No analysis results" in done.summary_text
    assert not (tmp_path / "r").exists()


def test_reset_finishes_the_session_and_starts_a_new_one(tmp_path):
    rec = record(tmp_path, [(0, "happy"), (10, "happy")], started_at=START)
    first = rec.reset()
    assert first.ok and (first.folder / SUMMARY_FILE).is_file()
    assert rec.snapshot().updates == 0 and rec.folder is None and not rec.finished
    rec.add(result(50, "sad"))
    rec.add(result(51, "sad"))
    second = rec.finish()
    assert second.ok and second.folder != first.folder and second.snapshot.seconds[FER.index("sad")] == 1


def test_results_from_another_model_are_refused(tmp_path):
    rec = SessionRecorder(tmp_path, Card())
    with pytest.raises(ValueError, match="new SessionRecorder"):
        rec.add(result(0, "happy", labels=("happy", "sad")))


# ---------------------------------------------------------------------------------------------------------------
# Errors: unwritable folder, full disk
# ---------------------------------------------------------------------------------------------------------------

def test_unwritable_folder_is_the_documented_error_and_stats_go_on(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("a regular file stands where the report folder should be")
    root = blocker / "sub"                                  # fails even for root, unlike chmod
    rec = SessionRecorder(root, Card(), checkpoint_every_s=10.0)
    for i in range(50):
        assert [e for e in rec.add(result(i, "sad", seq=i + 1)) if e.kind == NUDGE] == []
    assert rec.flush(10)
    err = rec.last_error
    assert isinstance(err, ReportError) and err.errno == errno.ENOTDIR
    assert str(root) in str(err) and "MindFlow settings" in str(err) and "next checkpoint" in str(err)
    assert rec.snapshot().updates == 50 and rec.snapshot().duration_s == 49
    with pytest.raises(ReportError, match="a file is in the way"):
        rec.checkpoint()
    # the user fixes it: the next checkpoint succeeds without losing anything
    blocker.unlink()
    for i in range(50, 70):
        rec.add(result(i, "happy", seq=i + 1))
    assert rec.flush(10)
    assert rec.last_error is None
    assert json.loads((rec.folder / STATE_FILE).read_text())["stats"]["updates"] == 61     # the one at 60 s
    done = rec.finish()
    assert done.ok and done.snapshot.updates == 70


def test_finish_reports_a_failure_and_saves_the_report_in_the_fallback_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    rec = record(blocker / "sub", [(0, "sad"), (5, "sad"), (6, "happy")])
    done = rec.finish()
    assert not done.ok and isinstance(done.error, ReportError)
    assert "Report NOT saved" in done.summary_text and str(blocker / "sub") in done.summary_text
    assert "could not write the session report" in str(done.error) and "next checkpoint" not in str(done.error)
    assert "Negative expressions (angry, disgust, fear, sad): 100 %" in done.summary_text           # the figures are still there
    # saved elsewhere, named in the message, with its history row there: final (a second finish writes nothing more)
    assert done.folder is not None and done.folder.parent == tmp_path / "tmp" / "MindFlow-unsaved"
    assert f"The report was saved to {done.folder} instead" in str(done.error)
    summary = json.loads((done.folder / "summary.json").read_text())
    assert summary["stats"]["duration_s"] == done.snapshot.duration_s and (done.folder / HTML_FILE).is_file()
    assert not (done.folder / MARKER_FILE).exists() and (done.folder.parent / "history.sqlite").is_file()
    blocker.unlink()
    assert rec.finish() is done and not (blocker / "sub").exists()


def test_finish_retries_when_the_fallback_folder_fails_too(tmp_path, monkeypatch):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    monkeypatch.setattr(tempfile, "tempdir", str(blocker))
    rec = record(blocker / "sub", [(0, "sad"), (5, "sad"), (6, "happy")])
    done = rec.finish()
    assert not done.ok and done.folder is None and "could not be saved elsewhere either" in str(done.error)
    blocker.unlink()
    again = rec.finish()
    assert again.ok and (again.folder / HTML_FILE).is_file()


def test_a_session_folder_removed_mid_session_is_made_again(tmp_path, caplog):
    rec = record(tmp_path / "reports", [(0, "happy")], checkpoint_every_s=5.0)
    assert rec.flush(10)
    first = rec.folder
    shutil.rmtree(tmp_path / "reports")
    for i in range(1, 20):
        rec.add(result(i, "sad", seq=i + 1))
    assert rec.flush(10) and rec.last_error is None
    assert rec.folder == first and (first / STATE_FILE).is_file() and (first / MARKER_FILE).is_file()
    assert "was removed during the session; MindFlow made it again" in caplog.text
    done = rec.finish()
    assert done.ok and done.folder == first and done.snapshot.duration_s == 19.0


def test_full_disk_is_reported_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    real = storage._write_all

    def full(fd, data):
        os.write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    rec = record(tmp_path, [(0, "happy")], checkpoint_every_s=5.0)
    assert rec.flush(10) and rec.last_error is None
    monkeypatch.setattr(storage, "_write_all", full)
    for i in range(1, 20):
        rec.add(result(i, "sad", seq=i + 1))
    assert rec.flush(10)
    err = rec.last_error
    assert err is not None and err.errno == errno.ENOSPC and "disk is full" in str(err)
    assert str(rec.folder) in str(err)
    assert [p.name for p in rec.folder.iterdir() if p.name.endswith(".tmp")] == []
    assert json.loads((rec.folder / STATE_FILE).read_text())["stats"]["updates"] == 1   # the last good one
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "elsewhere"))
    failed = rec.finish()                      # the fallback folder is on the same (full) disk here
    assert not failed.ok and failed.error.errno == errno.ENOSPC and "saved elsewhere either" in str(failed.error)
    monkeypatch.setattr(storage, "_write_all", real)
    assert rec.finish().ok


@pytest.mark.parametrize("code, phrase", [
    (errno.ENOSPC, "disk is full"), (errno.EACCES, "not writable"), (errno.EROFS, "not writable"),
    (errno.ENOTDIR, "a file is in the way"), (errno.EIO, "Input/output error"),
])
def test_report_error_messages(code, phrase, tmp_path):
    err = ReportError.from_os_error(OSError(code, os.strerror(code)), tmp_path, during="checkpoint")
    assert phrase in str(err) and str(tmp_path) in str(err) and "To fix:" in str(err) and err.errno == code


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path, monkeypatch):
    target = tmp_path / "f.json"
    atomic_write(target, "old")
    atomic_write(target, "new")
    assert target.read_text() == "new"

    def boom(fd, data):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(storage, "_write_all", boom)
    with pytest.raises(OSError):
        atomic_write(target, "partial")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["f.json"]


# ---------------------------------------------------------------------------------------------------------------
# Recovery
# ---------------------------------------------------------------------------------------------------------------

def test_live_sessions_are_not_recovered(tmp_path):
    rec = record(tmp_path, [(0, "happy"), (1, "sad")])
    assert rec.flush(10)
    assert recover_unfinished(tmp_path) == [] and (rec.folder / MARKER_FILE).exists()
    assert rec.finish().ok


def test_unreadable_checkpoint_is_marked_and_left_alone(tmp_path):
    folder = tmp_path / "2026-01-01T00-00-00"
    folder.mkdir()
    (folder / MARKER_FILE).write_text("{}")
    (folder / STATE_FILE).write_text('{"schema_version": 1, "stats": {"format": "nope"')
    (out,) = recover_unfinished(tmp_path)
    assert not out.ok and out.recovered and "unreadable" in out.summary_text and str(folder) in out.summary_text
    assert (folder / "UNRECOVERABLE").exists() and not (folder / MARKER_FILE).exists()
    assert recover_unfinished(tmp_path) == []


def test_folder_without_any_checkpoint_is_removed(tmp_path):
    folder = tmp_path / "2026-01-01T00-00-00"
    folder.mkdir()
    (folder / MARKER_FILE).write_text("{}")
    (out,) = recover_unfinished(tmp_path)
    assert out.folder is None and "no checkpoint" in out.summary_text and not folder.exists()


WRITER = r"""
import sys
from obs_mindflow.engine.reports.recorder import SessionRecorder
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
class Card:
    name = "crash-test"; labels = LABELS; negative_labels = ("angry", "disgust", "fear", "sad")
class R:
    __slots__ = ("timestamp", "emotion", "labels", "face_present", "raw_label", "frame_size")
    def __init__(self, t, e):
        self.timestamp, self.emotion, self.labels = t, e, LABELS
        self.face_present, self.raw_label, self.frame_size = bool(e), e, (64, 48)
rec = SessionRecorder(sys.argv[1], Card(), checkpoint_every_s=1e9, bin_seconds=0.25)
cycle = LABELS + ("",)
t, n = 0.0, 0
for i in range(8000):                      # ~8000 timeline bins: a state.json of about 1 MB
    rec.add(R(t, cycle[(i // 7) % len(cycle)])); t += 0.25
while True:
    for j in range(40):
        rec.add(R(t, cycle[(n + j) % len(cycle)])); t += 0.25
    rec.checkpoint(); n += 1
    if n == 1:
        print("READY", flush=True)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX-only")
def test_sigkill_mid_checkpoint_always_leaves_a_recoverable_state(tmp_path):
    rng = random.Random(1234)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for attempt in range(6):
        root = tmp_path / f"run{attempt}"
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(root)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, cwd=REPO, text=True)
        try:
            line = proc.stdout.readline()
            assert line.strip() == "READY", proc.stderr.read()
            time.sleep(rng.uniform(0.0, 0.4))
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(30)
            proc.stdout.close()
            proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL
        (folder,) = list(root.iterdir())
        state = json.loads((folder / STATE_FILE).read_bytes())          # never torn
        assert state["stats"]["updates"] >= 8040 and (folder / MARKER_FILE).exists()
        rebuilt = SessionStats.from_state(state["stats"]).snapshot()
        assert rebuilt.timeline.sum() == pytest.approx(rebuilt.duration_s)
        (done,) = recover_unfinished(root)
        assert done.ok and done.recovered and done.folder == folder
        assert done.snapshot.updates == state["stats"]["updates"]
        assert "Recovered after an unclean exit" in done.summary_text
        assert sorted(p.name for p in folder.iterdir()) == sorted([SUMMARY_FILE, TIMELINE_FILE, HTML_FILE])
        assert json.loads((folder / SUMMARY_FILE).read_text())["recovered"] is True
        assert "recovered after an unclean exit" in (folder / HTML_FILE).read_text()
        assert recover_unfinished(root) == []


# ---------------------------------------------------------------------------------------------------------------
# Nudges through the recorder
# ---------------------------------------------------------------------------------------------------------------

def _nudge_session(root, sad_from, sad_until, end, nudge):
    rec = SessionRecorder(root, Card(), nudge=nudge, started_at=START)
    fired = []
    for i in range(int(end * 2) + 1):
        t = i / 2
        fired += [e for e in rec.add(result(t, "sad" if sad_from <= t < sad_until else "neutral", seq=i + 1))
                  if e.kind == NUDGE]
    return rec, fired


def test_nudge_fires_after_sustained_negativity_and_respects_the_cooldown(tmp_path):
    # rolling share (300 s) passes 0.6 at 780 s; sustained 600 s → 1381 s; cooldown 1800 s → 3181 s
    rec, fired = _nudge_session(tmp_path, 600, 1e9, 4000, NudgeMonitor())
    assert [n.time_s for n in fired] == [1381.0, 3181.0]
    assert all(n.message.startswith("Negative expressions have dominated the last 10 minutes") for n in fired)
    done = rec.finish()
    doc = json.loads((done.folder / SUMMARY_FILE).read_text())
    assert [n["time_s"] for n in doc["nudges"]] == [1381.0, 3181.0]
    assert doc["nudges"][0]["at"] == "2026-11-24T20:38:04+01:00"
    assert "consider a short break" in (done.folder / HTML_FILE).read_text()


@pytest.mark.parametrize("sad_until, nudge, count", [
    (1200, NudgeMonitor(), 0),          # above the threshold 780…1320 s: 540 s < 600 s sustain
    (1500, NudgeMonitor(), 1),          # 780…1620 s: long enough
    (1e9, None, 0),                     # disabled unless enabled
])
def test_nudge_not_before_sustain_and_off_by_default(tmp_path, sad_until, nudge, count):
    rec, fired = _nudge_session(tmp_path, 600, sad_until, 2500, nudge)
    assert len(fired) == count
    rec.finish()


# ---------------------------------------------------------------------------------------------------------------
# The HTML page in a real browser
# ---------------------------------------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                    reason="headless Chromium not installed (apt-get install chromium); "
                                           "CI installs it to render report.html")


def chromium(tmp_path, *args) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
           f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def _hex_bgr(colour: str) -> np.ndarray:
    return np.array([int(colour[5:7], 16), int(colour[3:5], 16), int(colour[1:3], 16)], np.int16)


def _mask(img: np.ndarray, colour: str, tol: int = 4) -> np.ndarray:
    return (np.abs(img.astype(np.int16) - _hex_bgr(colour)) <= tol).all(axis=2)


@pytest.mark.browser
@needs_chromium
def test_html_report_renders_in_chromium(finished, tmp_path):
    import cv2

    page = finished.folder / HTML_FILE
    png = Path(os.environ.get("MINDFLOW_REPORT_PNG", tmp_path / "report.png"))   # set it to keep the screenshot
    shot = chromium(tmp_path, "--window-size=1200,1600", f"--screenshot={png}", page.as_uri())
    assert png.is_file(), shot.stderr[-2000:]
    img = cv2.imread(str(png))
    assert img.shape[:2] == (1600, 1200)
    # not blank: real contrast and many colours
    assert img.std() > 20 and len(np.unique(img.reshape(-1, 3), axis=0)) > 200
    # the negative-share chart: a wide, tall area of its fill colour
    area = _mask(img, html_module.NEGATIVE_FILL)
    ys, xs = np.nonzero(area)
    assert area.sum() > 20_000 and xs.max() - xs.min() > 700 and ys.max() - ys.min() > 100
    assert _mask(img, html_module.NEGATIVE_LINE, tol=10).sum() > 1000          # its 5-minute average line
    # the profile chart (above the timeline): one bar per label, longer for larger shares
    top = img[: ys.min()]
    colours = label_colours(FER)
    widths = {}
    for label, share in finished.snapshot.profile():
        per_row = _mask(top, colours[label]).sum(axis=1)      # a bar is the row with the longest run
        assert per_row.max() > 0, f"no {label} bar"
        widths[label] = int(per_row.max())
    prof = finished.snapshot.profile()
    assert widths[prof[0][0]] == max(widths.values())
    for (a, sa), (b, sb) in zip(prof, prof[1:]):
        assert widths[a] >= widths[b] - 2
    big = [(lab, share) for lab, share in prof if share >= 0.1]
    assert len(big) >= 2
    assert widths[big[0][0]] / widths[big[-1][0]] == pytest.approx(big[0][1] / big[-1][1], rel=0.05)
    # the rendered DOM shows the headline numbers
    dom = chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
    text = html.unescape(re.sub(r"<[^>]+>", " ", dom))
    text = re.sub(r"\s+", " ", text)
    for figure in headline_texts(finished.snapshot):
        assert figure in text, figure
    assert "not a diagnosis" in text
    # under the chart: the dominant-emotion strip, then the moments lane — two bands of label colours
    plot_bottom = np.flatnonzero(area.sum(axis=1) > 30).max()     # (the legend has a swatch of the fill too)
    below = img[plot_bottom + 1: plot_bottom + 130]
    coloured = np.zeros(below.shape[:2], bool)
    for colour in colours.values():
        coloured |= _mask(below, colour)
    rows = coloured.mean(axis=1) > 0.05
    bands = np.flatnonzero(np.diff(rows.astype(int)) == 1)
    assert len(bands) >= 2, "no moments lane under the dominant strip"
    # the moments and the chapters as the page lists them
    moments = json.loads((finished.folder / SUMMARY_FILE).read_text())["moments"]
    assert len(moments) > 20 and "Moments" in text and f"{len(moments) - 20} more in summary.json" in text
    best = moments[0]
    assert f"{best['start']}–{best['end']}" in text
    chapters = json.loads((finished.folder / SUMMARY_FILE).read_text())["chapters"]
    assert chapters["usable"] and chapters["text"].splitlines()[0] in text and "00:00" in text


def test_finish_joins_the_checkpoint_thread(tmp_path):
    """OBS requires every thread joined when a session ends: finish() leaves no checkpoint writer behind."""
    import threading

    from obs_mindflow.engine import AnalysisResult
    from obs_mindflow.engine.reports.recorder import SessionRecorder

    class Card:
        labels, negative_labels, name = ("a", "b"), ("b",), "t"

    def writers() -> set:
        return {t for t in threading.enumerate() if t.name == "mindflow-checkpoint"}

    before = writers()          # another test's recorder may still be ending its own (idle ones end after 30 s)
    rec = SessionRecorder(tmp_path, Card(), checkpoint_every_s=0.5)
    for i in range(50):
        rec.add(AnalysisResult(seq=i + 1, timestamp=i * 0.1, frame_size=(10, 10), labels=("a", "b"),
                               boxes=[[0, 0, 5, 5]], probabilities=[[0.9, 0.1]], emotion="a", confidence=0.9))
    ours = writers() - before
    assert ours
    assert rec.finish().ok
    assert not any(t.is_alive() for t in ours)


@pytest.mark.parametrize("seconds, min_report_s, kept", [(30, 60.0, False), (90, 60.0, True), (30, 0.0, True)])
def test_sessions_shorter_than_the_minimum_leave_no_report_folder(tmp_path, seconds, min_report_s, kept):
    rec = SessionRecorder(tmp_path, Card(), checkpoint_every_s=5.0, min_report_s=min_report_s)
    for i in range(seconds + 1):
        rec.add(result(float(i), "happy", seq=i + 1))
    assert rec.flush(10)
    assert rec.folder is not None                         # checkpoints are written meanwhile (crash safety)
    done = rec.finish()
    assert done.ok and (done.folder is not None) == kept
    assert [p for p in tmp_path.iterdir() if p.is_dir()] == ([done.folder] if kept else [])
    assert (tmp_path / "history.sqlite").exists() == kept                # only sessions with a report are history
    assert ("No report folder" in done.summary_text) != kept


# ---------------------------------------------------------------------------------------------------------------
# Issue 23: a file's report in the file's own times; moments and chapters agree; calm tiles are not red
# ---------------------------------------------------------------------------------------------------------------

def _tile(page: str, metric: str) -> str:
    m = re.search(rf'<div class="tile ?([a-z]*)" data-metric="{metric}">(.*?)</div></div>', page, re.S)
    assert m, f"no {metric} tile"
    return m.group(1) + "|" + " ".join(html.unescape(re.sub(r"<[^>]+>", " ", m.group(2))).split())


def test_a_file_report_gives_the_video_s_times_never_the_clock_of_the_analysis(tmp_path):
    # a 50-s clip starting at the video's 100 s: happy, then 15 s sad, then neutral, analysed (started_at) at 20:15
    events = [(100 + i * 0.2, "happy" if i < 100 else "sad" if i < 175 else "neutral") for i in range(250)]
    done = record(tmp_path, events, started_at=START, media_clock=True).finish()
    page = (done.folder / HTML_FILE).read_text(encoding="utf-8")
    text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page.split("<body", 1)[1])))
    assert "20:15" not in text and "20:16" not in text, "a wall-clock time in a file's report"
    assert "video 00:01:40–00:02:29" in text
    assert _tile(page, "longest-negative") == "neg|Longest negative 15 s 00:02:00–00:02:15"
    assert "too short to compare 5-minute segments" in text and "No 5-minute segment had noticeable" not in text
    summary = done.summary_text
    assert "Length: 50 s (video 00:01:40–00:02:29)" in summary, summary
    assert "Longest negative stretch: 15 s (00:02:00–00:02:15)" in summary, summary
    assert "20:1" not in summary


def test_moments_and_chapters_give_one_time_and_one_name(finished):
    doc = json.loads((finished.folder / SUMMARY_FILE).read_text(encoding="utf-8"))
    by_id = {m["id"]: m for m in doc["moments"]}
    page = (finished.folder / HTML_FILE).read_text(encoding="utf-8")
    for ch in doc["chapters"]["chapters"][1:]:          # the first is moved to 00:00 (YouTube's rule)
        m = by_id[ch["moment"]]
        assert ch["title"] == m["title"]
        assert m["start"].endswith(ch["time"]), (ch, m["start"])       # "00:24" and "00:00:24", never "00:00:25"
        assert html.escape(m["start"]) in page


def test_negative_tiles_are_red_only_when_there_is_something_negative(tmp_path):
    page = (record(tmp_path, [(i * 0.2, "happy") for i in range(400)]).finish().folder / HTML_FILE).read_text(
        encoding="utf-8")
    assert _tile(page, "negative").startswith("|") and _tile(page, "longest-negative").startswith("|"), \
        "'0 %' and 'none' in alarm red"


def test_history_page_names_the_source_and_puts_files_where_they_were_recorded(tmp_path):
    from obs_mindflow.engine.reports.history import HistoryRow, InputKey
    from obs_mindflow.engine.reports.history_page import render_history_html, table_text

    def row(report, started, source="", path=None, mtime=None):
        key = InputKey(str(tmp_path / path), 1, int(mtime.timestamp() * 1e9), "k") if path else None
        return HistoryRow(report=report, started_at=started, duration_s=60.0, face_s=50.0, coverage=0.9,
                          negative_share=0.1, uncertain_share=0.0, profile={"happy": 1.0}, dominant="happy",
                          calibrated=False, calibration={}, model="m", moments=0, source=source, input=key)
    live1 = row("live1", START, source="Webcam")
    live2 = row("live2", START + timedelta(days=2), source="Webcam")
    # recorded between the two live sessions, analysed a week later
    vod = row("vod", START + timedelta(days=7), path="stream-tuesday.mkv", mtime=START + timedelta(days=1))
    page = render_history_html([live1, live2, vod])
    table = page.split('id="sessions"', 1)[1]
    assert "<th>Source or file</th>" in table
    assert table.index("live2/") < table.index("vod/") < table.index("live1/"), "not in the order they happened"
    assert "stream-tuesday.mkv" in table and "Webcam" in table and "analysed" in table
    text = table_text([live1, live2, vod]).splitlines()
    assert [ln.split()[-1] for ln in text[1:]] == ["live1", "vod", "live2"]
    assert "stream-tuesday.mkv" in text[2]
