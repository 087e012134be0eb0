"""The text-source template: ``"{emotion}"`` → ``"happy"``, ``"{emotion} · {negative_share} negative"`` →
``"happy · 12 % negative"``.

Pure Python (no obspython, no numpy): unit-tested directly. The placeholders and their values come from
:mod:`obs_mindflow.engine.views` (one home for the schema). Placeholders are plain names in braces; ``{{`` and ``}}`` are
literal braces; a literal ``\\n`` (backslash, n) in the template is a line break (OBS's one-line text field cannot hold
one). A format spec is allowed (``{emotion:>8}``); conversions (``{emotion!r}``), attribute or index access
(``{emotion.upper}``, ``{x[0]}``) and unknown names are refused with a message listing the known placeholders —
the script shows it and never crashes.
"""

from __future__ import annotations

import string
from typing import Any, Mapping

from ..engine.views import PLACEHOLDERS, PRIVATE_PLACEHOLDERS
from ..errors import MindFlowError

#: Only the emotion: the negative share is hidden from viewers by default (settings.hide_negative_share).
DEFAULT_TEMPLATE = "{emotion}"

__all__ = ["DEFAULT_TEMPLATE", "PLACEHOLDERS", "PRIVATE_PLACEHOLDERS", "TemplateError", "check_template",
           "known_placeholders", "private_placeholders_used", "render"]

_FORMATTER = string.Formatter()


class TemplateError(MindFlowError, ValueError):
    """The template cannot be used; the message says why and lists the placeholders. It also carries a catalogue
    ``key`` and its ``values`` (:mod:`obs_mindflow.i18n`, ``template.*``) so the panel says it in its language
    (:meth:`say`); the message stays English (logs, tests of programs)."""


def known_placeholders() -> str:
    return ", ".join("{" + name + "}" for name in PLACEHOLDERS)


def _fields(template: str) -> list[tuple[str, str, str | None]]:
    try:
        return [(f, spec or "", conv) for _, f, spec, conv in _FORMATTER.parse(template) if f is not None]
    except ValueError as exc:
        raise TemplateError(f"the text template {template!r} is malformed ({exc}); write placeholders as "
                            f"{{emotion}} and a literal brace as {{{{ or }}}}", "template.malformed",
                            template=template, detail=str(exc)) from None


def check_template(template: str, w: Any = None) -> str:
    """``""`` when ``template`` is usable, else the message to show (in ``w``'s language, a
    :class:`~obs_mindflow.i18n.Words`, when given)."""
    try:
        _validate(template)
    except TemplateError as exc:
        return exc.say(w)
    return ""


def _validate(template: str) -> None:
    for name, spec, conv in _fields(template):
        if name == "" or name.isdigit():
            raise TemplateError(f"the text template has an empty or numbered placeholder '{{{name}}}'; use a name: "
                                f"{known_placeholders()}", "template.unnamed", name=name, known=known_placeholders())
        if name not in PLACEHOLDERS:
            raise TemplateError(f"unknown placeholder {{{name}}} in the text template; known placeholders: "
                                f"{known_placeholders()}", "template.unknown", name=name, known=known_placeholders())
        if conv is not None:
            raise TemplateError(f"'{{{name}!{conv}}}': conversions are not supported in the text template; "
                                f"write {{{name}}}", "template.conversion", name=name, conv=conv)
        if "{" in spec:
            raise TemplateError(f"nested placeholders in the format of {{{name}}} are not supported", "template.nested",
                                name=name)


def private_placeholders_used(template: str) -> list[str]:
    """The private placeholders (:data:`PRIVATE_PLACEHOLDERS`) a usable ``template`` names, in order, once each."""
    try:
        names = [name for name, _, _ in _fields(template)]
    except TemplateError:
        return []
    return [p for p in PRIVATE_PLACEHOLDERS if p in names]


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill ``template`` with ``values`` (every placeholder must be present in ``values``). Raises
    :class:`TemplateError` for an unusable template or format spec."""
    _validate(template)
    try:
        text = template.format_map({k: values.get(k, "") for k in PLACEHOLDERS})
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise TemplateError(f"the text template {template!r} cannot be formatted: {exc}", "template.cannot_format",
                            template=template, detail=str(exc)) from None
    return text.replace("\\n", "\n")


#: Values for the template's preview in the panel outside a session (during one: the session's own).
EXAMPLE_VALUES = {"emotion": "happy", "confidence": "83 %", "negative_share": "12 %", "rolling_negative": "9 %",
                  "coverage": "96 %", "duration": "12 min 05 s", "dominant": "neutral", "faces": "1", "rate": "5.0",
                  "model": "MindFlow", "nudge": ""}
