"""The expression model: any ONNX classifier described by a model card (see ``card.py``).

``ExpressionModel.classify(frame, boxes)`` crops every face of a frame, preprocesses the crops as the card says and
runs them through onnxruntime in **one batched call**, returning per-face probabilities in the card's label order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ..errors import MindFlowError
from .card import ModelCard, ModelCardError
from .frames import as_channels

log = logging.getLogger(__name__)


class ModelLoadError(MindFlowError, RuntimeError):
    """The ONNX file is missing, corrupt or does not match its card. The message says what to do."""


@dataclass(frozen=True)
class ModelOptions:
    """Run-time options for :class:`ExpressionModel`.

    ``intra_op_threads``: onnxruntime threads for one inference (1 keeps OBS smooth; the default).
    ``providers``: onnxruntime execution providers in order of preference; those not available here are skipped
    and ``CPUExecutionProvider`` is always appended as the fallback.
    """

    intra_op_threads: int = 1
    providers: tuple[str, ...] = ("CPUExecutionProvider",)


def _softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class ExpressionModel:
    """An ONNX expression classifier plus its card.

    Boxes are ``(x, y, w, h)`` in frame pixels (top-left corner, width, height), as the detector returns them.
    Frames are BGR, BGRA or grayscale ``uint8`` arrays (``H×W``, ``H×W×1``, ``H×W×3`` or ``H×W×4``).
    """

    def __init__(self, card: ModelCard, options: ModelOptions | None = None) -> None:
        import onnxruntime as ort

        self.card = card
        self.options = options or ModelOptions()
        if self.options.intra_op_threads < 1:
            raise ValueError(f"intra_op_threads must be >= 1, got {self.options.intra_op_threads}")
        path = card.model_path
        if not path.is_file():
            raise ModelLoadError.said("problem.model_file_missing", path=path, card=card.folder / "card.json",
                                      file=card.file)
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.options.intra_op_threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        # Idle worker threads would otherwise busy-wait between inferences, stealing CPU from OBS.
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        available = set(ort.get_available_providers())
        wanted = [p for p in self.options.providers if p in available]
        skipped = [p for p in self.options.providers if p not in available]
        if "CPUExecutionProvider" not in wanted:
            wanted.append("CPUExecutionProvider")
        try:
            self._session = ort.InferenceSession(str(path), sess_options=so, providers=wanted)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf/… types
            raise ModelLoadError.said("problem.model_corrupt", path=path,
                                      detail=f"{type(exc).__name__}: {str(exc).strip()[:300]}") from exc
        self.providers = tuple(self._session.get_providers())
        log.info("expression model %s: onnxruntime %s on %s (threads %d)%s", card.name, ort.__version__,
                 ", ".join(self.providers), self.options.intra_op_threads,
                 f"; not available here: {', '.join(skipped)}" if skipped else "")
        inputs = self._session.get_inputs()
        outputs = self._session.get_outputs()
        if len(inputs) != 1:
            raise ModelLoadError(f"{path}: expected one input tensor, the model has {len(inputs)}: "
                                 f"{[i.name for i in inputs]}")
        self.input_name = inputs[0].name
        self.output_name = outputs[0].name
        self._check_shapes(inputs[0].shape, outputs[0].shape)
        self._dtype = np.float16 if inputs[0].type == "tensor(float16)" else np.float32
        spec = card.input
        c = spec.num_channels
        # Fold scale/mean/std into one multiply-add: x * a + b.
        self._a = (np.array([spec.scale] * c, np.float32) / np.array(spec.std, np.float32))
        self._b = -np.array(spec.mean, np.float32) / np.array(spec.std, np.float32)

    @classmethod
    def load(cls, folder: str | Path, options: ModelOptions | None = None) -> "ExpressionModel":
        """Load the card in ``folder`` and its ONNX file."""
        return cls(ModelCard.load(folder), options)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.card.labels

    def _check_shapes(self, in_shape: Sequence, out_shape: Sequence) -> None:
        card, path = self.card, self.card.model_path
        want = card.input.tensor_shape()
        if len(in_shape) != 4:
            raise ModelCardError(f"{path}: the model's input has shape {list(in_shape)}, but the card describes a "
                                 f"4-D {card.input.layout} tensor (batch, {', '.join(map(str, want))}); fix the card")
        for got, exp in zip(in_shape[1:], want):
            if isinstance(got, int) and got != exp:
                raise ModelCardError(
                    f"{path}: card says input {card.input.layout} (batch, {', '.join(map(str, want))}) "
                    f"but the model expects {list(in_shape)}; fix 'input' in the card (layout, height, width, channels)")
        n = out_shape[-1] if len(out_shape) >= 1 else None
        if len(out_shape) != 2 or (isinstance(n, int) and n != len(card.labels)):
            raise ModelCardError(f"{path}: the model outputs shape {list(out_shape)}, but the card lists "
                                 f"{len(card.labels)} labels; the card's 'labels' must match the model's classes")
        self._fixed_batch = in_shape[0] if isinstance(in_shape[0], int) else None

    # -- the three stages -------------------------------------------------------------------------------------

    def crop_boxes(self, frame_size: tuple[int, int], boxes: np.ndarray) -> np.ndarray:
        """Grow ``(x, y, w, h)`` boxes by the card's margin on each side and clip to the frame (``(width, height)``).

        Returns ``(N, 4)`` int boxes as ``(x0, y0, x1, y1)``, exclusive right/bottom, each at least 1×1.
        """
        fw, fh = frame_size
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        m = self.card.input.crop_margin
        x0 = np.floor(boxes[:, 0] - m * boxes[:, 2])
        y0 = np.floor(boxes[:, 1] - m * boxes[:, 3])
        x1 = np.ceil(boxes[:, 0] + boxes[:, 2] * (1 + m))
        y1 = np.ceil(boxes[:, 1] + boxes[:, 3] * (1 + m))
        x0 = np.clip(x0, 0, max(fw - 1, 0))
        y0 = np.clip(y0, 0, max(fh - 1, 0))
        x1 = np.clip(np.maximum(x1, x0 + 1), 1, fw)
        y1 = np.clip(np.maximum(y1, y0 + 1), 1, fh)
        return np.stack([x0, y0, x1, y1], axis=1).astype(np.int64)

    def preprocess(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Crop (the card's margin around each ``(x, y, w, h)`` box), colour-convert and resize every face; returns
        the batched input tensor for :meth:`infer`."""
        frame = np.asarray(frame)
        h, w = frame.shape[:2]
        crops = []
        for x0, y0, x1, y1 in self.crop_boxes((w, h), boxes):
            crops.append(frame[y0:y1, x0:x1])
        return self.preprocess_crops(crops)

    def preprocess_crops(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Preprocess already-cropped faces (uint8 BGR/BGRA/gray, any size) into the model's input batch."""
        spec = self.card.input
        c = spec.num_channels
        batch = np.empty((len(crops), spec.height, spec.width, c), np.float32)
        for i, crop in enumerate(crops):
            crop = as_channels(crop, spec.channels)
            ch, cw = crop.shape[:2]
            interp = cv2.INTER_AREA if (ch > spec.height and cw > spec.width) else cv2.INTER_LINEAR
            small = cv2.resize(crop, (spec.width, spec.height), interpolation=interp)
            if spec.equalize:
                small = cv2.equalizeHist(small)
            batch[i] = small.reshape(spec.height, spec.width, c)
        batch *= self._a
        batch += self._b
        if spec.layout == "NCHW":
            batch = batch.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(batch, dtype=self._dtype)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Run the model on a preprocessed batch; returns raw outputs ``(N, C)`` as float32."""
        if batch.shape[0] == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        b = self._fixed_batch
        if b is not None and batch.shape[0] != b:
            # A model exported with a fixed batch size: run chunks of exactly that size, zero-padding the last.
            n = batch.shape[0]
            chunks = []
            for i in range(0, n, b):
                part = batch[i:i + b]
                if part.shape[0] < b:
                    part = np.concatenate([part, np.zeros((b - part.shape[0],) + part.shape[1:], part.dtype)])
                chunks.append(self.infer(part))
            return np.concatenate(chunks)[:n]
        out = self._session.run([self.output_name], {self.input_name: batch})[0]
        return np.asarray(out, np.float32).reshape(batch.shape[0], -1)

    def postprocess(self, raw: np.ndarray) -> np.ndarray:
        """Raw outputs → calibrated probabilities ``(N, C)``, rows summing to 1."""
        if raw.shape[0] == 0:
            return raw
        t = self.card.temperature
        if self.card.output == "logits":
            return _softmax(raw / t)
        if t == 1.0:
            return raw / np.maximum(raw.sum(axis=1, keepdims=True), 1e-12)
        return _softmax(np.log(np.maximum(raw, 1e-12)) / t)

    # -- public ---------------------------------------------------------------------------------------------

    def classify(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Probabilities ``(N, C)`` (float32, card label order) for the ``N`` boxes ``(x, y, w, h)`` in ``frame``."""
        boxes = np.asarray(boxes).reshape(-1, 4)
        if len(boxes) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        return self.postprocess(self.infer(self.preprocess(frame, boxes)))

    def classify_crops(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Probabilities ``(N, C)`` for already-cropped faces (no margin applied)."""
        return self.postprocess(self.infer(self.preprocess_crops(crops)))
