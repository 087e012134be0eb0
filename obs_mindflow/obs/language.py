"""The two languages MindFlow speaks in OBS: the panel's — OBS's own UI language (``obs_get_locale()``, read at each
use: OBS sets it at start-up) — and the viewers' (the text source's emotion names and the overlay page): the
``viewer_language`` setting, OBS's language when it is empty — and whether the text source's font can draw the
viewers' language. The texts: :mod:`obs_mindflow.i18n`."""

from __future__ import annotations

import obspython as obs

from ..i18n import LANGUAGES, Words, words
from . import sources
from .fonts import ADVICE, missing_letters
from .settings import Settings


def ui_words() -> Words:
    """The panel's language: OBS's (English when MindFlow has no catalogue for it)."""
    return words(obs.obs_get_locale())


def viewer_words(settings: Settings) -> Words:
    """The viewers' language: the setting, else OBS's."""
    return words(settings.viewer_language or obs.obs_get_locale())


def viewer_language_choices(ui: Words) -> list[tuple[str, str]]:
    """The panel's list of viewer languages, ``(label, value)``: "As OBS (English)" (``""``), then each catalogue in
    its own name."""
    return [(ui("panel.viewer_language_as_obs", language=LANGUAGES[ui.lang]), "")] + [
        (name, code) for code, name in LANGUAGES.items()]


def font_problem(settings: Settings, labels: tuple[str, ...]) -> str:
    """What the panel says when the text source's font lacks letters of the emotion names viewers will read (boxes
    on stream), in the panel's language; ``""`` when it has them, or when this cannot be known here."""
    face = sources.text_font(settings.text_source) if settings.text_source else ""
    viewer = viewer_words(settings)
    names = " ".join(viewer.emotion(label) for label in (*labels, "uncertain", "no face", "paused", "no video"))
    missing = missing_letters(face, names)
    if not missing:
        return ""
    return ui_words()("status.font_lacks", source=settings.text_source, font=face, letters=missing[:6],
                      language=LANGUAGES[viewer.lang], fonts=ADVICE)
