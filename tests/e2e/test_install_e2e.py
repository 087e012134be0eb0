"""Installing MindFlow's packages from its panel in a real OBS, without a terminal (issue 15): a fresh checkout
without the packages is loaded in OBS while recording; its panel says what is missing; "Install the missing
packages" runs the install helper for OBS's own Python in the background (from a local folder of wheels: no network
in CI — ``PIP_NO_INDEX`` + ``PIP_FIND_LINKS``, which pip reads as a user's pip configuration); the script then comes
alive in the same OBS run — imports the packages, loads the model, starts the session of the running recording —
and the same open panel shows it after "Refresh status".
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from .obs_harness import ROOT, TEXT, WEBCAM, ObsConfig, ObsProcess, check_clean_exit
from .panel_driver import PanelDriver, panel_hooks
from .wheelhouse import build

pytestmark = pytest.mark.e2e

INSTALL_TIMEOUT_S = 900          # unpacking ~320 MB and importing it, on a loaded 2-core CI machine


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


def test_install_button_brings_mindflow_alive_from_a_wheelhouse(obs_ready, tmp_path):
    folder = _deps_folder(obs_ready)
    assert folder.is_dir(), f"the e2e fixture installs {folder}"
    wheels = tmp_path / "wheelhouse"
    requirements = build(folder, wheels)

    copy = tmp_path / "MindFlow copy"                 # a fresh checkout: no .deps folder yet
    shutil.copytree(ROOT / "obs_mindflow", copy / "obs_mindflow", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "tools", copy / "tools", ignore=shutil.ignore_patterns("__pycache__", "train", "dan"))
    shutil.copytree(ROOT / "models", copy / "models", ignore=shutil.ignore_patterns("dan-*"))
    shutil.copy(requirements, copy / "requirements.txt")
    cfg = ObsConfig(workdir=tmp_path, script_path=copy / "obs_mindflow" / "mindflow_obs.py",
                    script_settings={"video_source": WEBCAM, "text_source": TEXT, "report_dir": str(tmp_path / "r"),
                                     "rate_hz": 5.0, "min_report_s": 0},
                    hooks=panel_hooks(tmp_path),
                    extra_env={"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels), "PIP_NO_CACHE_DIR": "1"},
                    control_action=lambda workdir: _pip_install_beside(obs_ready, wheels, requirements, workdir))
    with ObsProcess(cfg) as run:
        assert run.wait_for(r"==== Recording Start", 90), "OBS did not start recording:\n" + run.log()[-3000:]
        log = run.log()
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
        assert p["session"] is None and p["video_source"] is None      # nothing that cannot work yet

        p = panel.send("press install_deps")
        assert "Installing the packages" in p["deps"] and p["install_deps"] is None, p.describe()
        installed = run.wait_for(r"MindFlow: packages installed|Installing the packages failed", INSTALL_TIMEOUT_S)
        assert installed and "failed" not in installed.group(0), "the install failed:\n" + "\n".join(
            line for line in run.log().splitlines() if "MindFlow" in line)[-4000:]
        assert run.wait_for(r"MindFlow: started with dependencies found", 120), run.log()[-3000:]
        assert run.wait_for(r"MindFlow: session started \(OBS was already recording at script load\)", 60)
        assert run.wait_for(r"MindFlow: first face in this session", 120), run.log()[-3000:]
        p = panel.send("press refresh")                   # the same open panel, now whole
        assert p["deps"] is None and p["session"] == "Stop session", p.describe()
        assert "Session running since" in p["status"] and p["video_source"] is not None
        # The recording stops before OBS exits: OBS 30.2 crashes now and then when it exits while recording after
        # such a load (reproduced without MindFlow: docs/obs30-exit-crash.md); exiting while recording is tested
        # elsewhere (test_obs_e2e) without a pip install beside it.
        panel.send("record stop")
        assert run.wait_for(r"MindFlow session summary", 60), run.log()[-3000:]
        assert run.wait_for(r"==== Recording Stop", 60), run.log()[-3000:]
        cfg.control_hooks = {"stop_after_s": _recording_seconds(run.log())}
        result = run.stop(timeout=30)

    assert "Traceback" not in result.log, "\n".join(result.script_lines())
    check_clean_exit(result)
    installed_folder = copy / ".deps" / folder.name
    marker = json.loads((installed_folder / ".mindflow-deps.json").read_text(encoding="utf-8"))
    assert marker["python"] == obs_ready, marker
    assert not list(installed_folder.parent.glob("*.partial-*")), "a temporary install folder was left behind"
    assert "MindFlow session summary" in result.log
