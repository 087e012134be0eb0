"""Which OBS MindFlow runs in and what it offers — version, recording chapters, Browser source, canvases — and the
recording-chapter helper.

Part of the OBS adapter (imports obspython). Features are detected from what this OBS's ``obspython`` exposes and
which source types are registered, never assumed from the version alone (a distribution may build OBS without the
browser plugin, as Debian does). :func:`detect` never raises: against an ``obspython`` that lacks a call it reports
the feature as absent.

- **Recording chapters** (OBS ≥ 30.2): ``obs_frontend_recording_add_chapter(name)`` marks the current recording
  position. Only the Hybrid MP4 format (Settings > Output > Recording > Recording Format, ``RecFormat2=hybrid_mp4``)
  takes chapters: OBS then logs ``Adding chapter "NAME" at HH:MM:SS.mmm`` and returns true; for MKV and the others it
  returns false. :class:`ChapterMarker` wraps that for MindFlow's features (emotion "moments").
- **Browser source**: the ``browser_source`` type (obs-browser) — present in the Windows, macOS and Flatpak builds,
  absent from Debian's and Ubuntu's packages.
- **Canvases** (OBS ≥ 31): ``obs_frontend_get_canvases`` / ``obs_get_main_canvas``.
"""

from __future__ import annotations

import logging
import platform
import re
import sys
from dataclasses import dataclass
from typing import Any, Callable

import obspython as obs

from ..i18n import Words

log = logging.getLogger("obs_mindflow")

BROWSER_SOURCE = "browser_source"
#: The first OBS with obs_frontend_recording_add_chapter.
CHAPTERS_SINCE = (30, 2)
#: Where the moments are when the recording cannot take them.
REPORT_NOTE = "The session's report lists its moments as chapters (to paste into a video description)."


@dataclass(frozen=True)
class Capabilities:
    """What this OBS offers. ``version`` is ``(major, minor, patch)`` (``(0, 0, 0)`` when unknown) and
    ``version_text`` OBS's own string (e.g. ``"32.2.2"``, ``"30.2.3-3"``)."""

    version: tuple[int, int, int]
    version_text: str
    chapters: bool
    browser_source: bool
    canvases: bool
    system: str
    python: str

    def log_line(self) -> str:
        """One line for the script log at load."""
        def yes(flag: bool) -> str:
            return "yes" if flag else "no"
        return (f"MindFlow: OBS {self.version_text or '(unknown version)'} on {self.system}, Python {self.python}; "
                f"recording chapters: {yes(self.chapters)}, Browser source: {yes(self.browser_source)}, "
                f"canvases: {yes(self.canvases)}")


def chapters_note(caps: Capabilities, words: Words) -> str:
    """What the panel says about recording chapters on this OBS (one or two sentences), in ``words``' language."""
    if not caps.chapters:
        return words("moments.chapters_unsupported", version=caps.version_text or words("moments.unknown_version"),
                     since=f"{CHAPTERS_SINCE[0]}.{CHAPTERS_SINCE[1]}")
    return words("moments.chapters_hybrid_mp4")


def parse_version(text: str) -> tuple[int, int, int]:
    """``"32.2.2"`` → ``(32, 2, 2)``; ``"30.2.3-3"``, ``"29.0.2.1-1+b1"`` → their first three numbers; missing
    parts are 0; ``(0, 0, 0)`` when there is no number."""
    numbers = [int(n) for n in re.findall(r"\d+", text.split("-", 1)[0])[:3]]
    if not numbers:
        return (0, 0, 0)
    return tuple((numbers + [0, 0])[:3])  # type: ignore[return-value]


def _version() -> tuple[tuple[int, int, int], str]:
    try:
        text = str(obs.obs_get_version_string())
    except Exception:  # noqa: BLE001 - a binding without the call
        text = ""
    version = parse_version(text)
    if version == (0, 0, 0):
        try:  # libobs's packed version: major << 24 | minor << 16 | patch
            packed = int(obs.obs_get_version())
            version = (packed >> 24, (packed >> 16) & 0xFF, packed & 0xFFFF)
            text = text or "%d.%d.%d" % version
        except Exception:  # noqa: BLE001
            pass
    return version, text


def _source_type_registered(type_id: str) -> bool:
    """Whether a source type is registered (a loaded plugin provides it): OBS has a display name only for those."""
    try:
        return bool(obs.obs_source_get_display_name(type_id))
    except Exception:  # noqa: BLE001
        return False


def detect() -> Capabilities:
    """Read this OBS's capabilities (cheap; call at script load). Never raises."""
    version, text = _version()
    return Capabilities(
        version=version,
        version_text=text,
        chapters=callable(getattr(obs, "obs_frontend_recording_add_chapter", None)),
        browser_source=_source_type_registered(BROWSER_SOURCE),
        canvases=any(callable(getattr(obs, name, None)) for name in ("obs_frontend_get_canvases",
                                                                      "obs_get_main_canvas")),
        system=platform.system() or sys.platform,
        python="%d.%d.%d" % sys.version_info[:3],
    )


class ChapterMarker:
    """Adds chapters to the current recording. One per script load (it remembers what it has already logged);
    ``log`` receives MindFlow's messages (default: the ``obs_mindflow`` logger, which the controller forwards to the
    script log).

    :meth:`add_chapter` returns whether OBS accepted the chapter. It logs once per load when this OBS has no
    chapters (older than 30.2) and once per recording when the recording's format takes none (not Hybrid MP4) —
    each note says that the session's report lists the moments instead; a call while nothing is recorded returns
    ``False`` quietly (a stream without a recording has nowhere to put a chapter)."""

    def __init__(self, caps: Capabilities | None = None, log_fn: Callable[[str], Any] | None = None) -> None:
        self.caps = caps or detect()
        self._log = log_fn or log.info
        self._told: set[str] = set()
        self.added = 0

    def _once(self, key: str, message: str) -> None:
        if key not in self._told:
            self._told.add(key)
            self._log(message)

    def recording_started(self) -> None:
        """Forget the per-recording notice (call on OBS_FRONTEND_EVENT_RECORDING_STARTED): the next recording may
        use another format."""
        self._told.discard("format")

    def add_chapter(self, name: str) -> bool:
        """Mark a chapter called ``name`` at the current position of the recording. ``True`` when OBS added it."""
        try:
            if not obs.obs_frontend_recording_active():
                return False
        except Exception:  # noqa: BLE001 - a binding without the call: as if nothing were recorded
            return False
        if not self.caps.chapters:
            self._once("obs", f"MindFlow: this OBS ({self.caps.version_text or 'unknown version'}) cannot add "
                              f"recording chapters; OBS {CHAPTERS_SINCE[0]}.{CHAPTERS_SINCE[1]} and newer can, with "
                              f"Hybrid MP4 recordings. {REPORT_NOTE}")
            return False
        try:
            ok = bool(obs.obs_frontend_recording_add_chapter(str(name)))
        except Exception as exc:  # noqa: BLE001 - never let a chapter break the caller
            self._once("error", f"MindFlow: adding a recording chapter failed: {type(exc).__name__}: {exc}")
            return False
        if ok:
            self.added += 1
        else:
            self._once("format", "MindFlow: OBS did not add a chapter to this recording: its format takes no "
                                 "chapters (Settings > Output > Recording Format: Hybrid MP4 does) or it is paused. "
                                 + REPORT_NOTE)
        return ok
