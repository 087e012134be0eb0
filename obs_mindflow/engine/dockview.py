"""What the streamer's private dock shows: the overlay state *before* anything is hidden from viewers, plus the figures
only the streamer sees (block ``dock``). Published by :class:`~obs_mindflow.engine.host.SessionHost` to the overlay
server's dock channel (``/dock/<token>/…``, :mod:`obs_mindflow.overlay.dock`), never to the viewers' overlay.

Pure Python (no numpy). Dock state schema: every key of :func:`obs_mindflow.engine.views.overlay_state` (the
session's ``negative_share``, ``rolling_negative_share`` and ``trend`` even while they are hidden from viewers),
plus::

    "dock": {"stale": false,            # frames are wanted but none was analysed for a few seconds (webcam off?)
             "rate_hz": 4.9,            # analyses per second achieved
             "moments": [{"id": 3, "title": "Big laugh", "emotion": "happy", "negative": false,
                          "start_s": 754.2,   # seconds of session time
                          "clock": "20:41",   # local wall time of its start ("" when unknown)
                          "seconds": 6.5, "open": false}, ...],   # oldest first, the last MAX_MOMENTS
             "moments_total": 7,        # moments so far in this session (or the last one)
             "nudge": {"message": "…", "time_s": 1210.0} | null,  # the session's last nudge (session time)
             "problem": "",             # an analysis or report error of the engine, in plain words ("" none)
             "hidden_from_viewers": true,   # added by the OBS side: the viewers' overlay leaves the share out
             "error": ""}               # added by the OBS side: the panel's last error, else ``problem``
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

__all__ = ["MAX_MOMENTS", "dock_state"]

#: The dock lists at most this many moments (the newest); ``moments_total`` counts them all.
MAX_MOMENTS = 30


def _moments(recorder: Any) -> tuple[list[dict[str, Any]], int]:
    moments = recorder.session.moments() if recorder is not None else ()
    started = recorder.started_at if recorder is not None else None
    out = []
    for m in moments[-MAX_MOMENTS:]:
        clock = (started + timedelta(seconds=m.start_s)).astimezone().strftime("%H:%M") if started else ""
        out.append({"id": m.id, "title": m.title, "emotion": m.emotion, "negative": m.negative,
                    "start_s": round(m.start_s, 1), "clock": clock, "seconds": round(m.seconds, 1), "open": m.open})
    return out, len(moments)


def _problem(recorder: Any, stats: Any) -> str:
    """The engine's own trouble, in the words the status line uses."""
    parts = []
    if stats is not None and stats.errors:
        parts.append(f"the analysis failed on {stats.errors} frame{'s' if stats.errors != 1 else ''}; last: "
                     f"{stats.last_error}")
    error = recorder.last_error if recorder is not None else None
    if error is not None:
        parts.append(str(error))
    return "; ".join(parts)


def dock_state(state: dict[str, Any], view: Any, recorder: Any, stats: Any) -> dict[str, Any]:
    """The dock's state (schema above): ``state`` is :func:`~obs_mindflow.engine.views.overlay_state` of ``view`` (a
    :class:`~obs_mindflow.engine.views.LiveView`), ``recorder`` the running or last
    :class:`~obs_mindflow.engine.reports.recorder.SessionRecorder` (``None`` before the first), ``stats`` the
    Analyzer's :class:`~obs_mindflow.engine.pipeline.AnalyzerStats`. ``state`` is not modified."""
    moments, total = _moments(recorder)
    nudges = recorder.nudges if recorder is not None else ()
    nudge = {"message": nudges[-1].message, "time_s": round(nudges[-1].time_s, 1)} if nudges else None
    return {**state, "dock": {"stale": bool(view.stale), "rate_hz": round(float(view.rate_hz), 2),
                              "moments": moments, "moments_total": total, "nudge": nudge,
                              "problem": _problem(recorder, stats)}}
