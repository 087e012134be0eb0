"""The base of MindFlow's own errors. Each one says what is wrong and what to do (model cards and files, video files,
baselines, reports, the history, the overlay, templates…); a caller that shows the message and goes on — the OBS
panel, a batch's failed file, the command line — catches :class:`MindFlowError` and lets anything else (a bug)
show its type. Standard library only."""

from __future__ import annotations

from typing import Any


class MindFlowError(Exception):
    """An error of MindFlow's whose message is meant for the person using it.

    The message is English (logs, the command line, programs). An error a streamer meets in the panel also carries a
    catalogue ``key`` and its ``values`` (:mod:`obs_mindflow.i18n`), so the panel says it in its language
    (:meth:`say`)."""

    def __init__(self, message: str = "", key: str = "", **values: Any) -> None:
        super().__init__(message)
        self.key = key
        self.values = values

    @classmethod
    def said(cls, key: str, **values: Any) -> "MindFlowError":
        """The error whose English message is the catalogue's text of ``key`` (:class:`~obs_mindflow.i18n.Said`)."""
        from .i18n import Said
        return cls(str(Said(key, **values)), key, **values)

    def say(self, w: Any = None) -> str:
        """The reason in ``w``'s language (a :class:`~obs_mindflow.i18n.Words`); the English message without one or
        without a key."""
        from .i18n import say
        return say(self, w)
