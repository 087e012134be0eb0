"""The e2e harness's own logic, without OBS: finding processes in /proc (no pgrep), classifying OBS's exit, and
deciding whose fault it was from control runs. Runs everywhere (Linux)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from .obs_harness import ControlVerdict, ObsResult, check_clean_exit, descendants, exit_faults, process_name

CLEAN_LOG = "==== Shutting down ====\nAll scene data cleared\nFreeing OBS context data\nNumber of memory leaks: 0\n"


def _result(returncode=0, log=CLEAN_LOG, killed=False):
    return ObsResult(returncode, killed, log, 1.0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_descendants_and_names_from_proc():
    # a shell (the wrapper) whose child is a sleep (the program), like xvfb-run and OBS
    wrapper = subprocess.Popen(["sh", "-c", "sleep 30 & wait"], start_new_session=True)
    try:
        deadline = time.monotonic() + 30      # the forked child is named "sh" until it has exec'd sleep
        names: list[str] = []
        while time.monotonic() < deadline and names != ["sleep"]:
            time.sleep(0.05)
            names = [process_name(p) for p in descendants(wrapper.pid)]
        assert names == ["sleep"]
        assert process_name(wrapper.pid) == "sh"
    finally:
        for pid in descendants(wrapper.pid):
            subprocess.run(["kill", "-9", str(pid)], check=False)
        wrapper.kill()
        wrapper.wait(10)
    assert process_name(wrapper.pid) == ""                       # gone: no name, no error


@pytest.mark.parametrize("returncode, log, killed, expected", [
    (0, CLEAN_LOG, False, []),
    (139, "==== Shutting down ====\nNot all sources were cleared when clearing scene data:\n", False,
     ["exit status 139 (segmentation fault)", "no 'Number of memory leaks' line (OBS did not finish its shutdown)",
      "Not all sources were cleared"]),
    (0, "Double destroy just occurred.\nNumber of memory leaks: 3\n", False,
     ["3 memory leaks", "Double destroy just occurred"]),
    (-9, "", True, ["hang: killed after the timeout"]),
    (-2, CLEAN_LOG, False, ["exit status -2"]),     # xvfb-run killed by a SIGINT meant for OBS
])
def test_exit_faults(returncode, log, killed, expected):
    assert exit_faults(_result(returncode, log, killed)) == expected


@pytest.mark.parametrize("faults, control_faults, obs_own", [
    (["exit status 139 (segmentation fault)"], [[], ["3 memory leaks", "Not all sources were cleared"]], True),
    (["3 memory leaks"], [[], [], []], False),
    (["hang: killed after the timeout"], [["3 memory leaks"]], False),      # a crash does not explain a hang
    (["hang: killed after the timeout"], [["hang: killed after the timeout"]], True),
])
def test_verdict_same_way(faults, control_faults, obs_own):
    verdict = ControlVerdict(faults, _result(1), [(f, _result(1 if f else 0)) for f in control_faults], [])
    assert verdict.obs_own is obs_own
    report = verdict.report()
    assert ("OBS's own shutdown fault (control run fails the same way)" in report) is obs_own
    assert report.count("\n  control run ") == len(control_faults)


def test_check_clean_exit():
    assert check_clean_exit(_result()) is None
    with pytest.raises(AssertionError, match="3 memory leaks"):
        check_clean_exit(_result(0, "Number of memory leaks: 3\n"))      # no run to repeat: a plain failure
