"""The command line's arguments: ``analyze``, ``calibrate``, ``history`` and ``models`` (:mod:`obs_mindflow.cli` runs
them), and the checks of their values (argparse errors, exit status 2)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from . import __version__
from .i18n import LANGUAGES

DEFAULT_CALIBRATION_S = 20.0


def _number(text: str, not_a_number: str, in_range, out_of_range: str) -> float:
    """``text`` as a float for argparse: ``ArgumentTypeError(not_a_number)`` when it is none, or
    ``ArgumentTypeError(out_of_range)`` when ``in_range(value)`` is false (``{text}``/``{value}`` in the messages)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(not_a_number.format(text=text)) from None
    if not in_range(value):
        raise argparse.ArgumentTypeError(out_of_range.format(text=text, value=value))
    return value


def _positive_rate(text: str) -> float:
    return _number(text, "--rate must be a number of analyses per second, got {text!r}",
                   lambda v: math.isfinite(v) and 0 <= v <= 120,
                   "--rate must be between 0 (every frame) and 120 Hz, got {text}")


def _language(text: str) -> str:
    """``--language``: a shipped catalogue's locale (``de-DE``; ``de_de`` is read as it)."""
    for lang in LANGUAGES:
        if lang.lower() == text.replace("_", "-").lower():
            return lang
    raise argparse.ArgumentTypeError(f"no catalogue for {text!r}: choose one of {', '.join(LANGUAGES)}")


def _percent(text: str) -> float:
    return _number(text, "not a number: {text!r}", lambda v: 0 <= v < 100,
                   "a percentage from 0 to below 100, got {value:g}")


def _seconds(text: str) -> float:
    return _number(text, "expected a number of seconds, got {text!r}", lambda v: math.isfinite(v) and v > 0,
                   "expected a positive number of seconds, got {text}")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m obs_mindflow",
                                 description="MindFlow: facial-expression self-monitoring for streamers.")
    ap.add_argument("--version", action="version", version=f"MindFlow {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    an = sub.add_parser("analyze", help="analyse a recorded video or a camera and write a session report",
                        description="Analyse a recorded stream (or a live camera) with the same engine as the OBS "
                                    "script and write the end-of-session report.")
    an.add_argument("video", nargs="*", type=Path, metavar="VIDEO",
                    help="a video file OpenCV/FFmpeg can read; several files or folders (searched recursively) make a "
                         "batch: one report per file, skipping files already analysed with the same settings")
    an.add_argument("--camera", type=int, metavar="N", help="analyse camera N live (0 = the first camera)")
    an.add_argument("--jobs", type=int, default=1, metavar="N",
                    help="a batch: analyse N files at once, each in its own process (default 1)")
    an.add_argument("--force", action="store_true",
                    help="a batch: analyse files again even when the history has them with the same model and "
                         "settings")
    an.add_argument("--model", default="", metavar="DIR",
                    help="model folder holding card.json (default: the bundled default; a bare name means models/NAME)")
    an.add_argument("--rate", type=_positive_rate, default=5.0, metavar="HZ",
                    help="analyses per second of video/camera time (default 5, as in OBS; 0 = every frame)")
    an.add_argument("--report-dir", type=Path, default=None, metavar="DIR",
                    help="where the session's report folder goes (default: ~/Documents/MindFlow or ~/MindFlow)")
    an.add_argument("--no-report", action="store_true", help="print the summary only; write no report folder")
    an.add_argument("--nudge", action="store_true",
                    help="print a break nudge when the rolling negative share stays high (off by default)")
    an.add_argument("--uncertain-below", type=_percent, default=0.0, metavar="PCT",
                    help="show 'uncertain' when the smoothed top probability is below PCT %% (default: the threshold "
                         "measured for the model, in its card)")
    an.add_argument("--language", type=_language, default="en-US", metavar="LANG",
                    help="the language of the summary and the report: " + ", ".join(LANGUAGES) + " (default en-US)")
    an.add_argument("--threads", type=int, default=1, metavar="N",
                    help="onnxruntime and OpenCV threads (default 1)")
    an.add_argument("--max-seconds", type=float, default=0.0, metavar="S",
                    help="stop after S seconds of video/camera time (default: the whole video; a camera runs until Ctrl-C)")
    an.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    cal = an.add_mutually_exclusive_group()
    cal.add_argument("--baseline", type=Path, metavar="FILE",
                     help="correct every reading with this personal baseline (made by `calibrate` with this model)")
    cal.add_argument("--calibrate-seconds", type=_seconds, metavar="S",
                     help="calibrate on the first S seconds of this video (the person as they usually are, talking "
                          "is fine; every frame of them), then analyse the whole video from the start with that "
                          "baseline")
    ca = sub.add_parser("calibrate", help="make a personal baseline from a video or a camera",
                        description="Record the model's reading of a person's resting face (looking at the camera as "
                                    "when streaming; talking is fine) and write it as a baseline file for "
                                    "`analyze --baseline` (the OBS script calibrates from its own panel).")
    src = ca.add_mutually_exclusive_group(required=True)
    src.add_argument("video", nargs="?", type=Path, help="a video file (a clip shorter than --seconds: the whole clip)")
    src.add_argument("--camera", type=int, metavar="N", help="calibrate from camera N live")
    ca.add_argument("--seconds", type=_seconds, default=DEFAULT_CALIBRATION_S, metavar="S",
                    help=f"how long to calibrate, seconds of video/camera time (default {DEFAULT_CALIBRATION_S:g})")
    ca.add_argument("--rate", type=_positive_rate, default=None, metavar="HZ",
                    help="analyses per second (default: every frame of a video — a calibration is short and more "
                         "frames make it steadier; 5 for a camera)")
    ca.add_argument("--model", default="", metavar="DIR", help="model folder (default: the bundled default)")
    ca.add_argument("--threads", type=int, default=1, metavar="N", help="onnxruntime and OpenCV threads (default 1)")
    ca.add_argument("--out", type=Path, required=True, metavar="FILE", help="the baseline file to write (JSON)")
    hi = sub.add_parser("history", help="print the history of sessions and write history.html",
                        description="Print the sessions recorded under the report folder (one row per finished "
                                    "session) and write history.html beside them.")
    hi.add_argument("--report-dir", type=Path, default=None, metavar="DIR",
                    help="the report folder (default: ~/Documents/MindFlow or ~/MindFlow)")
    hi.add_argument("--language", type=_language, default="en-US", metavar="LANG",
                    help="the language of history.html: " + ", ".join(LANGUAGES) + " (default en-US)")
    sub.add_parser("models", help="list the bundled models")
    return ap
