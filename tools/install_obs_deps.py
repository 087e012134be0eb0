"""Install MindFlow's run-time packages (numpy, OpenCV headless < 5, onnxruntime) for the Python OBS uses.

Run it **with that Python** (not a virtual environment's):

    Linux (Debian/Ubuntu OBS):   /usr/bin/python3.11 tools/install_obs_deps.py
    Windows:                     "C:\\path\\to\\Python311\\python.exe" tools\\install_obs_deps.py
    macOS:                       /Library/Frameworks/Python.framework/Versions/3.11/bin/python3.11 tools/install_obs_deps.py

The OBS script's panel runs this same helper for OBS's Python when you press "Install the missing packages"
(``obs_mindflow/obs/installer.py``), so most people never need a terminal.

They go to ``.deps/py<X.Y>-<os>-<arch>/`` in this checkout, which the OBS script puts on ``sys.path``. Options:
``--check`` (exit 1 when something is missing), ``--if-missing`` (install only when needed), ``--target DIR``.
See install.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from obs_mindflow.obs.deps import main  # noqa: E402  (stdlib only; needs nothing installed)

if __name__ == "__main__":
    raise SystemExit(main())
