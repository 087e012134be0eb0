"""MindFlow in the streamer's language in a real OBS (issue 24): OBS set to German (Settings > General > Language,
global.ini's Language) shows MindFlow's panel in German; the text source on stream speaks the language chosen for
viewers (Japanese); where the text source's font has no Japanese letters (DejaVu Sans) the panel says so, in
German, with what to do.
"""

from __future__ import annotations

import json

import pytest

from obs_mindflow import i18n

from .obs_harness import ROOT, TEXT, WEBCAM, ObsConfig, ObsProcess, check_clean_exit
from .panel_driver import PanelDriver, panel_hooks

pytestmark = pytest.mark.e2e

LOADED = r"MindFlow: OBS finished loading"
NEUTRAL_FACE = ROOT / "tests" / "data" / "faces" / "grace_hopper.jpg"
LABELS = json.loads((ROOT / "models" / "mindflow-ferplus-r3d" / "card.json").read_text())["labels"]


def test_a_german_obs_shows_mindflow_in_german_and_japanese_on_stream(obs_ready, tmp_path):
    de, ja = i18n.words("de-DE"), i18n.words("ja-JP")
    cfg = ObsConfig(workdir=tmp_path, record=False, language="de-DE", webcam_image=NEUTRAL_FACE,
                    hooks=panel_hooks(tmp_path),
                    script_settings={"video_source": WEBCAM, "text_source": TEXT, "report_dir": str(tmp_path / "r"),
                                     "rate_hz": 10.0, "min_report_s": 0, "viewer_language": "ja-JP"})
    with ObsProcess(cfg) as run:
        assert run.wait_for(LOADED, 90), "the script never logged OBS's FINISHED_LOADING:\n" + run.log()[-3000:]
        assert "(OBS's language: de-DE)" in run.log(), "OBS did not start in German:\n" + run.log()[-2000:]
        panel = PanelDriver(run, cfg)
        p = panel.send("open")
        assert p["session"] == de("panel.session") == "Sitzung starten", p.describe()
        assert p["refresh"] == "Status aktualisieren" and "Status von" in p["status"], p.describe()
        # DejaVu Sans (the harness's text font) has no Japanese letters: the panel says so instead of the preview
        from obs_mindflow.obs.fonts import missing_letters

        if missing_letters("DejaVu Sans", "喜び") is None:
            pytest.fail("fontconfig is missing: OBS's FreeType text source needs it on Linux")
        assert "DejaVu Sans" in p["template_note"] and "Kästchen" in p["template_note"], p.describe()
        p = panel.send("press session")
        assert run.wait_for(r"MindFlow: first face in this session", 90), run.log()[-3000:]
        names = {ja.emotion(label) for label in LABELS} | {ja.emotion(s) for s in ("uncertain", "no face")}
        for _ in range(40):
            p = panel.send("press refresh")
            if p.text in names:
                break
        assert p.text in names, f"the text source shows {p.text!r}, not a Japanese emotion name"
        assert p["session"] == "Sitzung beenden", p.describe()
        result = run.stop(timeout=30)
    assert "Traceback" not in result.log, "\n".join(result.script_lines())
    check_clean_exit(result)
