"""The text source on stream: the streamer's template rendered with the session's values (the private placeholders
blank while hidden from viewers), the idle text outside a session.

Part of the OBS adapter (imports obspython through :mod:`.sources`). Runs on OBS's graphics thread (the script's
timer) and UI thread (settings, session ends, unload). The template is typed one key at a time: a template with a
problem is not used — the last usable one goes on, the problem is shown in the panel only (never on stream, never a
warning: each would open the Script Log).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Callable

from ..engine import views
from . import sources
from .language import ui_words, viewer_words
from .settings import Settings
from .template import TemplateError, check_template, render

if TYPE_CHECKING:
    from ..engine.host import SessionHost

ProblemFn = Callable[[str, str], None]       # set_problem(area, message): "" clears


class TextOutput:
    """What one load writes to the text source. ``set_problem(area, message)`` records a missing or wrong source
    (area ``"text"``) for the panel."""

    def __init__(self, settings: Settings, set_problem: ProblemFn) -> None:
        self.settings = settings
        self.set_problem = set_problem
        self.template = settings.template       # the template in use (the last usable one typed)
        self.problem = ""                       # the typed template's problem (the panel only)
        self._working = ""                      # the last template that rendered
        self._last_text: str | None = None
        self._target = ""

    def check(self, new: Settings) -> Settings:
        """The typed template checked: ``new`` as it is, or with the template in use when the typed one has a
        problem (:attr:`problem` says which)."""
        self.problem = check_template(new.template, ui_words())
        if self.problem:
            new = dataclasses.replace(new, template=self.template)
        self.template = new.template
        return new

    def configure(self, old: Settings, new: Settings, first: bool) -> None:
        """New settings (already :meth:`check`-ed): the text is rewritten when what it shows changed; a text source
        left behind shows the idle text (no stale emotion on stream)."""
        self.settings = new
        if (new.template, new.hide_negative_share, new.idle_text, new.text_source, new.viewer_language) != (
                old.template, old.hide_negative_share, old.idle_text, old.text_source, old.viewer_language):
            self._last_text = None
        if old.text_source and new.text_source != old.text_source and not first:
            sources.set_text(old.text_source, old.idle_text)

    def invalidate(self) -> None:
        """Write the text again at the next :meth:`update` (a session started, paused, resumed)."""
        self._last_text = None

    def session_text(self, host: SessionHost | None) -> str | None:
        """What the text source should show now: the rendered template during a session (the private placeholders
        blank while hidden from viewers), the idle text outside one; ``None``: leave it (the template cannot be
        rendered and no earlier one could)."""
        s = self.settings
        if host is None or not host.active:
            return s.idle_text
        words = viewer_words(s)
        values = views.viewer_text_values(host.values(words), s.hide_negative_share, words)
        candidates = [self.template]
        if self._working and self._working != self.template:
            candidates.append(self._working)
        for template in candidates:
            try:
                text = render(template, values)
            except TemplateError as exc:     # a format only rendering can refuse ({emotion:d}): the panel says so
                if template == self.template:
                    self.problem = exc.say(ui_words())
                continue
            self._working = template
            return text
        return None

    def update(self, host: SessionHost | None) -> None:
        """From the timer: write the text when it changed."""
        name = self.settings.text_source
        if name != self._target:
            self._target, self._last_text = name, None
        if not name:
            self.set_problem("text", "")
            return
        text = self.session_text(host)
        if text is not None and text != self._last_text:
            self.write(text, quiet=not (host is not None and host.active))

    def write_idle(self) -> None:
        """The idle text at once (a session ended; OBS may be exiting: it saves the scene collection before the next
        timer call)."""
        self.write(self.settings.idle_text, quiet=True)

    def write(self, text: str, quiet: bool = False) -> None:
        """Write the text source. ``quiet``: the idle text — a missing source is not a problem then (OBS loads
        scripts before the scene collection's sources and removes the sources before unloading scripts); the next
        timer call tries again."""
        name = self.settings.text_source
        if not name:
            return
        problem = sources.set_text(name, text)
        if not (quiet and problem):
            self.set_problem("text", problem)
        self._last_text = None if problem else text
