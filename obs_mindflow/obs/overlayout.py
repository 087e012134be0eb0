"""The overlay page as one load runs it: the loopback server (``obs_mindflow/overlay/server.py``) started, stopped
or moved to another port as the settings say, and what the engine publishes to — the state with the private numbers
left out while the streamer hides their negative share from viewers (the page is on stream).

No obspython: driven by the controller on OBS's UI thread; :meth:`ViewerOverlay.publish` runs on the engine's worker.
"""

from __future__ import annotations

from typing import Callable

from ..engine import views
from ..overlay.server import OverlayError, OverlayServer
from .settings import Settings


class ViewerOverlay:
    """What the engine publishes to (``SessionHost(overlay=...)``)."""

    def __init__(self, server: OverlayServer, hide_negative: bool) -> None:
        self.server = server
        self.hide_negative = hide_negative

    def publish(self, state: dict) -> None:
        self.server.publish(views.viewer_overlay_state(state, self.hide_negative))


class OverlayOutput:
    """The server (``server``, ``None`` while off) and its publisher (``viewer``). ``set_problem(area, message)``
    records a server that cannot start (area ``"overlay"``); ``log(text)`` says what happened."""

    def __init__(self, set_problem: Callable[[str, str], None], log: Callable[[str], None]) -> None:
        self.set_problem = set_problem
        self.log = log
        self.server: OverlayServer | None = None
        self.viewer: ViewerOverlay | None = None

    def apply(self, s: Settings) -> None:
        if self.server is not None and (not s.overlay_enabled or self.server.requested_port != s.overlay_port):
            self.stop()
            self.log("MindFlow: overlay stopped")
        if s.overlay_enabled and self.server is None:
            server = OverlayServer(port=s.overlay_port)
            try:
                server.start()
            except OverlayError as exc:
                self.set_problem("overlay", str(exc))
            else:
                self.server = server
                self.viewer = ViewerOverlay(server, s.hide_negative_share)
                self.set_problem("overlay", "")
                self.log(f"MindFlow: overlay at {server.url} (add it as a Browser source, about 420x360)")
        if not s.overlay_enabled:
            self.set_problem("overlay", "")
        if self.viewer is not None:
            self.viewer.hide_negative = s.hide_negative_share

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.server = None
        self.viewer = None
