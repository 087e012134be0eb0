"""libobs through ctypes, for the few calls ``obspython`` cannot make (an out-pointer; a C function pointer).

The library is the one OBS already loaded into the process; it is looked up by the names it has on Linux, Windows
and macOS.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_lib: ctypes.CDLL | None = None


def candidates() -> list[str | None]:
    if sys.platform.startswith("win"):
        return ["obs.dll", "obs"]
    if sys.platform == "darwin":
        return ["@rpath/libobs.framework/Versions/A/libobs", "libobs.framework/libobs", "libobs.0.dylib",
                "libobs.dylib", None]
    return ["libobs.so.0", "libobs.so", ctypes.util.find_library("obs"), None]


def load(*symbols: str) -> ctypes.CDLL:
    """libobs, checked to export ``symbols``. ``OSError`` naming every name tried when it cannot be reached."""
    global _lib
    if _lib is not None and all(hasattr(_lib, s) for s in symbols):
        return _lib
    errors = []
    for name in candidates():
        try:
            lib = ctypes.CDLL(name)
            for s in symbols:
                getattr(lib, s)
        except (OSError, AttributeError) as exc:
            errors.append(f"{name}: {exc}")
            continue
        _lib = lib
        return lib
    raise OSError("cannot reach libobs through ctypes (" + "; ".join(errors) + ")")
