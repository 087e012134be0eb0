"""What the panel shows, made from one load's state: the status lines, the one-line result of a session, and the
whole :class:`~obs_mindflow.obs.panel.PanelView` (pure data; :func:`obs_mindflow.obs.panel.apply` puts it on the
properties).

Part of the OBS adapter, but it calls nothing of obspython itself and reads nothing live: the controller builds a
:class:`PanelState` (an immutable value) on OBS's UI thread and the functions here render it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Mapping

from ..engine import views
from ..engine.formatting import format_duration, format_percent
from ..i18n import say
from .panel import ERROR, NORMAL, WARNING, Item, PanelView
from .language import font_problem, ui_words, viewer_words
from .settings import CUSTOM_MODEL, Settings
from .template import EXAMPLE_VALUES, TemplateError, private_placeholders_used, render

if TYPE_CHECKING:
    from ..engine.baseline import CalibrationProgress
    from ..engine.reports.files import FinishedSession

REPORT_FILE = "report.html"

#: Settings shown whenever the packages are there (the rest depend on other settings).
ALWAYS_SHOWN = ("video_source", "text_source", "template", "hide_negative_share", "idle_text", "rate_hz", "model",
                "calibration_s", "calibrate_each_session", "nudge_enabled", "report_dir", "min_report_s",
                "open_reports", "advanced", "overlay_enabled", "moments")


@dataclass(frozen=True)
class PanelState:
    """One load's state as the panel shows it, taken at one moment (built by the controller,
    :meth:`~obs_mindflow.obs.controller.MindFlowScript.panel_state`).

    ``model_loaded``: an engine is there (else the other engine fields are empty); ``active``/``paused``: a session
    runs (paused); ``view``: the live view while a session runs, ``values`` its text placeholders;
    ``calibration``: a calibration's progress while one runs; ``baseline``/``baseline_created``: the baseline in
    force (``""``: none); ``calibration_note``: the last calibration's outcome; ``labels``: the model's (``()``
    without one);
    ``session_since``/``session_reason``: when and why the session started; ``manual``: it was started with the
    button (it ends with it); ``live``: OBS streams or records; ``overlay_url``/``dock_url``: the overlay server's
    (``""``: none); ``browser_source``: this OBS has the Browser source; ``problems``: ``(area, message)`` of what
    is wrong now; ``last_error``; ``notice``: a one-time note; ``last_result``/``has_last_report``: the last
    session's line and whether its report exists; ``history_text``/``history_problem``/``has_history_page``: the
    last sessions; ``template_problem``: why the typed template is not used; ``moment_items``: the moments group's
    rows (:meth:`obs_mindflow.obs.moments.Moments.panel_items`)."""

    settings: Settings
    model_loaded: bool = False
    active: bool = False
    paused: bool = False
    view: views.LiveView | None = None
    values: Mapping[str, str] | None = None
    calibration: CalibrationProgress | None = None
    baseline: str = ""
    baseline_created: str = ""
    calibration_note: str = ""
    labels: tuple[str, ...] = ()
    session_since: datetime | None = None
    session_reason: str = ""
    manual: bool = False
    live: bool = False
    overlay_url: str = ""
    dock_url: str = ""
    browser_source: bool = True
    problems: tuple[tuple[str, str], ...] = ()
    last_error: str = ""
    notice: str = ""
    last_result: str = ""
    has_last_report: bool = False
    history_text: str = ""
    history_problem: str = ""
    has_history_page: bool = False
    template_problem: str = ""
    moment_items: Mapping[str, Any] = field(default_factory=dict)

    @property
    def calibrating(self) -> bool:
        return self.calibration is not None


def result_line(finished: FinishedSession, min_report_s: float = 0.0) -> str:
    """One line for the panel and the log, in the panel's language: how long, how much face, the main expressions,
    where the report is."""
    w = ui_words()
    s = finished.snapshot
    parts = []
    if s is not None and s.started and s.duration_s > 0:
        parts.append(format_duration(s.duration_s, w))
        parts.append(w("result.face", share=format_percent(s.coverage)))
        if s.negative_share is not None:
            top = [f"{w.emotion(label)} {format_percent(v)}" for label, v in s.profile()[:2]
                   if format_percent(v) != "0 %"]
            if top:
                parts.append(", ".join(top))
            parts.append(w("result.negative", share=format_percent(s.negative_share)))
    else:
        parts.append(w("result.nothing"))
    if finished.error is not None:
        parts.append(w("result.not_saved", error=say(finished.error, w)))
    elif finished.folder is not None:
        parts.append(w("result.report", path=finished.folder / REPORT_FILE))
    elif s is not None and s.started and s.duration_s > 0 and s.duration_s < min_report_s:
        parts.append(w("result.too_short", seconds=w.number(min_report_s)))
    else:
        parts.append(w("result.no_report"))
    return "; ".join(parts)


#: Why a session started (:mod:`obs_mindflow.obs.lifecycle`'s reasons, which the log keeps in English) → its key.
REASON_KEYS = {"streaming started": "status.reason_streaming", "recording started": "status.reason_recording",
               "started with the button": "status.reason_button",
               "OBS was already streaming at script load": "status.reason_was_streaming",
               "OBS was already recording at script load": "status.reason_was_recording"}


def status_lines(st: PanelState) -> tuple[list[str], str]:
    """The status lines, in the panel's language, and their stable key (without times and rates)."""
    lines, key = [], []
    w = ui_words()
    video_source = st.settings.video_source
    if not st.model_loaded:
        lines.append(w("status.no_model"))
        key.append("no model")
    elif st.active and st.view is not None:
        since = st.session_since.strftime("%H:%M:%S") if st.session_since else "?"
        reason = w(REASON_KEYS[st.session_reason]) if st.session_reason in REASON_KEYS else st.session_reason
        ends = w("status.ends_manual" if st.manual else "status.ends_auto")
        lines.append(w("status.running_paused" if st.paused else "status.running", since=since, reason=reason,
                       ends=ends))
        key.append(f"running {since} {st.paused}")
        v = st.view
        if v.paused:
            face = w("status.face_paused")
        elif not video_source:
            face = w("status.face_no_webcam")
        elif v.stale:
            face = w("status.face_no_picture", source=video_source)
        elif v.face:
            face = w("status.face_found")
        else:
            face = w("status.face_none")
        lines.append(w("status.analysing", rate=w.number(v.rate_hz, ".1f"), face=face))
        key.append(face)
    else:
        live = st.live
        lines.append(w("status.idle_live_no_webcam" if live and not video_source else "status.idle"))
        key.append(f"idle {live}")
    if st.model_loaded:
        note = st.calibration_note
        progress = st.calibration
        if progress is not None:
            lines.append(w("status.calibrating", percent=f"{progress.fraction * 100:.0f}",
                           elapsed=f"{progress.elapsed_s:.0f}", seconds=f"{progress.seconds:.0f}",
                           frames=progress.face_frames))
            key.append("calibrating")
        elif st.baseline:
            lines.append(w("status.calibrated", baseline=st.baseline))
            key.append("calibrated " + st.baseline_created)
        else:
            lines.append(w("status.not_calibrated"))
            key.append("uncalibrated")
        if note and progress is None:
            lines.append(note[0].upper() + note[1:] + ".")
            key.append(note)
    if st.overlay_url:
        lines.append(w("status.overlay_page", url=st.overlay_url))
        key.append(st.overlay_url)
    return lines, "|".join(key)


def template_preview(st: PanelState) -> str:
    """"On stream: happy (83 %)" — the template with the session's values (an example outside a session), as viewers
    see it."""
    active = st.active and st.values is not None
    values = st.values if active else EXAMPLE_VALUES
    try:
        text = render(st.settings.template, views.viewer_text_values(values, st.settings.hide_negative_share,
                                                                     viewer_words(st.settings)))
    except TemplateError:
        return ""
    text = " ⏎ ".join(text.splitlines()) or ui_words()("status.nothing")
    return ui_words()("status.on_stream" if active else "status.on_stream_example", text=text)


def panel_view(st: PanelState, now: datetime | None = None) -> PanelView:
    """What the panel shows now (:mod:`obs_mindflow.obs.panel`)."""
    now = now or datetime.now()
    s = st.settings
    loaded = st.model_loaded
    active = st.active
    lines, key = status_lines(st)
    key += "|" + "|".join(f"{k}:{v}" for k, v in sorted(st.problems))
    w = ui_words()
    status = "\n".join(lines) + "\n" + w("status.as_of", time=f"{now:%H:%M:%S}")
    items: dict[str, Item] = {"status": Item(status)}
    setup = ""
    if not s.video_source and active:
        setup = w("status.no_webcam_in_session")
    elif not s.video_source:
        setup = w("status.first_setup")
    if st.notice:
        notice = say(st.notice, w)
        setup = (setup + "\n" if setup else "") + notice[0].upper() + notice[1:] + "."
    items["setup"] = Item(setup, visible=bool(setup), kind=WARNING if not s.video_source else NORMAL)
    if st.problems:
        others = [say(m, w) for _, m in st.problems if m != st.last_error]
        err = w("status.last_error", error=say(st.last_error, w)) + (
            "  " + w("status.also", others="; ".join(others)) if others else "")
    else:
        err = ""
    items["last_error"] = Item(err, visible=bool(err), kind=ERROR)
    for name in ("deps", "install_deps", "check_deps"):
        items[name] = Item(visible=False)
    items["session"] = Item(w("panel.stop_session") if active else w("panel.session"), visible=loaded)
    items["refresh"] = Item(w("panel.refresh"))
    calibrating = st.calibrating
    items["calibrate"] = Item(w("panel.cancel_calibration") if calibrating else
                              w("panel.calibrate_seconds", seconds=w.number(s.calibration_s)), visible=loaded)
    items["clear_calibration"] = Item(visible=loaded and bool(st.baseline) and not calibrating)
    result = w("status.last_session", result=st.last_result) if st.last_result else ""
    items["result"] = Item(result, visible=bool(result))
    items["open_report"] = Item(visible=st.has_last_report)
    text = st.history_text
    if st.history_problem:
        text = (text + "\n" if text else "") + w("status.history_problem", problem=say(st.history_problem, w))
    items["history"] = Item(text, visible=bool(text),
                            kind=ERROR if st.history_problem and not st.history_text else NORMAL)
    items["open_history"] = Item(visible=st.has_history_page)
    for name in ALWAYS_SHOWN:
        items[name] = Item(visible=True)
    note, kind = "", NORMAL
    if st.template_problem:
        note, kind = w("status.template_unused", problem=st.template_problem), ERROR
    elif s.hide_negative_share and private_placeholders_used(s.template):
        hidden = ", ".join("{" + p + "}" for p in private_placeholders_used(s.template))
        note = w("status.hidden_placeholders", hidden=hidden)
    elif s.text_source:
        note = font_problem(s, st.labels)
        kind = WARNING if note else NORMAL
    # always shown (a preview when there is nothing to say): a note that came and went moved the rows below it, and
    # the next click landed on 'Hide the negative share from viewers' (issue 23)
    items["template_note"] = Item(note or template_preview(st), kind=kind)
    items["overlay_port"] = Item(visible=s.overlay_enabled)
    if st.overlay_url:
        url = w("status.overlay_url" if st.browser_source else "status.overlay_url_no_browser", url=st.overlay_url)
        if st.dock_url:
            url += "\n" + w("status.dock_url" if st.browser_source else "status.dock_url_no_browser", url=st.dock_url)
    else:
        url = ""
    items["overlay_url"] = Item(url, visible=bool(url))
    items["add_overlay"] = Item(visible=bool(st.overlay_url) and st.browser_source)
    items["model_folder"] = Item(visible=s.model == CUSTOM_MODEL)
    items["write_report"] = Item(visible=active)
    items["reset"] = Item(visible=active)
    items.update(st.moment_items)
    return PanelView(items, key)
