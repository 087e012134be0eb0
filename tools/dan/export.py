"""Export a DAN checkpoint (``.pth``) to a MindFlow model folder: ``model.onnx`` + ``card.json`` + ``README.md``.

Usage::

    python -m tools.dan.export CHECKPOINT.pth --labels affectnet8|affectnet7|rafdb --out models/dan-affectnet8/

Reads the reference checkpoint format (a dict with ``model_state_dict``, ``iter``, ``optimizer_state_dict``), a bare
state dict or a dict with ``state_dict``, each with or without DataParallel's ``module.`` prefix, in torch.save's zip
or legacy format, with ``weights_only=True`` (``--trust-checkpoint`` lifts that for files holding other Python
objects). Keys and shapes must match DAN exactly (see ``model.py``); the class count comes from ``fc.weight`` and
the head count from the ``cat_head{i}`` keys.
The ONNX model takes ``input`` ``(N, 3, 224, 224)`` float32 (RGB, ImageNet-normalised; ``N`` dynamic) and returns
``logits`` ``(N, C)`` — the card says ``"output": "logits"`` and the engine applies the softmax. Before the folder
is written, torch and onnxruntime are compared on random inputs (batch 1 and 3).

Exit status: 0 success; 2 bad arguments or checkpoint (nothing written); 3 parity check failed (nothing written).
"""

from __future__ import annotations

import argparse
import json
import pickle
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from obs_mindflow.engine.digest import file_sha256

from .model import DAN, DANLogits, IMAGENET_MEAN, IMAGENET_STD, INPUT_SIZE

DEFAULT_OPSET = 17
DEFAULT_TOLERANCE = 1e-4  # max abs difference of the probabilities, torch vs onnxruntime
PARITY_BATCHES = (1, 3)
MODEL_FILE = "model.onnx"
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
REFERENCE_URL = "https://github.com/yaoing/DAN"
_MAX_LISTED_KEYS = 8


@dataclass(frozen=True)
class LabelSet:
    """A dataset's classes in the reference checkpoints' output order, with what MindFlow needs to know about it."""

    key: str
    title: str
    labels: tuple[str, ...]
    negative_labels: tuple[str, ...]
    dataset: str
    published_accuracy: float
    reference_file: str
    file_name_pattern: str  # regex matched (case-insensitive) against the checkpoint's file name


LABEL_SETS: dict[str, LabelSet] = {s.key: s for s in (
    LabelSet("affectnet8", "AffectNet-8",
             ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt"),
             ("sad", "fear", "disgust", "anger", "contempt"),
             "AffectNet validation set, 8 classes", 0.6209, "affecnet8_epoch5_acc0.6209.pth", r"affec?t?net_?-?8"),
    LabelSet("affectnet7", "AffectNet-7",
             ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger"),
             ("sad", "fear", "disgust", "anger"),
             "AffectNet validation set, 7 classes", 0.6569, "affecnet7_epoch6_acc0.6569.pth", r"affec?t?net_?-?7"),
    LabelSet("rafdb", "RAF-DB",
             ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral"),
             ("fear", "disgust", "sadness", "anger"),
             "RAF-DB basic test set, 7 classes", 0.8970, "rafdb_epoch21_acc0.897_bacc0.8275.pth", r"raf_?-?db"),
)}


class DanExportError(Exception):
    """The checkpoint, the arguments or the output folder are unusable. The message says what to do."""

    exit_code = 2


class ParityError(DanExportError):
    """onnxruntime's output differs from torch's by more than the tolerance; the message holds the differences."""

    exit_code = 3


# -- reading the checkpoint ------------------------------------------------------------------------------------


@dataclass
class Checkpoint:
    """A DAN state dict read from ``path``: ``num_classes``/``num_heads`` as found in its tensors."""

    path: Path
    state_dict: dict[str, torch.Tensor]
    container: str  # "official checkpoint dict", "bare state dict", … (for the report)
    num_classes: int
    num_heads: int
    sha256: str
    notes: list[str] = field(default_factory=list)


def _abbrev(keys: Sequence[str], limit: int = _MAX_LISTED_KEYS) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f", … and {len(keys) - limit} more" if len(keys) > limit else "")


_ZIP_MAGIC = b"PK\x03\x04"  # torch.save since torch 1.6
_LEGACY_MAGIC = bytes.fromhex("6cfc9c46f9206aa85019")  # torch's legacy format: this number is pickled first


def checkpoint_format(path: Path) -> str | None:
    """``"zip"`` or ``"legacy"`` for the two formats ``torch.save`` writes, ``None`` for anything else."""
    with open(path, "rb") as f:
        head = f.read(32)
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    if head[:1] == b"\x80" and _LEGACY_MAGIC in head:
        return "legacy"
    return None


def _torch_load(path: Path, trust: bool) -> Any:
    if not path.exists():
        raise DanExportError(f"checkpoint not found: {path} — give the path of the DAN .pth file "
                             f"(e.g. {LABEL_SETS['affectnet8'].reference_file})")
    if not path.is_file():
        raise DanExportError(f"checkpoint path is not a file: {path} — give the .pth file itself, not a folder")
    if checkpoint_format(path) is None:
        raise DanExportError(f"{path} is not a PyTorch checkpoint (neither torch.save's zip format nor its legacy "
                             f"format) — pass the .pth file that DAN's training saved")
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        reason = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)
        reason = reason.group(1).strip() if reason else text.strip().splitlines()[0] if text.strip() else ""
        unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        if unsafe:
            raise DanExportError(
                f"{path} holds Python objects besides tensors ({unsafe.group(1)}), so torch will not load it safely. "
                f"If you trust this file, re-run with --trust-checkpoint (full unpickling can run code from the "
                f"file); reference DAN checkpoints do not need it") from exc
        raise DanExportError(f"{path} is not a readable PyTorch checkpoint ({reason[:200]}) — pass the .pth file "
                             f"that DAN's training saved; if it was copied, check the copy is complete") from exc
    except Exception as exc:  # zip/stream errors, EOF, unknown formats: torch raises many types
        raise DanExportError(f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}: "
                             f"{str(exc).strip()[:200]}) — pass the .pth file that DAN's training saved; "
                             f"if it was copied, check the copy is complete (sha256)") from exc


def _unwrap(obj: Any, path: Path) -> tuple[dict[str, torch.Tensor], str]:
    """Find the state dict inside whatever ``torch.load`` returned; returns it and a description of the container."""
    if isinstance(obj, torch.nn.Module):
        return dict(obj.state_dict()), f"pickled module {type(obj).__name__}"
    if not isinstance(obj, Mapping):
        raise DanExportError(f"{path} holds a {type(obj).__name__}, not a checkpoint dict or state dict — "
                             f"this is not a DAN checkpoint")
    if "model_state_dict" in obj:
        inner, container = obj["model_state_dict"], "official checkpoint dict"
        if "iter" in obj:
            container += f" (iter {obj['iter']})"
    elif "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        inner, container = obj["state_dict"], "dict with 'state_dict'"
    else:
        inner, container = obj, "bare state dict"
    if isinstance(inner, torch.nn.Module):
        inner = inner.state_dict()
    if not isinstance(inner, Mapping) or not inner:
        raise DanExportError(f"{path}: the {container} holds {type(inner).__name__}, not a state dict — "
                             f"this is not a DAN checkpoint")
    not_tensors = [str(k) for k, v in inner.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise DanExportError(
            f"{path} is not a DAN checkpoint: expected a dict with 'model_state_dict' or a state dict of tensors, "
            f"found keys {_abbrev([str(k) for k in inner])} ({len(not_tensors)} of them not tensors)")
    sd = {str(k): v for k, v in inner.items()}
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
        container += ", DataParallel 'module.' prefix removed"
    return sd, container


def _suggest_labels(num_classes: int, file_name: str) -> str:
    fits = [s for s in LABEL_SETS.values() if len(s.labels) == num_classes]
    if not fits:
        sizes = ", ".join(f"{s.key}: {len(s.labels)}" for s in LABEL_SETS.values())
        return (f"no label set here has {num_classes} classes ({sizes}); this tool exports the reference DAN "
                f"checkpoints (AffectNet-8, AffectNet-7, RAF-DB)")
    hinted = guess_label_set(file_name)
    fits.sort(key=lambda s: s.key != hinted)
    return "use " + " or ".join(f"--labels {s.key}" for s in fits) + (
        f" (the file name suggests {hinted})" if hinted in {s.key for s in fits} else "")


def guess_label_set(file_name: str) -> str | None:
    """The label set a checkpoint's file name points to (``affecnet8_…`` → ``affectnet8``), or None."""
    for s in LABEL_SETS.values():
        if re.search(s.file_name_pattern, file_name, re.IGNORECASE):
            return s.key
    return None


def label_warning(file_name: str, labels: str) -> str | None:
    """A warning when the checkpoint's file name points to another label set than ``labels``, else None.

    Only reached when the class counts agree (AffectNet-7 vs RAF-DB): the export would work but name the emotions
    in the wrong order.
    """
    hinted = guess_label_set(file_name)
    if hinted is None or hinted == labels:
        return None
    return (f"the file name {file_name} suggests --labels {hinted}, but you chose {labels}; both have "
            f"{len(LABEL_SETS[labels].labels)} classes in a different order — a wrong choice gives wrong emotion "
            f"names. Re-run with --labels {hinted} unless you know the file was renamed")


def read_checkpoint(path: str | Path, label_set: LabelSet, trust: bool = False) -> Checkpoint:
    """Load a DAN checkpoint and check it against the reference architecture and ``label_set``.

    Raises :class:`DanExportError` when the file is missing or unreadable, is not a DAN checkpoint, has a class
    count that does not fit ``label_set``, or its keys/shapes differ from DAN's (missing and unexpected keys are
    listed, abbreviated). ``trust=True`` allows full unpickling (``weights_only=False``).
    """
    path = Path(path).expanduser()
    sd, container = _unwrap(_torch_load(path, trust), path)
    heads = sorted({int(m.group(1)) for k in sd if (m := re.match(r"cat_head(\d+)\.", k))})
    if not heads or not any(k.startswith("features.") for k in sd):
        hint = ""
        if "conv1.weight" in sd and "layer1.0.conv1.weight" in sd:
            hint = " It looks like a plain ResNet (torchvision keys conv1.*, layer1–4.*, fc.*), e.g. the backbone " \
                   "DAN starts training from, not a trained DAN."
        raise DanExportError(
            f"{path} is not a DAN checkpoint: a DAN state dict has features.*, cat_head0.* … cat_head3.*, fc.*, bn.* "
            f"keys; this one has {len(sd)} tensor(s): {_abbrev(list(sd))}.{hint}")
    if heads != list(range(len(heads))):
        raise DanExportError(f"{path}: attention heads are numbered {heads}; DAN numbers them 0…n-1 — "
                             f"the checkpoint is damaged or not from DAN")
    fc = sd.get("fc.weight")
    num_classes = int(fc.shape[0]) if isinstance(fc, torch.Tensor) and fc.ndim == 2 else None
    wanted = len(label_set.labels)
    if num_classes is not None and num_classes != wanted:
        raise DanExportError(f"checkpoint has {num_classes} classes but --labels {label_set.key} has {wanted}: "
                             f"{_suggest_labels(num_classes, path.name)}")

    with torch.device("meta"):  # names and shapes only: no memory, no initialisation cost
        expected = DAN(num_class=wanted, num_head=len(heads)).state_dict()
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    notes = []
    # BatchNorm's step counter does not affect inference; very old checkpoints lack it.
    counters = [k for k in missing if k.endswith(".num_batches_tracked")]
    if counters and len(counters) == len(missing):
        for k in counters:
            sd[k] = torch.zeros((), dtype=torch.long)
        notes.append(f"{len(counters)} BatchNorm num_batches_tracked counters were missing and set to 0")
        missing = []
    found = f"{num_classes} classes" if num_classes is not None else "no fc.weight, so the class count is unknown"
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} key(s): {_abbrev(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} key(s): {_abbrev(unexpected)}")
        raise DanExportError(
            f"{path} does not match DAN ({len(heads)} heads, {found}): {'; '.join(parts)} — it is a different "
            f"network or a modified DAN; this tool exports the reference architecture ({REFERENCE_URL}) only")
    bad_shapes = [f"{k}: checkpoint {tuple(sd[k].shape)}, DAN {tuple(v.shape)}"
                  for k, v in expected.items() if tuple(sd[k].shape) != tuple(v.shape)]
    if bad_shapes:
        more = " …" if len(bad_shapes) > _MAX_LISTED_KEYS else ""
        raise DanExportError(f"{path}: {len(bad_shapes)} tensor(s) have shapes DAN does not ({found}): "
                             f"{'; '.join(bad_shapes[:_MAX_LISTED_KEYS])}{more} — not a reference DAN checkpoint")
    return Checkpoint(path=path, state_dict=sd, container=container, num_classes=wanted, num_heads=len(heads),
                      sha256=file_sha256(path), notes=notes)


def build_model(ckpt: Checkpoint) -> DAN:
    """A DAN in eval mode holding the checkpoint's weights (float32, strict key matching)."""
    model = DAN(num_class=ckpt.num_classes, num_head=ckpt.num_heads)
    model.load_state_dict(ckpt.state_dict, strict=True)
    return model.float().eval()


# -- ONNX --------------------------------------------------------------------------------------------------------


def export_onnx(model: DAN, path: str | Path, opset: int = DEFAULT_OPSET) -> None:
    """Write ``model``'s logits as ONNX: input ``input`` ``(batch, 3, 224, 224)``, output ``logits`` ``(batch, C)``.

    Uses the TorchScript-based exporter (``dynamo=False``: no onnxscript needed), constant folding on (BatchNorm is
    folded into the convolutions), a dynamic batch axis, and checks the file with ``onnx.checker``.
    """
    import warnings

    import onnx

    if opset < DEFAULT_OPSET:
        raise DanExportError(f"--opset {opset} is too old: use {DEFAULT_OPSET} or newer")
    wrapper = DANLogits(model).eval()
    dummy = torch.zeros((1, 3, INPUT_SIZE, INPUT_SIZE), dtype=torch.float32)
    with warnings.catch_warnings():
        # The legacy exporter's DeprecationWarning and the TracerWarning for `if heads.size(1) > 1` (the head count
        # is fixed per model, so tracing it as a constant is correct) would only confuse users.
        warnings.simplefilter("ignore")
        with torch.no_grad():
            torch.onnx.export(wrapper, (dummy,), str(path), opset_version=opset, input_names=[INPUT_NAME],
                              output_names=[OUTPUT_NAME], do_constant_folding=True, dynamo=False,
                              dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
    onnx.checker.check_model(str(path))


def _softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class Parity:
    """torch vs onnxruntime on one random batch: max abs differences of logits and of softmax probabilities."""

    batch: int
    logits_diff: float
    prob_diff: float
    max_abs_logit: float


def check_parity(model: DAN, onnx_path: str | Path, batches: Sequence[int] = PARITY_BATCHES,
                 tolerance: float = DEFAULT_TOLERANCE, seed: int = 0) -> list[Parity]:
    """Run torch and onnxruntime on random ``N(0, 1)`` inputs ``(b, 3, 224, 224)`` for each ``b`` in ``batches``.

    The gate is the max abs difference of the **probabilities** (softmax of the logits: what the engine uses),
    which must be ≤ ``tolerance``. Logit differences are reported too; they are not gated because DAN's
    un-normalised spatial attention makes head activations large (hundreds), so float32 torch itself differs
    from float64 by ~5e-5 on the logits. Raises :class:`ParityError` listing the differences otherwise.
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # as the engine runs it
    session = ort.InferenceSession(str(onnx_path), sess_options=so, providers=["CPUExecutionProvider"])
    wrapper = DANLogits(model).eval()
    gen = torch.Generator().manual_seed(seed)
    results = []
    for b in batches:
        x = torch.randn((b, 3, INPUT_SIZE, INPUT_SIZE), generator=gen)
        with torch.no_grad():
            ref = wrapper(x).numpy().astype(np.float64)
        got = np.asarray(session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0], np.float64)
        if got.shape != ref.shape:
            raise ParityError(f"onnxruntime returned shape {got.shape} for batch {b}, torch {ref.shape} — "
                              f"the export is broken; report it with the checkpoint's sha256")
        results.append(Parity(batch=b, logits_diff=float(np.abs(got - ref).max()),
                              prob_diff=float(np.abs(_softmax(got) - _softmax(ref)).max()),
                              max_abs_logit=float(np.abs(ref).max())))
    worst = max(r.prob_diff for r in results)
    if not np.isfinite(worst) or worst > tolerance:
        raise ParityError("torch vs onnxruntime parity failed: " + format_parity(results) +
                          f"; tolerance {tolerance:g} on probabilities — nothing was written. Re-run to rule out "
                          f"a transient fault; if it persists, report it with the checkpoint's sha256")
    return results


def format_parity(results: Sequence[Parity]) -> str:
    return "; ".join(f"batch {r.batch}: max |Δp| {r.prob_diff:.2e}, max |Δlogit| {r.logits_diff:.2e} "
                     f"(|logit| ≤ {r.max_abs_logit:.1f})" for r in results)


def time_per_face(onnx_path: str | Path, runs: int = 20, threads: int = 1) -> float:
    """Median onnxruntime CPU time of one batch-1 inference, in milliseconds (``threads`` intra-op threads)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    session = ort.InferenceSession(str(onnx_path), sess_options=so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, 3, INPUT_SIZE, INPUT_SIZE)).astype(np.float32)
    session.run([OUTPUT_NAME], {INPUT_NAME: x})  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        session.run([OUTPUT_NAME], {INPUT_NAME: x})
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


# -- card and README ---------------------------------------------------------------------------------------------


def make_card(name: str, label_set: LabelSet, ckpt: Checkpoint, parameters: int, parity: Sequence[Parity],
              opset: int, ms_per_face: float | None) -> dict[str, Any]:
    """The ``card.json`` contents (format: ``models/README.md``)."""
    card: dict[str, Any] = {
        "schema": 1,
        "name": name,
        "display_name": f"DAN ({label_set.title})",
        "description": f"Distract Your Attention network (ResNet-18 + {ckpt.num_heads} attention heads), "
                       f"{label_set.title} classes, exported from {ckpt.path.name}.",
        "file": MODEL_FILE,
        "labels": list(label_set.labels),
        "negative_labels": list(label_set.negative_labels),
        "input": {
            "layout": "NCHW", "height": INPUT_SIZE, "width": INPUT_SIZE, "channels": "rgb",
            "scale": 1 / 255, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
            "crop_margin": 0.0,
        },
        "output": "logits",
        "license": f"reference code MIT ({REFERENCE_URL}); the checkpoint's terms are the user's responsibility",
        "source": f"{ckpt.path.name} (sha256 {ckpt.sha256})",
        "accuracy": {
            "dataset": label_set.dataset,
            "accuracy": label_set.published_accuracy,
            "status": "published (Wen et al., for the official checkpoint "
                      f"{label_set.reference_file}); not measured by MindFlow",
            "note": "another checkpoint (other epoch, own training) will score differently",
        },
        "parameters": parameters,
        "notes": "Crop: the detector's face box with no margin, as the reference demo does. "
                 "The first run per frame size may be slower (onnxruntime warm-up).",
        "extra": {
            "exporter": "python -m tools.dan.export",
            "label_set": label_set.key,
            "checkpoint_container": ckpt.container,
            "num_heads": ckpt.num_heads,
            "torch": torch.__version__,
            "onnx_opset": opset,
            "parity": [{"batch": r.batch, "max_abs_prob_diff": r.prob_diff, "max_abs_logit_diff": r.logits_diff}
                       for r in parity],
        },
    }
    if ms_per_face is not None:
        card["ms_per_face"] = round(ms_per_face, 2)
        card["extra"]["ms_per_face_note"] = "median of 20 batch-1 runs, 1 thread, on the exporting machine"
    if ckpt.notes:
        card["extra"]["checkpoint_notes"] = list(ckpt.notes)
    return card


def make_readme(card: dict[str, Any], label_set: LabelSet, ckpt_name: str, parity: Sequence[Parity]) -> str:
    """The ``README.md`` written beside the card: what the folder holds, where it came from, how to use it."""
    labels = ", ".join(card["labels"])
    negatives = ", ".join(card["negative_labels"])
    acc = card["accuracy"]
    speed = (f" About {card['ms_per_face']} ms per face (1 CPU thread, batch 1, measured at export)."
             if "ms_per_face" in card else "")
    return f"""# {card['display_name']}

{card['description']}

- Weights: `{card['source']}` — the user's checkpoint; its terms are the user's responsibility.
  Reference code: {REFERENCE_URL} (MIT). MindFlow's exporter re-implements the network (`tools/dan/model.py`).
- Labels (output order): {labels}. Counted as negative: {negatives}.
- Input: `{INPUT_NAME}` (batch, 3, {INPUT_SIZE}, {INPUT_SIZE}) float32, RGB, x/255, ImageNet mean/std;
  the face crop is the detector's box without margin. Output: `{OUTPUT_NAME}` (batch, {len(card['labels'])}),
  logits (MindFlow applies the softmax).
- Accuracy: {acc['accuracy']:.2%} on {acc['dataset']} — {acc['status']}.
- Parameters: {card['parameters']:,}.{speed}
- Parity torch vs onnxruntime on random inputs: {format_parity(parity)}.

Use it: set the OBS script's "Custom model folder" to this folder (or keep it under `models/`), or
`python -m obs_mindflow analyze VIDEO --model <this folder>`. Steps and troubleshooting: `docs/dan.md`.
Do not redistribute it unless the checkpoint's terms allow: `model.onnx` holds the checkpoint's weights.

Made with `python -m tools.dan.export {ckpt_name} --labels {label_set.key} --out <this folder>`
(torch {torch.__version__}, ONNX opset {card['extra']['onnx_opset']}).
"""


# -- the whole export --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportResult:
    out: Path
    card: dict[str, Any]
    parity: list[Parity]
    warnings: list[str]


def export(checkpoint: str | Path, labels: str, out: str | Path, *, force: bool = False, opset: int = DEFAULT_OPSET,
           tolerance: float = DEFAULT_TOLERANCE, trust: bool = False, measure_speed: bool = True) -> ExportResult:
    """Checkpoint → ``out/model.onnx``, ``out/card.json``, ``out/README.md``; returns what was written.

    Nothing is written to ``out`` unless the checkpoint is valid and the parity check passes; ``card.json`` is
    written last, so a folder with a card always has its model. An existing card is replaced only with ``force``.
    """
    if labels not in LABEL_SETS:
        raise DanExportError(f"--labels {labels!r} is unknown: use one of {', '.join(LABEL_SETS)}")
    label_set = LABEL_SETS[labels]
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise DanExportError(f"--out {out} is a file: give a folder (it is created if missing)")
    if (out / "card.json").exists() and not force:
        raise DanExportError(f"{out} already holds a model (card.json): pass --force to replace it, "
                             f"or choose another --out folder")
    ckpt = read_checkpoint(checkpoint, label_set, trust=trust)
    warnings = [w for w in (label_warning(ckpt.path.name, label_set.key),) if w] + ckpt.notes
    model = build_model(ckpt)
    parameters = sum(p.numel() for p in model.parameters())
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".dan-export-", dir=out) as tmp:
        tmp_model = Path(tmp) / MODEL_FILE
        export_onnx(model, tmp_model, opset)
        parity = check_parity(model, tmp_model, tolerance=tolerance)
        ms = time_per_face(tmp_model) if measure_speed else None
        card = make_card(out.resolve().name, label_set, ckpt, parameters, parity, opset, ms)
        (out / "card.json").unlink(missing_ok=True)
        tmp_model.replace(out / MODEL_FILE)
    (out / "README.md").write_text(make_readme(card, label_set, ckpt.path.name, parity), encoding="utf-8")
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return ExportResult(out=out, card=card, parity=parity, warnings=warnings)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.dan.export",
        description="Export a DAN checkpoint (.pth) to a MindFlow model folder (model.onnx, card.json, README.md).",
        epilog="Exit status: 0 ok, 2 bad arguments or checkpoint, 3 torch/onnxruntime parity failed. See docs/dan.md.")
    parser.add_argument("checkpoint", help="the DAN .pth file, e.g. affecnet8_epoch5_acc0.6209.pth")
    parser.add_argument("--labels", required=True, choices=sorted(LABEL_SETS),
                        help="the dataset the checkpoint was trained on: fixes the label names and their order")
    parser.add_argument("--out", required=True, help="output folder, e.g. models/dan-affectnet8/")
    parser.add_argument("--force", action="store_true", help="replace a model already in --out")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                        help=f"max abs probability difference torch vs onnxruntime (default {DEFAULT_TOLERANCE:g})")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="allow full unpickling (weights_only=False) for checkpoints holding Python objects; "
                             "only for files you trust")
    parser.add_argument("--no-timing", action="store_true", help="skip the ms-per-face measurement")
    args = parser.parse_args(argv)
    try:
        result = export(args.checkpoint, args.labels, args.out, force=args.force, opset=args.opset,
                        tolerance=args.tolerance, trust=args.trust_checkpoint, measure_speed=not args.no_timing)
    except DanExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    card = result.card
    print(f"exported {card['source']} → {result.out}/ ({MODEL_FILE}, card.json, README.md)")
    print(f"labels ({args.labels}): {', '.join(card['labels'])}")
    print(f"parity torch vs onnxruntime: {format_parity(result.parity)}")
    if "ms_per_face" in card:
        print(f"speed: {card['ms_per_face']} ms per face (1 thread, batch 1, median of 20)")
    print(f"use it: python -m obs_mindflow analyze VIDEO --model {result.out}  "
          f"(or OBS script → Custom model folder)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
