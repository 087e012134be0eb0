"""What a moment does in OBS: a recording chapter at its start, and opt-in actions — show a source for a few
seconds, or switch to a scene and back.

Part of the OBS adapter (imports obspython). :class:`MomentActions` subscribes to the engine's ``moment_started``
events (``engine/session/moments.py``). Those arrive on the analysis worker thread; everything that touches OBS runs
on OBS's UI thread through :func:`~obs_mindflow.obs.uitask.run_on_ui_thread` (frontend calls rebuild Qt widgets).
The way back (hide the source again, switch back) is due ``seconds`` later: :meth:`MomentActions.tick`, called from
the script's timer, queues it. Actions are rate-limited (``min_interval_s`` between two), never run while a
calibration is in progress (the streamer is holding still for it), and never fight the streamer: switching back only
happens if the scene is still the one MindFlow switched to; a source is hidden again only if MindFlow showed it.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import obspython as obs

from ..engine.views import moment_title
from ..i18n import Words
from .capabilities import ChapterMarker
from .language import ui_words
from .objects import source_by_name
from .settings import ACTIONS, ANY, NEGATIVE, NONE, SHOW_SOURCE, SWITCH_SCENE  # noqa: F401  (re-exported)
from .uitask import run_on_ui_thread


@dataclass(frozen=True)
class ActionSettings:
    """``chapters``: add a recording chapter at each moment's start (where OBS and the recording format allow);
    ``chapters_negative``: negative stretches get one too (off: chapters end up public); ``action``: one of
    :data:`ACTIONS` (``none`` by default: opt-in); ``trigger``: the moments that start it — an emotion label,
    ``negative`` or ``any``; ``target``: the source to show or the scene to switch to; ``seconds``: how long;
    ``min_interval_s``: at least this long between two actions; ``words``: the viewers' language, in which a chapter
    is titled (it ends up in published videos; ``None``: the moment's English title)."""

    chapters: bool = True
    chapters_negative: bool = False
    action: str = NONE
    trigger: str = "happy"
    target: str = ""
    seconds: float = 5.0
    min_interval_s: float = 60.0
    words: Words | None = None

    def matches(self, moment: dict) -> bool:
        if self.trigger == ANY:
            return True
        if self.trigger == NEGATIVE:
            return bool(moment.get("negative"))
        return moment.get("emotion") == self.trigger


class MomentActions:
    """Chapters and actions for one script load. ``settings`` may be replaced at any time (:meth:`configure`);
    ``calibrating()`` says whether a calibration runs; ``log(text)`` writes to the script log (any thread: the
    controller's log queues lines from other threads); ``ui(fn)`` queues ``fn`` on OBS's UI thread (default
    :func:`run_on_ui_thread`); ``clock`` is ``time.monotonic``."""

    def __init__(self, settings: ActionSettings, calibrating: Callable[[], bool], log: Callable[[str], Any],
                 chapters: ChapterMarker | None = None, ui: Callable[[Callable[[], None]], bool] = run_on_ui_thread,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.calibrating = calibrating
        self.log = log
        self.chapters = chapters
        self.ui = ui
        self.clock = clock
        self._lock = threading.Lock()
        self._last_action = -1e9
        self._undo: tuple[float, Callable[[], None], bool] | None = None   # (due, what, safe at unload)
        # what was done, newest last, for the panel ("chapter: Smiles", "showed Confetti")
        self.done: collections.deque[str] = collections.deque(maxlen=20)

    def configure(self, settings: ActionSettings) -> None:
        self.settings = settings

    # ---------------------------------------------------------------- events (analysis worker thread)
    def on_event(self, event: Any) -> None:
        """A ``moment_started`` event: queue its chapter and, when it matches, the action."""
        s, moment = self.settings, dict(event.data)
        title = str(moment.get("title") or moment.get("emotion") or "Moment")
        if s.chapters and self.chapters is not None and (s.chapters_negative or not moment.get("negative")):
            chapter = moment_title(moment, s.words) if s.words is not None else title
            self.ui(lambda: self._chapter(chapter))
        if s.action == NONE or not s.target or not s.matches(moment):
            return
        if self.calibrating():
            self.log("MindFlow: " + ui_words()("actions.calibrating", title=title))
            return
        now = self.clock()
        with self._lock:
            if now - self._last_action < s.min_interval_s or self._undo is not None:
                return
            self._last_action = now
        action = self._show_source if s.action == SHOW_SOURCE else self._switch_scene
        self.ui(lambda: action(s, title))

    # ---------------------------------------------------------------- UI thread
    def _chapter(self, title: str) -> None:
        if self.chapters is not None and self.chapters.add_chapter(title):
            self.done.append(ui_words()("actions.chapter", title=title))

    def _show_source(self, s: ActionSettings, title: str) -> None:
        scene_source = obs.obs_frontend_get_current_scene()
        if scene_source is None:
            return
        try:
            scene = obs.obs_scene_from_source(scene_source)
            item = obs.obs_scene_find_source_recursive(scene, s.target) if scene is not None else None
            if item is None:
                self.log("MindFlow: " + ui_words()("actions.not_in_scene", title=title, source=s.target))
                return
            if obs.obs_sceneitem_visible(item):
                return                      # already shown: nothing to do, nothing to undo
            obs.obs_sceneitem_set_visible(item, True)
            scene_name = obs.obs_source_get_name(scene_source)
        finally:
            obs.obs_source_release(scene_source)
        w = ui_words()
        self.done.append(w("actions.showed", source=s.target))
        self.log("MindFlow: " + w("actions.showing", title=title, source=s.target, seconds=f"{s.seconds:g}"))
        self._schedule(s.seconds, lambda: self._hide_source(scene_name, s.target), at_unload=True)

    def _hide_source(self, scene_name: str, target: str) -> None:
        with source_by_name(scene_name) as scene_source:
            scene = obs.obs_scene_from_source(scene_source) if scene_source is not None else None
            item = obs.obs_scene_find_source_recursive(scene, target) if scene is not None else None
            if item is not None:
                obs.obs_sceneitem_set_visible(item, False)

    def _switch_scene(self, s: ActionSettings, title: str) -> None:
        current = obs.obs_frontend_get_current_scene()
        if current is None:
            return
        try:
            back = obs.obs_source_get_name(current)
        finally:
            obs.obs_source_release(current)
        if back == s.target:
            return
        with source_by_name(s.target) as target:
            if target is None or obs.obs_scene_from_source(target) is None:
                self.log("MindFlow: " + ui_words()("actions.no_scene", title=title, scene=s.target))
                return
            obs.obs_frontend_set_current_scene(target)
        w = ui_words()
        self.done.append(w("actions.switched", scene=s.target))
        self.log("MindFlow: " + w("actions.switching", title=title, scene=s.target, seconds=f"{s.seconds:g}"))
        self._schedule(s.seconds, lambda: self._switch_back(s.target, back), at_unload=False)

    def _switch_back(self, target: str, back: str) -> None:
        current = obs.obs_frontend_get_current_scene()
        if current is None:
            return
        try:
            still = obs.obs_source_get_name(current) == target
        finally:
            obs.obs_source_release(current)
        if not still:
            return                          # the streamer moved on: leave their choice alone
        with source_by_name(back) as scene:
            if scene is not None:
                obs.obs_frontend_set_current_scene(scene)
                self.log("MindFlow: " + ui_words()("actions.back", scene=back))

    def _schedule(self, seconds: float, undo: Callable[[], None], at_unload: bool) -> None:
        with self._lock:
            self._undo = (self.clock() + seconds, undo, at_unload)

    # ---------------------------------------------------------------- the script's timer (graphics thread)
    def tick(self) -> None:
        """Queue the way back once it is due."""
        with self._lock:
            if self._undo is None or self.clock() < self._undo[0]:
                return
            undo = self._undo[1]
            self._undo = None
        self.ui(undo)

    def close(self) -> None:
        """The script is unloading (UI thread): a source MindFlow showed is hidden again at once; a scene switch is
        left as it is (switching scenes while OBS shuts down or changes collection is not safe)."""
        with self._lock:
            pending, self._undo = self._undo, None
        if pending is not None and pending[2]:
            try:
                pending[1]()
            except Exception as exc:  # noqa: BLE001 - unload goes on
                self.log(f"MindFlow: could not undo the last moment action: {exc}")
