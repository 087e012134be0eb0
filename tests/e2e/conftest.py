"""Fixtures for the real-OBS tests: skip (or fail, with ``MINDFLOW_REQUIRE_OBS=1``) when OBS/Xvfb are missing, and make
sure the run-time packages are installed for the Python OBS embeds (the same command CI runs first)."""

from __future__ import annotations

import os
import subprocess

import pytest

import re

from .obs_harness import ROOT, obs_available, obs_python

INSTALL_HELPER = ROOT / "tools" / "install_obs_deps.py"


def _unavailable(message: str) -> None:
    if os.environ.get("MINDFLOW_REQUIRE_OBS") == "1":
        pytest.fail(f"MINDFLOW_REQUIRE_OBS=1 but {message}")
    pytest.skip(message)


@pytest.fixture(scope="session")
def obs_ready() -> str:
    """OBS is runnable here and its Python has MindFlow's packages. Returns that Python's path."""
    missing = obs_available()
    if missing:
        _unavailable(missing)
    python = obs_python()
    check = subprocess.run([python, str(INSTALL_HELPER), "--check"], capture_output=True, text=True, timeout=120)
    if check.returncode != 0:
        # What CI does before the tests; done here once when the folder is missing or stale.
        install = subprocess.run([python, str(INSTALL_HELPER), "--if-missing", "--quiet"], capture_output=True,
                                 text=True, timeout=1800)
        if install.returncode != 0:
            _unavailable(f"the run-time packages for OBS's Python ({python}) are missing and installing them "
                         f"failed: {install.stdout[-1500:]}{install.stderr[-1500:]}")
    return python


@pytest.fixture(scope="session")
def obs_version(obs_ready) -> tuple[int, int, int]:
    """The installed OBS's version, ``(major, minor, patch)``, from ``obs --version`` ("OBS Studio - 32.2.2+ds-1
    (linux)"); ``(0, 0, 0)`` when it cannot be read."""
    try:
        out = subprocess.run(["obs", "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return (0, 0, 0)
    m = re.search(r"(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(g) for g in m.groups()) if m else (0, 0, 0)  # type: ignore[return-value]
