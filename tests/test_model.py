"""The expression model on real photos through the full detect + classify path, and its preprocessing."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from obs_mindflow.engine import (Analyzer, DetectorOptions, ExpressionModel, FaceDetector, ModelOptions, SmootherOptions,
                                 default_model_dir)
from obs_mindflow.engine.card import find_model_folders
from obs_mindflow.engine.catalog import MODELS_DIR
from tests.conftest import paste

# The expected label must win clearly. The floors suit calibrated models (mindflow-fer-r3d-r3: ECE 0.04 says
# 0.88 / 0.66 here); the over-confident mini-Xception (ECE 0.10) says 0.997 / 0.971.
GOLDEN = [("astronaut", "happy", 0.8), ("hopper", "neutral", 0.65)]


BUNDLED = [p.name for p in find_model_folders(MODELS_DIR)]


@pytest.fixture(scope="module", params=BUNDLED)
def bundled_model(request):
    return ExpressionModel.load(MODELS_DIR / request.param)


@pytest.mark.parametrize("photo, label, min_prob", GOLDEN)
def test_golden_photos_detect_and_classify(request, bundled_model, photo, label, min_prob):
    """Every bundled model, through the full detect + classify path."""
    img = request.getfixturevalue(photo)
    boxes = FaceDetector().detect(img)
    assert len(boxes) == 1
    probs = bundled_model.classify(img, boxes)
    assert probs.shape == (1, len(bundled_model.labels))
    got = bundled_model.labels[int(np.argmax(probs[0]))]
    assert got == label, dict(zip(bundled_model.labels, probs[0].round(3)))
    assert probs[0].max() >= min_prob


@pytest.mark.parametrize("photo, label, min_prob", GOLDEN)
def test_golden_photos_through_the_analyzer_in_a_720p_frame(request, default_model, photo, label, min_prob):
    img = request.getfixturevalue(photo)
    frame = paste((720, 1280), cv2.resize(img, (560, int(560 * img.shape[0] / img.shape[1])))[:700], 300, 10)
    analyzer = Analyzer(default_model, detector_options=DetectorOptions(min_track_s=0),   # a photo: no track,
                        smoother_options=SmootherOptions(warmup_s=0))                    # no warm-up
    result = analyzer.process(frame, 0.0)
    assert result.num_faces == 1
    assert result.raw_label == label
    assert result.emotion == label  # the first analysis is shown at once
    assert result.confidence >= min_prob - 0.1


@pytest.mark.parametrize("convert", [
    lambda im: im,
    lambda im: cv2.cvtColor(im, cv2.COLOR_BGR2BGRA),
    lambda im: cv2.cvtColor(im, cv2.COLOR_BGR2GRAY),
    lambda im: cv2.cvtColor(im, cv2.COLOR_BGR2GRAY)[:, :, None],
], ids=["bgr", "bgra", "gray", "gray-hw1"])
def test_frame_formats_agree(default_model, astronaut, convert):
    boxes = FaceDetector().detect(astronaut)
    ref = default_model.classify(astronaut, boxes)
    got = default_model.classify(convert(astronaut), boxes)
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_batch_equals_one_by_one(default_model, astronaut, hopper):
    crops = [astronaut[60:170, 170:280], hopper[100:330, 150:380], astronaut]
    batched = default_model.classify_crops(crops)
    single = np.concatenate([default_model.classify_crops([c]) for c in crops])
    np.testing.assert_allclose(batched, single, atol=1e-5)
    assert batched.shape == (3, len(default_model.labels))


def test_a_mirrored_webcam_reads_the_same(default_model, astronaut, hopper):
    """Many streamers mirror their webcam in OBS: the default model averages each face with its mirror image (in its
    graph), so mirroring changes no reading (without it, up to 13 points on these photos)."""
    crops = [astronaut[60:170, 170:280], hopper[100:330, 150:380], astronaut]
    mirrored = [np.ascontiguousarray(c[:, ::-1]) for c in crops]
    np.testing.assert_allclose(default_model.classify_crops(mirrored), default_model.classify_crops(crops), atol=1e-5)


def test_no_boxes_gives_empty_probabilities(default_model, astronaut):
    out = default_model.classify(astronaut, np.zeros((0, 4)))
    assert out.shape == (0, len(default_model.labels))


def test_boxes_at_the_border_are_clipped(default_model):
    frame = np.random.default_rng(0).integers(0, 256, (100, 120, 3), dtype=np.uint8)
    boxes = np.array([[-20, -20, 60, 60], [100, 80, 50, 50], [119, 99, 1, 1]])
    crops = default_model.crop_boxes((120, 100), boxes)
    assert (crops[:, 0] >= 0).all() and (crops[:, 2] <= 120).all() and (crops[:, 3] <= 100).all()
    assert ((crops[:, 2] - crops[:, 0]) >= 1).all() and ((crops[:, 3] - crops[:, 1]) >= 1).all()
    probs = default_model.classify(frame, boxes)
    assert probs.shape == (3, len(default_model.labels)) and np.allclose(probs.sum(axis=1), 1, atol=1e-4)


def test_crop_margin_follows_the_card(default_model):
    (x0, y0, x1, y1), = default_model.crop_boxes((1000, 1000), np.array([[100, 200, 100, 50]]))
    m = default_model.card.input.crop_margin
    assert (x0, y0, x1, y1) == (100 - 100 * m, 200 - 50 * m, 200 + 100 * m, 250 + 50 * m)


def test_preprocessing_matches_the_card(default_model):
    spec = default_model.card.input
    crop = np.full((10, 10, 3), 255, np.uint8)
    x = default_model.preprocess_crops([crop])
    assert x.dtype == np.float32
    assert x.shape == ((1, spec.height, spec.width, 1) if spec.layout == "NHWC" else (1, 1, spec.height, spec.width))
    assert np.allclose(x, (255 * spec.scale - spec.mean[0]) / spec.std[0])


def test_a_card_that_equalises_feeds_the_model_the_equalised_resized_crop(default_model, astronaut, tmp_path):
    """``input.equalize``: the crop is resized, then histogram-equalised (as FER2013's 48x48 images were), whatever
    its light: a darker copy of the face gives the same input."""
    import shutil

    import cv2

    folder = tmp_path / "eq"
    shutil.copytree(default_model_dir(), folder)
    card = json.loads((folder / "card.json").read_text())
    card["input"]["equalize"] = True
    (folder / "card.json").write_text(json.dumps(card))
    model = ExpressionModel.load(folder)
    spec = model.card.input
    assert spec.equalize and not default_model.card.input.equalize
    face = astronaut[30:230, 160:330]
    small = cv2.resize(cv2.cvtColor(face, cv2.COLOR_BGR2GRAY), (spec.width, spec.height), interpolation=cv2.INTER_AREA)
    want = default_model.preprocess_crops([cv2.equalizeHist(small)])
    assert np.array_equal(model.preprocess_crops([face]), want)
    assert not np.array_equal(default_model.preprocess_crops([face]), want)
    darker = (face.astype(np.float32) * 0.6).astype(np.uint8)
    assert np.abs(model.preprocess_crops([darker]) - want).mean() < 0.05


def test_threads_option_is_used():
    model = ExpressionModel.load(default_model_dir(), ModelOptions(intra_op_threads=2))
    assert model.options.intra_op_threads == 2
    assert "CPUExecutionProvider" in model.providers
    with pytest.raises(ValueError, match="intra_op_threads"):
        ExpressionModel.load(default_model_dir(), ModelOptions(intra_op_threads=0))


def test_unavailable_provider_falls_back_to_cpu(caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="obs_mindflow.engine.model"):
        model = ExpressionModel.load(default_model_dir(),
                                     ModelOptions(providers=("NoSuchExecutionProvider", "CPUExecutionProvider")))
    assert model.providers == ("CPUExecutionProvider",)
    assert "not available here: NoSuchExecutionProvider" in caplog.text
    assert "on CPUExecutionProvider" in caplog.text


def test_runtime_never_imports_torch():
    import subprocess
    import sys

    code = ("import sys, obs_mindflow.engine, obs_mindflow.cli; "
            "from obs_mindflow.engine import ExpressionModel, default_model_dir; ExpressionModel.load(default_model_dir()); "
            "bad = [m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
