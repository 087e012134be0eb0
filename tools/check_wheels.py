"""Check that the pinned run-time packages (requirements.txt) install as wheels on every platform MindFlow supports.

For each platform and Python version of the matrix below, the lines of ``requirements.txt`` whose environment
markers hold *for that target* are handed to ``pip download --only-binary=:all: --no-deps --platform …
--python-version … --implementation cp --require-hashes``: pip must find a wheel for every pinned package and the
wheel's hash must be one of the pinned hashes. (pip evaluates markers for the interpreter that runs it, not for the
``--platform``/``--python-version`` target: hence the filtering here. ``--no-deps`` is right because the file is a
complete lock — every dependency is pinned in it, ``uv pip compile --universal`` made it.)

The matrix — what OBS loads MindFlow into:

- official OBS for Windows (x86_64) and macOS (Apple silicon, Intel): the Python set in Tools > Scripts > Python
  Settings, 3.10–3.12 (OBS accepts up to 3.12; today's numpy/onnxruntime wheels start at 3.10) — macOS 14 and newer;
- Linux distribution OBS (x86_64, aarch64): the system Python it links, 3.9–3.14 (Debian 12: 3.11, Debian 13: 3.13,
  Debian unstable: 3.14, Ubuntu 24.04: 3.12).

The ranges are ``obs_mindflow.obs.deps.WHEEL_PYTHONS``: what ``install_obs_deps.py`` accepts is what is checked here.

Wheels are kept in ``--cache`` (default ``$MINDFLOW_CI_CACHE/wheels``, i.e. ``/var/cache/mindflow-ci/wheels``, when
writable, else ``~/.cache/mindflow-wheels``):
a second run downloads nothing and only re-checks the hashes. Exit status 1 when any target fails.

    python tools/check_wheels.py [--requirements requirements.txt] [--cache DIR] [--jobs 4] [--only linux]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from obs_mindflow.obs.deps import WHEEL_PYTHONS  # noqa: E402  (stdlib only)

try:  # pip's vendored copy: present wherever pip is, whatever else is installed
    from pip._vendor.packaging.markers import Marker
except ImportError:  # pragma: no cover - pip without vendored packaging
    from packaging.markers import Marker


@dataclass(frozen=True)
class Target:
    """One platform as pip sees it. ``platforms``: pip ``--platform`` tags (pip also accepts older macOS and
    manylinux versions of them); ``markers``: the PEP 508 environment of that platform, for the lines' markers."""

    name: str
    system: str                 # key of WHEEL_PYTHONS
    platforms: tuple[str, ...]
    sys_platform: str
    platform_machine: str
    platform_system: str
    os_name: str

    def environment(self, version: tuple[int, int]) -> dict[str, str]:
        v = f"{version[0]}.{version[1]}"
        return {"python_version": v, "python_full_version": f"{v}.0", "implementation_name": "cpython",
                "platform_python_implementation": "CPython", "sys_platform": self.sys_platform,
                "platform_machine": self.platform_machine, "platform_system": self.platform_system,
                "os_name": self.os_name, "platform_release": "", "platform_version": "", "extra": ""}


def manylinux(arch: str, glibc_minor: int = 28) -> tuple[str, ...]:
    """Every manylinux tag a glibc 2.``glibc_minor`` machine accepts, newest first (pip expands a macOS
    ``--platform`` to older macOS versions but not a manylinux one). glibc 2.28: Debian 10, Ubuntu 20.04, RHEL 8."""
    return tuple(f"manylinux_2_{m}_{arch}" for m in range(glibc_minor, 16, -1)) + (f"manylinux2014_{arch}",)


TARGETS = (
    Target("windows-x86_64", "windows", ("win_amd64",), "win32", "AMD64", "Windows", "nt"),
    Target("macos-arm64", "darwin", ("macosx_14_0_arm64",), "darwin", "arm64", "Darwin", "posix"),
    Target("macos-x86_64", "darwin", ("macosx_14_0_x86_64",), "darwin", "x86_64", "Darwin", "posix"),
    Target("linux-x86_64", "linux", manylinux("x86_64"), "linux", "x86_64", "Linux", "posix"),
    Target("linux-aarch64", "linux", manylinux("aarch64"), "linux", "aarch64", "Linux", "posix"),
)


def versions(system: str) -> list[tuple[int, int]]:
    (lo_major, lo), (_, hi) = WHEEL_PYTHONS[system]
    return [(lo_major, minor) for minor in range(lo, hi + 1)]


def logical_lines(text: str) -> list[str]:
    """Requirement lines with backslash continuations joined and comments dropped."""
    out, cur = [], ""
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        cur += line
        if cur.strip():
            out.append(cur.strip())
        cur = ""
    if cur.strip():
        out.append(cur.strip())
    return out


def lines_for(text: str, env: dict[str, str]) -> list[str]:
    """The requirement lines (``name==version --hash=…``, marker removed) that apply in ``env``."""
    chosen = []
    for line in logical_lines(text):
        if line.startswith("-"):
            raise ValueError(f"unexpected option line in a lock file: {line!r}")
        parts = line.split(" --hash=")
        spec, hashes = parts[0], parts[1:]
        req, _, marker = spec.partition(";")
        if marker.strip() and not Marker(marker.strip()).evaluate(env):
            continue
        if "==" not in req or not hashes:
            raise ValueError(f"not pinned with hashes: {spec.strip()!r} (regenerate the lock: see its header)")
        chosen.append(req.strip() + "".join(f" --hash={h.strip()}" for h in hashes))
    return chosen


def check_target(target: Target, version: tuple[int, int], text: str, cache: Path) -> tuple[bool, str]:
    env = target.environment(version)
    lines = lines_for(text, env)
    with tempfile.TemporaryDirectory() as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text("\n".join(lines) + "\n", encoding="utf-8")
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
               "--only-binary=:all:", "--require-hashes", "--implementation", "cp",
               "--python-version", f"{version[0]}.{version[1]}", "--dest", str(cache), "-r", str(req)]
        for p in target.platforms:
            cmd += ["--platform", p]
        # Only the public index: a machine's own wheel folders and extra indexes (pip.conf's find-links,
        # extra-index-url) must not stand in for what a streamer's pip sees. The rest of pip's configuration (the
        # certificates of a TLS-inspecting proxy) stays.
        cmd += ["--index-url", os.environ.get("MINDFLOW_INDEX_URL", "https://pypi.org/simple")]
        env_vars = dict(os.environ, PIP_FIND_LINKS="", PIP_EXTRA_INDEX_URL="", PIP_NO_INDEX="0")
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env_vars, timeout=1800)
    pins = ", ".join(line.split(" ", 1)[0] for line in lines)
    if proc.returncode != 0:
        err = "\n".join(ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip())[-1500:]
        return False, f"{pins}\n{err}"
    return True, pins


def default_cache() -> Path:
    ci = Path(os.environ.get("MINDFLOW_CI_CACHE", "/var/cache/mindflow-ci"))
    if os.access(ci if ci.exists() else ci.parent, os.W_OK):
        return ci / "wheels"
    return Path.home() / ".cache" / "mindflow-wheels"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requirements", type=Path, default=ROOT / "requirements.txt")
    ap.add_argument("--cache", type=Path, default=None, help="where the wheels are kept between runs")
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--only", default="", help="check only targets whose name contains this (e.g. linux)")
    args = ap.parse_args(argv)
    cache = args.cache or default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    text = args.requirements.read_text(encoding="utf-8")
    jobs = [(t, v) for t in TARGETS if args.only in t.name for v in versions(t.system)]
    t0 = time.monotonic()
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        results = list(pool.map(lambda tv: check_target(tv[0], tv[1], text, cache), jobs))
    failed = 0
    for (target, version), (ok, detail) in zip(jobs, results):
        mark = "ok  " if ok else "FAIL"
        first, _, rest = detail.partition("\n")
        print(f"{mark} {target.name:<15} Python {version[0]}.{version[1]:<3} {first}")
        if not ok:
            failed += 1
            print("     " + rest.replace("\n", "\n     "))
    print(f"{len(jobs) - failed}/{len(jobs)} targets (platform, Python) resolve to wheels with pinned hashes "
          f"({time.monotonic() - t0:.0f} s; wheels in {cache})")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
