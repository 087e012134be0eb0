"""Model cards: the real bundled cards load; a table of bad cards gives specific errors."""

from __future__ import annotations

import copy
import json
import shutil

import pytest

from obs_mindflow.engine import ExpressionModel, ModelCard, ModelCardError, ModelLoadError, default_model_dir
from obs_mindflow.engine.card import find_model_folders
from obs_mindflow.engine.catalog import MODELS_DIR


def test_every_bundled_model_loads_and_runs(astronaut):
    folders = find_model_folders(MODELS_DIR)
    assert default_model_dir() in folders
    for folder in folders:
        model = ExpressionModel.load(folder)
        probs = model.classify_crops([astronaut])
        assert probs.shape == (1, len(model.labels))
        assert abs(float(probs.sum()) - 1.0) < 1e-4
        assert set(model.card.negative_labels) <= set(model.labels)
        for name in model.card.license_files:
            assert (folder / name).is_file(), f"{folder.name}: licence file {name} missing"


def _good() -> dict:
    return json.loads((default_model_dir() / "card.json").read_text())


def _with(**changes):
    def make():
        raw = _good()
        for dotted, value in changes.items():
            target, keys = raw, dotted.split("__")
            for k in keys[:-1]:
                target = target[k]
            if value is _DELETE:
                del target[keys[-1]]
            else:
                target[keys[-1]] = value
        return raw
    return make


_DELETE = object()

BAD_CARDS = [
    (_with(labels=_DELETE), "missing field(s): labels"),
    (_with(source=_DELETE, license=_DELETE), "missing field(s): license, source"),
    (_with(colour="gray"), "unknown field(s): colour"),
    (_with(input__mean_rgb=[0.5]), "'input' has unknown field(s): mean_rgb"),
    (_with(input__std=_DELETE), "'input' is missing field(s): std"),
    (_with(schema=2), "schema is 2"),
    (_with(labels=["happy"]), "'labels' must be a list of at least two"),
    (_with(labels=["a", "a", "b", "c", "d", "e", "f"]), "'labels' has duplicates"),
    (_with(negative_labels=["anger"]), "names labels the model does not have: ['anger']"),
    (_with(input__layout="NWHC"), "'input.layout' must be one of"),
    (_with(input__channels="rgba"), "'input.channels' must be one of"),
    (_with(input__height=0), "'input.height' must be an integer"),
    (_with(input__width=64.5), "'input.width' must be an integer"),
    (_with(input__std=[0.0]), "'input.std' must be > 0"),
    (_with(input__mean=[0.5, 0.5]), "'input.mean' must be a list of 1 number for gray input"),
    (_with(input__crop_margin=-0.1), "'input.crop_margin' must be >= 0"),
    (_with(input__crop_margin=10), "fraction of the box size"),
    (_with(output="softmax"), "'output' must be one of"),
    (_with(temperature=0), "'temperature' must be > 0"),
    (_with(accuracy=0.58), "'accuracy' must be an object"),
    (_with(file="../model.onnx"), "'file' must be a file name inside the model folder"),
    (lambda: [1, 2, 3], "the card must be a JSON object"),
]


@pytest.mark.parametrize("make, message", BAD_CARDS, ids=[m for _, m in BAD_CARDS])
def test_bad_card_gives_specific_error(tmp_path, make, message):
    (tmp_path / "card.json").write_text(json.dumps(make()))
    with pytest.raises(ModelCardError) as err:
        ModelCard.load(tmp_path)
    assert message in str(err.value)
    assert "card.json" in str(err.value)


def test_missing_folder_and_missing_card(tmp_path):
    with pytest.raises(ModelCardError, match="model folder not found"):
        ModelCard.load(tmp_path / "nope")
    with pytest.raises(ModelCardError, match="no model card in"):
        ModelCard.load(tmp_path)


def test_card_not_json(tmp_path):
    (tmp_path / "card.json").write_text("{labels: [")
    with pytest.raises(ModelCardError, match="is not valid JSON"):
        ModelCard.load(tmp_path)


def _copy_default(tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(default_model_dir(), folder)
    return folder


def test_missing_onnx_file(tmp_path):
    folder = _copy_default(tmp_path)
    (folder / "model.onnx").unlink()
    with pytest.raises(ModelLoadError, match="model file not found"):
        ExpressionModel.load(folder)


@pytest.mark.parametrize("content", [b"", b"not an onnx model at all", b"\x08\x07" + bytes(range(256)) * 4])
def test_corrupt_onnx_file(tmp_path, content):
    folder = _copy_default(tmp_path)
    (folder / "model.onnx").write_bytes(content)
    with pytest.raises(ModelLoadError, match="corrupt or not an ONNX model"):
        ExpressionModel.load(folder)


def test_truncated_onnx_file(tmp_path):
    folder = _copy_default(tmp_path)
    data = (folder / "model.onnx").read_bytes()
    (folder / "model.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError):
        ExpressionModel.load(folder)


SHAPE_MISMATCHES = [
    ({"input": {"height": 48, "width": 48}}, "the model expects"),
    ({"input": {"layout": "NCHW"}}, "the model expects"),
    ({"input": {"channels": "rgb", "mean": [0.5], "std": [0.5]}}, "the model expects"),
    ({"labels": ["a", "b", "c", "d", "e", "f"], "negative_labels": ["a"]}, "the card lists 6 labels"),
]


@pytest.mark.parametrize("change, message", SHAPE_MISMATCHES)
def test_card_vs_model_shape_mismatch(tmp_path, change, message):
    folder = _copy_default(tmp_path)
    raw = _good()
    for key, value in change.items():
        if isinstance(value, dict):
            raw[key].update(value)
        else:
            raw[key] = value
    (folder / "card.json").write_text(json.dumps(raw))
    with pytest.raises(ModelCardError, match=message):
        ExpressionModel.load(folder)
