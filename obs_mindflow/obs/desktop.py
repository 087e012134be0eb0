"""Open a folder in the desktop's file manager without blocking (pure Python; no obspython)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ..i18n import Said


def open_folder_command(path: Path, platform: str = sys.platform) -> list[str] | None:
    """The command that opens ``path``; ``None`` on Windows (``os.startfile`` is used)."""
    if platform.startswith("win"):
        return None
    if platform == "darwin":
        return ["open", str(path)]
    return ["xdg-open", str(path)]


def open_folder(path: str | Path) -> str:
    """Create ``path`` if needed and open it (returns at once). Returns ``""`` or a message saying what failed."""
    path = Path(path).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return Said("problem.cannot_create_folder", path=path, detail=exc)
    cmd = open_folder_command(path)
    try:
        if cmd is None:
            os.startfile(str(path))  # type: ignore[attr-defined]  # Windows only
        else:
            subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True, close_fds=True)
    except (OSError, AttributeError) as exc:
        return Said("problem.cannot_open", path=path, detail=exc)
    return ""
