"""Sources renamed in OBS, followed by the settings that name them (the webcam, the text source, a moment action's
source): libobs's global ``source_rename`` signal (``prev_name``, ``new_name``) is queued by the entry module's
callback — on whichever thread renamed it — and applied by the script's next timer call.

Without it a renamed source was followed only while a session captured it, and the panel's list, which did not hold
the new name, made OBS write its first entry ("(choose your webcam)") into the setting at the next redraw (issue 23).
Part of the OBS adapter (imports obspython).
"""

from __future__ import annotations

import collections
import dataclasses
from typing import TYPE_CHECKING, Any, Callable

import obspython as obs

from .settings import Settings

if TYPE_CHECKING:
    from .capture import SourceCapture

#: Settings that hold a source's name.
SOURCE_FIELDS = ("video_source", "text_source", "action_source")


def renamed(settings: Settings, prev: str, new: str) -> dict[str, str]:
    """``{field: new}`` for each of :data:`SOURCE_FIELDS` that names ``prev`` (pure)."""
    if not prev or not new or prev == new:
        return {}
    return {name: new for name in SOURCE_FIELDS if getattr(settings, name) == prev}


class Renames:
    """The renames seen since the last timer call (any thread appends; the timer takes them)."""

    def __init__(self) -> None:
        self._queue: collections.deque = collections.deque(maxlen=100)

    def add(self, prev: str, new: str) -> None:
        self._queue.append((prev, new))

    def apply(self, settings: Settings, data: Any, log: Callable[[str], None]) -> tuple[Settings, dict[str, str]]:
        """``settings`` with every queued rename applied, and the fields changed; the script's settings object
        ``data`` (what OBS saves and its panel shows) gets the new names too."""
        changes: dict[str, str] = {}
        while self._queue:
            prev, new = self._queue.popleft()
            fields = renamed(settings, prev, new)
            if fields:
                settings = dataclasses.replace(settings, **fields)
                changes.update(fields)
                log(f"MindFlow: source '{prev}' renamed to '{new}'; the setting{'s' if len(fields) > 1 else ''} "
                    f"{', '.join(fields)} follow{'' if len(fields) > 1 else 's'} it")
        if changes and data is not None:
            for name, value in changes.items():
                obs.obs_data_set_string(data, name, value)
        return settings, changes


def follow_renames(renames: Renames, capture: SourceCapture, settings: Settings, data: Any,
                   log: Callable[[str], None]) -> tuple[Settings, dict[str, str]]:
    """From the script's timer: the renames seen (the signal, or the capture's own look at its source) applied to
    ``settings`` and the settings object ``data``; the capture follows its source. Returns the new settings and the
    fields changed (the caller hands them to the text output and the moments' action)."""
    if capture.renamed_to:
        renames.add(settings.video_source, capture.renamed_to)
    settings, changes = renames.apply(settings, data, log)
    if "video_source" in changes or capture.renamed_to:
        capture.follow_rename(settings.video_source)
    return settings, changes
