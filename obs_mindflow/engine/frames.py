"""Frame format helpers. Frames are ``uint8`` numpy arrays: grayscale ``H×W`` or ``H×W×1``, BGR ``H×W×3``, BGRA ``H×W×4``."""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import MindFlowError


class FrameError(MindFlowError, ValueError):
    """A frame is not an image MindFlow can read (wrong dtype, shape or channel count)."""


def check_frame(frame: object) -> np.ndarray:
    """Return ``frame`` as a uint8 array of 2 or 3 dims with 1, 3 or 4 channels; raise :class:`FrameError` if not.

    A zero-size frame (0 rows or columns) is valid: it simply holds no face.
    """
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"a frame must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise FrameError(f"a frame must be uint8 (0..255), got {frame.dtype}; convert with frame.astype(np.uint8)")
    if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] in (1, 3, 4)):
        return frame
    raise FrameError(f"a frame must be H×W (gray), H×W×1, H×W×3 (BGR) or H×W×4 (BGRA); got shape {frame.shape}")


def to_gray(frame: np.ndarray) -> np.ndarray:
    """Grayscale view or copy of a gray/BGR/BGRA frame (``H×W``)."""
    if frame.ndim == 2:
        return frame
    c = frame.shape[2]
    if c == 1:
        return frame[:, :, 0]
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY if c == 3 else cv2.COLOR_BGRA2GRAY)


def as_channels(img: np.ndarray, channels: str) -> np.ndarray:
    """Convert a gray/BGR/BGRA image to ``channels`` (``"gray"`` → ``H×W``, ``"rgb"``/``"bgr"`` → ``H×W×3``)."""
    if channels == "gray":
        return to_gray(img)
    if img.ndim == 2 or img.shape[2] == 1:
        code = cv2.COLOR_GRAY2RGB if channels == "rgb" else cv2.COLOR_GRAY2BGR
        return cv2.cvtColor(np.ascontiguousarray(img.reshape(img.shape[:2])), code)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB if channels == "rgb" else cv2.COLOR_BGRA2BGR)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if channels == "rgb" else img
