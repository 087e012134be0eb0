"""The script's settings panel (Tools > Scripts > MindFlow): built once per ``script_properties``, then kept true in
place.

How OBS shows a script's panel (OBS 29–32, ``UI/properties-view.cpp``): ``script_properties`` is called when the
script is selected in Tools > Scripts (and by the reload button); OBS builds widgets from the properties object it
returns and keeps that object. When a button callback or a property's modified callback returns ``True``, OBS
rebuilds the widgets **from the same object** — it does not call ``script_properties`` again. So every label,
visibility and status text lives in that object and is changed in place by :func:`apply` from the callbacks
(``obs_property_set_description``, ``obs_property_set_visible``). Nothing else can refresh an open panel (a timer
cannot): the status says when it was last brought up to date, and the buttons act on what their label says.

The panel is the same set of properties whether or not the run-time packages are installed (only visibility differs),
so the panel that was open while they were installed becomes the full one after "Check again", without reopening.

:func:`build` adds the properties (obspython); :class:`PanelView` is what they should show — pure data, made by the
controller (or by the entry module while packages are missing); :func:`apply` makes the properties show it and says
whether anything visible changed (the callback's return value: OBS then redraws).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import obspython as obs

from ..i18n import FALLBACK, Words, words
from .settings import (
    ACTION_MAX_S,
    ACTION_MIN_S,
    CALIBRATION_MAX_S,
    CALIBRATION_MIN_S,
    CUSTOM_MODEL,
    INTERVAL_MAX_S,
    MIN_REPORT_MAX_S,
    MOMENT_MAX_S,
    MOMENT_MIN_S,
    NEGATIVE_MOMENT_MAX_S,
    NEGATIVE_MOMENT_MIN_S,
    PORT_MAX,
    PORT_MIN,
    RATE_MAX_HZ,
    RATE_MIN_HZ,
    UNCERTAIN_MAX_PCT,
)
from .template import PLACEHOLDERS, PRIVATE_PLACEHOLDERS

NORMAL, WARNING, ERROR = "normal", "warning", "error"

#: A hidden property: "1" while what the properties say differs from the widgets OBS shows (changed in place while
#: the user typed, without a redraw), so the next callback that may redraw does.
REDRAW_PENDING = "redraw_pending"

#: The panel's status key lives in the properties object itself (a hidden property), so :func:`apply` can tell a
#: real change from a new "as of" time without any memory of its own.
STATUS_KEY = "status_key"

#: The first entry of each source list (no source): its catalogue key (``panel.video_empty``, …).
EMPTY_KEYS = {"video_source": "panel.video_empty", "text_source": "panel.text_empty",
              "action_source": "panel.action_source_empty", "action_scene": "panel.action_scene_empty"}

#: Properties that are settings (saved values): hidden while the packages are missing.
SETTINGS = ("video_source", "text_source", "template", "template_note", "hide_negative_share", "idle_text",
            "viewer_language",
            "rate_hz", "model", "calibration_s", "calibrate_each_session", "nudge_enabled", "report_dir",
            "min_report_s", "open_reports", "moments", "advanced")
#: Properties shown only while the packages are missing.
DEPS_ONLY = ("deps", "install_deps", "check_deps")
#: Every property of the panel (tests and the e2e hooks read the panel by these names).
NAMES = ("status", STATUS_KEY, REDRAW_PENDING, "setup", "last_error", "deps", "install_deps", "check_deps",
         "session", "refresh", "calibrate", "clear_calibration", "result", "open_report", "history", "open_history",
         "video_source", "text_source", "template", "template_note", "hide_negative_share", "idle_text",
         "viewer_language", "rate_hz",
         "model", "calibration_s", "calibrate_each_session", "nudge_enabled", "report_dir", "min_report_s",
         "open_reports", "advanced", "overlay_enabled", "overlay_port", "overlay_url", "add_overlay", "model_folder",
         "write_report", "reset", "moments", "moments_note", "chapters_enabled", "chapters_negative", "moment_min_s",
         "moment_negative_min_s", "action", "action_trigger", "action_source", "action_scene", "action_seconds",
         "action_interval_s", "actions_note", "uncertain_below")


@dataclass(frozen=True)
class Item:
    """What one property shows: its ``text`` (a label, a button's caption or an info text), whether it is
    ``visible``, and for an info text its ``kind`` (normal, warning, error)."""

    text: str | None = None
    visible: bool = True
    kind: str | None = None


@dataclass
class PanelView:
    """What the panel should show: ``items`` by property name (names not listed keep what they show);
    ``status_key``: the status without its volatile parts (times, rates) — the status text is only replaced when
    this changes, so typing in a field or dragging a slider does not redraw the panel."""

    items: dict[str, Item] = field(default_factory=dict)
    status_key: str = ""


# ==================================================================================================================
# Building (script_properties)
# ==================================================================================================================

Callbacks = dict[str, Callable[..., Any]]


def _info(props: Any, name: str, text: str = "") -> Any:
    p = obs.obs_properties_add_text(props, name, text or " ", obs.OBS_TEXT_INFO)
    obs.obs_property_text_set_info_word_wrap(p, True)
    return p


def list_items(choices: list[tuple[str, str]], current: str, empty: str | None = None,
               missing: str = "{name} (missing)") -> list[tuple[str, str]]:
    """What a list shows: ``empty`` (a first entry for ``""``), then the ``current`` value as ``missing`` (the
    catalogue's ``panel.missing_entry``: "NAME (missing)") when
    it is not among ``choices`` (OBS's properties view writes a list's first value into the setting when the
    setting's value is not in the list — a renamed or removed source would silently become "no webcam"), then the
    ``(label, value)`` choices."""
    items = [(empty, "")] if empty is not None else []
    if current and current not in [v for _, v in choices]:
        items.append((missing.format(name=current), current))
    return items + list(choices)


def missing_entry(w: Words) -> str:
    """How a list names a chosen value that is not there now, in ``w``'s language (``{name}`` unfilled)."""
    return w.get("panel.missing_entry", "{name} (missing)")


def fill_list(p: Any, items: list[tuple[str, str]]) -> bool:
    """Make list property ``p`` hold ``items`` (``(label, value)``), in place; ``True`` when it changed."""
    count = obs.obs_property_list_item_count(p)
    have = [(obs.obs_property_list_item_name(p, i), obs.obs_property_list_item_string(p, i)) for i in range(count)]
    if have == items:
        return False
    obs.obs_property_list_clear(p)
    for text, value in items:
        obs.obs_property_list_add_string(p, text, value)
    return True


def refresh_lists(props: Any, lists: dict[str, list[tuple[str, str]]]) -> bool:
    """Bring the lists of an open panel up to date (sources added, renamed or removed since it was built):
    ``lists`` {property name: its items (:func:`list_items`)}; ``True`` when any changed (OBS must redraw)."""
    changed = False
    for name, items in lists.items():
        p = obs.obs_properties_get(props, name)
        if p is not None:
            changed = fill_list(p, items) or changed
    return changed


def _string_list(props: Any, name: str, label: str, choices: list[tuple[str, str]], current: str,
                 modified: Callable[..., Any], empty: str | None = None, missing: str = "{name} (missing)") -> Any:
    """A list of ``(label, value)`` choices; ``empty``: a first entry for ``""``; the ``current`` value is kept (as
    missing) when it is not among them."""
    p = obs.obs_properties_add_list(props, name, label, obs.OBS_COMBO_TYPE_LIST, obs.OBS_COMBO_FORMAT_STRING)
    for text, value in list_items(choices, current, empty, missing):
        obs.obs_property_list_add_string(p, text, value)
    obs.obs_property_set_modified_callback(p, modified)
    return p


def _moments_group(props: Any, modified: Callable[..., Any], lists: dict[str, list[tuple[str, str]]],
                   current: dict[str, str], w: Words) -> None:
    """The Moments group: recording chapters, how long a moment is, and the opt-in action."""
    grp = obs.obs_properties_create()
    _info(grp, "moments_note")
    p = obs.obs_properties_add_bool(grp, "chapters_enabled", w("panel.chapters_enabled"))
    obs.obs_property_set_long_description(p, w("panel.chapters_enabled_hint"))
    obs.obs_property_set_modified_callback(p, modified)
    p = obs.obs_properties_add_bool(grp, "chapters_negative", w("panel.chapters_negative"))
    obs.obs_property_set_long_description(p, w("panel.chapters_negative_hint"))
    p = obs.obs_properties_add_float_slider(grp, "moment_min_s", w("panel.moment_min_s"), MOMENT_MIN_S, MOMENT_MAX_S,
                                            0.5)
    obs.obs_property_set_long_description(p, w("panel.moment_min_s_hint"))
    p = obs.obs_properties_add_float_slider(grp, "moment_negative_min_s", w("panel.moment_negative_min_s"),
                                            NEGATIVE_MOMENT_MIN_S, NEGATIVE_MOMENT_MAX_S, 1.0)
    obs.obs_property_set_long_description(p, w("panel.moment_negative_min_s_hint"))
    _string_list(grp, "action", w("panel.action"), lists["action"], "", modified)
    _string_list(grp, "action_trigger", w("panel.action_trigger"), lists["action_trigger"],
                 current.get("action_trigger", ""), modified, missing=missing_entry(w))
    _string_list(grp, "action_source", w("panel.action_source"), lists["action_source"],
                 current.get("action_source", ""), modified, empty=w("panel.action_source_empty"),
                 missing=missing_entry(w))
    _string_list(grp, "action_scene", w("panel.action_scene"), lists["action_scene"], current.get("action_scene", ""),
                 modified, empty=w("panel.action_scene_empty"), missing=missing_entry(w))
    obs.obs_properties_add_float_slider(grp, "action_seconds", w("panel.action_seconds"), ACTION_MIN_S, ACTION_MAX_S,
                                        0.5)
    p = obs.obs_properties_add_int(grp, "action_interval_s", w("panel.action_interval_s"), 0, INTERVAL_MAX_S, 10)
    obs.obs_property_set_long_description(p, w("panel.action_interval_s_hint"))
    _info(grp, "actions_note")
    obs.obs_properties_add_group(props, "moments", w("panel.moments"), obs.OBS_GROUP_NORMAL, grp)


def build(buttons: Callbacks, modified: Callable[..., Any], *, video_sources: list[tuple[str, str]],
          text_sources: list[str], models: list[tuple[str, str]], current: dict[str, str], models_dir: str,
          report_dir: str, moment_lists: dict[str, list[tuple[str, str]]] | None = None,
          viewer_languages: list[tuple[str, str]] | None = None, ui: Words | None = None) -> Any:
    """Every property of the panel, in order: status first, then the buttons used most, then the settings, then
    the Moments and Advanced groups. ``buttons``: property name → the entry module's module-level button callback;
    ``modified``: the entry module's modified callback (set on every setting); ``current``: the settings' current
    ``video_source``/``text_source``/``action_*`` (kept in the lists when the source is missing); ``moment_lists``:
    the ``(label, value)`` choices of ``action``, ``action_trigger``, ``action_source`` and ``action_scene``;
    ``viewer_languages``: those of ``viewer_language`` (:func:`obs_mindflow.obs.language.viewer_language_choices`);
    ``ui``: the panel's language (English without)."""
    w = ui or words(FALLBACK)
    props = obs.obs_properties_create()
    _info(props, "status", w("panel.status"))
    for hidden in (STATUS_KEY, REDRAW_PENDING):
        p = _info(props, hidden, "")
        obs.obs_property_set_visible(p, False)
    p = _info(props, "deps")
    obs.obs_property_text_set_info_type(p, obs.OBS_TEXT_INFO_ERROR)
    for name in ("install_deps", "check_deps", "session", "refresh", "calibrate", "clear_calibration"):
        obs.obs_properties_add_button(props, name, w("panel." + name), buttons[name])
    # The notes that come and go sit under the buttons: above them, a note appearing or going moved the buttons
    # between two clicks (a second Refresh status landed on Calibrate to my face; issue 23).
    p = _info(props, "setup")
    obs.obs_property_text_set_info_type(p, obs.OBS_TEXT_INFO_WARNING)
    p = _info(props, "last_error")
    obs.obs_property_text_set_info_type(p, obs.OBS_TEXT_INFO_ERROR)
    _info(props, "result")
    obs.obs_properties_add_button(props, "open_report", w("panel.open_report"), buttons["open_report"])
    _info(props, "history")
    obs.obs_properties_add_button(props, "open_history", w("panel.open_history"), buttons["open_history"])

    p = _string_list(props, "video_source", w("panel.video_source"), video_sources, current.get("video_source", ""),
                     modified, empty=w("panel.video_empty"), missing=missing_entry(w))
    obs.obs_property_set_long_description(p, w("panel.video_source_hint"))
    _string_list(props, "text_source", w("panel.text_source"), [(n, n) for n in text_sources],
                 current.get("text_source", ""), modified, empty=w("panel.text_empty"), missing=missing_entry(w))

    p = obs.obs_properties_add_text(props, "template", w("panel.template"), obs.OBS_TEXT_DEFAULT)
    obs.obs_property_set_long_description(p, w("panel.template_hint", placeholders="; ".join(
        f"{{{k}}}: {v}" for k, v in PLACEHOLDERS.items())))
    obs.obs_property_set_modified_callback(p, modified)
    _info(props, "template_note")
    p = obs.obs_properties_add_bool(props, "hide_negative_share", w("panel.hide_negative_share"))
    obs.obs_property_set_long_description(p, w("panel.hide_negative_share_hint", placeholders=", ".join(
        "{" + k + "}" for k in PRIVATE_PLACEHOLDERS)))
    obs.obs_property_set_modified_callback(p, modified)
    p = obs.obs_properties_add_text(props, "idle_text", w("panel.idle_text"), obs.OBS_TEXT_DEFAULT)
    obs.obs_property_set_long_description(p, w("panel.idle_text_hint"))
    obs.obs_property_set_modified_callback(p, modified)
    p = _string_list(props, "viewer_language", w("panel.viewer_language"), viewer_languages or [],
                     current.get("viewer_language", ""), modified)
    obs.obs_property_set_long_description(p, w("panel.viewer_language_hint"))
    p = obs.obs_properties_add_float_slider(props, "rate_hz", w("panel.rate_hz"), RATE_MIN_HZ, RATE_MAX_HZ, 0.5)
    obs.obs_property_set_long_description(p, w("panel.rate_hz_hint"))

    p = obs.obs_properties_add_list(props, "model", w("panel.model"), obs.OBS_COMBO_TYPE_LIST,
                                    obs.OBS_COMBO_FORMAT_STRING)
    for label, name in models:
        obs.obs_property_list_add_string(p, label, name)
    obs.obs_property_list_add_string(p, w("panel.custom_model"), CUSTOM_MODEL)
    obs.obs_property_set_modified_callback(p, modified)

    p = obs.obs_properties_add_float_slider(props, "calibration_s", w("panel.calibration_s"), CALIBRATION_MIN_S,
                                            CALIBRATION_MAX_S, 1.0)
    obs.obs_property_set_long_description(p, w("panel.calibration_s_hint"))
    p = obs.obs_properties_add_bool(props, "calibrate_each_session", w("panel.calibrate_each_session"))
    obs.obs_property_set_long_description(p, w("panel.calibrate_each_session_hint"))
    p = obs.obs_properties_add_bool(props, "nudge_enabled", w("panel.nudge_enabled"))
    obs.obs_property_set_long_description(p, w("panel.nudge_enabled_hint"))
    obs.obs_properties_add_path(props, "report_dir", w("panel.report_dir"), obs.OBS_PATH_DIRECTORY, None, report_dir)
    p = obs.obs_properties_add_int(props, "min_report_s", w("panel.min_report_s"), 0, int(MIN_REPORT_MAX_S), 10)
    obs.obs_property_set_long_description(p, w("panel.min_report_s_hint"))
    obs.obs_properties_add_button(props, "open_reports", w("panel.open_reports"), buttons["open_reports"])
    lists = {"action": [], "action_trigger": [], "action_source": [], "action_scene": []} | (moment_lists or {})
    _moments_group(props, modified, lists, current, w)

    adv = obs.obs_properties_create()
    p = obs.obs_properties_add_bool(adv, "overlay_enabled", w("panel.overlay_enabled"))
    obs.obs_property_set_long_description(p, w("panel.overlay_enabled_hint"))
    obs.obs_property_set_modified_callback(p, modified)
    obs.obs_properties_add_int(adv, "overlay_port", w("panel.overlay_port"), PORT_MIN, PORT_MAX, 1)
    _info(adv, "overlay_url")
    obs.obs_properties_add_button(adv, "add_overlay", w("panel.add_overlay"), buttons["add_overlay"])
    obs.obs_properties_add_path(adv, "model_folder", w("panel.model_folder"), obs.OBS_PATH_DIRECTORY, None, models_dir)
    p = obs.obs_properties_add_int_slider(adv, "uncertain_below", w("panel.uncertain_below"), 0, UNCERTAIN_MAX_PCT, 1)
    obs.obs_property_set_long_description(p, w("panel.uncertain_below_hint"))
    obs.obs_properties_add_button(adv, "write_report", w("panel.write_report"), buttons["write_report"])
    obs.obs_properties_add_button(adv, "reset", w("panel.reset"), buttons["reset"])
    obs.obs_properties_add_group(props, "advanced", w("panel.advanced"), obs.OBS_GROUP_NORMAL, adv)
    return props


# ==================================================================================================================
# Keeping it true (callbacks)
# ==================================================================================================================

_KINDS = {NORMAL: "OBS_TEXT_INFO_NORMAL", WARNING: "OBS_TEXT_INFO_WARNING", ERROR: "OBS_TEXT_INFO_ERROR"}


def apply(props: Any, view: PanelView, force_status: bool = False, typing: bool = False) -> bool:
    """Make ``props`` show ``view``; ``True`` when anything visible changed (return it from the callback so OBS
    redraws). The ``status`` text is replaced only when ``view.status_key`` differs from the one shown, or with
    ``force_status`` (a button: the user asked, so the "as of" time moves on too).

    ``typing``: called for a key typed in a text field. OBS's redraw replaces every widget under the cursor — keys
    typed meanwhile are lost (issue 23: "{emotion}" typed at 250 ms a key left "{emot"), so the properties are
    changed in place and ``False`` is returned; the next callback that is not typing returns ``True`` (a button, a
    list, a tick box) and OBS shows what changed."""
    changed = _apply(props, view, force_status)
    pending = obs.obs_properties_get(props, REDRAW_PENDING)
    was_pending = pending is not None and obs.obs_property_description(pending) == "1"
    if typing:
        if changed and pending is not None and not was_pending:
            obs.obs_property_set_description(pending, "1")
        return False
    if was_pending:
        obs.obs_property_set_description(pending, " ")
    return changed or was_pending


def _apply(props: Any, view: PanelView, force_status: bool) -> bool:
    changed = False
    key_prop = obs.obs_properties_get(props, STATUS_KEY)
    status_stale = (force_status or key_prop is None or
                    obs.obs_property_description(key_prop) != (view.status_key or " "))
    if key_prop is not None and status_stale:
        obs.obs_property_set_description(key_prop, view.status_key or " ")
    for name, item in view.items.items():
        p = obs.obs_properties_get(props, name)
        if p is None:
            continue
        if item.text is not None and (name != "status" or status_stale):
            text = item.text or " "        # OBS shows an info property's name when its text is empty
            if obs.obs_property_description(p) != text:
                obs.obs_property_set_description(p, text)
                changed = changed or item.visible
        if item.kind is not None:
            kind = getattr(obs, _KINDS[item.kind])
            if obs.obs_property_text_info_type(p) != kind:
                obs.obs_property_text_set_info_type(p, kind)
                changed = changed or item.visible
        if bool(obs.obs_property_visible(p)) != item.visible:
            obs.obs_property_set_visible(p, item.visible)
            changed = True
    return changed


def shown(props: Any, names: list[str] | tuple[str, ...]) -> dict[str, tuple[str, bool]]:
    """``{name: (text, visible)}`` of what ``props`` shows (tests and the e2e hooks read the panel this way)."""
    out = {}
    for name in names:
        p = obs.obs_properties_get(props, name)
        if p is not None:
            out[name] = (obs.obs_property_description(p), bool(obs.obs_property_visible(p)))
    return out


# ==================================================================================================================
# Model list labels (from the model cards)
# ==================================================================================================================

def model_choices(root: Any = None, words: Any = None) -> list[tuple[str, str]]:
    """``(label, folder name)`` of every bundled model: its title, which one is the default, its measured accuracy
    (with the test set it was measured on) and speed from its card, and which one is the lightest — "MindFlow r3d —
    default, 83 % on FER+, 1.0 ms/face", in the panel's language (``words``, a :class:`~obs_mindflow.i18n.Words`;
    English by default; the title and the test set's name are names and stay as the card has them). "most accurate"
    only when every model's figure comes from the same test set (the card's dataset, its first word): a FER2013
    figure is not comparable with a FER+ one, and "most accurate, 68 %" beside the default's "83 % on FER+" read as a
    contradiction (issue 23). Unreadable cards are skipped. Light: no numpy."""
    from ..engine.card import ModelCard, ModelCardError, find_model_folders
    from ..engine.catalog import DEFAULT_MODEL, MODELS_DIR
    from ..i18n import Words

    w = words or Words()
    cards = []
    for folder in find_model_folders(root or MODELS_DIR):
        try:
            cards.append((folder.name, ModelCard.load(folder)))
        except ModelCardError:
            continue

    def accuracy(card: Any) -> float | None:
        acc = card.accuracy.get("accuracy") if isinstance(card.accuracy, dict) else None
        return float(acc) if isinstance(acc, (int, float)) else None

    def dataset(card: Any) -> str:
        return str(card.accuracy.get("dataset", "")).split(" ")[0] if isinstance(card.accuracy, dict) else ""

    accs = {name: accuracy(card) for name, card in cards}
    speeds = {name: card.ms_per_face for name, card in cards if card.ms_per_face is not None}
    measured = [name for name, _ in cards if accs[name] is not None]
    sets = {dataset(card) for name, card in cards if accs[name] is not None}
    best = max(measured, key=lambda n: accs[n]) if len(measured) > 1 and len(sets) == 1 else None
    lightest = min(speeds, key=lambda n: speeds[n], default=None)
    out = []
    for name, card in cards:
        facts = []
        if accs[name] is not None:
            on, percent = dataset(card), f"{accs[name] * 100:.0f}"
            facts.append(w("panel.model_accuracy_on", percent=percent, dataset=on) if on
                         else w("panel.model_accuracy", percent=percent))
        if name in speeds:
            facts.append(w("panel.model_speed", ms=w.number(speeds[name], ".1f")))
        notes = [w(key) for key, mine in (("panel.model_is_default", name == DEFAULT_MODEL),
                                          ("panel.model_most_accurate", name == best),
                                          ("panel.model_lightest", name == lightest)) if mine and len(cards) > 1]
        short = card.title.split(" (")[0]          # the list must stay narrow: the panel is as wide as its widest field
        label = short + (" — " + ", ".join(notes + facts) if facts or notes else "")
        out.append((label, name))
    return out
