"""The base of MindFlow's own errors. Each one says what is wrong and what to do (model cards and files, video files,
baselines, reports, the history, the overlay, templates…); a caller that shows the message and goes on — the OBS
panel, a batch's failed file, the command line — catches :class:`MindFlowError` and lets anything else (a bug)
show its type. Standard library only."""

from __future__ import annotations


class MindFlowError(Exception):
    """An error of MindFlow's whose message is meant for the person using it."""
