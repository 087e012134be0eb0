"""A personal baseline: the streamer's own resting face, so that readings are true for *their* face.

Expression models trained on posed web photos read many resting faces — and speech mouth shapes, glasses, dim light
— as negative, and every resting face differs. Calibration records the model's output over a few seconds of the
streamer as they are while streaming (talking is fine): their baseline. Every later reading is corrected towards the
model's **neutral reference** — its output on neutral faces it never trained on, from the model card's
``neutral_reference`` — by a per-class shift of the log-probabilities (a prior shift, Saerens et al. 2002, with the
class offsets estimated in log space)::

    p'(y) ∝ p(y) · exp(R(y) − B̃(y))        B̃ = (n · B + k · R) / (n + k)

``B`` is the mean over the calibration's face frames of ``log max(p, LOG_FLOOR)``, ``R`` the same over the
reference's neutral faces, ``n`` the face frames and ``k`` (:data:`PRIOR_FRAMES`) pseudo-frames of the reference that
keep a class the person never showed at rest from being amplified without bound. If a person's face (or camera)
adds a constant offset to the model's logits — a resting face read as sad, glasses read as angry — the shift removes
exactly that offset; frame-to-frame changes of expression move ``p'`` as they move ``p``. With ``B = R`` the
correction is the identity. Measured against the plain prior shift on the mean probabilities
(``p · r / b``) on FER+ validation under five simulated camera conditions, the log-space shift was as good or better
on accuracy and on neutral faces read as negative in each (``tools/bench_realworld.py`` prints the comparison).

**Deviation from the streamer's own rest.** The shift alone changes nothing for a face the model already reads as
neutral at rest — yet a frown that is plain on *this* face may still read neutral. When the card has the spread of
the reference (``std_log_probabilities``: how much neutral faces of many people vary) and the baseline has the
spread of the calibration (``std_log``: how much this face varies at rest, talking included), the correction also
scales each class's deviation from the person's rest by how much steadier this face is than faces in general::

    log p'(y) = R(y) + g(y) · (log max(p(y), LOG_FLOOR) − B̃(y))      g = clip(Σ(y) / S̃(y), 1, MAX_GAIN)
    S̃² = (n · S² + k · Σ²) / (n + k)

``S`` the calibration's standard deviation of the log-probabilities, ``Σ`` the reference's, shrunk the same way as
the mean. A frame as far from this person's rest as neutral faces in general are from each other moves the reading
as much as that difference would for a typical face; a frame within the person's own resting variation (their
speech included) moves it no more than the plain shift does (``g`` ≥ 1 never damps, :data:`MAX_GAIN` bounds it).
With ``g`` = 1 it is the shift above. :func:`correction_for` picks it when both spreads exist.

A calibration is refused (:class:`BaselineError`, saying what to do) with too few face frames
(:data:`MIN_FACE_FRAMES`) or when an *expressive* label — one that is neither neutral nor negative, such as happy or
surprise — dominates: a smile held through the calibration would otherwise be subtracted from every later smile.
Negative labels are never a reason to refuse: reading a resting face as sad, angry or afraid is exactly the model
bias calibration corrects.

A :class:`Baseline` is tied to one model (name and label order): it is never applied to another.
Standard library + numpy.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import MindFlowError

BASELINE_FORMAT = "mindflow.baseline"
BASELINE_VERSION = 1
DEFAULT_SECONDS = 20.0
MIN_FACE_FRAMES = 30            # 2 s of 25 fps video analysed frame by frame is 50 frames; a webcam at 5 Hz: 6 s
PRIOR_FRAMES = 10.0             # k: pseudo-frames of the reference mixed into the baseline
LOG_FLOOR = 1e-4                # probabilities are floored here before their logs are averaged
EXPRESSIVE_MEAN_MAX = 0.5       # an expressive label with a higher mean probability → refused
EXPRESSIVE_TOP_SHARE_MAX = 0.6  # … or top label on more than this share of the face frames → refused
NEUTRAL = "neutral"
MAX_GAIN = 3.0                  # the deviation's largest amplification (a bound, not fitted: see the module docstring)


class BaselineError(MindFlowError, ValueError):
    """A baseline cannot be made, read or applied; the message says why and what to do.

    The reasons a streamer meets (calibrating, a stored calibration that cannot be applied) also carry a catalogue
    ``key`` and its ``values`` (:mod:`obs_mindflow.i18n`), so the panel says them in its language (:meth:`say`); the
    message stays English (the command line, the logs of programs)."""


def say_reason(message: str, key: str, values: Mapping[str, Any], w: Any = None) -> str:
    """A refusal's reason in ``w``'s language (see :meth:`BaselineError.say`): also for a reason that travelled as
    an event's data (``key``, ``values``)."""
    return BaselineError(message, key, **values).say(w)


def expressive_labels(labels: Sequence[str], negative_labels: Sequence[str]) -> tuple[str, ...]:
    """Labels that are neither neutral nor negative (happy, surprise …): the ones a calibration must not absorb."""
    return tuple(x for x in labels if x != NEUTRAL and x not in negative_labels)


@dataclass(frozen=True)
class Baseline:
    """One person's resting output of one model.

    ``probabilities``: the mean of the model's probabilities over the face frames, in ``labels`` order;
    ``mean_log``: the mean of their logs (floored at :data:`LOG_FLOOR`), what the correction uses;
    ``created``: ISO 8601 local time; ``seconds``: how long the calibration ran (seconds of the source's time);
    ``face_frames`` of ``frames`` analysed; ``verdict``: the quality check's one-line result; ``source``: free text.
    """

    model: str
    labels: tuple[str, ...]
    probabilities: tuple[float, ...]
    mean_log: tuple[float, ...]
    created: str
    seconds: float
    face_frames: int
    frames: int
    verdict: str = "ok"
    source: str = ""
    std_log: tuple[float, ...] | None = None    # the spread of the logs over the face frames (older files: none)

    def to_dict(self) -> dict[str, Any]:
        return {"format": BASELINE_FORMAT, "version": BASELINE_VERSION, "model": self.model,
                "labels": list(self.labels), "probabilities": [round(p, 6) for p in self.probabilities],
                "mean_log": [round(v, 6) for v in self.mean_log],
                "created": self.created, "seconds": round(self.seconds, 3), "face_frames": self.face_frames,
                "frames": self.frames, "verdict": self.verdict, "source": self.source,
                **({"std_log": [round(v, 6) for v in self.std_log]} if self.std_log is not None else {})}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=1)

    @classmethod
    def from_dict(cls, doc: Any, where: str = "baseline") -> "Baseline":
        """Validate a parsed baseline. Raises :class:`BaselineError` naming ``where`` and what is wrong."""
        def bad(msg: str) -> BaselineError:
            return BaselineError.said("problem.baseline_unusable", where=where, detail=msg)

        if not isinstance(doc, dict) or doc.get("format") != BASELINE_FORMAT:
            raise bad(f"it is not a {BASELINE_FORMAT} document")
        if doc.get("version") != BASELINE_VERSION:
            raise bad(f"version {doc.get('version')!r}, this MindFlow reads version {BASELINE_VERSION}")
        try:
            labels = tuple(str(x) for x in doc["labels"])
            probs = tuple(float(x) for x in doc["probabilities"])
            logs = tuple(float(x) for x in doc["mean_log"])
            b = cls(model=str(doc["model"]), labels=labels, probabilities=probs, mean_log=logs,
                    created=str(doc["created"]),
                    seconds=float(doc["seconds"]), face_frames=int(doc["face_frames"]), frames=int(doc["frames"]),
                    verdict=str(doc.get("verdict", "ok")), source=str(doc.get("source", "")),
                    std_log=None if doc.get("std_log") is None else tuple(float(x) for x in doc["std_log"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise bad(f"{type(exc).__name__}: {exc}") from None
        if len(labels) < 2 or len(set(labels)) != len(labels) or len(probs) != len(labels) or len(logs) != len(labels):
            raise bad(f"{len(probs)} probabilities and {len(logs)} mean logs for labels {list(labels)}")
        if not all(math.isfinite(v) and math.log(LOG_FLOOR) - 1e-6 <= v <= 0 for v in logs):
            raise bad(f"its mean logs must lie between log({LOG_FLOOR:g}) and 0")
        if b.std_log is not None and (len(b.std_log) != len(labels)
                                      or not all(math.isfinite(v) and v >= 0 for v in b.std_log)):
            raise bad(f"its std_log must be {len(labels)} numbers >= 0")
        if not all(math.isfinite(p) and 0 <= p <= 1 for p in probs) or abs(sum(probs) - 1) > 1e-3:
            raise bad("its probabilities are not a distribution (each in 0..1, summing to 1)")
        if b.face_frames < 1 or b.frames < b.face_frames or not math.isfinite(b.seconds) or b.seconds < 0:
            raise bad("its frame counts or duration are inconsistent")
        return b

    @classmethod
    def from_json(cls, text: str, where: str = "baseline") -> "Baseline":
        try:
            doc = json.loads(text)
        except (ValueError, TypeError) as exc:
            raise BaselineError.said("problem.baseline_not_json", where=where, detail=exc) from None
        return cls.from_dict(doc, where)

    def save(self, path: str | Path) -> Path:
        """Write atomically (a temporary file, then ``os.replace``). Raises ``OSError``."""
        path = Path(path).expanduser()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(self.to_json() + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Baseline":
        path = Path(path).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise BaselineError(f"baseline file not found: {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise BaselineError(f"cannot read the baseline file {path}: {exc}") from None
        return cls.from_json(text, where=str(path))

    def check_model(self, card: Any) -> None:
        """Raise :class:`BaselineError` unless this baseline was made with ``card``'s model and label order."""
        if self.model != card.name:
            raise BaselineError.said("problem.baseline_other_model", made_with=self.model, model=card.name)
        if tuple(self.labels) != tuple(card.labels):
            raise BaselineError.said("problem.baseline_other_labels", labels=list(self.labels),
                                     model_labels=list(card.labels), model=card.name)

    def describe(self, w: Any = None) -> str:
        """``"made 2026-11-28 20:15 from 96 face frames over 20 s"``, in ``w``'s language when given (a
        :class:`~obs_mindflow.i18n.Words`)."""
        when = self.created.replace("T", " ")[:16]
        if w is not None:
            return w("baseline.made", when=when, frames=self.face_frames, seconds=f"{self.seconds:.0f}")
        return f"made {when} from {self.face_frames} face frames over {self.seconds:.0f} s"


def reference_of(card: Any) -> np.ndarray:
    """The card's neutral reference as mean log-probabilities, or :class:`BaselineError` when the card has none."""
    logs = getattr(card, "neutral_reference_log", None)
    if logs is None:
        raise BaselineError.said("problem.no_reference", model=card.name)
    return np.asarray(logs, np.float64)


class BaselineCorrection:
    """The transform ``(N, C) → (N, C)`` for the Analyzer (see the module docstring). ``reference``: the model's mean
    log-probabilities on neutral faces. Without ``reference_std`` (or a baseline without ``std_log``): the shift,
    ``p · w`` renormalised, ``w = exp(R − B̃)``; with both: the deviation, each class's gain ``g`` in
    :attr:`gains` (``max_gain`` 1 gives the shift again, up to the log floor)."""

    def __init__(self, baseline: Baseline, reference: Sequence[float], prior_frames: float = PRIOR_FRAMES,
                 reference_std: Sequence[float] | None = None, max_gain: float = MAX_GAIN) -> None:
        b = np.asarray(baseline.mean_log, np.float64)
        r = np.asarray(reference, np.float64)
        if b.shape != r.shape:
            raise BaselineError(f"the baseline has {b.size} labels, the model's reference {r.size}")
        n = float(baseline.face_frames)
        shrunk = (n * b + prior_frames * r) / (n + prior_frames)
        shift = r - shrunk
        self.baseline = baseline
        self.weights = np.exp(shift - shift.max()).astype(np.float32)   # scale-free: rows are renormalised
        self.gains: np.ndarray | None = None
        if reference_std is not None and baseline.std_log is not None and max_gain > 1:
            sigma = np.asarray(reference_std, np.float64)
            own = np.asarray(baseline.std_log, np.float64)
            if sigma.shape != r.shape or own.shape != r.shape:
                raise BaselineError(f"the spreads have {sigma.size} and {own.size} labels, the reference {r.size}")
            own = np.sqrt((n * own ** 2 + prior_frames * sigma ** 2) / (n + prior_frames))
            self.gains = np.clip(sigma / np.maximum(own, 1e-6), 1.0, max_gain)
            self._rest, self._reference = shrunk, r

    @property
    def method(self) -> str:
        return "shift" if self.gains is None else "deviation"

    def __call__(self, probs: np.ndarray) -> np.ndarray:
        if len(probs) == 0:
            return probs
        if self.gains is None:
            q = probs * self.weights
            return (q / np.maximum(q.sum(axis=1, keepdims=True), 1e-30)).astype(np.float32)
        logs = self._reference + self.gains * (np.log(np.maximum(probs.astype(np.float64), LOG_FLOOR)) - self._rest)
        q = np.exp(logs - logs.max(axis=1, keepdims=True))
        return (q / q.sum(axis=1, keepdims=True)).astype(np.float32)


def correction_for(baseline: Baseline, card: Any, method: str = "auto") -> BaselineCorrection:
    """The correction the engine applies for ``baseline`` with ``card``'s model: ``auto`` — the deviation where the
    card and the baseline both have their spreads, else the shift; ``shift`` — the shift alone."""
    if method not in ("auto", "shift"):
        raise ValueError(f"method must be 'auto' or 'shift', got {method!r}")
    spread = getattr(card, "neutral_reference_std_log", None) if method == "auto" else None
    return BaselineCorrection(baseline, reference_of(card), reference_std=spread)


@dataclass(frozen=True)
class CalibrationProgress:
    """``fraction`` of the calibration time done (0..1), ``elapsed_s`` of ``seconds``, ``face_frames`` of ``frames``."""

    fraction: float
    elapsed_s: float
    seconds: float
    face_frames: int
    frames: int

    @property
    def done(self) -> bool:
        return self.fraction >= 1.0

    def describe(self) -> str:
        return (f"calibrating: {self.fraction * 100:.0f} % ({self.elapsed_s:.0f} of {self.seconds:.0f} s, "
                f"{self.face_frames} face frames)")


@dataclass
class BaselineCollector:
    """Collects a calibration from results in order: the model's own probabilities of the primary face of every
    result with a face, for ``seconds`` of the results' time (from the first result). ``min_face_frames``: below it,
    :meth:`finish` refuses."""

    card: Any
    seconds: float = DEFAULT_SECONDS
    min_face_frames: int = MIN_FACE_FRAMES
    _sum: np.ndarray | None = None
    _log_sum: np.ndarray | None = None
    _log_sq: np.ndarray | None = None
    _tops: list[int] = field(default_factory=list)
    _t0: float | None = None
    _t: float = 0.0
    frames: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.seconds) and self.seconds > 0):
            raise BaselineError(f"calibration time must be a positive number of seconds, got {self.seconds!r}")
        self._sum = np.zeros(len(self.card.labels), np.float64)
        self._log_sum = np.zeros(len(self.card.labels), np.float64)
        self._log_sq = np.zeros(len(self.card.labels), np.float64)

    def add(self, result: Any) -> tuple:
        """One analysed frame (any thread, one producer). Returns no events (it can stand where a recorder does)."""
        if self._t0 is None:
            self._t0 = result.timestamp
        self._t = max(self._t, result.timestamp - self._t0)
        self.frames += 1
        if result.face_present:
            p = np.asarray(result.probabilities[0], np.float64)
            self._sum += p
            logs = np.log(np.maximum(p, LOG_FLOOR))
            self._log_sum += logs
            self._log_sq += logs * logs
            self._tops.append(int(np.argmax(p)))
        return ()

    @property
    def face_frames(self) -> int:
        return len(self._tops)

    def progress(self) -> CalibrationProgress:
        return CalibrationProgress(fraction=min(1.0, self._t / self.seconds), elapsed_s=self._t, seconds=self.seconds,
                                   face_frames=self.face_frames, frames=self.frames)

    @property
    def done(self) -> bool:
        return self._t >= self.seconds

    def finish(self, source: str = "", created: datetime | None = None) -> Baseline:
        """The baseline, or :class:`BaselineError` saying why not (no reference in the card, too few face frames,
        an expressive label dominating)."""
        reference_of(self.card)
        n = self.face_frames
        if n < self.min_face_frames:
            raise BaselineError(
                f"only {n} frames with a face in {self._t:.0f} s (at least {self.min_face_frames} are needed): face "
                f"the camera in good light, make sure the right video source is chosen, and calibrate again",
                "calibration.too_few_faces", frames=n, seconds=f"{self._t:.0f}", needed=self.min_face_frames)
        mean = self._sum / n
        labels = tuple(self.card.labels)
        tops = np.bincount(np.asarray(self._tops), minlength=len(labels)) / n
        for label in expressive_labels(labels, self.card.negative_labels):
            i = labels.index(label)
            if mean[i] > EXPRESSIVE_MEAN_MAX or tops[i] > EXPRESSIVE_TOP_SHARE_MAX:
                raise BaselineError(
                    f"the calibration read '{label}' on {tops[i] * 100:.0f} % of the face frames (mean "
                    f"{mean[i] * 100:.0f} %): calibrate with the face you have while streaming — relaxed, talking "
                    f"is fine — not a held expression",
                    "calibration.held_expression", emotion=label, share=f"{tops[i] * 100:.0f}",
                    mean=f"{mean[i] * 100:.0f}")
        mean = mean / mean.sum()
        stamp = (created or datetime.now().astimezone()).isoformat(timespec="seconds")
        verdict = f"ok: a face in {n} of {self.frames} frames"
        mean_log = self._log_sum / n
        std_log = np.sqrt(np.maximum(self._log_sq / n - mean_log ** 2, 0.0))
        return Baseline(model=self.card.name, labels=labels, probabilities=tuple(float(x) for x in mean),
                        mean_log=tuple(float(x) for x in mean_log), created=stamp, seconds=self._t, face_frames=n,
                        frames=self.frames, verdict=verdict, source=source, std_log=tuple(float(x) for x in std_log))
