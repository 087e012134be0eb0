"""Where the bundled models live and which one is the default."""

from __future__ import annotations

import logging
from pathlib import Path

from .card import ModelCard, ModelCardError, find_model_folders

#: ``models/`` at the root of the MindFlow checkout (the OBS script is loaded from the checkout).
MODELS_DIR = Path(__file__).resolve().parents[2] / "models"

#: The bundled model used when none is chosen.
DEFAULT_MODEL = "mindflow-ferplus-r3d"

#: Bundled models that were removed → the one that replaced them (a saved setting may still name them).
RETIRED = {"mindflow-fer-r3x2": DEFAULT_MODEL}

log = logging.getLogger(__name__)


def default_model_dir() -> Path:
    return MODELS_DIR / DEFAULT_MODEL


def resolve_model_dir(choice: str | Path | None) -> Path:
    """A model folder from a user's choice: ``None``/``""`` → the default; a bare name → ``models/<name>`` (a
    retired bundled name → its replacement, with a warning); anything else → that path."""
    if choice is None or str(choice).strip() == "":
        return default_model_dir()
    text = str(choice).strip()
    if "/" not in text and "\\" not in text:
        if (MODELS_DIR / text).is_dir():
            return MODELS_DIR / text
        if text in RETIRED:
            log.warning("MindFlow: the bundled model %r was replaced by %r; using that (pick it in the settings "
                        "to silence this)", text, RETIRED[text])
            return MODELS_DIR / RETIRED[text]
    return Path(text).expanduser()


def list_models(root: Path = MODELS_DIR) -> list[tuple[str, str]]:
    """``(folder name, title)`` for every loadable card under ``root``; unreadable cards are skipped."""
    out = []
    for folder in find_model_folders(root):
        try:
            card = ModelCard.load(folder)
        except ModelCardError:
            continue
        out.append((folder.name, card.title))
    return out
