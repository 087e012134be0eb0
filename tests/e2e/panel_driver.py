"""Drive MindFlow's panel in a real OBS from a test, through the test hooks' ``panel_commands`` (see
``obs_test_hooks._panel_commands``): open it as Tools > Scripts does, press its buttons and type into its fields on
OBS's UI thread, press MindFlow's hotkeys, start/stop the recording, and read what the panel shows."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .obs_harness import ObsConfig, ObsProcess


def panel_hooks(workdir: Path) -> dict[str, str]:
    """The hooks' settings that enable the panel commands (add them to ``ObsConfig.hooks``)."""
    return {"panel_commands": str(workdir / "panel-commands"), "panel_results": str(workdir / "panel-results.jsonl")}


@dataclass
class Panel:
    """One dump: ``shown`` {property name: (text, visible)}, the text source's ``text``, the commands' ``results``,
    ``lists`` {list property name: its values}, ``settings`` {list or text field: its value in the script's
    settings}."""

    shown: dict[str, tuple[str, bool]]
    text: str | None
    results: list[Any]
    lists: dict[str, list[str]] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> str | None:
        """What property ``name`` shows, ``None`` when it is hidden."""
        text, visible = self.shown.get(name, ("", False))
        return text if visible else None

    def describe(self) -> str:
        return "\n".join(f"  {k}: {v[0]!r}" for k, v in self.shown.items() if v[1]) + f"\n  (text source: {self.text!r})"


class PanelDriver:
    def __init__(self, run: ObsProcess, cfg: ObsConfig) -> None:
        self.run = run
        hooks = cfg.hooks
        self.commands = Path(hooks["panel_commands"])
        self.results = Path(hooks["panel_results"])
        self._ids = itertools.count(1)
        for stale in (self.commands, self.results):       # an earlier OBS run's, in the same folder
            stale.unlink(missing_ok=True)

    def send(self, *commands: str, timeout: float = 90.0) -> Panel:
        """Run ``commands`` (a ``dump`` is added at the end) and return the dump."""
        batch = f"b{next(self._ids)}"
        tmp = self.commands.with_suffix(".tmp")
        tmp.write_text("\n".join((batch, *commands, "dump")) + "\n", encoding="utf-8")
        tmp.replace(self.commands)        # the hooks never read a half-written file
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.results.read_text(encoding="utf-8").splitlines() if self.results.is_file() else []:
                doc = json.loads(line)
                if doc["id"] == batch:
                    return Panel({k: (v[0], v[1]) for k, v in doc["panel"].items()}, doc["text"], doc["results"],
                                 doc.get("lists", {}), doc.get("settings", {}))
            if not self.run.running():
                break
            time.sleep(0.2)
        if self.run.running():              # OBS is up but its hooks did not answer: where is it stuck?
            state = "OBS still running; its stacks:\n" + self.run._hang_diagnostics(self.run._obs_pid())
        else:
            state = f"OBS exited with status {self.run.proc.returncode if self.run.proc else None}"
        raise AssertionError(f"the hooks did not run the panel commands {commands} ({state}):\n"
                             + self.run.log()[-3000:])

    def wait_text(self, predicate, timeout: float = 60.0) -> Panel:
        """Dump until the text source's text satisfies ``predicate``; the last dump when it never does."""
        deadline = time.monotonic() + timeout
        panel = self.send()
        while not predicate(panel.text or "") and time.monotonic() < deadline:
            time.sleep(0.5)
            panel = self.send()
        return panel
