"""The two languages MindFlow speaks in OBS: the panel's — OBS's own UI language (``obs_get_locale()``, read at each
use: OBS sets it at start-up) — and the viewers' (the text source's emotion names and the overlay page): the
``viewer_language`` setting, OBS's language when it is empty. The texts: :mod:`obs_mindflow.i18n`."""

from __future__ import annotations

import obspython as obs

from ..i18n import LANGUAGES, Words, words
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
