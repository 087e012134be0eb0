"""The script's settings object (``obs_data_t``) ↔ the field table of :mod:`obs_mindflow.obs.settings`.

Part of the OBS adapter (imports obspython) but needs none of the run-time packages, so ``script_defaults`` can set
every default even while numpy, OpenCV or onnxruntime are missing."""

from __future__ import annotations

from typing import Any

import obspython as obs

from .settings import FIELDS


def read_settings(data: Any) -> dict[str, Any]:
    """The raw values of every field of :data:`~obs_mindflow.obs.settings.FIELDS` from an ``obs_data_t``."""
    get = {"string": obs.obs_data_get_string, "double": obs.obs_data_get_double, "int": obs.obs_data_get_int,
           "bool": obs.obs_data_get_bool}
    return {name: get[kind](data, name) for name, kind, _ in FIELDS}


def set_defaults(data: Any, report_dir: str = "") -> None:
    """Every field's default; ``report_dir`` is the real default folder when known (shown in the path picker)."""
    put = {"string": obs.obs_data_set_default_string, "double": obs.obs_data_set_default_double,
           "int": obs.obs_data_set_default_int, "bool": obs.obs_data_set_default_bool}
    for name, kind, default in FIELDS:
        put[kind](data, name, report_dir if name == "report_dir" and report_dir else default)
