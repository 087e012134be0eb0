"""A file's SHA-256, read in 1 MiB blocks: what a batch resumes on (a model's and a baseline's content), what a model
card records of its ONNX file, and what the OBS script's package check records of ``requirements.txt``. Standard
library only."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: str | Path) -> str:
    """The hex SHA-256 of the file at ``path``. Raises ``OSError``."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
