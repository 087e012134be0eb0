"""A session in memory — what happened, with no I/O: time-weighted statistics (``stats``), their snapshots
(``snapshot``), the text summary and formatters (``summary``, no numpy), rules such as the break nudge (``rules``),
events and their bus (``events``), and the :class:`~.session.Session` that ties them together (``session``).
Writing a session to disk is :mod:`obs_mindflow.engine.reports`' job. Import from the modules."""
