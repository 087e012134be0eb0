"""Would weighting the negative classes make a model read negative talking faces? A decision chosen on the FER+
hold-out, measured on real video.

    python -m tools.train.negative_weight MODEL [MODEL ...] [--ceiling 0.08] [--max-drop 0.005]

For each model (a name under ``models/`` or a folder): the negative classes' probabilities are multiplied by ``k``
and the row renormalised (a prior shift towards negative). On the **FER+ hold-out** (the 10 % of FER+ train that
``tools.train`` keeps out, seed 20260207; never trained on by a FER+ run) for k in a grid: majority accuracy,
neutral faces read negative, negative-majority faces read negative. ``k`` is chosen by ``choose_mix``'s rule: the
highest negative recall with neutral read negative ≤ ``--ceiling`` and accuracy at most ``--max-drop`` below k = 1.
Then RAVDESS actor 05's face-crop clips (``bench_realvideo``'s frames: Haar → model, no baseline, no smoothing):
the share of frames read negative per portrayed emotion at k = 1, the chosen k and a few larger ones. RAVDESS only
measures here: nothing is chosen on it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from obs_mindflow.engine import ExpressionModel
from obs_mindflow.engine.catalog import resolve_model_dir

from ..bench_realvideo import DEFAULT_RAVDESS, ravdess_clips, run_clip
from .choose_mix import choose
from .ferplus import DEFAULT_FERPLUS, LABELS8, holdout_split, load_ferplus

GRID = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0, 8.0)
NEGATIVE_CLIPS = ("angry", "sad", "fearful", "disgust")


def weighted(p: np.ndarray, negative: np.ndarray, k: float) -> np.ndarray:
    q = p * np.where(negative, k, 1.0)
    return q / q.sum(axis=1, keepdims=True)


def negative_mask(model: ExpressionModel) -> np.ndarray:
    return np.array([lab in model.card.negative_labels for lab in model.labels])


def holdout_rows(model: ExpressionModel, data_dir: Path, grid=GRID) -> list[dict]:
    data = load_ferplus(Path(data_dir) / "train.npz")
    _, held = holdout_split(data, 0.1, 20260207)
    majority = data.majority()[held]
    keep = majority >= 0
    p = model.classify_crops(list(data.images[held][keep]))
    labels = list(model.labels)
    truth = np.array([labels.index(LABELS8[m]) if LABELS8[m] in labels else -1 for m in majority[keep]])
    negative = negative_mask(model)
    neutral, neg_truth = truth == labels.index("neutral"), (truth >= 0) & negative[np.maximum(truth, 0)]
    rows = []
    for k in grid:
        pred = weighted(p, negative, k).argmax(axis=1)
        rows.append({"k": k, "majority_accuracy": float((pred == truth).mean()),
                     "neutral_read_negative": float(negative[pred][neutral].mean()),
                     "negative_recall": float(negative[pred][neg_truth].mean())})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.train.negative_weight", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="+", help="model name or folder")
    ap.add_argument("--ferplus", type=Path, default=DEFAULT_FERPLUS)
    ap.add_argument("--ravdess", type=Path, default=DEFAULT_RAVDESS)
    ap.add_argument("--ceiling", type=float, default=0.08, help="neutral read negative, at most (default 0.08)")
    ap.add_argument("--max-drop", type=float, default=0.005, help="accuracy below k = 1, at most (default 0.005)")
    a = ap.parse_args(argv)
    crops = [c for c in ravdess_clips(a.ravdess) if c.kind == "crop"]
    for name in a.model:
        model = ExpressionModel.load(resolve_model_dir(name))
        rows = holdout_rows(model, a.ferplus)
        chosen = choose(rows, a.ceiling, a.max_drop, knob="k")
        print(f"{model.card.name}: FER+ hold-out")
        for r in rows:
            mark = "  <- chosen" if r is chosen else ""
            print(f"  k {r['k']:<5g} accuracy {r['majority_accuracy']:.3f}  "
                  f"neutral read negative {r['neutral_read_negative']:.3f}  "
                  f"negative recall {r['negative_recall']:.3f}{mark}")
        negative = negative_mask(model)
        frames: dict[str, list[np.ndarray]] = {}
        for clip in crops:
            frames.setdefault(clip.emotion, []).append(run_clip(model, clip).probs)
        per = {e: np.concatenate(v) for e, v in frames.items()}
        print(f"{model.card.name}: RAVDESS actor 05 crops, frames read negative")
        read_negative = lambda p, k: negative[weighted(p, negative, k).argmax(axis=1)].mean()   # noqa: E731
        neg = np.concatenate([per[e] for e in NEGATIVE_CLIPS if e in per])
        for k in sorted({1.0, chosen["k"], 2.0, 4.0}):
            cells = [f"{e} {100 * read_negative(v, k):.0f}%" for e, v in sorted(per.items())]
            share = read_negative(neg, k)
            print(f"  k {k:<5g} " + "  ".join(cells) + f"  | negative clips {100 * share:.0f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
