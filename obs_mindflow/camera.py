"""The command line's live mode: ``python -m obs_mindflow analyze --camera N`` and ``calibrate --camera N``.

A live capture drives a :class:`~obs_mindflow.engine.host.SessionHost` — the OBS script's engine, built from the same
:class:`~obs_mindflow.engine.recipe.SessionRecipe` — frames through its one-slot mailbox and worker thread at the
chosen rate, timestamps on ``time.monotonic()`` as in OBS; a status line shows the latest result. The capture is any
opened ``cv2.VideoCapture`` (a camera; a video file reads the same way, faster than real time).
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, TextIO

from .engine.formatting import short_clock
from .engine.session.events import AWAY, NUDGE, Event
from .errors import MindFlowError


class CameraError(MindFlowError):
    """The camera cannot be opened or stopped delivering frames before anything was analysed."""


def open_camera(index: int) -> Any:
    """``cv2.VideoCapture(index)``, opened, or :class:`CameraError` saying what to check."""
    import cv2

    cap = cv2.VideoCapture(index)
    if not cap.isOpened():
        raise CameraError(f"cannot open camera {index}: is it connected, and not used by another program? "
                          f"(on Linux check /dev/video{index} and your permissions)")
    return cap


def print_event(event: Event, stream: TextIO = sys.stderr) -> None:
    """A nudge or an "away" on its own line of ``stream`` (the file and camera modes both show them)."""
    if event.kind in (NUDGE, AWAY):
        stream.write(f"\n[{event.kind}] {event.message}\n")
        stream.flush()


def run_live(host: Any, cap: Any, *, source: str, rate: float, max_seconds: float = 0.0, quiet: bool = False,
             stream: TextIO = sys.stderr, clock: Callable[[], float] = time.monotonic) -> tuple[Any, bool, str]:
    """One session of ``host`` (a started :class:`SessionHost`) fed from ``cap`` until it stops delivering frames,
    ``max_seconds`` have passed (0: no limit) or Ctrl-C. ``rate``: analyses per second (0: every frame). Returns
    ``(the finished session, interrupted by Ctrl-C, why the frames stopped or "")``; the host is closed (the
    report written) and ``cap`` released in every case."""
    unsubscribe = host.bus.subscribe(lambda e: print_event(e, stream), (NUDGE, AWAY))
    interval = 0.0 if rate == 0 else 1.0 / rate
    host.start_session(source)
    t0 = clock()
    next_t, last_status, interrupted, stopped = 0.0, -1.0, False, ""
    try:
        while True:
            ok, frame = cap.read()
            now = clock() - t0
            if not ok:
                stopped = f"{source} stopped delivering frames"
                break
            if max_seconds > 0 and now >= max_seconds:
                break
            if now >= next_t:
                host.submit(frame, t0 + now)
                next_t = max(next_t + interval, now) if interval else now
            if not quiet and now - last_status >= 0.5:
                last_status = now
                r, st = host.latest(), host.analyzer.stats()
                conf = f" {r.confidence * 100:.0f}%" if r.emotion else ""
                stream.write(f"\r{short_clock(now)} · {r.emotion or 'no face'}{conf} · {st.rate_hz:.1f} Hz · "
                             f"{st.dropped} dropped{' · ' + st.last_error if st.last_error else ''}\033[K")
                stream.flush()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        finished = host.close()
        unsubscribe()
        cap.release()
        if not quiet:
            stream.write("\n")
    return finished, interrupted, stopped


def calibrate_live(collector: Any, analyzer: Any, cap: Any, *, source: str, rate: float,
                   stream: TextIO = sys.stderr, clock: Callable[[], float] = time.monotonic) -> Any:
    """Frames from ``cap`` analysed one by one until ``collector`` (a ``BaselineCollector``) has its seconds; the
    baseline it makes (``BaselineError`` when refused). Raises :class:`CameraError` when the frames stop."""
    interval = 0.0 if rate == 0 else 1.0 / rate
    t0, next_t, seq = clock(), 0.0, 0
    try:
        while not collector.done:
            ok, frame = cap.read()
            if not ok:
                raise CameraError(f"{source} stopped delivering frames")
            now = clock() - t0
            if now >= next_t:
                seq += 1
                collector.add(analyzer.process(frame, now, seq))
                next_t = now + interval
                stream.write(f"\r{collector.progress().describe()}\033[K")
    finally:
        cap.release()
        stream.write("\n")
    return collector.finish(source=source)
