"""One recipe for a session, whoever drives it: the OBS script (:class:`~obs_mindflow.engine.host.SessionHost`), a
file (:func:`~obs_mindflow.engine.video.analyze_file`, its batch and a cluster) and the command line's camera mode
(a ``SessionHost`` too).

:class:`SessionRecipe` says which model and how many threads, the "uncertain" threshold, the face-quality and
smoothing options, the moments, the rules, the break nudge, the shortest session that keeps a report, and the
personal baseline. :meth:`SessionRecipe.open_analyzer` builds the Analyzer from it and
:meth:`SessionRecipe.make_recorder` each session's :class:`~obs_mindflow.engine.reports.recorder.SessionRecorder`,
so a rule or a threshold added here reaches every driver at once.

A rule is given as a factory ``factory(labels, negative_labels) -> rule`` (a rule class itself is one): every session
gets fresh rule objects. :data:`DEFAULT_RULES` are the rules every session has unless the recipe says otherwise.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from .session.moments import MomentOptions
from .session.rules import AwayMonitor

if TYPE_CHECKING:
    from datetime import datetime

    from .baseline import Baseline
    from .model import ExpressionModel
    from .pipeline import Analyzer, QualityOptions
    from .reports.history import InputKey
    from .reports.recorder import SessionRecorder
    from .results import AnalysisResult
    from .session.rules import Rule
    from .smoothing import SmootherOptions

#: ``factory(labels, negative_labels) -> rule``: a rule for one session (see :mod:`.session.rules`).
RuleFactory = Callable[[Sequence[str], Sequence[str]], "Rule"]

#: The rules of every session unless a recipe says otherwise.
DEFAULT_RULES: tuple[RuleFactory, ...] = (AwayMonitor,)


@dataclass(frozen=True)
class SessionRecipe:
    """How a session is built. ``model``: a model folder or a bundled model's name (``""``: the default);
    ``threads``: onnxruntime and OpenCV threads (1–16); ``uncertain_below``: say "uncertain" below this smoothed
    confidence (0: the threshold measured for the model, in its card); ``quality``: the face-quality gate
    (``None``: its defaults); ``smoother``: the smoother's options before the card's thresholds are applied
    (``None``: its defaults); ``moments``: the moments rule's thresholds (``None``: no moments); ``rules``: rule
    factories (:data:`DEFAULT_RULES`); ``nudge``: the opt-in break nudge; ``min_report_s``: a session shorter than
    this (seconds) leaves no report folder; ``baseline``: the personal baseline every reading is corrected with
    (``None``: uncorrected); ``language``: the reports' (an ``i18n`` locale such as ``de-DE``; ``""``: English)."""

    model: str = ""
    threads: int = 1
    uncertain_below: float = 0.0
    quality: QualityOptions | None = None
    smoother: SmootherOptions | None = None
    moments: MomentOptions | None = MomentOptions()
    rules: tuple[RuleFactory, ...] = DEFAULT_RULES
    nudge: bool = False
    min_report_s: float = 0.0
    baseline: Baseline | None = None
    language: str = ""

    def replace(self, **changes: Any) -> "SessionRecipe":
        """A copy with ``changes`` (the dataclass fields)."""
        return dataclasses.replace(self, **changes)

    def model_dir(self) -> Path:
        from .catalog import resolve_model_dir

        return Path(resolve_model_dir(self.model))

    def load_model(self) -> ExpressionModel:
        """The recipe's model, loaded. Raises ``ModelCardError`` / ``ModelLoadError`` (a missing or broken model)
        and ``ValueError`` for ``threads``."""
        from .model import ExpressionModel, ModelOptions

        if not 1 <= int(self.threads) <= 16:
            raise ValueError(f"--threads must be between 1 and 16, got {self.threads}")
        return ExpressionModel.load(self.model_dir(), ModelOptions(intra_op_threads=self.threads))

    def smoother_options(self, card: Any) -> SmootherOptions:
        """The smoother's options for the model of ``card``: its measured "uncertain" thresholds, or
        ``uncertain_below`` where set."""
        from .smoothing import options_for_card

        return options_for_card(card, self.smoother, uncertain_below=self.uncertain_below)

    def open_analyzer(self, model: ExpressionModel | None = None,
                      on_result: Callable[[AnalysisResult], None] | None = None) -> Analyzer:
        """An Analyzer (not started) for ``model`` (default: :meth:`load_model`), with the recipe's smoothing,
        quality gate and baseline. Raises as :meth:`load_model`, and ``BaselineError`` for a baseline of another
        model."""
        from .pipeline import Analyzer

        model = model if model is not None else self.load_model()
        analyzer = Analyzer(model, opencv_threads=self.threads, on_result=on_result,
                            smoother_options=self.smoother_options(model.card), quality_options=self.quality)
        if self.baseline is not None:
            apply_baseline(analyzer, self.baseline)
        return analyzer

    def make_recorder(self, report_root: str | Path | None, card: Any, *, source: str = "",
                      started_at: datetime | None = None, media_clock: bool = False,
                      input_key: InputKey | None = None) -> SessionRecorder:
        """A new session's recorder (``report_root`` ``None``: no folder, the summary only), with the recipe's
        rules, nudge, moments, minimum report length and language; its calibration record is the recipe's
        baseline."""
        from .reports.recorder import SessionRecorder
        from ..i18n import words
        from .session.rules import NudgeMonitor

        rec = SessionRecorder(report_root, card, started_at=started_at, source=source,
                              nudge=NudgeMonitor(words=words(self.language)) if self.nudge else None,
                              rules=tuple(f(card.labels, card.negative_labels) for f in self.rules),
                              min_report_s=self.min_report_s, moments=self.moments, media_clock=media_clock,
                              input_key=input_key, language=self.language)
        rec.set_calibration(self.baseline)
        return rec


def apply_baseline(analyzer: Analyzer, baseline: Baseline) -> None:
    """Correct ``analyzer``'s readings with ``baseline`` (``BaselineError``: another model's, or no reference)."""
    from .baseline import correction_for

    baseline.check_model(analyzer.model.card)
    analyzer.set_transforms([correction_for(baseline, analyzer.model.card)])
