"""Per-face inference time of an exported DAN through the engine (``ExpressionModel.classify_crops``).

    .venv/bin/python -m tools.bench_dan [--model DIR] [--threads 1 2] [--runs 50] [--int8] [--keep DIR]

Without ``--model``, a DAN with random weights (``tools.dan.model.randomize``) is saved as an official-format
checkpoint and exported with ``tools.dan.export`` into a temporary folder; random weights cost exactly what trained
ones cost. With ``--model`` an existing folder (e.g. your exported checkpoint) is timed instead.

One face = the Haar box of ``tests/data/faces/astronaut.png`` (95×95 px), so the time includes the engine's crop
preprocessing (colour conversion, resize to 224×224, normalisation) and the softmax. Printed per variant and thread
count: median, 90th percentile and minimum wall milliseconds over ``--runs`` runs (after 5 warm-up runs; all
variants interleaved) and the median CPU milliseconds per face.

``--int8`` also builds onnxruntime int8 variants of the model (dynamic; static QDQ and QOperator, per-channel,
calibrated on crops of the two test photos) and prints, besides their speed, the largest probability difference
from the float32 model over real photo crops and whether the top label changes. With random weights those
deviations say nothing about accuracy on real faces; no labelled AffectNet/RAF-DB data exists here to measure that.

Timings depend on the machine and on its load: other processes on the same cores slow every figure down.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # allow `python tools/bench_dan.py` as well as `python -m tools.bench_dan`
    sys.path.insert(0, str(REPO))

from obs_mindflow.engine.model import ExpressionModel, ModelOptions  # noqa: E402

FACES = REPO / "tests" / "data" / "faces"
CASCADE = "haarcascade_frontalface_default.xml"


def face_crops() -> list[np.ndarray]:
    """BGR uint8 crops of real faces: each test photo's Haar box, its mirror image, and the box grown by 20 %."""
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADE)
    crops = []
    for path in sorted(FACES.glob("*.[pj][np]g")):
        img = cv2.imread(str(path))
        boxes = cascade.detectMultiScale(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), 1.1, 5, minSize=(60, 60))
        for x, y, w, h in boxes:
            crop = img[y:y + h, x:x + w]
            m = int(0.2 * w)
            crops += [crop, cv2.flip(crop, 1), img[max(y - m, 0):y + h + m, max(x - m, 0):x + w + m]]
    if not crops:
        raise RuntimeError(f"no face found in {FACES}: the benchmark needs the test photos (astronaut.png, …)")
    return crops


def export_random_dan(folder: Path, seed: int = 0) -> Path:
    """Export a random-weight 8-class DAN into ``folder/dan-random``; returns the model folder."""
    import torch

    from tools.dan.export import export
    from tools.dan.model import DAN, randomize

    model = randomize(DAN(num_class=8), seed=seed)
    ckpt = folder / "dan-random-weights.pth"
    torch.save({"iter": 0, "model_state_dict": model.state_dict(), "optimizer_state_dict": {}}, ckpt)
    result = export(ckpt, "affectnet8", folder / "dan-random", measure_speed=False)
    return result.out


def time_per_face(models: dict[tuple[str, int], ExpressionModel], crop: np.ndarray, runs: int,
                  rounds: int = 5) -> dict[tuple[str, int], dict[str, float]]:
    """Time ``classify_crops([crop])`` for every loaded model, interleaved so that load changes hit all alike.

    ``runs`` timed calls per model, taken in ``rounds`` round-robin rounds after 5 warm-up calls. Returns per
    model: ``median``/``p90``/``min`` wall milliseconds and ``cpu`` — the median process CPU milliseconds per call,
    which other processes on the machine inflate less than wall time (with 1 thread, about the compute itself; with
    more, onnxruntime's spinning worker threads add to it). ``min`` approximates the time on an idle machine.
    """
    for model in models.values():
        for _ in range(5):
            model.classify_crops([crop])
    wall: dict = {k: [] for k in models}
    cpu: dict = {k: [] for k in models}
    per_round = [runs // rounds + (1 if r < runs % rounds else 0) for r in range(rounds)]
    for n in per_round:
        for key, model in models.items():
            for _ in range(n):
                c0, t0 = time.process_time(), time.perf_counter()
                model.classify_crops([crop])
                wall[key].append((time.perf_counter() - t0) * 1000.0)
                cpu[key].append((time.process_time() - c0) * 1000.0)
    out = {}
    for key in models:
        w = sorted(wall[key])
        out[key] = {"median": statistics.median(w), "p90": w[min(len(w) - 1, int(0.9 * len(w)))], "min": w[0],
                    "cpu": statistics.median(cpu[key])}
    return out


def int8_variants(folder: Path, work: Path, crops: list[np.ndarray]) -> dict[str, Path]:
    """int8 copies of the model folder: name → folder holding the quantised ONNX file and an adapted card.

    The copy's card keeps labels and preprocessing, gets a ``-int8-…`` name and display name, loses the fp32
    ``ms_per_face``/parity figures, and says in ``notes``/``extra.quantization`` how it was made and that its
    accuracy is unverified.
    """
    import logging

    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    logging.getLogger().setLevel(logging.ERROR)  # "Axis 1 is out-of-range" for BatchNorm1d scales: harmless
    fp32 = ExpressionModel.load(folder)
    pre = work / "pre.onnx"
    quant_pre_process(str(folder / fp32.card.file), str(pre), skip_symbolic_shape=True)
    calib = [fp32.preprocess_crops([c]) for c in crops]
    calib += [fp32.preprocess_crops([cv2.convertScaleAbs(c, alpha=a, beta=b)])
              for c in crops for a, b in ((0.8, 10), (1.2, -20))]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter({fp32.input_name: x} for x in calib)

        def get_next(self):
            return next(self._it, None)

    out = {}

    def variant(name: str, how: str, build) -> None:
        dst = work / name
        dst.mkdir()
        for f in folder.iterdir():
            if f.is_file() and f.name not in (fp32.card.file, "card.json"):
                shutil.copy(f, dst / f.name)
        build(str(dst / fp32.card.file))
        card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
        card["name"] = f"{card['name']}-{name}"
        card["display_name"] = f"{card.get('display_name') or fp32.card.name} {name} (experimental)"
        card.pop("ms_per_face", None)
        extra = card.setdefault("extra", {})
        for key in ("parity", "ms_per_face_note"):
            extra.pop(key, None)
        extra["quantization"] = {"method": how, "onnxruntime": ort_version(),
                                 "calibration": f"{len(calib)} crops of the test photos" if "static" in name else None,
                                 "made_by": "python -m tools.bench_dan --int8"}
        card["notes"] = (f"{card.get('notes', '')} int8-quantised copy ({how}) of {fp32.card.name}: faster, "
                         f"accuracy not verified against the float32 model.").strip()
        (dst / "card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
        readme = dst / "README.md"
        if readme.is_file():
            readme.write_text(f"**This folder is an int8-quantised copy ({how}), made by `python -m tools.bench_dan "
                              f"--int8`; accuracy not verified. The figures below are the float32 model's.**\n\n"
                              + readme.read_text(encoding="utf-8"), encoding="utf-8")
        out[name] = dst

    variant("int8-dynamic", "onnxruntime quantize_dynamic, uint8 weights",
            lambda p: quantize_dynamic(str(pre), p, weight_type=QuantType.QUInt8))
    for fmt in (QuantFormat.QDQ, QuantFormat.QOperator):
        variant(f"int8-static-{fmt.name}",
                f"onnxruntime quantize_static {fmt.name}, per-channel int8 weights, uint8 activations, reduce_range",
                lambda p, fmt=fmt: quantize_static(str(pre), p, Reader(), quant_format=fmt, per_channel=True,
                                                   reduce_range=True, activation_type=QuantType.QUInt8,
                                                   weight_type=QuantType.QInt8))
    return out


def ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def deviation(reference: Path, other: Path, crops: list[np.ndarray]) -> tuple[float, int]:
    """Max abs probability difference over ``crops`` and the number of crops whose top label changes."""
    a = ExpressionModel.load(reference).classify_crops(crops)
    b = ExpressionModel.load(other).classify_crops(crops)
    return float(np.abs(a - b).max()), int((a.argmax(1) != b.argmax(1)).sum())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_dan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="an exported DAN folder (default: export a random-weight DAN)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="onnxruntime intra-op threads")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per variant and thread count (≥ 1)")
    parser.add_argument("--int8", action="store_true", help="also time int8-quantised variants")
    parser.add_argument("--keep", type=Path,
                        help="copy the model folders (fp32 and, with --int8, the int8 ones) into this folder")
    args = parser.parse_args(argv)
    if args.runs < 1 or any(t < 1 for t in args.threads):
        parser.error("--runs and --threads must be ≥ 1")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {os.cpu_count()} logical CPUs, load average (1 min) {load:.2f} at start")
    crops = face_crops()
    face = crops[0]
    with tempfile.TemporaryDirectory(prefix="bench-dan-") as tmp:
        tmp = Path(tmp)
        if args.model is None:
            t0 = time.perf_counter()
            folder = export_random_dan(tmp)
            print(f"exported a random-weight DAN in {time.perf_counter() - t0:.1f} s "
                  f"({(folder / 'model.onnx').stat().st_size / 1e6:.1f} MB)")
        else:
            folder = args.model
        variants = {"fp32": folder}
        if args.int8:
            variants.update(int8_variants(folder, tmp, crops))
        print(f"one face: {face.shape[1]}×{face.shape[0]} px crop → 224×224; {args.runs} runs per cell after 5 "
              f"warm-up, all cells interleaved; wall ms median (p90) [min] and CPU ms median")
        models = {(name, t): ExpressionModel.load(path, ModelOptions(intra_op_threads=t))
                  for name, path in variants.items() for t in args.threads}
        times = time_per_face(models, face, args.runs)
        header = " ".join(f"{f'{t} thread(s): ms (p90) [min] cpu':>36}" for t in args.threads)
        print(f"{'variant':<22} {'MB':>5} {header}   max|Δp| vs fp32, top-1 changes")
        for name, path in variants.items():
            size = sum(f.stat().st_size for f in path.glob("*.onnx")) / 1e6
            cols = " ".join(f"{c['median']:>13.1f} ({c['p90']:>5.1f}) [{c['min']:>5.1f}] {c['cpu']:>6.1f}"
                            for c in (times[name, t] for t in args.threads))
            dev = "" if name == "fp32" else "   {:.3f}, {}/{} crops".format(*deviation(folder, path, crops), len(crops))
            print(f"{name:<22} {size:>5.1f} {cols}{dev}", flush=True)
        if args.keep:
            for name, path in variants.items():
                shutil.copytree(path, args.keep.expanduser() / name, dirs_exist_ok=True)
            print(f"model folders copied to {args.keep}/ ({', '.join(variants)})")
    print(f"load average (1 min) at end {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
