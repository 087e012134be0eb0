"""Accuracy of expression model folders on FER+ and FER2013, through the engine's own preprocessing.

    .venv/bin/python -m tools.bench_accuracy [--model models/NAME ...] [--ferplus ../shared/data/ferplus/validation.npz]
                                             [--data ../shared/data/fer2013/validation.npz] [--json OUT]

Without ``--model`` it benchmarks the default model side by side with the other models in :data:`COMPARE` (the
previous default and the FER+ model); repeat ``--model`` to choose. For every model:

**FER+ validation** (FER2013 PublicTest's faces, raw pixels, 10 crowd votes each; ``--ferplus``), the majority label
by the FER+ paper's rule (top vote over all 10 categories; faces whose top vote is ``unknown``/``NF`` or tied are left
out): majority accuracy and per-class recall (a class the model lacks, e.g. contempt for a 7-class model, is never
right), the **share of neutral-majority faces read negative**, the predicted-negative share against the true negative
share (negative = the card's ``negative_labels``, for truth and prediction alike), ECE (15 bins) and NLL on the majority
labels, and the mean cross-entropy against the vote distribution. The card's ``neutral_reference`` is printed beside.

**FER2013 PublicTest** on FER2013's own labels (``--data``): the file is an ``.npz`` with ``images`` (N, 48, 48)
uint8 grayscale, ``labels`` (N,) indices into ``label_names``, ``augmented`` (N,) bool (synthetic copies added to
balance a class), ``files`` (N,) original file names. The headline figures use the **original images only**; the
augmented copies are scored separately. Model labels are matched to the data set's label names by name (with aliases
such as anger ↔ angry). A model label FER2013 lacks (``contempt``) is handled by **restricting the prediction to
FER2013's 7 classes** (its probability is dropped and the rest renormalised: FER2013's annotators had no contempt to
choose either); the figure with contempt counted as wrong is reported beside it.

Faces go through :meth:`ExpressionModel.classify_crops` exactly as the engine does for a detected face crop
(colour conversion, resize with the engine's interpolation, scale/mean/std from the card, the card's temperature).
Printed per data set: accuracy, per-class recall and precision, the confusion matrix (rows true, columns predicted),
negative-vs-rest accuracy, mean confidence, expected calibration error (15 equal-width bins); and per model the
throughput in images per second (batched, includes preprocessing) and milliseconds per face (batch 1, one
onnxruntime thread, median).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from obs_mindflow.engine.catalog import MODELS_DIR, default_model_dir

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "fer2013" / "validation.npz"
DEFAULT_FERPLUS = REPO.parent / "shared" / "data" / "ferplus" / "validation.npz"
DEFAULT_MODEL = default_model_dir()
#: benchmarked beside the default when no --model is given (those present): the previous default, the FER+ model
COMPARE = ("mindflow-fer-r3d-r3", "mindflow-ferplus-r3d")

# Alternative spellings of the same emotion, mapped to FER2013's names.
ALIASES = {
    "anger": "angry", "angry": "angry",
    "disgust": "disgust", "disgusted": "disgust",
    "fear": "fear", "fearful": "fear", "scared": "fear",
    "happy": "happy", "happiness": "happy", "joy": "happy",
    "sad": "sad", "sadness": "sad",
    "surprise": "surprise", "surprised": "surprise",
    "neutral": "neutral", "calm": "neutral",
    "contempt": "contempt",
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
        p(f"model labels without a FER2013 class: {', '.join(lm.unmapped_model)} — restricted away (their "
          "probability dropped, the rest renormalised)")
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


def restrict_to_data(probs: np.ndarray, lm: LabelMap) -> np.ndarray:
    """``probs`` with the model classes the data set lacks (e.g. contempt on FER2013) dropped and the rest
    renormalised: the model's best answer among the data set's classes."""
    if not lm.unmapped_model:
        return probs
    keep = lm.model_to_data >= 0
    p = np.where(keep[None, :], probs, 0.0)
    return p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)


# --- FER+ -------------------------------------------------------------------------------------------------------

FERPLUS_VOTES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF")
FERPLUS_CLASSES = tuple(canonical(v) for v in FERPLUS_VOTES[:8])       # neutral, happy, surprise, sad, angry, ...


def load_ferplus(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``images`` (N, 48, 48) uint8 and ``votes`` (N, 10) of a FER+ file (see ../shared/data/ferplus/README.md)."""
    if not path.is_file():
        raise BenchError(f"FER+ file not found: {path} — FER+ lives in ../shared/data/ferplus/ beside the repo; "
                         "pass --ferplus PATH/validation.npz, or --ferplus '' to skip it")
    d = np.load(path, allow_pickle=False)
    names = tuple(str(x) for x in d["vote_names"]) if "vote_names" in d.files else ()
    if names != FERPLUS_VOTES or "images" not in d.files:
        raise BenchError(f"{path}: expected images and votes in the order {FERPLUS_VOTES}, got {names}")
    return d["images"], d["votes"].astype(np.int64)


def ferplus_majority(votes: np.ndarray) -> np.ndarray:
    """The FER+ paper's majority label as an index into :data:`FERPLUS_CLASSES`, or -1 when the top vote is
    unknown/NF or tied."""
    top = votes.argmax(axis=1)
    tied = (votes == votes.max(axis=1, keepdims=True)).sum(axis=1) > 1
    return np.where(tied | (top >= 8), -1, top)


def ferplus_scores(probs: np.ndarray, model_labels: tuple[str, ...], votes: np.ndarray,
                   negative_model: tuple[str, ...]) -> dict:
    """FER+ figures for ``probs`` (N, C) in model label order against ``votes`` (N, 10)."""
    classes = FERPLUS_CLASSES
    m2f = np.array([classes.index(canonical(l)) if canonical(l) in classes else -1 for l in model_labels])
    maj = ferplus_majority(votes)
    ok = maj >= 0
    top = probs.argmax(axis=1)
    pred = m2f[top]
    y, pr = maj[ok], pred[ok]
    correct = pr == y
    k = len(classes)
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (y, np.where(pr >= 0, pr, 0)), (pr >= 0).astype(np.int64))
    support = np.bincount(y, minlength=k)
    recall = {classes[i]: (float(cm[i, i] / support[i]) if support[i] else float("nan")) for i in range(k)}
    neg = sorted({int(m2f[model_labels.index(l)]) for l in negative_model} - {-1})
    pred_neg_all = np.isin(pred, neg)
    neutral = maj == classes.index("neutral")
    conf = probs.max(axis=1)[ok]
    # NLL on the majority label, over the faces whose majority class the model has
    f2m = {int(f): j for j, f in enumerate(m2f) if f >= 0}
    has = np.array([int(c) in f2m for c in y])
    p_true = np.array([probs[ok][i, f2m[int(c)]] for i, c in enumerate(y) if int(c) in f2m])
    # cross-entropy against the vote distribution over the model's classes (unknown/NF and missing classes dropped)
    vm = np.stack([votes[:, f] if f >= 0 else np.zeros(len(votes), np.int64) for f in m2f], axis=1).astype(float)
    vs = vm.sum(axis=1)
    dist = vm[vs > 0] / vs[vs > 0, None]
    vote_ce = float(-(dist * np.log(np.maximum(probs[vs > 0], 1e-12))).sum(axis=1).mean())
    return {
        "n_faces": int(len(votes)), "n_majority": int(ok.sum()),
        "majority_rule": "FER+ paper: top vote over the 10 categories; top vote unknown/NF or tied -> left out",
        "accuracy": float(correct.mean()),
        "per_class_recall": recall,
        "support": {classes[i]: int(support[i]) for i in range(k)},
        "confusion": {"rows_true": list(classes), "cols_pred": list(classes), "matrix": cm.tolist()},
        "classes_the_model_lacks": [c for i, c in enumerate(classes) if i not in set(m2f.tolist())],
        "negative_labels_model": list(negative_model),
        "negative_classes": [classes[i] for i in neg],
        "neutral_read_negative": float(pred_neg_all[neutral].mean()) if neutral.any() else float("nan"),
        "neutral_faces": int(neutral.sum()),
        "predicted_negative_share": float(pred_neg_all[ok].mean()),
        "true_negative_share": float(np.isin(y, neg).mean()),
        "negative_vs_rest_accuracy": float((np.isin(y, neg) == pred_neg_all[ok]).mean()),
        "mean_confidence": float(conf.mean()),
        "ece": expected_calibration_error(conf, correct.astype(np.float64)),
        "nll": float(-np.log(np.maximum(p_true, 1e-12)).mean()) if len(p_true) else float("nan"),
        "nll_faces": int(has.sum()),
        "vote_cross_entropy": vote_ce,
    }


def print_ferplus(name: str, f: dict, reference: tuple[float, ...] | None, labels: tuple[str, ...]) -> None:
    p = print
    p(f"\nmodel {name} on FER+ validation: {f['n_majority']} of {f['n_faces']} faces have a majority label "
      "(FER+ paper's rule)" + (f"; classes it lacks (never right): {', '.join(f['classes_the_model_lacks'])}"
                              if f["classes_the_model_lacks"] else ""))
    p(f"majority accuracy      {f['accuracy'] * 100:6.2f} %")
    p(f"neutral read negative  {f['neutral_read_negative'] * 100:6.2f} %   ({f['neutral_faces']} neutral-majority "
      f"faces; negative = {', '.join(f['negative_classes'])})")
    p(f"predicted negative     {f['predicted_negative_share'] * 100:6.2f} %   (true {f['true_negative_share'] * 100:.2f} %"
      f", {(f['predicted_negative_share'] - f['true_negative_share']) * 100:+.2f} pp)")
    p(f"ECE (15 bins)          {f['ece']:.4f}    NLL {f['nll']:.4f}    vote cross-entropy {f['vote_cross_entropy']:.4f}")
    p("class      support  recall")
    for c in FERPLUS_CLASSES:
        p(f"{c:<10} {f['support'][c]:7d}  {_fmt(f['per_class_recall'][c])}")
    if reference is not None:
        p("card neutral_reference: " + ", ".join(f"{l} {v:.3f}" for l, v in zip(labels, reference)))


def evaluate(model, ferplus: tuple[np.ndarray, np.ndarray] | None, fer2013: Dataset | None, batch: int = 256,
             timing_runs: int = 500, timing_model=None) -> dict:
    """Every figure for one loaded ``ExpressionModel``: FER+ (``(images, votes)``), FER2013 (originals; contempt
    restricted away, and counted wrong beside), speed. Used by ``main`` and by ``tools.train.export``."""
    import os

    import onnxruntime
    out: dict = {"card_name": model.card.name, "labels": list(model.labels),
                 "negative_labels": list(model.card.negative_labels), "temperature": model.card.temperature,
                 "parameters": model.card.parameters,
                 "neutral_reference": (None if model.card.neutral_reference is None else
                                       {"probabilities": list(model.card.neutral_reference),
                                        **model.card.neutral_reference_info})}
    face = None
    if ferplus is not None:
        images, votes = ferplus
        probs, seconds = classify_all(model, images, batch)
        out["ferplus"] = ferplus_scores(probs, model.labels, votes, model.card.negative_labels)
        out["images_per_s"] = float(len(images) / seconds)
        face = images[0]
    if fer2013 is not None:
        lm = build_label_map(model.labels, fer2013.label_names)
        orig = ~fer2013.augmented
        probs, seconds = classify_all(model, fer2013.images[orig], batch)
        y = fer2013.labels[orig]
        main_scores = score(restrict_to_data(probs, lm), y, lm, model.card.negative_labels)
        main_scores["accuracy_unmapped_counted_wrong"] = score(probs, y, lm, model.card.negative_labels)["accuracy"]
        main_scores["unmapped_model_labels"] = (
            f"{', '.join(lm.unmapped_model)}: dropped and the rest renormalised (the best FER2013 class); "
            f"predicted as top class on {score(probs, y, lm, model.card.negative_labels)['predicted_unmapped']}"
            if lm.unmapped_model else "none")
        out["fer2013"] = main_scores
        out["fer2013_split"] = fer2013.split
        out["fer2013_label_map"] = {m: (lm.data_labels[j] if j >= 0 else None)
                                    for m, j in zip(lm.model_labels, lm.model_to_data.tolist())}
        if fer2013.augmented.any():
            aprobs, _ = classify_all(model, fer2013.images[fer2013.augmented], batch)
            out["fer2013_augmented"] = score(restrict_to_data(aprobs, lm), fer2013.labels[fer2013.augmented], lm,
                                             model.card.negative_labels)
        out.setdefault("images_per_s", float(orig.sum() / seconds))
        face = fer2013.images[orig][0] if face is None else face
    if face is not None and timing_runs > 0:
        load0 = os.getloadavg()[0]
        out["speed"] = {**time_one_face(timing_model or model, face, timing_runs),
                        "onnxruntime": onnxruntime.__version__, "load1_before": load0,
                        "load1_after": os.getloadavg()[0]}
    return out


SUMMARY_ROWS = (
    ("FER+ majority accuracy", lambda r: r["ferplus"]["accuracy"], "pct"),
    ("neutral faces read negative", lambda r: r["ferplus"]["neutral_read_negative"], "pct"),
    ("predicted-negative share", lambda r: r["ferplus"]["predicted_negative_share"], "pct"),
    ("true negative share", lambda r: r["ferplus"]["true_negative_share"], "pct"),
    ("FER+ ECE (15 bins)", lambda r: r["ferplus"]["ece"], "f4"),
    ("FER+ NLL (majority)", lambda r: r["ferplus"]["nll"], "f4"),
    ("FER2013 PublicTest accuracy", lambda r: r["fer2013"]["accuracy"], "pct"),
    ("FER2013 ECE", lambda r: r["fer2013"]["ece"], "f4"),
    ("ms/face (1 thread, batch 1)", lambda r: r["speed"]["ms_per_face"], "ms"),
)


def print_summary(results: list[dict]) -> None:
    names = [r["card_name"] for r in results]
    w = max(14, *(len(n) for n in names)) + 2
    print("\n" + "=" * 30 + " side by side " + "=" * 30)
    print(f"{'':<30}" + "".join(f"{n:>{w}}" for n in names))
    for title, get, kind in SUMMARY_ROWS:
        cells = []
        for r in results:
            try:
                v = get(r)
            except (KeyError, TypeError):
                cells.append(f"{'-':>{w}}")
                continue
            text = "n/a" if v != v else (f"{v * 100:.2f} %" if kind == "pct" else f"{v:.4f}" if kind == "f4"
                                         else f"{v:.3f}")
            cells.append(f"{text:>{w}}")
        print(f"{title:<30}" + "".join(cells))
    for r in results:
        ref = r.get("neutral_reference")
        if ref:
            print(f"neutral_reference {r['card_name']}: " + ", ".join(
                f"{l} {v:.3f}" for l, v in zip(r["labels"], ref["probabilities"])) + f"  ({ref.get('faces')} faces)")


def default_models() -> list[Path]:
    """The default model, then the models of :data:`COMPARE` that are present."""
    out = [DEFAULT_MODEL]
    for name in COMPARE:
        folder = MODELS_DIR / name
        if folder != DEFAULT_MODEL and (folder / "card.json").is_file():
            out.append(folder)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="FER+ and FER2013 figures of MindFlow model folders (engine preprocessing).")
    ap.add_argument("--model", action="append", default=None,
                    help="model folder holding card.json; repeat to compare (default: the default model and "
                         f"{', '.join(COMPARE)})")
    ap.add_argument("--data", default=str(DEFAULT_DATA),
                    help="FER2013 .npz (default ../shared/data/fer2013/validation.npz); '' to skip")
    ap.add_argument("--ferplus", default=str(DEFAULT_FERPLUS),
                    help="FER+ .npz (default ../shared/data/ferplus/validation.npz); '' to skip")
    ap.add_argument("--batch", type=int, default=256, help="faces per onnxruntime call (default 256)")
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads for the batched run")
    ap.add_argument("--timing-runs", type=int, default=500, help="batch-1 runs for ms per face (default 500)")
    ap.add_argument("--json", metavar="OUT", help="also write every figure to this JSON file")
    args = ap.parse_args(argv)
    if args.batch < 1 or args.threads < 1 or args.timing_runs < 1:
        ap.error("--batch, --threads and --timing-runs must be >= 1")
    if not args.data and not args.ferplus:
        ap.error("nothing to measure: give --data or --ferplus")

    from obs_mindflow.engine.card import ModelCardError
    from obs_mindflow.engine.model import ExpressionModel, ModelLoadError, ModelOptions

    folders = [Path(m) for m in args.model] if args.model else default_models()
    try:
        ds = load_dataset(Path(args.data)) if args.data else None
        fp = load_ferplus(Path(args.ferplus)) if args.ferplus else None
        models = [ExpressionModel.load(f, ModelOptions(intra_op_threads=args.threads)) for f in folders]
        if ds is not None:
            for m in models:
                build_label_map(m.labels, ds.label_names)
    except (BenchError, ModelCardError, ModelLoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    results = []
    for folder, model in zip(folders, models):
        one = ExpressionModel.load(folder, ModelOptions(intra_op_threads=1)) if args.threads != 1 else model
        r = evaluate(model, fp, ds, args.batch, args.timing_runs, timing_model=one)
        r["model"] = str(folder)
        r["speed"].update(batch=args.batch, threads=args.threads, images_per_s=r["images_per_s"])
        results.append(r)
        if ds is not None:
            lm = build_label_map(model.labels, ds.label_names)
            print_report(model.card.name, ds, lm, r["fer2013"], r.get("fer2013_augmented"), r["speed"])
            if lm.unmapped_model:
                print(f"(FER2013 figures restrict the prediction to FER2013's classes; counting "
                      f"{', '.join(lm.unmapped_model)} as wrong instead: "
                      f"{r['fer2013']['accuracy_unmapped_counted_wrong'] * 100:.2f} %)")
        if fp is not None:
            print_ferplus(model.card.name, r["ferplus"], model.card.neutral_reference, model.labels)
        print()
    print_summary(results)
    if args.json:
        out = {"data": args.data or None, "ferplus": args.ferplus or None, "ece_bins": ECE_BINS, "models": results}
        Path(args.json).write_text(json.dumps(_json_safe(out), indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
