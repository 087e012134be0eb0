"""The history across sessions (obs_mindflow.engine.reports.history): the SQLite schema and its migration, unreadable
and newer databases, rows from finished and crash-recovered sessions, the `history` command and history.html (also
in a real headless Chromium)."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from obs_mindflow import __version__
from obs_mindflow.engine.reports import history as hist
from obs_mindflow.engine.reports.history import (HISTORY_DB, HISTORY_HTML, SCHEMA_VERSION, History, HistoryRow,
                                                 InputKey, find_analysed, record_session, render_history_html,
                                                 table_text)
from obs_mindflow.engine.reports.recorder import SessionRecorder
from obs_mindflow.engine.reports.recovery import recover_unfinished
from obs_mindflow.engine.reports.storage import HTML_FILE
from tests.conftest import ROOT
from tests.test_report import FER, Card, chromium, needs_chromium, result

TZ = timezone(timedelta(hours=1))


def finish_session(root: Path, start: datetime, sad_share: float = 0.25, seconds: int = 120, **kw):
    """A finished session under ``root`` starting at ``start``: happy/neutral with ``sad_share`` of sad."""
    rec = SessionRecorder(root, Card(), started_at=start, **kw)
    n = seconds * 2
    for i in range(n + 1):
        frac = i / n
        emotion = "sad" if frac < sad_share else ("happy" if frac < 0.6 else "neutral")
        rec.add(result(i / 2, emotion, seq=i + 1))
    done = rec.finish()
    assert done.ok, done.error
    return done


def columns(path: Path) -> list[str]:
    with sqlite3.connect(path) as c:
        return [r[1] for r in c.execute("PRAGMA table_info(sessions)")]


def test_a_finished_session_is_a_row_and_the_report_links_to_the_history(tmp_path):
    done = finish_session(tmp_path, datetime(2026, 11, 2, 20, 0, tzinfo=TZ))
    db = tmp_path / HISTORY_DB
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    assert columns(db) == ["id", "report", "started_at", "duration_s", "face_s", "coverage", "negative_share",
                           "uncertain_share", "profile", "dominant", "calibrated", "calibration", "model", "moments",
                           "source", "recovered", "recorded_at", "input_path", "input_size", "input_mtime_ns",
                           "settings_key", "media_offset_s", "mindflow_version"]
    with History.open(tmp_path) as h:
        (row,) = h.rows()
    snap = done.snapshot
    assert row.report == done.folder.name and row.started_at == datetime(2026, 11, 2, 20, 0, tzinfo=TZ)
    assert (row.duration_s, row.coverage, row.negative_share) == (snap.duration_s, snap.coverage, snap.negative_share)
    assert row.profile == dict(zip(FER, snap.shares)) and row.dominant == snap.dominant
    assert row.uncertain_share == snap.uncertain_share and not row.calibrated and row.model == "fer-test"
    assert row.moments == 3 and row.input is None        # sad, happy and calm stretches
    assert row.mindflow_version == __version__
    page = (done.folder / HTML_FILE).read_text()
    assert 'href="../history.html"' in page
    assert (tmp_path / HISTORY_HTML).is_file()
    assert f'href="{done.folder.name}/report.html"' in (tmp_path / HISTORY_HTML).read_text()


def test_finishing_twice_or_retrying_keeps_one_row(tmp_path):
    done = finish_session(tmp_path, datetime(2026, 11, 2, 20, 0, tzinfo=TZ))
    info_rows = History.open(tmp_path).rows()
    assert record_session(tmp_path, done.folder, done.snapshot, _info(done)) == ""
    assert len(History.open(tmp_path).rows()) == len(info_rows) == 1


def _info(done):
    from obs_mindflow.engine.reports.files import SessionInfo

    return SessionInfo("fer-test", FER, ("angry", "disgust", "fear", "sad"), datetime(2026, 11, 2, 20, 0, tzinfo=TZ))


@pytest.mark.parametrize("content", [b"this is not a database\n" * 50, b"SQLite format 3\x00" + b"\x07" * 4000])
def test_an_unreadable_database_is_kept_and_a_fresh_one_started(tmp_path, content):
    (tmp_path / HISTORY_DB).write_bytes(content)
    done = finish_session(tmp_path, datetime(2026, 11, 3, 20, 0, tzinfo=TZ))
    assert done.ok and "could not be read" in done.summary_text and "Nothing was deleted" in done.summary_text
    (aside,) = tmp_path.glob("history.unreadable-*.sqlite")
    assert aside.read_bytes() == content                                  # untouched, beside the fresh one
    assert len(History.open(tmp_path).rows()) == 1


def test_another_programs_sqlite_file_is_not_taken_over(tmp_path):
    with sqlite3.connect(tmp_path / HISTORY_DB) as c:
        c.execute("CREATE TABLE notes (x TEXT)")
        c.execute("INSERT INTO notes VALUES ('mine')")
    h = History.open(tmp_path)
    assert "not a MindFlow history" in " ".join(h.notes) and h.rows() == []
    h.close()
    (aside,) = tmp_path.glob("history.unreadable-*.sqlite")
    with sqlite3.connect(aside) as c:
        assert c.execute("SELECT x FROM notes").fetchall() == [("mine",)]


def test_a_newer_schema_is_left_alone_and_ours_goes_beside_it(tmp_path):
    with sqlite3.connect(tmp_path / HISTORY_DB) as c:
        c.execute("CREATE TABLE sessions (id INTEGER PRIMARY KEY, report TEXT, started_at TEXT, future TEXT)")
        c.execute("PRAGMA user_version = 99")
    before = (tmp_path / HISTORY_DB).read_bytes()
    done = finish_session(tmp_path, datetime(2026, 11, 3, 20, 0, tzinfo=TZ))
    assert "from a newer MindFlow" in done.summary_text and "history-v3.sqlite" in done.summary_text
    assert (tmp_path / HISTORY_DB).read_bytes() == before
    with History.open(tmp_path) as h:
        assert h.path.name == "history-v3.sqlite" and len(h.rows()) == 1


def test_migration_from_schema_1_keeps_the_rows_and_a_backup(tmp_path):
    db = tmp_path / HISTORY_DB
    with sqlite3.connect(db) as c:                       # a database as the first MindFlow with a history wrote it
        for stmt in hist._statements(hist._V1):
            c.execute(stmt)
        c.execute("PRAGMA user_version = 1")
        c.execute("INSERT INTO sessions (report, started_at, duration_s, face_s, coverage, negative_share, "
                  "uncertain_share, profile, dominant, calibrated, calibration, model, moments, source, recovered, "
                  "recorded_at) VALUES ('2026-10-01T20-00-00', '2026-10-01T20:00:00+01:00', 3600, 3000, 0.9, 0.2, "
                  "0.05, '{\"happy\": 0.5, \"sad\": 0.2, \"neutral\": 0.3}', 'happy', 0, '{\"applied\": false}', "
                  "'old-model', 4, 'cam', 0, '2026-10-01T21:00:00+01:00')")
    assert "input_path" not in columns(db)
    with History.open(tmp_path) as h:
        assert h.version == 3 and "upgraded from schema 1 to 3" in " ".join(h.notes)
        (old,) = h.rows()
    assert (old.report, old.model, old.moments, old.negative_share, old.input) == (
        "2026-10-01T20-00-00", "old-model", 4, 0.2, None)
    assert "input_path" in columns(db)
    backup = tmp_path / "history.v1.backup.sqlite"
    assert "input_path" not in columns(backup)
    finish_session(tmp_path, datetime(2026, 11, 3, 20, 0, tzinfo=TZ))
    assert [r.model for r in History.open(tmp_path).rows()] == ["old-model", "fer-test"]


def test_migration_from_schema_2_adds_the_version_column_and_keeps_old_rows(tmp_path):
    db = tmp_path / HISTORY_DB
    with sqlite3.connect(db) as c:                       # a database as MindFlow before 1.0.0 wrote it
        for stmt in hist._statements(hist._V1):
            c.execute(stmt)
        for stmt in hist.MIGRATIONS[1]:
            c.execute(stmt)
        c.execute("PRAGMA user_version = 2")
        c.execute("INSERT INTO sessions (report, started_at, duration_s, face_s, coverage, negative_share, "
                  "uncertain_share, profile, dominant, calibrated, calibration, model, moments, source, recovered, "
                  "recorded_at, input_path, input_size, input_mtime_ns, settings_key, media_offset_s) VALUES "
                  "('2026-11-01T20-00-00', '2026-11-01T20:00:00+01:00', 60, 50, 0.9, 0.1, 0.0, '{\"happy\": 1.0}', "
                  "'happy', 1, '{\"applied\": true}', 'old-model', 1, 'cam', 0, '2026-11-01T21:00:00+01:00', "
                  "'/v.mkv', 10, 20, 'key', 1.5)")
    with History.open(tmp_path) as h:
        assert h.version == 3 and "upgraded from schema 2 to 3" in " ".join(h.notes)
        (old,) = h.rows()
    assert (old.report, old.calibrated, old.input.path, old.media_offset_s, old.mindflow_version) == (
        "2026-11-01T20-00-00", True, "/v.mkv", 1.5, None)
    assert "mindflow_version" not in columns(tmp_path / "history.v2.backup.sqlite")
    finish_session(tmp_path, datetime(2026, 11, 3, 20, 0, tzinfo=TZ))
    assert [r.mindflow_version for r in History.open(tmp_path).rows()] == [None, __version__]


def test_the_history_never_fails_a_finish(tmp_path):
    (tmp_path / HISTORY_DB).mkdir()                      # a folder where the database should be
    (tmp_path / HISTORY_DB / "keep").write_text("x")
    done = finish_session(tmp_path, datetime(2026, 11, 3, 20, 0, tzinfo=TZ))
    assert done.ok and done.folder is not None and (done.folder / "summary.json").is_file()
    assert done.history_note.startswith("History not updated") and done.history_note in done.summary_text
    assert (tmp_path / HISTORY_DB / "keep").read_text() == "x"


def test_a_crash_recovered_session_gets_its_row(tmp_path):
    rec = SessionRecorder(tmp_path, Card(), started_at=datetime(2026, 11, 4, 20, 0, tzinfo=TZ), checkpoint_every_s=5)
    for i in range(60):
        rec.add(result(i / 2, "happy" if i < 40 else "neutral", seq=i + 1))
    rec.checkpoint()
    from obs_mindflow.engine.reports import storage

    storage.register_live(rec.folder, False)             # as if this process had died
    (done,) = recover_unfinished(tmp_path)
    assert done.ok and done.recovered
    (row,) = History.open(tmp_path).rows()
    assert row.recovered and row.report == done.folder.name and row.moments == 1
    doc = json.loads((done.folder / "summary.json").read_text())
    assert [m["emotion"] for m in doc["moments"]] == ["happy"]


def test_find_by_file_and_settings(tmp_path):
    video = tmp_path / "a.mp4"
    video.write_bytes(b"x" * 100)
    key = InputKey.of(video, "settings-1")
    done = finish_session(tmp_path, datetime(2026, 11, 5, 20, 0, tzinfo=TZ), input_key=key)
    assert find_analysed(tmp_path, key).report == done.folder.name
    assert find_analysed(tmp_path, InputKey.of(video, "settings-2")) is None
    os.utime(video, ns=(key.mtime_ns + 10**9, key.mtime_ns + 10**9))
    assert find_analysed(tmp_path, InputKey.of(video, "settings-1")) is None     # touched: analysed again
    (done.folder / HTML_FILE).unlink()
    assert find_analysed(tmp_path, key) is None                                   # its report is gone


def weeks_of_rows(n: int = 18) -> list[HistoryRow]:
    rng = np.random.default_rng(3)
    rows = []
    start = datetime(2026, 10, 5, 19, 0, tzinfo=TZ)
    for i in range(n):
        when = start + timedelta(days=int(i * 2.3), hours=int(rng.integers(0, 4)))
        neg = float(np.clip(0.35 - 0.015 * i + rng.normal(0, 0.04), 0.02, 0.9))
        happy = float(rng.uniform(0.2, 0.4))
        prof = {"angry": neg * 0.4, "disgust": 0.0, "fear": 0.0, "happy": happy, "sad": neg * 0.6,
                "surprise": 0.03, "neutral": max(0.0, 1 - happy - neg - 0.03)}
        rows.append(HistoryRow(report=when.strftime("%Y-%m-%dT%H-%M-%S"), started_at=when, duration_s=5400 + 60 * i,
                               face_s=5000, coverage=0.93, negative_share=neg, uncertain_share=0.04, profile=prof,
                               dominant=max(prof, key=prof.get), calibrated=i >= 9, calibration={"applied": i >= 9},
                               model="mindflow-fer-r3d-r3", moments=10 + i, source="Webcam"))
    return rows


def test_history_page_and_table():
    rows = weeks_of_rows()
    page = render_history_html(rows)
    assert page.count("<tr>") == len(rows) + 1 and page.count('<svg class="chart"') == 1
    assert "week of 05 Oct" in page and "<script" not in page and "http" not in page
    assert page.index(rows[-1].report) < page.index(rows[0].report)                # newest first in the table
    text = table_text(rows)
    assert len(text.splitlines()) == len(rows) + 1 and "negative" in text.splitlines()[0]
    assert render_history_html([]).count("No session has been recorded yet") == 1


def test_history_command(tmp_path):
    for day in (2, 9):
        finish_session(tmp_path, datetime(2026, 11, day, 20, 0, tzinfo=TZ))
    (tmp_path / HISTORY_HTML).unlink()
    out = subprocess.run([sys.executable, "-m", "obs_mindflow", "history", "--report-dir", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:4] == ["started", "length", "face", "negative"]
    assert re.match(r"2026-11-02 20:00 +2 min 00 s +\d+ % +25 %", lines[1]), lines[1]
    assert lines[-1] == f"History page: {tmp_path / HISTORY_HTML}" and (tmp_path / HISTORY_HTML).is_file()
    missing = subprocess.run([sys.executable, "-m", "obs_mindflow", "history", "--report-dir", str(tmp_path / "no")],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and missing.stderr.startswith("error: no report folder")


@pytest.mark.browser
@needs_chromium
def test_history_page_renders_in_chromium(tmp_path):
    import cv2

    from obs_mindflow.engine.reports.html import NEGATIVE_FILL, NEGATIVE_LINE, label_colours
    from tests.test_report import _mask

    rows = weeks_of_rows()
    page = tmp_path / HISTORY_HTML
    page.write_text(render_history_html(rows, root=tmp_path), encoding="utf-8")
    png = Path(os.environ.get("MINDFLOW_HISTORY_PNG", tmp_path / "history.png"))
    shot = chromium(tmp_path, "--window-size=1200,1500", f"--screenshot={png}", page.as_uri())
    assert png.is_file(), shot.stderr[-2000:]
    img = cv2.imread(str(png))
    assert img.std() > 20
    neg = _mask(img, NEGATIVE_FILL)
    assert neg.sum() > 3000                                                # the negative-share bars
    cols = np.nonzero(neg.any(axis=0))[0]
    assert cols.max() - cols.min() > 700                                   # across the chart, one per session
    assert _mask(img, NEGATIVE_LINE, tol=10).sum() > 300                    # the session-to-session line
    colours = label_colours(list(rows[0].profile))
    for label in ("happy", "neutral", "sad"):                              # the profile bars
        assert _mask(img, colours[label]).sum() > 1000, label
    dom = chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
    assert dom.count("<tr>") == len(rows) + 1 and "Session history" in dom
