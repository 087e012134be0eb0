"""Frames of one OBS source, rendered small on the GPU and read back — from ``script_tick`` on OBS's graphics thread.

How (measured in ``../shared/OBS-NOTES.md`` and again by ``tools/bench_obs.py``): the source is rendered into a
``gs_texrender`` (``GS_BGRA``) of a size fitting inside 640×360 with the source's aspect (never upscaled) — the GPU
downscales — then ``gs_stage_texture`` copies it into a ``gs_stagesurface``. Mapping a stage surface the GPU has not
finished with would stall the render thread, so the stage surfaces are **double-buffered**: a capture stages into one
surface, and the surface staged on an earlier tick (the previous capture) is mapped — on the next tick at the
latest, one frame later, as OBS's own output readback does. ``gs_stagesurface_map`` needs a ``uint8_t**``, which SWIG
cannot pass: it is called through ctypes on libobs. The mapped rows have a stride (``linesize``); they are copied
into a numpy ``(h, w, 4)`` BGRA array before unmapping.

Sources: looked up by name when capturing starts (and at most once a second while missing); the reference is held
while capturing and dropped when the source is removed (``obs_source_removed``), when capturing stops, or when the
setting changes. A rename is noticed (``renamed_to``) so the adapter can update the setting. A source with no size
(an inactive webcam) is skipped silently. While capturing, the source is kept *showing* (``obs_source_inc_showing``
once, ``dec_showing`` when released) so a webcam that is not in the current scene still delivers frames — and is
not opened and closed at every capture (see ``tools/bench_obs.py --hidden``).

Every graphics object is created and destroyed inside ``obs_enter_graphics()``; :meth:`SourceCapture.release` must be
called from ``script_unload``.
"""

from __future__ import annotations

import ctypes
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import obspython as obs

from ..i18n import Said
from . import libobs
from .metrics import DurationStats
from .objects import graphics

MAX_SIZE = (640, 360)
LOOKUP_RETRY_S = 1.0


def fit_size(width: int, height: int, max_w: int = MAX_SIZE[0], max_h: int = MAX_SIZE[1]) -> tuple[int, int]:
    """``(w, h)`` fitting inside ``max_w × max_h`` with the aspect of ``width × height``, never larger than it
    (pixels). ``(0, 0)`` for an empty source."""
    if width <= 0 or height <= 0:
        return 0, 0
    s = min(1.0, max_w / width, max_h / height)
    return max(1, int(round(width * s))), max(1, int(round(height * s)))


class StageMapper:
    """``gs_stagesurface_map``/``unmap`` through ctypes on the libobs already loaded in the process."""

    def __init__(self) -> None:
        try:
            lib = libobs.load("gs_stagesurface_map", "gs_stagesurface_unmap")
        except OSError as exc:
            raise OSError(f"cannot read frames back: {exc}") from exc
        fmap, funmap = lib.gs_stagesurface_map, lib.gs_stagesurface_unmap
        fmap.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_uint32)]
        fmap.restype = ctypes.c_bool
        funmap.argtypes = [ctypes.c_void_p]
        funmap.restype = None
        self._map, self._unmap = fmap, funmap
        self._ptr = ctypes.c_void_p()
        self._linesize = ctypes.c_uint32()

    def read(self, stagesurf: object, width: int, height: int) -> np.ndarray | None:
        """Map ``stagesurf`` (a ``GS_BGRA`` surface of ``width × height``), copy it into a new ``(height, width, 4)``
        uint8 BGRA array and unmap it. ``None`` when the map fails. Graphics context required."""
        handle = ctypes.c_void_p(int(stagesurf))
        if not self._map(handle, ctypes.byref(self._ptr), ctypes.byref(self._linesize)):
            return None
        try:
            stride = int(self._linesize.value)
            if not self._ptr.value or stride < width * 4:
                return None
            buf = (ctypes.c_uint8 * (stride * height)).from_address(self._ptr.value)
            rows = np.frombuffer(buf, np.uint8).reshape(height, stride)
            return rows[:, : width * 4].reshape(height, width, 4).copy()
        finally:
            self._unmap(handle)


@dataclass
class _Staged:
    index: int
    width: int
    height: int
    tick: int
    timestamp: float
    stage_ms: float


class SourceCapture:
    """Captures the source named :attr:`source_name` at most every ``interval_s`` seconds from :meth:`tick`.

    ``tick`` and ``release`` run on OBS's graphics thread / with the graphics context; the setters may be called
    from the UI thread (plain attribute writes picked up at the next tick). ``log(message)`` is called for state
    changes only (never per frame); :attr:`problem` holds the current problem text (``""`` when capturing fine).
    """

    def __init__(self, log: Callable[[str], None] = print, max_size: tuple[int, int] = MAX_SIZE,
                 showing: str = "hold", clock: Callable[[], float] = time.monotonic) -> None:
        if showing not in ("hold", "per_capture", "none"):
            raise ValueError(f"showing must be 'hold', 'per_capture' or 'none', got {showing!r}")
        self.log = log
        self.max_size = max_size
        self.showing = showing
        self.clock = clock
        self.source_name = ""
        self.interval_s = 0.2
        self.problem = ""
        self.renamed_to = ""            # set when the held source was renamed; the adapter updates the setting
        self.frame_size = (0, 0)
        self.source_size = (0, 0)
        self.captures = 0
        self.stage_cost = DurationStats()
        self.map_cost = DurationStats()
        self.total_cost = DurationStats()
        self._mapper: StageMapper | None = None
        self._source = None
        self._held_name = ""
        self._wanted = ""
        self._removed = ""              # the name of the held source OBS removed (until one is found again)
        self._showing_held = False
        self._next_lookup = 0.0
        self._next_due = 0.0
        self._tick = 0
        self._texrender = None
        self._stages: list = [None, None]
        self._size = (0, 0)
        self._next_stage = 0
        self._staged: _Staged | None = None
        self._color = None
        self._released = False
        self._busy = threading.Lock()      # a tick in progress vs release() from the UI thread

    # -- problems are logged once per change ---------------------------------------------------------------------
    def _set_problem(self, text: str) -> None:
        if text != self.problem:
            self.problem = text
            if text:
                self.log(text)

    # -- the source ----------------------------------------------------------------------------------------------
    def _drop_source(self) -> None:
        if self._source is not None:
            if self._showing_held:
                obs.obs_source_dec_showing(self._source)
            obs.obs_source_release(self._source)
        self._source, self._held_name, self._showing_held = None, "", False
        self._staged = None

    def follow_rename(self, name: str) -> None:
        """The adapter has renamed the setting after :attr:`renamed_to`: keep the held source (UI thread)."""
        self.source_name = self._wanted = name
        self.renamed_to = ""

    def _acquire(self, now: float):
        src = self._source
        if src is not None:
            if obs.obs_source_removed(src):
                self._removed = self.source_name
                self._drop_source()
                self._set_problem(Said("problem.source_removed", source=self.source_name))
                self._next_lookup = now + LOOKUP_RETRY_S
                return None
            if self.source_name == self._wanted:
                name = obs.obs_source_get_name(src) or ""
                if name != self._held_name:          # renamed in OBS: keep capturing it, tell the adapter
                    self._held_name = self.renamed_to = name
                    self.log(f"video source renamed to '{name}'; MindFlow follows it")
                return src
            self._drop_source()                      # the setting names another source now
            self._next_lookup = 0.0
        if not self.source_name:
            self._set_problem(Said("problem.no_source"))
            return None
        if now < self._next_lookup:
            return None
        self._next_lookup = now + LOOKUP_RETRY_S
        src = obs.obs_get_source_by_name(self.source_name)
        if src is None:
            if self._removed != self.source_name:        # a removal seen while held keeps its own message
                self._set_problem(Said("problem.source_not_found", source=self.source_name))
            return None
        if not (obs.obs_source_get_output_flags(src) & obs.OBS_SOURCE_VIDEO):
            obs.obs_source_release(src)
            self._set_problem(Said("problem.source_no_video", source=self.source_name))
            return None
        self._source, self._held_name, self._wanted = src, self.source_name, self.source_name
        self._removed = ""
        if self.showing == "hold":
            obs.obs_source_inc_showing(src)
            self._showing_held = True
        self.renamed_to = ""
        self._set_problem("")
        self.log(f"capturing video source '{self.source_name}'")
        return src

    # -- graphics objects ------------------------------------------------------------------------------------------
    def _ensure_targets(self, w: int, h: int) -> None:
        if self._size == (w, h) and self._texrender is not None:
            return
        self._destroy_targets()
        self._texrender = obs.gs_texrender_create(obs.GS_BGRA, obs.GS_ZS_NONE)
        self._stages = [obs.gs_stagesurface_create(w, h, obs.GS_BGRA) for _ in range(2)]
        self._size = (w, h)
        self._staged = None
        if self._color is None:
            self._color = obs.vec4()
            obs.vec4_zero(self._color)

    def _destroy_targets(self) -> None:
        for i, s in enumerate(self._stages):
            if s is not None:
                obs.gs_stagesurface_destroy(s)
                self._stages[i] = None
        if self._texrender is not None:
            obs.gs_texrender_destroy(self._texrender)
            self._texrender = None
        self._size = (0, 0)
        self._staged = None

    # -- the work ---------------------------------------------------------------------------------------------------
    def tick(self, wanted: bool) -> tuple[np.ndarray, float] | None:
        """Call from ``script_tick``. ``wanted``: analysis wants frames now (a session runs, not paused). Returns
        ``(frame, timestamp)`` — a ``(h, w, 4)`` BGRA uint8 array and its ``time.monotonic()`` render time — when a
        frame staged earlier was read back on this tick, else ``None``. Skips (``None``) while :meth:`release` runs:
        OBS unloads scripts on the UI thread while ``script_tick`` may be running on the graphics thread."""
        if not self._busy.acquire(blocking=False):
            return None
        try:
            return self._tick_locked(wanted)
        finally:
            self._busy.release()

    def _tick_locked(self, wanted: bool) -> tuple[np.ndarray, float] | None:
        if self._released:
            return None
        self._tick += 1
        if not wanted:
            if self._source is not None or self._texrender is not None:
                with graphics():
                    self._drop_source()
                    self._destroy_targets()
                self._set_problem("")
            return None
        now = self.clock()
        out = None
        staged = self._staged
        if staged is not None and staged.tick < self._tick:
            out = self._read(staged)
        if now >= self._next_due:
            src = self._acquire(now)
            if src is not None:
                self._next_due = now + self.interval_s if now - self._next_due > self.interval_s \
                    else self._next_due + self.interval_s
                self._stage(src, now)
        return out

    def _read(self, staged: _Staged) -> tuple[np.ndarray, float] | None:
        self._staged = None
        t0 = time.perf_counter()
        with graphics():
            surf = self._stages[staged.index]
            if surf is None or self._size != (staged.width, staged.height):
                return None
            if self._mapper is None:
                self._mapper = StageMapper()
            frame = self._mapper.read(surf, staged.width, staged.height)
        ms = (time.perf_counter() - t0) * 1e3
        self.map_cost.add(ms)
        self.total_cost.add(ms + staged.stage_ms)
        if frame is None:
            return None
        self.captures += 1
        return frame, staged.timestamp

    def _stage(self, src, now: float) -> None:
        sw, sh = int(obs.obs_source_get_width(src)), int(obs.obs_source_get_height(src))
        self.source_size = (sw, sh)
        w, h = fit_size(sw, sh, *self.max_size)
        if not w:
            return  # an inactive webcam, a media source between files: nothing to capture, nothing to report
        t0 = time.perf_counter()
        with graphics():
            self._ensure_targets(w, h)
            tr = self._texrender
            obs.gs_texrender_reset(tr)
            if not obs.gs_texrender_begin(tr, w, h):
                return
            showing = self.showing == "per_capture"
            try:
                if showing:
                    obs.obs_source_inc_showing(src)
                obs.gs_clear(obs.GS_CLEAR_COLOR, self._color, 0.0, 0)
                obs.gs_ortho(0.0, float(sw), 0.0, float(sh), -100.0, 100.0)
                obs.gs_blend_state_push()
                obs.gs_blend_function(obs.GS_BLEND_ONE, obs.GS_BLEND_ZERO)
                obs.obs_source_video_render(src)
                obs.gs_blend_state_pop()
            finally:
                obs.gs_texrender_end(tr)
                if showing:
                    obs.obs_source_dec_showing(src)
            k = self._next_stage
            obs.gs_stage_texture(self._stages[k], obs.gs_texrender_get_texture(tr))
            self._next_stage = 1 - k
        ms = (time.perf_counter() - t0) * 1e3
        self.frame_size = (w, h)
        self.stage_cost.add(ms)
        self._staged = _Staged(k, w, h, self._tick, now, ms)

    def release(self) -> None:
        """Drop the source and destroy the graphics objects (inside the graphics context). Idempotent. Waits for a
        capture in progress on the graphics thread to finish first."""
        with self._busy:
            if self._released:
                return
            self._released = True
            with graphics():
                self._drop_source()
                self._destroy_targets()

    def cost_summary(self) -> str:
        """The graphics-thread cost per capture, for the log at unload."""
        if not self.total_cost.count:
            return "MindFlow capture cost: no frame captured"
        w, h = self.frame_size
        sw, sh = self.source_size
        return (f"MindFlow capture cost per frame on OBS's graphics thread ({w}x{h} from {sw}x{sh}, "
                f"{self.captures} frames): total {self.total_cost.summary()}; render+stage "
                f"{self.stage_cost.summary()}; map+copy {self.map_cost.summary()}")
