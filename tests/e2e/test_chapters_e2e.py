"""Recording chapters in a real OBS through MindFlow's helper (``obs_mindflow.obs.capabilities.ChapterMarker``).

A test-only script (``obs_chapter_probe.py``) calls ``add_chapter`` from a timer while OBS records, as a MindFlow
feature will. What must happen depends on the OBS:

- OBS >= 30.2 recording Hybrid MP4: OBS accepts the chapter (True), logs ``Adding chapter "NAME"``, and the chapter
  is in the recorded file (checked with ffprobe; skipped with the reason where it is not installed);
- OBS >= 30.2 recording MKV: OBS refuses (False); MindFlow says once that the format takes no chapters;
- OBS < 30.2 (Debian 12's 29): no chapter call at all (and no Hybrid MP4: OBS records MKV); MindFlow says once that
  this OBS cannot add chapters.

The capabilities line MindFlow logs at load is checked against the same OBS. These runs use the scene layout without
a shared source (the webcam in one scene; test_obs_e2e.py has a webcam in two scenes).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from .obs_harness import ObsConfig, ObsProcess, check_clean_exit

pytestmark = pytest.mark.e2e

PROBE = Path(__file__).resolve().with_name("obs_chapter_probe.py")
CHAPTERS = ("MindFlow: calm start", "MindFlow: joy")
CHAPTERS_SINCE = (30, 2)


def _record(tmp_path: Path, rec_format: str):
    # OBS is closed while it records (OBS stops and finalises the recording as it exits): OBS 32's shutdown fault
    # strikes far less often then than after a stopped recording (docs/obs32-shutdown.md).
    cfg = ObsConfig(workdir=tmp_path, script_path=PROBE, shared_webcam=False, rec_format=rec_format,
                    script_settings={"chapters": "|".join(CHAPTERS), "after_s": 2.0})
    with ObsProcess(cfg) as run:
        assert run.wait_for(r"MindFlow e2e: MindFlow: OBS ", 90), \
            "the probe script did not load:\n" + run.log()[-3000:]
        for name in CHAPTERS:
            assert run.wait_for(re.escape(f"add_chapter({name!r}) -> "), 90), \
                f"the probe never called add_chapter({name!r}):\n" + run.log()[-3000:]
        time.sleep(1.0)
        result = run.stop(timeout=30)
    assert "Traceback" not in result.log, "a Python traceback in the OBS log:\n" + "\n".join(result.script_lines())
    check_clean_exit(result)
    return cfg, result


def _returned(log: str, name: str) -> bool:
    m = re.search(re.escape(f"add_chapter({name!r}) -> ") + r"(True|False)", log)
    assert m, f"no add_chapter({name!r}) result in the log"
    return m.group(1) == "True"


def _capabilities_line(log: str) -> str:
    m = re.search(r"MindFlow e2e: (MindFlow: OBS .*)", log)
    assert m, "no capabilities line in the log"
    return m.group(1)


def _file_chapters(path: Path) -> list[str]:
    """Chapter titles in a recording (ffprobe). Where ffprobe is not installed the test is skipped here, after
    everything else it checks passed: the file's chapters were not read, and the result must say so."""
    if shutil.which("ffprobe") is None:
        pytest.skip(f"ffprobe is not installed: the chapters OBS logged were checked, not those in {path.name} "
                    f"(install ffmpeg to check the file)")
    out = subprocess.run(["ffprobe", "-v", "error", "-show_chapters", "-of", "json", str(path)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, f"ffprobe failed on {path}: {out.stderr[-500:]}"
    return [c.get("tags", {}).get("title", "") for c in json.loads(out.stdout).get("chapters", [])]


def test_hybrid_mp4_recording_takes_chapters_where_obs_has_them(obs_version, tmp_path):
    """OBS >= 30.2: the chapters land in the Hybrid MP4 recording. OBS 29 (no Hybrid MP4, no chapter call): MindFlow
    says once that this OBS cannot add chapters, and OBS records MKV as before."""
    cfg, result = _record(tmp_path, "hybrid_mp4")
    log = result.log
    if obs_version < CHAPTERS_SINCE:
        assert "recording chapters: no" in _capabilities_line(log)
        assert all(not _returned(log, name) for name in CHAPTERS)
        assert log.count("cannot add recording chapters") == 1, \
            "MindFlow must say once that this OBS cannot add chapters:\n" + "\n".join(result.script_lines())
        assert "Adding chapter" not in log
        return
    assert "recording chapters: yes" in _capabilities_line(log)
    for name in CHAPTERS:
        assert _returned(log, name), f"OBS refused the chapter {name!r} of a Hybrid MP4 recording"
        assert re.search(r'Adding chapter "' + re.escape(name) + r'" at \d\d:\d\d:\d\d', log), \
            f"OBS did not log adding the chapter {name!r}:\n" + "\n".join(
                ln for ln in log.splitlines() if "chapter" in ln.lower())
    assert "takes no chapters" not in log and "cannot add recording chapters" not in log
    files = sorted(cfg.recordings.glob("*.mp4"))
    assert len(files) == 1, f"expected one MP4 recording, got {sorted(p.name for p in cfg.recordings.iterdir())}"
    titles = _file_chapters(files[0])
    assert all(name in titles for name in CHAPTERS), f"chapters in {files[0].name}: {titles}"


def test_mkv_recording_takes_no_chapters_and_mindflow_says_so_once(obs_version, tmp_path):
    _, result = _record(tmp_path, "mkv")
    log = result.log
    caps = _capabilities_line(log)
    assert all(not _returned(log, name) for name in CHAPTERS)
    assert "Adding chapter" not in log
    if obs_version >= CHAPTERS_SINCE:
        assert "recording chapters: yes" in caps
        assert log.count("its format takes no chapters") == 1, \
            "MindFlow must say once that the format takes no chapters:\n" + "\n".join(result.script_lines())
    else:
        assert "recording chapters: no" in caps
        assert log.count("cannot add recording chapters") == 1, \
            "MindFlow must say once that this OBS cannot add chapters:\n" + "\n".join(result.script_lines())
    browser = any(Path("/usr/lib").glob("*/obs-plugins/obs-browser.so")) or any(
        Path("/usr/lib").glob("obs-plugins/obs-browser.so"))
    assert f"Browser source: {'yes' if browser else 'no'}" in caps     # Debian's OBS has no obs-browser
