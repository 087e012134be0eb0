"""The script log: ``script_log`` from the threads OBS runs the script's callbacks on, and a queue for every other
thread (the engine's worker, the overlay server, the checkpoint writer, UI-thread tasks), written by the next timer
call; and the handler that forwards the package's ``logging`` records to it.

Part of the OBS adapter (imports obspython). ``script_log`` only knows the calling script inside OBS's own callbacks
(elsewhere OBS labels the line "[Unknown Script]"), hence the queue.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import textwrap
import threading
from typing import Iterator

import obspython as obs

_OBS_LEVEL = {logging.DEBUG: "LOG_DEBUG", logging.INFO: "LOG_INFO", logging.WARNING: "LOG_WARNING",
              logging.ERROR: "LOG_ERROR", logging.CRITICAL: "LOG_ERROR"}

LOG_WIDTH = 120                 # characters per script-log line (wrapped beyond)
PACKAGE_LOGGER = "obs_mindflow"


class ScriptLog:
    """``script_log`` for the threads OBS calls the script on; lines from other threads (the engine's worker, the
    overlay server, the checkpoint writer) are queued and written by :meth:`flush` from the next timer call, because
    ``script_log`` only knows the calling script inside OBS's own callbacks."""

    def __init__(self) -> None:
        self._threads: set[int] = set()
        self._queue: collections.deque = collections.deque(maxlen=500)
        self._local = threading.local()
        self.dropped = 0

    def bind_thread(self) -> None:
        """Mark the calling thread as one OBS runs the script on (UI thread at load, graphics thread at tick)."""
        self._threads.add(threading.get_ident())

    def log(self, level: int, message: str) -> None:
        if threading.get_ident() in self._threads and not getattr(self._local, "queued", False):
            self._write(level, message)
        else:
            self.queue(level, message)

    @contextlib.contextmanager
    def queued(self) -> Iterator[None]:
        """Queue every line of the calling thread meanwhile: for work OBS does not run as one of the script's
        callbacks (a UI-thread task), where ``script_log`` would not know the script ("[Unknown Script]")."""
        before = getattr(self._local, "queued", False)
        self._local.queued = True
        try:
            yield
        finally:
            self._local.queued = before

    def queue(self, level: int, message: str) -> None:
        """Written by the next :meth:`flush` (from a call outside OBS's script callbacks: a UI-thread task)."""
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append((level, message))

    def debug(self, message: str) -> None:
        self.log(logging.DEBUG, message)

    def info(self, message: str) -> None:
        self.log(logging.INFO, message)

    def warning(self, message: str) -> None:
        self.log(logging.WARNING, message)

    def flush(self) -> None:
        while self._queue:
            try:
                level, message = self._queue.popleft()
            except IndexError:
                break
            self._write(level, message)

    @staticmethod
    def _write(level: int, message: str) -> None:
        """One ``script_log`` call per line; long prose lines are wrapped (OBS's Script Log window does not wrap);
        a line naming a path or a command stays whole, so it can be copied."""
        obs_level = getattr(obs, _OBS_LEVEL.get(level, "LOG_INFO"))
        for line in str(message).splitlines() or [""]:
            pieces = [line] if len(line) <= LOG_WIDTH or "/" in line or "\\" in line else textwrap.wrap(
                line, LOG_WIDTH, subsequent_indent="    ", break_long_words=False, break_on_hyphens=False)
            for piece in pieces or [""]:
                obs.script_log(obs_level, piece)


class LogHandler(logging.Handler):
    """Forwards the package's ``logging`` records (engine, report, overlay) to the script log."""

    def __init__(self, sink: ScriptLog) -> None:
        super().__init__(logging.INFO)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.sink.log(record.levelno, f"MindFlow {record.name.rsplit('.', 1)[-1]}: {record.getMessage()}")
        except Exception:  # noqa: BLE001, S110 - logging must never raise into the engine
            pass


class PackageLogging:
    """The package logger (``obs_mindflow``) forwarded to a :class:`ScriptLog` for one load: :meth:`attach` at load,
    :meth:`detach` at unload (the logger outlives the load: its level is restored)."""

    def __init__(self, sink: ScriptLog) -> None:
        self.sink = sink
        self._handler: LogHandler | None = None
        self._old_level = logging.NOTSET

    def attach(self) -> None:
        pkg = logging.getLogger(PACKAGE_LOGGER)
        self._handler = LogHandler(self.sink)
        pkg.addHandler(self._handler)
        self._old_level = pkg.level
        if pkg.level == logging.NOTSET or pkg.level > logging.INFO:
            pkg.setLevel(logging.INFO)

    def detach(self) -> None:
        if self._handler is not None:
            pkg = logging.getLogger(PACKAGE_LOGGER)
            pkg.removeHandler(self._handler)
            pkg.setLevel(self._old_level)
            self._handler = None
