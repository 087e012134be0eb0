"""Speed peer for MindFlow's benchmarks: the ``fer`` package's own pipeline on a stack of frames.

Runs inside the venv made by ``tools/make_fer_venv.sh`` (not the project venv)::

    .venv-fer/bin/python tools/fer_peer.py --frames FILE.npy --threads 2 --seconds 10

``FILE.npy`` holds a ``(N, H, W, 3)`` uint8 BGR frame stack. The peer builds ``FER(mtcnn=False)`` — fer's Haar
detector (OpenCV's ``haarcascade_frontalface_default.xml``, scaleFactor 1.1, minNeighbors 5, minSize 50 px) and,
by default, its Keras mini-Xception (the same weights as MindFlow's default model; ``--backend tflite`` uses fer's
own default, a quantized TFLite copy, run on one thread as fer does) — warms up, then calls ``detect_emotions(frame)`` over the frames in a loop for
``--seconds`` and prints **one JSON line** on stdout::

    {"fps": …, "ms_per_frame_median": …, "frames": …, "faces_per_frame": …, "top_emotion": …, "tf_threads": …, …}

``fps`` is frames processed per second of wall time in the timed loop; ``ms_per_frame_median`` the median time of one
``detect_emotions`` call in milliseconds; ``faces_per_frame`` the mean number of faces found; ``top_emotion`` the
most frequent top emotion of the first face (``null`` when no face was found). TensorFlow is limited to
``--threads`` intra-op threads and 1 inter-op thread, OpenCV to ``--threads`` via ``cv2.setNumThreads``.
Everything else (fer's and TensorFlow's logs) goes to stderr.

``--make-frames OUT.npy`` instead writes a test stack: a photo pasted into a grey frame with small shifts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PHOTO = REPO / "tests" / "data" / "faces" / "astronaut.png"
TFLITE_THREADS = 1


class PeerError(RuntimeError):
    """Bad input or environment; the message says what to do."""


def load_frames(path: Path):
    import numpy as np

    if not path.is_file():
        raise PeerError(f"frame stack not found: {path} — make one with --make-frames {path}")
    try:
        frames = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise PeerError(f"{path} is not a readable .npy array: {exc}") from exc
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8 or frames.shape[0] < 1:
        raise PeerError(f"{path}: expected a (N, H, W, 3) uint8 BGR stack with N ≥ 1, got {frames.shape} {frames.dtype}")
    return frames


def make_frames(out: Path, photo: Path, count: int, width: int, height: int, grey: int = 128) -> None:
    """Write ``count`` BGR frames ``height×width`` (uint8): ``photo`` pasted near the centre, shifted by a few pixels
    per frame (a deterministic ±12 px walk) on a uniform ``grey`` background."""
    import cv2
    import numpy as np

    img = cv2.imread(str(photo), cv2.IMREAD_COLOR)
    if img is None:
        raise PeerError(f"cannot read the photo {photo}; pass --photo PATH to a BGR-readable image")
    ph, pw = img.shape[:2]
    if ph + 24 > height or pw + 24 > width:
        raise PeerError(f"photo {pw}×{ph} px does not fit a {width}×{height} frame with ±12 px shifts; use a larger "
                        "--size or a smaller photo")
    rng = np.random.default_rng(0)
    stack = np.full((count, height, width, 3), grey, np.uint8)
    cx, cy = (width - pw) // 2, (height - ph) // 2
    dx = dy = 0
    for i in range(count):
        dx = int(np.clip(dx + rng.integers(-3, 4), -12, 12))
        dy = int(np.clip(dy + rng.integers(-3, 4), -12, 12))
        stack[i, cy + dy:cy + dy + ph, cx + dx:cx + dx + pw] = img
    np.save(out, stack)
    print(f"wrote {out}: {count} frames {width}×{height} BGR with {photo.name} ({pw}×{ph}) shifted ≤ 12 px",
          file=sys.stderr)


def run_peer(frames_path: Path, threads: int, seconds: float, warmup: int, backend: str) -> dict:
    """Time ``FER(mtcnn=False).detect_emotions`` over the stack; returns the figures (see the module docstring)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import cv2
    import numpy as np

    frames = load_frames(frames_path)
    cv2.setNumThreads(threads)
    import tensorflow as tf

    # Must happen before TensorFlow runs its first op (FER's constructor loads the model).
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    try:
        from fer.fer import FER
    except ImportError as exc:
        raise PeerError(f"cannot import fer ({exc}); run inside the fer venv: bash tools/make_fer_venv.sh, then "
                        f".venv-fer/bin/python {Path(__file__).relative_to(REPO)} …") from exc
    import importlib.metadata as md

    if backend == "tflite":
        # fer builds its interpreter without num_threads, which XNNPACK runs on one thread. Seed fer's class-level
        # cache with an explicit 1-thread interpreter so that stays true: with 2 threads, invoke() right after the
        # Haar scan waited 190-250 ms (vs 0.8 ms) for its second worker on a busy 2-core machine.
        import pkg_resources

        path = pkg_resources.resource_filename("fer", "data/emotion_model_quantized.tflite")
        interp = tf.lite.Interpreter(model_path=path, num_threads=TFLITE_THREADS)
        interp.allocate_tensors()
        FER._tflite_interpreter_cache = interp
    detector = FER(mtcnn=False, use_tflite=(backend == "tflite"))

    n = len(frames)
    for i in range(max(warmup, 1)):
        detector.detect_emotions(frames[i % n])

    times, faces, tops = [], [], Counter()
    t_start = time.perf_counter()
    i = 0
    while True:
        t0 = time.perf_counter()
        result = detector.detect_emotions(frames[i % n])
        t1 = time.perf_counter()
        times.append(t1 - t0)
        faces.append(len(result))
        if result:
            emo = result[0]["emotions"]
            tops[max(emo, key=emo.get)] += 1
        i += 1
        if t1 - t_start >= seconds:
            break
    wall = time.perf_counter() - t_start
    return {
        "fps": len(times) / wall,
        "ms_per_frame_median": 1000.0 * float(np.median(times)),
        "frames": len(times),
        "faces_per_frame": float(np.mean(faces)),
        "top_emotion": tops.most_common(1)[0][0] if tops else None,
        "tf_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "tf_inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "cv2_threads": cv2.getNumThreads(),
        "tflite_threads": TFLITE_THREADS if backend == "tflite" else None,
        "backend": backend,
        "frame_shape": list(frames.shape[1:]),
        "seconds": wall,
        "fer_version": md.version("fer"),
        "tensorflow": tf.__version__,
        "loadavg_1m": os.getloadavg()[0],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="fer's FER(mtcnn=False).detect_emotions speed on a frame stack "
                                             "(run inside .venv-fer); prints one JSON line.")
    ap.add_argument("--frames", type=Path, help="(N, H, W, 3) uint8 BGR .npy stack")
    ap.add_argument("--threads", type=int, default=2, help="TensorFlow intra-op and OpenCV threads (default 2)")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the timed loop in seconds (default 10)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed detect_emotions calls first (default 5)")
    ap.add_argument("--backend", choices=("keras", "tflite"), default="keras",
                    help="keras: fer's Keras mini-Xception (same weights as MindFlow's default; the default here); "
                         "tflite: fer's own default, a quantized TFLite copy")
    ap.add_argument("--make-frames", type=Path, metavar="OUT.npy", help="write a test stack instead and exit")
    ap.add_argument("--photo", type=Path, default=DEFAULT_PHOTO, help="photo for --make-frames")
    ap.add_argument("--count", type=int, default=60, help="frames for --make-frames (default 60)")
    ap.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT for --make-frames (default 1280x720)")
    args = ap.parse_args(argv)
    try:
        if args.make_frames:
            try:
                w, h = (int(v) for v in args.size.lower().split("x"))
            except ValueError:
                ap.error(f"--size must be WIDTHxHEIGHT, e.g. 1280x720; got {args.size!r}")
            if args.count < 1:
                ap.error("--count must be >= 1")
            make_frames(args.make_frames, args.photo, args.count, w, h)
            return 0
        if args.frames is None:
            ap.error("--frames FILE.npy is required (or --make-frames OUT.npy to create one)")
        if args.threads < 1 or args.seconds <= 0 or args.warmup < 0:
            ap.error("--threads must be >= 1, --seconds > 0, --warmup >= 0")
        result = run_peer(args.frames, args.threads, args.seconds, args.warmup, args.backend)
    except PeerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
