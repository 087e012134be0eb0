"""Shared fixtures: the real photos, the real default model."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
FACES = ROOT / "tests" / "data" / "faces"
SAMPLE = ROOT / "samples" / "mindflow-sample.mp4"


def load_photo(name: str) -> np.ndarray:
    img = cv2.imread(str(FACES / name), cv2.IMREAD_COLOR)
    assert img is not None, f"missing test photo {FACES / name}"
    return img


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    return load_photo("astronaut.png")


@pytest.fixture(scope="session")
def hopper() -> np.ndarray:
    return load_photo("grace_hopper.jpg")


@pytest.fixture(scope="session")
def default_model():
    from obs_mindflow.engine import ExpressionModel, default_model_dir

    return ExpressionModel.load(default_model_dir())


def paste(frame_hw: tuple[int, int], photo: np.ndarray, x: int, y: int, fill: int = 90) -> np.ndarray:
    """``photo`` pasted at (x, y) into a flat grey frame of (height, width)."""
    h, w = frame_hw
    frame = np.full((h, w, 3), fill, np.uint8)
    ph, pw = photo.shape[:2]
    frame[y:y + ph, x:x + pw] = photo[: h - y, : w - x]
    return frame


# In CI (.ci/run sets these) a browser or OBS test that skips is a failure: the tools are installed there, so a skip
# would silently hide a broken setup.
_REQUIRED = {"browser": "MINDFLOW_REQUIRE_BROWSER", "e2e": "MINDFLOW_REQUIRE_OBS"}
# … except a test marked ``obs_versions(...)`` that skips with this phrase on another OBS version (what it drives,
# such as a menu's place on the screen, exists only in those versions).
NOT_APPLICABLE = "not applicable to this OBS version:"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    import os

    outcome = yield
    report = outcome.get_result()
    if not report.skipped:
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if item.get_closest_marker("obs_versions") is not None and NOT_APPLICABLE in reason:
        return                       # a test for other OBS versions than this one: nothing is missing here
    for marker, env in _REQUIRED.items():
        if item.get_closest_marker(marker) is not None and os.environ.get(env) == "1":
            report.outcome = "failed"
            report.longrepr = f"{env}=1 but this {marker} test was skipped: {reason}"


@pytest.fixture(autouse=True)
def _dock_token_file_in_tmp(tmp_path_factory, monkeypatch):
    """The overlay server's dock token is kept per install in the user's config folder
    (``obs_mindflow/overlay/dock.py``): tests that start the overlay keep it in a temporary folder instead."""
    config = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    monkeypatch.setenv("APPDATA", str(config))


@pytest.fixture
def shot_dir(tmp_path):
    """A folder for a browser test's screenshots; copied to ``$MINDFLOW_SCREENSHOT_DIR`` when it is set."""
    import os
    import shutil

    keep = os.environ.get("MINDFLOW_SCREENSHOT_DIR")
    yield tmp_path
    if keep:
        os.makedirs(keep, exist_ok=True)
        for png in tmp_path.glob("*.png"):
            shutil.copy(png, keep)
