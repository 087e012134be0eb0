"""FER+ : FER2013's faces (raw pixels) with 10 crowd votes each — soft targets, majority labels, the hold-out.

``../shared/data/ferplus/{train,validation}.npz`` hold ``images`` (N, 48, 48) uint8 — the original FER2013 pixels,
*not* histogram-equalised, i.e. what the engine feeds a model —, ``votes`` (N, 10) in :data:`VOTE_NAMES` order and
``image_name``. Conventions used everywhere in tools/ (training, export, bench, neutral reference):

* labels are named in the engine's vocabulary and ordered like FER2013 models, contempt last
  (:data:`LABELS8`; the 7-class order is :data:`tools.train.data.LABELS`);
* **soft target** = the vote distribution over the model's labels, ``unknown`` and ``NF`` dropped (for a 7-class
  model contempt's votes are dropped too) and renormalised; rows left without a vote are not trained on;
* **majority label** (the FER+ paper's rule): the top vote over all 10 categories; a face whose top vote is
  ``unknown``/``NF`` or tied is left out of majority figures (index -1). It is an index into :data:`LABELS8`
  (a contempt-majority face is still counted for a 7-class model, which cannot get it right);
* **hold-out**: a seeded 10 % of FER+ train, stratified by majority label (the undecided faces are one stratum),
  never trained on: temperature, int8 calibration, every choice and the neutral reference use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

VOTE_NAMES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF")
#: FER2013's label order (= tools.train.data.LABELS; repeated so that this module needs numpy only, not torch)
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
LABELS8 = LABELS + ("contempt",)
#: FER+ vote category → the engine's label name
VOTE_TO_LABEL = {"neutral": "neutral", "happiness": "happy", "surprise": "surprise", "sadness": "sad",
                 "anger": "angry", "disgust": "disgust", "fear": "fear", "contempt": "contempt"}
DEFAULT_FERPLUS = Path("..") / "shared" / "data" / "ferplus"
HOLDOUT_FRACTION = 0.1


def labels_for(num_classes: int) -> tuple[str, ...]:
    if num_classes not in (7, 8):
        raise ValueError(f"FER+ models have 7 or 8 classes, got {num_classes}")
    return LABELS8 if num_classes == 8 else LABELS


@dataclass
class FerPlus:
    images: np.ndarray          # (N, 48, 48) uint8, raw pixels
    votes: np.ndarray           # (N, 10) int, VOTE_NAMES order
    names: np.ndarray           # (N,) FER+ file names

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, idx: np.ndarray) -> "FerPlus":
        return FerPlus(self.images[idx], self.votes[idx], self.names[idx])

    def targets(self, labels: tuple[str, ...]) -> np.ndarray:
        """Soft targets (N, len(labels)) float32: each face's votes over ``labels``, renormalised (rows without a
        vote for any of them are all zero)."""
        cols = [VOTE_NAMES.index(next(v for v, l in VOTE_TO_LABEL.items() if l == lab)) for lab in labels]
        t = self.votes[:, cols].astype(np.float32)
        s = t.sum(axis=1, keepdims=True)
        return np.divide(t, s, out=np.zeros_like(t), where=s > 0)

    def majority(self) -> np.ndarray:
        """Majority label per face as an index into :data:`LABELS8`, or -1 (top vote unknown/NF, or tied)."""
        return majority_labels(self.votes)


def majority_labels(votes: np.ndarray) -> np.ndarray:
    votes = np.asarray(votes)
    top = votes.argmax(axis=1)
    tied = (votes == votes.max(axis=1, keepdims=True)).sum(axis=1) > 1
    to8 = np.array([LABELS8.index(VOTE_TO_LABEL[v]) if v in VOTE_TO_LABEL else -1 for v in VOTE_NAMES])
    out = to8[top]
    out[tied] = -1
    return out


def load_ferplus(path: str | Path) -> FerPlus:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"FER+ file not found: {path} — pass --data-dir pointing at the folder holding "
                                f"train.npz and validation.npz (default ../shared/data/ferplus)")
    with np.load(path, allow_pickle=False) as d:
        names = tuple(str(x) for x in d["vote_names"])
        if names != VOTE_NAMES:
            raise ValueError(f"{path}: vote order {names} differs from FER+'s {VOTE_NAMES}")
        return FerPlus(np.ascontiguousarray(d["images"]), d["votes"].astype(np.int64), d["image_name"])


def holdout_split(data: FerPlus, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train, holdout)`` row indices: ``fraction`` of every majority stratum (undecided faces are one)."""
    from .data import stratified_holdout
    strata = data.majority() + 1          # -1 → 0
    return stratified_holdout(strata, fraction, seed)


def neutral_majority(data: FerPlus) -> np.ndarray:
    """Indices of the faces whose majority label (the paper's rule) is neutral."""
    return np.flatnonzero(data.majority() == LABELS8.index("neutral"))

