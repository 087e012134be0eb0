"""When a MindFlow session starts and ends: a pure state machine (no obspython), unit-tested on its own.

Rules:

- A session starts when streaming or recording starts (``OBS_FRONTEND_EVENT_STREAMING_STARTED`` /
  ``RECORDING_STARTED``), at script load when OBS is already streaming or recording, or by the *Start session* button.
- A session started by an output ends when **no output is active any more** (the matching ``*_STOPPED`` of the last
  one). A session started by the button runs until the button stops it — outputs starting or stopping meanwhile do
  not end it.
- The button stops any session. A new output start (or the button) begins a new session afterwards.
- ``OBS_FRONTEND_EVENT_SCRIPTING_SHUTDOWN`` and ``script_unload`` end the session (OBS unloads scripts *before* the
  outputs stop when it exits while live) and close the machine: nothing starts afterwards.
- Whatever the order and repetition of these events, every started session gets exactly one ``FINISH``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Action(enum.Enum):
    NONE = "none"
    START = "start"
    FINISH = "finish"


@dataclass(frozen=True)
class Transition:
    """What the caller must do (``action``) and why (``reason``, for the log)."""

    action: Action
    reason: str = ""

    def __bool__(self) -> bool:
        return self.action is not Action.NONE


_NONE = Transition(Action.NONE)


class SessionLifecycle:
    """Tracks the outputs and the session; each method returns the :class:`Transition` to carry out."""

    def __init__(self) -> None:
        self.streaming = False
        self.recording = False
        self.active = False
        self.manual = False          # the running session was started by the button
        self.closed = False
        self.started = 0             # sessions started
        self.finished = 0            # sessions finished (== started, or started - 1 while one runs)

    # -- helpers -----------------------------------------------------------------------------------------------
    @property
    def live(self) -> bool:
        """An output (stream or recording) is active."""
        return self.streaming or self.recording

    def _start(self, reason: str, manual: bool = False) -> Transition:
        if self.closed or self.active:
            return _NONE
        self.active, self.manual = True, manual
        self.started += 1
        return Transition(Action.START, reason)

    def _finish(self, reason: str) -> Transition:
        if not self.active:
            return _NONE
        self.active, self.manual = False, False
        self.finished += 1
        return Transition(Action.FINISH, reason)

    # -- events ------------------------------------------------------------------------------------------------
    def loaded(self, streaming: bool, recording: bool) -> Transition:
        """At script load: OBS may already be live (a reload mid-stream, a scene-collection switch)."""
        self.streaming, self.recording = bool(streaming), bool(recording)
        if self.live:
            return self._start("OBS was already " + ("streaming" if streaming else "recording") + " at script load")
        return _NONE

    def streaming_started(self) -> Transition:
        self.streaming = True
        return self._start("streaming started")

    def recording_started(self) -> Transition:
        self.recording = True
        return self._start("recording started")

    def streaming_stopped(self) -> Transition:
        self.streaming = False
        return self._output_stopped("streaming stopped")

    def recording_stopped(self) -> Transition:
        self.recording = False
        return self._output_stopped("recording stopped")

    def _output_stopped(self, reason: str) -> Transition:
        if self.manual or self.live:
            return _NONE
        return self._finish(reason + " (no output active any more)")

    def button(self) -> Transition:
        """The *Start/Stop session* button."""
        if self.active:
            return self._finish("stopped with the button")
        return self._start("started with the button", manual=True)

    def shutdown(self, reason: str = "OBS is shutting down scripting") -> Transition:
        """``SCRIPTING_SHUTDOWN`` or ``script_unload``: finish the session if one runs, start nothing afterwards."""
        t = self._finish(reason)
        self.closed = True
        return t
