"""Model cards: the real bundled cards load; a table of bad cards gives specific errors."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

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


def test_the_default_model_is_named_alike_everywhere():
    """The OBS settings module and the e2e test name the default without importing the engine (no numpy there)."""
    import ast

    from obs_mindflow.engine.catalog import DEFAULT_MODEL
    from obs_mindflow.obs.settings import DEFAULT_MODEL_CHOICE
    from tools import bench_accuracy

    assert DEFAULT_MODEL_CHOICE == DEFAULT_MODEL == default_model_dir().name
    assert bench_accuracy.DEFAULT_MODEL == default_model_dir()
    e2e = ast.parse((MODELS_DIR.parent / "tests" / "e2e" / "test_obs_e2e.py").read_text())
    consts = {t.id: n.value.value for n in e2e.body if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
              for t in n.targets if isinstance(t, ast.Name)}
    assert consts["DEFAULT_MODEL"] == DEFAULT_MODEL


def test_a_retired_bundled_model_name_resolves_to_its_replacement(caplog):
    """A saved OBS setting may name a bundled model that was since removed: it gets the replacement, with a warning."""
    from obs_mindflow.engine.catalog import RETIRED, resolve_model_dir

    for old, new in RETIRED.items():
        assert not (MODELS_DIR / old).exists() and (MODELS_DIR / new / "card.json").is_file()
        with caplog.at_level("WARNING", logger="obs_mindflow"):
            assert resolve_model_dir(old) == MODELS_DIR / new
        assert f"'{old}' was replaced by '{new}'" in caplog.text
    assert resolve_model_dir("no-such-model") == Path("no-such-model")   # unknown names stay errors at load time


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
    (_with(schema=True), "schema is True"),
    (_with(parameters=True), "'parameters' must be a positive integer"),
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
    (_with(input__equalize="yes"), "'input.equalize' must be true or false"),
    (_with(input__equalize=True, input__channels="rgb", input__mean=[0.5], input__std=[0.5]),
     "'input.equalize' needs gray input"),
    (_with(output="softmax"), "'output' must be one of"),
    (_with(temperature=0), "'temperature' must be > 0"),
    (_with(accuracy=0.58), "'accuracy' must be an object"),
    (_with(file="../model.onnx"), "'file' must be a file name inside the model folder"),
    (_with(uncertain={"min_confidence": 0.4}), "'uncertain' must be an object with 'min_confidence' and"),
    (_with(uncertain={"min_confidence": 1.2, "min_margin": 0}), "'uncertain.min_confidence' is a probability"),
    (_with(neutral_reference__std_log_probabilities=[1.0]), "'neutral_reference.std_log_probabilities' must be a list"),
    (_with(neutral_reference__std_log_probabilities=[-1.0] * 8), "'neutral_reference.std_log_probabilities' must be >= 0"),
    (lambda: [1, 2, 3], "the card must be a JSON object"),
]


def test_a_card_s_uncertain_thresholds_reach_the_analyzer(tmp_path):
    """Each bundled card carries the "uncertain" thresholds measured for its model on faces it never trained on;
    the analyser's smoother uses them (a card without them: SmootherOptions' defaults)."""
    from obs_mindflow.engine import Analyzer, SmootherOptions

    for folder in find_model_folders(MODELS_DIR):
        model = ExpressionModel.load(folder)
        assert set(model.card.uncertain) == {"min_confidence", "min_margin"}, folder.name
        with Analyzer(model) as analyzer:
            assert analyzer.smoother.options.min_confidence == model.card.uncertain["min_confidence"]
            assert analyzer.smoother.options.min_margin == model.card.uncertain["min_margin"]
    raw = _good()
    raw.pop("uncertain", None)
    shutil.copy(default_model_dir() / "model.onnx", tmp_path / "model.onnx")
    (tmp_path / "card.json").write_text(json.dumps(raw))
    with Analyzer(ExpressionModel.load(tmp_path)) as analyzer:
        assert analyzer.smoother.options == SmootherOptions()


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


def _other_size(r: dict) -> None:
    r["input"].update(height=r["input"]["height"] + 16, width=r["input"]["width"] + 16)


def _other_layout(r: dict) -> None:
    r["input"]["layout"] = "NHWC" if r["input"]["layout"] == "NCHW" else "NCHW"


def _other_channels(r: dict) -> None:
    r["input"].update(channels="rgb" if r["input"]["channels"] == "gray" else "gray", mean=[0.5], std=[0.5])


def _six_labels(r: dict) -> None:
    r.update(labels=["a", "b", "c", "d", "e", "f"], negative_labels=["a"])
    r.pop("neutral_reference", None)          # one value per label: a 6-label card cannot keep the 7-label one


SHAPE_MISMATCHES = [(_other_size, "the model expects"), (_other_layout, "the model expects"),
                    (_other_channels, "the model expects"), (_six_labels, "the card lists 6 labels")]


@pytest.mark.parametrize("change, message", SHAPE_MISMATCHES, ids=lambda v: getattr(v, "__name__", ""))
def test_card_vs_model_shape_mismatch(tmp_path, change, message):
    folder = _copy_default(tmp_path)
    raw = _good()
    change(raw)
    (folder / "card.json").write_text(json.dumps(raw))
    with pytest.raises(ModelCardError, match=message):
        ExpressionModel.load(folder)


def _tiny_onnx(path, batch, n_labels=3, size=8, logits=True):
    """A real (tiny) ONNX classifier: flatten → matmul → (softmax). ``batch`` fixed or None for dynamic."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(0, 0.1, (size * size, n_labels)).astype(np.float32), "w")
    shape = [batch if batch else "N", 1, size, size]
    nodes = [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "w"], ["y" if logits else "z"])]
    if not logits:
        nodes.append(helper.make_node("Softmax", ["z"], ["y"], axis=1))
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch if batch else "N", n_labels])],
                              [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def _tiny_card(folder, output="logits"):
    card = {"schema": 1, "name": "tiny", "file": "model.onnx", "labels": ["a", "b", "c"], "negative_labels": ["c"],
            "input": {"layout": "NCHW", "height": 8, "width": 8, "channels": "gray", "scale": 1 / 255,
                      "mean": [0.5], "std": [0.5], "crop_margin": 0.0},
            "output": output, "license": "MIT", "source": "test", "accuracy": {"note": "none"}}
    (folder / "card.json").write_text(json.dumps(card))


@pytest.mark.parametrize("fixed_batch", [1, 4])
def test_fixed_batch_models_handle_any_number_of_faces(tmp_path, fixed_batch):
    import numpy as np

    pytest.importorskip("onnx")
    _tiny_onnx(tmp_path / "model.onnx", fixed_batch)
    _tiny_card(tmp_path)
    model = ExpressionModel.load(tmp_path)
    rng = np.random.default_rng(1)
    crops = [rng.integers(0, 256, (20, 20, 3), dtype=np.uint8) for _ in range(9)]
    for n in (1, 3, 4, 5, 9):
        out = model.classify_crops(crops[:n])
        assert out.shape == (n, 3) and np.allclose(out.sum(axis=1), 1, atol=1e-5)
        single = np.concatenate([model.classify_crops([c]) for c in crops[:n]])
        np.testing.assert_allclose(out, single, atol=1e-5)


def test_logits_get_softmax_and_temperature(tmp_path):
    import numpy as np

    pytest.importorskip("onnx")
    _tiny_onnx(tmp_path / "model.onnx", None)
    _tiny_card(tmp_path)
    crop = np.random.default_rng(2).integers(0, 256, (8, 8), dtype=np.uint8)
    base = ExpressionModel.load(tmp_path)
    raw = base.infer(base.preprocess_crops([crop]))
    e = np.exp(raw - raw.max())
    np.testing.assert_allclose(base.classify_crops([crop]), e / e.sum(), atol=1e-6)
    card = json.loads((tmp_path / "card.json").read_text())
    card["temperature"] = 2.0
    (tmp_path / "card.json").write_text(json.dumps(card))
    hot = ExpressionModel.load(tmp_path).classify_crops([crop])
    e2 = np.exp(raw / 2 - (raw / 2).max())
    np.testing.assert_allclose(hot, e2 / e2.sum(), atol=1e-6)
