"""What MindFlow shows: one snapshot of the live state (:class:`LiveView`) → the text source's placeholder values and
the overlay page's state. Both outputs read the same view, so their two schemas live here and nowhere else: the
text template (``obs/template.py``) takes :data:`PLACEHOLDERS`, the overlay server publishes :func:`overlay_state`.

Pure Python (no numpy): the OBS script reads the placeholder table while its packages may still be missing.

Overlay state schema (``/state.json`` and the ``/events`` stream; the page copes with any labels and any missing
field)::

    {"model": "fer-mini-xception",                    # model card name
     "labels": ["angry", ..., "neutral"],             # the model's classes, display order
     "negative_labels": ["angry", "disgust", "fear", "sad"],
     "paused": false,                                 # analysis paused by the streamer
     "face": true,                                    # a face is being tracked now
     "emotion": "happy",                              # smoothed emotion; "" when no face
     "confidence": 0.83,                              # probability of "emotion", 0..1
     "probabilities": {"angry": 0.01, ...},           # label -> smoothed probability, 0..1
     "session": {"active": true,
                 "duration_s": 1234.5,                # seconds since the session started
                 "coverage": 0.93,                    # share of the session with a face, 0..1
                 "profile": {"happy": 0.51, ...},     # label -> share of face time, 0..1
                 "negative_share": 0.21,              # share of face time on negative labels, 0..1
                 "rolling_negative_share": 0.30,      # the same over the last rolling_window_s seconds
                 "rolling_window_s": 300,
                 "trend": [[t_s, negative_share], ...]},   # <= 120 points, t_s seconds since start
     "calibration": {"active": false,                 # a calibration is running now
                     "progress": 0.0,                 # its progress, 0..1
                     "applied": true,                 # a personal baseline corrects the readings
                     "message": "calibrated: made …"},  # the last calibration's outcome ("" before any)
     "moment": {"id": 3, "title": "Big laugh",        # a moment that has just started (MOMENT_SHOWN_S), else null;
                "emotion": "happy", "negative": false,  # the page shows it as a toast when its URL has ?moments=1
                "start_s": 754.2},                      # (a negative one is left out while the share is private)
     "message": "",                                   # a short note shown small (a nudge, "paused")
     "updated": 1764000000.0}                         # time.time() of the state, seconds

:func:`viewer_overlay_state` makes the state viewers may see when the streamer hides their negative share: the
session's ``profile``, ``negative_share``, ``rolling_negative_share``, ``rolling_window_s`` and ``trend`` are left
out and ``"private": true`` is added (the page then hides those panels). It also adds the viewers' language:
``"lang": "de-DE"`` and ``"strings": {"emotion.happy": "Freude", "overlay.session": "Sitzung", …}`` (the page
shows the labels and its own words through them; English without).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..i18n import Words
from .formatting import format_duration, format_percent

NO_VALUE = "–"

#: Text-template placeholder → what it shows (the values are display text, see :func:`text_values`).
PLACEHOLDERS: dict[str, str] = {
    "emotion": "the smoothed emotion now ('uncertain' when the face cannot be read, 'no face' when none is tracked, "
               "'paused' while paused)",
    "confidence": "its smoothed probability, e.g. '83 %'",
    "negative_share": "share of this session's face time with negative expressions, e.g. '21 %'",
    "rolling_negative": "the same over the last 5 minutes",
    "coverage": "share of the analysed session time with a face visible",
    "duration": "session length, e.g. '12 min 05 s'",
    "dominant": "the session's most frequent emotion so far",
    "faces": "number of faces in the last analysed frame",
    "rate": "analyses per second achieved, e.g. '5.0'",
    "model": "the model's name",
    "nudge": "the last break nudge (opt-in) during the minute after it, else empty",
}


#: Placeholders that disclose the streamer's negative share: blank while it is hidden from viewers.
PRIVATE_PLACEHOLDERS: tuple[str, ...] = ("negative_share", "rolling_negative")

#: Keys of the overlay state's ``session`` block that disclose the negative share (the profile adds up to it).
PRIVATE_SESSION_KEYS: tuple[str, ...] = ("profile", "negative_share", "rolling_negative_share", "rolling_window_s",
                                         "trend")


@dataclass(frozen=True)
class LiveView:
    """Everything the outputs show, at one moment.

    ``active``: a session runs (even paused); ``stale``: frames are wanted but none was analysed for a few seconds
    (the webcam stopped); ``face``: a face was detected in the latest result; ``emotion``/``confidence``/
    ``probabilities``: the smoothed display of the latest result (``""`` when no face is tracked); ``faces``: faces in
    the latest frame; ``rate_hz``: analyses per second achieved; ``session``: a ``StatsSnapshot`` (without timeline)
    of the running or last session, ``None`` before the first; ``trend``: ``(seconds since start, rolling negative
    share)`` points; ``nudge``: the nudge shown now (``""`` when none); ``calibrating``/``calibration_progress``
    (0..1): a calibration in progress; ``calibrated``: a personal baseline corrects the readings;
    ``calibration_message``: the last calibration's outcome; ``moment``: a moment that has just started (``id``,
    ``title``, ``emotion``, ``negative``, ``start_s``: seconds of session time), for a few seconds, else ``None``;
    ``updated``: ``time.time()`` in seconds.
    """

    model: str
    labels: tuple[str, ...]
    negative_labels: tuple[str, ...]
    active: bool = False
    paused: bool = False
    stale: bool = False
    face: bool = False
    emotion: str = ""
    confidence: float = 0.0
    probabilities: dict[str, float] = field(default_factory=dict)
    faces: int = 0
    rate_hz: float = 0.0
    session: Any = None
    trend: tuple[tuple[float, float], ...] = ()
    nudge: str = ""
    calibrating: bool = False
    calibration_progress: float = 0.0
    calibrated: bool = False
    calibration_message: str = ""
    moment: dict[str, Any] | None = None
    updated: float = 0.0


def text_values(v: LiveView, words: Words | None = None) -> dict[str, str]:
    """The text template's placeholder values, as display text (exactly the keys of :data:`PLACEHOLDERS`); the
    session's length in the units of ``words``' language (English without)."""
    s = v.session
    if v.paused:
        emotion = "paused"
    elif v.stale:
        emotion = "no video"
    else:
        emotion = v.emotion or "no face"
    has_face = s is not None and s.negative_share is not None
    return {
        "emotion": emotion,
        "confidence": format_percent(v.confidence) if v.emotion in v.labels and not v.paused else NO_VALUE,
        "negative_share": format_percent(s.negative_share) if has_face else NO_VALUE,
        "rolling_negative": format_percent(s.rolling_negative_share)
        if s is not None and s.rolling_negative_share is not None else NO_VALUE,
        "coverage": format_percent(s.coverage) if s is not None and s.analysed_s > 0 else NO_VALUE,
        "duration": format_duration(s.duration_s if s is not None else 0, words),
        "dominant": (s.dominant or NO_VALUE) if has_face else NO_VALUE,
        "faces": str(v.faces),
        "rate": f"{v.rate_hz:.1f}",
        "model": v.model,
        "nudge": v.nudge,
    }


def overlay_state(v: LiveView) -> dict[str, Any]:
    """The overlay page's state (schema in this module's docstring), JSON types only."""
    session: dict[str, Any] = {"active": v.active}
    s = v.session
    if s is not None:
        session.update({"duration_s": s.duration_s, "coverage": s.coverage,
                        "profile": dict(zip(s.labels, s.shares)), "negative_share": s.negative_share,
                        "rolling_negative_share": s.rolling_negative_share,
                        "rolling_window_s": s.rolling_seconds, "trend": [list(p) for p in v.trend]})
    return {"model": v.model, "labels": list(v.labels), "negative_labels": list(v.negative_labels),
            "paused": v.paused, "face": v.face and not v.paused, "emotion": "" if v.paused else v.emotion,
            "confidence": float(v.confidence), "probabilities": dict(v.probabilities), "session": session,
            "calibration": {"active": v.calibrating, "progress": round(v.calibration_progress, 3),
                            "applied": v.calibrated, "message": v.calibration_message},
            "moment": dict(v.moment) if v.moment else None,
            "message": "paused" if v.paused else v.nudge, "updated": v.updated}


#: The placeholders whose values are emotion names (or the states "no face", "paused", "no video"): in the viewers'
#: language on stream.
NAMED_PLACEHOLDERS: tuple[str, ...] = ("emotion", "dominant")


def viewer_text_values(values: dict[str, str], hide_negative: bool, words: Words | None = None) -> dict[str, str]:
    """The placeholder values for the text source: :data:`PRIVATE_PLACEHOLDERS` blank when ``hide_negative``; the
    emotion names (:data:`NAMED_PLACEHOLDERS`) in the language of ``words`` (English without)."""
    if words is not None:
        values = {k: (words.emotion(v) if k in NAMED_PLACEHOLDERS else v) for k, v in values.items()}
    if not hide_negative:
        return values
    return {k: ("" if k in PRIVATE_PLACEHOLDERS else v) for k, v in values.items()}


#: The moments' English titles (``session.moments.chapter_title``) → their catalogue keys; any other title is an
#: emotion's name (a label MindFlow has no title for), translated as one.
MOMENT_TITLE_KEYS: dict[str, str] = {"Smiles": "moment.smiles", "Big laugh": "moment.big_laugh",
                                     "Surprise": "moment.surprise", "Surprise!": "moment.surprise_spike",
                                     "Calm": "moment.calm", "Tense stretch": "moment.tense_stretch",
                                     "Tense moment": "moment.tense_moment"}


def moment_title(moment: dict[str, Any], words: Words) -> str:
    """A moment's title in the language of ``words`` (the overlay's toast: viewers read it)."""
    title = str(moment.get("title") or "")
    if title in MOMENT_TITLE_KEYS:
        return words(MOMENT_TITLE_KEYS[title])
    name = words.emotion(str(moment.get("emotion") or title.rstrip("!").lower()))
    return words("moment.emotion_spike", name=name) if title.endswith("!") else name


def report_moment_title(title: str, emotion: str, words: Words) -> str:
    """A moment's or chapter's title in a report's language (the summary, the moments table, the chapter block);
    English keeps the title as the detector wrote it (``"Anger!"``, where :func:`moment_title` names the emotion)."""
    if words.lang == "en-US":
        return title
    return moment_title({"title": title, "emotion": emotion}, words)


def viewer_words(words: Words) -> dict[str, Any]:
    """What the overlay page needs to speak the viewers' language: ``{"lang": "de-DE", "strings": {key: text}}`` —
    the page's own words (``overlay.*``) and the emotion names (``emotion.*``), English where a catalogue lacks one."""
    strings = {"overlay." + k: v for k, v in words.section("overlay.").items()}
    strings.update({"emotion." + k: v for k, v in words.section("emotion.").items()})
    return {"lang": words.lang, "strings": strings}


def viewer_overlay_state(state: dict[str, Any], hide_negative: bool, words: Words | None = None) -> dict[str, Any]:
    """The overlay state for the page (on stream): without :data:`PRIVATE_SESSION_KEYS` and with ``"private":
    true`` when ``hide_negative``; with ``lang`` and ``strings`` (:func:`viewer_words`) when ``words`` is given.
    ``state`` is not modified."""
    if words is not None:
        state = {**state, **viewer_words(words)}
        if state.get("paused"):
            state["message"] = words.emotion("paused")
        if state.get("moment"):
            state["moment"] = {**state["moment"], "title": moment_title(state["moment"], words)}
    if not hide_negative:
        return state
    session = {k: v for k, v in dict(state.get("session") or {}).items() if k not in PRIVATE_SESSION_KEYS}
    moment = state.get("moment")
    if moment and moment.get("negative"):
        moment = None                     # a "tense stretch" toast would tell viewers what the share hides
    return {**state, "session": session, "moment": moment, "private": True}
