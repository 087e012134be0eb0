"""MindFlow's engine: plain Python (numpy, OpenCV, onnxruntime); never imports obspython."""

from .card import ModelCard, ModelCardError
from .catalog import DEFAULT_MODEL, MODELS_DIR, default_model_dir, list_models, resolve_model_dir
from .detector import DetectorError, DetectorOptions, FaceDetector
from .frames import FrameError
from .model import ExpressionModel, ModelLoadError, ModelOptions
from .pipeline import Analyzer, AnalyzerStats
from .results import AnalysisResult, Timings
from .smoothing import EmotionSmoother, SmootherOptions

__all__ = [
    "AnalysisResult", "Analyzer", "AnalyzerStats", "DEFAULT_MODEL", "DetectorError", "DetectorOptions",
    "EmotionSmoother", "ExpressionModel", "FaceDetector", "FrameError", "MODELS_DIR", "ModelCard", "ModelCardError",
    "ModelLoadError", "ModelOptions", "SmootherOptions", "Timings", "default_model_dir", "list_models",
    "resolve_model_dir",
]
