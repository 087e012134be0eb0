"""``make dist``'s release archive (tools/make_dist.py): what it holds, what it leaves out, and the same bytes from
the same commit."""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
import zipfile

import pytest

from obs_mindflow import __version__
from tests.conftest import ROOT
from tools import make_dist

#: Besides obs_mindflow/** and models/**: every other file of the zip.
OTHER_FILES = {"CHANGELOG.md", "LICENSE", "README.md", "THIRD-PARTY-NOTICES.md", "install.md", "requirements.txt",
               "tools/install_obs_deps.py"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The archive built twice, into two folders."""
    first = make_dist.build(tmp_path_factory.mktemp("a"))
    second = make_dist.build(tmp_path_factory.mktemp("b"))
    return first, second


def names(path) -> list[str]:
    with zipfile.ZipFile(path) as z:
        return z.namelist()


def test_the_same_commit_gives_the_same_bytes(built):
    first, second = built
    assert first.name == second.name == f"MindFlow-{__version__}.zip"
    assert first.read_bytes() == second.read_bytes()


def test_entries_are_sorted_with_fixed_times_and_permissions(built):
    with zipfile.ZipFile(built[0]) as z:
        infos = z.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    release_day = re.search(rf"^## \[{re.escape(__version__)}\] - (\d+)-(\d+)-(\d+)$",
                            (ROOT / "CHANGELOG.md").read_text(encoding="utf-8"), re.M)
    assert {i.date_time for i in infos} == {(*map(int, release_day.groups()), 0, 0, 0)}
    assert {stat.filemode(i.external_attr >> 16) for i in infos} == {"-rw-r--r--"}
    assert {i.create_system for i in infos} == {3} and not any(i.extra or i.comment for i in infos)


def test_the_zip_holds_what_a_streamer_needs_and_nothing_else(built):
    files = names(built[0])
    assert all(f.startswith("MindFlow/") for f in files)
    rel = {f[len("MindFlow/"):] for f in files}
    docs = {f for f in rel if f.startswith("docs/")}
    assert rel - docs == OTHER_FILES | {f for f in rel if f.startswith(("obs_mindflow/", "models/"))}
    expected_package = {p.relative_to(ROOT).as_posix() for p in (ROOT / "obs_mindflow").rglob("*")
                        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    assert {f for f in rel if f.startswith("obs_mindflow/")} == expected_package
    for card in (ROOT / "models").glob("*/card.json"):
        if card.parent.name.startswith("dan-"):
            continue                                      # a user's own DAN export: never shipped
        folder = f"models/{card.parent.name}/"
        assert {folder + "card.json", folder + "model.onnx", folder + "README.md"} <= rel, folder
        assert any(f.startswith(folder + "LICENSE") for f in rel), f"{folder}: no licence"
    for bad in ("tests/", ".ci/", "samples/", "tools/train/", "tools/dan/", "dist/", ".deps/", "out/"):
        assert not [f for f in rel if f.startswith(bad)], bad
    assert not [f for f in rel if "__pycache__" in f or f.endswith(".pyc") or "/." in "/" + f]
    assert not [f for f in rel if f.startswith("models/dan-")]


def test_every_link_of_install_md_is_in_the_zip(built):
    rel = {f[len("MindFlow/"):] for f in names(built[0])}
    text = (ROOT / "install.md").read_text(encoding="utf-8")
    links = {t for t in re.findall(r"\]\(([^)#\s]+)", text) if "://" not in t}
    assert links and links <= rel, links - rel
    for path in re.findall(r"`((?:obs_mindflow|tools|models)/[\w./-]+\.(?:py|txt|json|md))`", text):
        assert path in rel, f"install.md names {path}, which is not in the zip"


def test_the_packaged_version_is_the_zip_name(built):
    with zipfile.ZipFile(built[0]) as z:
        init = z.read("MindFlow/obs_mindflow/__init__.py").decode()
        changelog = z.read("MindFlow/CHANGELOG.md").decode()
    assert f'__version__ = "{__version__}"' in init and f"## [{__version__}]" in changelog


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs a git checkout")
def test_every_file_in_the_zip_is_tracked_by_git(built):
    tracked = set(subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout.split("\0"))
    untracked = [f for f in make_dist.contents() if f not in tracked]
    assert not untracked, f"would ship files git does not track: {untracked}"
