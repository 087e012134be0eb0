"""``python -m obs_mindflow …`` — see :mod:`obs_mindflow.cli`."""

from .cli import main

raise SystemExit(main())
