"""A model's ``neutral_reference``: its mean output on neutral faces it never trained on, written into its card.

    python -m tools.train.reference MODEL_DIR [MODEL_DIR ...] [--faces auto|ferplus-holdout|fer2013-holdout|
                                    ferplus-validation] [--holdout 0.1] [--holdout-seed N] [--dry-run]

The card field (``models/README.md``) is ``{"probabilities": [...], "mean_log_probabilities": [...], "faces": N,
"dataset": "..."}``: the mean (and the mean of the logs, floored at ``engine.baseline.LOG_FLOOR``) of the
engine's calibrated softmax (``ExpressionModel.classify_crops``, card temperature included) over FER+
neutral-majority faces (the FER+ paper's rule: top vote neutral, not tied), in the card's label order. A personal
baseline corrects live readings against it, so it must come from faces the model never saw:

* ``ferplus-holdout``: the training hold-out of a FER+-trained tools/train model (a seeded 10 % of FER+ train,
  :func:`tools.train.ferplus.holdout_split`) — ``auto`` picks it when the card's ``extra.holdout`` says so;
* ``fer2013-holdout``: the seeded stratified hold-out of FER2013 Training that a FER2013-trained tools/train model
  kept out (:func:`tools.train.data.stratified_holdout`), matched image by image to FER+ train
  (:func:`match_fer2013_to_ferplus`: the FER2013 copies are histogram-equalised JPEGs with their own file names,
  so the match is by content) for FER+'s votes and raw pixels;
* ``ferplus-validation``: FER+ validation (FER2013 PublicTest) — for models trained on all of FER2013 Training.

:func:`neutral_reference` is the one computation; ``tools.train.export`` calls it for every model it writes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .data import load_npz, stratified_holdout
from .ferplus import DEFAULT_FERPLUS, HOLDOUT_FRACTION, holdout_split, load_ferplus, neutral_majority

DEFAULT_FER2013 = Path("..") / "shared" / "data" / "fer2013"
DIGITS = 6


def neutral_reference(model, faces: np.ndarray, dataset: str, batch: int = 256) -> dict:
    """The ``neutral_reference`` card field of ``model`` (an ``ExpressionModel``) from ``faces`` (N, H, W) uint8
    gray crops of neutral faces it never trained on; ``dataset`` says which faces they are."""
    if len(faces) == 0:
        raise ValueError("neutral_reference needs at least one face")
    from obs_mindflow.engine.baseline import LOG_FLOOR

    probs = np.concatenate([model.classify_crops(list(faces[i:i + batch])) for i in range(0, len(faces), batch)])
    logs = np.log(np.maximum(probs.astype(np.float64), LOG_FLOOR))
    mean_log, std_log = logs.mean(axis=0), logs.std(axis=0)
    mean = probs.astype(np.float64).mean(axis=0)
    mean = np.maximum(mean, 10.0 ** -DIGITS)                  # the card wants every value > 0
    mean = mean / mean.sum()
    values = [round(float(v), DIGITS) for v in mean]
    i = int(np.argmax(values))                                 # rounding must not break the sum
    values[i] = round(values[i] + 1.0 - sum(values), DIGITS)
    return {"probabilities": values, "mean_log_probabilities": [round(float(v), DIGITS) for v in mean_log],
            "std_log_probabilities": [round(float(v), DIGITS) for v in std_log],
            "faces": int(len(faces)), "dataset": dataset,
            "labels": list(model.labels), "temperature": float(model.card.temperature),
            "measured_with": "tools.train.reference.neutral_reference: mean of ExpressionModel.classify_crops "
                             "(the card's preprocessing and temperature) over 48x48 raw-pixel FER+ crops; "
                             "mean_log_probabilities / std_log_probabilities: mean / standard deviation of "
                             "log(max(p, 1e-4))"}


def _thumbs(images: np.ndarray, size: int = 16) -> np.ndarray:
    """Contrast-normalised ``size``×``size`` thumbnails (unit vectors): robust to histogram equalisation and JPEG."""
    import cv2
    s = np.stack([cv2.resize(x, (size, size), interpolation=cv2.INTER_AREA) for x in images])
    s = s.reshape(len(images), -1).astype(np.float32)
    s -= s.mean(axis=1, keepdims=True)
    s /= np.linalg.norm(s, axis=1, keepdims=True) + 1e-6
    return s


def match_fer2013_to_ferplus(fer2013: np.ndarray, ferplus: np.ndarray, min_corr: float = 0.9,
                             duplicate_corr: float = 0.99) -> np.ndarray:
    """For every FER2013 image, the index of the same face in ``ferplus``, or -1.

    Correlation of contrast-normalised 16×16 thumbnails; a pair is accepted when the two are each other's nearest
    neighbour with correlation ≥ ``min_corr``, or when the correlation is ≥ ``duplicate_corr`` (FER2013 holds exact
    duplicates, which are not mutual neighbours). Measured on FER2013 Training vs FER+ train: 27,230 mutual pairs of
    28,709; the rejected ones are images FER+ dropped.
    """
    a, b = _thumbs(fer2013), _thumbs(ferplus)
    ab = np.empty(len(a), np.int64)
    cab = np.empty(len(a), np.float32)
    ba = np.full(len(b), -1, np.int64)
    cba = np.full(len(b), -2.0, np.float32)
    for i in range(0, len(a), 2048):
        c = a[i:i + 2048] @ b.T
        j = c.argmax(axis=1)
        ab[i:i + 2048], cab[i:i + 2048] = j, c[np.arange(len(j)), j]
        k = c.argmax(axis=0)
        ck = c[k, np.arange(len(b))]
        better = ck > cba
        ba[better], cba[better] = k[better] + i, ck[better]
    mutual = ba[ab] == np.arange(len(a))
    ok = (mutual & (cab >= min_corr)) | (cab >= duplicate_corr)
    return np.where(ok, ab, -1)


def fer2013_labels_for(data, fer2013_train: str | Path, min_corr: float = 0.97,
                       min_gap: float = 0.005) -> np.ndarray:
    """FER2013's own label (an index into :data:`LABELS`) for each FER+ train face, or -1 where no copy was found.

    FER+ and ``../shared/data/fer2013`` hold the same Training faces in different orders, FER2013's as
    histogram-equalised JPEGs. Each FER+ face is equalised and matched to the FER2013 original with the highest
    normalised correlation at 24×24; a match counts when that correlation is at least ``min_corr`` and beats the
    runner-up by ``min_gap`` (duplicates and near-duplicates in FER2013 stay unmatched). Measured: 25,307 of 28,558
    faces matched; the matched FER2013 label agrees with the FER+ majority on 62 % (FER+'s README: about 63 %)."""
    import cv2

    fer = load_npz(Path(fer2013_train))
    a = _thumbs(np.stack([cv2.equalizeHist(im) for im in data.images]), 24)
    b = _thumbs(fer.images, 24)
    out = np.full(len(a), -1, dtype=np.int64)
    for i in range(0, len(a), 1024):
        s = a[i:i + 1024] @ b.T
        top2 = np.argpartition(-s, 2, axis=1)[:, :2]
        v = np.take_along_axis(s, top2, axis=1)
        order = np.argsort(-v, axis=1)
        top2, v = np.take_along_axis(top2, order, axis=1), np.take_along_axis(v, order, axis=1)
        ok = (v[:, 0] >= min_corr) & (v[:, 0] - v[:, 1] >= min_gap)
        out[i:i + 1024][ok] = fer.labels[top2[ok, 0]]
    return out


def held_out_faces(kind: str, ferplus_dir: Path = DEFAULT_FERPLUS, fer2013_dir: Path = DEFAULT_FER2013,
                   holdout: float = HOLDOUT_FRACTION, seed: int | None = None):
    """The FER+ faces (raw pixels, with their votes) of one face set a model never trained on, and a text saying
    which they are: ``(FerPlus, text)``."""
    if kind == "ferplus-validation":
        val = load_ferplus(ferplus_dir / "validation.npz")
        return val, ("FER+ validation (FER2013 PublicTest, raw pixels), as the model has no usable training "
                     "hold-out (it trained on all of FER2013 Training)")
    if seed is None:
        raise ValueError(f"--faces {kind} needs the hold-out's seed (--holdout-seed)")
    if kind == "ferplus-holdout":
        tr = load_ferplus(ferplus_dir / "train.npz")
        _, ho = holdout_split(tr, holdout, seed)
        return tr.subset(ho), (f"FER+ train hold-out (a {holdout:.0%} stratified by majority label, seed {seed}, "
                               f"never trained on), raw pixels")
    if kind == "fer2013-holdout":
        f13 = load_npz(fer2013_dir / "train.npz")
        _, ho = stratified_holdout(f13.labels, holdout, seed)
        tr = load_ferplus(ferplus_dir / "train.npz")
        match = match_fer2013_to_ferplus(f13.images[ho], tr.images)
        found = match[match >= 0]
        return tr.subset(found), (f"FER2013 Training hold-out (stratified {holdout:.0%} by FER2013 label, seed "
                                  f"{seed}: {len(ho)} images the model never trained on), matched by content to "
                                  f"FER+ train ({len(found)} found), FER+'s raw pixels")
    raise ValueError(f"unknown face set {kind!r}")


def neutral_text(held_text: str, n: int) -> str:
    """The ``dataset`` text of a neutral reference over the ``n`` neutral-majority faces of a held-out set."""
    return f"{held_text}: the {n} faces whose FER+ majority vote is neutral (top vote not tied, not unknown/NF)"


def uncertain_thresholds(model, held, dataset: str, batch: int = 256, max_right: float = 1 / 3,
                         min_faces: int = 30) -> dict:
    """The card's ``uncertain`` field: the thresholds below which one reading of ``model`` is no better than a
    guess among a few labels. Over the faces of ``held`` (a ``FerPlus`` set the model never trained on) with a
    majority label the model has: the largest ``min_confidence`` (top probability) such that readings whose top is
    below it are right at most ``max_right`` of the time (at least ``min_faces`` of them), and likewise the
    largest ``min_margin`` (the top's lead over the second). The engine shows "uncertain" below either (after a
    hold, smoothed: engine/smoothing.py); a model without the field uses SmootherOptions' defaults."""
    from .ferplus import LABELS8
    maj = held.majority()
    names = list(model.labels)
    to_model = np.array([names.index(n) if n in names else -1 for n in LABELS8] + [-1])
    y = to_model[maj]                         # -1 (no majority) indexes the trailing -1
    keep = np.flatnonzero(y >= 0)
    faces, y = held.images[keep], y[keep]
    p = np.concatenate([model.classify_crops(list(faces[i:i + batch])) for i in range(0, len(faces), batch)])
    top = p.max(axis=1)
    lead = top - np.partition(p, -2, axis=1)[:, -2]
    ok = p.argmax(axis=1) == y
    chosen = {}
    for name, v in (("min_confidence", top), ("min_margin", lead)):
        best = 0.0
        for e in np.round(np.arange(0.01, 0.6, 0.01), 2):
            below = v < e
            if below.sum() >= min_faces and ok[below].mean() <= max_right:
                best = float(e)
        chosen[name] = best
    share = float(((top < chosen["min_confidence"]) | (lead < chosen["min_margin"])).mean())
    return {**chosen, "faces": int(len(y)), "single_frame_accuracy": round(float(ok.mean()), 4),
            "share_below": round(share, 4), "dataset": f"{dataset}: the {len(y)} faces with a majority label "
                                                       "the model has",
            "rule": f"largest thresholds with readings below them right at most {max_right:.0%} of the time "
                    f"(at least {min_faces} such readings): tools.train.reference.uncertain_thresholds"}


def card_holdout(card: dict) -> tuple[str, float, int] | None:
    """``(kind, fraction, seed)`` from a tools/train card's ``extra.holdout``, if it records one."""
    h = (card.get("extra") or {}).get("holdout")
    if not isinstance(h, dict) or "seed" not in h:
        return None
    kind = {"ferplus": "ferplus-holdout", "fer2013": "fer2013-holdout"}.get(h.get("dataset"))
    return None if kind is None else (kind, float(h.get("fraction", HOLDOUT_FRACTION)), int(h["seed"]))


def write_card_field(folder: Path, value: dict, key: str = "neutral_reference") -> None:
    """Set ``key`` in ``folder/card.json``, leaving every other field (and their order) as it was."""
    path = folder / "card.json"
    text = path.read_text(encoding="utf-8")
    card = json.loads(text)
    card[key] = value
    ascii_only = all(ord(ch) < 128 for ch in text)
    path.write_text(json.dumps(card, indent=2, ensure_ascii=ascii_only) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.train.reference", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", type=Path, help="model folder(s) holding card.json")
    p.add_argument("--faces", default="auto",
                   choices=("auto", "ferplus-holdout", "fer2013-holdout", "ferplus-validation"),
                   help="which never-trained-on neutral faces (auto: the card's extra.holdout; required otherwise)")
    p.add_argument("--holdout", type=float, default=HOLDOUT_FRACTION, help="hold-out fraction (not for auto)")
    p.add_argument("--holdout-seed", type=int, help="hold-out seed (not for auto)")
    p.add_argument("--ferplus-dir", type=Path, default=DEFAULT_FERPLUS)
    p.add_argument("--fer2013-dir", type=Path, default=DEFAULT_FER2013)
    p.add_argument("--dry-run", action="store_true", help="print, do not write the card")
    args = p.parse_args(argv)

    from obs_mindflow.engine.model import ExpressionModel
    for folder in args.models:
        card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
        kind, fraction, seed = args.faces, args.holdout, args.holdout_seed
        if kind == "auto":
            found = card_holdout(card)
            if found is None:
                print(f"error: {folder}/card.json records no training hold-out (extra.holdout); say which faces "
                      "the model never trained on: --faces fer2013-holdout --holdout-seed N, or "
                      "--faces ferplus-validation", file=sys.stderr)
                return 2
            kind, fraction, seed = found
        model = ExpressionModel.load(folder)
        held, text = held_out_faces(kind, args.ferplus_dir, args.fer2013_dir, fraction, seed)
        idx = neutral_majority(held)
        ref = neutral_reference(model, held.images[idx], neutral_text(text, len(idx)))
        unc = uncertain_thresholds(model, held, text)
        print(f"{folder}: neutral_reference " + json.dumps(ref) + "\n  uncertain " + json.dumps(unc))
        if not args.dry_run:
            write_card_field(folder, ref)
            write_card_field(folder, unc, "uncertain")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
