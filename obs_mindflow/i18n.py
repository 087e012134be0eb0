"""MindFlow's words in the streamer's and the viewers' languages: OBS plugins' ``data/locale/<lang>.ini`` catalogues.

Each catalogue (``obs_mindflow/data/locale/en-US.ini``, ``de-DE.ini``, …) is OBS's own locale format, one
``Key="Text"`` a line (``#`` or ``;`` starts a comment; ``\\n``, ``\\"`` and ``\\\\`` are escapes), so a translator who
knows OBS's files knows these. ``en-US`` is the reference: every key lives there, and a key missing from another
catalogue falls back to it (``tests/test_i18n.py`` fails when a catalogue misses a key or changes a placeholder).
Texts are :meth:`str.format` templates with named placeholders (``{seconds}``; a literal brace is doubled: ``{{``).

Two languages are in play (see install.md, "Languages"): the **panel's** follows OBS's UI language
(``obs_get_locale()``), the **viewers'** — the on-stream text and the overlay page — is a setting of its own.
Standard library only; the catalogues are read once per language and cached.
"""

from __future__ import annotations

import string
from functools import lru_cache
from pathlib import Path

LOCALE_DIR = Path(__file__).resolve().parent / "data" / "locale"
FALLBACK = "en-US"
#: The catalogues shipped, with each language's name in itself (OBS's own ``Language=`` of that locale).
LANGUAGES: dict[str, str] = {"en-US": "English", "es-ES": "Español", "pt-BR": "Português brasileiro",
                             "de-DE": "Deutsch", "fr-FR": "Français", "ru-RU": "Русский", "ja-JP": "日本語",
                             "zh-CN": "简体中文"}
_ESCAPES = {"n": "\n", '"': '"', "\\": "\\"}


class CatalogError(ValueError):
    """A catalogue line that is not ``Key="Text"``; the message names the file and line."""


def parse(text: str, name: str = "catalogue") -> dict[str, str]:
    """``Key="Text"`` lines → ``{key: text}`` (OBS's locale format; the quotes are optional)."""
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CatalogError(f"{name}, line {number}: expected Key=\"Text\", got {line!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        out[key] = _unescape(value)
    return out


def _unescape(value: str) -> str:
    chars, i = [], 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value) and value[i + 1] in _ESCAPES:
            chars.append(_ESCAPES[value[i + 1]])
            i += 2
            continue
        chars.append(c)
        i += 1
    return "".join(chars)


def placeholders(text: str) -> set[str]:
    """The named placeholders of a catalogue text (``"{n} s"`` → ``{"n"}``)."""
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


def supported(locale: str | None) -> str:
    """The shipped catalogue for an OBS locale: itself (``de-DE``), else the same language's (``pt-PT`` → ``pt-BR``,
    ``de`` → ``de-DE``), else :data:`FALLBACK`."""
    locale = (locale or "").replace("_", "-")
    for lang in LANGUAGES:
        if lang.lower() == locale.lower():
            return lang
    prefix = locale.split("-")[0].lower()
    return next((lang for lang in LANGUAGES if lang.split("-")[0] == prefix), FALLBACK)


@lru_cache(maxsize=None)
def _load(lang: str) -> dict[str, str]:
    path = LOCALE_DIR / f"{lang}.ini"
    return parse(path.read_text(encoding="utf-8-sig"), path.name)


class Words:
    """One language's texts: ``words("overlay.session")``, ``words("overlay.last_seconds", n=30)``. A key
    missing from this language falls back to English; a key missing from English raises ``KeyError`` (a bug)."""

    def __init__(self, lang: str | None = FALLBACK) -> None:
        self.lang = supported(lang)
        self._texts = _load(self.lang)
        self._fallback = _load(FALLBACK)

    def __call__(self, key: str, **values: object) -> str:
        text = self._texts.get(key)
        if text is None:
            text = self._fallback[key]
        return text.format(**values)

    def get(self, key: str, default: str) -> str:
        """The text of ``key``, or ``default`` when no catalogue has it (an emotion a model names and MindFlow does
        not know)."""
        return self._texts.get(key, self._fallback.get(key, default))

    def number(self, value: float, spec: str = "g") -> str:
        """``value`` formatted by ``spec`` (``".1f"``, ``"g"``) with this language's decimal sign (the catalogue's
        ``number.decimal``: ``1,5`` in German, ``1.5`` in English)."""
        text = format(value, spec)
        sign = self.get("number.decimal", ".")
        return text.replace(".", sign) if sign != "." else text

    def emotion(self, label: str) -> str:
        """An emotion's name (a model's label, or ``uncertain``); a label MindFlow has no name for stays as it is."""
        return self.get("emotion." + label.replace(" ", "_"), label) if label else label

    def section(self, prefix: str) -> dict[str, str]:
        """Every text whose key starts with ``prefix`` (English where this language lacks one), keyed without it,
        as written (placeholders unfilled: the overlay page fills them)."""
        keys = {k for k in self._fallback if k.startswith(prefix)}
        return {k[len(prefix):]: self._texts.get(k, self._fallback[k]) for k in sorted(keys)}


def words(lang: str | None) -> Words:
    """The :class:`Words` of ``lang`` (an OBS locale such as ``de-DE``; unknown ones get English)."""
    return _words(supported(lang))


@lru_cache(maxsize=None)
def _words(lang: str) -> Words:
    return Words(lang)


class Said(str):
    """A message for the streamer that is English where it is read as a string (logs, programs, tests) and can be
    said in another language (:meth:`say`): it carries its catalogue ``key`` and the ``values`` of its placeholders.
    A value that is itself a :class:`Said` (or a :class:`~obs_mindflow.errors.MindFlowError` with a key) is said in
    the same language; an ``emotion`` value is a label, named in that language."""

    key: str
    values: dict[str, object]

    def __new__(cls, key: str, **values: object) -> "Said":
        self = super().__new__(cls, words(FALLBACK)(key, **{k: str(v) for k, v in values.items()}))
        self.key, self.values = key, values
        return self

    @classmethod
    def of(cls, message: object) -> str:
        """``message`` as a string for the panel: an error (or other object) that carries a key keeps it (its
        English text is its message); anything else is its ``str``."""
        if isinstance(message, str) or not getattr(message, "key", ""):
            return message if isinstance(message, str) else str(message)
        self = str.__new__(cls, str(message))
        self.key, self.values = message.key, dict(getattr(message, "values", {}))
        return self

    def say(self, w: "Words | None" = None) -> str:
        return say(self, w)


class Joined(Said):
    """Messages shown as one line (``"; "`` between them), each said in the panel's language."""

    parts: tuple[object, ...]
    sep: str

    def __new__(cls, parts: "list[object] | tuple[object, ...]", sep: str = "; ") -> "Joined":
        self = str.__new__(cls, sep.join(str(p) for p in parts))
        self.key, self.values, self.parts, self.sep = "", {}, tuple(parts), sep
        return self

    def say(self, w: "Words | None" = None) -> str:
        return self.sep.join(say(p, w) for p in self.parts)


def say(message: object, w: "Words | None" = None) -> str:
    """``message`` in ``w``'s language when it carries a catalogue key (a :class:`Said`, or an error with ``key``
    and ``values``); its English text otherwise, and when ``w`` is ``None``."""
    if isinstance(message, Joined):
        return message.say(w)
    key = getattr(message, "key", "")
    if w is None or not key:
        return str(message)
    values = {k: say(v, w) if getattr(v, "key", None) is not None else v
              for k, v in getattr(message, "values", {}).items()}
    if "emotion" in values:
        values["emotion"] = w.emotion(str(values["emotion"]))
    return w(key, **values)
