"""``with`` helpers for OBS objects: each acquires one object and releases it in ``finally`` (leaks show up as
"Number of memory leaks" in the OBS log at exit). Part of the OBS adapter: imports obspython."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import obspython as obs


@contextmanager
def source_by_name(name: str) -> Iterator[object | None]:
    """The source called ``name`` (a new reference), or ``None`` when there is none."""
    src = obs.obs_get_source_by_name(name) if name else None
    try:
        yield src
    finally:
        if src is not None:
            obs.obs_source_release(src)


@contextmanager
def new_data() -> Iterator[object]:
    data = obs.obs_data_create()
    try:
        yield data
    finally:
        obs.obs_data_release(data)


@contextmanager
def data_array(settings: object, key: str) -> Iterator[object | None]:
    """``obs_data_get_array(settings, key)`` (``None`` when absent), released afterwards."""
    arr = obs.obs_data_get_array(settings, key)
    try:
        yield arr
    finally:
        if arr is not None:
            obs.obs_data_array_release(arr)


@contextmanager
def source_list() -> Iterator[list]:
    """All input sources (``obs_enum_sources``), released afterwards."""
    sources = obs.obs_enum_sources()
    try:
        yield sources or []
    finally:
        if sources is not None:
            obs.source_list_release(sources)


@contextmanager
def current_scene() -> Iterator[object | None]:
    """The current program scene as a source (new reference), or ``None``."""
    src = obs.obs_frontend_get_current_scene()
    try:
        yield src
    finally:
        if src is not None:
            obs.obs_source_release(src)


@contextmanager
def graphics() -> Iterator[None]:
    """``obs_enter_graphics()`` … ``obs_leave_graphics()`` (re-entrant on OBS's graphics thread)."""
    obs.obs_enter_graphics()
    try:
        yield
    finally:
        obs.obs_leave_graphics()
