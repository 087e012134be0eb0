"""Two separately trained networks in one ONNX graph: a FER+ model (8 classes) and a FER2013-label model (7 classes).

    python -m tools.train.ensemble table  [--ferplus DIR] [--fer2013 DIR] [--json OUT]
    python -m tools.train.ensemble build  --alpha A [--mode arith|geo] --out DIR [--ferplus DIR] [--fer2013 DIR]

FER+'s crowd votes call many faces neutral that FER2013's labeller called sad, angry or afraid; a FER+-trained
network reads a talking face's subtle anger or sadness as neutral, a FER2013-trained one sees it but reads many
calm faces as negative. Both read the same crop (their cards' ``input`` blocks must be equal: size, mean/std,
crop margin, equalisation), so one graph can run both and mix them, each side with its own softmax and its card's
temperature, FER2013's 7 labels mapped onto FER+'s 8 (:data:`LABELS8` is FER2013's order plus contempt, which gets
nothing from the FER2013 side):

* ``arith``: ``p = (1 − α) · p_ferplus + α · M(p_fer2013)`` — the graph outputs probabilities;
* ``geo``:   ``log p = (1 − α) · log p_ferplus + α · M(log p_fer2013)`` on the 7 shared labels, contempt keeps
  FER+'s own log-probability, renormalised — the graph outputs these log-probabilities as logits (temperature 1).

``table`` prints, for α in 0, 0.05 … 1, the figures of ``tools.train.choose_mix`` (majority accuracy, neutral faces
read negative, negative recall, balanced recall) on two FER+ hold-outs and marks the α that rule chooses (the
highest negative recall with neutral read negative ≤ 8 % and accuracy at most 0.5 points below α = 0):

* the FER+ model's hold-out (``ferplus-holdout``: never trained on by the FER+ network, but the FER2013 network
  trained on about 90 % of these faces with FER2013's labels, so its side is optimistic there);
* ``both``: the faces of that hold-out that the FER2013 network's own hold-out also kept out (matched by content,
  :func:`tools.train.reference.match_fer2013_to_ferplus`): never trained on by either network, but about a tenth
  of the size.

``build`` writes a model folder (model.onnx, card.json, LICENSE, README.md) whose card has the FER+ card's input,
labels and negative labels, and a ``neutral_reference`` and ``uncertain`` thresholds measured on the FER+ model's
hold-out (the ``both`` faces are too few: 89 neutral faces, and under 30 readings below any threshold).
Nothing here reads or chooses anything on real video (``tools.bench_realvideo`` only measures).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from .ferplus import DEFAULT_FERPLUS, HOLDOUT_FRACTION, LABELS, LABELS8, holdout_split, load_ferplus
from .choose_mix import NEGATIVE, choose

REPO = Path(__file__).resolve().parents[2]
DEFAULT_FERPLUS_MODEL = REPO / "models" / "mindflow-ferplus-r3d"
DEFAULT_FER2013_MODEL = REPO / "models" / "mindflow-fer-r3d-r3"
DEFAULT_FER2013_DATA = Path("..") / "shared" / "data" / "fer2013"
MODES = ("arith", "geo")
GRID = tuple(round(x, 2) for x in np.arange(0.0, 1.001, 0.05))
LOG_FLOOR = 1e-12


def _load(folder: Path) -> tuple[dict, "object"]:
    import onnx
    card = json.loads((Path(folder) / "card.json").read_text(encoding="utf-8"))
    if card.get("output") != "logits":
        raise ValueError(f"{folder}: the ensemble needs a model that outputs logits, the card says "
                         f"{card.get('output')!r}")
    return card, onnx.load(str(Path(folder) / card["file"]))


def check_pair(fp_card: dict, f13_card: dict) -> None:
    """Raise ``ValueError`` unless the two cards read the same crop and have the labels the mix assumes."""
    if fp_card["input"] != f13_card["input"]:
        raise ValueError(f"the two models read different crops ({fp_card['input']} vs {f13_card['input']}): one "
                         "graph cannot feed both; run them apart on their own crops")
    if tuple(fp_card["labels"]) != LABELS8 or tuple(f13_card["labels"]) != LABELS:
        raise ValueError(f"expected labels {LABELS8} and {LABELS}, got {fp_card['labels']} and {f13_card['labels']}")


def mix(p_fp: np.ndarray, p_f13: np.ndarray, alpha: float, mode: str) -> np.ndarray:
    """The ensemble's probabilities (N, 8) from both sides' calibrated probabilities — what the graph computes."""
    if mode == "arith":
        p = (1 - alpha) * p_fp
        p[:, :7] += alpha * p_f13
        return p
    lp_fp = np.log(np.maximum(p_fp.astype(np.float64), LOG_FLOOR))
    lp_13 = np.log(np.maximum(p_f13.astype(np.float64), LOG_FLOOR))
    z = lp_fp.copy()
    z[:, :7] = (1 - alpha) * lp_fp[:, :7] + alpha * lp_13
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def compose(fp_model, f13_model, t_fp: float, t_f13: float, alpha: float, mode: str):
    """One ONNX graph: both networks on the same ``input``, each side's softmax at its temperature, mixed."""
    import onnx
    from onnx import TensorProto, compose as oc, helper, numpy_helper

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if {(o.domain, o.version) for o in fp_model.opset_import if o.domain in ("", "ai.onnx")} != \
            {(o.domain, o.version) for o in f13_model.opset_import if o.domain in ("", "ai.onnx")}:
        raise ValueError("the two graphs use different ONNX opsets")
    a = oc.add_prefix(fp_model, "fp/")
    b = oc.add_prefix(f13_model, "f13/")
    in_name = fp_model.graph.input[0].name
    for g, prefix in ((a.graph, "fp/"), (b.graph, "f13/")):
        for n in g.node:
            n.input[:] = [in_name if x == prefix + in_name else x for x in n.input]
    m = np.zeros((7, 8), np.float32)
    m[np.arange(7), np.arange(7)] = 1.0
    w_fp = np.full((1, 8), 1 - alpha, np.float32)
    if mode == "geo":
        w_fp[0, 7] = 1.0                                   # contempt: FER+'s own log-probability
    consts = {"ens/t_fp": np.array(t_fp, np.float32), "ens/t_f13": np.array(t_f13, np.float32),
              "ens/map": m, "ens/w_fp": w_fp, "ens/alpha": np.array(alpha, np.float32)}
    norm = "Softmax" if mode == "arith" else "LogSoftmax"
    out_name = "probabilities" if mode == "arith" else "logits"
    fp_out, f13_out = "fp/" + fp_model.graph.output[0].name, "f13/" + f13_model.graph.output[0].name
    nodes = [helper.make_node("Div", [fp_out, "ens/t_fp"], ["ens/z_fp"]),
             helper.make_node("Div", [f13_out, "ens/t_f13"], ["ens/z_f13"]),
             helper.make_node(norm, ["ens/z_fp"], ["ens/p_fp"], axis=1),
             helper.make_node(norm, ["ens/z_f13"], ["ens/p_f13"], axis=1),
             helper.make_node("MatMul", ["ens/p_f13", "ens/map"], ["ens/p_f13_8"]),
             helper.make_node("Mul", ["ens/p_fp", "ens/w_fp"], ["ens/a"]),
             helper.make_node("Mul", ["ens/p_f13_8", "ens/alpha"], ["ens/b"]),
             helper.make_node("Add", ["ens/a", "ens/b"], [out_name])]
    graph = helper.make_graph(
        list(a.graph.node) + list(b.graph.node) + nodes, "mindflow_ensemble",
        [fp_model.graph.input[0]],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["batch", 8])],
        list(a.graph.initializer) + list(b.graph.initializer)
        + [numpy_helper.from_array(v, k) for k, v in consts.items()],
        value_info=list(a.graph.value_info) + list(b.graph.value_info))
    opsets = {o.domain: o.version for o in list(fp_model.opset_import) + list(f13_model.opset_import)}
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()],
                              producer_name="mindflow tools.train.ensemble")
    model.ir_version = fp_model.ir_version
    onnx.checker.check_model(model)
    return model


def held_sets(ferplus_dir: Path, fer2013_dir: Path, fp_card: dict, f13_seed: int):
    """``{"ferplus-holdout": FerPlus, "both": FerPlus}`` (see the module docstring)."""
    from .data import load_npz, stratified_holdout
    from .reference import match_fer2013_to_ferplus

    h = fp_card["extra"]["holdout"]
    train = load_ferplus(Path(ferplus_dir) / "train.npz")
    _, ho = holdout_split(train, float(h["fraction"]), int(h["seed"]))
    f13 = load_npz(Path(fer2013_dir) / "train.npz")
    _, ho13 = stratified_holdout(f13.labels, HOLDOUT_FRACTION, f13_seed)
    match = match_fer2013_to_ferplus(f13.images[ho13], train.images)
    both = np.intersect1d(ho, match[match >= 0])
    return {"ferplus-holdout": train.subset(ho), "both": train.subset(both)}


def probabilities(folder: Path, images: np.ndarray, batch: int = 256) -> np.ndarray:
    """The engine's calibrated probabilities (``ExpressionModel.classify_crops``, 1 thread) of one model folder."""
    from obs_mindflow.engine.model import ExpressionModel
    model = ExpressionModel.load(folder)
    return np.concatenate([model.classify_crops(list(images[i:i + batch])) for i in range(0, len(images), batch)])


def rows_for(p_fp: np.ndarray, p_f13: np.ndarray, majority: np.ndarray, mode: str, grid=GRID) -> list[dict]:
    """``tools.train.choose_mix``'s figures for each α of ``grid`` (majority labels index :data:`LABELS8`)."""
    neg = np.array([lab in NEGATIVE for lab in LABELS8])
    neutral = LABELS8.index("neutral")
    y = majority
    ok = y >= 0
    rows = []
    for alpha in grid:
        pred = mix(p_fp, p_f13, alpha, mode).argmax(1)
        recalls = [float((pred[y == c] == c).mean()) for c in range(8) if (y == c).sum() >= 20]
        rows.append({"alpha": alpha, "majority_accuracy": float((pred[ok] == y[ok]).mean()),
                     "neutral_read_negative": float(neg[pred[y == neutral]].mean()),
                     "negative_recall": float(neg[pred[ok & neg[np.maximum(y, 0)]]].mean()),
                     "balanced_recall": float(np.mean(recalls)), "faces": int(ok.sum())})
    return rows


def print_table(name: str, rows: list[dict], pick: dict) -> None:
    print(f"\n{name} ({rows[0]['faces']} faces with a majority label)")
    print(f"{'alpha':>6s} {'accuracy':>9s} {'neutral->neg':>13s} {'neg recall':>11s} {'balanced':>9s}")
    for r in rows:
        mark = "  <- chosen" if r is pick else ""
        print(f"{r['alpha']:6.2f} {r['majority_accuracy']:9.4f} {r['neutral_read_negative']:13.4f} "
              f"{r['negative_recall']:11.4f} {r['balanced_recall']:9.4f}{mark}")


def _f13_seed(f13_card: dict) -> int:
    """The FER2013 model's hold-out seed, as its neutral reference records it."""
    import re
    text = f13_card.get("neutral_reference", {}).get("dataset", "")
    found = re.search(r"seed (\d+)", text)
    if not found or "FER2013 Training hold-out" not in text:
        raise ValueError("the FER2013 model's card does not say which FER2013 Training hold-out it kept out "
                         "(neutral_reference.dataset); pass --fer2013-seed")
    return int(found.group(1))


def time_ms(path: Path, runs: int = 500) -> float:
    """Median ms per face: onnxruntime, 1 thread, batch 1 (as ``tools.train.export`` times a model)."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, 1, 48, 48)).astype(np.float32)
    name = s.get_inputs()[0].name
    for _ in range(20):
        s.run(None, {name: x})
    t = []
    for _ in range(runs):
        t0 = time.perf_counter()
        s.run(None, {name: x})
        t.append(time.perf_counter() - t0)
    return 1000 * float(np.median(t))


def build_folder(out: Path, fp_dir: Path, f13_dir: Path, alpha: float, mode: str, held) -> dict:
    """Write the ensemble's model folder; returns its card."""
    from .reference import neutral_reference, neutral_text, uncertain_thresholds
    from .ferplus import neutral_majority
    from obs_mindflow.engine.model import ExpressionModel
    import onnx

    fp_card, fp_model = _load(fp_dir)
    f13_card, f13_model = _load(f13_dir)
    check_pair(fp_card, f13_card)
    model = compose(fp_model, f13_model, fp_card["temperature"], f13_card["temperature"], alpha, mode)
    out.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out / "model.onnx"))
    shutil.copyfile(Path(fp_dir) / "LICENSE", out / "LICENSE")
    name = out.name
    mix_text = (f"(1 - {alpha:g}) * p_FER+ + {alpha:g} * p_FER2013" if mode == "arith" else
                f"exp((1 - {alpha:g}) * log p_FER+ + {alpha:g} * log p_FER2013), renormalised")
    card = {
        "schema": 1, "name": name,
        "display_name": f"MindFlow FER+ r3d + FER2013 r3d+r3, {mode} α {alpha:g} (8 classes)",
        "description": f"Two separately trained MindFlow models in one graph: {fp_card['name']} (FER+ votes) and "
                       f"{f13_card['name']} (FER2013 labels), probabilities mixed {mix_text}.",
        "file": "model.onnx", "labels": list(LABELS8), "negative_labels": fp_card["negative_labels"],
        "input": fp_card["input"], "output": "probabilities" if mode == "arith" else "logits",
        "temperature": 1.0, "license": "MIT", "license_files": ["LICENSE"],
        "source": f"composed by tools.train.ensemble from {fp_card['name']} and {f13_card['name']}",
        "accuracy": {"dataset": "see tools.bench_accuracy"},
        "parameters": int(fp_card["parameters"]) + int(f13_card["parameters"]),
        "ms_per_face": round(time_ms(out / "model.onnx"), 3),
        "notes": "Each side keeps its own card's temperature; contempt comes from the FER+ side only.",
        "extra": {"ensemble": {"ferplus": fp_card["name"], "fer2013": f13_card["name"], "alpha": alpha,
                               "mode": mode, "temperatures": [fp_card["temperature"], f13_card["temperature"]]}},
    }
    (out / "card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "README.md").write_text(f"# {card['display_name']}\n\n{card['description']}\n", encoding="utf-8")
    engine = ExpressionModel.load(out)
    text = (f"FER+ train hold-out of {fp_card['name']} (seed {fp_card['extra']['holdout']['seed']}), raw pixels; "
            f"{f13_card['name']} trained on about 90 % of these faces (FER2013 labels)")
    idx = neutral_majority(held)
    card["neutral_reference"] = neutral_reference(engine, held.images[idx], neutral_text(text, len(idx)))
    card["uncertain"] = uncertain_thresholds(engine, held, text)
    (out / "card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return card


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.train.ensemble", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=("table", "build"))
    p.add_argument("--ferplus", type=Path, default=DEFAULT_FERPLUS_MODEL, help="the FER+ model folder")
    p.add_argument("--fer2013", type=Path, default=DEFAULT_FER2013_MODEL, help="the FER2013-label model folder")
    p.add_argument("--mode", choices=MODES, default="arith", help="build: how to mix (table prints both)")
    p.add_argument("--alpha", type=float, help="build: the FER2013 side's weight")
    p.add_argument("--out", type=Path, help="build: the model folder to write")
    p.add_argument("--fer2013-seed", type=int, help="the FER2013 model's hold-out seed (default: from its card)")
    p.add_argument("--ferplus-dir", type=Path, default=DEFAULT_FERPLUS)
    p.add_argument("--fer2013-dir", type=Path, default=DEFAULT_FER2013_DATA)
    p.add_argument("--ceiling", type=float, default=0.08)
    p.add_argument("--max-drop", type=float, default=0.005)
    p.add_argument("--json", type=Path, help="table: write the tables here")
    a = p.parse_args(argv)
    fp_card, _ = _load(a.ferplus)
    f13_card, _ = _load(a.fer2013)
    check_pair(fp_card, f13_card)
    seed = a.fer2013_seed if a.fer2013_seed is not None else _f13_seed(f13_card)
    sets = held_sets(a.ferplus_dir, a.fer2013_dir, fp_card, seed)
    if a.command == "build":
        if a.alpha is None or a.out is None:
            p.error("build needs --alpha and --out")
        card = build_folder(a.out, a.ferplus, a.fer2013, a.alpha, a.mode, sets["ferplus-holdout"])
        print(json.dumps({k: card[k] for k in ("name", "ms_per_face", "neutral_reference", "uncertain")}, indent=1))
        return 0
    out = {}
    for name, held in sets.items():
        p_fp, p_13 = probabilities(a.ferplus, held.images), probabilities(a.fer2013, held.images)
        y = held.majority()
        for mode in MODES:
            rows = rows_for(p_fp, p_13, y, mode)
            pick = choose(rows, a.ceiling, a.max_drop)
            print_table(f"{name}, {mode}", rows, pick)
            out[f"{name}/{mode}"] = {"rows": rows, "chosen": pick}
    if a.json:
        a.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
