"""What the panel shows, made from one load's state: the status lines, the one-line result of a session, and the
whole :class:`~obs_mindflow.obs.panel.PanelView` (pure data; :func:`obs_mindflow.obs.panel.apply` puts it on the
properties).

Part of the OBS adapter, but it calls nothing of obspython itself: it reads the controller
(:class:`~obs_mindflow.obs.controller.MindFlowScript`) on OBS's UI thread.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from ..engine import views
from ..engine.reports.files import FinishedSession
from ..engine.session.summary import format_duration, format_percent
from .panel import ERROR, NORMAL, WARNING, Item, PanelView
from .language import font_problem, ui_words, viewer_words
from .settings import CUSTOM_MODEL
from .template import EXAMPLE_VALUES, TemplateError, private_placeholders_used, render

if TYPE_CHECKING:
    from .controller import MindFlowScript

REPORT_FILE = "report.html"

#: Settings shown whenever the packages are there (the rest depend on other settings).
ALWAYS_SHOWN = ("video_source", "text_source", "template", "hide_negative_share", "idle_text", "rate_hz", "model",
                "calibration_s", "calibrate_each_session", "nudge_enabled", "report_dir", "min_report_s",
                "open_reports", "advanced", "overlay_enabled", "moments")


def result_line(finished: FinishedSession, min_report_s: float = 0.0) -> str:
    """One line for the panel and the log: how long, how much face, the main expressions, where the report is."""
    s = finished.snapshot
    parts = []
    if s is not None and s.started and s.duration_s > 0:
        parts.append(format_duration(s.duration_s))
        parts.append(f"face in view {format_percent(s.coverage)}")
        if s.face_s > 0:
            top = [f"{label} {format_percent(v)}" for label, v in s.profile()[:2] if format_percent(v) != "0 %"]
            if top:
                parts.append(", ".join(top))
            parts.append(f"negative {format_percent(s.negative_share)}")
    else:
        parts.append("nothing was analysed")
    if finished.error is not None:
        parts.append(f"report NOT saved: {finished.error}")
    elif finished.folder is not None:
        parts.append(f"report: {finished.folder / REPORT_FILE}")
    elif s is not None and s.started and s.duration_s > 0 and s.duration_s < min_report_s:
        parts.append(f"no report (shorter than {min_report_s:g} s)")
    else:
        parts.append("no report")
    return "; ".join(parts)


def status_lines(script: MindFlowScript) -> tuple[list[str], str]:
    """The status lines and their stable key (without times and rates)."""
    host = script.host
    lines, key = [], []
    if host is None:
        lines.append("No model is loaded: see the error below.")
        key.append("no model")
    elif host.active:
        since = script.session_since.strftime("%H:%M:%S") if script.session_since else "?"
        paused = " — paused: nothing is captured" if host.paused else ""
        ends = ("it ends with Stop session" if script.lifecycle.manual else
                "it ends when the stream and the recording have both stopped, or with Stop session")
        lines.append(f"● Session running since {since} ({script.session_reason}){paused}; {ends}.")
        key.append(f"running {since} {host.paused}")
        v = host.view()
        rate = f"analysing {v.rate_hz:.1f} frames per second"
        if v.paused:
            face = "paused"
        elif not script.settings.video_source:
            face = "no webcam is chosen — choose it in 'Webcam (video source)' below"
        elif v.stale:
            face = f"no picture from '{script.settings.video_source}' — is the webcam on?"
        elif v.face:
            face = "your face is found"
        else:
            face = "no face found yet — face the camera"
        lines.append(f"{rate}; {face}" + ("" if face.endswith(("?", ".")) else "."))
        key.append(face)
    else:
        live = script.lifecycle.live
        lines.append("No session running." + (" OBS is live but no webcam is chosen." if live and not
                                               script.settings.video_source else
                                               " One starts when you stream or record, or with Start session."))
        key.append(f"idle {live}")
    if host is not None:
        note = script.calibration.note
        progress = host.calibration_progress()
        if progress is not None:
            lines.append(f"Calibrating: {progress.fraction * 100:.0f} % ({progress.elapsed_s:.0f} of "
                         f"{progress.seconds:.0f} s, {progress.face_frames} frames with your face) — look at the "
                         f"camera as when streaming; talking is fine.")
            key.append("calibrating")
        elif host.baseline is not None:
            lines.append(f"Calibrated to your face ({host.baseline.describe()}).")
            key.append("calibrated " + host.baseline.created)
        else:
            lines.append("Not calibrated: press 'Calibrate to my face' for readings true to your face.")
            key.append("uncalibrated")
        if note and progress is None:
            lines.append(note[0].upper() + note[1:] + ".")
            key.append(note)
    if script.overlay is not None:
        lines.append(f"Overlay page: {script.overlay.url}")
        key.append(script.overlay.url)
    return lines, "|".join(key)


def template_preview(script: MindFlowScript, active: bool) -> str:
    """"On stream: happy (83 %)" — the template with the session's values (an example outside a session), as viewers
    see it."""
    values = script.host.values() if active and script.host is not None else EXAMPLE_VALUES
    try:
        text = render(script.settings.template, views.viewer_text_values(values, script.settings.hide_negative_share,
                                                                         viewer_words(script.settings)))
    except TemplateError:
        return ""
    text = " ⏎ ".join(text.splitlines()) or ui_words()("status.nothing")
    return ui_words()("status.on_stream" if active else "status.on_stream_example", text=text)


def panel_view(script: MindFlowScript, now: datetime | None = None) -> PanelView:
    """What the panel shows now (:mod:`obs_mindflow.obs.panel`)."""
    now = now or datetime.now()
    s = script.settings
    host = script.host
    active = host is not None and host.active
    lines, key = status_lines(script)
    key += "|" + "|".join(f"{k}:{v}" for k, v in sorted(script.problems.items()))
    w = ui_words()
    status = "\n".join(lines) + "\n" + w("status.as_of", time=f"{now:%H:%M:%S}")
    items: dict[str, Item] = {"status": Item(status)}
    setup = ""
    if not s.video_source and active:
        setup = w("status.no_webcam_in_session")
    elif not s.video_source:
        setup = w("status.first_setup")
    if script.notice:
        setup = (setup + "\n" if setup else "") + script.notice[0].upper() + script.notice[1:] + "."
    items["setup"] = Item(setup, visible=bool(setup), kind=WARNING if not s.video_source else NORMAL)
    if script.problems:
        others = [m for m in script.problems.values() if m != script.last_error]
        err = w("status.last_error", error=script.last_error) + (f"  (also: {'; '.join(others)})" if others else "")
    else:
        err = ""
    items["last_error"] = Item(err, visible=bool(err), kind=ERROR)
    for name in ("deps", "install_deps", "check_deps"):
        items[name] = Item(visible=False)
    items["session"] = Item(w("panel.stop_session") if active else w("panel.session"), visible=host is not None)
    items["refresh"] = Item(w("panel.refresh"))
    calibrating = host is not None and host.calibrating
    items["calibrate"] = Item(w("panel.cancel_calibration") if calibrating else
                              w("panel.calibrate_seconds", seconds=f"{s.calibration_s:g}"), visible=host is not None)
    items["clear_calibration"] = Item(visible=host is not None and host.baseline is not None and not calibrating)
    result = w("status.last_session", result=script.last_result) if script.last_result else ""
    items["result"] = Item(result, visible=bool(result))
    items["open_report"] = Item(visible=script.last_report is not None)
    history = script.last_sessions
    text = history.text
    if history.problem:
        text = (text + "\n" if text else "") + "Session history: " + history.problem
    items["history"] = Item(text, visible=bool(text), kind=ERROR if history.problem and not history.text else NORMAL)
    items["open_history"] = Item(visible=history.page is not None)
    for name in ALWAYS_SHOWN:
        items[name] = Item(visible=True)
    note, kind = "", NORMAL
    if script.template_problem:
        note, kind = (f"Not used yet (the text source keeps the last usable template): "
                      f"{script.template_problem}"), ERROR
    elif s.hide_negative_share and private_placeholders_used(s.template):
        hidden = ", ".join("{" + p + "}" for p in private_placeholders_used(s.template))
        note = f"{hidden} shows nothing on stream while 'Hide the negative share from viewers' is on."
    elif s.text_source:
        note = font_problem(s, host.card.labels if host is not None else ())
        kind = WARNING if note else NORMAL
    # always shown (a preview when there is nothing to say): a note that came and went moved the rows below it, and
    # the next click landed on 'Hide the negative share from viewers' (issue 23)
    items["template_note"] = Item(note or template_preview(script, active), kind=kind)
    items["overlay_port"] = Item(visible=s.overlay_enabled)
    if script.overlay is not None:
        url = f"Overlay URL: {script.overlay.url}"
        if not script.capabilities.browser_source:
            url += (" — this OBS has no Browser source: open the URL in a browser window and capture that window "
                    "(Window Capture)")
        if script.overlay.dock_url:
            url += (f"\nYour private dock (only you see it; it shows what viewers do not): {script.overlay.dock_url} "
                    f"— add it in View > Docks > Custom Browser Docks…" + (
                        "" if script.capabilities.browser_source else " (this OBS has none: open it in a browser)"))
    else:
        url = ""
    items["overlay_url"] = Item(url, visible=bool(url))
    items["add_overlay"] = Item(visible=script.overlay is not None and script.capabilities.browser_source)
    items["model_folder"] = Item(visible=s.model == CUSTOM_MODEL)
    items["write_report"] = Item(visible=active)
    items["reset"] = Item(visible=active)
    items.update(script.moments.panel_items(s, host.card.labels if host is not None else None))
    return PanelView(items, key)
