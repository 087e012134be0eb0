"""DAN checkpoint → ONNX model folder (tools/dan) → the engine's ExpressionModel.

One random-weight DAN is exported once per module through the documented command
(``python -m tools.dan.export CKPT --labels affectnet8 --out DIR``); the other tests reuse that folder.
"""

from __future__ import annotations

import ast
import copy
import fractions
import functools
import hashlib
import json
import pickle
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

import cv2  # noqa: E402

from obs_mindflow.engine.card import ModelCard  # noqa: E402
from obs_mindflow.engine.model import ExpressionModel, ModelOptions  # noqa: E402
from tools.dan.export import (  # noqa: E402
    LABEL_SETS, DanExportError, ParityError, build_model, check_parity, export, guess_label_set, label_warning,
    main, read_checkpoint,
)
from tools.dan.model import DAN, IMAGENET_MEAN, IMAGENET_STD, randomize  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "tests" / "data" / "faces" / "astronaut.png"
AFFECTNET8 = ["neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt"]
OFFICIAL_NAME = "affecnet8_epoch5_acc0.6209.pth"


def official(state_dict: dict) -> dict:
    """The reference training script's checkpoint layout."""
    return {"iter": 5, "model_state_dict": state_dict,
            "optimizer_state_dict": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1, 2]}]}}


@pytest.fixture(scope="module")
def dan(tmp_path_factory):
    """A random-weight 8-class DAN saved in the official format and exported with the CLI."""
    tmp = tmp_path_factory.mktemp("dan")
    model = randomize(DAN(num_class=8), seed=1)
    ckpt = tmp / OFFICIAL_NAME
    torch.save(official(model.state_dict()), ckpt)
    out = tmp / "dan-affectnet8"
    proc = subprocess.run([sys.executable, "-m", "tools.dan.export", str(ckpt), "--labels", "affectnet8",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return SimpleNamespace(model=model, ckpt=ckpt, out=out, stdout=proc.stdout, tmp=tmp)


@pytest.fixture(scope="module")
def engine(dan):
    return ExpressionModel.load(dan.out, ModelOptions(intra_op_threads=2))


def reference_input(rgb_224: np.ndarray) -> "torch.Tensor":
    """The reference demo's transform on an RGB 224×224 uint8 image: ToTensor + Normalize(ImageNet)."""
    x = rgb_224.astype(np.float32) / 255.0
    x = (x - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    return torch.from_numpy(x.transpose(2, 0, 1)[None].copy())


def torch_probs(model: DAN, x: "torch.Tensor") -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(model(x)[0], dim=1).numpy()


# -- the exported folder -----------------------------------------------------------------------------------------


def test_export_writes_a_valid_card(dan):
    card = ModelCard.load(dan.out)
    raw = json.loads((dan.out / "card.json").read_text())
    assert sorted(p.name for p in dan.out.iterdir()) == ["README.md", "card.json", "model.onnx"]
    assert list(card.labels) == AFFECTNET8
    assert list(card.negative_labels) == ["sad", "fear", "disgust", "anger", "contempt"]
    assert (card.input.layout, card.input.height, card.input.width, card.input.channels) == ("NCHW", 224, 224, "rgb")
    assert card.input.scale == pytest.approx(1 / 255)
    assert card.input.mean == pytest.approx(IMAGENET_MEAN) and card.input.std == pytest.approx(IMAGENET_STD)
    assert card.input.crop_margin == 0
    assert card.output == "logits"
    assert card.source == f"{OFFICIAL_NAME} (sha256 {hashlib.sha256(dan.ckpt.read_bytes()).hexdigest()})"
    assert card.accuracy["accuracy"] == 0.6209 and "not measured" in card.accuracy["status"]
    assert "MIT" in card.license and "user" in card.license
    assert card.parameters == sum(p.numel() for p in dan.model.parameters())
    assert raw["extra"]["checkpoint_container"] == "official checkpoint dict (iter 5)"
    assert "python -m tools.dan.export" in (dan.out / "README.md").read_text()


def test_export_reports_parity_for_batch_1_and_3(dan):
    parity = json.loads((dan.out / "card.json").read_text())["extra"]["parity"]
    assert [p["batch"] for p in parity] == [1, 3]
    assert all(p["max_abs_prob_diff"] <= 1e-4 for p in parity), parity
    assert "parity torch vs onnxruntime: batch 1" in dan.stdout


def test_parity_check_catches_a_model_that_differs(dan):
    other = copy.deepcopy(dan.model)
    with torch.no_grad():
        other.fc.bias[0] += 1.0
    with pytest.raises(ParityError, match=r"parity failed: batch 1: max \|Δp\| [0-9.e+-]+, max \|Δlogit\|"):
        check_parity(other, dan.out / "model.onnx")


def test_cli_exits_3_with_the_diff_and_writes_nothing_when_parity_fails(dan, capsys):
    out = dan.tmp / "strict"
    code = main([str(dan.ckpt), "--labels", "affectnet8", "--out", str(out), "--tolerance", "1e-12",
                 "--no-timing"])
    err = capsys.readouterr().err
    assert code == 3
    assert "parity failed: batch 1: max |Δp|" in err and "tolerance 1e-12" in err
    assert list(out.iterdir()) == []


# -- the engine runs it ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("crop", ["whole photo", "haar box"])
def test_engine_classifies_the_photo(engine, crop):
    frame = cv2.imread(str(PHOTO))
    if crop == "whole photo":
        probs = engine.classify_crops([frame])
    else:
        cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        boxes = cascade.detectMultiScale(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), 1.1, 5, minSize=(60, 60))
        assert len(boxes) == 1
        probs = engine.classify(frame, boxes)
        x, y, w, h = boxes[0]
        # crop_margin 0: the crop is exactly the Haar box, as in the reference demo.
        np.testing.assert_allclose(probs, engine.classify_crops([frame[y:y + h, x:x + w]]), atol=1e-6)
    assert engine.labels == tuple(AFFECTNET8)
    assert probs.shape == (1, 8) and probs.dtype == np.float32
    assert np.all(probs >= 0) and probs.sum() == pytest.approx(1.0, abs=1e-5)


def test_engine_preprocessing_matches_the_reference_transform(engine, dan):
    # A 224×224 crop needs no resize, so the engine's path (card: rgb, 1/255, ImageNet mean/std, NCHW) can be
    # compared with the reference transform exactly.
    bgr = cv2.resize(cv2.imread(str(PHOTO)), (224, 224), interpolation=cv2.INTER_AREA)
    got = engine.classify_crops([bgr])
    want = torch_probs(dan.model, reference_input(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
    swapped = torch_probs(dan.model, reference_input(bgr))  # channels in the wrong order
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert np.abs(swapped - want).max() > 1e-3  # the comparison can tell RGB from BGR


def test_engine_batches_faces(engine):
    bgr = cv2.imread(str(PHOTO))
    crops = [bgr, cv2.flip(bgr, 1), bgr[100:300, 150:350]]
    batch = engine.classify_crops(crops)
    one_by_one = np.concatenate([engine.classify_crops([c]) for c in crops])
    np.testing.assert_allclose(batch, one_by_one, atol=1e-5)


# -- checkpoint containers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("container, expected", [
    ("official", "official checkpoint dict (iter 5)"),
    ("bare", "bare state dict"),
    ("bare module.", "bare state dict, DataParallel 'module.' prefix removed"),
    ("official module.", "official checkpoint dict (iter 5), DataParallel 'module.' prefix removed"),
    ("state_dict", "dict with 'state_dict'"),
    ("legacy format", "official checkpoint dict (iter 5)"),
])
def test_checkpoint_containers_give_the_same_weights(dan, tmp_path, container, expected):
    sd = dan.model.state_dict()
    if "module." in container:
        sd = {f"module.{k}": v for k, v in sd.items()}
    obj = {"bare": sd, "state_dict": {"state_dict": sd, "epoch": 3}}.get(container.split()[0], official(sd))
    path = tmp_path / "ckpt.pth"
    torch.save(obj, path, _use_new_zipfile_serialization=container != "legacy format")
    ckpt = read_checkpoint(path, LABEL_SETS["affectnet8"])
    assert ckpt.container == expected
    assert (ckpt.num_classes, ckpt.num_heads) == (8, 4)
    want = dan.model.state_dict()
    assert ckpt.state_dict.keys() == want.keys()
    assert all(torch.equal(ckpt.state_dict[k], want[k]) for k in want)


def test_bare_checkpoint_model_matches_the_exported_onnx(dan, engine, tmp_path):
    path = tmp_path / "bare.pth"
    torch.save({f"module.{k}": v for k, v in dan.model.state_dict().items()}, path)
    model = build_model(read_checkpoint(path, LABEL_SETS["affectnet8"]))
    bgr = cv2.resize(cv2.imread(str(PHOTO)), (224, 224), interpolation=cv2.INTER_AREA)
    want = torch_probs(model, reference_input(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
    np.testing.assert_allclose(engine.classify_crops([bgr]), want, atol=1e-4)


def test_missing_batchnorm_counters_are_tolerated(dan, tmp_path):
    sd = {k: v for k, v in dan.model.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(sd, tmp_path / "old.pth")
    ckpt = read_checkpoint(tmp_path / "old.pth", LABEL_SETS["affectnet8"])
    assert ckpt.notes == ["41 BatchNorm num_batches_tracked counters were missing and set to 0"]


# -- bad inputs --------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _fresh_sd(num_class: int) -> dict:
    return DAN(num_class=num_class).state_dict()


def _dan_sd(num_class=8, drop=(), add=None, reshape=None):
    sd = dict(_fresh_sd(num_class))
    sd = {k: v for k, v in sd.items() if not any(k.startswith(d) for d in drop)}
    sd.update(add or {})
    for k, shape in (reshape or {}).items():
        sd[k] = torch.zeros(shape)
    return sd


def _resnet_sd():
    # torchvision-style ResNet keys (what resnet18_msceleb.pth, DAN's starting point, holds).
    return {"conv1.weight": torch.zeros(64, 3, 7, 7), "bn1.weight": torch.ones(64),
            "layer1.0.conv1.weight": torch.zeros(64, 64, 3, 3), "fc.weight": torch.zeros(1000, 512)}


def _write(kind: str, path: Path) -> None:
    writers = {
        "text": lambda: path.write_text("not a checkpoint\n"),
        "raw pickle": lambda: path.write_bytes(pickle.dumps({"weights": [1, 2, 3]})),
        "truncated": lambda: (torch.save(official(_dan_sd()), path), path.write_bytes(path.read_bytes()[:4096])),
        "python object": lambda: torch.save({"model_state_dict": _dan_sd(), "acc": fractions.Fraction(6209, 10000)},
                                            path),
        "tensor": lambda: torch.save(torch.zeros(3), path),
        "no tensors": lambda: torch.save({"epoch": 3, "acc": 0.6}, path),
        "folder": path.mkdir,
        "absent": lambda: None,
    }
    writers[kind]()


BAD_CHECKPOINTS = [  # (file name, content: a state-dict factory or a _write kind, --labels, expected message)
    ("affecnet7_epoch6_acc0.6569.pth", lambda: _dan_sd(7), "affectnet8",
     "checkpoint has 7 classes but --labels affectnet8 has 8: use --labels affectnet7 or --labels rafdb "
     "(the file name suggests affectnet7)"),
    ("rafdb_epoch21_acc0.897_bacc0.8275.pth", lambda: official(_dan_sd(7)), "affectnet8",
     "checkpoint has 7 classes but --labels affectnet8 has 8: use --labels rafdb or --labels affectnet7 "
     "(the file name suggests rafdb)"),
    ("mine.pth", lambda: _dan_sd(8), "rafdb",
     "checkpoint has 8 classes but --labels rafdb has 7: use --labels affectnet8"),
    ("five.pth", lambda: _dan_sd(5), "affectnet7",
     "checkpoint has 5 classes but --labels affectnet7 has 7: no label set here has 5 classes"),
    ("missing.pth", lambda: official(_dan_sd(drop=("features.4.0.conv1.weight", "bn.running_var"))), "affectnet8",
     "does not match DAN (4 heads, 8 classes): missing 2 key(s): bn.running_var, features.4.0.conv1.weight — "),
    ("many-missing.pth", lambda: _dan_sd(drop=("features.7.",)), "affectnet8",
     "missing 30 key(s): features.7.0.bn1.bias, features.7.0.bn1.num_batches_tracked"),
    ("many-missing.pth", lambda: _dan_sd(drop=("features.7.",)), "affectnet8", ", … and 22 more"),
    ("extra.pth", lambda: _dan_sd(add={"projection.weight": torch.zeros(2),
                                       "cat_head0.sa.gate.weight": torch.zeros(2)}), "affectnet8",
     "unexpected 2 key(s): cat_head0.sa.gate.weight, projection.weight"),
    ("no-fc.pth", lambda: _dan_sd(drop=("fc.",)), "affectnet8",
     "no fc.weight, so the class count is unknown): missing 2 key(s): fc.bias, fc.weight"),
    ("shapes.pth", lambda: _dan_sd(reshape={"cat_head0.ca.attention.0.weight": (16, 512)}), "affectnet8",
     "1 tensor(s) have shapes DAN does not (8 classes): cat_head0.ca.attention.0.weight: checkpoint (16, 512), "
     "DAN (32, 512)"),
    ("gap.pth", lambda: _dan_sd(drop=("cat_head1.",)), "affectnet8", "attention heads are numbered [0, 2, 3]"),
    ("resnet18_msceleb.pth", lambda: {"state_dict": _resnet_sd()}, "affectnet8",
     "is not a DAN checkpoint: a DAN state dict has features.*, cat_head0.* … cat_head3.*, fc.*, bn.* keys; this "
     "one has 4 tensor(s): bn1.weight, conv1.weight, fc.weight, layer1.0.conv1.weight. It looks like a plain ResNet"),
    ("notes.pth", "text", "affectnet8", "is not a PyTorch checkpoint (neither torch.save's zip format nor its legacy"),
    ("weights.pkl", "raw pickle", "affectnet8", "is not a PyTorch checkpoint"),
    ("half.pth", "truncated", "affectnet8", "is not a readable PyTorch checkpoint (RuntimeError: PytorchStreamReader"),
    ("object.pth", "python object", "affectnet8",
     "holds Python objects besides tensors (fractions.Fraction), so torch will not load it safely. If you trust "
     "this file, re-run with --trust-checkpoint"),
    ("tensor.pth", "tensor", "affectnet8", "holds a Tensor, not a checkpoint dict or state dict"),
    ("meta.pth", "no tensors", "affectnet8", "is not a DAN checkpoint: expected a dict with 'model_state_dict' or a "
                                             "state dict of tensors, found keys acc, epoch (2 of them not tensors)"),
    ("absent.pth", "absent", "affectnet8", "checkpoint not found: "),
    ("folder.pth", "folder", "affectnet8", "checkpoint path is not a file: "),
    ("x.pth", lambda: _dan_sd(8), "fer2013", "--labels 'fer2013' is unknown: use one of affectnet8, affectnet7, rafdb"),
]


@pytest.mark.parametrize("name, content, labels, message", BAD_CHECKPOINTS, ids=[r[0] for r in BAD_CHECKPOINTS])
def test_bad_checkpoint_is_refused_with_a_clear_error(tmp_path, name, content, labels, message):
    path = tmp_path / name
    if isinstance(content, str):
        _write(content, path)
    else:
        torch.save(content(), path)
    out = tmp_path / "out"
    with pytest.raises(DanExportError) as info:
        export(path, labels, out, measure_speed=False)
    assert message in str(info.value)
    assert not out.exists()  # nothing is written for a refused checkpoint


def test_existing_model_folder_needs_force(dan, capsys):
    code = main([str(dan.ckpt), "--labels", "affectnet8", "--out", str(dan.out)])
    assert code == 2
    assert "already holds a model (card.json): pass --force" in capsys.readouterr().err


@pytest.mark.parametrize("file_name, expected", [
    ("affecnet8_epoch5_acc0.6209.pth", "affectnet8"),
    ("affecnet7_epoch6_acc0.6569.pth", "affectnet7"),
    ("AffectNet-7_finetuned.pth", "affectnet7"),
    ("rafdb_epoch21_acc0.897_bacc0.8275.pth", "rafdb"),
    ("RAF-DB_best.pth", "rafdb"),
    ("my_dan.pth", None),
])
def test_label_set_guessed_from_file_name(file_name, expected):
    assert guess_label_set(file_name) == expected


@pytest.mark.parametrize("file_name, labels, expected", [
    ("rafdb_epoch21_acc0.897_bacc0.8275.pth", "affectnet7",
     "the file name rafdb_epoch21_acc0.897_bacc0.8275.pth suggests --labels rafdb, but you chose affectnet7; both "
     "have 7 classes in a different order"),
    ("affecnet7_epoch6_acc0.6569.pth", "rafdb", "suggests --labels affectnet7, but you chose rafdb"),
    ("rafdb_epoch21_acc0.897_bacc0.8275.pth", "rafdb", None),
    ("my_dan.pth", "affectnet7", None),
])
def test_label_warning_when_the_file_name_disagrees(file_name, labels, expected):
    warning = label_warning(file_name, labels)
    if expected is None:
        assert warning is None
    else:
        assert expected in warning


# -- the network itself ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key, shape", [
    ("features.0.weight", (64, 3, 7, 7)),
    ("features.1.running_var", (64,)),
    ("features.4.1.conv2.weight", (64, 64, 3, 3)),
    ("features.5.0.downsample.0.weight", (128, 64, 1, 1)),
    ("features.7.1.bn2.bias", (512,)),
    ("cat_head0.sa.conv1x1.0.weight", (256, 512, 1, 1)),
    ("cat_head1.sa.conv_3x3.0.weight", (512, 256, 3, 3)),
    ("cat_head2.sa.conv_1x3.1.running_mean", (512,)),
    ("cat_head3.sa.conv_3x1.0.weight", (512, 256, 3, 1)),
    ("cat_head3.ca.attention.0.weight", (32, 512)),
    ("cat_head0.ca.attention.1.running_var", (32,)),
    ("cat_head2.ca.attention.3.weight", (512, 32)),
    ("fc.weight", (8, 512)),
    ("bn.running_mean", (8,)),
])
def test_dan_has_the_reference_key_names(key, shape):
    assert tuple(DAN(num_class=8).state_dict()[key].shape) == shape


def test_dan_forward_shapes_and_size():
    model = DAN(num_class=7).eval()
    with torch.no_grad():
        out, feat, heads = model(torch.zeros(2, 3, 224, 224))
    assert (tuple(out.shape), tuple(feat.shape), tuple(heads.shape)) == ((2, 7), (2, 512, 7, 7), (2, 4, 512))
    assert sum(p.numel() for p in DAN(num_class=8).parameters()) == 19_724_248


def test_nothing_in_the_engine_imports_torch():
    offenders = []
    for path in sorted((ROOT / "obs_mindflow").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in ("torch", "tools")]
    assert offenders == []
