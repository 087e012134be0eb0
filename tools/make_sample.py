"""Build the bundled sample clip from the two public-domain photos, with camera motion (pan and zoom).

    python -m tools.make_sample [--out samples/mindflow-sample.mp4]

The clip (480×270, 12 fps, MPEG-4 Part 2 in .mp4, about 28 s) is what ``make demo`` analyses and what the OBS
end-to-end test loops as a stand-in webcam:

- 0–10 s: the astronaut photo (smiling), slow pan and zoom in;
- 10–14 s: the camera pans off the face onto an empty wall (no face);
- 14–24 s: the Grace Hopper photo (neutral), slow pan and zoom out;
- 24–28 s: empty wall again.

The output is deterministic for a given OpenCV build but not byte-reproducible across builds; it is committed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FACES = ROOT / "tests" / "data" / "faces"
W, H, FPS = 480, 270, 12


def _wall(h: int, w: int) -> np.ndarray:
    """A plain, softly lit wall (no texture a face detector could mistake for a face)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 150 + 30 * np.sin(xx / w * np.pi) - 20 * (yy / h)
    wall = np.stack([base * 0.95, base * 0.98, base * 1.05], axis=2)
    return np.clip(wall, 0, 255).astype(np.uint8)


def _canvas(photo: np.ndarray) -> np.ndarray:
    """The photo placed on a wider wall so the camera can pan off it."""
    ph, pw = photo.shape[:2]
    canvas = _wall(ph + 200, pw * 3)
    canvas[100:100 + ph, pw:2 * pw] = photo
    return canvas


def _view(canvas: np.ndarray, cx: float, cy: float, view_h: float) -> np.ndarray:
    """A W×H camera view of ``canvas`` centred at (cx, cy) showing ``view_h`` canvas pixels vertically."""
    s = H / view_h
    m = np.array([[s, 0, W / 2 - s * cx], [0, s, H / 2 - s * cy]], np.float32)
    return cv2.warpAffine(canvas, m, (W, H), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)


def _ease(u: float) -> float:
    return 0.5 - 0.5 * np.cos(np.pi * min(max(u, 0.0), 1.0))


def frames():
    rng = np.random.default_rng(7)
    for name, zoom_in in (("astronaut.png", True), ("grace_hopper.jpg", False)):
        photo = cv2.imread(str(FACES / name), cv2.IMREAD_COLOR)
        if photo is None:
            raise FileNotFoundError(f"missing photo {FACES / name}")
        canvas = _canvas(photo)
        ph, pw = photo.shape[:2]
        face_cx, face_cy = pw * 1.5, 100 + ph * 0.42
        n_face, n_away = 10 * FPS, 4 * FPS
        for i in range(n_face):
            u = _ease(i / (n_face - 1))
            view_h = (ph * 1.15 - 0.35 * ph * u) if zoom_in else (ph * 0.8 + 0.35 * ph * u)
            cx = face_cx - 40 + 80 * u
            cy = face_cy + 10 * np.sin(2 * np.pi * i / n_face)
            yield _noisy(_view(canvas, cx, cy, view_h), rng)
        for i in range(n_away):
            u = _ease(min(1.0, 2.0 * i / (n_away - 1)))
            cx = face_cx + 40 + (pw * 1.6) * u
            yield _noisy(_view(canvas, cx, face_cy, ph * 0.9), rng)


def _noisy(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A little brightness flicker, as a webcam's auto-exposure gives (pixel noise would triple the file size)."""
    gain = 1.0 + rng.normal(0, 0.015)
    return np.clip(frame.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "samples" / "mindflow-sample.mp4")
    args = ap.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(args.out), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (W, H))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {args.out} with the mp4v codec")
    n = 0
    for frame in frames():
        writer.write(frame)
        n += 1
    writer.release()
    print(f"wrote {args.out}: {n} frames, {n / FPS:.1f} s at {FPS} fps, {W}x{H}, "
          f"{args.out.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
