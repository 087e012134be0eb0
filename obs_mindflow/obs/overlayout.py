"""The overlay page as one load runs it: the loopback server (``obs_mindflow/overlay/server.py``) started, stopped
or moved to another port as the settings say, and what the engine publishes to — the state with the private numbers
left out while the streamer hides their negative share from viewers (the page is on stream) — and the streamer's
private dock (``/dock/<token>``, :mod:`obs_mindflow.overlay.dock`), which gets everything, plus the panel's last error.

No obspython: driven by the controller on OBS's UI thread; :meth:`ViewerOverlay.publish` runs on the engine's worker.
"""

from __future__ import annotations

import socket
import threading
from typing import TYPE_CHECKING, Callable

from ..engine import views
from ..i18n import Said, Words
from ..overlay.dock import load_or_create_token
from ..overlay.server import OverlayError, OverlayPortError, OverlayServer
from .settings import Settings

if TYPE_CHECKING:
    from ..engine.host import SessionHost


class ViewerOverlay:
    """What the engine publishes to (``SessionHost(overlay=...)``): the viewers' state to the overlay's routes, the
    dock's (unfiltered, :mod:`obs_mindflow.engine.dockview`) to the dock's only. ``error``: the panel's last error,
    shown by the dock (set from the UI thread, read on the engine's worker)."""

    def __init__(self, server: OverlayServer, hide_negative: bool, words: Words | None = None) -> None:
        self.server = server
        self.hide_negative = hide_negative
        self.words = words                 # the viewers' language (the page's words and the emotion names)
        self.error = ""
        self._dock: dict = {}
        self._lock = threading.Lock()      # the worker's states and the UI thread's repeats, in order

    def publish(self, state: dict) -> None:
        self.server.publish(views.viewer_overlay_state(state, self.hide_negative, self.words))

    def publish_dock(self, state: dict | None = None) -> None:
        """The dock's state (``None``: the last one again, e.g. with a new error or before any engine)."""
        with self._lock:
            self._dock = state = dict(state if state is not None else self._dock)
            extra = dict(state.get("dock") or {})
            extra.update(hidden_from_viewers=self.hide_negative, error=self.error or extra.get("problem", ""))
            self.server.publish_dock({**state, "dock": extra})


def port_taken(port: int) -> Said:
    """The panel's message for a taken overlay port, naming the next free port above it — the same one at every
    settings change while nothing else changes, so the message is logged once."""
    free = next((p for p in range(port + 1, min(port + 200, 65536)) if _bindable(p)), None)
    return Said("problem.port_taken_free", port=port, free=free) if free else Said("problem.port_taken", port=port)


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class OverlayOutput:
    """The server (``server``, ``None`` while off) and its publisher (``viewer``). ``set_problem(area, message)``
    records a server that cannot start (area ``"overlay"``); ``log(text)`` says what happened."""

    def __init__(self, set_problem: Callable[[str, str], None], log: Callable[[str], None]) -> None:
        self.set_problem = set_problem
        self.log = log
        self.server: OverlayServer | None = None
        self.viewer: ViewerOverlay | None = None
        self.error = ""

    def apply(self, s: Settings, words: Words | None = None) -> None:
        """Start, move or stop the server as ``s`` says; ``words``: the viewers' language (from the next state on)."""
        if self.server is not None and (not s.overlay_enabled or self.server.requested_port != s.overlay_port):
            self.stop()
            self.log("MindFlow: overlay stopped")
        started = s.overlay_enabled and self.server is None
        if started:
            token, note = load_or_create_token()
            if note:
                self.log(f"MindFlow: {note}")
            server = OverlayServer(port=s.overlay_port, dock_token=token)
            try:
                server.start()
            except OverlayPortError as exc:
                self.set_problem("overlay", port_taken(exc.port))
            except OverlayError as exc:
                self.set_problem("overlay", str(exc))
            else:
                self.server = server
                self.viewer = ViewerOverlay(server, s.hide_negative_share, words)
                self.viewer.error = self.error
                self.set_problem("overlay", "")
                self.log(f"MindFlow: overlay at {server.url} (add it as a Browser source, about 420x360)")
        if not s.overlay_enabled:
            self.set_problem("overlay", "")
        if self.viewer is not None:
            self.viewer.words = words
        if self.viewer is not None and (self.viewer.hide_negative != s.hide_negative_share or started):
            self.viewer.hide_negative = s.hide_negative_share
            self.viewer.publish_dock()

    def refresh(self, host: SessionHost | None) -> None:
        """Publish ``host``'s overlay state now (an event outside a session: no frame will publish it)."""
        if self.viewer is not None and host is not None:
            self.viewer.publish(host.overlay_state())

    def set_error(self, error: str) -> None:
        """The panel's last error (``""``: none), shown by the dock at once."""
        self.error = error
        if self.viewer is not None and self.viewer.error != error:
            self.viewer.error = error
            self.viewer.publish_dock()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.server = None
        self.viewer = None
