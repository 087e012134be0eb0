"""Accuracy of an expression model folder on FER2013, through the engine's own preprocessing.

    .venv/bin/python -m tools.bench_accuracy [--model models/NAME (default: the default model)]
                                             [--data ../shared/data/fer2013/validation.npz] [--json OUT]

The data file is an ``.npz`` with ``images`` (N, 48, 48) uint8 grayscale, ``labels`` (N,) indices into
``label_names``, ``augmented`` (N,) bool (synthetic copies added to balance a class), ``files`` (N,) original file
names (``PublicTest_…``). The headline figures use the **original images only**; the augmented copies are scored
separately (they are flips/shifts of originals that are already counted, so mixing them in would inflate the figure).

Faces go through :meth:`ExpressionModel.classify_crops` exactly as the engine does for a detected face crop
(colour conversion, resize with the engine's interpolation, scale/mean/std from the card, the card's temperature).
Model labels are matched to the data set's label names by name (with aliases such as anger ↔ angry); a prediction
of a model label that FER2013 lacks (e.g. ``contempt``) counts as wrong and is reported.

Printed: accuracy, per-class recall and precision, the confusion matrix (rows true, columns predicted),
negative-vs-rest accuracy (negative = the card's ``negative_labels``), mean confidence, expected calibration error
(15 equal-width bins), throughput in images per second (batched, includes preprocessing) and milliseconds per face
(batch 1, one onnxruntime thread, median).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from obs_mindflow.engine.catalog import default_model_dir

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "fer2013" / "validation.npz"
DEFAULT_MODEL = default_model_dir()

# Alternative spellings of the same emotion, mapped to FER2013's names.
ALIASES = {
    "anger": "angry", "angry": "angry",
    "disgust": "disgust", "disgusted": "disgust",
    "fear": "fear", "fearful": "fear", "scared": "fear",
    "happy": "happy", "happiness": "happy", "joy": "happy",
    "sad": "sad", "sadness": "sad",
    "surprise": "surprise", "surprised": "surprise",
    "neutral": "neutral", "calm": "neutral",
}
ECE_BINS = 15


class BenchError(RuntimeError):
    """The data file or model cannot be benchmarked; the message says what to do."""


def canonical(name: str) -> str:
    """Lower-case FER2013 spelling of an emotion name; unknown names are returned lower-cased and stripped."""
    key = name.strip().lower()
    return ALIASES.get(key, key)


@dataclass
class Dataset:
    """FER2013 faces: ``images`` (N, 48, 48) uint8 gray, ``labels`` (N,) int, ``augmented`` (N,) bool."""

    images: np.ndarray
    labels: np.ndarray
    augmented: np.ndarray
    files: np.ndarray
    label_names: tuple[str, ...]
    split: str


def load_dataset(path: Path) -> Dataset:
    if not path.is_file():
        raise BenchError(f"data file not found: {path} — FER2013 lives in ../shared/data/fer2013/ beside the repo "
                         "(see ../shared/README.md); pass --data PATH/validation.npz")
    try:
        d = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise BenchError(f"{path} is not a readable .npz file: {exc}") from exc
    need = {"images", "labels", "label_names"}
    missing = sorted(need - set(d.files))
    if missing:
        raise BenchError(f"{path} lacks key(s) {missing}; it has {d.files}. Expected images (N,48,48) uint8, "
                         "labels (N,), label_names (C,), optionally augmented (N,) and files (N,)")
    images, labels = d["images"], d["labels"].astype(np.int64)
    names = tuple(canonical(str(x)) for x in d["label_names"])
    n = len(images)
    if images.ndim not in (3, 4) or images.dtype != np.uint8:
        raise BenchError(f"{path}: images must be (N, H, W) or (N, H, W, C) uint8, got {images.shape} {images.dtype}")
    if labels.shape != (n,) or labels.min() < 0 or labels.max() >= len(names):
        raise BenchError(f"{path}: labels must be (N,)={n} indices into {len(names)} label_names, got shape "
                         f"{labels.shape}, range {labels.min()}..{labels.max()}")
    augmented = d["augmented"].astype(bool) if "augmented" in d.files else np.zeros(n, bool)
    files = d["files"] if "files" in d.files else np.array([""] * n)
    prefixes = sorted({str(f).split("_", 1)[0] for f, a in zip(files, augmented) if not a and "_" in str(f)})
    split = "+".join(prefixes) if prefixes else path.stem
    return Dataset(images, labels, augmented, files, names, split)


@dataclass
class LabelMap:
    """How the model's outputs map onto the data set's classes.

    ``model_to_data[i]`` is the data class index of model label ``i``, or -1 when FER2013 has no such class.
    """

    model_labels: tuple[str, ...]
    data_labels: tuple[str, ...]
    model_to_data: np.ndarray
    unmapped_model: tuple[str, ...]
    unmapped_data: tuple[str, ...]


def build_label_map(model_labels: tuple[str, ...], data_labels: tuple[str, ...]) -> LabelMap:
    index = {name: i for i, name in enumerate(data_labels)}
    seen: dict[str, str] = {}
    m2d = []
    for lab in model_labels:
        c = canonical(lab)
        if c in seen:
            raise BenchError(f"model labels {seen[c]!r} and {lab!r} both map to FER2013 class {c!r}; "
                             "the card's labels must name distinct emotions")
        seen[c] = lab
        m2d.append(index.get(c, -1))
    m2d_arr = np.array(m2d, np.int64)
    mapped = set(int(x) for x in m2d_arr if x >= 0)
    if len(mapped) < 2:
        raise BenchError(f"model labels {list(model_labels)} share fewer than two classes with the data set's "
                         f"{list(data_labels)}: check the card's labels (aliases known: {sorted(ALIASES)})")
    return LabelMap(tuple(model_labels), tuple(data_labels), m2d_arr,
                    tuple(l for l, j in zip(model_labels, m2d) if j < 0),
                    tuple(n for j, n in enumerate(data_labels) if j not in mapped))


def expected_calibration_error(conf: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE with ``bins`` equal-width confidence bins over (0, 1]: Σ_b |B|/N · |acc(B) − conf(B)|."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def score(probs: np.ndarray, labels: np.ndarray, lm: LabelMap, negative_model: tuple[str, ...]) -> dict:
    """All figures for one set of predictions. ``probs`` (N, C_model) in model label order; ``labels`` data indices."""
    top = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    pred = lm.model_to_data[top]                     # data index, -1 = a model class FER2013 lacks
    correct = pred == labels
    k = len(lm.data_labels)
    extra_cols = list(lm.unmapped_model)
    # Confusion matrix: columns are the data classes, then the model classes without a counterpart.
    col = np.where(pred >= 0, pred, 0)
    for j, lab in enumerate(lm.model_labels):
        if lm.model_to_data[j] < 0:
            col = np.where(top == j, k + extra_cols.index(lab), col)
    cm = np.zeros((k, k + len(extra_cols)), np.int64)
    np.add.at(cm, (labels, col), 1)
    support = cm.sum(axis=1)
    recall = {lm.data_labels[i]: (float(cm[i, i] / support[i]) if support[i] else float("nan")) for i in range(k)}
    predicted = cm.sum(axis=0)
    precision = {lm.data_labels[i]: (float(cm[i, i] / predicted[i]) if predicted[i] else float("nan"))
                 for i in range(k)}
    neg_data = {lm.model_to_data[lm.model_labels.index(l)] for l in negative_model}
    neg_data.discard(-1)
    true_neg = np.isin(labels, list(neg_data))
    pred_neg = np.isin(top, [lm.model_labels.index(l) for l in negative_model])
    return {
        "n": int(len(labels)),
        "accuracy": float(correct.mean()) if len(labels) else float("nan"),
        "per_class_recall": recall,
        "per_class_precision": precision,
        "support": {lm.data_labels[i]: int(support[i]) for i in range(k)},
        "confusion": {"rows_true": list(lm.data_labels), "cols_pred": list(lm.data_labels) + extra_cols,
                      "matrix": cm.tolist()},
        "predicted_unmapped": {lab: int((top == lm.model_labels.index(lab)).sum()) for lab in extra_cols},
        "negative_vs_rest": {
            "negative_labels_model": list(negative_model),
            "negative_labels_data": [lm.data_labels[i] for i in sorted(neg_data)],
            "accuracy": float((true_neg == pred_neg).mean()),
            "negative_recall": float(pred_neg[true_neg].mean()) if true_neg.any() else float("nan"),
            "negative_precision": float(true_neg[pred_neg].mean()) if pred_neg.any() else float("nan"),
            "share_negative_true": float(true_neg.mean()),
        },
        "mean_confidence": float(conf.mean()),
        "ece": expected_calibration_error(conf, correct.astype(np.float64)),
        "nll": float(-np.mean(np.log(np.maximum(
            np.where(lm.model_to_data[None, :] == labels[:, None], probs, 0).sum(axis=1), 1e-12)))),
    }


def classify_all(model, images: np.ndarray, batch: int) -> tuple[np.ndarray, float]:
    """Probabilities for every image in chunks of ``batch``; returns (probs, seconds of wall time)."""
    out = []
    t0 = time.perf_counter()
    for i in range(0, len(images), batch):
        out.append(model.classify_crops(list(images[i:i + batch])))
    return (np.concatenate(out) if out else np.zeros((0, len(model.labels)), np.float32)), time.perf_counter() - t0


def time_one_face(model, face: np.ndarray, runs: int) -> dict:
    """Median milliseconds for one face (batch 1): model only, and with the engine's preprocessing."""
    x = model.preprocess_crops([face])
    for _ in range(max(20, runs // 10)):
        model.infer(x)
    t_model, t_full = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        model.infer(x)
        t1 = time.perf_counter()
        model.classify_crops([face])
        t2 = time.perf_counter()
        t_model.append(t1 - t0)
        t_full.append(t2 - t1)
    return {"ms_per_face": 1000 * float(np.median(t_model)),
            "ms_per_face_with_preprocessing": 1000 * float(np.median(t_full)), "runs": runs}


def _json_safe(obj):
    """``obj`` with NaN floats replaced by None (strict JSON has no NaN)."""
    if isinstance(obj, float):
        return None if obj != obj else obj
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_safe(v) for v in obj]
    return obj


def _fmt(v: float) -> str:
    return "  n/a" if v != v else f"{v:5.3f}"


def print_report(model_name: str, ds: Dataset, lm: LabelMap, main: dict, aug: dict | None, speed: dict) -> None:
    p = print
    p(f"model {model_name} on FER2013 {ds.split}: {main['n']} original images"
      + (f" (+{aug['n']} augmented copies, scored separately)" if aug else ""))
    if lm.unmapped_model:
        p(f"model labels without a FER2013 class (always wrong): {', '.join(lm.unmapped_model)}; "
          f"predicted {main['predicted_unmapped']}")
    if lm.unmapped_data:
        p(f"FER2013 classes the model cannot predict (recall 0): {', '.join(lm.unmapped_data)}")
    p(f"\naccuracy            {main['accuracy'] * 100:6.2f} %")
    nv = main["negative_vs_rest"]
    p(f"negative-vs-rest    {nv['accuracy'] * 100:6.2f} %   (negative = {', '.join(nv['negative_labels_data'])}; "
      f"recall {nv['negative_recall']:.3f}, precision {nv['negative_precision']:.3f}, "
      f"{nv['share_negative_true'] * 100:.1f} % of faces are negative)")
    p(f"mean confidence     {main['mean_confidence']:.4f}")
    p(f"ECE ({ECE_BINS} bins)       {main['ece']:.4f}")
    p(f"NLL                 {main['nll']:.4f}")
    p(f"throughput          {speed['images_per_s']:.0f} images/s (batch {speed['batch']}, "
      f"{speed['threads']} thread(s), preprocessing included)")
    p(f"one face            {speed['ms_per_face']:.3f} ms model only, {speed['ms_per_face_with_preprocessing']:.3f} ms "
      f"with preprocessing (batch 1, 1 thread, median of {speed['runs']})")
    p("\nclass      support  recall  precision")
    for name in lm.data_labels:
        p(f"{name:<10} {main['support'][name]:7d}  {_fmt(main['per_class_recall'][name])}   "
          f"{_fmt(main['per_class_precision'][name])}")
    cols = main["confusion"]["cols_pred"]
    p("\nconfusion matrix (rows: true, columns: predicted)")
    p(" " * 10 + "".join(f"{c[:8]:>9}" for c in cols))
    for name, row in zip(main["confusion"]["rows_true"], main["confusion"]["matrix"]):
        p(f"{name:<10}" + "".join(f"{v:9d}" for v in row))
    if aug:
        p(f"\naugmented copies only ({aug['n']}, classes "
          f"{', '.join(k for k, v in aug['support'].items() if v)}): accuracy {aug['accuracy'] * 100:.2f} % "
          "— not part of the figures above")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="FER2013 accuracy of a MindFlow model folder (engine preprocessing).")
    ap.add_argument("--model", default=str(DEFAULT_MODEL), help="model folder holding card.json")
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="FER2013 .npz (default ../shared/data/fer2013/validation.npz)")
    ap.add_argument("--batch", type=int, default=256, help="faces per onnxruntime call (default 256)")
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads for the batched run")
    ap.add_argument("--timing-runs", type=int, default=500, help="batch-1 runs for ms per face (default 500)")
    ap.add_argument("--json", metavar="OUT", help="also write every figure to this JSON file")
    args = ap.parse_args(argv)
    if args.batch < 1 or args.threads < 1 or args.timing_runs < 1:
        ap.error("--batch, --threads and --timing-runs must be >= 1")

    from obs_mindflow.engine.card import ModelCardError
    from obs_mindflow.engine.model import ExpressionModel, ModelLoadError, ModelOptions

    try:
        ds = load_dataset(Path(args.data))
        model = ExpressionModel.load(args.model, ModelOptions(intra_op_threads=args.threads))
        lm = build_label_map(model.labels, ds.label_names)
    except (BenchError, ModelCardError, ModelLoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import onnxruntime

    orig = ~ds.augmented
    probs, seconds = classify_all(model, ds.images[orig], args.batch)
    main_scores = score(probs, ds.labels[orig], lm, model.card.negative_labels)
    aug_scores = None
    if ds.augmented.any():
        aprobs, _ = classify_all(model, ds.images[ds.augmented], args.batch)
        aug_scores = score(aprobs, ds.labels[ds.augmented], lm, model.card.negative_labels)
    one = ExpressionModel.load(args.model, ModelOptions(intra_op_threads=1)) if args.threads != 1 else model
    speed = {"images_per_s": float(orig.sum() / seconds), "batch": args.batch, "threads": args.threads,
             **time_one_face(one, ds.images[orig][0], args.timing_runs), "onnxruntime": onnxruntime.__version__}
    print_report(model.card.name, ds, lm, main_scores, aug_scores, speed)
    if args.json:
        out = {"model": str(Path(args.model)), "card_name": model.card.name, "data": str(Path(args.data)),
               "split": ds.split, "label_map": {m: (lm.data_labels[j] if j >= 0 else None)
                                                for m, j in zip(lm.model_labels, lm.model_to_data.tolist())},
               "main": main_scores, "augmented": aug_scores or {"n": 0}, "speed": speed, "ece_bins": ECE_BINS}
        Path(args.json).write_text(json.dumps(_json_safe(out), indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
