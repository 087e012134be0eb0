"""The streamer's private dock page: its secret token, where the token is kept, and which requests it opens.

The dock (``dock.html`` beside this module) is a page for an OBS *Custom Browser Dock* (View > Docks > Custom
Browser Docks…), served by the overlay's loopback server at ``/dock/<token>``. It shows what the streamer may have
hidden from viewers (the negative share, its trend, the moments, the last error), so besides the overlay's own
protections (loopback only, ``Host`` check, GET/HEAD only, no CORS headers: another web page in the streamer's
browser cannot read a response) the dock's URL carries a token that the overlay's URL does not: a co-streamer given
the overlay URL, another user of the machine or a page guessing at ports cannot open it.

The token is made once per install (``secrets``, 192 bits, URL-safe base64: 32 characters) and kept in
:func:`default_token_path` — a per-user file, so the dock's URL stays the same across OBS starts and scene
collections (the script's own settings belong to one scene collection). Delete the file for a new URL.

Routes under the token (the server compares the token in constant time; any other token: ``403``):

- ``GET /dock/<token>`` (or ``…/``) — the page;
- ``GET /dock/<token>/state.json`` — the dock's state (:mod:`obs_mindflow.engine.dockview`);
- ``GET /dock/<token>/events`` — its Server-Sent Events stream (as ``/events`` for the overlay).

Standard library only.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
import sys
from pathlib import Path

from ..errors import MindFlowError

__all__ = ["DOCK_PREFIX", "DockTokenError", "default_token_path", "load_or_create_token", "new_token", "route",
           "valid_token", "redact"]

DOCK_PREFIX = "/dock"
TOKEN_BYTES = 24                                  # 192 bits → 32 URL-safe characters
TOKEN_FILE = "dock-token"
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{22,128}")
#: What follows the token: the page, its state, its stream.
SUBPATHS = ("", "/state.json", "/events")


class DockTokenError(MindFlowError, ValueError):
    """A token that cannot protect the dock (too short, or characters a URL would mangle)."""


def new_token() -> str:
    """A fresh unguessable token: 32 URL-safe characters."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def valid_token(token: object) -> bool:
    return isinstance(token, str) and _TOKEN_RE.fullmatch(token) is not None


def check_token(token: str) -> str:
    """``token``, or :class:`DockTokenError` saying what a token must be."""
    if not valid_token(token):
        raise DockTokenError("the dock token must be 22 to 128 characters of A-Z, a-z, 0-9, '-' and '_' "
                             "(make one with obs_mindflow.overlay.dock.new_token())")
    return token


def default_token_path(env: dict[str, str] | None = None, platform: str = sys.platform) -> Path:
    """Where the token is kept: ``%APPDATA%\\MindFlow\\dock-token`` on Windows, ``~/Library/Application
    Support/MindFlow/dock-token`` on macOS, ``$XDG_CONFIG_HOME/MindFlow/dock-token`` (``~/.config`` by default)
    elsewhere."""
    env = os.environ if env is None else env
    if platform.startswith("win") and env.get("APPDATA"):
        base = Path(env["APPDATA"])
    elif platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "MindFlow" / TOKEN_FILE


def load_or_create_token(path: Path | None = None) -> tuple[str, str]:
    """The install's token from ``path`` (default: :func:`default_token_path`), made and saved (owner-only
    permissions, written atomically) on first use or when the file holds no valid token. Returns ``(token,
    note)``: ``note`` is ``""``, or says why the token could not be kept (it then lasts until OBS closes the
    script, and the dock's URL changes at the next start). Never raises."""
    path = default_token_path() if path is None else Path(path)
    try:
        text = path.read_text(encoding="ascii").strip()
        if valid_token(text):
            return text, ""
    except (OSError, UnicodeDecodeError):
        pass
    token = new_token()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(token + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        return token, (f"the dock's token could not be saved in {path} ({exc.strerror or exc}): its URL changes "
                       f"each time OBS starts the script")
    return token, ""


def route(path: str, token: str | None) -> str | None:
    """For a request path under :data:`DOCK_PREFIX`: what it asks for (one of :data:`SUBPATHS`, or another
    sub-path, which the server answers with 404), or ``None`` when the token is missing or wrong (403). The token
    is compared in constant time."""
    rest = path[len(DOCK_PREFIX) + 1:] if path.startswith(DOCK_PREFIX + "/") else ""
    given, slash, sub = rest.partition("/")
    if token is None or not hmac.compare_digest(given.encode("utf-8", "replace"), token.encode("ascii")):
        return None
    return slash + sub


_REDACT_RE = re.compile(r"(/dock/)[^/\s?#]+")


def redact(text: str) -> str:
    """``text`` with any dock token in it replaced by ``…`` (for log lines: OBS logs are shared for support)."""
    return _REDACT_RE.sub(r"\1…", text)
