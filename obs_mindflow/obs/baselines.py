"""The personal baselines kept with the script's settings: one JSON string setting (``settings.BASELINES_KEY``)
holding ``{model name: baseline dict}`` (:meth:`obs_mindflow.engine.baseline.Baseline.to_dict`). OBS saves it with
the scene collection, so a calibration survives reloads and restarts; each model keeps its own.

Pure Python (standard library only): this module only reads and writes the JSON text. Whether a stored baseline may
be applied (same model, same label order, a valid document) is decided by the engine
(``Baseline.from_dict`` / ``SessionHost.apply_baseline``), never here.

Nothing is lost: a setting that is not a JSON object is reported (:attr:`BaselineStore.problem`) and kept as it is
until a new calibration is stored — the caller then saves the old text under :data:`BACKUP_KEY` first.
"""

from __future__ import annotations

import json
from typing import Any

from ..i18n import Said

#: Where the unreadable text of an earlier setting is kept when a new calibration replaces it.
BACKUP_KEY = "baselines_unreadable"


class BaselineStore:
    """The parsed setting. ``problem``: ``""`` or why the stored text could not be read (then :meth:`get` finds
    nothing and :meth:`put` starts a new object)."""

    def __init__(self, text: str | None) -> None:
        self.raw = text or ""
        self.problem = ""
        self._doc: dict[str, Any] = {}
        if not self.raw.strip():
            return
        try:
            doc = json.loads(self.raw)
        except ValueError as exc:
            self.problem = Said("problem.calibrations_unreadable", detail=exc)
            return
        if not isinstance(doc, dict):
            self.problem = Said("problem.calibrations_not_object")
            return
        self._doc = doc

    @property
    def unreadable(self) -> bool:
        return bool(self.problem)

    def models(self) -> list[str]:
        return sorted(self._doc)

    def get(self, model: str) -> Any:
        """The stored document for ``model`` (not validated), or ``None``."""
        return self._doc.get(model)

    def put(self, model: str, doc: dict[str, Any]) -> str:
        """Store ``doc`` for ``model``; returns the new setting text (the other models' entries are kept)."""
        self._doc = {**self._doc, model: doc}
        self.problem = ""
        self.raw = self.dumps()
        return self.raw

    def remove(self, model: str) -> str:
        """Forget ``model``'s entry; returns the new setting text."""
        self._doc = {k: v for k, v in self._doc.items() if k != model}
        self.raw = self.dumps()
        return self.raw

    def dumps(self) -> str:
        return json.dumps(self._doc, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
