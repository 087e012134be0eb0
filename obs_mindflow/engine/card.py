"""Model cards: the JSON file beside an ONNX expression model that says how to use it.

The format is documented in ``models/README.md``. ``ModelCard.load(folder)`` validates a card strictly:
missing fields, unknown keys, wrong types and inconsistent labels all raise :class:`ModelCardError` with a
message that names the file, the field and what to do.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MindFlowError

CARD_FILE = "card.json"
CARD_SCHEMA = 1

_REQUIRED = {"schema", "name", "file", "labels", "negative_labels", "input", "output", "license", "source", "accuracy"}
_OPTIONAL = {"display_name", "description", "temperature", "license_files", "parameters", "ms_per_face", "notes", "extra",
             "neutral_reference", "uncertain", "real_video"}
_REFERENCE_REQUIRED = {"probabilities", "faces", "dataset"}
_INPUT_REQUIRED = {"layout", "height", "width", "channels", "scale", "mean", "std", "crop_margin"}
_INPUT_OPTIONAL = {"equalize"}
_LAYOUTS = ("NCHW", "NHWC")
_CHANNELS = ("gray", "rgb", "bgr")
_OUTPUTS = ("probabilities", "logits")


class ModelCardError(MindFlowError, ValueError):
    """A model card is missing, unreadable or inconsistent. The message says which file and field, and the fix."""


@dataclass(frozen=True)
class InputSpec:
    """How a face crop becomes the model's input tensor.

    ``height``/``width`` in pixels; ``channels`` is the colour the crop is converted to; pixel values (uint8)
    are multiplied by ``scale`` and then normalised ``(x - mean) / std`` per channel; ``crop_margin`` is the
    fraction of the face box's width/height added on each side before cropping. ``equalize``: the resized gray crop
    is histogram-equalised first (``cv2.equalizeHist``), as FER2013's images are; gray input only.
    """

    layout: str
    height: int
    width: int
    channels: str
    scale: float
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_margin: float
    equalize: bool = False

    @property
    def num_channels(self) -> int:
        return 1 if self.channels == "gray" else 3

    def tensor_shape(self) -> tuple[int, int, int]:
        """The non-batch shape of the input tensor in the card's layout."""
        c = self.num_channels
        return (c, self.height, self.width) if self.layout == "NCHW" else (self.height, self.width, c)


@dataclass(frozen=True)
class ModelCard:
    """A validated model card. ``folder`` is where it was loaded from; ``model_path`` the ONNX file."""

    folder: Path
    name: str
    file: str
    labels: tuple[str, ...]
    negative_labels: tuple[str, ...]
    input: InputSpec
    output: str
    license: str
    source: str
    accuracy: dict[str, Any]
    display_name: str = ""
    description: str = ""
    temperature: float = 1.0
    license_files: tuple[str, ...] = ()
    parameters: int | None = None
    ms_per_face: float | None = None
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    neutral_reference: tuple[float, ...] | None = None
    neutral_reference_log: tuple[float, ...] | None = None
    neutral_reference_info: dict[str, Any] = field(default_factory=dict)
    neutral_reference_std_log: tuple[float, ...] | None = None
    # The thresholds of the "uncertain" state measured for this model (``{"min_confidence": .., "min_margin": ..}``;
    # empty: SmootherOptions' defaults). Written by tools/train/reference.py (uncertain_thresholds).
    uncertain: dict[str, float] = field(default_factory=dict)

    @property
    def model_path(self) -> Path:
        return self.folder / self.file

    @property
    def title(self) -> str:
        return self.display_name or self.name

    def is_negative(self, label: str) -> bool:
        return label in self.negative_labels

    @classmethod
    def load(cls, folder: str | Path) -> "ModelCard":
        """Load and validate ``folder/card.json`` (``folder`` may also be the card file itself)."""
        path = Path(folder).expanduser()
        if path.is_file() and path.suffix == ".json":
            path = path.parent
        card_path = path / CARD_FILE
        if not path.is_dir():
            raise ModelCardError.said("problem.model_folder_missing", path=path, card_file=CARD_FILE)
        if not card_path.is_file():
            raise ModelCardError.said("problem.no_card", path=path, card_path=card_path)
        try:
            raw = json.loads(card_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelCardError.said("problem.card_not_json", card_path=card_path, detail=exc) from exc
        return cls.from_dict(raw, path, source_name=str(card_path))

    @classmethod
    def from_dict(cls, raw: Any, folder: str | Path, source_name: str = "model card") -> "ModelCard":
        """Validate a parsed card. ``folder`` is where relative file names resolve."""
        where = source_name

        def fail(msg: str) -> ModelCardError:
            return ModelCardError(f"{where}: {msg} (format: models/README.md)")

        if not isinstance(raw, dict):
            raise fail("the card must be a JSON object")
        missing = sorted(_REQUIRED - raw.keys())
        if missing:
            raise fail(f"missing field(s): {', '.join(missing)}")
        unknown = sorted(raw.keys() - _REQUIRED - _OPTIONAL)
        if unknown:
            raise fail(f"unknown field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(_REQUIRED | _OPTIONAL))}")
        if type(raw["schema"]) is not int or raw["schema"] != CARD_SCHEMA:
            raise fail(f"schema is {raw['schema']!r}; this MindFlow reads schema {CARD_SCHEMA}")

        def string(key: str, obj: dict = raw, optional: bool = False) -> str:
            value = obj.get(key, "")
            if not isinstance(value, str) or (not optional and not value.strip()):
                raise fail(f"'{key}' must be a non-empty string, got {value!r}")
            return value

        labels = raw["labels"]
        if (not isinstance(labels, list) or len(labels) < 2
                or not all(isinstance(x, str) and x.strip() for x in labels)):
            raise fail(f"'labels' must be a list of at least two non-empty strings, got {labels!r}")
        if len(set(labels)) != len(labels):
            raise fail(f"'labels' has duplicates: {labels}")
        negatives = raw["negative_labels"]
        if not isinstance(negatives, list) or not all(isinstance(x, str) for x in negatives):
            raise fail(f"'negative_labels' must be a list of strings, got {negatives!r}")
        strangers = [x for x in negatives if x not in labels]
        if strangers:
            raise fail(f"'negative_labels' names labels the model does not have: {strangers}; labels are {labels}")

        spec = raw["input"]
        if not isinstance(spec, dict):
            raise fail("'input' must be an object")
        missing = sorted(_INPUT_REQUIRED - spec.keys())
        if missing:
            raise fail(f"'input' is missing field(s): {', '.join(missing)}")
        unknown = sorted(spec.keys() - _INPUT_REQUIRED - _INPUT_OPTIONAL)
        if unknown:
            raise fail(f"'input' has unknown field(s): {', '.join(unknown)}")
        if spec["layout"] not in _LAYOUTS:
            raise fail(f"'input.layout' must be one of {_LAYOUTS}, got {spec['layout']!r}")
        if spec["channels"] not in _CHANNELS:
            raise fail(f"'input.channels' must be one of {_CHANNELS}, got {spec['channels']!r}")
        for key in ("height", "width"):
            v = spec[key]
            if not isinstance(v, int) or isinstance(v, bool) or not 8 <= v <= 1024:
                raise fail(f"'input.{key}' must be an integer between 8 and 1024, got {v!r}")
        n_ch = 1 if spec["channels"] == "gray" else 3

        def number(v: Any, name: str, positive: bool = False, nonneg: bool = False) -> float:
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
                raise fail(f"'{name}' must be a finite number, got {v!r}")
            if positive and v <= 0:
                raise fail(f"'{name}' must be > 0, got {v!r}")
            if nonneg and v < 0:
                raise fail(f"'{name}' must be >= 0, got {v!r}")
            return float(v)

        def per_channel(key: str, positive: bool) -> tuple[float, ...]:
            v = spec[key]
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                v = [v]
            if not isinstance(v, list) or len(v) not in (1, n_ch):
                want = "1 number" if n_ch == 1 else f"1 or {n_ch} numbers"
                raise fail(f"'input.{key}' must be a list of {want} for {spec['channels']} input, got {spec[key]!r}")
            values = tuple(number(x, f"input.{key}", positive=positive) for x in v)
            return values * n_ch if len(values) == 1 else values

        input_spec = InputSpec(
            layout=spec["layout"], height=spec["height"], width=spec["width"], channels=spec["channels"],
            scale=number(spec["scale"], "input.scale", positive=True),
            mean=per_channel("mean", positive=False), std=per_channel("std", positive=True),
            crop_margin=number(spec["crop_margin"], "input.crop_margin", nonneg=True),
            equalize=spec.get("equalize", False),
        )
        if not isinstance(input_spec.equalize, bool):
            raise fail(f"'input.equalize' must be true or false, got {input_spec.equalize!r}")
        if input_spec.equalize and input_spec.channels != "gray":
            raise fail("'input.equalize' needs gray input ('input.channels': \"gray\"): equalisation is per intensity")
        if input_spec.crop_margin > 1:
            raise fail(f"'input.crop_margin' is a fraction of the box size per side (0.1 = 10 %); got {input_spec.crop_margin}")
        if raw["output"] not in _OUTPUTS:
            raise fail(f"'output' must be one of {_OUTPUTS}, got {raw['output']!r}")
        if not isinstance(raw["accuracy"], dict):
            raise fail(f"'accuracy' must be an object (it may hold a note when nothing was measured), got {raw['accuracy']!r}")
        license_files = raw.get("license_files", [])
        if not isinstance(license_files, list) or not all(isinstance(x, str) for x in license_files):
            raise fail(f"'license_files' must be a list of file names, got {license_files!r}")
        extra = raw.get("extra", {})
        if not isinstance(extra, dict):
            raise fail(f"'extra' must be an object, got {extra!r}")
        parameters = raw.get("parameters")
        if parameters is not None and (type(parameters) is not int or parameters <= 0):
            raise fail(f"'parameters' must be a positive integer, got {parameters!r}")
        ms = raw.get("ms_per_face")
        reference, reference_log, reference_info, reference_std = None, None, {}, None
        if "neutral_reference" in raw:
            ref = raw["neutral_reference"]
            if not isinstance(ref, dict) or sorted(_REFERENCE_REQUIRED - ref.keys()):
                raise fail("'neutral_reference' must be an object with "
                           f"{', '.join(sorted(_REFERENCE_REQUIRED))}, got {ref!r}")
            probs = ref["probabilities"]
            if (not isinstance(probs, list) or len(probs) != len(labels)
                    or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in probs)):
                raise fail(f"'neutral_reference.probabilities' must be a list of {len(labels)} numbers in the order "
                           f"of 'labels', got {probs!r}")
            values = tuple(number(x, "neutral_reference.probabilities", positive=True) for x in probs)
            if abs(sum(values) - 1.0) > 1e-3:
                raise fail(f"'neutral_reference.probabilities' must sum to 1, got {sum(values):.4f}")
            if type(ref["faces"]) is not int or ref["faces"] <= 0:
                raise fail(f"'neutral_reference.faces' must be a positive integer, got {ref['faces']!r}")
            reference = values
            def per_label(key: str, nonneg: bool = False) -> tuple[float, ...] | None:
                v = ref.get(key)
                if v is None:
                    return None
                if (not isinstance(v, list) or len(v) != len(labels)
                        or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)):
                    raise fail(f"'neutral_reference.{key}' must be a list of {len(labels)} numbers in the order of "
                               f"'labels', got {v!r}")
                return tuple(number(x, f"neutral_reference.{key}", nonneg=nonneg) for x in v)

            reference_log = per_label("mean_log_probabilities")
            if reference_log is not None and any(x > 0 for x in reference_log):
                raise fail("'neutral_reference.mean_log_probabilities' are logs of probabilities: each <= 0")
            reference_std = per_label("std_log_probabilities", nonneg=True)
            reference_info = {k: v for k, v in ref.items()
                              if k not in ("probabilities", "mean_log_probabilities", "std_log_probabilities")}
        uncertain: dict[str, float] = {}
        if "uncertain" in raw:
            u = raw["uncertain"]
            if not isinstance(u, dict) or not all(k in u for k in ("min_confidence", "min_margin")):
                raise fail("'uncertain' must be an object with 'min_confidence' and 'min_margin'")
            for k in ("min_confidence", "min_margin"):
                v = number(u[k], f"uncertain.{k}", nonneg=True)
                if v >= 1:
                    raise fail(f"'uncertain.{k}' is a probability below 1, got {v}")
                uncertain[k] = v
        file = string("file")
        if Path(file).is_absolute() or ".." in Path(file).parts:
            raise fail(f"'file' must be a file name inside the model folder, got {file!r}")
        return cls(
            folder=Path(folder), name=string("name"), file=file, labels=tuple(labels),
            negative_labels=tuple(negatives), input=input_spec, output=raw["output"],
            license=string("license"), source=string("source"), accuracy=dict(raw["accuracy"]),
            display_name=string("display_name", optional=True), description=string("description", optional=True),
            temperature=number(raw.get("temperature", 1.0), "temperature", positive=True),
            license_files=tuple(license_files), parameters=parameters,
            ms_per_face=None if ms is None else number(ms, "ms_per_face", nonneg=True),
            notes=string("notes", optional=True), extra=dict(extra),
            neutral_reference=reference, neutral_reference_log=reference_log, neutral_reference_info=reference_info,
            neutral_reference_std_log=reference_std,
            uncertain=uncertain,
        )


def find_model_folders(root: str | Path) -> list[Path]:
    """Folders directly under ``root`` that hold a ``card.json``, sorted by name."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / CARD_FILE).is_file())
