"""FER2013 arrays, the seeded calibration hold-out, and batched on-the-fly augmentation (torch, any device).

The npz files (``../shared/data/fer2013/{train,validation}.npz``) hold 48×48 uint8 grayscale ``images``,
``labels`` (FER2013 order ``angry, disgust, fear, happy, sad, surprise, neutral``), an ``augmented`` flag and
``files``. Only the *original* images are used:

* the 3,488 pre-made disgust copies in train.npz are left out: they are strongly rotated/zoomed copies with
  smeared borders (unlike any webcam face), they would raise disgust from 1.5 % to 12 % of the training prior
  (hurting the other classes and calibration), and a held-out disgust image would leak into training through
  its copies. Disgust is instead repeated ``disgust_repeat`` times per epoch, each time freshly augmented;
* PublicTest figures are on its 3,589 originals (the 448 added copies are dropped).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
MEAN, STD = 0.5, 0.5          # after x/255; the card says scale 1/255, mean 0.5, std 0.5


@dataclass
class Split:
    images: np.ndarray        # (N, 48, 48) uint8
    labels: np.ndarray        # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)


def load_npz(path: str | Path, originals_only: bool = True) -> Split:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"FER2013 file not found: {path} — pass --data-dir pointing at the folder "
                                f"holding train.npz and validation.npz (default ../shared/data/fer2013)")
    with np.load(path, allow_pickle=False) as d:
        names = tuple(str(x) for x in d["label_names"])
        if names != LABELS:
            raise ValueError(f"{path}: label order {names} differs from FER2013's {LABELS}")
        keep = ~d["augmented"] if originals_only else np.ones(len(d["labels"]), bool)
        return Split(np.ascontiguousarray(d["images"][keep]), d["labels"][keep].astype(np.int64))


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, holdout)``: ``fraction`` of every class, chosen with ``seed``; both sorted."""
    rng = np.random.default_rng(seed)
    hold = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        n = int(round(fraction * len(idx)))
        hold.append(rng.choice(idx, n, replace=False))
    hold = np.sort(np.concatenate(hold))
    train = np.setdiff1d(np.arange(len(labels)), hold)
    return train, hold


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W) → normalised float (N, 1, H, W)."""
    x = torch.from_numpy(images).float().unsqueeze(1)
    return (x / 255.0 - MEAN) / STD


@dataclass
class AugmentConfig:
    flip: float = 0.5             # probability of a horizontal flip
    rotate_deg: float = 10.0      # uniform ±
    scale: float = 0.10           # zoom uniform in [1-s, 1+s] (also covers Haar box size jitter)
    translate: float = 0.08       # shift uniform ±, fraction of the image size
    brightness: float = 0.15      # additive, uniform ±, in [0,1] pixel units
    contrast: float = 0.25        # multiplicative around the image mean, uniform in [1-c, 1+c]
    erase: float = 0.25           # probability of one random-erasing rectangle
    erase_area: tuple[float, float] = (0.02, 0.12)


def augment(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Augment a normalised batch (N, 1, H, W) in one go; random numbers come only from ``gen`` (a CPU generator)
    and are drawn in the same order wherever ``x`` lives, so a GPU run sees the same augmentations as a CPU run."""
    n, _, h, w = x.shape
    dev = x.device

    def u(lo: float, hi: float, size: tuple[int, ...] = (n,)) -> torch.Tensor:
        return torch.rand(size, generator=gen) * (hi - lo) + lo

    # photometric, in [0,1] units
    contrast = u(1 - cfg.contrast, 1 + cfg.contrast).view(n, 1, 1, 1).to(dev)
    brightness = u(-cfg.brightness, cfg.brightness).view(n, 1, 1, 1).to(dev)
    p = x * STD + MEAN
    m = p.mean(dim=(1, 2, 3), keepdim=True)
    p = (p - m) * contrast + m
    p = p + brightness
    x = (p.clamp(0, 1) - MEAN) / STD
    # geometric: flip, rotation, zoom, shift as one affine grid
    ang = u(-cfg.rotate_deg, cfg.rotate_deg) * math.pi / 180
    s = u(1 - cfg.scale, 1 + cfg.scale)
    flip = torch.where(torch.rand(n, generator=gen) < cfg.flip, -1.0, 1.0)
    tx, ty = u(-cfg.translate, cfg.translate) * 2, u(-cfg.translate, cfg.translate) * 2
    cos, sin = torch.cos(ang) / s, torch.sin(ang) / s
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
    grid = F.affine_grid(theta.to(dev), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    # random erasing (one rectangle, filled with noise)
    if cfg.erase > 0:
        area = u(*cfg.erase_area) * h * w
        ratio = torch.exp(u(math.log(0.3), math.log(3.3)))
        eh = (area * ratio).sqrt().clamp(1, h).long()
        ew = (area / ratio).sqrt().clamp(1, w).long()
        y0 = (torch.rand(n, generator=gen) * (h - eh + 1)).long()
        x0 = (torch.rand(n, generator=gen) * (w - ew + 1)).long()
        yy = torch.arange(h).view(1, h, 1)
        xx = torch.arange(w).view(1, 1, w)
        box = ((yy >= y0.view(n, 1, 1)) & (yy < (y0 + eh).view(n, 1, 1))
               & (xx >= x0.view(n, 1, 1)) & (xx < (x0 + ew).view(n, 1, 1)))
        box &= (torch.rand(n, generator=gen) < cfg.erase).view(n, 1, 1)
        noise = torch.randn((n, 1, h, w), generator=gen)
        x = torch.where(box.unsqueeze(1).to(dev), noise.to(dev), x)
    return x


def epoch_order(labels: np.ndarray, disgust_repeat: int, seed: int, epoch: int) -> np.ndarray:
    """Shuffled sample indices for one epoch; disgust (label 1) appears ``disgust_repeat`` times."""
    idx = np.arange(len(labels))
    if disgust_repeat > 1:
        idx = np.concatenate([idx] + [np.flatnonzero(labels == 1)] * (disgust_repeat - 1))
    return np.random.default_rng([seed, epoch]).permutation(idx)
