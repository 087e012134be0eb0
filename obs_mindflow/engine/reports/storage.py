"""Where session reports live on disk, and how they are written safely.

Folder layout (under a configurable root, :func:`default_report_dir` by default)::

    <root>/2026-11-24T20-15-03/      the session's local start time, filesystem-safe (``-2``, ``-3`` … on a clash)
        UNFINISHED                   marker while the session runs (JSON: pid, host, start); removed when finished
        state.json                   the last checkpoint (everything needed to rebuild the statistics)
        summary.json                 written once at the end: ``"schema_version": 1``, model, labels, times, stats
        timeline.csv                 one row per timeline bin
        report.html                  self-contained page (inline CSS and SVG; no script, no network)

Every file is written atomically (temporary file in the same folder, fsync, ``os.replace``), so a crash or a power
cut leaves either the previous or the new version, never a torn one. Standard library only.
"""

from __future__ import annotations

import errno as _errno
import json
import logging
import os
import socket
import tempfile
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from ...errors import MindFlowError
from ...i18n import Said
from ..formatting import aware

SCHEMA_VERSION = 1
SUMMARY_FILE = "summary.json"
TIMELINE_FILE = "timeline.csv"
HTML_FILE = "report.html"
HISTORY_DB = "history.sqlite"      # the history across sessions (.history), beside the session folders
HISTORY_HTML = "history.html"
STATE_FILE = "state.json"
MARKER_FILE = "UNFINISHED"
UNRECOVERABLE_FILE = "UNRECOVERABLE"
FOLDER_TIME_FORMAT = "%Y-%m-%dT%H-%M-%S"


class ReportError(MindFlowError):
    """A session report or checkpoint could not be written (unwritable folder, a file in the way, a full disk…).

    The message names the folder, the cause and what to do. ``folder`` is the folder concerned; ``errno`` the OS
    error number (``errno.ENOSPC`` for a full disk) or ``None``. :class:`SessionRecorder` never raises it from
    ``add()`` or ``finish()``: it keeps the statistics in memory, retries at the next checkpoint, and ``finish()``
    returns it in :attr:`FinishedSession.error` (and says so in the summary text).
    """

    def __init__(self, message: str, folder: Path, errno: int | None = None, key: str = "", **values: Any) -> None:
        super().__init__(message, key, **values)
        self.folder = folder
        self.errno = errno

    @classmethod
    def of(cls, said: Said, folder: Path, errno: int | None = None) -> "ReportError":
        """The error whose message is ``said`` (English as its text, its key and values to say it in another
        language)."""
        return cls(str(said), Path(folder), errno, said.key, **said.values)

    @classmethod
    def from_os_error(cls, exc: OSError, folder: Path, *, during: str) -> "ReportError":
        code = exc.errno
        if code in (_errno.ENOSPC, getattr(_errno, "EDQUOT", -1)):
            why, fix = Said("problem.why_full"), Said("problem.fix_full")
        elif code in (_errno.EACCES, _errno.EPERM, _errno.EROFS):
            why, fix = Said("problem.why_readonly"), Said("problem.fix_readonly")
        elif code in (_errno.ENOTDIR, _errno.EEXIST):
            why, fix = Said("problem.why_in_the_way"), Said("problem.fix_in_the_way")
        else:
            why, fix = exc.strerror or str(exc), Said("problem.fix_other")     # the system's own words
        what = "checkpoint" if during == "checkpoint" else "report"
        msg = Said("problem.write", what=Said(f"problem.what_{what}"), directory=folder, why=why,
                   where=exc.filename or folder, fix=fix, then=Said(f"problem.then_{what}"))
        return cls.of(msg, folder, code)


def default_report_dir() -> Path:
    """Where reports go by default: ``~/Documents/MindFlow`` when ``~/Documents`` exists, else ``~/MindFlow``
    (the same rule on Windows, macOS and Linux)."""
    home = Path.home()
    docs = home / "Documents"
    return docs / "MindFlow" if docs.is_dir() else home / "MindFlow"



def session_folder_name(started_at: datetime) -> str:
    """``2026-11-24T20-15-03``: the local start time, safe on every filesystem (no ``:``)."""
    return aware(started_at).strftime(FOLDER_TIME_FORMAT)


def iso(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds")


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd`` (tests replace this to simulate a full disk)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def fsync_dir(folder: Path) -> None:
    if os.name == "nt":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, fsync, then ``os.replace``.

    Raises ``OSError`` (the temporary file is removed); a reader sees either the old or the new file, never a torn
    one, even when the process is killed mid-write.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o644)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        for attempt in range(5):
            try:
                os.replace(tmp, path)
                break
            except PermissionError:          # Windows: a reader (antivirus, indexer) holds the target briefly
                if os.name != "nt" or attempt == 4:
                    raise
                threading.Event().wait(0.05 * (attempt + 1))
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(path.parent)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if os.name == "nt":  # pragma: no cover - exercised on Windows only
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        ok = kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        kernel32.CloseHandle(handle)
        return bool(ok) and code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True



# Session folders a recorder of this process is writing (recovery leaves them alone). A recorder registers its folder
# when it creates it and unregisters it when it is done with it — finished, whether or not the report could be saved.
_LIVE_LOCK = threading.Lock()
_LIVE_FOLDERS: set[str] = set()


def register_live(folder: Path, live: bool) -> None:
    key = os.path.normcase(str(folder.resolve()))
    with _LIVE_LOCK:
        (_LIVE_FOLDERS.add if live else _LIVE_FOLDERS.discard)(key)


def is_live_here(folder: Path) -> bool:
    key = os.path.normcase(str(folder.resolve()))
    with _LIVE_LOCK:
        return key in _LIVE_FOLDERS


def create_session_folder(root: Path, started_at: datetime) -> Path:
    """Create ``root/<start time>[-N]`` with its ``UNFINISHED`` marker and register it as live. Raises ``OSError``
    (nothing is left behind)."""
    root.mkdir(parents=True, exist_ok=True)
    base = session_folder_name(started_at)
    for i in range(1, 1000):
        candidate = root / (base if i == 1 else f"{base}-{i}")
        try:
            os.mkdir(candidate)
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - a thousand sessions in one second
        raise FileExistsError(_errno.EEXIST, "too many session folders with the same start time", str(base))
    marker = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": started_at.isoformat(),
              "note": "MindFlow session in progress; finalised by the next session if it was interrupted"}
    register_live(candidate, True)
    try:
        atomic_write(candidate / MARKER_FILE, json.dumps(marker))
    except OSError:
        register_live(candidate, False)
        try:
            os.rmdir(candidate)
        except OSError:
            pass
        raise
    return candidate


def ensure_session_folder(root: Path, folder: Path | None, started_at: datetime) -> Path:
    """The session's folder: ``folder`` when it exists; a new one under ``root`` when there is none yet, or when it
    was removed during the session (a cloud sync, a cleaner, a drive unplugged and back) — made again, under the
    same name, with a warning, so the session's files land where the streamer looks for them. Raises ``OSError``."""
    if folder is not None and folder.is_dir():
        return folder
    made = create_session_folder(root, started_at)
    if folder is not None:
        register_live(folder, False)
        logging.getLogger(__name__).warning(
            "MindFlow: the session folder %s was removed during the session; MindFlow made it again (%s) and keeps "
            "the session there. If the report folder is on a removable or synced drive, keep it connected, or "
            "choose a local folder in the MindFlow settings.", folder, made)
    return made


def fallback_report_dir() -> Path:
    """Where a finished session's report goes when its report folder cannot take it (a full disk, a folder gone
    for good): ``MindFlow-unsaved`` in the system's temporary folder, often another drive (``TMPDIR``)."""
    return Path(tempfile.gettempdir()) / "MindFlow-unsaved"


def marker_says_alive(marker: Path) -> bool:
    """The ``UNFINISHED`` marker names another process on this machine that is still running."""
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
        pid, host = int(info["pid"]), str(info["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if host != socket.gethostname() or pid == os.getpid():
        return False
    return _pid_alive(pid)
