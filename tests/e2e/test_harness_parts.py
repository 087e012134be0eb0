"""The e2e harness's own logic, without OBS: finding processes in /proc (no pgrep), classifying OBS's exit, and
deciding whose fault it was from control runs. Runs everywhere (Linux)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from .obs_harness import (ControlVerdict, ObsResult, check_clean_exit, crashed_thread_frames, descendants, exit_faults,
                          obs32_exit_fault, process_name)

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


def _obs_log(version, body, unloaded_first=True):
    unload = "10:00:01.000: [obs-scripting]: Unloaded python script: mindflow_obs.py\n"
    return (f"10:00:00.000: OBS {version} (linux)\n10:00:01.000: ==== Shutting down ====\n"
            + (unload if unloaded_first else "") + body + ("" if unloaded_first else unload))


NOT_CLEARED = ("10:00:01.100: Not all sources were cleared when clearing scene data:\n10:00:01.100: \n"
               "10:00:01.100: - {name}\n10:00:01.100: \n")
FREEING = "10:00:01.200: Freeing OBS context data\n10:00:01.200: \t1 source(s) were remaining\n"


@pytest.mark.parametrize("version, body, returncode, unloaded_first, known", [
    # OBS 32's fault in its forms, after MindFlow unloaded: known
    ("32.2.2+ds-1+b2", NOT_CLEARED.format(name="Webcam") + FREEING, 139, True, True),
    ("32.2.2", NOT_CLEARED.format(name="Webcam") + FREEING + "Double destroy just occurred.\n"
     "Number of memory leaks: 3\n", 0, True, True),
    ("32.2.2", "All scene data cleared\n" + FREEING + "Number of memory leaks: 4\n", 0, True, True),
    # not it: an older OBS (strict there), another source left, more leaks, MindFlow still loaded, a kill
    ("30.2.3", NOT_CLEARED.format(name="Webcam") + FREEING + "Number of memory leaks: 3\n", 0, True, False),
    ("32.2.2", NOT_CLEARED.format(name="Emotion text") + FREEING + "Number of memory leaks: 3\n", 0, True, False),
    ("32.2.2", "All scene data cleared\n" + FREEING + "Number of memory leaks: 9\n", 0, True, False),
    ("32.2.2", NOT_CLEARED.format(name="Webcam") + FREEING + "Number of memory leaks: 3\n", 0, False, False),
    ("32.2.2", "All scene data cleared\n" + FREEING + "Number of memory leaks: 0\n", 134, True, False),
])
def test_obs32_known_exit_fault(version, body, returncode, unloaded_first, known):
    result = _result(returncode, _obs_log(version, body, unloaded_first))
    faults = exit_faults(result)
    assert faults
    why = obs32_exit_fault(result, faults)
    assert bool(why) is known, why
    if known:
        verdict = ControlVerdict(faults, result, [], [], known=why)
        assert verdict.obs_own and verdict.report().startswith("OBS 32.2's own exit fault")


def test_obs32_exit_fault_looks_at_the_exit_only():
    """A run that reloaded the script (a scene-collection switch) unloaded it once before the exit: that earlier
    unload does not make a fault at exit, with the script never unloaded there, OBS's own. Nor is an exit status that
    merely begins with a known one (50 is not 5)."""
    reloaded = ("10:00:00.000: OBS 32.2.2 (linux)\n"
                "10:00:00.500: [obs-scripting]: Unloaded python script: mindflow_obs.py\n"
                "10:00:01.000: ==== Shutting down ====\n" + NOT_CLEARED.format(name="Webcam") + FREEING
                + "Number of memory leaks: 3\n")
    result = _result(0, reloaded)
    assert obs32_exit_fault(result, exit_faults(result)) == ""
    result = _result(50, _obs_log("32.2.2", "All scene data cleared\n" + FREEING + "Number of memory leaks: 0\n"))
    assert exit_faults(result) == ["exit status 50"] and obs32_exit_fault(result, exit_faults(result)) == ""
    result = _result(5, _obs_log("32.2.2", "All scene data cleared\n" + FREEING + "Number of memory leaks: 0\n"))
    assert obs32_exit_fault(result, exit_faults(result))


GDB_CORE = """Core was generated by `/usr/bin/obs --multi --collection MindFlowE2E'.
Program terminated with signal SIGSEGV, Segmentation fault.
#0  0x00007fe7b0615892 in ?? () from /lib/x86_64-linux-gnu/libc_malloc_debug.so.0
[Current thread is 1 (Thread 0x7fe7667fd6c0 (LWP 115))]
  Id   Target Id                       Frame 
* 1    Thread 0x7fe7667fd6c0 (LWP 115) 0x00007fe7b0615892 in ?? () from /lib/x86_64-linux-gnu/libc_malloc_debug.so.0
  2    Thread 0x7fe79e8d26c0 (LWP 53)  0x00007fe7ab0a672e in ?? () from /lib/x86_64-linux-gnu/libc.so.6
#0  0x00007fe7b0615892 in ?? () from /lib/x86_64-linux-gnu/libc_malloc_debug.so.0
#1  0x00007fe7b0618d11 in free () from /lib/x86_64-linux-gnu/libc_malloc_debug.so.0
#2  0x00007fe7ac515a88 in obs_data_release () from /lib/x86_64-linux-gnu/libobs.so.0
#3  0x00007fe7ac50a92d in obs_context_data_free () from /lib/x86_64-linux-gnu/libobs.so.0

Thread 2 (Thread 0x7fe79e8d26c0 (LWP 53)):
#0  0x00007fe7ab0a672e in ?? () from /lib/x86_64-linux-gnu/libc.so.6
"""


def test_the_crashed_thread_s_frames_from_gdb():
    """What a crash's report shows (ObsProcess reads OBS's core dump with gdb): the crashed thread's frames."""
    frames = crashed_thread_frames(GDB_CORE)
    assert len(frames) == 4 and "obs_data_release" in frames[2] and frames[0].startswith("#0")
    assert crashed_thread_frames("no threads table") == []
