"""tools.train.ensemble: the composed graph computes what the two bundled models compute run apart."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from obs_mindflow.engine.model import ExpressionModel  # noqa: E402
from tools.train.ensemble import (DEFAULT_FER2013_MODEL, DEFAULT_FERPLUS_MODEL, _load, check_pair,  # noqa: E402
                                  compose, mix)

FACES = Path(__file__).resolve().parent / "data" / "faces"


def _crops() -> list[np.ndarray]:
    """Six gray crops of the two public-domain photos: whole, centre, and a mirrored centre of each."""
    out = []
    for name in ("grace_hopper.jpg", "astronaut.png"):
        img = cv2.imread(str(FACES / name), cv2.IMREAD_GRAYSCALE)
        h, w = img.shape
        centre = img[h // 8: h - h // 4, w // 4: w - w // 4]
        out += [img, centre, centre[:, ::-1].copy()]
    return out


@pytest.mark.parametrize("mode,alpha", [("arith", 0.0), ("arith", 0.25), ("arith", 1.0), ("geo", 0.1), ("geo", 0.6)])
def test_composed_graph_equals_the_two_models_run_apart(tmp_path, mode, alpha):
    fp, f13 = ExpressionModel.load(DEFAULT_FERPLUS_MODEL), ExpressionModel.load(DEFAULT_FER2013_MODEL)
    crops = _crops()
    apart = mix(fp.classify_crops(crops), f13.classify_crops(crops), alpha, mode)
    fp_card, fp_model = _load(DEFAULT_FERPLUS_MODEL)
    f13_card, f13_model = _load(DEFAULT_FER2013_MODEL)
    onnx.save(compose(fp_model, f13_model, fp_card["temperature"], f13_card["temperature"], alpha, mode),
              str(tmp_path / "model.onnx"))
    card = dict(fp_card, output="probabilities" if mode == "arith" else "logits", temperature=1.0)
    card.pop("neutral_reference"), card.pop("uncertain")
    (tmp_path / "card.json").write_text(json.dumps(card))
    (tmp_path / "LICENSE").write_text((DEFAULT_FERPLUS_MODEL / "LICENSE").read_text())
    together = ExpressionModel.load(tmp_path).classify_crops(crops)
    assert together.shape == (len(crops), 8)
    assert np.abs(together - apart).max() < 1e-5
    assert np.allclose(together.sum(axis=1), 1.0, atol=1e-5)
    if alpha == 0.0:
        assert np.abs(together - fp.classify_crops(crops)).max() < 1e-5
    if mode == "arith" and alpha == 1.0:
        assert np.all(together[:, 7] == 0.0)                    # contempt gets nothing from the FER2013 side
        assert np.abs(together[:, :7] - f13.classify_crops(crops)).max() < 1e-5


def test_models_that_read_different_crops_are_refused():
    fp_card, _ = _load(DEFAULT_FERPLUS_MODEL)
    f13_card, _ = _load(DEFAULT_FER2013_MODEL)
    check_pair(fp_card, f13_card)
    other = dict(f13_card, input=dict(f13_card["input"], equalize=True))
    with pytest.raises(ValueError, match="different crops"):
        check_pair(fp_card, other)
