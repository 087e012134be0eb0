"""The script's settings: names, types, defaults, validation and the one-line log. Pure Python (no obspython).

:data:`FIELDS` is the single table the OBS adapter uses for ``script_defaults`` and for reading the settings object;
:func:`validate` turns the raw values into a :class:`Settings` plus a list of problems (a value out of range is
clamped, an unusable one replaced by its default; each problem says what was done and how to fix it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ..engine.catalog import DEFAULT_MODEL
from ..engine.session.moments import MomentOptions
from ..i18n import Said
from .template import DEFAULT_TEMPLATE

if TYPE_CHECKING:
    from ..engine.recipe import SessionRecipe

RATE_MIN_HZ, RATE_MAX_HZ, RATE_DEFAULT_HZ = 1.0, 15.0, 5.0
PORT_MIN, PORT_MAX, PORT_DEFAULT = 1024, 65535, 8765
CALIBRATION_MIN_S, CALIBRATION_MAX_S, CALIBRATION_DEFAULT_S = 5.0, 120.0, 20.0
MIN_REPORT_MAX_S, MIN_REPORT_DEFAULT_S = 3600, 60
#: Not a field of the panel: the personal baselines, a JSON object {model name: baseline dict} that the controller
#: reads when a model loads and writes after a calibration (obs/baselines.py).
BASELINES_KEY = "baselines"
DEFAULT_MODEL_CHOICE = DEFAULT_MODEL
CUSTOM_MODEL = "__custom__"                  # model list entry meaning "the folder in model_folder"
TEXT_UPDATE_HZ = 10                          # text source refresh rate (only changed text is written)

#: What a moment does in OBS (obs/actions.py): nothing (the default: opt-in), show a source, switch a scene and back.
NONE, SHOW_SOURCE, SWITCH_SCENE = "none", "show_source", "switch_scene"
ACTIONS = (NONE, SHOW_SOURCE, SWITCH_SCENE)
#: Which moments start the action: an emotion label of the model's card, or one of these.
ANY, NEGATIVE = "any", "negative"
ACTION_MIN_S, ACTION_MAX_S, ACTION_DEFAULT_S = 1.0, 60.0, 5.0
INTERVAL_MAX_S, INTERVAL_DEFAULT_S = 3600, 60
_MOMENTS = MomentOptions()                   # the detector's own defaults (engine/session/moments.py says why)
MOMENT_MIN_S, MOMENT_MAX_S = 2.0, 60.0
NEGATIVE_MOMENT_MIN_S, NEGATIVE_MOMENT_MAX_S = 5.0, 120.0

#: The highest "say uncertain below this confidence" a streamer may set, in percent (0: the model's own threshold).
UNCERTAIN_MAX_PCT = 90

#: ``(name, kind, default)``: ``kind`` is the obs_data getter family — "string", "double", "int" or "bool".
#: Defaults, and why:
#: - ``hide_negative_share`` on: the negative share is a number about the streamer's emotional state; showing it to
#:   viewers is a choice they make (privacy by default), so the default template shows only the emotion.
#: - ``idle_text`` empty: outside a session MindFlow has nothing current to show, and the text source is on stream.
#: - ``viewer_language`` empty: what viewers read (the emotion on the text source, the overlay page) is in OBS's own
#:   language, as the panel is; a streamer whose audience speaks another language picks it (``i18n.LANGUAGES``).
#: - ``min_report_s`` 60 s: a test session of a few seconds leaves no report folder ("Write report now" keeps one).
#: - ``calibrate_each_session`` off: a session often starts with a greeting smile or a tense moment, which a
#:   calibration would absorb (or refuse); the streamer calibrates when they are as they usually are.
#: - ``chapters_enabled`` on: a recording chapter at each moment's start costs nothing and only lands in Hybrid MP4
#:   recordings on OBS >= 30.2 (elsewhere a one-time note in the log); ``chapters_negative`` off: chapters end up in
#:   public videos, and a "Tense stretch" chapter tells viewers more than the streamer may want.
#: - ``action`` none: OBS acting on the streamer's face (a scene switch on stream) is a choice they make.
#:   ``action_interval_s`` 60 s: an action at most once a minute, however often the moments come.
#: - ``moment_min_s`` / ``moment_negative_min_s``: MomentOptions' ``min_seconds`` / ``negative_min_seconds``.
#: - ``uncertain_below`` 0 (percent): the threshold measured for the chosen model (its card's ``uncertain``); a
#:   number overrides it for every model.
FIELDS: tuple[tuple[str, str, Any], ...] = (
    ("video_source", "string", ""),
    ("text_source", "string", ""),
    ("template", "string", DEFAULT_TEMPLATE),
    ("hide_negative_share", "bool", True),
    ("idle_text", "string", ""),
    ("viewer_language", "string", ""),
    ("rate_hz", "double", RATE_DEFAULT_HZ),
    ("model", "string", DEFAULT_MODEL_CHOICE),
    ("model_folder", "string", ""),
    ("calibration_s", "double", CALIBRATION_DEFAULT_S),
    ("calibrate_each_session", "bool", False),
    ("report_dir", "string", ""),
    ("min_report_s", "int", MIN_REPORT_DEFAULT_S),
    ("overlay_enabled", "bool", False),
    ("overlay_port", "int", PORT_DEFAULT),
    ("nudge_enabled", "bool", False),
    ("chapters_enabled", "bool", True),
    ("chapters_negative", "bool", False),
    ("moment_min_s", "double", _MOMENTS.min_seconds),
    ("moment_negative_min_s", "double", _MOMENTS.negative_min_seconds),
    ("action", "string", NONE),
    ("action_trigger", "string", "happy"),
    ("action_source", "string", ""),
    ("action_scene", "string", ""),
    ("action_seconds", "double", ACTION_DEFAULT_S),
    ("action_interval_s", "int", INTERVAL_DEFAULT_S),
    ("uncertain_below", "int", 0),
)


@dataclass(frozen=True)
class Settings:
    """Validated settings. ``rate_hz`` in analyses per second; ``report_dir`` ``""`` means the default folder;
    ``model`` is a folder name under ``models/`` or :data:`CUSTOM_MODEL` (then ``model_folder`` is used);
    ``calibration_s`` and ``min_report_s`` in seconds; ``idle_text`` is what the text source shows outside a session;
    ``hide_negative_share`` keeps the negative share off the text source and the overlay page.

    Moments (``engine/session/moments.py``, ``obs/actions.py``): ``chapters_enabled`` adds a recording chapter at each
    moment's start (``chapters_negative``: negative stretches too); ``moment_min_s`` / ``moment_negative_min_s``
    are how long an emotion / a negative stretch must last to be a moment; ``action`` (one of :data:`ACTIONS`) runs
    when a moment matching ``action_trigger`` (a label, ``any`` or ``negative``) starts: ``action_source`` shown or
    ``action_scene`` switched to for ``action_seconds``, at most once per ``action_interval_s``."""

    video_source: str = ""
    text_source: str = ""
    template: str = DEFAULT_TEMPLATE
    hide_negative_share: bool = True
    idle_text: str = ""
    viewer_language: str = ""
    rate_hz: float = RATE_DEFAULT_HZ
    model: str = DEFAULT_MODEL_CHOICE
    model_folder: str = ""
    calibration_s: float = CALIBRATION_DEFAULT_S
    calibrate_each_session: bool = False
    report_dir: str = ""
    min_report_s: int = MIN_REPORT_DEFAULT_S
    overlay_enabled: bool = False
    overlay_port: int = PORT_DEFAULT
    nudge_enabled: bool = False
    chapters_enabled: bool = True
    chapters_negative: bool = False
    moment_min_s: float = _MOMENTS.min_seconds
    moment_negative_min_s: float = _MOMENTS.negative_min_seconds
    action: str = NONE
    action_trigger: str = "happy"
    action_source: str = ""
    action_scene: str = ""
    action_seconds: float = ACTION_DEFAULT_S
    action_interval_s: int = INTERVAL_DEFAULT_S
    uncertain_below: int = 0

    @property
    def model_choice(self) -> str:
        """What ``resolve_model_dir`` takes: a bundled model's name or a folder path."""
        return self.model_folder.strip() if self.model == CUSTOM_MODEL else self.model

    def report_root(self) -> Path:
        if self.report_dir.strip():
            return Path(self.report_dir.strip()).expanduser()
        from ..engine.reports.storage import default_report_dir
        return default_report_dir()

    def moment_options(self) -> MomentOptions:
        """The moment detector's options for the next session: these settings, the detector's defaults for the rest."""
        return MomentOptions(min_seconds=float(self.moment_min_s),
                             negative_min_seconds=float(self.moment_negative_min_s))

    def recipe(self, language: str = "") -> "SessionRecipe":
        """How the engine builds this script's sessions: the model, the uncertain threshold, the break nudge, the
        moments and the minimum report length (the engine's defaults for the rest, its rules included);
        ``language``: the reports' (the streamer's: OBS's own, which is not a setting of the script)."""
        from ..engine.recipe import SessionRecipe

        return SessionRecipe(model=self.model_choice, uncertain_below=self.uncertain_below / 100,
                             nudge=self.nudge_enabled, min_report_s=float(self.min_report_s),
                             moments=self.moment_options(), language=language)

    @property
    def action_target(self) -> str:
        """The source to show or the scene to switch to (``""``: nothing chosen, or no action)."""
        return {SHOW_SOURCE: self.action_source, SWITCH_SCENE: self.action_scene}.get(self.action, "")

    def engine_key(self) -> tuple:
        """The settings that need a new engine (model) when they change."""
        return (self.model_choice,)

    def log_line(self) -> str:
        """All settings on one line, for the script log."""
        def on(flag: bool) -> str:
            return "on" if flag else "off"
        parts = [f"video_source={self.video_source!r}", f"text_source={self.text_source!r}",
                 f"template={self.template!r}", f"idle_text={self.idle_text!r}",
                 f"viewer_language={self.viewer_language or '(as OBS)'!r}",
                 f"hide_negative_share={on(self.hide_negative_share)}", f"rate={self.rate_hz:g} Hz",
                 f"model={self.model_choice or DEFAULT_MODEL_CHOICE!r}",
                 f"calibration={self.calibration_s:g} s{', each session' if self.calibrate_each_session else ''}",
                 f"report_dir={self.report_dir or '(default)'!r}", f"min_report={self.min_report_s:g} s",
                 f"overlay={'on, port ' + str(self.overlay_port) if self.overlay_enabled else 'off'}",
                 f"nudge={on(self.nudge_enabled)}",
                 f"chapters={on(self.chapters_enabled)}{', negative too' if self.chapters_negative else ''}",
                 f"moments={self.moment_min_s:g} s, negative {self.moment_negative_min_s:g} s",
                 "action=" + (f"{self.action} {self.action_target!r} on {self.action_trigger} for "
                              f"{self.action_seconds:g} s, every {self.action_interval_s} s at most"
                              if self.action != NONE else NONE)]
        return "MindFlow settings: " + " ".join(parts)


def _as(kind: str, value: Any, default: Any) -> Any:
    if kind == "string":
        return value if isinstance(value, str) else default
    if kind == "bool":
        return bool(value) if isinstance(value, (bool, int)) else default
    if kind == "int":
        try:
            return int(value)
        except (TypeError, ValueError):
            return default
    try:
        f = float(value)
    except (TypeError, ValueError):
        return default
    return f if math.isfinite(f) else default


def _clamp(s: dict[str, Any], name: str, lo: float, hi: float, what: str, problems: list[str],
           unit: str = " s") -> None:
    v = s[name]
    if not lo <= v <= hi:
        s[name] = type(v)(min(hi, max(lo, v)))
        problems.append(f"{what} {v:g}{unit} is outside {lo:g}–{hi:g}{unit}; using {s[name]:g}{unit}")


def validate(raw: Mapping[str, Any]) -> tuple[Settings, list[str]]:
    """Raw values (from OBS's settings object) → :class:`Settings` and the problems found (empty when all is well).

    The text template is returned as typed and not checked here: the controller checks it
    (:func:`~obs_mindflow.obs.template.check_template`), shows a problem in the panel only — the template is typed
    one key at a time — and keeps using the last good template meanwhile."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    for name, kind, default in FIELDS:
        values[name] = _as(kind, raw.get(name, default), default)
    names = {f.name for f in fields(Settings)}
    s = {k: v for k, v in values.items() if k in names}
    rate = s["rate_hz"]
    if not RATE_MIN_HZ <= rate <= RATE_MAX_HZ:
        clamped = min(RATE_MAX_HZ, max(RATE_MIN_HZ, rate))
        problems.append(Said("problem.rate", rate=f"{rate:g}", low=f"{RATE_MIN_HZ:g}", high=f"{RATE_MAX_HZ:g}",
                             used=f"{clamped:g}"))
        s["rate_hz"] = clamped
    port = s["overlay_port"]
    if not PORT_MIN <= port <= PORT_MAX:
        problems.append(f"overlay port {port} is outside {PORT_MIN}–{PORT_MAX}; using {PORT_DEFAULT}")
        s["overlay_port"] = PORT_DEFAULT
    _clamp(s, "calibration_s", CALIBRATION_MIN_S, CALIBRATION_MAX_S, "calibration time", problems)
    _clamp(s, "min_report_s", 0.0, MIN_REPORT_MAX_S, "minimum session length for a report", problems)
    _clamp(s, "moment_min_s", MOMENT_MIN_S, MOMENT_MAX_S, "moment length", problems)
    _clamp(s, "moment_negative_min_s", NEGATIVE_MOMENT_MIN_S, NEGATIVE_MOMENT_MAX_S, "negative stretch length",
           problems)
    _clamp(s, "action_seconds", ACTION_MIN_S, ACTION_MAX_S, "action time", problems)
    _clamp(s, "action_interval_s", 0.0, INTERVAL_MAX_S, "time between two actions", problems)
    _clamp(s, "uncertain_below", 0.0, UNCERTAIN_MAX_PCT, "'uncertain' threshold", problems, unit=" %")
    if s["action"] not in ACTIONS:
        problems.append(f"moment action {s['action']!r} is unknown; using none (choose one in Moments)")
        s["action"] = NONE
    if not s["action_trigger"].strip():
        s["action_trigger"] = ANY
    if s["model"] == CUSTOM_MODEL and not s["model_folder"].strip():
        problems.append(Said("problem.custom_folder_unset"))
    return Settings(**s), problems
