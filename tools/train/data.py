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


def equalize_images(images: np.ndarray) -> np.ndarray:
    """Histogram-equalised copies of uint8 images (N, H, W): what the engine feeds a card with ``input.equalize``."""
    import cv2
    return np.stack([cv2.equalizeHist(np.ascontiguousarray(im)) for im in images]) if len(images) else images.copy()


def equalize_tensor(x: torch.Tensor) -> torch.Tensor:
    """:func:`equalize_images` on a normalised batch (N, 1, H, W), after augmentation: the engine equalises the crop
    it sees, whatever its light, so a training image is equalised after its brightness and contrast were jittered.
    Same lookup table as ``cv2.equalizeHist`` (the first used level maps to 0; a flat image is left as it is)."""
    n = x.shape[0]
    v = ((x * STD + MEAN) * 255).round().clamp(0, 255).long().reshape(n, -1)
    hist = torch.zeros(n, 256, device=x.device).scatter_add_(1, v, torch.ones_like(v, dtype=torch.float32))
    cdf = hist.cumsum(1)
    first = cdf.gather(1, (hist > 0).float().argmax(1, keepdim=True))     # count at the first used level
    total = float(v.shape[1])
    lut = ((cdf - first) * (255.0 / (total - first).clamp(min=1))).round().clamp(0, 255)
    out = torch.where(first == total, v.float(), lut.gather(1, v)) / 255.0
    return ((out - MEAN) / STD).reshape(x.shape).to(x.dtype)


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


# --- webcam-like augmentation (FER+ training) ---------------------------------------------------------------------

@dataclass
class WebcamConfig:
    """What a face crop from a webcam goes through that FER's web photos did not, plus FER's usual jitter.

    Geometry is one projective warp per face: the **Haar box jitter** measured with the engine's detector
    (``python -m tools.train.haar_jitter``; docs/training.md): the box centre moves by σ ≈ 3.3 % of the box width and
    its size by σ ≈ 11 % (log) between FER's framing plus frame-to-frame jitter, with tails to ±12 % and ±30 %;
    ``center_*`` and ``log_scale_*`` are those numbers (Gaussian, clipped at the tails). Small rotations and a
    perspective term (a head turned or tilted a little: ``pose``) complete it. Photometric: dim light (gain down,
    noise up), gamma, contrast/brightness, lens/focus blur, a small face upscaled from a low resolution, sensor noise,
    JPEG, 8-bit quantisation, and random erasing (occlusion: a hand, a microphone).
    """

    flip: float = 0.5
    rotate_deg: float = 10.0            # uniform ±
    center_sigma: float = 0.033         # Haar box centre jitter, fraction of the box (= image) width, per axis
    center_clip: float = 0.12
    log_scale_sigma: float = 0.11       # Haar box size jitter, log ratio
    log_scale_clip: float = 0.30
    pose: float = 0.08                  # perspective coefficients uniform ± (yaw / pitch of a few degrees)
    contrast: float = 0.25
    brightness: float = 0.10
    gamma: tuple[float, float] = (0.7, 1.45)   # log-uniform
    dim: float = 0.3                    # probability of dim light: signal × d, sensor noise, then auto-gain × g,
    dim_range: tuple[float, float] = (0.35, 1.0)  # g uniform in [1, 1/d] (exposure only partly restored)
    blur: float = 0.2                   # probability of Gaussian blur
    blur_sigma: tuple[float, float] = (0.3, 0.9)  # pixels at 48×48
    lowres: float = 0.1                 # probability of a face that was this many pixels wide, upscaled
    lowres_px: tuple[int, int] = (24, 40)
    noise: float = 0.5                  # probability of sensor noise
    noise_sigma: tuple[float, float] = (0.003, 0.03)   # [0,1] units, before the auto-gain
    jpeg: float = 0.3                   # probability of JPEG compression
    jpeg_quality: tuple[int, int] = (30, 90)
    erase: float = 0.25
    erase_area: tuple[float, float] = (0.02, 0.12)


def _clipped_normal(n: int, sigma: float, clip: float, gen: torch.Generator) -> torch.Tensor:
    return (torch.randn(n, generator=gen) * sigma).clamp(-clip, clip)


def augment_webcam(x: torch.Tensor, cfg: WebcamConfig, gen: torch.Generator) -> torch.Tensor:
    """Webcam-like augmentation of a normalised batch (N, 1, H, W); every random number comes from ``gen`` (CPU), all
    of them drawn for every face whatever applies, so the stream is the same on any device and for any content."""
    import cv2

    n, _, h, w = x.shape
    dev = x.device

    def u(lo: float, hi: float, size: tuple[int, ...] = (n,)) -> torch.Tensor:
        return torch.rand(size, generator=gen) * (hi - lo) + lo

    def coin(p: float) -> torch.Tensor:
        return torch.rand(n, generator=gen) < p

    # -- geometry: output (u, v) in [-1, 1] → source = H · (u, v, 1); H = affine (flip, rotation, zoom, shift) ∘ pose
    ang = u(-cfg.rotate_deg, cfg.rotate_deg) * math.pi / 180
    s = torch.exp(_clipped_normal(n, cfg.log_scale_sigma, cfg.log_scale_clip, gen))   # box larger → face smaller
    tx = _clipped_normal(n, cfg.center_sigma, cfg.center_clip, gen) * 2
    ty = _clipped_normal(n, cfg.center_sigma, cfg.center_clip, gen) * 2
    flip = torch.where(coin(cfg.flip), -1.0, 1.0)
    px, py = u(-cfg.pose, cfg.pose), u(-cfg.pose, cfg.pose)
    cos, sin = torch.cos(ang) * s, torch.sin(ang) * s
    hom = torch.zeros(n, 3, 3)
    hom[:, 0, 0], hom[:, 0, 1], hom[:, 0, 2] = cos * flip, -sin, tx
    hom[:, 1, 0], hom[:, 1, 1], hom[:, 1, 2] = sin * flip, cos, ty
    hom[:, 2, 0], hom[:, 2, 1], hom[:, 2, 2] = px, py, 1.0
    gu = ((torch.arange(w) * 2 + 1) / w - 1).view(1, 1, w)        # pixel centres in [-1, 1] (align_corners=False)
    gv = ((torch.arange(h) * 2 + 1) / h - 1).view(1, h, 1)
    hh = hom.view(n, 9, 1, 1)
    z = (hh[:, 6] * gu + hh[:, 7] * gv + hh[:, 8]).clamp(min=0.2)
    grid = torch.stack([(hh[:, 0] * gu + hh[:, 1] * gv + hh[:, 2]) / z,
                        (hh[:, 3] * gu + hh[:, 4] * gv + hh[:, 5]) / z], dim=3)         # (N, H, W, 2)
    x = F.grid_sample(x, grid.to(dev), mode="bilinear", padding_mode="reflection", align_corners=False)

    # -- light, in [0, 1] units
    contrast = u(1 - cfg.contrast, 1 + cfg.contrast).view(n, 1, 1, 1)
    brightness = u(-cfg.brightness, cfg.brightness).view(n, 1, 1, 1)
    gamma = torch.exp(u(math.log(cfg.gamma[0]), math.log(cfg.gamma[1]))).view(n, 1, 1, 1)
    dim = torch.where(coin(cfg.dim), u(*cfg.dim_range), torch.ones(n)).view(n, 1, 1, 1)
    gain = 1 + torch.rand(n, generator=gen).view(n, 1, 1, 1) * (1 / dim - 1)
    p = x * STD + MEAN
    m = p.mean(dim=(1, 2, 3), keepdim=True)
    p = ((p - m) * contrast.to(dev) + m + brightness.to(dev)).clamp(0, 1)
    p = p.clamp_min(1e-6) ** gamma.to(dev) * dim.to(dev)

    # -- optics: blur, then a small face upscaled
    do_blur, sigma = coin(cfg.blur), u(*cfg.blur_sigma)
    do_low = coin(cfg.lowres)
    low_px = torch.randint(cfg.lowres_px[0], cfg.lowres_px[1] + 1, (n,), generator=gen)
    if do_blur.any():
        r = 3
        k1 = torch.exp(-(torch.arange(-r, r + 1).float().view(1, -1) ** 2) / (2 * sigma.view(-1, 1) ** 2))
        k1 = k1 / k1.sum(dim=1, keepdim=True)
        k2 = (k1.unsqueeze(2) * k1.unsqueeze(1)).unsqueeze(1).to(dev)       # (N, 1, 7, 7)
        blurred = F.conv2d(F.pad(p.view(1, n, h, w), (r, r, r, r), mode="reflect"), k2, groups=n).view(n, 1, h, w)
        p = torch.where(do_blur.view(n, 1, 1, 1).to(dev), blurred, p)
    for size in low_px[do_low].unique().tolist():
        sel = (do_low & (low_px == size)).nonzero().flatten().to(dev)
        small = F.interpolate(p[sel], size=(int(size), int(size)), mode="area")
        p[sel] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)

    # -- sensor noise, the camera's auto-gain (amplifies both in dim light), then JPEG and 8 bits
    do_noise, noise_sigma = coin(cfg.noise), u(*cfg.noise_sigma)
    noise = torch.randn((n, 1, h, w), generator=gen)
    amp = (noise_sigma * do_noise.float()).view(n, 1, 1, 1)
    p = ((p + noise.to(dev) * amp.to(dev)) * gain.to(dev)).clamp(0, 1)
    do_jpeg = coin(cfg.jpeg)
    quality = torch.randint(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1, (n,), generator=gen)
    q8 = (p * 255).round()
    if do_jpeg.any():
        idx = do_jpeg.nonzero().flatten()
        imgs = q8[idx.to(dev)].to("cpu", torch.uint8).numpy()
        out = []
        for img, qual in zip(imgs, quality[idx].tolist()):
            ok, buf = cv2.imencode(".jpg", img[0], [cv2.IMWRITE_JPEG_QUALITY, int(qual)])
            out.append(cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE))
        q8[idx.to(dev)] = torch.from_numpy(np.stack(out)).float().unsqueeze(1).to(dev)
    x = (q8 / 255.0 - MEAN) / STD

    # -- occlusion: one random-erasing rectangle, filled with noise
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
        box &= coin(cfg.erase).view(n, 1, 1)
        fill = torch.randn((n, 1, h, w), generator=gen).clamp(-1, 1)      # noise a camera could deliver
        x = torch.where(box.unsqueeze(1).to(dev), fill.to(dev), x)
    return x


def mix_batch(x: torch.Tensor, t: torch.Tensor, prob: float, mixup_alpha: float, cutmix_alpha: float,
              gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Mixup or CutMix on a batch with soft targets ``t`` (N, C): with probability ``prob`` the batch is mixed with a
    permutation of itself, half the time by mixup (λ ~ Beta(α, α)), half by CutMix (a box of area 1-λ pasted; the
    targets mixed by the pasted area). Random numbers from ``gen``, all drawn every call."""
    n, _, h, w = x.shape
    r = float(torch.rand(1, generator=gen))
    perm = torch.randperm(n, generator=gen)
    rng = np.random.default_rng(int(torch.randint(0, 2 ** 31 - 1, (1,), generator=gen)))
    lam_mix = float(rng.beta(mixup_alpha, mixup_alpha)) if mixup_alpha > 0 else 1.0
    lam_cut = float(rng.beta(cutmix_alpha, cutmix_alpha)) if cutmix_alpha > 0 else 1.0
    cy, cx = float(rng.uniform(0, h)), float(rng.uniform(0, w))
    p = perm.to(x.device)
    if r < prob / 2:
        return lam_mix * x + (1 - lam_mix) * x[p], lam_mix * t + (1 - lam_mix) * t[p], "mixup"
    if r < prob:
        bh, bw = h * math.sqrt(1 - lam_cut), w * math.sqrt(1 - lam_cut)
        y0, y1 = int(round(max(cy - bh / 2, 0))), int(round(min(cy + bh / 2, h)))
        x0, x1 = int(round(max(cx - bw / 2, 0))), int(round(min(cx + bw / 2, w)))
        x = x.clone()
        x[:, :, y0:y1, x0:x1] = x[p][:, :, y0:y1, x0:x1]
        lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
        return x, lam * t + (1 - lam) * t[p], "cutmix"
    return x, t, "none"
