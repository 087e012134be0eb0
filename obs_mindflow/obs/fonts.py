"""Does the text source's font have the letters viewers will read? A Japanese or Chinese emotion name in a font
without those glyphs shows as boxes on stream (OBS's Text (FreeType 2) source draws with the one font it is given,
no fallback). Pure Python (no obspython): the caller passes the font's face name and the text.

Where fontconfig is there (Linux, where OBS's FreeType source finds its font files through fontconfig's
``FcFontMatch`` too) the font OBS would load for the face is matched and its character set asked, with ctypes; an
answer is cached per face and text. Elsewhere (Windows, macOS) nothing is claimed: :func:`missing_letters` returns
``None`` (unknown), and the panel says nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache

#: Fonts that draw these families of letters, named in the panel's advice.
ADVICE = "Noto Sans CJK, Yu Gothic or Meiryo (Windows), Hiragino Sans (macOS)"


@lru_cache(maxsize=1)
def _fontconfig():
    """The fontconfig library with the few functions used here, or ``None`` when it is not installed."""
    name = ctypes.util.find_library("fontconfig")
    if not name:
        return None
    try:
        fc = ctypes.CDLL(name)
        fc.FcInit.restype = ctypes.c_int
        fc.FcNameParse.restype = ctypes.c_void_p
        fc.FcNameParse.argtypes = [ctypes.c_char_p]
        fc.FcConfigSubstitute.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
        fc.FcDefaultSubstitute.argtypes = [ctypes.c_void_p]
        fc.FcFontMatch.restype = ctypes.c_void_p
        fc.FcFontMatch.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
        fc.FcPatternGetCharSet.restype = ctypes.c_int
        fc.FcPatternGetCharSet.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                                           ctypes.POINTER(ctypes.c_void_p)]
        fc.FcCharSetHasChar.restype = ctypes.c_int
        fc.FcCharSetHasChar.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        fc.FcPatternDestroy.argtypes = [ctypes.c_void_p]
        if not fc.FcInit():
            return None
    except (OSError, AttributeError):
        return None
    return fc


@lru_cache(maxsize=64)
def missing_letters(face: str, text: str) -> str | None:
    """The letters of ``text`` (spaces and punctuation aside) that the font OBS loads for ``face`` lacks, in order,
    once each; ``""`` when it has them all; ``None`` when this cannot be known here (no fontconfig)."""
    fc = _fontconfig()
    if fc is None or not face:
        return None
    pattern = fc.FcNameParse(face.replace("-", "\\-").encode("utf-8"))
    if not pattern:
        return None
    result = ctypes.c_int(0)
    match = None
    try:
        fc.FcConfigSubstitute(None, pattern, 0)           # FcMatchPattern
        fc.FcDefaultSubstitute(pattern)
        match = fc.FcFontMatch(None, pattern, ctypes.byref(result))
        if not match:
            return None
        charset = ctypes.c_void_p()
        if fc.FcPatternGetCharSet(match, b"charset", 0, ctypes.byref(charset)) != 0:   # FcResultMatch
            return None
        missing = []
        for ch in text:
            if ch.isalnum() and ch not in missing and not fc.FcCharSetHasChar(charset, ord(ch)):
                missing.append(ch)
        return "".join(missing)
    finally:
        if match:
            fc.FcPatternDestroy(match)
        fc.FcPatternDestroy(pattern)
