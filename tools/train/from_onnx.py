"""Rebuild a trained run from a shipped ONNX model of ``tools.train.export`` (plain head), to fine-tune it.

    python -m tools.train.from_onnx --model models/mindflow-ferplus-r3d --out runs/ferplus_r3d_from_onnx \
        [--arch r3d] [--member K] [--check ../shared/data/ferplus/validation.npz]

The training checkpoints of a shipped model are not kept in the repository, only its graph. ``export`` folds each
BatchNorm into the convolution before it and the int8 graph stores the weights quantised (QDQ, per channel), so the
weights come back as ``scale · (q − zero_point)`` with the folded bias; each BatchNorm of the rebuilt network is set
to the identity plus that bias (mean 0, variance 1 − ε, γ 1, β the bias). Such a network must be fine-tuned with
its BatchNorm statistics frozen (``train --init RUN --freeze-bn``): batch statistics would undo the folding.

An ensemble's graph (``export --run A --run B``) holds each network under ``/nets.K/``: ``--member K`` rebuilds the
K-th (its training command is the card's K-th). A FER2013 network rebuilt so can start a FER+ run (``train --dataset
ferplus --init RUN``: its 7 head rows carry over, contempt's starts from scratch).

The run folder gets a ``last.pt`` in ``tools.train.train``'s format with the arguments of the card's training
command (so ``--init`` checks the calibration hold-out as for any run). ``--check`` compares the rebuilt network
(float) with onnxruntime on the shipped graph over a data set: the share of faces with the same top label and the
largest logit difference (int8 rounding makes them differ slightly).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

from .nets import build
from .train import parse_args as train_args
from .train import resolve_defaults


def dequantized(model_path: Path, member: int | None = None) -> dict[str, np.ndarray]:
    """Every weight the graph's convolutions and Gemm read, dequantized, keyed by the module path in the node name
    (``features.body.2.conv1``, ``fc``): ``{path + ".weight": …, path + ".bias": …}``. ``member``: in an ensemble's
    graph (``export --run A --run B``: nodes ``/nets.K/…``), only network K's weights."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(model_path))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    dq = {n.output[0]: n for n in m.graph.node if n.op_type == "DequantizeLinear"}
    same = {n.output[0]: n.input[0] for n in m.graph.node if n.op_type == "Identity"}   # a weight stored once

    def value(name: str) -> np.ndarray:
        while name in same:
            name = same[name]
        if name in inits:
            return inits[name].astype(np.float32)
        node = dq[name]
        q = inits[node.input[0]].astype(np.float32)
        scale = inits[node.input[1]].astype(np.float32)
        zero = inits[node.input[2]].astype(np.float32) if len(node.input) > 2 else np.zeros_like(scale)
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if scale.ndim == 1 and scale.size > 1:
            shape = [1] * q.ndim
            shape[axis] = -1
            scale, zero = scale.reshape(shape), zero.reshape(shape)
        return (q - zero) * scale

    out = {}
    for n in m.graph.node:
        if n.op_type not in ("Conv", "Gemm"):
            continue
        parts = [p for p in n.name.split("/") if p]          # /net/features/body/body.2/conv1/Conv
        path = ".".join(p.split(".")[-1] if i and p.startswith(parts[i - 1] + ".") else p
                        for i, p in enumerate(parts[:-1]))
        path = path.removeprefix("net.")
        if member is not None:
            if not path.startswith(f"nets.{member}."):
                continue
            path = path.removeprefix(f"nets.{member}.")
        elif path.startswith("nets."):
            raise SystemExit(f"{model_path} is an ensemble of networks: choose one with --member")
        out[path + ".weight"] = value(n.input[1])
        out[path + ".bias"] = value(n.input[2]) if len(n.input) > 2 else None
    return out


def rebuild(model_dir: Path, arch: str, member: int | None = None) -> torch.nn.Module:
    card = json.loads((model_dir / "card.json").read_text())
    weights = dequantized(model_dir / card.get("file", "model.onnx"), member)
    net = build(arch, "plain", num_classes=len(card["labels"]))
    state = net.state_dict()
    new = {}
    convs = {k[:-len(".weight")] for k, v in state.items() if k.endswith(".weight") and v.ndim == 4}
    for conv in sorted(convs):
        key = conv
        if key not in {k[:-len(".weight")] for k in weights}:
            raise SystemExit(f"{model_dir}: no weights for {conv} in the graph (another architecture than {arch}?)")
        w, b = weights[key + ".weight"], weights[key + ".bias"]
        if tuple(w.shape) != tuple(state[conv + ".weight"].shape):
            raise SystemExit(f"{conv}: graph {w.shape} vs {arch} {tuple(state[conv + '.weight'].shape)}")
        new[conv + ".weight"] = torch.from_numpy(np.ascontiguousarray(w))
        bn = _bn_of(conv, state)
        c = w.shape[0]
        eps = 1e-5
        new[bn + ".weight"] = torch.ones(c)
        new[bn + ".bias"] = torch.from_numpy(b if b is not None else np.zeros(c, np.float32))
        new[bn + ".running_mean"] = torch.zeros(c)
        new[bn + ".running_var"] = torch.full((c,), 1 - eps)
        new[bn + ".num_batches_tracked"] = torch.zeros((), dtype=torch.long)
    new["fc.weight"] = torch.from_numpy(weights["fc.weight"].T.copy() if weights["fc.weight"].shape[0] !=
                                        state["fc.weight"].shape[0] else weights["fc.weight"])
    new["fc.bias"] = torch.from_numpy(weights["fc.bias"])
    missing = set(state) - set(new)
    if missing:
        raise SystemExit(f"rebuilt network lacks {sorted(missing)}")
    net.load_state_dict(new)
    return net.eval()


def _bn_of(conv: str, state: dict) -> str:
    """The BatchNorm that follows ``conv`` in :mod:`tools.train.nets`."""
    if conv.endswith(".conv1"):
        return conv[:-5] + "bn1"
    if conv.endswith(".conv2"):
        return conv[:-5] + "bn2"
    head, last = conv.rsplit(".", 1)                 # body.0.0 → body.0.1, short.0 → short.1
    return f"{head}.{int(last) + 1}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.train.from_onnx", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, required=True, help="a model folder of tools.train.export (plain head)")
    p.add_argument("--out", type=Path, required=True, help="run folder to write (last.pt)")
    p.add_argument("--arch", default=None, help="the backbone (default: from the card's training command)")
    p.add_argument("--member", type=int, default=None,
                   help="an ensemble's graph (export --run A --run B): rebuild its K-th network (0 = the first --run)")
    p.add_argument("--check", type=Path, help="an npz with images (N, 48, 48) to compare against onnxruntime")
    a = p.parse_args(argv)
    card = json.loads((a.model / "card.json").read_text())
    command = card.get("extra", {}).get("training_command", "")
    if isinstance(command, list):                   # an ensemble: one training command per network
        if a.member is None or not 0 <= a.member < len(command):
            raise SystemExit(f"{a.model} is an ensemble of {len(command)} networks: choose one with --member "
                             f"0..{len(command) - 1}")
        command = command[a.member]
    if not command.startswith("python -m tools.train.train "):
        raise SystemExit(f"{a.model}/card.json has no tools.train.train training command: not a MindFlow export")
    args = resolve_defaults(train_args(shlex.split(command)[3:]))
    if a.arch:
        args.arch = a.arch
    if args.head != "plain":
        raise SystemExit("only plain-head models can be rebuilt")
    net = rebuild(a.model, args.arch, a.member)
    if a.check:
        import onnxruntime as ort

        from .export import normalise
        images = np.load(a.check)["images"][:2000]
        x = normalise(images)
        sess = ort.InferenceSession(str(a.model / card.get("file", "model.onnx")), providers=["CPUExecutionProvider"])
        ref = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        with torch.no_grad():
            xt = torch.from_numpy(x)
            got = 0.5 * (net(xt) + net(torch.flip(xt, dims=[3]))).numpy()
        print(f"rebuilt vs onnxruntime on {len(x)} faces: same top label {np.mean(ref.argmax(1) == got.argmax(1)):.4f}"
              f", max |Δlogit| {np.abs(ref - got).max():.3f}, mean {np.abs(ref - got).mean():.4f}")
    a.out.mkdir(parents=True, exist_ok=True)
    plain = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    ck = {"model": net.state_dict(), "optimizer": None, "scheduler": None, "affinity": None, "epoch": args.epochs,
          "history": [{"epoch": args.epochs, "holdout_acc": float("nan")}], "args": plain,
          "command": command, "rebuilt_from": str(a.model)}
    torch.save(ck, a.out / "last.pt")
    print(f"wrote {a.out / 'last.pt'} ({args.arch}/plain, {len(card['labels'])} classes, hold-out seed "
          f"{args.holdout_seed or args.seed})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
