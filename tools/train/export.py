"""Calibrate a trained run, export it to ONNX and write a MindFlow model folder (card.json, LICENSE, README.md).

Runs trained on FER+ (``--dataset ferplus``) are exported by :func:`export_ferplus`: temperature and int8 calibration
on the run's FER+ hold-out, the figures of ``tools.bench_accuracy.evaluate`` (FER+ validation majority accuracy and
per-class recall, neutral faces read negative, predicted vs true negative share, ECE; FER2013 PublicTest on its own
labels with contempt restricted away), the ``neutral_reference`` from the hold-out's neutral-majority faces
(``tools.train.reference.neutral_reference``), and the hold-out recorded in ``extra.holdout``. What follows describes
the FER2013 runs.

    python -m tools.train.export --run runs/train/NAME [--run runs/train/OTHER ...] --out models/NAME [--tta]

* several ``--run``s make one ensemble: their logits are averaged inside the ONNX graph (the runs must share the
  calibration hold-out: same ``--holdout`` fraction and hold-out seed);

* temperature: fitted (NLL) on the run's seeded stratified hold-out of FER2013 Training, never on PublicTest;
* accuracy, per-class recall, ECE (15 bins) before/after: FER2013 PublicTest originals (3,589), computed through
  the engine (``ExpressionModel.classify_crops``) on the exported ONNX file;
* ``--int8`` ships a statically quantised copy (onnxruntime QDQ, per-channel int8 weights, activation ranges
  calibrated on hold-out images, never PublicTest); the float32 graph's PublicTest accuracy is recorded beside it;
* ``--tta`` bakes horizontal-flip averaging of the logits into the ONNX graph (the engine needs nothing special);
* parity torch vs onnxruntime (max |Δlogit|), ms per face (onnxruntime, 1 thread, batch 1, median), and the two
  public-domain photos in tests/data/faces through Haar + ``ExpressionModel.classify``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .calibrate import ece, fit_temperature, nll, softmax
from .data import LABELS, MEAN, STD, load_npz, stratified_holdout
from .nets import build, count_params
from .train import DEFAULT_DATA, holdout_seed, load_run, predict, run_flags, run_images, run_labels

REPO = Path(__file__).resolve().parents[2]
NEGATIVE = ["angry", "disgust", "fear", "sad"]
DATA_NOTICE = ("Trained and evaluated on FER2013 (Goodfellow et al., 2013: 48x48 grayscale faces collected from the "
               "web for the ICML 2013 representation-learning challenge). FER2013 has no licence; these weights were "
               "trained on it for research purposes. No FER2013 image, or file made from one other than these "
               "trained weights, is distributed with this model. Users must judge for themselves whether their use "
               "is allowed.")
MIT = """MIT License

Copyright (c) 2026 MindFlow developers

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


class FlipAverage(torch.nn.Module):
    """Logits averaged over the input and its horizontal mirror (test-time augmentation inside the graph)."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        both = self.net(torch.cat([x, torch.flip(x, dims=[3])], dim=0))
        return 0.5 * (both[:n] + both[n:])


class MeanLogits(torch.nn.Module):
    """Ensemble: the mean of the members' logits."""

    def __init__(self, nets: list[torch.nn.Module]) -> None:
        super().__init__()
        self.nets = torch.nn.ModuleList(nets)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([net(x) for net in self.nets]).mean(dim=0)


def normalise(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 48, 48) → the network's float input (N, 1, 48, 48)."""
    return ((images.astype(np.float32) / 255.0 - MEAN) / STD)[:, None]


def quantize_int8(src: Path, dst: Path, calibration: np.ndarray, work: Path) -> dict:
    """Static int8 quantisation of ``src`` into ``dst``: QDQ, per-channel int8 weights, uint8 activations with
    ``reduce_range`` (7-bit, avoids the u8×s8 overflow of AVX2 kernels: it measured 2 points better here)."""
    import logging
    import shutil

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    work.mkdir(exist_ok=True)
    pre = work / "pre.onnx"
    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)
    try:
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        batches = [normalise(calibration[i:i + 16]) for i in range(0, len(calibration), 16)]

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self._it = iter({"input": x} for x in batches)

            def get_next(self):
                return next(self._it, None)

        quantize_static(str(pre), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        reduce_range=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    finally:
        logging.getLogger().setLevel(level)
        shutil.rmtree(work, ignore_errors=True)
    import onnxruntime
    return {"method": "onnxruntime quantize_static, QDQ, per-channel int8 weights, uint8 activations, reduce_range",
            "onnxruntime": onnxruntime.__version__}


def ort_session(path: Path, threads: int = 1):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])


def time_ms(path: Path, runs: int) -> dict:
    """onnxruntime, one thread, batch 1: median and quartiles in ms over ``runs`` runs (after a warm-up)."""
    s = ort_session(path, 1)
    name = s.get_inputs()[0].name
    x = np.random.default_rng(0).standard_normal((1, 1, 48, 48)).astype(np.float32)
    for _ in range(200):
        s.run(None, {name: x})
    t = []
    load0 = os.getloadavg()[0]
    for _ in range(runs):
        t0 = time.perf_counter()
        s.run(None, {name: x})
        t.append(time.perf_counter() - t0)
    t = np.array(t) * 1e3
    return {"median": float(np.median(t)), "p25": float(np.percentile(t, 25)), "p75": float(np.percentile(t, 75)),
            "min": float(t.min()), "runs": runs, "load1_before": load0, "load1_after": os.getloadavg()[0]}


def photo_checks(folder: Path) -> dict:
    """The public-domain test photos through the engine's detector and model, as the golden tests run them."""
    import cv2
    from obs_mindflow.engine.detector import FaceDetector
    from obs_mindflow.engine.model import ExpressionModel
    model = ExpressionModel.load(folder)
    out = {}
    for name, want in (("astronaut.png", "happy"), ("grace_hopper.jpg", "neutral")):
        frame = cv2.imread(str(REPO / "tests" / "data" / "faces" / name))
        boxes = FaceDetector().detect(frame)[:1]          # the primary face
        if not len(boxes):
            out[name] = {"expected": want, "predicted": None, "note": "no face detected"}
            continue
        p = model.classify(frame, boxes)[0]
        out[name] = {"expected": want, "predicted": model.labels[int(p.argmax())],
                     "box_xywh": [int(v) for v in boxes[0]],
                     "probabilities": {l: round(float(v), 4) for l, v in zip(model.labels, p)}}
    return out


FERPLUS_NOTICE = ("Trained on FER+ (Barsoum et al., 2016: 10 crowd votes for each FER2013 face; labels (c) Microsoft "
                  "Corporation, MIT licence, github.com/microsoft/FERPlus) over the FER2013 images (Goodfellow et al., "
                  "2013: 48x48 grayscale faces collected from the web). FER2013 has no licence; these weights were "
                  "trained on it for research purposes. No FER2013 image or FER+ label file, or file made from one "
                  "other than these trained weights, is distributed with this model. Users must judge for themselves "
                  "whether their use is allowed.")


def export_onnx(model: torch.nn.Module, out: Path, parity_images: np.ndarray, calibration: np.ndarray | None,
                opset: int) -> tuple[Path, float, dict | None, np.ndarray]:
    """``out/model.onnx`` from ``model`` (float32, or int8 when ``calibration`` images are given); returns the path,
    the torch-vs-onnxruntime parity of the float32 graph (raises above 1e-4), the int8 record and the torch logits of
    ``parity_images``."""
    onnx_path = out / "model.onnx"
    fp32_path = out / "model-fp32.onnx" if calibration is not None else onnx_path
    torch_logits = predict(model, parity_images)
    torch.onnx.export(model, torch.zeros(1, 1, 48, 48), str(fp32_path), dynamo=False, opset_version=opset,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, do_constant_folding=True)
    import onnx
    onnx.checker.check_model(onnx.load(str(fp32_path)))
    sess = ort_session(fp32_path, 2)
    x_par = normalise(parity_images)
    ort_batch = sess.run(None, {"input": x_par})[0]
    ort_one = np.concatenate([sess.run(None, {"input": x_par[i:i + 1]})[0] for i in range(64)])
    parity = float(max(np.abs(ort_batch - torch_logits).max(), np.abs(ort_one - torch_logits[:64]).max()))
    if parity > 1e-4:
        raise SystemExit(f"torch vs onnxruntime differ by {parity:.3g} (> 1e-4): the export is wrong, not shipped")
    int8 = None
    if calibration is not None:
        int8 = quantize_int8(fp32_path, onnx_path, calibration, out / "int8-work")
        fp32_path.unlink()
    return onnx_path, parity, int8, torch_logits


def export_ferplus(args: argparse.Namespace, nets: list[torch.nn.Module], cks: list[dict], model: torch.nn.Module,
                   export_command: str) -> int:
    """Export FER+ runs (see the module docstring); every figure through the engine on the shipped graph."""
    from dataclasses import asdict

    from obs_mindflow.engine.model import ExpressionModel
    from tools.bench_accuracy import evaluate, ferplus_scores, load_dataset

    from .data import WebcamConfig
    from .ferplus import DEFAULT_FERPLUS, holdout_split, load_ferplus, majority_labels, neutral_majority
    from .reference import neutral_reference, neutral_text, uncertain_thresholds

    a = cks[0]["args"]
    labels = run_labels(a)
    data_dir = args.data_dir or DEFAULT_FERPLUS
    train_all = load_ferplus(data_dir / "train.npz")
    val = load_ferplus(data_dir / "validation.npz")
    seed, fraction = holdout_seed(a), a["holdout"]
    _, ho_idx = holdout_split(train_all, fraction, seed)
    held = train_all.subset(ho_idx)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    calib = run_images(a, held.images[:args.int8_calibration]) if args.int8 else None
    onnx_path, parity, int8, val_torch = export_onnx(model, out, run_images(a, val.images[:512]), calib, args.opset)

    negative = NEGATIVE + (["contempt"] if "contempt" in labels else [])
    card = {
        "schema": 1, "name": args.name or out.name, "display_name": args.display_name or args.name or out.name,
        "description": "", "file": "model.onnx", "labels": list(labels), "negative_labels": negative,
        "input": {"layout": "NCHW", "height": 48, "width": 48, "channels": "gray", "scale": 1 / 255,
                  "mean": [MEAN], "std": [STD], "crop_margin": args.crop_margin,
                  **({"equalize": True} if a.get("equalize") else {})},
        "output": "logits", "temperature": 1.0, "license": "MIT", "license_files": ["LICENSE"],
        "source": "tools/train (provisional card, rewritten below)", "accuracy": {},
    }
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    engine = ExpressionModel.load(out)

    def engine_logits(images: np.ndarray) -> np.ndarray:
        return np.concatenate([engine.infer(engine.preprocess_crops(list(images[i:i + 256])))
                               for i in range(0, len(images), 256)])

    # temperature: NLL of the hold-out's majority labels (the classes the model has), through the shipped graph
    ho_logits = engine_logits(held.images)
    ho_maj = majority_labels(held.votes)
    fit = (ho_maj >= 0) & (ho_maj < len(labels))
    temperature = fit_temperature(ho_logits[fit], ho_maj[fit])
    val_raw = engine_logits(val.images)
    engine_vs_torch = float(np.abs(val_raw[:512] - val_torch).max())
    before = ferplus_scores(softmax(val_raw, 1.0), labels, val.votes, tuple(negative))
    ho_scores = ferplus_scores(softmax(ho_logits, temperature), labels, held.votes, tuple(negative))
    if int8 is not None:
        fp32_pred = val_torch.argmax(1)
        int8.update({"calibration": (f"{len(calib)} images of the FER+ train hold-out (never trained on); "
                                     "FER+ validation and FER2013 PublicTest are not used"),
                     "top1_agreement_with_float32_first_512_validation": round(
                         float((val_raw[:512].argmax(1) == fp32_pred).mean()), 4),
                     "max_abs_logit_diff_vs_float32": round(engine_vs_torch, 4)})
    card["temperature"] = round(temperature, 4)
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    engine = ExpressionModel.load(out)
    fer2013 = load_dataset(args.fer2013_dir / "validation.npz")
    res = evaluate(engine, (val.images, val.votes), fer2013, timing_runs=0)
    fp, f13 = res["ferplus"], res["fer2013"]
    speed = time_ms(onnx_path, args.timing_runs)
    text = (f"FER+ train hold-out (a {fraction:.0%} stratified by majority label, seed {seed}, never trained on), "
            "raw pixels")
    neutral = neutral_majority(held)
    reference = neutral_reference(engine, held.images[neutral], neutral_text(text, len(neutral)))
    uncertain = uncertain_thresholds(engine, held, text)
    photos = photo_checks(out)

    n_params = sum(count_params(n) for n in nets)
    prefix = "python -m tools.train.train "
    commands = [prefix + shlex.join(run_flags(shlex.split(c["command"].removeprefix(prefix)))) for c in cks]
    teachers = []
    for c in cks:
        for run in c["args"].get("teacher") or []:
            _, tck = load_run(Path(run))
            teachers.append({"run": run, "arch": tck["args"]["arch"], "epochs": tck["epoch"],
                             "training_command": prefix + shlex.join(run_flags(shlex.split(
                                 tck["command"].removeprefix(prefix)))),
                             "holdout_acc_final": round(tck["history"][-1]["holdout_acc"], 4),
                             "training_epoch_seconds": round(sum(h["seconds"] for h in tck["history"]))})
    train_seconds = sum(h["seconds"] for c in cks for h in c["history"])
    archs = [c["args"]["arch"] for c in cks]
    curves = [{"epoch": [h["epoch"] for h in c["history"]],
               "train_loss": [round(h["loss"], 4) for h in c["history"]],
               "holdout_majority_acc": [round(h["holdout_acc"], 4) for h in c["history"]],
               "ferplus_validation_majority_acc (curve only, never used to choose)":
                   [round(h["val_acc"], 4) for h in c["history"]],
               "seconds": [round(h["seconds"]) for h in c["history"]]} for c in cks]
    distil = a.get("teacher") or []
    arch_text = ((f"mean of the logits of {len(nets)} networks; " if len(nets) > 1 else "")
                 + f"{'/'.join(dict.fromkeys(archs))} ResNet-style backbone (48x48x1 -> 6x6 features) with global "
                 "average pooling and a linear head" + ("; horizontal-flip averaging in the graph" if args.tta else "")
                 + ("; int8 static quantisation (QDQ)" if args.int8 else ""))
    rec = fp["per_class_recall"]
    card.update({
        "description": (f"MindFlow's own FER+ model ({len(labels)} classes): "
                        + (f"ensemble of {len(nets)} compact CNNs" if len(nets) > 1 else "one compact CNN")
                        + (f" distilled from an ensemble of {len(teachers)}" if teachers else "")
                        + f" ({n_params / 1e6:.2f} M parameters), {fp['accuracy'] * 100:.1f} % FER+ validation "
                          f"majority accuracy, about {speed['median']:.1f} ms per face on one CPU thread."),
        "source": ("trained by the MindFlow project with tools/train (MIT) "
                   + (f"by fine-tuning {a['init']} " if a.get("init") else "from scratch ")
                   + "on FER+ (FER2013 Training faces, crowd vote distributions"
                   + ("; a second head on FER2013's own labels of the same faces" if args.aux_mix_choice else "")
                   + "); see extra.training_command"),
        "accuracy": {
            "dataset": (f"FER+ validation (FER2013 PublicTest faces, raw pixels): {fp['n_majority']} of "
                        f"{fp['n_faces']} faces with a majority label by the FER+ paper's rule (top vote over the 10 "
                        "categories; top vote unknown/NF or tied: left out)"),
            "accuracy": round(fp["accuracy"], 4),
            "per_class_recall": {k: (None if v != v else round(v, 4)) for k, v in rec.items()},
            "neutral_read_negative": round(fp["neutral_read_negative"], 4),
            "neutral_faces": fp["neutral_faces"],
            "predicted_negative_share": round(fp["predicted_negative_share"], 4),
            "true_negative_share": round(fp["true_negative_share"], 4),
            "negative_vs_rest_accuracy": round(fp["negative_vs_rest_accuracy"], 4),
            "ece_15_bins": round(fp["ece"], 4), "ece_15_bins_before_calibration": round(before["ece"], 4),
            "nll": round(fp["nll"], 4), "nll_before_calibration": round(before["nll"], 4),
            "vote_cross_entropy": round(fp["vote_cross_entropy"], 4),
            "fer2013_publictest": {
                "dataset": "FER2013 PublicTest (3589 original images) on FER2013's own labels, for comparability",
                "accuracy": round(f13["accuracy"], 4),
                "per_class_recall": {k: round(v, 4) for k, v in f13["per_class_recall"].items()},
                "ece_15_bins": round(f13["ece"], 4),
                "contempt": ("FER2013 has no contempt: the prediction is restricted to its 7 classes (contempt's "
                             "probability dropped, the rest renormalised); counting contempt as wrong instead: "
                             f"{f13['accuracy_unmapped_counted_wrong']:.4f}") if "contempt" in labels else "n/a",
            },
            "calibration_holdout": (f"{len(held)} images: a {fraction:.0%} of FER+ train stratified by majority "
                                    f"label (seed {seed}), never trained on; majority accuracy there "
                                    f"{ho_scores['accuracy']:.4f}, neutral read negative "
                                    f"{ho_scores['neutral_read_negative']:.4f}, predicted negative "
                                    f"{ho_scores['predicted_negative_share']:.4f} vs true "
                                    f"{ho_scores['true_negative_share']:.4f}"),
            "measured_with": ("tools.train.export -> tools.bench_accuracy.evaluate: ExpressionModel.classify_crops "
                              "on the exported ONNX file"),
            "checkpoint_selection": "none: the last epoch of a fixed schedule",
        },
        "parameters": n_params,
        "ms_per_face": round(speed["median"], 3),
        "notes": ("Trained on FER+ vote distributions over FER2013's web photos (48x48 gray) with webcam-like "
                  "augmentation (Haar box jitter as measured, pose, dim light, blur, noise, JPEG); expect lower "
                  "accuracy on faces with unusual lighting or pose. Contempt and disgust are rare in FER+ (under 1 % "
                  "of faces each) and read least reliably. "
                  f"Crop margin {args.crop_margin}: a Haar box on a FER image covers ~96 % of it (measured), so the "
                  "box plus 2 % per side frames a face like FER does."),
        "neutral_reference": reference,
        "uncertain": uncertain,
        "extra": {
            "architecture": arch_text,
            "training_command": commands[0] if len(commands) == 1 else commands,
            "teachers": teachers or None,
            "initialised_from": a.get("init"),
            "fer2013_head": args.aux_mix_choice,
            "distillation": ({"weight": a.get("distill"), "temperature": a.get("distill_temp"),
                              "target": "(1 - weight) * FER+ vote distribution + weight * softmax(mean teacher "
                                        "logits / T), teachers run on the same augmented, mixed batch"}
                             if distil else None),
            "export_command": export_command,
            "training_epoch_seconds": round(train_seconds),
            "training_wall_time": args.wall_time,
            "curves": curves[0] if len(curves) == 1 else curves,
            "holdout": {"dataset": "ferplus", "fraction": fraction, "seed": seed, "images": len(held),
                        "rule": "tools.train.ferplus.holdout_split: stratified by majority label"},
            "holdout_figures": {k: ho_scores[k] for k in ("accuracy", "neutral_read_negative",
                                                          "predicted_negative_share", "true_negative_share", "ece")},
            "training_recipe": {"dataset": "ferplus", "classes": len(labels), "epochs": a["epochs"],
                                "mix_prob": a.get("mix_prob"), "mixup_alpha": a.get("mixup_alpha"),
                                "cutmix_alpha": a.get("cutmix_alpha"), "augment": a.get("augment"),
                                "webcam_augmentation": asdict(WebcamConfig()) if a.get("augment") == "webcam" else None,
                                "lr": a["lr"], "batch": a["batch"], "wd": a["wd"]},
            "temperature_fit": "NLL of the hold-out's majority labels (LBFGS on log T), through the shipped graph",
            "tta_flip_in_graph": bool(args.tta),
            "onnx": {"opset": args.opset, "input": "input", "output": "logits", "dynamic_batch": True,
                     "exporter": f"torch {torch.__version__} torch.onnx.export(dynamo=False)"},
            "parity_max_abs_diff_torch_vs_onnxruntime": parity,
            "engine_vs_torch_max_abs_diff": None if int8 else engine_vs_torch,
            "int8": int8,
            "ms_per_face_measured_with": (f"onnxruntime {__import__('onnxruntime').__version__}, 1 thread, batch 1, "
                                          f"model only, median of {speed['runs']}: {speed}"),
            "photos": photos,
            "data_notice": FERPLUS_NOTICE,
        },
    })
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    (out / "LICENSE").write_text(MIT)
    print(json.dumps({k: card[k] for k in ("accuracy", "temperature", "parameters", "ms_per_face",
                                           "neutral_reference")}, indent=1))
    print(json.dumps({k: card["extra"][k] for k in ("parity_max_abs_diff_torch_vs_onnxruntime",
                                                    "engine_vs_torch_max_abs_diff", "photos", "holdout_figures")},
                     indent=1))
    print("speed", speed)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.train.export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, action="append",
                   help="training run folder (holds last.pt); repeat for an ensemble")
    p.add_argument("--out", type=Path, required=True, help="model folder to write, e.g. models/mindflow-fer-dan")
    p.add_argument("--name", help="card name (default: the folder name)")
    p.add_argument("--display-name", default="")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="the runs' data (default ../shared/data/fer2013, or ../shared/data/ferplus for FER+ runs)")
    p.add_argument("--fer2013-dir", type=Path, default=DEFAULT_DATA,
                   help="FER2013 (PublicTest's own labels, for comparison) when exporting FER+ runs")
    p.add_argument("--tta", action="store_true", help="bake flip averaging into the graph")
    p.add_argument("--crop-margin", type=float, default=0.02,
                   help="fraction of the Haar box per side (0.02: a Haar box on a FER2013 image is ~96 %% of it)")
    p.add_argument("--int8", action="store_true", help="ship a static int8 quantisation (QDQ) of the graph")
    p.add_argument("--int8-calibration", type=int, default=512, help="hold-out images that calibrate --int8")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--timing-runs", type=int, default=3000)
    p.add_argument("--wall-time", default="", help="training wall time to record in the card (free text)")
    p.add_argument("--aux-mix", default="auto",
                   help="runs with a FER2013-label head (--aux-fer2013): its share in the shipped probabilities, a "
                        "number in 0..1 or 'auto' (chosen on the run's FER+ hold-out: tools.train.choose_mix)")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    export_command = "python -m tools.train.export " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))

    args.aux_mix_choice = None
    loaded = []
    for run in args.run:
        net, ck = load_run(run)
        if getattr(net, "num_classes", None) is not None:         # a FER2013-label head beside the FER+ one
            if args.aux_mix == "auto":
                from .choose_mix import choose, table
                rows = table(run)
                pick = choose(rows)
                args.aux_mix_choice = {"mix": pick["alpha"], "chosen": pick, "table": rows,
                                       "rule": "tools.train.choose_mix on the FER+ train hold-out: the highest "
                                               "negative recall with neutral faces read negative <= 8 % and "
                                               "majority accuracy at most 0.5 points under no mix"}
                mix = pick["alpha"]
            else:
                mix = float(args.aux_mix)
                args.aux_mix_choice = {"mix": mix, "rule": "given on the command line"}
            net, ck = load_run(run, aux_mix=mix)
            print(f"{run}: FER2013 head mixed in at {mix:.2f}")
        loaded.append((net, ck))
    nets, cks = [n for n, _ in loaded], [c for _, c in loaded]
    a = cks[0]["args"]
    for run, other in zip(args.run[1:], cks[1:]):
        if (other["args"]["holdout"], holdout_seed(other["args"])) != (a["holdout"], holdout_seed(a)):
            raise SystemExit(f"{run} kept another calibration hold-out than {args.run[0]} "
                             "(train ensemble members with the same --holdout and --holdout-seed)")
    net = nets[0] if len(nets) == 1 else MeanLogits(nets).eval()
    model = FlipAverage(net).eval() if args.tta else net
    datasets = {c["args"].get("dataset", "fer2013") for c in cks}
    if len(datasets) > 1 or len({len(run_labels(c["args"])) for c in cks}) > 1:
        raise SystemExit("ensemble members were trained on different data sets or label sets")
    if datasets == {"ferplus"}:
        return export_ferplus(args, nets, cks, model, export_command)
    if args.data_dir is None:
        args.data_dir = DEFAULT_DATA
    train_all = load_npz(args.data_dir / "train.npz")
    test = load_npz(args.data_dir / "validation.npz")
    _, ho_idx = stratified_holdout(train_all.labels, a["holdout"], holdout_seed(a))
    ho_y = train_all.labels[ho_idx]
    te_logits = predict(model, test.images)

    # --- ONNX (float32), parity with torch ---
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / "model.onnx"
    fp32_path = out / "model-fp32.onnx" if args.int8 else onnx_path
    torch.onnx.export(model, torch.zeros(1, 1, 48, 48), str(fp32_path), dynamo=False, opset_version=args.opset,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, do_constant_folding=True)
    import onnx
    onnx.checker.check_model(onnx.load(str(fp32_path)))
    sess = ort_session(fp32_path, 2)
    x_par = normalise(test.images[:512])
    ort_batch = sess.run(None, {"input": x_par})[0]
    ort_one = np.concatenate([sess.run(None, {"input": x_par[i:i + 1]})[0] for i in range(64)])
    parity = float(max(np.abs(ort_batch - te_logits[:512]).max(), np.abs(ort_one - te_logits[:64]).max()))
    if parity > 1e-4:
        raise SystemExit(f"torch vs onnxruntime differ by {parity:.3g} (> 1e-4): the export is wrong, not shipped")
    int8 = None
    if args.int8:
        calib = train_all.images[ho_idx][:args.int8_calibration]
        int8 = quantize_int8(fp32_path, onnx_path, calib, out / "int8-work")
        int8["calibration"] = (f"{len(calib)} images of the calibration hold-out (FER2013 Training, never trained "
                               "on); PublicTest is not used")
        fp32_path.unlink()

    # --- through the engine ---
    from obs_mindflow.engine.model import ExpressionModel
    card = {
        "schema": 1, "name": args.name or out.name, "display_name": args.display_name, "description": "",
        "file": "model.onnx", "labels": list(LABELS), "negative_labels": NEGATIVE,
        "input": {"layout": "NCHW", "height": 48, "width": 48, "channels": "gray", "scale": 1 / 255,
                  "mean": [MEAN], "std": [STD], "crop_margin": args.crop_margin,
                  **({"equalize": True} if a.get("equalize") else {})},
        "output": "logits", "temperature": 1.0, "license": "MIT", "license_files": ["LICENSE"],
        "source": "tools/train (provisional card, rewritten below)", "accuracy": {},
    }
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    engine = ExpressionModel.load(out)

    def engine_logits(images: np.ndarray) -> np.ndarray:
        return np.concatenate([engine.infer(engine.preprocess_crops(list(images[i:i + 256])))
                               for i in range(0, len(images), 256)])

    raw = engine_logits(test.images)
    ho_logits = engine_logits(train_all.images[ho_idx])       # the shipped graph's logits: int8 ones with --int8
    temperature = fit_temperature(ho_logits, ho_y)
    card["temperature"] = round(temperature, 4)
    engine_vs_torch = float(np.abs(raw - te_logits).max())
    if int8 is not None:
        fp32_pred = te_logits.argmax(1)
        int8.update({"publictest_accuracy_float32": round(float((fp32_pred == test.labels).mean()), 4),
                     "top1_agreement_with_float32": round(float((raw.argmax(1) == fp32_pred).mean()), 4),
                     "max_abs_logit_diff_vs_float32": round(engine_vs_torch, 4)})
    y = test.labels
    p1, pT = softmax(raw, 1.0), softmax(raw, temperature)
    pred = raw.argmax(1)
    acc = float((pred == y).mean())
    recall = {l: round(float((pred[y == i] == i).mean()), 4) for i, l in enumerate(LABELS)}
    neg = np.isin(y, [LABELS.index(l) for l in NEGATIVE]) == np.isin(pred, [LABELS.index(l) for l in NEGATIVE])
    ho_acc = float((ho_logits.argmax(1) == ho_y).mean())
    speed = time_ms(onnx_path, args.timing_runs)
    photos = photo_checks(out)
    n_params = sum(count_params(n) for n in nets)
    curves = [{str(h["epoch"]): round(h["val_acc"], 4) for h in c["history"]} for c in cks]
    prefix = "python -m tools.train.train "    # older checkpoints kept --resume/--stop-after in the command
    commands = [prefix + shlex.join(run_flags(shlex.split(c["command"].removeprefix(prefix)))) for c in cks]
    train_seconds = sum(h["seconds"] for c in cks for h in c["history"])
    archs = [c["args"]["arch"] for c in cks]
    seeds = [c["args"]["seed"] for c in cks]
    differ = [w for w, v in (("architectures", archs), ("seeds", seeds)) if len(set(v)) > 1]
    members = "" if len(nets) == 1 else (f"mean of the logits of {len(nets)} such networks"
                                         + (f" ({' and '.join(differ)} differ)" if differ else "") + "; ")

    arch_text = (members + f"{'/'.join(dict.fromkeys(archs))} ResNet-style backbone (48x48x1 -> 6x6 features)"
                 + (f" with {a['num_head']} DAN cross-attention heads (spatial + channel attention, "
                    + ("log-softmax fusion across heads" if a.get("fusion") == "logsoftmax"
                       else "mean fusion of the heads")
                    + ", Linear + BatchNorm1d), trained with DAN's affinity and "
                    "partition losses" if a["head"] == "dan" else " with global average pooling and a linear head")
                 + ("; horizontal-flip averaging in the graph" if args.tta else "")
                 + ("; int8 static quantisation (QDQ)" if args.int8 else ""))
    card.update({
        "display_name": args.display_name or card["name"],
        "description": (f"MindFlow's own FER2013 model: "
                        + (f"ensemble of {len(nets)} compact CNNs" if len(nets) > 1 else "compact CNN")
                        + f" ({n_params / 1e6:.2f} M parameters"
                        + (", DAN-style attention" if a["head"] == "dan" else "")
                        + f"), {acc * 100:.1f} % on FER2013 PublicTest, about {speed['median']:.1f} ms per face "
                          "on one CPU thread."),
        "source": ("trained by the MindFlow project with tools/train (MIT) from scratch on FER2013 Training; "
                   "see extra.training_command"),
        "accuracy": {
            "dataset": "FER2013 PublicTest (3589 original images, without the 448 augmented disgust copies)",
            "accuracy": round(acc, 4), "per_class_recall": recall,
            "negative_vs_rest_accuracy": round(float(neg.mean()), 4),
            "ece_15_bins": round(ece(pT, y), 4), "ece_15_bins_before_calibration": round(ece(p1, y), 4),
            "nll": round(nll(pT, y), 4), "nll_before_calibration": round(nll(p1, y), 4),
            "calibration_holdout": (f"{len(ho_y)} images: a stratified {a['holdout']:.0%} of FER2013 Training "
                                    f"(seed {holdout_seed(a)}), never trained on; accuracy there {ho_acc:.4f}"),
            "measured_with": "tools.train.export: ExpressionModel.classify_crops on the exported ONNX file",
            "checkpoint_selection": "none: the last epoch of a fixed schedule",
        },
        "parameters": n_params,
        "ms_per_face": round(speed["median"], 3),
        "notes": ("Trained on FER2013 (web photos, 48x48 gray, frontal-ish faces): expect lower accuracy on webcam "
                  "faces with unusual lighting or pose; disgust and fear are the weakest classes. "
                  f"Crop margin {args.crop_margin}: a Haar box on a FER2013 image covers ~96 % of it, so the box "
                  "itself plus 2 % per side frames a face like FER2013 does."),
        "extra": {
            "architecture": arch_text,
            "training_command": commands[0] if len(commands) == 1 else commands,
            "export_command": export_command,
            "training_epoch_seconds": round(train_seconds),
            "training_wall_time": args.wall_time,
            "val_acc_per_epoch": curves[0] if len(curves) == 1 else curves,
            "holdout_acc_final": round(ho_acc, 4),
            "temperature_fit": "NLL on the calibration hold-out (LBFGS on log T)",
            "tta_flip_in_graph": bool(args.tta),
            "onnx": {"opset": args.opset, "input": "input", "output": "logits", "dynamic_batch": True,
                     "exporter": f"torch {torch.__version__} torch.onnx.export(dynamo=False)"},
            "parity_max_abs_diff_torch_vs_onnxruntime": parity,
            "engine_vs_torch_max_abs_diff": None if int8 else engine_vs_torch,
            "int8": int8,
            "ms_per_face_measured_with": (f"onnxruntime {__import__('onnxruntime').__version__}, 1 thread, batch 1, "
                                          f"model only, median of {speed['runs']}: {speed}"),
            "photos": photos,
            "data_notice": DATA_NOTICE,
        },
    })
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    (out / "LICENSE").write_text(MIT)
    print(json.dumps({k: card[k] for k in ("accuracy", "temperature", "parameters", "ms_per_face")}, indent=1))
    print(json.dumps({k: card["extra"][k] for k in ("parity_max_abs_diff_torch_vs_onnxruntime",
                                                    "engine_vs_torch_max_abs_diff", "photos")}, indent=1))
    print("speed", speed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
