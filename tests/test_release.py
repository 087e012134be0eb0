"""The release: one version from one place (``obs_mindflow.__version__``), the changelog that starts with it."""

from __future__ import annotations

import re

from obs_mindflow import __version__
from tests.conftest import ROOT


def test_the_version_is_set_in_one_place():
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__), __version__
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")      # tomllib: Python 3.11+ only
    assert not re.search(r"^version\s*=\s*\"", pyproject, re.M), "a second version in pyproject.toml"
    assert re.search(r'^dynamic = \["version"\]$', pyproject, re.M)
    assert re.search(r'^version = \{ attr = "obs_mindflow.__version__" \}', pyproject, re.M)


def test_the_changelog_starts_with_this_version():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})$", text, re.M)
    assert releases and releases[0][0] == __version__, releases
    first = text.split(f"## [{__version__}]")[1].split("\n## ")[0]
    assert re.search(r"^### (Added|Changed|Fixed|Removed|Deprecated|Security)$", first, re.M), first[:200]
