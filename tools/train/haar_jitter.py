"""How much the engine's Haar face box jitters — the numbers behind the training crops' jitter.

    python -m tools.train.haar_jitter [--clip samples/mindflow-sample.mp4] [--ferplus N] [--json OUT]

Three measurements, all with the engine's own ``obs_mindflow.engine.FaceDetector`` (default options):

1. **clip**: the primary box on every frame of the sample clip (a slow pan/zoom over two photos). The face moves
   smoothly, so the jitter is the box's deviation from a centred 5-frame moving average of itself: centre offset
   as a fraction of the box width, size as log ratio.
2. **photos**: each test photo re-rendered under a known small shift (±12 px), zoom (0.85–1.15) and sensor noise;
   the detected box against the reference box carried through the same transform (a fresh detector each time:
   every detection is a full scan, as when a face is re-acquired).
3. **FER+ faces**: FER+ train images upscaled ×4 and padded; the Haar box relative to the 48×48 image. The engine
   crops that box plus the card's ``crop_margin`` and resizes it to 48×48, so this spread is how the engine's crops
   differ from FER's own framing — what the training crops must cover.

Reported per measurement: mean and standard deviation of centre x/y offsets (fraction of box width) and of the
log size ratio, and the 5th/95th percentiles.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]


def _stats(dx: np.ndarray, dy: np.ndarray, ds: np.ndarray) -> dict:
    def one(v: np.ndarray) -> dict:
        med = float(np.median(v))
        return {"mean": round(float(v.mean()), 4), "std": round(float(v.std()), 4), "median": round(med, 4),
                "robust_std": round(1.4826 * float(np.median(np.abs(v - med))), 4),
                "p5": round(float(np.percentile(v, 5)), 4), "p95": round(float(np.percentile(v, 95)), 4)}
    return {"n": int(len(dx)), "center_x_per_width": one(dx), "center_y_per_width": one(dy),
            "log_size_ratio": one(ds)}


def clip_jitter(path: Path) -> dict:
    from obs_mindflow.engine.detector import FaceDetector
    det = FaceDetector()
    cap = cv2.VideoCapture(str(path))
    boxes, frames = [], 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames += 1
        b = det.detect(frame)
        boxes.append(b[0].astype(np.float64) if len(b) else None)
    # runs of consecutive frames with a face; residual from a centred 5-frame moving average
    dx, dy, ds = [], [], []
    run: list[np.ndarray] = []
    for b in boxes + [None]:
        if b is not None:
            run.append(b)
            continue
        if len(run) >= 5:
            r = np.array(run)
            cx, cy, w = r[:, 0] + r[:, 2] / 2, r[:, 1] + r[:, 3] / 2, r[:, 2]
            k = np.ones(5) / 5
            for i in range(2, len(r) - 2):
                mx, my, mw = (np.dot(k, v[i - 2:i + 3]) for v in (cx, cy, np.log(w)))
                dx.append((cx[i] - mx) / w[i])
                dy.append((cy[i] - my) / w[i])
                ds.append(np.log(w[i]) - mw)
        run = []
    out = _stats(np.array(dx), np.array(dy), np.array(ds))
    out.update(frames=frames, frames_with_face=int(sum(b is not None for b in boxes)),
               method="residual from a centred 5-frame moving average of the primary box")
    return out


def photo_jitter(folder: Path, trials: int = 150, seed: int = 0) -> dict:
    from obs_mindflow.engine.detector import FaceDetector
    rng = np.random.default_rng(seed)
    dx, dy, ds = [], [], []
    missed = 0
    for name in ("astronaut.png", "grace_hopper.jpg"):
        img = cv2.imread(str(folder / name))
        h, w = img.shape[:2]
        ref = FaceDetector().detect(img)[0].astype(np.float64)
        for _ in range(trials):
            s = rng.uniform(0.85, 1.15)
            tx, ty = rng.uniform(-12, 12, 2)
            m = np.array([[s, 0, (1 - s) * w / 2 + tx], [0, s, (1 - s) * h / 2 + ty]])
            warped = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            warped = np.clip(warped + rng.normal(0, 3, warped.shape), 0, 255).astype(np.uint8)
            found = FaceDetector().detect(warped).astype(np.float64)
            ecx = m[0, 0] * (ref[0] + ref[2] / 2) + m[0, 2]
            ecy = m[1, 1] * (ref[1] + ref[3] / 2) + m[1, 2]
            ew = s * ref[2]
            want = np.array([ecx - ew / 2, ecy - ew / 2, ew, ew])
            from obs_mindflow.engine.detector import _iou
            iou = _iou(want, found) if len(found) else np.zeros(1)
            if iou.max() < 0.3:                 # the face was not found (another box, or none)
                missed += 1
                continue
            b = found[int(iou.argmax())]
            dx.append((b[0] + b[2] / 2 - ecx) / ew)
            dy.append((b[1] + b[3] / 2 - ecy) / ew)
            ds.append(np.log(b[2] / ew))
    out = _stats(np.array(dx), np.array(dy), np.array(ds))
    out["face_missed"] = missed
    out["method"] = (f"{trials} random shift (±12 px) / zoom (0.85-1.15) / noise renderings per photo vs the "
                     "reference box carried through the transform (the detected box overlapping it best, IoU >= 0.3; "
                     "else counted as missed); full scans")
    return out


def ferplus_framing(data: Path, n: int, seed: int = 0, up: int = 4, pad: int = 24) -> dict:
    from obs_mindflow.engine.detector import FaceDetector
    from .ferplus import load_ferplus
    fp = load_ferplus(data)
    idx = np.random.default_rng(seed).choice(len(fp), min(n, len(fp)), replace=False)
    det = FaceDetector()
    dx, dy, ds, rel = [], [], [], []
    for i in idx:
        big = cv2.resize(fp.images[i], (48 * up, 48 * up), interpolation=cv2.INTER_LINEAR)
        big = cv2.copyMakeBorder(big, pad * up, pad * up, pad * up, pad * up, cv2.BORDER_REPLICATE)
        det.reset()
        found = det.detect(big)
        if not len(found):
            continue
        x, y, w, h = (found[0].astype(np.float64) / up) - np.array([pad, pad, 0, 0])
        dx.append((x + w / 2 - 24) / w)
        dy.append((y + h / 2 - 24) / w)
        ds.append(np.log(w / 48))
    out = _stats(np.array(dx), np.array(dy), np.array(ds))
    out.update(images=int(len(idx)), detected=int(len(dx)),
               box_width_over_image=round(float(np.exp(np.mean(ds))), 4),
               method=f"FER+ train images x{up} (bilinear), replicate-padded; box relative to the 48x48 image")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.train.haar_jitter", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clip", type=Path, default=REPO / "samples" / "mindflow-sample.mp4")
    p.add_argument("--photos", type=Path, default=REPO / "tests" / "data" / "faces")
    p.add_argument("--ferplus", type=int, default=3000, help="FER+ train images to measure (0: skip)")
    p.add_argument("--data", type=Path, default=Path("..") / "shared" / "data" / "ferplus" / "train.npz")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    res = {"clip": clip_jitter(args.clip), "photos": photo_jitter(args.photos)}
    if args.ferplus:
        res["ferplus"] = ferplus_framing(args.data, args.ferplus)
    print(json.dumps(res, indent=1))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
