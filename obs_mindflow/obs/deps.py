"""Run-time dependencies of the OBS script: where they live, whether they import, how to install them.

Pure Python (standard library only): the OBS script imports this module *before* numpy, OpenCV or onnxruntime, so it
can still load — and say exactly what is missing and how to install it — when they are absent.

Design: OBS embeds its own Python. A Linux distribution's OBS links the system Python (Debian 12: ``/usr/bin/python3.11``,
Debian 13: 3.13, Debian unstable: 3.14, Ubuntu 24.04: 3.12) and has no Python setting; the official Windows and macOS
builds use the Python set in Tools > Scripts > Python Settings (3.6–3.12). Packages compiled for one Python version and platform do not load in another, so the
packages go to one folder **per Python version and platform inside the checkout**::

    <checkout>/.deps/py3.11-linux-x86_64/      (git-ignored)

filled by ``"<that python>" -m pip install --target <folder> -r requirements.txt`` — what
``tools/install_obs_deps.py`` runs — and put on ``sys.path`` by the script before it imports the engine. Nothing is
installed into the system's or OBS's own Python.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import Sequence

from ..engine.digest import file_sha256

#: The checkout's root (``obs_mindflow/obs/deps.py`` → two levels up from the package).
ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "requirements.txt"
DEPS_ROOT = ROOT / ".deps"
MARKER = ".mindflow-deps.json"

#: ``(import name, pip requirement name, what MindFlow uses it for)``.
REQUIRED = (
    ("numpy", "numpy", "arrays"),
    ("cv2", "opencv-python-headless<5", "face detection (OpenCV; version 5 has no Haar cascades)"),
    ("onnxruntime", "onnxruntime", "the expression model"),
)

#: The Python versions MindFlow runs on, by ``platform.system()`` (lower-case): those for which the pinned packages of
#: ``requirements.txt`` have wheels, within what OBS itself accepts there. Linux: a distribution's OBS runs scripts on
#: the Python it links, whatever its version. Windows/macOS: the official OBS accepts 3.6–3.12 in Python Settings
#: (OFFICIAL_OBS_PYTHON) and today's numpy/onnxruntime wheels start at 3.10. ``tools/check_wheels.py`` checks these in
#: CI (``pip download --only-binary=:all:`` per platform and version).
WHEEL_PYTHONS = {"linux": ((3, 9), (3, 14)), "windows": ((3, 10), (3, 12)), "darwin": ((3, 10), (3, 12))}
#: What the official OBS builds for Windows and macOS (obsproject.com, OBS 29–32) accept in Python Settings.
OFFICIAL_OBS_PYTHON = ((3, 6), (3, 12))
#: The Python to suggest where one must be installed for OBS.
RECOMMENDED_PYTHON = (3, 12)


def platform_tag(system: str | None = None, machine: str | None = None) -> str:
    """``linux-x86_64``, ``windows-x86_64``, ``darwin-arm64`` … (normalised ``platform.system()``/``machine()``)."""
    system = (system or platform.system() or sys.platform).lower()
    machine = (machine or platform.machine() or "unknown").lower()
    machine = {"amd64": "x86_64", "x64": "x86_64", "aarch64": "arm64"}.get(machine, machine)
    return f"{system}-{machine}"


def deps_dir(version: Sequence[int] | None = None, system: str | None = None, machine: str | None = None,
             root: Path = DEPS_ROOT) -> Path:
    """The dependency folder for a Python ``version`` (default: this interpreter) on this platform."""
    v = tuple(version or sys.version_info[:2])
    return root / f"py{v[0]}.{v[1]}-{platform_tag(system, machine)}"


def requirements_digest(path: Path = REQUIREMENTS) -> str:
    """A short hash of ``requirements.txt``: the marker records it so a changed file asks for a re-install."""
    try:
        return file_sha256(path)[:16]
    except OSError:
        return ""


@dataclass(frozen=True)
class DepStatus:
    """What importing the run-time packages gave. ``missing``: ``(import name, error text)`` for each that failed;
    ``versions``: ``{import name: version}`` for those that imported; ``folder``: the dependency folder on
    ``sys.path``; ``stale``: the folder was filled from another ``requirements.txt`` than the current one."""

    missing: tuple[tuple[str, str], ...]
    versions: dict
    folder: Path
    stale: bool = False

    @property
    def ok(self) -> bool:
        return not self.missing

    def summary(self) -> str:
        if self.ok:
            got = ", ".join(f"{k} {v}" for k, v in self.versions.items())
            return f"dependencies found ({got})" + (" — requirements.txt changed since they were installed; "
                                                     "re-run the install command" if self.stale else "")
        names = ", ".join(f"{name} ({err})" for name, err in self.missing)
        return f"missing dependencies: {names}"


def add_to_path(folder: Path | None = None) -> Path:
    """Put the dependency folder first on ``sys.path`` (even when it does not exist yet: a later reload of the
    script then finds a fresh install) and drop the import system's directory caches. Returns the folder."""
    folder = Path(folder or deps_dir())
    text = str(folder)
    if text not in sys.path:
        sys.path.insert(0, text)
    importlib.invalidate_caches()
    return folder


def check(folder: Path | None = None, modules: Sequence[str] | None = None) -> DepStatus:
    """Try importing each required package (a broken install — wrong Python version, missing DLL — fails here, not
    later). Never raises."""
    folder = Path(folder or deps_dir())
    missing, versions = [], {}
    for name in modules or [m for m, _, _ in REQUIRED]:
        try:
            mod = importlib.import_module(name)
            versions[name] = str(getattr(mod, "__version__", "?"))
        except Exception as exc:  # ImportError, OSError from a DLL, anything a broken wheel raises
            missing.append((name, f"{type(exc).__name__}: {exc}".strip()[:200]))
    if not missing and "cv2" in versions:
        import cv2  # noqa: F401 - imported above
        if not hasattr(sys.modules["cv2"], "CascadeClassifier"):
            missing.append(("cv2", f"OpenCV {versions['cv2']} has no CascadeClassifier (OpenCV 5 dropped it): "
                                   f"install opencv-python-headless<5"))
    stale = False
    marker = folder / MARKER
    if marker.is_file():
        try:
            import json
            stale = json.loads(marker.read_text(encoding="utf-8")).get("requirements") != requirements_digest()
        except (OSError, ValueError, AttributeError):
            stale = False
    return DepStatus(tuple(missing), versions, folder, stale)


# -------------------------------------------------------------------------------------------------------------------
# The install command for the Python OBS uses
# -------------------------------------------------------------------------------------------------------------------

def obs_python_executable(system: str | None = None, prefix: str | None = None,
                          version: Sequence[int] | None = None) -> str:
    """The interpreter of the Python that OBS embeds, as a command to type.

    Inside OBS ``sys.executable`` is OBS itself, never a Python: derive it instead. Linux (Debian/Ubuntu packages):
    ``/usr/bin/python3.X`` — the system Python OBS links; Windows: ``<prefix>\\python.exe`` (the folder set in
    Tools > Scripts > Python Settings); macOS: ``<prefix>/bin/python3.X`` (the framework set there)."""
    system = (system or platform.system()).lower()
    v = tuple(version or sys.version_info[:2])
    prefix = prefix if prefix is not None else sys.base_prefix
    if system == "windows":
        return str(PureWindowsPath(prefix) / "python.exe") if prefix else "python.exe"
    if system == "darwin":
        return f"{prefix}/bin/python{v[0]}.{v[1]}" if prefix else f"python{v[0]}.{v[1]}"
    if prefix in ("/usr", "", None):
        return f"/usr/bin/python{v[0]}.{v[1]}"
    return f"{prefix}/bin/python{v[0]}.{v[1]}"


def _quote(text: str, system: str) -> str:
    if system == "windows":
        return f'"{text}"' if (" " in text or not text) else text
    import shlex
    return shlex.quote(text)


def install_command(system: str | None = None, prefix: str | None = None, version: Sequence[int] | None = None,
                    root: Path = ROOT, machine: str | None = None) -> str:
    """The exact command that installs the dependencies for the Python OBS uses (to show in the script's
    description): ``"<that python>" "<checkout>/tools/install_obs_deps.py"``."""
    system = (system or platform.system()).lower()
    py = obs_python_executable(system, prefix, version)
    script = root / "tools" / "install_obs_deps.py"
    return f"{_quote(py, system)} {_quote(str(script), system)}"


def pip_command(python: str, target: Path, requirements: Path = REQUIREMENTS) -> list[str]:
    """The pip invocation the helper runs (also what a user can type by hand)."""
    return [python, "-m", "pip", "install", "--upgrade", "--no-warn-script-location", "--target", str(target),
            "-r", str(requirements)]


def supported_pythons(system: str | None = None) -> tuple[tuple[int, int], tuple[int, int]]:
    """``(lowest, highest)`` Python version MindFlow runs on with this platform's OBS (see :data:`WHEEL_PYTHONS`;
    another Unix is treated as Linux)."""
    system = (system or platform.system()).lower()
    return WHEEL_PYTHONS.get(system, WHEEL_PYTHONS["linux"])


def _v(version: Sequence[int]) -> str:
    return f"{version[0]}.{version[1]}"


def official_python_folder(version: Sequence[int], system: str, env: dict | None = None) -> str:
    """Where python.org's installer puts Python ``version`` — the folder to set in OBS's Python Settings (Windows:
    the per-user install, ``%LOCALAPPDATA%`` expanded when known)."""
    if system == "windows":
        env = os.environ if env is None else env
        base = env.get("LOCALAPPDATA") or "%LOCALAPPDATA%"
        return str(PureWindowsPath(base) / "Programs" / "Python" / f"Python{version[0]}{version[1]}")
    return f"/Library/Frameworks/Python.framework/Versions/{_v(version)}"


def find_pythons(system: str | None = None, env: dict | None = None) -> list[tuple[tuple[int, int], str]]:
    """Pythons installed in the usual places that OBS's Python Settings can point at and MindFlow supports on this
    platform, newest first: ``[((3, 12), folder), …]``. Windows: python.org's per-user and all-users folders;
    macOS: python.org's framework. Empty elsewhere."""
    system = (system or platform.system()).lower()
    env = os.environ if env is None else env
    lo, hi = supported_pythons(system)
    found = []
    for minor in range(hi[1], lo[1] - 1, -1):
        version = (3, minor)
        if system == "windows":
            roots = [Path(env.get("LOCALAPPDATA", "")) / "Programs" / "Python" if env.get("LOCALAPPDATA") else None,
                     Path(env.get("ProgramFiles", "C:\\Program Files")), Path("C:\\")]
            candidates = [r / f"Python3{minor}" for r in roots if r is not None]
            exe = "python.exe"
        elif system == "darwin":
            candidates = [Path(f"/Library/Frameworks/Python.framework/Versions/3.{minor}")]
            exe = f"bin/python3.{minor}"
        else:
            return []
        for folder in candidates:
            if (folder / exe).is_file():
                found.append((version, str(folder)))
                break
    return found


def python_version_problem(version: Sequence[int] | None = None, system: str | None = None,
                           installed: Sequence[tuple[tuple[int, int], str]] | None = None) -> str:
    """A message when MindFlow cannot run in OBS on this Python version and platform, else ``""``.

    Linux: any version the pinned packages have wheels for (a distribution's OBS links the system Python and has no
    Python setting). Windows/macOS: 3.10–3.12; the message names the exact Python folder to set in Tools > Scripts >
    Python Settings — one found on this computer (``installed``, default :func:`find_pythons`), else python.org's."""
    system = (system or platform.system()).lower()
    v = tuple(version or sys.version_info[:2])
    lo, hi = supported_pythons(system)
    if lo <= v <= hi:
        return ""
    if system not in ("windows", "darwin"):
        return (f"Python {_v(v)} cannot run MindFlow: its pinned packages (requirements.txt) have wheels for "
                f"Python {_v(lo)}–{_v(hi)} on Linux. Run this helper with the Python your OBS links (ldd "
                f"/usr/lib/*/libobs-scripting.so* | grep libpython), or use an OBS built with a Python in that "
                f"range.")
    where = "Windows" if system == "windows" else "macOS"
    olo, ohi = OFFICIAL_OBS_PYTHON
    installed = find_pythons(system) if installed is None else installed
    if installed:
        pv, folder = installed[0]
        fix = (f"Python {_v(pv)} is installed in {folder}: set that folder in OBS (Tools > Scripts > Python "
               f"Settings), restart OBS, and run this helper with it: {install_command(system, folder, pv)}")
    else:
        rv = RECOMMENDED_PYTHON
        fix = (f"Install Python {_v(rv)} {'(64-bit) ' if system == 'windows' else ''}from python.org, set its folder "
               f"{official_python_folder(rv, system)} in OBS (Tools > Scripts > Python Settings), restart OBS, and "
               f"run this helper with it: {install_command(system, official_python_folder(rv, system), rv)}")
    return (f"Python {_v(v)} cannot run MindFlow in OBS for {where}: OBS accepts Python {_v(olo)}–{_v(ohi)} "
            f"there and MindFlow's packages need {_v(lo)}–{_v(hi)}. {fix}")


def describe_missing(status: DepStatus, system: str | None = None, prefix: str | None = None,
                     version: Sequence[int] | None = None) -> str:
    """The text the script shows when packages are missing: what, where they will go, the two ways to install
    (the panel's button, or the exact command in a terminal), and the button to press afterwards."""
    cmd = install_command(system, prefix, version)
    names = ", ".join(name for name, _ in status.missing)
    details = "; ".join(f"{name}: {err}" for name, err in status.missing)
    v = tuple(version or sys.version_info[:2])
    return (f"MindFlow needs {names} in the Python OBS uses (Python {v[0]}.{v[1]}), and they are missing. "
            f"Press 'Install the missing packages' below (about 320 MB, into {status.folder}; OBS stays usable), "
            f"or run in a terminal:\n"
            f"{cmd}\n"
            f"and then press 'Check again'. Details: {details}")


def helper_command(python: str | None = None, root: Path = ROOT) -> list[str]:
    """The install helper for the Python OBS uses, as an argument list (what the panel's button runs)."""
    return [python or obs_python_executable(), "-u", str(root / "tools" / "install_obs_deps.py")]


def write_problem(folder: Path | None = None) -> str:
    """``""`` when the dependency folder's parent can be created and written, else what to do."""
    parent = Path(folder or deps_dir()).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        import tempfile
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".write-test-"):
            pass
    except OSError as exc:
        return (f"MindFlow cannot write its packages folder {parent} ({exc.strerror or exc}): move the MindFlow "
                f"folder somewhere you can write (your home folder), or give yourself write permission there")
    return ""


def refresh_imports(folder: Path | None = None) -> None:
    """Make a freshly installed dependency folder importable in this (running) interpreter: on ``sys.path``, and the
    import system's caches dropped — ``importlib.invalidate_caches`` alone keeps the "no finder" that Python cached for
    the folder while it did not exist (3.9, 3.10)."""
    folder = Path(folder or deps_dir())
    text = str(folder)
    if text not in sys.path:
        sys.path.insert(0, text)
    sys.path_importer_cache.pop(text, None)
    importlib.invalidate_caches()


#: ``(pattern in the helper's output, what went wrong)``, first match wins.
_FAILURES = (
    (r"No module named pip\b", "no_pip"),
    (r"THESE PACKAGES DO NOT MATCH THE HASHES", "hashes"),
    (r"No space left on device|Errno 28", "disk"),
    (r"Permission denied|Errno 13|Read-only file system|Errno 30", "permission"),
    ((r"Temporary failure in name resolution|Name or service not known|Failed to establish a new connection|"
      r"Network is unreachable|Could not fetch URL|ConnectTimeout|ReadTimeout|timed out|Connection refused|"
      r"No matching distribution found|Could not find a version that satisfies|getaddrinfo failed|"
      r"SSLError|CERTIFICATE_VERIFY_FAILED"), "network"),
)


def explain_install_failure(output: str, returncode: int | None, python: str, system: str | None = None) -> str:
    """A message for a failed install: what went wrong (no pip, no network, no write permission, disk full, a
    download that does not match its hash, a Python MindFlow cannot use) and the command to run by hand."""
    import re

    system = (system or platform.system()).lower()
    cmd = install_command(system)
    by_hand = f" To install by hand, run in a terminal: {cmd}"
    kind = next((k for pattern, k in _FAILURES if re.search(pattern, output)), "")
    if returncode == 2 and not kind:           # the helper refused this Python (python_version_problem)
        last = [ln for ln in output.strip().splitlines() if ln.strip()]
        return (last[-1] if last else f"{python} cannot run MindFlow's packages") + by_hand
    if kind == "no_pip":
        fix = ("on Debian/Ubuntu: sudo apt install python3-pip" if system == "linux" else
               "reinstall Python from python.org (it includes pip)")
        return f"pip is missing for {python} ({fix}), then press Install again.{by_hand}"
    if kind == "network":
        return ("the packages could not be downloaded: no network connection to the Python package index "
                f"(pypi.org), or a proxy or firewall blocks it. Connect and press Install again.{by_hand}")
    if kind == "permission":
        return (f"no permission to write {DEPS_ROOT}: move the MindFlow folder to your home folder (or make it "
                f"writable) and press Install again.{by_hand}")
    if kind == "disk":
        return f"the disk is full: the packages need about 320 MB (and as much again while installing).{by_hand}"
    if kind == "hashes":
        return ("a downloaded package did not match the hash pinned in requirements.txt (a broken download or "
                f"mirror): press Install again.{by_hand}")
    tail = " | ".join(ln.strip() for ln in output.strip().splitlines()[-3:] if ln.strip())
    return f"the install failed (exit status {returncode}): {tail or 'no output'}.{by_hand}"


def _install(python: str, target: Path, requirements: Path, verbose: bool = True) -> int:
    """pip-install into a fresh sibling folder, check it imports, then swap it in (a half-done install never looks
    complete). Returns a process exit status."""
    import json
    import shutil
    import subprocess

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + f".partial-{os.getpid()}")
    for stale in target.parent.glob(target.name + ".partial-*"):   # an earlier install that was interrupted
        shutil.rmtree(stale, ignore_errors=True)
    cmd = pip_command(python, tmp, requirements)
    if verbose:
        print("running:", " ".join(_quote(c, platform.system().lower()) for c in cmd), flush=True)
    try:
        rc = subprocess.call(cmd)
    except KeyboardInterrupt:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if rc != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"pip failed (exit status {rc}). If pip itself is missing for {python}: on Debian/Ubuntu run "
              f"`sudo apt install python3-pip`; on Windows/macOS reinstall Python from python.org (it includes pip).",
              file=sys.stderr)
        return rc
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import numpy, cv2, onnxruntime; "
             "assert hasattr(cv2, 'CascadeClassifier'), 'OpenCV without CascadeClassifier'; "
             "print('numpy', numpy.__version__, 'opencv', cv2.__version__, 'onnxruntime', onnxruntime.__version__)")
    rc = subprocess.call([python, "-c", probe, str(tmp)])
    if rc != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"the installed packages do not import in {python}; nothing was changed in {target}", file=sys.stderr)
        return rc
    if verbose:
        print("checked: the packages import", flush=True)
    (tmp / MARKER).write_text(json.dumps({"requirements": requirements_digest(requirements), "python": python}),
                              encoding="utf-8")
    old = target.with_name(target.name + f".old-{os.getpid()}")
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
    if verbose:
        print(f"installed into {target}", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``<OBS's python> tools/install_obs_deps.py [--check] [--target DIR]``: install (or check) the run-time
    packages for *this* interpreter into its ``.deps`` folder. Run it with the Python OBS uses."""
    import argparse

    ap = argparse.ArgumentParser(prog="install_obs_deps.py", description=main.__doc__)
    ap.add_argument("--check", action="store_true", help="only check; exit 0 when everything imports, else 1")
    ap.add_argument("--target", type=Path, default=None, help="install here instead of the .deps folder")
    ap.add_argument("--if-missing", action="store_true",
                    help="do nothing when the folder already imports and matches requirements.txt")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args(argv)
    problem = python_version_problem()
    if not problem and platform.system() == "Windows" and sys.maxsize <= 2**32:
        problem = ("This is a 32-bit Python: OBS for Windows is 64-bit and needs a 64-bit Python "
                   "(python.org: \"Windows installer (64-bit)\"). " + python_version_problem((3, 0), "windows"))
    if problem:
        print(problem, file=sys.stderr)
        return 2
    target = args.target or deps_dir()
    if args.check or args.if_missing:
        add_to_path(target)
        st = check(target)
        print(st.summary() if st.ok else describe_missing(st))
        if args.check:
            return 0 if st.ok and not st.stale else 1
        if st.ok and not st.stale and (target / MARKER).is_file():
            return 0
    return _install(sys.executable, target, REQUIREMENTS, verbose=not args.quiet)
