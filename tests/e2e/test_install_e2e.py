"""The release zip in a real OBS, as a streamer gets it (issues 15 and 24): ``make dist``'s zip unpacked into a fresh
folder whose path has spaces and non-ASCII letters, without the packages, loaded in OBS while recording; its panel
says what is missing; "Install the missing packages" runs the install helper for OBS's own Python in the background
(from a local folder of wheels: no network in CI — ``PIP_NO_INDEX`` + ``PIP_FIND_LINKS``, which pip reads as a user's
pip configuration); the script then comes alive in the same OBS run — imports the packages, loads the model, starts
the session of the running recording — and the same open panel shows it after "Refresh status". The streamer
calibrates; the recording's session is reported.

Then the upgrade install.md describes: OBS closed, a newer zip unpacked over the old one, OBS started again with what
it saved. The newer MindFlow runs (its version in the log) with the streamer's settings and calibration (kept by OBS
with the script's path), the packages already installed, and the same report folder: its history holds both
sessions, each with the version that made it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from obs_mindflow import __version__
from obs_mindflow.engine.reports.history import History
from tools import make_dist

from .obs_harness import ROOT, TEXT, WEBCAM, ObsConfig, ObsProcess, check_clean_exit, saved_script_settings
from .panel_driver import PanelDriver, panel_hooks
from .wheelhouse import build

pytestmark = pytest.mark.e2e

INSTALL_TIMEOUT_S = 900          # unpacking ~320 MB and importing it, on a loaded 2-core CI machine
MODEL = "mindflow-ferplus-r3d"   # = catalog.DEFAULT_MODEL
NEUTRAL_FACE = ROOT / "tests" / "data" / "faces" / "grace_hopper.jpg"   # a still face a calibration accepts
NEWER = "1.0.1"                  # the version of the "newer" zip the upgrade unpacks (the release's, bumped)


def _deps_folder(python: str) -> Path:
    """The main checkout's package folder for ``python`` (filled by the e2e fixture)."""
    from obs_mindflow.obs.deps import deps_dir

    version = re.search(r"python(3\.\d+)", python)
    assert version, python
    return deps_dir(tuple(int(x) for x in version.group(1).split(".")))


def _recording_seconds(log: str) -> float:
    """Seconds from "Recording Start" to "Recording Stop" in an OBS log (a control run stops its recording as late)."""
    def at(marker: str) -> float:
        m = re.search(r"^(\d+):(\d+):(\d+\.\d+): " + re.escape(marker), log, re.M)
        assert m, f"no {marker!r} line in the OBS log"
        return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    return round(at("==== Recording Stop") - at("==== Recording Start"), 2)


def _pip_install_beside(python: str, wheels: Path, requirements: Path, workdir: Path) -> None:
    """A control run's stand-in for the install (check_clean_exit): the same pip install of the same wheels, from
    outside OBS — its load on the machine while OBS records is part of the run (OBS 30.2 crashes at exit under
    such load without MindFlow too: docs/obs30-exit-crash.md)."""
    target = workdir / "pip-target"
    subprocess.run([python, "-m", "pip", "install", "--no-index", "--find-links", str(wheels), "--no-cache-dir",
                    "--target", str(target), "-r", str(requirements)], capture_output=True, timeout=INSTALL_TIMEOUT_S)
    shutil.rmtree(target, ignore_errors=True)


def _newer_zip(release: Path, out_dir: Path) -> Path:
    """The release zip as its next version would be: the same files with ``__version__`` bumped to :data:`NEWER`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    newer = out_dir / f"MindFlow-{NEWER}.zip"
    init = f"{make_dist.FOLDER}/obs_mindflow/__init__.py"
    with zipfile.ZipFile(release) as src, zipfile.ZipFile(newer, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == init:
                text = data.decode()
                assert f'__version__ = "{__version__}"' in text
                data = text.replace(f'__version__ = "{__version__}"', f'__version__ = "{NEWER}"').encode()
            dst.writestr(info, data)
    return newer


def _stop_recording_and_exit(run: ObsProcess, panel: PanelDriver, cfg: ObsConfig):
    """Stop the recording from the panel, wait for MindFlow's summary, and close OBS (its control-run length set
    from this recording)."""
    panel.send("record stop")
    assert run.wait_for(r"MindFlow session summary", 60), run.log()[-3000:]
    assert run.wait_for(r"==== Recording Stop", 60), run.log()[-3000:]
    cfg.control_hooks = {"stop_after_s": _recording_seconds(run.log())}
    return run.stop(timeout=30)


def _session_lines(log: str) -> str:
    return "\n".join(line for line in log.splitlines() if "MindFlow" in line)[-4000:]


def test_the_release_zip_installs_runs_and_upgrades_in_obs(obs_ready, tmp_path):
    folder = _deps_folder(obs_ready)
    assert folder.is_dir(), f"the e2e fixture installs {folder}"
    wheels = tmp_path / "wheelhouse"
    requirements = build(folder, wheels)

    release = make_dist.build(tmp_path / "dist")
    assert release.name == f"MindFlow-{__version__}.zip"
    place = tmp_path / "My Stream Tools — Ünïcode 配信"        # spaces, Latin-1 and CJK letters, an em dash
    with zipfile.ZipFile(release) as z:
        z.extractall(place)
    copy = place / make_dist.FOLDER
    assert not (copy / ".deps").exists() and not (copy / "tests").exists()
    # The zip pins the packages for every platform (requirements.txt); this test's wheels are those of OBS's Python
    # here, packed from the e2e fixture's install (no network): the same names, pinned with these wheels' hashes.
    shutil.copy(requirements, copy / "requirements.txt")
    reports = tmp_path / "reports — ü"
    # 15 s of calibration: at least 30 face frames even at 2-3 analyses per second (OBS 30.2 in CI's chroot, right
    # after the install, read 17 frames in 7 s)
    settings = {"video_source": WEBCAM, "text_source": TEXT, "report_dir": str(reports), "rate_hz": 10.0,
                "calibration_s": 15.0, "min_report_s": 0}
    cfg = ObsConfig(workdir=tmp_path, script_path=copy / "obs_mindflow" / "mindflow_obs.py", webcam_image=NEUTRAL_FACE,
                    script_settings=settings, hooks=panel_hooks(tmp_path),
                    extra_env={"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels), "PIP_NO_CACHE_DIR": "1"},
                    control_action=lambda workdir: _pip_install_beside(obs_ready, wheels, requirements, workdir))
    with ObsProcess(cfg) as run:
        assert run.wait_for(r"==== Recording Start", 90), "OBS did not start recording:\n" + run.log()[-3000:]
        log = run.log()
        assert f"MindFlow {__version__} loaded from {copy}" in log, _session_lines(log)
        if "MindFlow needs" not in log and "model '" in log:
            pytest.skip("OBS's Python has numpy, OpenCV and onnxruntime system-wide: nothing is missing to install")
        assert "MindFlow needs" in log, "\n".join(line for line in log.splitlines() if "Python" in line)
        # A person opens the panel once OBS has settled; the hooks open it from a timer on the graphics thread, and
        # obs-scripting's unlocked "current script" global can go NULL under them when OBS runs a script callback on
        # the UI thread at that moment (the start of the recording, a save): an upstream race that crashes OBS 32
        # (docs/architecture.md, "obs-scripting's current script").
        time.sleep(2.0)
        panel = PanelDriver(run, cfg)
        p = panel.send("open")
        assert p["install_deps"] == "Install the missing packages", p.describe()
        assert "install_obs_deps.py" in p["deps"] and "Check again" in p["deps"], p.describe()
        assert str(copy) in p["deps"], p.describe()                 # the command names the unpacked folder
        assert p["session"] is None and p["video_source"] is None      # nothing that cannot work yet

        p = panel.send("press install_deps")
        assert "Installing the packages" in p["deps"] and p["install_deps"] is None, p.describe()
        installed = run.wait_for(r"MindFlow: packages installed|Installing the packages failed", INSTALL_TIMEOUT_S)
        assert installed and "failed" not in installed.group(0), "the install failed:\n" + _session_lines(run.log())
        assert run.wait_for(r"MindFlow: started with dependencies found", 120), run.log()[-3000:]
        assert run.wait_for(r"MindFlow: session started \(OBS was already recording at script load\)", 60)
        assert run.wait_for(r"MindFlow: first face in this session", 120), run.log()[-3000:]
        p = panel.send("press refresh")                   # the same open panel, now whole
        assert p["deps"] is None and p["session"] == "Stop session", p.describe()
        assert "Session running since" in p["status"] and p["video_source"] is not None
        panel.send("press calibrate")                     # the streamer's calibration, kept across the upgrade
        done = run.wait_for(r"MindFlow: calibrat(ed|ion refused)[^\n]*", 120)
        assert done and done.group(0).startswith("MindFlow: calibrated"), _session_lines(run.log())
        # The recording stops before OBS exits: OBS 30.2 crashes now and then when it exits while recording after
        # such a load (reproduced without MindFlow: docs/obs30-exit-crash.md); exiting while recording is tested
        # elsewhere (test_obs_e2e) without a pip install beside it.
        result = _stop_recording_and_exit(run, panel, cfg)

    assert "Traceback" not in result.log, "\n".join(result.script_lines())
    check_clean_exit(result)
    installed_folder = copy / ".deps" / folder.name
    marker = json.loads((installed_folder / ".mindflow-deps.json").read_text(encoding="utf-8"))
    assert marker["python"] == obs_ready, marker
    assert not list(installed_folder.parent.glob("*.partial-*")), "a temporary install folder was left behind"
    assert "MindFlow session summary" in result.log
    saved = saved_script_settings(cfg, cfg.collections[0])
    assert saved and json.loads(saved.get("baselines") or "{}").get(MODEL), f"no calibration saved: {saved}"

    # The upgrade: OBS closed, the newer zip unpacked over the old one, OBS started with what it saved.
    newer = _newer_zip(release, tmp_path / "dist-newer")
    with zipfile.ZipFile(newer) as z:
        z.extractall(place)
    shutil.copy(requirements, copy / "requirements.txt")   # the same pins as installed (see above)
    cfg.control_action = None
    with ObsProcess(cfg, fresh_config=False, start_recording=True) as run:
        assert run.wait_for(r"==== Recording Start", 90), "OBS did not start recording:\n" + run.log()[-3000:]
        assert run.wait_for(rf"MindFlow {re.escape(NEWER)} loaded from ", 60), _session_lines(run.log())
        assert run.wait_for(r"MindFlow: first face in this session", 120), _session_lines(run.log())
        log = run.log()
        assert "MindFlow needs" not in log and f"MindFlow: stored calibration applied to '{MODEL}'" in log, \
            _session_lines(log)
        upgraded = _stop_recording_and_exit(run, PanelDriver(run, cfg), cfg)
    assert "Traceback" not in upgraded.log, "\n".join(upgraded.script_lines())
    check_clean_exit(upgraded)
    kept = saved_script_settings(cfg, cfg.collections[0])
    assert kept and {k: kept.get(k) for k in settings} == settings, kept
    assert kept["baselines"] == saved["baselines"]
    with History.open(reports) as history:
        rows = history.rows()
    assert [r.mindflow_version for r in rows] == [__version__, NEWER], rows
    last = json.loads((reports / rows[-1].report / "summary.json").read_text(encoding="utf-8"))
    assert last["mindflow_version"] == NEWER and last["calibration"]["applied"] is True, last["calibration"]
    assert f"MindFlow {NEWER}" in (reports / rows[-1].report / "report.html").read_text(encoding="utf-8")
