"""Build the release archive ``dist/MindFlow-<version>.zip``: what a streamer unpacks and loads in OBS (``make dist``).

It holds one folder, ``MindFlow/`` — the same name in every release, so a newer zip unpacked over an older one lands
in the folder OBS already knows (install.md, "Upgrading") — with:

- the script and its package (``obs_mindflow/``), the bundled models with their cards and licences (``models/``);
- the dependency installer (``tools/install_obs_deps.py``) and the pinned requirements (``requirements.txt``);
- ``install.md``, ``README.md``, ``CHANGELOG.md``, ``LICENSE``, ``THIRD-PARTY-NOTICES.md``, and the pictures and pages
  under ``docs/`` that install.md and README.md link to.

Nothing from ``tests/``, ``.ci/``, the rest of ``tools/`` (training, benchmarks), ``samples/``, the training data,
caches (``__pycache__``) or what git ignores under the two folders (a DAN model a user exported: ``models/dan-*``,
which may not be shipped). The folders are walked rather than asked of git, so that the build also runs where git is
missing (CI's OBS chroots); ``tests/test_dist.py`` checks that every file taken is one git tracks.

Reproducible: the same commit gives the same bytes with the same zlib — entries in sorted order, every timestamp the
release's date in CHANGELOG.md (00:00 UTC), permissions 0644, no extra fields or comment. Standard library only:
``python3 tools/make_dist.py [--out DIR]`` prints the archive's path, size and file count.
"""

from __future__ import annotations

import argparse
import calendar
import fnmatch
import os
import posixpath
import re
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDER = "MindFlow"

#: Files taken whole, and folders whose tracked files are all taken.
FILES = ("CHANGELOG.md", "LICENSE", "README.md", "THIRD-PARTY-NOTICES.md", "install.md", "requirements.txt",
         "tools/install_obs_deps.py")
TREES = ("obs_mindflow/", "models/")
#: Left out of :data:`TREES`: caches, and what .gitignore keeps out of git there.
EXCLUDED_PARTS = ("__pycache__",)
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
EXCLUDED_GLOBS = ("models/dan-*",)
#: The documents whose links are followed (one level) into ``docs/``: install.md must match the zip.
LINKED_FROM = ("install.md", "README.md")
LINK = re.compile(r"\]\(([^)#\s]+)")


class DistError(Exception):
    """The archive cannot be built (a file missing, no changelog entry); the message says why."""


def version() -> str:
    """``obs_mindflow.__version__``, read from the file (the build needs none of the run-time packages)."""
    text = (ROOT / "obs_mindflow" / "__init__.py").read_text(encoding="utf-8")
    m = re.search(r'^__version__ = "([^"]+)"$', text, re.M)
    if not m:
        raise DistError("no __version__ = \"X.Y.Z\" line in obs_mindflow/__init__.py")
    return m.group(1)


def linked_docs() -> set[str]:
    """The files under ``docs/`` that :data:`LINKED_FROM` link to (a link to a missing file is an error)."""
    out = set()
    for name in LINKED_FROM:
        for target in LINK.findall((ROOT / name).read_text(encoding="utf-8")):
            path = posixpath.normpath(target)
            if path.startswith("docs/"):
                if not (ROOT / path).is_file():
                    raise DistError(f"{name} links to {target}, which does not exist")
                out.add(path)
    return out


def _taken(path: str) -> bool:
    parts = path.split("/")
    return (not any(p in EXCLUDED_PARTS or p.startswith(".") for p in parts)
            and not path.endswith(EXCLUDED_SUFFIXES)
            and not any(fnmatch.fnmatch("/".join(parts[:2]), g) for g in EXCLUDED_GLOBS))


def contents() -> list[str]:
    """The repository paths (``/``-separated) that go into the archive, sorted."""
    missing = [f for f in FILES if not (ROOT / f).is_file()]
    if missing:
        raise DistError(f"part of the release but missing: {', '.join(missing)}")
    chosen = set(FILES) | linked_docs()
    for tree in TREES:
        for path in (ROOT / tree).rglob("*"):
            rel = path.relative_to(ROOT).as_posix()
            if path.is_file() and _taken(rel):
                chosen.add(rel)
    return sorted(chosen)


def epoch() -> int:
    """The archive's timestamp: 00:00 UTC of this version's date in CHANGELOG.md (so one commit, one zip)."""
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    m = re.search(r"^## \[" + re.escape(version()) + r"\] - (\d{4})-(\d{2})-(\d{2})$", text, re.M)
    if not m:
        raise DistError(f"CHANGELOG.md has no '## [{version()}] - YYYY-MM-DD' entry: write this release's notes "
                        f"first")
    return calendar.timegm((int(m.group(1)), int(m.group(2)), int(m.group(3)), 0, 0, 0))


def build(out_dir: Path) -> Path:
    """Write ``out_dir/MindFlow-<version>.zip`` (replacing it) and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"MindFlow-{version()}.zip"
    stamp = time.gmtime(epoch())[:6]
    tmp = target.with_suffix(".zip.partial")
    with zipfile.ZipFile(tmp, "w") as z:
        for path in contents():
            info = zipfile.ZipInfo(f"{FOLDER}/{path}", date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3                       # Unix, so that the permissions below are read
            info.external_attr = 0o100644 << 16          # a regular file, rw-r--r--
            z.writestr(info, (ROOT / path).read_bytes(), compresslevel=9)
    os.replace(tmp, target)
    return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "dist", help="the folder to write to (default: dist/)")
    args = ap.parse_args(argv)
    try:
        path = build(args.out)
    except DistError as exc:
        print(f"make dist: {exc}", file=sys.stderr)
        return 1
    with zipfile.ZipFile(path) as z:
        count = len(z.namelist())
    print(f"{path}: {path.stat().st_size / 1e6:.2f} MB, {count} files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
