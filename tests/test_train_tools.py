"""tools/train: calibration maths, seeded augmentation, resumable training and export to an engine model folder.

No FER2013 here (a fresh clone has no ../shared): the training/export round trip runs on a small synthetic
dataset written in FER2013's npz format, through the documented commands.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from obs_mindflow.engine.model import ExpressionModel  # noqa: E402
from tools.train.calibrate import ece, fit_temperature, softmax  # noqa: E402
from tools.train.data import LABELS, AugmentConfig, augment, epoch_order, stratified_holdout, to_tensor  # noqa: E402
from tools.train.nets import ARCHS, build  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("true_t", [0.5, 1.0, 2.5])
def test_fit_temperature_recovers_the_temperature_that_generated_the_labels(true_t):
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, (20000, 7))
    p = softmax(logits, true_t)
    labels = np.array([rng.choice(7, p=row) for row in p])
    assert fit_temperature(logits, labels) == pytest.approx(true_t, rel=0.05)


def test_ece_is_zero_when_calibrated_and_large_when_overconfident():
    rng = np.random.default_rng(2)
    logits = rng.normal(0, 2, (40000, 7))
    p = softmax(logits)
    labels = np.array([rng.choice(7, p=row) for row in p])
    assert ece(p, labels) < 0.02
    sharp = softmax(logits, 0.2)                  # same ranking, far too confident
    assert ece(sharp, labels) > 0.15


def test_stratified_holdout_is_seeded_disjoint_and_per_class():
    labels = np.repeat(np.arange(7), [40, 10, 40, 80, 50, 30, 50])
    tr, ho = stratified_holdout(labels, 0.1, seed=7)
    tr2, ho2 = stratified_holdout(labels, 0.1, seed=7)
    assert np.array_equal(ho, ho2) and np.array_equal(tr, tr2)
    assert not set(tr) & set(ho) and len(tr) + len(ho) == len(labels)
    assert np.bincount(labels[ho], minlength=7).tolist() == [4, 1, 4, 8, 5, 3, 5]
    assert not np.array_equal(ho, stratified_holdout(labels, 0.1, seed=8)[1])


def test_epoch_order_repeats_disgust_and_depends_on_epoch():
    labels = np.array([0, 1, 2, 1, 3])
    o0 = epoch_order(labels, 3, seed=1, epoch=0)
    assert sorted(o0.tolist()) == [0, 1, 1, 1, 2, 3, 3, 3, 4]
    assert np.array_equal(o0, epoch_order(labels, 3, seed=1, epoch=0))
    assert not np.array_equal(o0, epoch_order(labels, 3, seed=1, epoch=1))


def test_augment_is_reproducible_from_the_generator_and_keeps_shape():
    x = to_tensor(np.random.default_rng(0).integers(0, 256, (16, 48, 48), dtype=np.uint8))
    a = augment(x, AugmentConfig(), torch.Generator().manual_seed(5))
    b = augment(x, AugmentConfig(), torch.Generator().manual_seed(5))
    c = augment(x, AugmentConfig(), torch.Generator().manual_seed(6))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)


def test_flip_only_augmentation_is_a_mirror():
    x = to_tensor(np.random.default_rng(0).integers(0, 256, (8, 48, 48), dtype=np.uint8))
    cfg = AugmentConfig(flip=1.0, rotate_deg=0, scale=0, translate=0, brightness=0, contrast=0, erase=0)
    y = augment(x, cfg, torch.Generator().manual_seed(0))
    assert torch.allclose(y, torch.flip(x, dims=[3]), atol=1e-5)


@pytest.mark.parametrize("arch", sorted(ARCHS))
@pytest.mark.parametrize("head", ["plain", "dan"])
def test_every_network_maps_48px_faces_to_7_logits(arch, head):
    net = build(arch, head).eval()
    with torch.no_grad():
        out = net(torch.zeros(3, 1, 48, 48))
    assert out.shape == (3, 7)


def _synthetic_fer(folder: Path) -> None:
    """FER2013-format npz files: each class is a bright square at its own place on noise (learnable)."""
    rng = np.random.default_rng(0)
    for name, n in (("train.npz", 280), ("validation.npz", 70)):
        labels = np.arange(n) % 7
        images = rng.integers(0, 90, (n, 48, 48), dtype=np.uint8)
        for i, c in enumerate(labels):
            r, col = divmod(int(c), 3)
            images[i, 4 + 14 * r:14 + 14 * r, 4 + 14 * col:14 + 14 * col] = 230
        np.savez(folder / name, images=images, labels=labels, augmented=np.zeros(n, bool),
                 files=np.array([f"{name}_{i}" for i in range(n)]), label_names=np.array(LABELS))


def _train(data: Path, out: Path, *extra: str) -> None:
    cmd = [sys.executable, "-m", "tools.train.train", "--data-dir", str(data), "--out", str(out), "--head", "plain",
           "--epochs", "2", "--batch", "32", "--threads", "1", *extra]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("train")
    data = base / "data"
    data.mkdir()
    _synthetic_fer(data)
    _train(data, base / "straight")
    _train(data, base / "resumed", "--stop-after", "1")
    first = torch.load(base / "resumed" / "last.pt", weights_only=False)
    _train(data, base / "resumed", "--resume")
    return data, base, first


def test_training_logs_every_epoch_and_an_interrupted_run_resumes_to_the_same_weights(runs):
    _, base, first = runs
    assert first["epoch"] == 1
    a = torch.load(base / "straight" / "last.pt", weights_only=False)
    b = torch.load(base / "resumed" / "last.pt", weights_only=False)
    assert a["epoch"] == b["epoch"] == 2
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    assert [h["val_acc"] for h in a["history"]] == [h["val_acc"] for h in b["history"]]
    assert b["command"] == a["command"].replace("straight", "resumed")    # one command gives these weights
    log = (base / "straight" / "train.log").read_text()
    assert "epoch   1/2" in log and "epoch   2/2" in log and "done: 2 epochs" in log
    hist = json.loads((base / "resumed" / "history.json").read_text())
    assert [h["epoch"] for h in hist] == [1, 2]


def _export(runs_: list[Path], data: Path, out: Path, *extra: str) -> dict:
    cmd = [sys.executable, "-m", "tools.train.export", "--out", str(out), "--data-dir", str(data),
           "--timing-runs", "50", *extra]
    for run in runs_:
        cmd += ["--run", str(run)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((out / "card.json").read_text())


def _check_folder(out: Path, card: dict) -> None:
    assert card["labels"] == list(LABELS) and card["output"] == "logits" and card["temperature"] > 0
    assert card["extra"]["parity_max_abs_diff_torch_vs_onnxruntime"] <= 1e-4
    assert 0.0 <= card["accuracy"]["accuracy"] <= 1.0 and set(card["accuracy"]["per_class_recall"]) == set(LABELS)
    assert "training_command" in card["extra"] and "data_notice" in card["extra"]
    assert sorted(f.name for f in out.iterdir()) == ["LICENSE", "card.json", "model.onnx"]
    model = ExpressionModel.load(out)
    faces = np.random.default_rng(0).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    p = model.classify_crops(list(faces))
    assert p.shape == (3, 7) and np.allclose(p.sum(axis=1), 1.0, atol=1e-5)


def test_export_of_a_flip_averaged_ensemble_matches_torch_through_the_engine(runs):
    data, base, _ = runs
    out = base / "ensemble"
    card = _export([base / "resumed", base / "straight"], data, out, "--tta")
    _check_folder(out, card)
    assert card["extra"]["engine_vs_torch_max_abs_diff"] <= 1e-4
    assert card["extra"]["tta_flip_in_graph"] is True and card["extra"]["int8"] is None
    assert len(card["extra"]["training_command"]) == 2
    single = _export([base / "resumed"], data, base / "single")
    assert card["parameters"] == 2 * single["parameters"]
    assert single["extra"]["tta_flip_in_graph"] is False and isinstance(single["extra"]["training_command"], str)


def test_int8_export_ships_only_the_quantised_graph_and_says_how_far_it_is_from_float32(runs):
    import onnx

    data, base, _ = runs
    out = base / "int8"
    card = _export([base / "resumed"], data, out, "--int8", "--int8-calibration", "32")
    _check_folder(out, card)
    q = card["extra"]["int8"]
    assert "QDQ" in q["method"] and "hold-out" in q["calibration"]
    assert 0.0 <= q["top1_agreement_with_float32"] <= 1.0 and q["max_abs_logit_diff_vs_float32"] >= 0.0
    ops = {n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops


def test_ensemble_members_must_share_the_calibration_holdout(runs, tmp_path):
    data, base, _ = runs
    other = tmp_path / "other"
    _train(data, other, "--holdout-seed", "99", "--stop-after", "1")
    done = subprocess.run([sys.executable, "-m", "tools.train.export", "--run", str(base / "resumed"), "--run",
                           str(other), "--out", str(tmp_path / "m"), "--data-dir", str(data)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "another calibration hold-out" in done.stderr
