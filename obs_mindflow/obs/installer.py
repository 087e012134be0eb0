"""The panel's "Install the missing packages" button: the install helper (``tools/install_obs_deps.py``) run for the
Python OBS uses, in a background thread, its output read line by line for progress. Standard library only: it runs
while numpy, OpenCV and onnxruntime are missing.

The helper is what a user runs by hand (install.md): it refuses a Python MindFlow cannot use, pip-installs the pinned,
hash-checked ``requirements.txt`` into a temporary folder, checks that the packages import and only then moves the
folder into place. pip reads its usual configuration (``pip.conf``, ``PIP_*`` variables: an index mirror, a proxy, or
``PIP_NO_INDEX`` + ``PIP_FIND_LINKS`` for a local folder of wheels).

Threads: :meth:`DepsInstall.start` and :meth:`DepsInstall.stop` on OBS's UI thread (a button, ``script_unload``);
the reading thread is the only writer of the state; :meth:`snapshot` and :meth:`take_lines` from any thread.
"""

from __future__ import annotations

import collections
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from . import deps

IDLE, RUNNING, DONE, FAILED = "idle", "running", "done", "failed"

#: ``(pattern, phase)``: the helper's and pip's output lines that move the progress on.
_PHASES = (
    (re.compile(r"^running: "), "starting pip"),
    (re.compile(r"^\s*(Collecting|Processing|Looking in|Obtaining)\b"), "collecting the packages"),
    (re.compile(r"^\s*Downloading\b"), "downloading"),
    (re.compile(r"^Installing collected packages"), "unpacking about 320 MB"),
    (re.compile(r"^Successfully installed"), "checking that the packages import"),
    (re.compile(r"^checked: the packages import"), "moving the packages into place"),
    (re.compile(r"^installed into "), "installed"),
)


@dataclass(frozen=True)
class InstallState:
    """``state``: idle, running, done or failed; ``phase``: the step now (running); ``packages``: packages pip has
    collected so far; ``elapsed_s``; ``message``: the outcome (done/failed: what happened, what to do)."""

    state: str
    phase: str = ""
    packages: int = 0
    elapsed_s: float = 0.0
    message: str = ""

    @property
    def running(self) -> bool:
        return self.state == RUNNING

    def describe(self) -> str:
        if self.state == RUNNING:
            got = f", {self.packages} packages so far" if self.packages else ""
            return f"Installing the packages: {self.phase or 'starting'} ({self.elapsed_s:.0f} s{got})…"
        if self.state == DONE:
            return "Packages installed. " + self.message
        if self.state == FAILED:
            return "Installing the packages failed: " + self.message
        return ""


class DepsInstall:
    """One run of the install helper. ``command``: the helper's argument list (default
    :func:`deps.helper_command` for the Python OBS uses); ``folder``: the dependency folder it fills."""

    def __init__(self, command: Sequence[str] | None = None, folder: Path | None = None,
                 env: dict | None = None, clock=time.monotonic) -> None:
        self.command = list(command or deps.helper_command())
        self.python = self.command[0]
        self.folder = Path(folder or deps.deps_dir())
        base = dict(os.environ if env is None else env)
        # OBS may point PYTHONHOME/PYTHONPATH at its own interpreter setup: the helper runs as a plain Python.
        self.env = {k: v for k, v in base.items() if k not in ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP")}
        self.env["PYTHONUNBUFFERED"] = "1"
        self.env.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        self.clock = clock
        self._lock = threading.Lock()
        self._state = InstallState(IDLE)
        self._t0 = 0.0
        self._lines: collections.deque[str] = collections.deque(maxlen=400)
        self._new: collections.deque[str] = collections.deque(maxlen=400)
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False

    # ---------------------------------------------------------------- control (UI thread)
    def start(self) -> InstallState:
        """Start the install in the background; returns at once. A problem found before starting (no write
        permission, the Python not found) ends it as failed without a thread."""
        if self._state.running:
            return self._state
        problem = deps.write_problem(self.folder)
        if not problem and not Path(self.python).is_file():
            problem = (f"the Python OBS uses was not found at {self.python}. "
                       f"To install by hand, run in a terminal: {deps.install_command()}")
        self._t0 = self.clock()
        if problem:
            self._set(InstallState(FAILED, message=problem))
            return self._state
        self._stopping = False
        self._set(InstallState(RUNNING, phase="starting"))
        self._thread = threading.Thread(target=self._run, name="mindflow-install", daemon=True)
        self._thread.start()
        return self._state

    def stop(self, timeout: float = 5.0) -> None:
        """End a running install (the script unloads): terminate the helper, join the thread. The helper leaves no
        half-filled folder in place (it installs into a temporary folder; the next install removes it)."""
        self._stopping = True
        proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                proc.terminate()
                proc.wait(timeout)
            except (OSError, subprocess.TimeoutExpired):
                try:
                    proc.kill()
                except OSError:
                    pass
        if self._thread is not None:
            self._thread.join(timeout)

    # ---------------------------------------------------------------- state (any thread)
    def snapshot(self) -> InstallState:
        with self._lock:
            s = self._state
        if s.running:
            return InstallState(s.state, s.phase, s.packages, self.clock() - self._t0, s.message)
        return s

    def take_lines(self) -> list[str]:
        """The helper's output lines since the last call (for the script log)."""
        out = []
        while self._new:
            try:
                out.append(self._new.popleft())
            except IndexError:
                break
        return out

    def output(self) -> str:
        return "\n".join(self._lines)

    # ---------------------------------------------------------------- the thread
    def _set(self, state: InstallState) -> None:
        with self._lock:
            self._state = state

    def _run(self) -> None:
        phase, packages = "starting", 0
        try:
            self._proc = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, env=self.env, cwd=str(deps.ROOT),
                                          text=True, encoding="utf-8", errors="replace", bufsize=1)
        except OSError as exc:
            self._set(InstallState(FAILED, message=f"could not run {self.python}: {exc}. To install by hand, run in "
                                                   f"a terminal: {deps.install_command()}",
                                   elapsed_s=self.clock() - self._t0))
            return
        assert self._proc.stdout is not None
        for raw in self._proc.stdout:
            line = raw.rstrip()
            if not line:
                continue
            self._lines.append(line)
            self._new.append(line)
            for rx, name in _PHASES:
                if rx.search(line):
                    phase = name
                    break
            if line.lstrip().startswith("Collecting"):
                packages += 1
            self._set(InstallState(RUNNING, phase, packages))
        rc = self._proc.wait()
        elapsed = self.clock() - self._t0
        if self._stopping:
            self._set(InstallState(FAILED, message="the install was stopped (the script was unloaded)",
                                   elapsed_s=elapsed))
        elif rc == 0:
            self._set(InstallState(DONE, "installed", packages, elapsed,
                                   f"They are in {self.folder} ({elapsed:.0f} s)."))
        else:
            self._set(InstallState(FAILED, packages=packages, elapsed_s=elapsed,
                                   message=deps.explain_install_failure(self.output(), rc, self.python)))
