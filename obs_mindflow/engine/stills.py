"""One photo, read at once: every face in a still image with its expression.

The :class:`~.pipeline.Analyzer` is built for a stream: a face counts once it has been seen for 0.4 s (Haar's false
faces come and go) and the first label waits for 0.6 s of readings (a first frame caught mid-word must not be held
for the dwell). A single photo has neither, so ``Analyzer.process`` on one finds no face. :func:`read_image` is the
still's way, with the same detector, model and corrections and without the temporal parts::

    from obs_mindflow.engine import ExpressionModel, default_model_dir, read_image
    model = ExpressionModel.load(default_model_dir())
    for face in read_image(model, cv2.imread("photo.jpg")):
        print(face.box, face.label, f"{face.confidence:.0%}", face.negative)

Faces come largest first. ``transforms`` are the Analyzer's (a personal baseline's correction, for instance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .detector import DetectorOptions, FaceDetector
from .frames import check_frame
from .model import ExpressionModel


@dataclass(frozen=True)
class FaceReading:
    """One face of a still: ``box`` ``(x, y, w, h)`` in image pixels; ``label`` the top class and ``confidence`` its
    probability; ``probabilities`` per label (the card's order); ``negative`` the summed probability of the card's
    negative labels."""

    box: tuple[int, int, int, int]
    label: str
    confidence: float
    probabilities: dict[str, float]
    negative: float


def read_image(model: ExpressionModel, image: np.ndarray,
               transforms: Sequence[Callable[[np.ndarray], np.ndarray]] = (),
               detector_options: DetectorOptions | None = None) -> list[FaceReading]:
    """Every face in ``image`` (gray, BGR or BGRA uint8) with its reading; ``[]`` when there is none. Raises
    :class:`~.frames.FrameError` for something that is not an image."""
    frame = check_frame(image)
    boxes = FaceDetector(detector_options).detect(frame)        # no timestamp: a photo, every detection counts
    if not len(boxes):
        return []
    boxes = boxes[np.argsort(-(boxes[:, 2] * boxes[:, 3]), kind="stable")]
    probs = model.postprocess(model.infer(model.preprocess(frame, boxes)))
    for transform in transforms:
        probs = transform(probs)
    labels = model.labels
    negative = np.array([lab in model.card.negative_labels for lab in labels])
    out = []
    for box, p in zip(boxes, probs):
        top = int(np.argmax(p))
        out.append(FaceReading(tuple(int(v) for v in box), labels[top], float(p[top]),
                               {lab: float(v) for lab, v in zip(labels, p)}, float(p[negative].sum())))
    return out
