"""tools/soak_obs.py's verdict (its runs need a real OBS: CI runs its short mode; here only the checks)."""

from tools.soak_obs import checks


def _run(seconds: int, every: float = 10.0) -> dict:
    samples = [{"t_s": float(t), "hooks_age_s": 1.0} for t in range(0, seconds + 1, int(every))]
    return {"exit": {"faults": [], "obs_own_fault": "", "traceback": False, "log": "obs.log"}, "samples": samples}


def test_a_clean_control_run_passes():
    assert checks({"runs": {"without": _run(180)}}, 10.0) == []


def test_an_obs_that_exits_mid_soak_fails_it_and_says_when():
    crashed = _run(2790)
    crashed["exit"].update(faults=["exit status -11 (segmentation fault)"])
    doc = {"runs": {"without": _run(2790), "twin": crashed}, "ended_early": {"runs": ["twin"], "at_s": 2795.2}}
    problems = checks(doc, 10.0)
    assert any("exited 2795 s into the soak" in p and "obs-crash-stacks.txt" in p for p in problems), problems


def test_gaps_and_stale_counters_are_reported():
    run = _run(100)
    del run["samples"][4:7]
    run["samples"][-1]["hooks_age_s"] = 60.0
    problems = checks({"runs": {"without": run}}, 10.0)
    assert any("samples missing" in p for p in problems) and any("not sampled at [100.0]" in p for p in problems)
