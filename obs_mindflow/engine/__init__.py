"""MindFlow's engine: plain Python (numpy, OpenCV, onnxruntime); never imports obspython.

Modules: ``card``/``catalog`` (model cards, bundled models), ``detector`` (Haar faces), ``model`` (ONNX expression
model), ``smoothing``, ``pipeline`` (the Analyzer: detect → classify → transform → smooth), ``video`` (a file through
the Analyzer), ``session/`` (a session in memory: statistics, rules, events, summary text), ``reports/`` (a session on
disk), ``views`` (what the outputs show), ``host`` (the live engine the OBS script drives), ``stills`` (one photo at once:
:func:`read_image`).

The names below are imported on first use (PEP 562), so the light modules — ``views``, ``catalog``, ``card``,
``session.summary`` — can be imported where numpy, OpenCV or onnxruntime are still missing (the OBS script's
properties before its packages are installed).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AnalysisResult": "results", "Timings": "results",
    "Analyzer": "pipeline", "AnalyzerStats": "pipeline",
    "DEFAULT_MODEL": "catalog", "MODELS_DIR": "catalog", "default_model_dir": "catalog", "list_models": "catalog",
    "resolve_model_dir": "catalog",
    "DetectorError": "detector", "DetectorOptions": "detector", "FaceDetector": "detector",
    "EmotionSmoother": "smoothing", "SmootherOptions": "smoothing",
    "ExpressionModel": "model", "ModelLoadError": "model", "ModelOptions": "model",
    "FrameError": "frames",
    "ModelCard": "card", "ModelCardError": "card",
    "FaceReading": "stills", "read_image": "stills",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
