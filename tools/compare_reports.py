"""Compare two report roots written by ``python -m obs_mindflow analyze`` — the same clip analysed by two versions of
MindFlow — apart from wall-clock times, so that a refactoring can show it changed no report.

Each root holds one session folder (``summary.json``, ``timeline.csv``, ``report.html``) plus ``history.html`` and
``history.sqlite``. Wall-clock instants (ISO times, report folder names, dates in words) and the roots'
own paths are masked; everything else must be equal: the JSON as parsed values, the CSV, the two pages and the
history rows, line by line.

Usage: ``python -m tools.compare_reports BEFORE_ROOT AFTER_ROOT`` — exit status 0 when equal, 1 with the first
differences printed.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sqlite3
import sys
from pathlib import Path

# ISO date-times with or without seconds/offset (also the folder names' "T03-03-08" form), and bare dates.
_WALL = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}[:-]\d{2}(?:[:-]\d{2}(?:\.\d+)?)?(?:[+-]\d{2}:?\d{2}|Z)?)?")
# Dates in words ("Monday 07 December 2026", "Mon 07 Dec 2026, 03:03").
_WALL_WORDS = re.compile(r"\b[A-Z][a-z]+ \d{2} [A-Z][a-z]+ \d{4}(?:, \d{2}:\d{2})?")
_WALL_KEYS = {"started_at", "ended_at", "finished_at", "written_at"}


def _mask(text: str, root: Path) -> str:
    return _WALL_WORDS.sub("<date>", _WALL.sub("<time>", text.replace(str(root), "<root>")))


def _session_folder(root: Path) -> Path:
    folders = [p for p in root.iterdir() if p.is_dir()]
    if len(folders) != 1:
        raise SystemExit(f"{root}: expected one session folder, found {len(folders)}")
    return folders[0]


def _json(path: Path, root: Path):
    def clean(value):
        if isinstance(value, dict):
            return {k: "<time>" if k in _WALL_KEYS else clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return _mask(value, root) if isinstance(value, str) else value
    return clean(json.loads(path.read_text(encoding="utf-8")))


def _history_rows(root: Path) -> list[str]:
    con = sqlite3.connect(f"file:{root / 'history.sqlite'}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        lines = []
        for t in tables:
            cur = con.execute(f"SELECT * FROM {t}")
            names = [d[0] for d in cur.description]
            for row in cur:
                lines.append(_mask(repr({n: v for n, v in zip(names, row) if n not in _WALL_KEYS}), root))
        return lines
    finally:
        con.close()


def _diff(name: str, a: list[str], b: list[str]) -> list[str]:
    return list(difflib.unified_diff(a, b, f"before/{name}", f"after/{name}", n=1, lineterm=""))


def compare(before: Path, after: Path) -> list[str]:
    """The differences between the two roots (empty: equal apart from wall-clock times)."""
    fa, fb = _session_folder(before), _session_folder(after)
    out: list[str] = []
    ja, jb = _json(fa / "summary.json", before), _json(fb / "summary.json", after)
    if ja != jb:
        out += _diff("summary.json", json.dumps(ja, indent=1, sort_keys=True).splitlines(),
                     json.dumps(jb, indent=1, sort_keys=True).splitlines())
    for name in ("timeline.csv", "report.html"):
        out += _diff(name, _mask((fa / name).read_text(encoding="utf-8"), before).splitlines(),
                     _mask((fb / name).read_text(encoding="utf-8"), after).splitlines())
    out += _diff("history.html", _mask((before / "history.html").read_text(encoding="utf-8"), before).splitlines(),
                 _mask((after / "history.html").read_text(encoding="utf-8"), after).splitlines())
    out += _diff("history.sqlite", _history_rows(before), _history_rows(after))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    args = ap.parse_args(argv)
    diff = compare(args.before, args.after)
    if diff:
        print("\n".join(diff[:200]))
        print(f"DIFFERENT: {len(diff)} diff lines", file=sys.stderr)
        return 1
    print(f"equal apart from wall-clock times: {args.before} vs {args.after} "
          "(summary.json, timeline.csv, report.html, history.html, history.sqlite)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
