"""The session report in the streamer's language: report.html from a real recorded session in Russian (a
non-Latin script) and Japanese — its headings, tiles, legend and emotion names from the catalogue, <html lang> set —
and, in a real headless Chromium, the Russian report whole: no text cut off, nothing wider than the window."""

from __future__ import annotations

import html
import json
import re

import pytest

from obs_mindflow import i18n
from obs_mindflow.engine.reports.storage import HTML_FILE, SUMMARY_FILE

try:
    from browser import find_browser, launch_chromium, screenshot_rgba
except ImportError:  # tests/ is a package under another import mode
    from tests.browser import find_browser, launch_chromium, screenshot_rgba

from tests.test_report import START, realistic, record


def _report(tmp_path, language: str):
    done = record(tmp_path / language, realistic(1800), started_at=START, source="Веб-камера", language=language
                  ).finish()
    assert done.ok, done.error
    return done, (done.folder / HTML_FILE).read_text(encoding="utf-8")


def _text(page: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


@pytest.mark.parametrize("language", ["ru-RU", "ja-JP"])
def test_the_report_speaks_the_session_language(tmp_path, language):
    done, page = _report(tmp_path, language)
    w = i18n.words(language)
    text = _text(page)
    assert f'<html lang="{language}">' in page
    for key in ("report.heading", "report.profile", "report.timeline", "report.moments", "report.chapters",
                "report.segments", "report.tile_duration", "report.tile_dominant", "report.disclaimer"):
        assert w(key) in text, key
    assert w.emotion(done.snapshot.dominant) in text and w("report.weekdays").split(",")[START.weekday()] in text
    for english in ("Session report", "Emotion profile", "Negative expressions over time", "Break nudges"):
        assert english not in text, english
    assert f"MindFlow {__import__('obs_mindflow').__version__}" in text


def test_the_log_summary_and_summary_json_speak_the_session_language(tmp_path):
    """A Japanese session: the script log's summary (and summary.json's summary_text and disclaimer) in Japanese,
    durations in Japanese units, every machine field of summary.json as in English."""
    import json

    ja, _ = _report(tmp_path, "ja-JP")
    en, _ = _report(tmp_path, "")
    lines = ja.summary_text.splitlines()
    assert lines[0] == "MindFlow セッションのまとめ (モデル fer-test)" and lines[1].startswith("長さ: 30 分 00 秒 ("), lines[:2]
    assert any(line.startswith("顔に表れたもの: ") and "無表情" in line for line in lines), lines
    assert any(line.startswith("キャリブレーションされていません: ") for line in lines), lines
    assert lines[-1].startswith("レポート: ") and en.summary_text.splitlines()[-1].startswith("Report: ")
    assert not re.search(r"\b(Length|Negative|Most often|Longest|min|s)\b", "\n".join(lines[1:-1]).replace(
        "MindFlow", "")), lines
    docs = [json.loads((d.folder / "summary.json").read_text(encoding="utf-8")) for d in (ja, en)]
    assert docs[0]["summary_text"] == "\n".join(lines[:-1]) and docs[0]["disclaimer"] == i18n.words("ja-JP")(
        "report.disclaimer") and docs[1]["disclaimer"].startswith("MindFlow is an aid to self-reflection")
    machine = set(docs[0]) - {"summary_text", "disclaimer", "started_at", "ended_at", "source"}
    assert {k: docs[0][k] for k in machine} == {k: docs[1][k] for k in machine}


def test_the_german_report_gives_its_basis_and_durations_in_german(tmp_path):
    _, page = _report(tmp_path, "de-DE")
    text = _text(page)
    assert "Nicht kalibriert: Die Werte sind die des Modells" in text and "Not calibrated" not in text
    assert "lesbarem Gesicht." in text and "readable face" not in text
    ru = _text(_report(tmp_path, "ru-RU")[1])
    footer = ru[ru.index("MindFlow " + __import__("obs_mindflow").__version__):]
    assert "30 мин 00 с" in ru and re.search(r"без лица \d+ мин \d\d с", footer) and " min " not in footer, footer


def test_without_a_language_the_report_stays_english(tmp_path):
    _, page = _report(tmp_path, "")
    assert '<html lang="en-US">' in page and "Session report" in page and START.strftime("%A") in _text(page)


@pytest.mark.browser
def test_the_russian_report_fits_in_chromium(tmp_path, shot_dir):
    if find_browser()[0] is None:
        pytest.skip(find_browser()[2])
    done, _ = _report(tmp_path, "ru-RU")
    with launch_chromium(1200, 1600) as driver:
        driver.get((done.folder / HTML_FILE).as_uri())
        seen = driver.execute_script(
            "const cut = Array.from(document.querySelectorAll('h1, h2, p, .tile .k, .tile .v, .tile .s, th, td, "
            ".legend span')).filter((el) => el.scrollWidth > el.clientWidth + 1).map((el) => el.textContent);"
            "return {lang: document.documentElement.lang, cut: cut, page: document.documentElement.scrollWidth,"
            " room: document.documentElement.clientWidth, h1: document.querySelector('h1').textContent};")
        assert seen["lang"] == "ru-RU" and seen["h1"].startswith("Отчёт о сессии"), seen
        assert not seen["cut"], f"cut off: {seen['cut'][:5]}"
        assert seen["page"] <= seen["room"], f"wider than the window: {seen}"
        rgba = screenshot_rgba(driver, save_to=shot_dir / "report-ru.png")
        assert rgba[..., :3].std() > 20, "the report looks blank"


def test_the_nudge_and_the_moments_speak_the_session_language(tmp_path):
    """A German recipe's break nudge is German (in the log, the {nudge} placeholder, the report); a Japanese
    report names its moments and chapters in Japanese; English keeps the detector's titles."""
    from obs_mindflow.engine.recipe import SessionRecipe
    from obs_mindflow.engine.session.rules import NudgeMonitor
    from tests.test_report import Card

    rec = SessionRecipe(nudge=True, language="de-DE").make_recorder(None, Card())
    nudge = next(r for r in rec.session.rules if isinstance(r, NudgeMonitor))
    assert nudge.message == ("Negative Ausdrücke haben in den letzten 10 min 00 s überwogen – vielleicht eine kurze "
                             "Pause?")
    assert NudgeMonitor().message == "Negative expressions have dominated the last 10 minutes — consider a short break."
    ja, page = _report(tmp_path, "ja-JP")
    en, english = _report(tmp_path, "")
    chapters = re.search(r'id="chapters">(.*?)</pre>', page, re.S).group(1).splitlines()
    assert chapters[0] == "00:00 開始" and all(not line[6:].isascii() for line in chapters), chapters
    assert re.search(r'id="chapters">00:00 Start\n', english)
    # how the chapters were picked, in the report's language too (the JSON keeps the English)
    assert "評価の高いモーメントから" in page and "best-ranked moments" not in page
    assert "best-ranked moments" in english and "評価" not in english
    summary = json.loads((ja.folder / SUMMARY_FILE).read_text(encoding="utf-8"))
    assert "best-ranked moments" in json.dumps(summary, ensure_ascii=False)
    line = next(x for x in ja.summary_text.splitlines() if x.startswith("モーメント: "))
    assert "笑顔" in line and "Smiles" not in line and "Smiles" in en.summary_text, line


def test_a_recovered_session_keeps_the_language_it_was_started_in(tmp_path):
    """A crash: the checkpoint keeps the session's language, so the recovered report and summary are German."""
    from obs_mindflow.engine.reports import storage
    from obs_mindflow.engine.reports.recovery import recover_unfinished

    rec = record(tmp_path, realistic(600), started_at=START, language="de-DE")
    rec.checkpoint()
    storage.register_live(rec.folder, False)             # as if this process had died
    (done,) = recover_unfinished(tmp_path)
    assert done.ok and done.recovered
    page = (done.folder / HTML_FILE).read_text(encoding="utf-8")
    assert '<html lang="de-DE">' in page and "Sitzungsbericht" in page and "nach einem unsauberen Beenden" in page
    assert "MindFlow-Sitzungszusammenfassung" in done.summary_text, done.summary_text


def test_analyze_writes_the_summary_in_the_language_asked_for():
    import subprocess
    import sys

    from tests.conftest import ROOT, SAMPLE

    def run(*extra):
        return subprocess.run([sys.executable, "-m", "obs_mindflow", "analyze", str(SAMPLE), "--no-report", "--rate",
                               "2", "--max-seconds", "8", "-q", *extra], cwd=ROOT, capture_output=True, text=True,
                              timeout=120)

    ja, bad = run("--language", "ja-JP"), run("--language", "xx-XX")
    assert ja.returncode == 0 and ja.stdout.startswith("MindFlow セッションのまとめ") and "長さ: 8 秒" in ja.stdout, ja
    assert bad.returncode == 2 and "no catalogue for 'xx-XX'" in bad.stderr and "ja-JP" in bad.stderr, bad.stderr


def test_the_history_page_speaks_the_newest_sessions_language(tmp_path):
    """history.html after a German session: German words, German dates, German emotion names, <html lang> set; the
    `history` command writes it in the language asked for."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    _report(tmp_path, "de-DE")
    page = (tmp_path / "de-DE" / "history.html").read_text(encoding="utf-8")
    text = _text(page)
    assert '<html lang="de-DE">' in page and "<h1>Sitzungsverlauf</h1>" in page, text[:300]
    assert "24. Nov. 2026" in text and "Di, 24. Nov. 2026, 20:15" in text and "Gesicht sichtbar" in text, text
    assert "neutral 4" in text and "Trauer" in text and "nein" in text, text
    for english in ("Session history", "Sessions", "Face visible", "week of", "Made on this computer"):
        assert english not in text, english
    out = subprocess.run([sys.executable, "-m", "obs_mindflow", "history", "--report-dir", str(tmp_path / "de-DE"),
                          "--language", "ja-JP"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    page = (tmp_path / "de-DE" / "history.html").read_text(encoding="utf-8")
    assert '<html lang="ja-JP">' in page and "<h1>セッション履歴</h1>" in page and "2026年11月24日 (火) 20:15" in page
