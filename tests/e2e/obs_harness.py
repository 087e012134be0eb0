"""Run a real OBS Studio headless (Xvfb) with a generated configuration, for the end-to-end tests and the bench tool.

Facts this relies on are in ``../shared/OBS-NOTES.md`` (measured with OBS 29.0.2 on Debian 12):

- ``XDG_CONFIG_HOME`` points at a temporary folder holding ``obs-studio/global.ini`` (``FirstRun`` + ``LastVersion``
  or the auto-configuration wizard opens; ``ConfirmOnExit=false`` or SIGINT while recording opens a modal box and OBS
  hangs; ``PreviewEnabled=false`` halves the render load on software GL), a profile (Simple output, mkv, x264
  ultrafast) and one or more scene collections, the script preloaded in ``modules.scripts-tool``.
- Every collection also loads ``tests/e2e/obs_test_hooks.py``, a test-only OBS script that stops the recording or
  switches the scene collection on cue, closes OBS's main window from the UI thread as File > Exit does when the
  quit file appears, and dumps every Python thread's stack on SIGUSR1. MindFlow itself has no test hooks.
- OBS is started as ``xvfb-run -a obs --multi --collection C --profile P --scene S [--startrecording]`` and stopped
  only after OBS has finished loading, through the hooks' quit file, else with SIGINT; SIGKILL after a timeout,
  with the hung OBS's stacks collected first. Either way OBS saves the scene collection, unloads the scripts and exits 0.
  SIGINT is the fallback only: OBS 29 closes its window from inside the signal handler, which deadlocked on
  libxcb's lock or crashed in Qt painting about one run in ten after a scene-collection switch; OBS 32 leaks or
  crashes at exit after a SIGINT far more often than after File > Exit (docs/obs32-shutdown.md).
- Signals go to OBS's own pid, found among xvfb-run's descendants in ``/proc`` (no pgrep: a minimal Debian has
  none), never to the process group: xvfb-run is a shell that dies of a SIGINT meant for OBS.
- :func:`check_clean_exit` tells OBS's own shutdown faults from MindFlow's: when OBS crashes, leaks or hangs at exit,
  the same scene collection is run again without MindFlow's script (control runs); if a control run fails the same
  way it is OBS's fault (a warning with both logs), otherwise the test fails. A control run also repeats what the
  test did beside OBS (``control_action``). A crashed OBS's core dump is read with gdb: the crashed thread's frames
  go into the report, all stacks into ``obs-crash-stacks.txt`` (docs/obs30-exit-crash.md).
- Script output lands in ``$XDG_CONFIG_HOME/obs-studio/logs/<date>.txt``.

Nothing here imports the engine or obspython: it only writes files and runs a process.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "obs_mindflow" / "mindflow_obs.py"
HOOKS_SCRIPT = Path(__file__).resolve().with_name("obs_test_hooks.py")
SAMPLE = ROOT / "samples" / "mindflow-sample.mp4"
PROFILE = "MindFlowE2E"
STACKS = "python-stacks.txt"   # in the workdir: the hooks' stack_dump file
QUIT = "quit-request"          # in the workdir: the hooks' quit_file
SCENE = "Scene"
OTHER_SCENE = "Camera only"
WEBCAM = "Webcam"
TEXT = "Emotion text"

LEAKS_RE = re.compile(r"Number of memory leaks:\s*(\d+)")
LAGGED_RE = re.compile(r"Number of lagged frames due to rendering lag/stalls:\s*(\d+)\s*\(([\d.]+)%\)")
SKIPPED_RE = re.compile(r"number of skipped frames due to encoding lag:\s*(\d+)/(\d+)\s*\(([\d.]+)%\)")
RENDER_RE = re.compile(r"obs_render_video: Average time: ([\d.]+)ms|render_video.*?min=([\d.]+) ms, median=([\d.]+) ms")


def obs_available() -> str:
    """``""`` when ``obs`` and ``xvfb-run`` are on PATH, else what is missing (for a skip message)."""
    missing = [name for name in ("obs", "xvfb-run") if shutil.which(name) is None]
    if not missing:
        return ""
    return (f"{' and '.join(missing)} not found: install OBS Studio 29+ and Xvfb (Debian/Ubuntu: "
            f"apt-get install obs-studio obs-plugins xvfb xauth fonts-dejavu-core)")


def obs_python() -> str:
    """The Python interpreter OBS embeds on this Linux machine: the ``libpython3.X`` that libobs-scripting links
    (``/usr/bin/python3.11`` for Debian 12's OBS 29), found with ``ldd``; ``/usr/bin/python3`` when unknown."""
    candidates = sorted(Path("/usr/lib").glob("*/libobs-scripting.so*")) + sorted(Path("/usr/lib").glob(
        "libobs-scripting.so*"))
    for lib in candidates:
        try:
            out = subprocess.run(["ldd", str(lib)], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        m = re.search(r"libpython(3\.\d+)", out)
        if m and Path(f"/usr/bin/python{m.group(1)}").exists():
            return f"/usr/bin/python{m.group(1)}"
    return "/usr/bin/python3"


def _scene_item(name: str, item_id: int, x: float = 0.0, y: float = 0.0, visible: bool = True) -> dict[str, Any]:
    return {"name": name, "id": item_id, "visible": visible, "locked": False, "rot": 0.0,
            "pos": {"x": x, "y": y}, "scale": {"x": 1.0, "y": 1.0}, "align": 5,
            "bounds_type": 0, "bounds_align": 0, "bounds": {"x": 0.0, "y": 0.0},
            "crop_left": 0, "crop_top": 0, "crop_right": 0, "crop_bottom": 0}


@dataclass
class ObsConfig:
    """What to generate. ``script_settings`` is what ``script_load(settings)`` receives; ``None`` runs OBS without the
    script (the bench's baseline). ``hooks`` are the test hooks' settings (``stop_after_s``, ``switch_collection``,
    ``switch_after_s``; the quit and stack files are always set) and ``collection_hooks`` override them per
    collection. ``collections`` are the scene collections to write (each gets the same sources and scripts); OBS
    starts with the first. ``webcam_in_scene=False`` leaves the stand-in webcam out of the scene
    (a hidden webcam: the script must still capture it); ``close_when_inactive=True`` makes the stand-in webcam close
    when nothing shows it, as a webcam set to "deactivate when not showing" does."""

    workdir: Path
    script_settings: dict[str, Any] | None = None
    collection_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    hooks: dict[str, Any] = field(default_factory=dict)
    collection_hooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Hooks' settings added in control runs only (check_clean_exit): what MindFlow did to OBS in the run, done by the
    # hooks instead — e.g. a moment's scene switch ("switch_scene", "switch_scene_after_s", "switch_back_after_s").
    control_hooks: dict[str, Any] = field(default_factory=dict)
    # What the test did beside OBS during the run, done again in each control run once its recording started (called
    # with the control's workdir) — e.g. the install test's pip install, whose load is part of the run.
    control_action: Callable[[Path], None] | None = None
    collections: tuple[str, ...] = ("MindFlowE2E",)
    video: Path = SAMPLE
    base: tuple[int, int] = (1280, 720)
    fps: int = 30
    record: bool = True
    webcam_in_scene: bool = True
    # The webcam also sits in the second scene ("Camera only"), as in most streamers' layouts. False: only in one
    # scene — OBS 32 has a shutdown fault with a source in two scenes (docs/obs32-shutdown.md), none without.
    shared_webcam: bool = True
    close_when_inactive: bool = False
    # Simple output's recording format: "mkv", or "hybrid_mp4" (OBS >= 30.2; the format that takes chapters).
    rec_format: str = "mkv"
    script_path: Path = SCRIPT
    extra_env: dict[str, str] = field(default_factory=dict)
    # Streaming (test_stream_e2e.py, tools/bench_stream.py): ``stream_server`` ("rtmp://127.0.0.1:PORT/APP") writes
    # the profile's service.json (a custom RTMP server, ``stream_key``); start with ObsProcess(start_streaming=True).
    # ``text_pos`` places the text source; ``extra_texts`` adds more text sources (name → position) to the scene.
    stream_server: str | None = None
    stream_key: str = "mindflow"
    text_pos: tuple[float, float] = (20.0, 20.0)
    extra_texts: dict[str, tuple[float, float]] = field(default_factory=dict)
    # The stand-in webcam as a still picture (an image_source showing this file) instead of the looping clip.
    webcam_image: Path | None = None
    # OBS's UI language (global.ini's Language, as Settings > General > Language writes it; "" = OBS's default, en-US)
    # and the text sources' font face.
    language: str = ""
    text_font: str = "DejaVu Sans"

    @property
    def config_home(self) -> Path:
        return self.workdir / "config"

    @property
    def obs_dir(self) -> Path:
        return self.config_home / "obs-studio"

    @property
    def quit_file(self) -> Path:
        return self.workdir / QUIT

    @property
    def stack_file(self) -> Path:
        return self.workdir / STACKS

    @property
    def recordings(self) -> Path:
        return self.workdir / "recordings"

    def collection_file(self, name: str) -> Path:
        return self.obs_dir / "basic" / "scenes" / f"{name}.json"


def write_config(cfg: ObsConfig) -> None:
    """Write global.ini, the profile and the scene collection(s) under ``cfg.config_home``."""
    obs = cfg.obs_dir
    (obs / "basic" / "profiles" / PROFILE).mkdir(parents=True, exist_ok=True)
    (obs / "basic" / "scenes").mkdir(parents=True, exist_ok=True)
    cfg.recordings.mkdir(parents=True, exist_ok=True)
    first = cfg.collections[0]
    (obs / "global.ini").write_text(
        "[General]\nFirstRun=true\nLastVersion=486539266\nConfirmOnExit=false\nEnableAutoUpdates=false\n"
        "WarnBeforeStartingStream=false\nWarnBeforeStoppingStream=false\nWarnBeforeStoppingRecord=false\n"
        + (f"Language={cfg.language}\n" if cfg.language else "") + "\n"
        f"[Basic]\nProfile={PROFILE}\nProfileDir={PROFILE}\nSceneCollection={first}\nSceneCollectionFile={first}\n\n"
        "[BasicWindow]\nPreviewEnabled=false\nSysTrayEnabled=false\nSysTrayWhenStarted=false\n"
        "ShowTransitions=false\nRecordWhenStreaming=false\n", encoding="utf-8")
    w, h = cfg.base
    # OBS >= 30.2 reads RecFormat2 (hybrid_mp4 among them); OBS 29 reads RecFormat (no Hybrid MP4: mkv there).
    legacy_format = "mkv" if cfg.rec_format.startswith("hybrid") else cfg.rec_format
    (obs / "basic" / "profiles" / PROFILE / "basic.ini").write_text(
        f"[General]\nName={PROFILE}\n\n"
        f"[Video]\nBaseCX={w}\nBaseCY={h}\nOutputCX={w}\nOutputCY={h}\nFPSType=1\nFPSInt={cfg.fps}\n\n"
        "[Output]\nMode=Simple\n\n"
        f"[SimpleOutput]\nFilePath={cfg.recordings}\nRecFormat={legacy_format}\nRecFormat2={cfg.rec_format}\n"
        "RecEncoder=x264\nPreset=ultrafast\n"
        "RecQuality=Stream\nVBitrate=1500\nABitrate=96\nFileNameWithoutSpace=true\n\n"
        "[Audio]\nSampleRate=48000\nChannelSetup=Stereo\n", encoding="utf-8")
    if cfg.stream_server:
        write_stream_service(cfg)
    for name in cfg.collections:
        cfg.collection_file(name).write_text(json.dumps(_collection(cfg, name), indent=1), encoding="utf-8")


def write_stream_service(cfg: ObsConfig) -> None:
    """The profile's streaming service: a custom RTMP server (``rtmp_custom``) at ``cfg.stream_server``. The simple
    output's encoder settings are made explicit: without ``UseAdvanced`` OBS ignores ``Preset`` (x264 then runs
    veryfast with a 10-frame lookahead) and uses x264's default keyframe interval (250 frames: a viewer may wait 8 s
    for a first picture); here ultrafast, a keyframe every second."""
    profile = cfg.obs_dir / "basic" / "profiles" / PROFILE
    service = {"type": "rtmp_custom", "settings": {"server": cfg.stream_server, "key": cfg.stream_key,
                                                    "use_auth": False, "bwtest": False}}
    (profile / "service.json").write_text(json.dumps(service, indent=1), encoding="utf-8")
    ini = profile / "basic.ini"
    ini.write_text(ini.read_text(encoding="utf-8").replace(
        "[SimpleOutput]\n", f"[SimpleOutput]\nUseAdvanced=true\nx264Settings=keyint={cfg.fps} min-keyint={cfg.fps}\n",
        1), encoding="utf-8")


def _collection(cfg: ObsConfig, name: str) -> dict[str, Any]:
    items = []
    if cfg.webcam_in_scene:
        items.append(_scene_item(WEBCAM, 1))
    items.append(_scene_item(TEXT, 2, *cfg.text_pos))
    for i, (extra, pos) in enumerate(cfg.extra_texts.items()):
        items.append(_scene_item(extra, 10 + i, *pos))
    sources = [
        {"id": "scene", "versioned_id": "scene", "name": SCENE, "enabled": True, "flags": 0,
         "settings": {"id_counter": 10 + len(cfg.extra_texts), "custom_size": False, "items": items}},
        # The webcam also sits in a second scene, so it exists (OBS drops sources no scene uses) while the current
        # scene may leave it out (webcam_in_scene=False: a webcam that is not on screen).
        {"id": "scene", "versioned_id": "scene", "name": OTHER_SCENE, "enabled": True, "flags": 0,
         "settings": {"id_counter": 2, "custom_size": False,
                      "items": [_scene_item(WEBCAM, 1)] if cfg.shared_webcam or not cfg.webcam_in_scene else []}},
        {"id": "ffmpeg_source", "versioned_id": "ffmpeg_source", "name": WEBCAM, "enabled": True, "flags": 0,
         "settings": {"local_file": str(cfg.video), "is_local_file": True, "looping": True,
                      "close_when_inactive": cfg.close_when_inactive, "restart_on_activate": False, "hw_decode": False}}
        if cfg.webcam_image is None else
        {"id": "image_source", "versioned_id": "image_source", "name": WEBCAM, "enabled": True, "flags": 0,
         "settings": {"file": str(cfg.webcam_image), "unload": False}},
        {"id": "text_ft2_source", "versioned_id": "text_ft2_source_v2", "name": TEXT, "enabled": True, "flags": 0,
         "settings": {"text": "MindFlow", "font": {"face": cfg.text_font, "size": 48, "style": "Book",
                                                    "flags": 0}}},
    ]
    sources += [{"id": "text_ft2_source", "versioned_id": "text_ft2_source_v2", "name": extra, "enabled": True,
                 "flags": 0, "settings": {"text": extra, "font": {"face": "DejaVu Sans", "size": 48, "style": "Book",
                                                                  "flags": 0}}} for extra in cfg.extra_texts]
    doc: dict[str, Any] = {"name": name, "current_scene": SCENE, "current_program_scene": SCENE,
                           "scene_order": [{"name": SCENE}, {"name": OTHER_SCENE}], "sources": sources, "groups": [],
                           "transitions": [], "current_transition": "Fade", "transition_duration": 300,
                           "modules": {}}
    hooks = {"quit_file": str(cfg.quit_file), "stack_dump": str(cfg.stack_file), **cfg.hooks,
             **cfg.collection_hooks.get(name, {})}
    scripts = [{"path": str(HOOKS_SCRIPT), "settings": hooks}]
    if cfg.script_settings is not None:
        settings = {**cfg.script_settings, **cfg.collection_settings.get(name, {})}
        scripts.append({"path": str(cfg.script_path), "settings": settings})
    doc["modules"]["scripts-tool"] = scripts
    return doc


@dataclass
class ObsResult:
    returncode: int | None
    killed: bool
    log: str
    elapsed_s: float
    diagnostics: str = ""      # stacks of a hung OBS, or of a crashed one from its core dump (see ObsProcess.stop)
    run: "ObsProcess | None" = field(default=None, repr=False)   # the run (for a control run: check_clean_exit)

    @property
    def leaks(self) -> int | None:
        m = LEAKS_RE.findall(self.log)
        return int(m[-1]) if m else None

    def lagged_frames(self) -> list[tuple[int, float]]:
        """``(frames, percent)`` of every "lagged frames due to rendering lag/stalls" line."""
        return [(int(a), float(b)) for a, b in LAGGED_RE.findall(self.log)]

    def skipped_frames(self) -> list[tuple[int, int, float]]:
        """``(skipped, total, percent)`` of every "skipped frames due to encoding lag" line."""
        return [(int(a), int(b), float(c)) for a, b, c in SKIPPED_RE.findall(self.log)]

    def script_lines(self) -> list[str]:
        return [ln for ln in self.log.splitlines() if "[Python" in ln or "[Unknown Script]" in ln
                or "mindflow" in ln.lower()]


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def process_name(pid: int) -> str:
    """The kernel's name of process ``pid`` (``/proc/PID/comm``: the executable's name, 15 characters at most);
    ``""`` when it is gone."""
    try:
        return Path(f"/proc/{pid}/comm").read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def _parent_pid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    # "pid (comm) state ppid …": comm may hold spaces and parentheses; the last ')' ends it.
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[1]) if len(fields) > 1 else None


def descendants(root: int) -> list[int]:
    """Every live descendant of ``root``, parents before children, read from ``/proc`` (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            ppid = _parent_pid(int(entry.name))
            if ppid is not None:
                children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop(0)
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def crashed_thread_frames(bt: str) -> list[str]:
    """The crashed thread's frames (``#0 …``, ``#1 …``) from the output of gdb's ``info threads``, ``bt``, ``thread
    apply all bt`` on a core dump: the run of frame lines right after the threads table."""
    lines = bt.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("Id") and "Target Id" in ln), None)
    if start is None:
        return []
    i = start + 1
    while i < len(lines) and not lines[i].startswith("#"):
        i += 1
    frames = []
    while i < len(lines) and lines[i].startswith("#"):
        frames.append(lines[i])
        i += 1
    return frames


def _allow_core_dumps() -> None:
    """In OBS's process before it starts: let a crash leave a core dump (soft limit up to the hard one), which
    :meth:`ObsProcess.stop` reads for the crash's stacks and deletes."""
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (resource.getrlimit(resource.RLIMIT_CORE)[1],) * 2)
    except (ValueError, OSError):
        pass


class ObsProcess:
    """One OBS run. ``start()``, ``wait_for(regex)``, ``stop()`` (SIGINT, SIGKILL after a timeout)."""

    def __init__(self, cfg: ObsConfig, *, start_recording: bool | None = None, start_streaming: bool = False,
                 nice: int = 0, fresh_config: bool = True, diagnose: bool = True) -> None:
        self.cfg = cfg
        self.diagnose = diagnose           # collect a hung OBS's stacks (gdb: up to a minute) before killing it
        self.fresh_config = fresh_config   # False: start with what an earlier run saved (an OBS restart)
        self.nice = nice
        self.start_recording = cfg.record if start_recording is None else start_recording
        self.start_streaming = start_streaming   # --startstreaming: needs cfg.stream_server
        self.proc: subprocess.Popen | None = None
        self.t0 = 0.0
        self.stdout_path = cfg.workdir / "obs-stdout.txt"
        self.stop_requested_s: float | None = None   # seconds from start() to stop()
        self.stop_timeout = 30.0
        self.result: ObsResult | None = None          # what stop() returned

    def command(self) -> list[str]:
        prefix = ["nice", "-n", str(self.nice)] if self.nice else []
        cmd = prefix + ["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", "obs", "--multi",
               "--collection", self.cfg.collections[0], "--profile", PROFILE, "--scene", SCENE]
        if self.start_recording:
            cmd.append("--startrecording")
        if self.start_streaming:
            cmd.append("--startstreaming")
        return cmd

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("QT_", "PYTHON", "VIRTUAL_ENV"))}
        env.update({"XDG_CONFIG_HOME": str(self.cfg.config_home), "LIBGL_ALWAYS_SOFTWARE": "1",
                    "HOME": os.environ.get("HOME", str(self.cfg.workdir))})
        env.pop("DISPLAY", None)
        env.update(self.cfg.extra_env)
        return env

    def start(self) -> "ObsProcess":
        if self.fresh_config or not self.cfg.obs_dir.is_dir():
            write_config(self.cfg)
        self._earlier_logs = set((self.cfg.obs_dir / "logs").glob("*.txt"))   # an earlier run's (fresh_config=False)
        self.cfg.quit_file.unlink(missing_ok=True)                             # an earlier run's quit request
        out = open(self.stdout_path, "wb")
        self.t0 = time.monotonic()
        # A new session: a Ctrl-C in the terminal that runs pytest does not reach OBS. Signals go to OBS's own pid.
        self.proc = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=self.env(), cwd=str(self.cfg.workdir), start_new_session=True,
                                     preexec_fn=_allow_core_dumps)
        out.close()
        return self

    def log_path(self) -> Path | None:
        logs = sorted(set((self.cfg.obs_dir / "logs").glob("*.txt")) - getattr(self, "_earlier_logs", set()),
                      key=lambda p: p.stat().st_mtime)
        return logs[-1] if logs else None

    def log(self) -> str:
        path = self.log_path()
        try:
            return path.read_text(encoding="utf-8", errors="replace") if path else ""
        except OSError:
            return ""

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_for(self, pattern: str, timeout: float, *, poll: float = 0.2) -> re.Match | None:
        """Wait until the OBS log matches ``pattern`` (a regex). Returns the match, ``None`` on timeout or when OBS
        exited without it."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = rx.search(self.log())
            if m:
                return m
            if not self.running():
                return rx.search(self.log())
            time.sleep(poll)
        return None

    def _obs_pid(self) -> int | None:
        """OBS's own pid: the process named ``obs`` among the display wrapper's descendants, found in ``/proc``
        (no pgrep: a minimal Debian has none)."""
        if self.proc is None:
            return None
        for pid in descendants(self.proc.pid):
            if process_name(pid) == "obs":
                return pid
        return None

    def _wait_obs_pid(self, timeout: float = 10.0) -> int | None:
        """OBS's pid, waiting while xvfb-run is still starting Xvfb and OBS."""
        deadline = time.monotonic() + timeout
        while True:
            pid = self._obs_pid()
            if pid is not None or not self.running() or time.monotonic() > deadline:
                return pid
            time.sleep(0.2)

    def stop(self, timeout: float = 30.0) -> ObsResult:
        """Close OBS (File > Exit through the test hooks, else SIGINT to OBS's own pid), wait up to ``timeout`` s,
        then SIGKILL what is left of the run. Returns OBS's exit status as reported by xvfb-run (which exits with its
        command's status). Before killing a hung OBS, the stacks are collected into ``ObsResult.diagnostics``: every
        native thread's (gdb, where installed) and every Python thread's (SIGUSR1, which the test hooks turn into a
        faulthandler dump). Signals go to OBS's pid only, never to the process group: xvfb-run (a shell) dies of a
        SIGINT meant for OBS and then reports it as OBS's exit status (-2)."""
        assert self.proc is not None, "start() first"
        killed = False
        diagnostics = ""
        pid = self._wait_obs_pid()
        self.stop_requested_s = time.monotonic() - self.t0
        self.stop_timeout = timeout
        if self.proc.poll() is None:
            if not self._close_through_script() and pid is not None:
                try:
                    os.kill(pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                killed = True
                diagnostics = self._hang_diagnostics(pid) if self.diagnose else "(stacks not collected)"
                self.kill()
        if not killed:
            diagnostics = self._crash_diagnostics()
        self.result = ObsResult(self.proc.returncode, killed, self.log(), time.monotonic() - self.t0, diagnostics,
                                run=self)
        return self.result

    def _close_through_script(self, timeout: float = 10.0) -> bool:
        """Ask the test hooks to close OBS's main window (run on the UI thread) — the File > Exit path. True once
        the hooks said they do; False (use SIGINT) when they did not load."""
        if "MindFlow e2e: hooks loaded" not in self.log():
            return False
        self.cfg.quit_file.touch()
        return self.wait_for(r"MindFlow e2e: closing OBS's main window", timeout) is not None

    def _crash_diagnostics(self) -> str:
        """The native stacks of a crashed OBS from its core dump (``core`` or ``core.PID`` in its working folder, where
        the kernel writes it with the default ``core_pattern``; a piped pattern such as systemd-coredump leaves none
        here), read with gdb where installed, into ``obs-crash-stacks.txt``; the core (hundreds of MB) is deleted.
        ``""`` when OBS did not crash or left no core."""
        cores = [p for p in self.cfg.workdir.glob("core*") if p.is_file() and re.fullmatch(r"core(\.\d+)?", p.name)]
        if not cores:
            return ""
        core = max(cores, key=lambda p: p.stat().st_mtime)
        try:
            if not self.diagnose:
                return "(a core dump was left; stacks not collected)"
            obs_bin = shutil.which("obs")
            if obs_bin is None or shutil.which("gdb") is None:
                return f"(a core dump was left; no gdb or obs on PATH to read it: {core})"
            try:
                bt = subprocess.run(["gdb", "-batch", "-ex", "info threads", "-ex", "bt 40", "-ex",
                                     "thread apply all bt 25", obs_bin, str(core)],
                                    capture_output=True, text=True, timeout=120).stdout
            except (OSError, subprocess.SubprocessError) as exc:
                return f"(gdb could not read the core dump: {exc})"
            out = self.cfg.workdir / "obs-crash-stacks.txt"
            out.write_text(bt, encoding="utf-8")
            signal_line = next((ln for ln in bt.splitlines() if ln.startswith("Program terminated")), "")
            frames = "\n".join("    " + ln for ln in crashed_thread_frames(bt))
            return f"native stacks from the core dump: {out}\n  {signal_line}\n  the crashed thread:\n{frames}"
        finally:
            for c in cores:
                c.unlink(missing_ok=True)

    def _hang_diagnostics(self, pid: int | None) -> str:
        if pid is None:
            return "(OBS's pid not found: no stacks)"
        parts = []
        if shutil.which("gdb"):
            try:
                bt = subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "thread apply all bt 25"],
                                    capture_output=True, text=True, timeout=60).stdout
                (self.cfg.workdir / "hang-native-stacks.txt").write_text(bt, encoding="utf-8")
                parts.append(f"native stacks: {self.cfg.workdir / 'hang-native-stacks.txt'}")
            except (OSError, subprocess.SubprocessError) as exc:
                parts.append(f"gdb failed: {exc}")
        stacks = self.cfg.stack_file
        try:
            os.kill(pid, signal.SIGUSR1)
            time.sleep(2.0)
        except ProcessLookupError:
            pass
        if stacks.is_file():
            parts.append("Python stacks:\n" + stacks.read_text(encoding="utf-8", errors="replace")[-6000:])
        return "\n".join(parts)

    def kill(self) -> None:
        """SIGKILL OBS, Xvfb and xvfb-run — each by pid, OBS first (xvfb-run then stops Xvfb itself)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        obs_pid = self._obs_pid()
        if obs_pid is not None:
            _signal(obs_pid, signal.SIGKILL)
            try:
                self.proc.wait(10)
                return
            except subprocess.TimeoutExpired:
                pass
        for pid in reversed(descendants(self.proc.pid)):
            _signal(pid, signal.SIGKILL)
        _signal(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def __enter__(self) -> "ObsProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


# ====================================================================================================================
# OBS's own shutdown faults vs ours: control runs without the MindFlow script
# ====================================================================================================================

# libobs's complaints when it frees what scenes still reference at exit (docs/obs32-shutdown.md).
SHUTDOWN_FAULT_RE = re.compile(r"Not all sources were cleared|Double destroy just occurred|source\(s\) were remaining|"
                               r"Freeing OBS context data")
# Control runs before a fault counts as MindFlow's. OBS 32's fault strikes about one exit in three, so 8 clean control
# runs in a row happen by chance ~4 % of the time (0.67^8) — only when the fault was OBS's and struck the MindFlow run.
# A hang costs a timeout per run: fewer.
CONTROL_RUNS = int(os.environ.get("MINDFLOW_E2E_CONTROL_RUNS", "12"))
CONTROL_RUNS_HANG = 3


class ObsShutdownFault(UserWarning):
    """OBS failed at exit in a test run, and failed the same way in a control run without MindFlow's script: OBS's
    own fault, reported, not a test failure."""


def exit_faults(result: ObsResult) -> list[str]:
    """What went wrong as OBS exited (``[]``: it exited cleanly): a hang (killed), a non-zero exit status (139: a
    segmentation fault; xvfb-run reports OBS's status), leaked memory, libobs freeing sources that scenes still held."""
    faults = []
    if result.killed:
        faults.append("hang: killed after the timeout")
    elif result.returncode != 0:
        faults.append(f"exit status {result.returncode}" + (" (segmentation fault)" if result.returncode in (139, -11)
                                                            else ""))
    if result.leaks is None and not result.killed:
        faults.append("no 'Number of memory leaks' line (OBS did not finish its shutdown)")
    elif result.leaks:
        faults.append(f"{result.leaks} memory leaks")
    for line in ("Not all sources were cleared", "Double destroy just occurred"):
        if line in result.log:
            faults.append(line)
    return faults


def _fault_class(faults: list[str]) -> str:
    return "hang" if any(f.startswith("hang") for f in faults) else "shutdown"


def _fault_lines(result: ObsResult, limit: int = 12) -> str:
    lines = [ln for ln in result.log.splitlines() if SHUTDOWN_FAULT_RE.search(ln) or LEAKS_RE.search(ln)
             or SHUTTING_DOWN in ln]
    stdout = ""
    if result.run is not None and result.run.stdout_path.is_file():
        tail = result.run.stdout_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
        stdout = "\n      stdout: " + " | ".join(tail)
    return "\n".join("      " + ln for ln in lines[-limit:]) + stdout


OBS_VERSION_RE = re.compile(r"^[\d:.]+: OBS (\d+)\.(\d+)\S* \(", re.M)
SCRIPT_UNLOADED = "[obs-scripting]: Unloaded python script: mindflow_obs.py"
NOT_CLEARED = "Not all sources were cleared when clearing scene data:"
SHUTTING_DOWN = "==== Shutting down"
#: The most leaks OBS 32's own exit fault leaves (docs/obs32-shutdown.md: 3, or 4 with the source in one scene).
OBS32_MAX_LEAKS = 4


def obs32_exit_fault(result: ObsResult, faults: list[str]) -> str:
    """Why this exit's faults are OBS 32's own known fault (docs/obs32-shutdown.md), or ``""`` when they are not
    exactly that. It is, when all of these hold: OBS is 32 or newer (29.0.2 and 30.2.3 never show it); OBS was not
    killed and every fault is one of the fault's forms — a crash or no "Number of memory leaks" line (libobs freed a
    source twice), at most :data:`OBS32_MAX_LEAKS` leaks, "Not all sources were cleared", "Double destroy"; the
    only source named as not cleared is the webcam stand-in, which sits in two scenes; and MindFlow's script had
    finished unloading (the run's script: MindFlow's, or the chapter probe that uses its ChapterMarker) — every
    reference it took released — before OBS started clearing its scenes. A fault of
    MindFlow's own (a reference it keeps) would name its source before the script unloaded, or leak on OBS 29 and
    30 too, where these tests are strict."""
    m = OBS_VERSION_RE.search(result.log)
    if m is None or int(m.group(1)) < 32 or result.killed:
        return ""
    allowed = ("exit status 139", "exit status 5", "no 'Number of memory leaks' line", "Not all sources were cleared",
               "Double destroy just occurred")
    for f in faults:
        leaks = re.fullmatch(r"(\d+) memory leaks", f)
        if leaks:
            if int(leaks.group(1)) > OBS32_MAX_LEAKS:
                return ""
        elif not any(f == a or f.startswith(a + " ") for a in allowed):
            return ""
    # The exit only: a run that reloads the script (a scene-collection switch) unloads it earlier too.
    shutdown = result.log.rfind(SHUTTING_DOWN)
    if shutdown < 0:
        return ""
    log = result.log[shutdown:]
    script = result.run.cfg.script_path.name if result.run is not None else "mindflow_obs.py"
    unloaded = log.find(SCRIPT_UNLOADED.replace("mindflow_obs.py", script))
    first = min((i for i in (log.find(NOT_CLEARED), log.find("Freeing OBS context data")) if i >= 0), default=-1)
    if unloaded < 0 or first < 0 or unloaded > first:
        return ""
    named: list[str] = []
    if NOT_CLEARED in log:
        for line in log[log.find(NOT_CLEARED):].splitlines()[1:12]:
            text = line.split(": ", 1)[-1].strip()
            if text.startswith("- "):
                named.append(text[2:])
            elif named and not text:
                break
        if set(named) - {WEBCAM}:
            return ""
    where = f"'{named[0]}' not cleared; " if named else ""
    return (f"OBS {m.group(1)}.{m.group(2)}'s own exit fault (docs/obs32-shutdown.md): {where}"
            f"{'; '.join(faults)}; MindFlow's script had unloaded before OBS cleared its scenes")


@dataclass
class ControlVerdict:
    """The outcome of :func:`check_clean_exit`. ``obs_own``: OBS's own fault — OBS 32's known exit fault
    (``known``, :func:`obs32_exit_fault`) or a control run without MindFlow's script failed the same way (a hang for a
    hang; a crash, leak or libobs complaint for one of those)."""

    faults: list[str]
    result: ObsResult
    controls: list[tuple[list[str], ObsResult]]
    logs: list[Path]
    known: str = ""

    @property
    def obs_own(self) -> bool:
        return bool(self.known) or any(faults and _fault_class(faults) == _fault_class(self.faults)
                                       for faults, _ in self.controls)

    def report(self) -> str:
        if self.known:
            return "\n".join(p for p in (self.known + ".", _fault_lines(self.result),
                                         "  log: " + ", ".join(str(p) for p in self.logs)) if p)
        head = ("OBS's own shutdown fault (control run fails the same way)" if self.obs_own else
                f"OBS failed at exit only with MindFlow's script loaded ({len(self.controls)} control run(s) without "
                f"it exited cleanly)")
        parts = [f"{head}.", f"  with MindFlow: {'; '.join(self.faults)}", _fault_lines(self.result)]
        for i, (faults, res) in enumerate(self.controls, 1):
            parts.append(f"  control run {i} (same scene collection, no MindFlow script): "
                         f"{'; '.join(faults) or 'clean exit'}")
            if faults:
                parts.append(_fault_lines(res))
        parts.append("  logs: " + ", ".join(str(p) for p in self.logs))
        if self.result.diagnostics:
            what = "hung" if self.result.killed else "crashed"
            parts.append(f"  stacks of the {what} OBS (with MindFlow):\n" + self.result.diagnostics)
        return "\n".join(p for p in parts if p)


def control_runs(run: ObsProcess, faults: list[str], attempts: int | None = None) -> ControlVerdict:
    """Run the same configuration again without MindFlow's script — same scene collection(s), test hooks (plus the
    config's ``control_hooks``: what MindFlow did to OBS), recording or streaming flags, and as long before being
    closed the same way; the hooks load the libraries MindFlow loads into OBS (numpy, OpenCV, onnxruntime with a
    model session: ``load_runtime``), as OBS 32's exit fails far more often with them loaded whoever loads them
    (docs/obs32-shutdown.md) — until one run fails the same way or
    ``attempts`` runs exited cleanly. The logs of every run are kept (``$MINDFLOW_E2E_ARTIFACTS`` when set)."""
    assert run.result is not None
    if attempts is None:
        attempts = min(CONTROL_RUNS, CONTROL_RUNS_HANG) if _fault_class(faults) == "hang" else CONTROL_RUNS
    controls: list[tuple[list[str], ObsResult]] = []
    for i in range(1, attempts + 1):
        cfg = dataclasses.replace(run.cfg, workdir=run.cfg.workdir / f"control-{i}", script_settings=None,
                                  collection_settings={},
                                  hooks={**run.cfg.hooks, "load_runtime": True, **run.cfg.control_hooks})
        cfg.workdir.mkdir(parents=True, exist_ok=True)
        ctl = ObsProcess(cfg, start_recording=run.start_recording, start_streaming=run.start_streaming,
                         nice=run.nice, diagnose=False)
        with ctl:
            ctl.wait_for(r"MindFlow e2e: hooks loaded", 90)
            if run.start_recording:
                ctl.wait_for(r"==== Recording Start", 60)
            if cfg.control_action is not None:
                cfg.control_action(cfg.workdir)
            time.sleep(max(0.0, (run.stop_requested_s or 0.0) - (time.monotonic() - ctl.t0)))
            res = ctl.stop(timeout=run.stop_timeout)
        cf = exit_faults(res)
        controls.append((cf, res))
        if cf and _fault_class(cf) == _fault_class(faults):
            break
    verdict = ControlVerdict(faults, run.result, controls, [])
    verdict.logs = _keep_logs(run, [res for _, res in controls])
    return verdict


def _keep_logs(run: ObsProcess, controls: list[ObsResult]) -> list[Path]:
    """Copy the OBS logs of the run and its control runs to ``$MINDFLOW_E2E_ARTIFACTS/<workdir name>/`` (CI keeps
    them; a chroot's /tmp is gone after the run); without it, their paths in the workdir."""
    runs = [run] + [r.run for r in controls if r.run is not None]
    paths = [p for p in (r.log_path() for r in runs) if p is not None]
    dest_root = os.environ.get("MINDFLOW_E2E_ARTIFACTS")
    if not dest_root:
        return paths
    dest = Path(dest_root) / run.cfg.workdir.name
    dest.mkdir(parents=True, exist_ok=True)
    kept = []
    for i, (r, p) in enumerate(zip(runs, paths)):
        name = "with-mindflow" if i == 0 else f"control-{i}"
        shutil.copy(p, dest / f"{name}.log")
        if r.stdout_path.is_file():
            shutil.copy(r.stdout_path, dest / f"{name}-stdout.txt")
        for extra in ("obs-crash-stacks.txt", "hang-native-stacks.txt"):
            if (r.cfg.workdir / extra).is_file():
                shutil.copy(r.cfg.workdir / extra, dest / f"{name}-{extra}")
        kept.append(dest / f"{name}.log")
    return kept


def check_clean_exit(result: ObsResult) -> ControlVerdict | None:
    """Assert that OBS exited cleanly — exit status 0, no leaks, no libobs shutdown complaints, not killed — and, when
    it did not, tell OBS's fault from ours:

    - exactly OBS 32's known exit fault, after MindFlow's script had unloaded (:func:`obs32_exit_fault`): OBS's own,
      without control runs — its rate depends on the machine's load (about 1 exit in 4 to 1 in 2 on CI's 2 busy
      cores, with or without MindFlow loaded; docs/obs32-shutdown.md), so no number of clean control runs could
      tell it from ours;
    - otherwise control runs (:func:`control_runs`); a control run without MindFlow's script fails the same way: OBS's own fault (OBS 32 has one:
      docs/obs32-shutdown.md). An :class:`ObsShutdownFault` warning carries the report with both logs, the test
      goes on (its other checks still decide it) and the verdict is returned; CI lists the warnings.
    - only the run with the script fails: ``AssertionError`` with the same report — ours until shown otherwise.

    Returns ``None`` for a clean exit. A line is appended to ``$MINDFLOW_E2E_CONTROL_LOG`` (JSON) whenever control
    runs were made, so CI can say how often the control path fired."""
    faults = exit_faults(result)
    if not faults:
        return None
    if result.run is None:
        raise AssertionError(f"OBS failed at exit: {'; '.join(faults)}")
    known = obs32_exit_fault(result, faults)
    if known:
        verdict = ControlVerdict(faults, result, [], _keep_logs(result.run, []), known=known)
    else:
        verdict = control_runs(result.run, faults)
    record = os.environ.get("MINDFLOW_E2E_CONTROL_LOG")
    if record:
        with open(record, "a", encoding="utf-8") as f:
            f.write(json.dumps({"workdir": str(result.run.cfg.workdir), "faults": faults, "obs_own": verdict.obs_own,
                                "known": verdict.known,
                                "controls": [c for c, _ in verdict.controls], "logs": [str(p) for p in verdict.logs]})
                    + "\n")
    if not verdict.obs_own:
        raise AssertionError(verdict.report())
    warnings.warn(ObsShutdownFault(verdict.report()), stacklevel=2)
    return verdict


def saved_source_settings(cfg: ObsConfig, collection: str, source_name: str) -> dict[str, Any] | None:
    """The settings OBS saved for ``source_name`` in ``collection`` (read after exit)."""
    try:
        doc = json.loads(cfg.collection_file(collection).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for src in doc.get("sources", []):
        if src.get("name") == source_name:
            return src.get("settings", {})
    return None


def saved_script_settings(cfg: ObsConfig, collection: str) -> dict[str, Any] | None:
    try:
        doc = json.loads(cfg.collection_file(collection).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for entry in doc.get("modules", {}).get("scripts-tool", []):
        if Path(entry.get("path", "")).name == cfg.script_path.name:
            return entry.get("settings", {})
    return None
