"""A session on disk: where report folders live and how they are written safely (``storage``), the data files
(``files``: ``summary.json``, ``timeline.csv``), the page (``html`` with ``report.css``), the recorder that
checkpoints a running session and writes its folder (``recorder``), and crash recovery (``recovery``).
Import from the modules."""
