"""MindFlow for OBS: watches the streamer's own face and reports, live and afterwards, how the session went
emotionally. Self-monitoring, not a diagnosis; everything stays on the streamer's machine."""

#: The one place MindFlow's version is set (semantic versioning). The panel, the script log, ``--version``, reports,
#: the history and ``make dist``'s zip name read it from here (``pyproject.toml`` too: ``[tool.setuptools.dynamic]``).
__version__ = "1.0.0"
