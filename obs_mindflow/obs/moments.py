"""Moments in OBS: the moment settings → the engine's detector options, and what a moment does in OBS — a recording
chapter at its start and the opt-in action (:mod:`.actions`) — wired to the engine's events; what the panel's
Moments group shows.

Part of the OBS adapter (imports obspython). One :class:`Moments` per load, outliving the engines (a model change
makes a new :class:`~obs_mindflow.engine.host.SessionHost`: :meth:`attach` subscribes to each). ``moment_started``
events arrive on the analysis worker; :class:`~.actions.MomentActions` queues its OBS work on OBS's UI thread, where
the log lines are queued for the script's timer (``script_log`` does not know the script in a UI-thread task).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ..engine.session.events import MOMENT_STARTED, Event
from ..engine.formatting import media_clock
from . import uitask
from .actions import ActionSettings, MomentActions
from .capabilities import Capabilities, ChapterMarker, chapters_note
from .language import ui_words, viewer_words
from .panel import ERROR, NORMAL, Item
from .scriptlog import ScriptLog
from .settings import ANY, NEGATIVE, NONE, SHOW_SOURCE, SWITCH_SCENE, Settings

if TYPE_CHECKING:
    from ..engine.host import SessionHost

#: The panel's properties this module decides (the Moments group).
ITEMS = ("moments_note", "chapters_enabled", "chapters_negative", "moment_min_s", "moment_negative_min_s", "action",
         "action_trigger", "action_source", "action_scene", "action_seconds", "action_interval_s", "actions_note")

ACTION_LABELS = ((NONE, "Do nothing"), (SHOW_SOURCE, "Show a source for a few seconds"),
                 (SWITCH_SCENE, "Switch to a scene and back"))


def action_settings(s: Settings) -> ActionSettings:
    return ActionSettings(chapters=s.chapters_enabled, chapters_negative=s.chapters_negative, action=s.action,
                          trigger=s.action_trigger, target=s.action_target, seconds=float(s.action_seconds),
                          min_interval_s=float(s.action_interval_s), words=viewer_words(s))


def trigger_choices(labels: tuple[str, ...] | list[str], current: str = "") -> list[tuple[str, str]]:
    """``(label, value)`` for the "Which moments" list: any, a negative stretch, then each emotion of the model."""
    out = [("Any moment", ANY), ("A tense stretch (negative emotions)", NEGATIVE)]
    out += [(f"{label.capitalize()} (held, or brief and intense)", label) for label in labels]
    if current and current not in [v for _, v in out]:
        out.append((f"{current.capitalize()}" + (" (not in this model)" if labels else ""), current))
    return out


class Moments:
    """Chapters and actions for one load. ``calibrating()`` says whether a calibration runs now."""

    def __init__(self, settings: Settings, caps: Capabilities, log: ScriptLog,
                 calibrating: Callable[[], bool]) -> None:
        self.caps = caps
        self.log = log
        self.chapters = ChapterMarker(caps, log_fn=log.info)
        self.actions = MomentActions(action_settings(settings), calibrating, log.info, chapters=self.chapters,
                                     ui=self._ui)
        self._unsubscribe: Callable[[], None] | None = None

    def _ui(self, fn: Callable[[], None]) -> bool:
        log = self.log

        def run() -> None:
            with log.queued():
                fn()
        return uitask.run_on_ui_thread(run)

    def configure(self, settings: Settings) -> None:
        self.actions.configure(action_settings(settings))

    def attach(self, host: SessionHost) -> None:
        """Follow ``host``'s moments (a new engine: the old one's subscription is dropped)."""
        self.detach()
        self._unsubscribe = host.bus.subscribe(self._on_moment, (MOMENT_STARTED,))

    def _on_moment(self, event: Event) -> None:
        """On the analysis worker: one line in the log (queued for the timer), then the chapter and the action."""
        m = event.data
        self.log.info(f"MindFlow: {event.message or 'Moment'} ({m.get('emotion', '?')}) from "
                      f"{media_clock(float(m.get('start_s', 0.0)))} of the session")
        self.actions.on_event(event)

    def detach(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def recording_started(self) -> None:
        self.chapters.recording_started()

    def tick(self) -> None:
        """From the script's timer: the way back of an action, once due."""
        self.actions.tick()

    def close(self) -> None:
        """Unload (UI thread): no more events; a source MindFlow showed is hidden again."""
        self.detach()
        self.actions.close()

    # ---------------------------------------------------------------- the panel's Moments group
    def panel_items(self, s: Settings, labels: tuple[str, ...] | None) -> dict[str, Item]:
        """``labels``: the loaded model's (``None``: no model)."""
        acting = s.action != NONE
        items = {name: Item(visible=True) for name in ITEMS}
        w = ui_words()
        items["moments_note"] = Item(chapters_note(self.caps, w) if s.chapters_enabled else w("moments.no_chapters"))
        items["chapters_negative"] = Item(visible=s.chapters_enabled)
        for name in ("action_trigger", "action_seconds", "action_interval_s"):
            items[name] = Item(visible=acting)
        items["action_source"] = Item(visible=s.action == SHOW_SOURCE)
        items["action_scene"] = Item(visible=s.action == SWITCH_SCENE)
        note, kind = "", NORMAL
        if acting:
            if not s.action_target:
                note, kind = w("moments.choose_source" if s.action == SHOW_SOURCE else "moments.choose_scene"), ERROR
            elif labels is not None and s.action_trigger not in (ANY, NEGATIVE) + tuple(labels):
                note, kind = w("moments.no_such_emotion", emotion=s.action_trigger), ERROR
            elif s.action == SHOW_SOURCE:
                # (no seconds here: a note that changes while a slider is dragged would redraw the panel under it)
                note = w("moments.shows_source", source=s.action_target)
            else:
                note = w("moments.switches_scene", scene=s.action_target)
        done = list(self.actions.done)
        if done:
            note = (note + "\n" if note else "") + w("moments.last", actions="; ".join(done[-3:]))
        items["actions_note"] = Item(note, visible=bool(note), kind=kind)
        return items
