"""OBS sources the script uses: pickers' lists, the text source, the overlay's Browser source. Imports obspython."""

from __future__ import annotations

import obspython as obs

from ..i18n import Said
from .objects import current_scene, new_data, source_by_name, source_list

TEXT_SOURCE_IDS = ("text_ft2_source", "text_gdiplus")   # unversioned ids (FreeType 2 on Linux/macOS, GDI+ on Windows)
#: Sources with video that can never show a face: not offered as the webcam.
NOT_A_CAMERA_IDS = TEXT_SOURCE_IDS + ("color_source", "audio_line")
BROWSER_SOURCE_ID = "browser_source"
OVERLAY_SOURCE_NAME = "MindFlow overlay"
OVERLAY_SIZE = (420, 360)


def video_source_choices() -> list[tuple[str, str]]:
    """``(label, name)`` of the input sources that can show a face — with video output, not a text or colour source
    (webcams, media, captures, images, browser sources …) — sorted by name; the label adds the source's type
    ("Webcam — Video Capture Device (V4L2)")."""
    out = []
    with source_list() as sources:
        for src in sources:
            if not obs.obs_source_get_output_flags(src) & obs.OBS_SOURCE_VIDEO:
                continue
            uid = obs.obs_source_get_unversioned_id(src)
            name = obs.obs_source_get_name(src)
            if not name or uid in NOT_A_CAMERA_IDS:
                continue
            kind = obs.obs_source_get_display_name(uid) or uid
            out.append((f"{name} — {kind}", name))
    return sorted(out, key=lambda c: c[1].lower())


def video_source_names() -> list[str]:
    """Names of the sources :func:`video_source_choices` offers."""
    return [name for _, name in video_source_choices()]


def text_source_names() -> list[str]:
    names = []
    with source_list() as sources:
        for src in sources:
            if obs.obs_source_get_unversioned_id(src) in TEXT_SOURCE_IDS:
                names.append(obs.obs_source_get_name(src))
    return sorted(n for n in names if n)


def set_text(name: str, text: str) -> str:
    """Write ``text`` into the text source ``name``. Returns ``""`` or the problem (source missing / not text)."""
    with source_by_name(name) as src:
        if src is None:
            return Said("problem.text_not_found", source=name)
        if obs.obs_source_get_unversioned_id(src) not in TEXT_SOURCE_IDS:
            return Said("problem.not_text", source=name)
        with new_data() as data:
            obs.obs_data_set_string(data, "text", text)
            obs.obs_source_update(src, data)
    return ""


def text_font(name: str) -> str:
    """The font face the text source ``name`` draws with (``""``: no such text source, or no font set)."""
    with source_by_name(name) as src:
        if src is None or obs.obs_source_get_unversioned_id(src) not in TEXT_SOURCE_IDS:
            return ""
        settings = obs.obs_source_get_settings(src)
        try:
            font = obs.obs_data_get_obj(settings, "font")
            try:
                return obs.obs_data_get_string(font, "face") if font is not None else ""
            finally:
                if font is not None:
                    obs.obs_data_release(font)
        finally:
            obs.obs_data_release(settings)


def browser_source_available() -> bool:
    """OBS has a Browser source (Windows/macOS/Flatpak builds; Debian's package does not)."""
    return obs.obs_source_get_display_name(BROWSER_SOURCE_ID) is not None


def add_browser_source(url: str, size: tuple[int, int] = OVERLAY_SIZE) -> str:
    """Add (or re-point) a Browser source showing ``url`` in the current scene, in the bottom-right corner of the
    canvas. Returns a message for the log/properties."""
    if not browser_source_available():
        return Said("notice.no_browser_source", url=url)
    w, h = size
    with source_by_name(OVERLAY_SOURCE_NAME) as existing:
        if existing is not None:
            with new_data() as data:
                obs.obs_data_set_string(data, "url", url)
                obs.obs_data_set_int(data, "width", w)
                obs.obs_data_set_int(data, "height", h)
                obs.obs_source_update(existing, data)
            return Said("notice.overlay_repointed", name=OVERLAY_SOURCE_NAME, url=url)
    with current_scene() as scene_source:
        if scene_source is None:
            return Said("notice.no_scene")
        scene = obs.obs_scene_from_source(scene_source)
        with new_data() as data:
            obs.obs_data_set_string(data, "url", url)
            obs.obs_data_set_int(data, "width", w)
            obs.obs_data_set_int(data, "height", h)
            obs.obs_data_set_bool(data, "shutdown", False)
            src = obs.obs_source_create(BROWSER_SOURCE_ID, OVERLAY_SOURCE_NAME, data, None)
        try:
            item = obs.obs_scene_add(scene, src)
            if item is not None:
                video = obs.obs_video_info()
                if obs.obs_get_video_info(video):
                    pos = obs.vec2()
                    pos.x = float(max(0, video.base_width - w - 20))
                    pos.y = float(max(0, video.base_height - h - 20))
                    obs.obs_sceneitem_set_pos(item, pos)
        finally:
            obs.obs_source_release(src)
    return Said("notice.overlay_added", name=OVERLAY_SOURCE_NAME, width=w, height=h, url=url)


def shown_source_names() -> list[str]:
    """Names of the input sources with video (what a moment's action may show: an image, a media clip, a text …),
    sorted."""
    names = []
    with source_list() as sources:
        for src in sources:
            if obs.obs_source_get_output_flags(src) & obs.OBS_SOURCE_VIDEO:
                names.append(obs.obs_source_get_name(src))
    return sorted((n for n in names if n), key=str.lower)


def scene_names() -> list[str]:
    """The scenes of the current scene collection, in OBS's order."""
    try:
        return [str(n) for n in obs.obs_frontend_get_scene_names() or [] if n]
    except Exception:  # noqa: BLE001 - a binding without the call: no list, the panel keeps the chosen name
        return []
