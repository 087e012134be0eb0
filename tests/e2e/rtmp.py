"""What viewers see: a loopback-only RTMP server, a viewer that pulls the live stream back, and OCR of the picture.

Used by ``tests/e2e/test_stream_e2e.py`` and ``tools/bench_stream.py``. Nothing here imports the engine or obspython.

- :class:`RtmpServer` — nginx with ``libnginx-mod-rtmp`` as a foreground, single-process server with its own prefix
  (config, pid, logs in a temporary folder; no ``user`` switch, no privileged port, no ``http`` block), listening on
  one free port of 127.0.0.1 only. :meth:`RtmpServer.listening` lists every socket the process listens on (read from
  ``/proc``), so a test can check that nothing else is open. OBS publishes to ``url`` + ``key`` (its ``rtmp_custom``
  service); a viewer plays ``play_url``.
- :class:`StreamPuller` — ``ffmpeg`` playing ``play_url`` as a viewer would, decoding every frame at once
  (no buffering, one decoder thread, flushed per frame) and writing the wanted regions of each frame (crops, gray,
  optionally scaled) to a pipe; a thread stamps each frame with ``time.monotonic()`` as it arrives. That clock is
  the one OBS's own Python uses (CLOCK_MONOTONIC), so arrival times compare with times logged inside OBS.
- :func:`ocr` — tesseract (one process for a whole batch of images), :func:`parse_text` — a read text line back into
  the template's fields (``"{emotion} · {negative_share} negative"``).
- :class:`ClipMatcher` — which frame of the stand-in webcam clip a broadcast frame shows (nearest thumbnail), so the
  clip's playback clock can be read off the stream itself.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

RTMP_MODULE_PATHS = ("/usr/lib/nginx/modules/ngx_rtmp_module.so", "/usr/lib64/nginx/modules/ngx_rtmp_module.so")
APT_PACKAGES = "nginx-light libnginx-mod-rtmp ffmpeg tesseract-ocr tesseract-ocr-eng"


def rtmp_module() -> str | None:
    for path in RTMP_MODULE_PATHS:
        if os.path.isfile(path):
            return path
    return None


def stream_tools_missing() -> str:
    """``""`` when nginx (+ its RTMP module), ffmpeg and tesseract (+ English) are installed, else what is missing."""
    missing = [name for name in ("nginx", "ffmpeg", "tesseract") if shutil.which(name) is None]
    if shutil.which("nginx") and rtmp_module() is None:
        missing.append("nginx's RTMP module")
    if shutil.which("tesseract"):
        try:
            langs = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            langs = ""
        if "eng" not in langs.split():
            missing.append("tesseract's English data")
    if not missing:
        return ""
    return (f"{', '.join(missing)} not found: the streaming test needs them (Debian/Ubuntu: apt-get install "
            f"{APT_PACKAGES})")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ==================================================================================================================
# Which sockets a process listens on (from /proc; no ss/netstat needed)
# ==================================================================================================================

def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _decode_addr(hex_addr: str) -> tuple[str, int]:
    host, port = hex_addr.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        ip = socket.inet_ntop(socket.AF_INET, raw[::-1])
    else:   # /proc/net/tcp6: four 32-bit words, each in host (little-endian) order
        ip = socket.inet_ntop(socket.AF_INET6, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
    return ip, int(port, 16)


def listening_sockets(pid: int) -> list[tuple[str, str, int]]:
    """``(protocol, address, port)`` of every TCP socket ``pid`` listens on and every UDP socket it has bound."""
    inodes = _socket_inodes(pid)
    found = []
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{proto}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) < 10 or parts[9] not in inodes:
                continue
            listening = parts[3] == "0A" if proto.startswith("tcp") else True
            if listening:
                found.append((proto, *_decode_addr(parts[1])))
    return sorted(found)


# ==================================================================================================================
# The RTMP server
# ==================================================================================================================

NGINX_CONF = """\
# MindFlow streaming test: a loopback-only RTMP relay. Foreground, one process, everything under this prefix.
daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
load_module {module};
events {{ worker_connections 64; }}
rtmp {{
    server {{
        listen 127.0.0.1:{port};
        chunk_size 4096;
        application {app} {{
            live on;
            record off;
            wait_key on;
            allow publish 127.0.0.1;
            deny publish all;
            allow play 127.0.0.1;
            deny play all;
        }}
    }}
}}
"""


class RtmpError(RuntimeError):
    pass


class RtmpServer:
    """nginx-rtmp on ``127.0.0.1:<free port>``, started and stopped by the caller (a context manager)."""

    def __init__(self, workdir: Path, app: str = "live", key: str = "mindflow") -> None:
        self.prefix = Path(workdir) / "nginx"
        self.app, self.key = app, key
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The server URL for OBS's custom service (the stream key goes separately)."""
        return f"rtmp://127.0.0.1:{self.port}/{self.app}"

    @property
    def play_url(self) -> str:
        return f"{self.url}/{self.key}"

    @property
    def error_log(self) -> Path:
        return self.prefix / "error.log"

    def log(self) -> str:
        try:
            return self.error_log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def start(self, timeout: float = 30.0, attempts: int = 5) -> "RtmpServer":
        module = rtmp_module()
        if module is None or shutil.which("nginx") is None:
            raise RtmpError(stream_tools_missing() or "nginx's RTMP module not found")
        self.prefix.mkdir(parents=True, exist_ok=True)
        problem = ""
        for _ in range(attempts):   # the free port may be taken by someone else before nginx binds it
            self.port = free_port()
            conf = self.prefix / "nginx.conf"
            conf.write_text(NGINX_CONF.format(prefix=self.prefix, module=module, port=self.port, app=self.app),
                            encoding="utf-8")
            out = open(self.prefix / "stdout.txt", "ab")
            self.proc = subprocess.Popen(["nginx", "-p", str(self.prefix), "-c", str(conf),
                                          "-e", str(self.error_log)],
                                         stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
            out.close()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self._accepts():
                    return self
                time.sleep(0.1)
            problem = self.log()[-2000:]
            self.stop()
            if "Address already in use" not in problem:
                break
        raise RtmpError(f"nginx did not start an RTMP server on 127.0.0.1:{self.port}:\n{problem}")

    def _accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                return True
        except OSError:
            return False

    def listening(self) -> list[tuple[str, str, int]]:
        """Every socket the server process listens on (expected: exactly ``('tcp', '127.0.0.1', port)``)."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        return listening_sockets(self.proc.pid)

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGQUIT)   # graceful: close connections, exit
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def __enter__(self) -> "RtmpServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ==================================================================================================================
# The viewer
# ==================================================================================================================

@dataclass(frozen=True)
class Region:
    """A rectangle of the broadcast picture (pixels of the stream's resolution); ``scale`` shrinks it (w, h)."""

    name: str
    x: int
    y: int
    w: int
    h: int
    scale: tuple[int, int] | None = None

    @property
    def out_size(self) -> tuple[int, int]:
        return self.scale or (self.w, self.h)


@dataclass
class PulledFrame:
    index: int
    arrival: float                       # time.monotonic() when the frame was read from ffmpeg
    regions: dict[str, np.ndarray]       # name → gray uint8 (h, w)


class StreamPuller:
    """Plays ``url`` with ffmpeg and keeps, for every decoded frame, its arrival time and the gray ``regions``.

    ``keep(frame) -> bool`` (optional) decides whether a frame is stored in :attr:`frames`; every frame is counted
    in :attr:`count`, and ``on_frame`` is called for each (in the reader thread)."""

    def __init__(self, url: str, regions: Sequence[Region], workdir: Path, *,
                 keep: Callable[[PulledFrame], bool] | None = None,
                 on_frame: Callable[[PulledFrame], None] | None = None) -> None:
        if not regions:
            raise ValueError("at least one region")
        self.url = url
        self.regions = tuple(regions)
        self.workdir = Path(workdir)
        self.keep = keep
        self.on_frame = on_frame
        self.width = max(r.out_size[0] for r in self.regions)
        self.height = sum(r.out_size[1] for r in self.regions)
        self.frames: list[PulledFrame] = []
        self.count = 0
        self.first_arrival: float | None = None
        self.proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None
        self.stderr_path = self.workdir / "ffmpeg-viewer.txt"
        self.error = ""

    def command(self) -> list[str]:
        chains, labels = [], []
        n = len(self.regions)
        chains.append(f"[0:v]split={n}" + "".join(f"[s{i}]" for i in range(n)) if n > 1 else "[0:v]null[s0]")
        for i, r in enumerate(self.regions):
            ow, oh = r.out_size
            chain = f"[s{i}]crop={r.w}:{r.h}:{r.x}:{r.y}"
            if r.scale:
                chain += f",scale={ow}:{oh}:flags=area"
            chain += f",format=gray,pad={self.width}:{oh}:0:0:black[r{i}]"
            chains.append(chain)
            labels.append(f"[r{i}]")
        chains.append("".join(labels) + (f"vstack=inputs={n}[out]" if n > 1 else "null[out]"))
        return ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "warning",
                "-fflags", "nobuffer", "-flags", "low_delay", "-threads", "1", "-probesize", "200000",
                "-analyzeduration", "500000", "-rw_timeout", "60000000", "-i", self.url,
                "-filter_complex", ";".join(chains), "-map", "[out]", "-an", "-threads", "1",
                "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "gray", "-flush_packets", "1", "pipe:1"]

    def start(self) -> "StreamPuller":
        self.workdir.mkdir(parents=True, exist_ok=True)
        err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                                     bufsize=0, start_new_session=True)
        err.close()
        self._thread = threading.Thread(target=self._read, name="stream-puller", daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        size = self.width * self.height
        buf = bytearray(size)
        view = memoryview(buf)
        pipe = self.proc.stdout
        try:
            while True:
                got = 0
                while got < size:
                    n = pipe.readinto(view[got:])
                    if not n:
                        return
                    got += n
                arrival = time.monotonic()
                if self.first_arrival is None:
                    self.first_arrival = arrival
                img = np.frombuffer(bytes(buf), np.uint8).reshape(self.height, self.width)
                parts, y = {}, 0
                for r in self.regions:
                    ow, oh = r.out_size
                    parts[r.name] = img[y:y + oh, :ow]
                    y += oh
                frame = PulledFrame(self.count, arrival, parts)
                self.count += 1
                if self.on_frame is not None:
                    self.on_frame(frame)
                if self.keep is None or self.keep(frame):
                    self.frames.append(frame)
        except Exception as exc:  # noqa: BLE001 - reported by the caller through .error
            self.error = f"{type(exc).__name__}: {exc}"

    def wait_frames(self, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count >= n:
                return True
            if self.proc is not None and self.proc.poll() is not None and not self._alive():
                return self.count >= n
            time.sleep(0.1)
        return self.count >= n

    def _alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> "StreamPuller":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ==================================================================================================================
# OCR
# ==================================================================================================================

def prepare_for_ocr(gray: np.ndarray, threshold: int = 128) -> np.ndarray:
    """Light text on a dark background → black text on white with a margin (what tesseract reads best)."""
    img = np.where(gray >= threshold, 0, 255).astype(np.uint8)
    return np.pad(img, 12, constant_values=255)


def ocr(images: Sequence[np.ndarray], *, psm: int = 7, whitelist: str = "", workdir: Path | None = None,
        timeout: float = 600.0) -> list[str]:
    """Tesseract's reading of each image (one text line each, ``--psm 7``), in one tesseract process for the batch.
    Images are gray uint8, dark text on light (see :func:`prepare_for_ocr`)."""
    import cv2

    if not images:
        return []
    own = workdir is None
    folder = Path(tempfile.mkdtemp(prefix="mindflow-ocr-")) if own else Path(workdir)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        paths = []
        for i, img in enumerate(images):
            p = folder / f"ocr-{i:05d}.png"
            cv2.imwrite(str(p), img)
            paths.append(str(p))
        listing = folder / "ocr-list.txt"
        listing.write_text("\n".join(paths) + "\n", encoding="utf-8")
        cmd = ["tesseract", str(listing), "stdout", "--psm", str(psm), "-l", "eng"]
        if whitelist:
            cmd += ["-c", f"tessedit_char_whitelist={whitelist}"]
        env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
        out = subprocess.run(cmd, capture_output=True, timeout=timeout, env=env)
        if out.returncode != 0:
            raise RuntimeError(f"tesseract failed ({out.returncode}): {out.stderr.decode(errors='replace')[-2000:]}")
        pages = out.stdout.decode("utf-8", errors="replace").split("\f")
        texts = [" ".join(p.split()) for p in pages[:len(images)]]
        if len(texts) != len(images):
            raise RuntimeError(f"tesseract returned {len(texts)} pages for {len(images)} images")
        return texts
    finally:
        if own:
            shutil.rmtree(folder, ignore_errors=True)


# ------------------------------------------------------------------------------------------------------------------
# The text line the default template writes: "{emotion} · {negative_share} negative"
# ------------------------------------------------------------------------------------------------------------------

NO_FACE = "no face"
UNCERTAIN = "uncertain"       # MindFlow's display when a face is seen but cannot be read reliably


@dataclass(frozen=True)
class Reading:
    """A text line read back from the broadcast. ``emotion``: a label, ``"no face"``, ``"uncertain"`` or ``None``;
    ``negative_share``: the percentage shown, ``"–"`` when the template showed no value yet, ``None`` when the line
    shows no negative share at all."""

    text: str
    emotion: str | None
    negative_share: str | None

    @property
    def shows_negative_share(self) -> bool:
        """The line discloses a negative share (a number with % or the word 'negative')."""
        return self.negative_share is not None or bool(re.search(r"\d\s*%|negativ", self.text, re.IGNORECASE))


_SHARE_RE = re.compile(r"(\d{1,3})\s*%|(?<![a-z0-9])[-–—~](?=\s*%?\s*negativ)", re.IGNORECASE)


def parse_text(text: str, labels: Iterable[str]) -> Reading:
    """Parse a read line: the first word(s) naming a known label (or 'no face'), then the negative share."""
    t = " ".join(text.split())
    low = t.lower()
    emotion = None
    for name in sorted([*labels, NO_FACE, UNCERTAIN], key=len, reverse=True):
        if re.match(rf"{re.escape(name)}\b", low):
            emotion = name
            break
    share = None
    m = _SHARE_RE.search(low)
    if m and "negativ" in low[m.start():]:
        share = m.group(1) if m.group(1) else "–"
    return Reading(t, emotion, share)


def normalise(text: str) -> str:
    """A line in the form read and shown lines are compared in: lower case, the separator dot and the dash of "no
    value" (which OCR reads as ``-``, ``.`` or ``+``) dropped, single spaces, ``N %`` spaced one way."""
    t = re.sub(r"[·•\-–—.,:;*+~_|]", " ", text.lower())
    t = re.sub(r"\s*%", " %", t)
    return " ".join(t.split())


# ==================================================================================================================
# The stand-in webcam clip: which of its frames the broadcast shows
# ==================================================================================================================

@dataclass
class ClipMatcher:
    """Thumbnails of every frame of ``clip`` (gray, ``size``), decoded by ffmpeg as the viewer's thumbnails are; a
    broadcast thumbnail is matched to the nearest clip frame (mean squared difference after removing each image's
    mean, so a small brightness change from encoding does not matter)."""

    clip: Path
    size: tuple[int, int] = (48, 27)
    fps: float = 0.0
    thumbs: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        w, h = self.size
        out = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(self.clip), "-vf",
                              f"scale={w}:{h}:flags=area,format=gray", "-fps_mode", "passthrough", "-f", "rawvideo",
                              "pipe:1"], capture_output=True, timeout=300)
        if out.returncode != 0:
            raise RuntimeError(f"ffmpeg could not decode {self.clip}: {out.stderr.decode(errors='replace')}")
        frames = np.frombuffer(out.stdout, np.uint8).reshape(-1, h * w).astype(np.float32)
        self.thumbs = frames - frames.mean(axis=1, keepdims=True)
        if not self.fps:
            probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                                    "stream=r_frame_rate", "-of", "csv=p=0", str(self.clip)],
                                   capture_output=True, text=True, timeout=60).stdout.strip()
            num, _, den = probe.partition("/")
            self.fps = float(num) / float(den or 1)

    @property
    def frame_count(self) -> int:
        return len(self.thumbs)

    @property
    def duration(self) -> float:
        return self.frame_count / self.fps

    def match(self, thumbs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(index, distance)`` of the nearest clip frame for each of ``thumbs`` (``(n, h, w)`` or ``(n, h*w)``
        gray); the distance is the RMS difference in gray levels."""
        x = np.asarray(thumbs, np.float32).reshape(len(thumbs), -1)
        x = x - x.mean(axis=1, keepdims=True)
        d2 = (x * x).sum(1)[:, None] + (self.thumbs * self.thumbs).sum(1)[None, :] - 2.0 * x @ self.thumbs.T
        idx = np.argmin(d2, axis=1)
        dist = np.sqrt(np.maximum(d2[np.arange(len(x)), idx], 0.0) / x.shape[1])
        return idx, dist


# ------------------------------------------------------------------------------------------------------------------
# The bundled sample clip's script (tools/make_sample.py): what it shows when, and what MindFlow should display
# ------------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Segment:
    """``[start, end)`` seconds of the clip showing ``label``'s face (``"no face"``: none). ``cut``: the segment
    starts with a hard cut (the face appears from one frame to the next) rather than a camera pan."""

    start: float
    end: float
    label: str
    cut: bool


#: samples/mindflow-sample.mp4 (12 fps, 336 frames): the astronaut (smiling) 0–10 s, a pan off the face onto a wall
#: 10–14 s, Grace Hopper (neutral) 14–24 s, a pan off onto a wall 24–28 s; then it loops. The face-lost times are where
#: MindFlow's own face detector stops finding the face during the pans (clip frames 131 and 299; tools/bench_stream.py
#: re-measures them); the labels are what the default model says of each photo throughout its segment.
SAMPLE_SEGMENTS: tuple[Segment, ...] = (
    Segment(0.0, 131 / 12, "happy", True),
    Segment(131 / 12, 14.0, NO_FACE, False),
    Segment(14.0, 299 / 12, "neutral", True),
    Segment(299 / 12, 28.0, NO_FACE, False),
)


def segment_at(clip_t: float, segments: Sequence[Segment] = SAMPLE_SEGMENTS) -> tuple[Segment, float]:
    """The segment showing at clip time ``clip_t`` (seconds, wrapped into the clip) and how long it has shown."""
    length = segments[-1].end
    t = clip_t % length
    for seg in segments:
        if seg.start <= t < seg.end:
            return seg, t - seg.start
    return segments[-1], t - segments[-1].start
