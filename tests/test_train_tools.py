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
from tools.train.data import (LABELS, MEAN, STD, AugmentConfig, augment, epoch_order, equalize_images,  # noqa: E402
                              equalize_tensor, stratified_holdout, to_tensor)
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


def test_training_equalises_augmented_faces_exactly_as_the_engine_does():
    """--equalize: the torch equalisation of a batch (after augmentation) is cv2.equalizeHist's, flat images too."""
    rng = np.random.default_rng(3)
    images = rng.normal(110, 25, (12, 48, 48)).clip(0, 255).astype(np.uint8)
    images[0] = 90                                     # flat: left as it is
    images[1, :, :24], images[1, :, 24:] = 0, 200       # two levels: 0 and 255
    got = ((equalize_tensor(to_tensor(images)) * STD + MEAN) * 255).round().squeeze(1).numpy().astype(np.uint8)
    assert np.array_equal(got, equalize_images(images))
    assert (got[0] == 90).all() and set(np.unique(got[1])) == {0, 255}


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


# --- FER+ helpers and the neutral reference (synthetic data only) ---

from tools.train.ferplus import LABELS8, FerPlus, holdout_split, majority_labels, neutral_majority  # noqa: E402
from tools.train.reference import match_fer2013_to_ferplus, neutral_reference, write_card_field  # noqa: E402


def _votes(*rows):
    return np.array(rows, np.int64)


def test_ferplus_majority_follows_the_papers_rule_and_names_the_engines_labels():
    #               neu hap sur sad ang dis fea con unk NF
    votes = _votes([6, 1, 0, 0, 0, 0, 0, 0, 3, 0],      # neutral
                   [0, 0, 0, 0, 0, 0, 0, 2, 8, 0],      # top vote unknown -> dropped
                   [4, 4, 0, 0, 2, 0, 0, 0, 0, 0],      # tie -> dropped
                   [0, 0, 0, 0, 1, 0, 0, 6, 0, 3],      # contempt
                   [0, 1, 0, 0, 7, 1, 0, 0, 0, 1])      # anger -> angry
    assert majority_labels(votes).tolist() == [LABELS8.index("neutral"), -1, -1, LABELS8.index("contempt"),
                                               LABELS8.index("angry")]
    data = FerPlus(np.zeros((5, 48, 48), np.uint8), votes, np.array([f"f{i}" for i in range(5)]))
    assert neutral_majority(data).tolist() == [0]


def test_ferplus_soft_targets_drop_unknown_nf_and_for_7_classes_contempt():
    votes = _votes([6, 1, 0, 0, 0, 0, 0, 1, 2, 0], [0, 0, 0, 0, 0, 0, 0, 5, 5, 0])
    data = FerPlus(np.zeros((2, 48, 48), np.uint8), votes, np.array(["a", "b"]))
    t8 = data.targets(LABELS8)
    assert t8.shape == (2, 8) and np.allclose(t8.sum(1), 1)
    assert t8[0, LABELS8.index("neutral")] == pytest.approx(6 / 8) and t8[1, LABELS8.index("contempt")] == 1
    t7 = data.targets(LABELS)
    assert t7[0, LABELS.index("neutral")] == pytest.approx(6 / 7) and t7[1].sum() == 0   # nothing left: not trained


def test_ferplus_holdout_is_seeded_and_stratified_by_majority():
    rng = np.random.default_rng(0)
    votes = np.zeros((400, 10), np.int64)
    votes[np.arange(400), rng.integers(0, 8, 400)] = 10
    data = FerPlus(np.zeros((400, 48, 48), np.uint8), votes, np.arange(400).astype(str))
    tr, ho = holdout_split(data, 0.1, 3)
    assert np.array_equal(ho, holdout_split(data, 0.1, 3)[1]) and not set(tr) & set(ho)
    assert abs(len(ho) - 40) <= 4


class _FakeModel:
    labels = ("angry", "neutral", "happy")

    class card:
        temperature = 1.3

    def classify_crops(self, crops):
        p = np.array([[0.2, 0.7, 0.1], [0.0, 0.5, 0.5]])
        return np.stack([p[int(c[0, 0]) % 2] for c in crops])


def test_neutral_reference_is_the_mean_output_and_a_valid_card_field():
    faces = np.zeros((5, 48, 48), np.uint8)
    faces[[1, 3], 0, 0] = 1                                   # 3 faces give row 0, 2 give row 1
    ref = neutral_reference(_FakeModel(), faces, "five faces", batch=2)
    assert ref["faces"] == 5 and ref["dataset"] == "five faces" and ref["labels"] == list(_FakeModel.labels)
    assert sum(ref["probabilities"]) == pytest.approx(1.0, abs=1e-9) and min(ref["probabilities"]) > 0
    assert ref["probabilities"][1] == pytest.approx((3 * 0.7 + 2 * 0.5) / 5, abs=1e-5)
    assert ref["temperature"] == 1.3


def test_neutral_reference_lands_in_a_card_the_engine_accepts(tmp_path):
    import shutil

    from obs_mindflow.engine import ModelCard
    from obs_mindflow.engine.catalog import MODELS_DIR

    folder = tmp_path / "m"
    shutil.copytree(MODELS_DIR / "fer-mini-xception", folder)
    before = json.loads((folder / "card.json").read_text())
    model = ExpressionModel.load(folder)
    faces = np.random.default_rng(0).integers(0, 256, (10, 48, 48), dtype=np.uint8)
    write_card_field(folder, neutral_reference(model, faces, "random test faces"))
    after = json.loads((folder / "card.json").read_text())
    assert {k: v for k, v in after.items() if k != "neutral_reference"} == \
        {k: v for k, v in before.items() if k != "neutral_reference"}
    card = ModelCard.load(folder)
    assert len(card.neutral_reference) == len(card.labels) and card.neutral_reference_info["faces"] == 10
    expect = model.classify_crops(list(faces)).mean(0)
    assert np.allclose(card.neutral_reference, expect / expect.sum(), atol=2e-6)


def test_fer2013_copies_are_matched_to_ferplus_faces_by_content():
    import cv2

    rng = np.random.default_rng(4)
    base = cv2.GaussianBlur(rng.integers(0, 256, (60, 48, 48), dtype=np.uint8), (0, 0), 2.0, borderType=cv2.BORDER_REFLECT)
    ferplus = base[:50]                                        # 10 faces of "FER2013" are not in "FER+"
    perm = rng.permutation(60)
    fer2013 = np.stack([cv2.equalizeHist(base[i]) for i in perm])    # equalised copies, another order
    fer2013 = np.clip(fer2013 + rng.normal(0, 3, fer2013.shape), 0, 255).astype(np.uint8)
    match = match_fer2013_to_ferplus(fer2013, ferplus)
    assert match.tolist() == [int(i) if i < 50 else -1 for i in perm]


# --- FER+ training, distillation, export (synthetic FER+ files) ---

from tools.train.data import WebcamConfig, augment_webcam, mix_batch  # noqa: E402
from tools.train.ferplus import VOTE_NAMES  # noqa: E402


def test_webcam_augmentation_is_reproducible_and_without_effects_is_the_identity():
    x = to_tensor(np.random.default_rng(0).integers(0, 256, (16, 48, 48), dtype=np.uint8))
    a = augment_webcam(x, WebcamConfig(), torch.Generator().manual_seed(5))
    b = augment_webcam(x, WebcamConfig(), torch.Generator().manual_seed(5))
    c = augment_webcam(x, WebcamConfig(), torch.Generator().manual_seed(6))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) >= -1.0 - 1e-6 and float(a.max()) <= 1.0 + 1e-6
    none = WebcamConfig(flip=0, rotate_deg=0, center_sigma=0, log_scale_sigma=0, pose=0, contrast=0, brightness=0,
                        gamma=(1.0, 1.0), dim=0, blur=0, lowres=0, noise=0, jpeg=0, erase=0)
    y = augment_webcam(x, none, torch.Generator().manual_seed(0))
    assert torch.allclose(y, x, atol=2 / 255 * 2)


def test_mixing_keeps_targets_distributions_and_probability_zero_changes_nothing():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 1, 48, 48)
    t = torch.softmax(torch.randn(32, 8), dim=1)
    x0, t0, kind = mix_batch(x, t, 0.0, 0.4, 1.0, g)
    assert kind == "none" and torch.equal(x0, x) and torch.equal(t0, t)
    kinds = set()
    for _ in range(20):
        xm, tm, kind = mix_batch(x, t, 1.0, 0.4, 1.0, g)
        kinds.add(kind)
        assert torch.allclose(tm.sum(1), torch.ones(32), atol=1e-5) and xm.shape == x.shape
    assert kinds == {"mixup", "cutmix"}


def test_bench_ferplus_figures_on_a_hand_made_example():
    from tools.bench_accuracy import build_label_map, ferplus_scores, restrict_to_data

    labels = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "contempt")
    #                 neu hap sur sad ang dis fea con unk NF
    votes = np.array([[8, 0, 0, 2, 0, 0, 0, 0, 0, 0],     # neutral, read sad (negative)
                      [9, 1, 0, 0, 0, 0, 0, 0, 0, 0],     # neutral, read neutral
                      [0, 0, 0, 0, 7, 0, 0, 0, 3, 0],     # angry, read angry
                      [0, 0, 0, 0, 0, 0, 0, 0, 6, 4],     # no majority (unknown): left out
                      [0, 9, 0, 0, 0, 0, 0, 1, 0, 0]])    # happy, read contempt (negative)
    probs = np.full((5, 8), 0.01)
    for i, j in enumerate([4, 6, 0, 6, 7]):
        probs[i, j] = 0.93
    f = ferplus_scores(probs, labels, votes, ("angry", "disgust", "fear", "sad", "contempt"))
    assert f["n_majority"] == 4 and f["accuracy"] == pytest.approx(0.5)
    assert f["neutral_read_negative"] == pytest.approx(0.5) and f["neutral_faces"] == 2
    assert f["predicted_negative_share"] == pytest.approx(0.75) and f["true_negative_share"] == pytest.approx(0.25)
    assert f["per_class_recall"]["happy"] == 0 and f["per_class_recall"]["angry"] == 1
    lm = build_label_map(labels, LABELS)
    r = restrict_to_data(probs, lm)
    assert r.shape == (5, 8) and np.allclose(r.sum(1), 1) and (r[:, 7] == 0).all() and r[4].argmax() != 7


def _synthetic_ferplus(folder: Path) -> None:
    """FER+-format npz files: each face's majority class is a bright square at its own place; votes are spread."""
    rng = np.random.default_rng(1)
    for name, n in (("train.npz", 320), ("validation.npz", 80)):
        cls = np.arange(n) % 8                       # index into VOTE_NAMES' 8 emotions
        images = rng.integers(0, 90, (n, 48, 48), dtype=np.uint8)
        votes = np.zeros((n, 10), np.uint8)
        for i, c in enumerate(cls):
            r, col = divmod(int(c), 3)
            images[i, 2 + 15 * r:12 + 15 * r, 2 + 15 * col:12 + 15 * col] = 230
            votes[i, c] = 7
            votes[i, rng.integers(0, 10, 3)] += 1
        np.savez(folder / name, images=images, votes=votes, vote_names=np.array(VOTE_NAMES),
                 image_name=np.array([f"fer{i:07d}.png" for i in range(n)]))


def _train_fp(data: Path, out: Path, *extra: str) -> None:
    cmd = [sys.executable, "-m", "tools.train.train", "--dataset", "ferplus", "--data-dir", str(data), "--out",
           str(out), "--head", "plain", "--arch", "r3", "--epochs", "2", "--batch", "32", "--threads", "1",
           "--mix-prob", "0.5", *extra]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def fp_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("ferplus")
    data = base / "ferplus"
    data.mkdir()
    _synthetic_ferplus(data)
    (base / "fer2013").mkdir()
    _synthetic_fer(base / "fer2013")                 # FER2013 PublicTest stand-in, for the export's comparison
    _train_fp(data, base / "teacher")
    _train_fp(data, base / "student", "--teacher", str(base / "teacher"), "--seed", "7", "--holdout-seed",
              "20260207", "--stop-after", "1")
    first = torch.load(base / "student" / "last.pt", weights_only=False)
    _train_fp(data, base / "student", "--teacher", str(base / "teacher"), "--seed", "7", "--holdout-seed",
              "20260207", "--resume")
    _train_fp(data, base / "student_straight", "--teacher", str(base / "teacher"), "--seed", "7", "--holdout-seed",
              "20260207")
    return data, base, first


def test_ferplus_distillation_resumes_to_the_same_weights_and_logs_majority_accuracy(fp_runs):
    data, base, first = fp_runs
    assert first["epoch"] == 1
    a = torch.load(base / "student_straight" / "last.pt", weights_only=False)
    b = torch.load(base / "student" / "last.pt", weights_only=False)
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    assert b["args"]["dataset"] == "ferplus" and b["args"]["classes"] == 8
    assert b["args"]["teacher"] == [str(base / "teacher")] and "--teacher" in b["command"]
    assert a["model"]["fc.weight"].shape[0] == 8
    log = (base / "student" / "train.log").read_text()
    assert "FER+ (8 classes)" in log and "teacher " in log and "done: 2 epochs" in log


def test_a_teacher_with_another_holdout_is_refused(fp_runs, tmp_path):
    data, base, _ = fp_runs
    cmd = [sys.executable, "-m", "tools.train.train", "--dataset", "ferplus", "--data-dir", str(data), "--out",
           str(tmp_path / "s"), "--head", "plain", "--arch", "r3", "--epochs", "1", "--batch", "32", "--threads", "1",
           "--teacher", str(base / "teacher"), "--holdout-seed", "5"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "another hold-out" in done.stdout + done.stderr


def test_ferplus_export_writes_an_8_class_card_with_every_figure_and_the_neutral_reference(fp_runs):
    from obs_mindflow.engine import ModelCard

    data, base, _ = fp_runs
    out = base / "model"
    cmd = [sys.executable, "-m", "tools.train.export", "--run", str(base / "student"), "--out", str(out),
           "--data-dir", str(data), "--fer2013-dir", str(base / "fer2013"), "--int8", "--int8-calibration", "16",
           "--timing-runs", "30"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    card = json.loads((out / "card.json").read_text())
    assert card["labels"] == list(LABELS8) and "contempt" in card["negative_labels"]
    acc = card["accuracy"]
    for key in ("accuracy", "per_class_recall", "neutral_read_negative", "predicted_negative_share",
                "true_negative_share", "ece_15_bins", "fer2013_publictest"):
        assert key in acc, key
    assert set(acc["per_class_recall"]) == {"neutral", "happy", "surprise", "sad", "angry", "disgust", "fear",
                                            "contempt"}
    assert card["extra"]["holdout"]["dataset"] == "ferplus" and card["extra"]["teachers"][0]["arch"] == "r3"
    assert card["ms_per_face"] > 0 and card["temperature"] > 0
    loaded = ModelCard.load(out)
    assert len(loaded.neutral_reference) == 8 and loaded.neutral_reference_info["faces"] > 0
    assert "hold-out" in loaded.neutral_reference_info["dataset"]
    # the reference tool finds the same faces from the card (auto) and computes the same thing
    before = card["neutral_reference"]
    done = subprocess.run([sys.executable, "-m", "tools.train.reference", str(out), "--ferplus-dir", str(data)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    after = json.loads((out / "card.json").read_text())
    assert after["neutral_reference"] == before
    unc = after["uncertain"]          # the "uncertain" thresholds from the same hold-out, and the engine uses them
    assert unc == card["uncertain"] and 0 <= unc["min_confidence"] < 1 and 0 <= unc["min_margin"] < 1
    assert ModelCard.load(out).uncertain == {"min_confidence": unc["min_confidence"], "min_margin": unc["min_margin"]}
    model = ExpressionModel.load(out)
    p = model.classify_crops([np.zeros((48, 48), np.uint8)])
    assert p.shape == (1, 8)


def test_init_starts_from_a_run_and_refuses_another_architecture(fp_runs, tmp_path):
    data, base, _ = fp_runs
    _train_fp(data, tmp_path / "ft", "--init", str(base / "teacher"), "--teacher", str(base / "teacher"),
              "--epochs", "1", "--lr", "0.001")
    log = (tmp_path / "ft" / "train.log").read_text()
    assert f"initialised from {base / 'teacher'}" in log
    t = torch.load(base / "teacher" / "last.pt", weights_only=False)["model"]
    ft = torch.load(tmp_path / "ft" / "last.pt", weights_only=False)
    assert ft["args"]["init"] == str(base / "teacher")
    close = [torch.allclose(v.float(), t[k].float(), atol=0.05) for k, v in ft["model"].items() if k.endswith("weight")]
    assert sum(close) > len(close) // 2          # a short, low-rate fine-tune stays near its start
    cmd = [sys.executable, "-m", "tools.train.train", "--dataset", "ferplus", "--data-dir", str(data), "--out",
           str(tmp_path / "bad"), "--arch", "r3d", "--head", "plain", "--epochs", "1", "--init", str(base / "teacher")]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "--init" in done.stdout + done.stderr


def test_a_fer2013_network_starts_a_ferplus_run_with_its_head_rows_and_contempt_from_scratch(runs, fp_runs, tmp_path):
    _, fer_base, _ = runs
    fp_data, _, _ = fp_runs
    _train_fp(fp_data, tmp_path / "ft", "--init", str(fer_base / "straight"), "--epochs", "1", "--lr", "1e-7",
              "--freeze-bn")
    init = torch.load(fer_base / "straight" / "last.pt", weights_only=False)["model"]
    ft = torch.load(tmp_path / "ft" / "last.pt", weights_only=False)["model"]
    assert init["fc.weight"].shape[0] == 7 and ft["fc.weight"].shape[0] == 8
    assert torch.allclose(ft["fc.weight"][:7], init["fc.weight"], atol=1e-3)      # the 7 shared labels carry over
    assert torch.allclose(ft["fc.bias"][:7], init["fc.bias"], atol=1e-3)
    assert not torch.allclose(ft["fc.weight"][7], init["fc.weight"], atol=1e-2)    # contempt's row is new
    body = [k for k in init if k.endswith("weight") and not k.startswith("fc.")]
    assert body and all(torch.allclose(ft[k].float(), init[k].float(), atol=1e-3) for k in body)


def test_one_network_of_an_ensembles_graph_is_rebuilt_with_its_own_weights(runs, tmp_path):
    from tools.train.from_onnx import rebuild
    from tools.train.train import load_run

    data, base, _ = runs
    out = tmp_path / "pair"
    _train(data, tmp_path / "other", "--seed", "5", "--holdout-seed", "20260207")
    _export([base / "straight", tmp_path / "other"], data, out)
    net, _ = load_run(tmp_path / "other")
    got = rebuild(out, "r3", member=1)
    x = torch.from_numpy(np.random.default_rng(3).uniform(-1, 1, (6, 1, 48, 48)).astype(np.float32))
    with torch.no_grad():
        assert torch.allclose(got(x), net(x), atol=1e-3)      # BatchNorm folded into the convolutions, same function
        assert not torch.allclose(rebuild(out, "r3", member=0)(x), net(x), atol=1e-3)     # the other network
    with pytest.raises(SystemExit, match="--member"):
        rebuild(out, "r3")
    done = subprocess.run([sys.executable, "-m", "tools.train.from_onnx", "--model", str(out), "--out",
                           str(tmp_path / "r")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "--member 0..1" in done.stderr


def test_train_only_changes_the_named_parameters_and_keeps_the_rest_exactly(fp_runs, tmp_path):
    data, base, _ = fp_runs
    _train_fp(data, tmp_path / "probe", "--init", str(base / "teacher"), "--freeze-bn", "--train-only", "fc",
              "--epochs", "1", "--lr", "0.05")
    init = torch.load(base / "teacher" / "last.pt", weights_only=False)["model"]
    got = torch.load(tmp_path / "probe" / "last.pt", weights_only=False)["model"]
    assert not torch.equal(got["fc.weight"], init["fc.weight"])
    assert all(torch.equal(v, init[k]) for k, v in got.items() if not k.startswith("fc."))
    assert "training only fc" in (tmp_path / "probe" / "train.log").read_text()
    for extra, said in ((("--train-only", "fc"), "needs --init"),
                        (("--init", str(base / "teacher"), "--freeze-bn", "--train-only", "head"), "no parameter")):
        cmd = [sys.executable, "-m", "tools.train.train", "--dataset", "ferplus", "--data-dir", str(data), "--out",
               str(tmp_path / "bad"), "--arch", "r3", "--head", "plain", "--epochs", "1", *extra]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode != 0 and said in done.stdout + done.stderr


def test_negative_weight_shifts_probability_towards_the_negative_classes_and_chooses_under_the_ceiling():
    from tools.train.choose_mix import choose
    from tools.train.negative_weight import weighted

    p = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    negative = np.array([False, True, True])
    q = weighted(p, negative, 2.0)
    assert np.allclose(q.sum(axis=1), 1) and np.allclose(q[0], [0.6, 0.6, 0.2] / np.float64(1.4))
    assert np.allclose(weighted(p, negative, 1.0), p)
    rows = [{"k": 1.0, "majority_accuracy": 0.80, "neutral_read_negative": 0.05, "negative_recall": 0.60},
            {"k": 2.0, "majority_accuracy": 0.798, "neutral_read_negative": 0.07, "negative_recall": 0.70},
            {"k": 3.0, "majority_accuracy": 0.797, "neutral_read_negative": 0.09, "negative_recall": 0.80},  # ceiling
            {"k": 4.0, "majority_accuracy": 0.70, "neutral_read_negative": 0.06, "negative_recall": 0.90}]   # accuracy
    assert choose(rows, ceiling=0.08, max_drop=0.005, knob="k")["k"] == 2.0
    assert choose(rows[:1] + rows[2:3], ceiling=0.08, max_drop=0.005, knob="k")["k"] == 1.0     # nothing else qualifies
