"""History across sessions: one row per finished session in a local SQLite database under the report root (the rows
are read by :mod:`.history_page`, which draws ``history.html`` and records each finished session).

Layout (beside the session folders, see :mod:`.storage`)::

    <root>/history.sqlite        one row per finished (or crash-recovered) session that left a report folder
    <root>/history.html          negative share and emotion profile per session over the weeks; a table of sessions

Schema versions (``PRAGMA user_version``), each reached from the one before by :data:`MIGRATIONS`:

1. ``sessions``: the report folder (unique, relative to the root), start, duration, readable-face seconds, coverage,
   negative and uncertain shares, profile (JSON), dominant emotion, calibration, model, moments, source, recovered.
2. adds what a batch resumes on — the analysed file (``input_path``, ``input_size``, ``input_mtime_ns``) and the
   ``settings_key`` of the model and settings — and the media offset, with an index on the file key.
3. adds ``mindflow_version``, the MindFlow that wrote the row (``NULL`` in rows from before 1.0.0).

A database from a newer MindFlow (``user_version`` above :data:`SCHEMA_VERSION`) is left untouched: this MindFlow
writes ``history-v<N>.sqlite`` beside it. An unreadable one (corrupt, or not MindFlow's) is renamed
``history.unreadable-<time>.sqlite`` and a fresh one started; a migration first copies the database to
``history.v<old>.backup.sqlite``. Nothing is ever deleted; each of these says so in :attr:`History.notes`.

Writing a row never fails a session: :func:`~.history_page.record_session` returns what went wrong as text for the
summary.
Concurrent writers (a batch's processes) are serialised by SQLite's own locking (30-s busy timeout).
Standard library only (no numpy).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ... import __version__
from ...errors import MindFlowError
from ...i18n import Said
from ..formatting import aware
from .storage import HISTORY_DB, HTML_FILE

if TYPE_CHECKING:
    from ..session.facts import ReportFacts

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3
BUSY_TIMEOUT_S = 30.0

_V1 = """
CREATE TABLE sessions (
    id              INTEGER PRIMARY KEY,
    report          TEXT NOT NULL UNIQUE,   -- the session's report folder, relative to the root ('/' separators)
    started_at      TEXT NOT NULL,          -- ISO 8601 with the UTC offset
    duration_s      REAL NOT NULL,
    face_s          REAL NOT NULL,          -- readable-face seconds
    coverage        REAL NOT NULL,          -- share of analysed time with a face visible
    negative_share  REAL,                   -- share of readable-face time; NULL without a readable face
    uncertain_share REAL NOT NULL,          -- share of face-visible time that could not be read
    profile         TEXT NOT NULL,          -- JSON {label: share of readable-face time}, card order
    dominant        TEXT NOT NULL,
    calibrated      INTEGER NOT NULL,
    calibration     TEXT NOT NULL,          -- JSON, as in summary.json
    model           TEXT NOT NULL,
    moments         INTEGER NOT NULL,
    source          TEXT NOT NULL,
    recovered       INTEGER NOT NULL,
    recorded_at     TEXT NOT NULL
);
CREATE INDEX sessions_started ON sessions (started_at);
"""

#: ``MIGRATIONS[v]``: the statements that take a version-``v`` database to version ``v + 1``.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: ("ALTER TABLE sessions ADD COLUMN input_path TEXT",
        "ALTER TABLE sessions ADD COLUMN input_size INTEGER",
        "ALTER TABLE sessions ADD COLUMN input_mtime_ns INTEGER",
        "ALTER TABLE sessions ADD COLUMN settings_key TEXT",
        "ALTER TABLE sessions ADD COLUMN media_offset_s REAL",
        "CREATE INDEX sessions_input ON sessions (input_path, input_size, input_mtime_ns, settings_key)"),
    2: ("ALTER TABLE sessions ADD COLUMN mindflow_version TEXT",),
}


class HistoryError(MindFlowError):
    """The history database cannot be used at all (even a fresh one could not be made); the message says why."""


@dataclass(frozen=True)
class InputKey:
    """What a batch resumes on: the analysed file (resolved path, size in bytes, modification time in ns) and
    ``settings_key``, a digest of the model and every setting that changes a report."""

    path: str
    size: int
    mtime_ns: int
    settings_key: str

    @classmethod
    def of(cls, path: str | Path, settings_key: str) -> "InputKey":
        p = Path(path).resolve()
        st = p.stat()
        return cls(str(p), int(st.st_size), int(st.st_mtime_ns), settings_key)


@dataclass(frozen=True)
class HistoryRow:
    """One session of the history. Times: ``started_at`` aware; seconds. ``report``: the report folder relative to
    the root; ``profile``: ``{label: share}``; ``negative_share`` is ``None`` without a readable face."""

    report: str
    started_at: datetime
    duration_s: float
    face_s: float
    coverage: float
    negative_share: float | None
    uncertain_share: float
    profile: dict[str, float]
    dominant: str
    calibrated: bool
    calibration: dict[str, Any]
    model: str
    moments: int
    source: str = ""
    recovered: bool = False
    recorded_at: str = ""
    input: InputKey | None = None
    media_offset_s: float | None = None
    mindflow_version: str | None = __version__    # None: a row from before 1.0.0 (history schema 1-2)

    @classmethod
    def from_session(cls, report: str, facts: "ReportFacts", input: InputKey | None = None) -> "HistoryRow":
        s, info = facts.snapshot, facts.info
        assert info is not None
        return cls(report=report, started_at=aware(info.started_at), duration_s=float(s.duration_s),
                   face_s=float(s.face_s), coverage=float(s.coverage),
                   negative_share=None if s.negative_share is None else float(s.negative_share),
                   uncertain_share=float(s.uncertain_share),
                   profile={lab: float(v) for lab, v in zip(s.labels, s.shares)}, dominant=s.dominant,
                   calibrated=bool(info.calibration.get("applied")), calibration=dict(info.calibration),
                   model=info.model, moments=len(info.moments), source=info.source, recovered=info.recovered,
                   input=input, media_offset_s=info.media_offset_s)


_COLUMNS = ("report", "started_at", "duration_s", "face_s", "coverage", "negative_share", "uncertain_share",
            "profile", "dominant", "calibrated", "calibration", "model", "moments", "source", "recovered",
            "recorded_at", "input_path", "input_size", "input_mtime_ns", "settings_key", "media_offset_s",
            "mindflow_version")


def _to_row(r: HistoryRow) -> tuple:
    k = r.input
    return (r.report, r.started_at.isoformat(timespec="seconds"), r.duration_s, r.face_s, r.coverage,
            r.negative_share, r.uncertain_share, json.dumps(r.profile), r.dominant, int(r.calibrated),
            json.dumps(r.calibration, default=str), r.model, int(r.moments), r.source, int(r.recovered),
            r.recorded_at or datetime.now().astimezone().isoformat(timespec="seconds"),
            k.path if k else None, k.size if k else None, k.mtime_ns if k else None, k.settings_key if k else None,
            r.media_offset_s, r.mindflow_version)


def _from_row(row: sqlite3.Row) -> HistoryRow:
    keys = row.keys()
    k = None
    if "input_path" in keys and row["input_path"] is not None:
        k = InputKey(row["input_path"], int(row["input_size"] or 0), int(row["input_mtime_ns"] or 0),
                     row["settings_key"] or "")
    return HistoryRow(report=row["report"], started_at=aware(datetime.fromisoformat(row["started_at"])),
                      duration_s=float(row["duration_s"]), face_s=float(row["face_s"]),
                      coverage=float(row["coverage"]),
                      negative_share=None if row["negative_share"] is None else float(row["negative_share"]),
                      uncertain_share=float(row["uncertain_share"]), profile=dict(json.loads(row["profile"])),
                      dominant=row["dominant"], calibrated=bool(row["calibrated"]),
                      calibration=dict(json.loads(row["calibration"])), model=row["model"],
                      moments=int(row["moments"]), source=row["source"], recovered=bool(row["recovered"]),
                      recorded_at=row["recorded_at"], input=k,
                      media_offset_s=row["media_offset_s"] if "media_offset_s" in keys else None,
                      mindflow_version=row["mindflow_version"] if "mindflow_version" in keys else None)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
    conn.row_factory = sqlite3.Row
    return conn


def _stamp() -> str:
    return datetime.now().strftime("%Y-%m-%dT%H-%M-%S")


class History:
    """An open history database (a context manager). Use :meth:`open`; ``path`` is the database actually used and
    ``notes`` what opening it had to do (a database set aside, a migration), in plain sentences."""

    def __init__(self, conn: sqlite3.Connection, path: Path, notes: list[str]) -> None:
        self._conn = conn
        self.path = path
        self.notes = notes

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, root: str | Path) -> "History":
        """The history of the sessions under ``root`` (created when missing). Raises :class:`HistoryError` when not
        even a fresh database can be made there (an unwritable folder)."""
        root = Path(root).expanduser()
        notes: list[str] = []
        try:
            root.mkdir(parents=True, exist_ok=True)
            path = root / HISTORY_DB
            conn = cls._open_path(path, notes)
            if conn is None:          # a newer MindFlow's database: ours is beside it
                path = root / f"history-v{SCHEMA_VERSION}.sqlite"
                conn = cls._open_path(path, notes)
                if conn is None:
                    raise HistoryError.said("problem.history_newer_twice", path=path)
        except (OSError, sqlite3.Error) as exc:
            raise HistoryError.said("problem.history_cannot_keep", root=root,
                                    detail=f"{type(exc).__name__}: {exc}") from exc
        for n in notes:
            log.warning("%s", n)
        return cls(conn, path, notes)

    @classmethod
    def _open_path(cls, path: Path, notes: list[str]) -> sqlite3.Connection | None:
        """Open (and create or migrate) ``path``; ``None`` when it is a newer MindFlow's. An unreadable database is
        set aside and replaced by a fresh one."""
        for attempt in range(2):
            conn = _connect(path)
            try:
                version = cls._prepare(conn, path, notes)
                if version is None:
                    conn.close()
                    notes.append(Said("note.history_newer", path=path, schema=cls._version(path),
                                      supported=SCHEMA_VERSION, name=f"history-v{SCHEMA_VERSION}.sqlite"))
                    return None
                return conn
            except sqlite3.DatabaseError as exc:
                conn.close()
                if attempt:
                    raise
                aside = path.with_name(f"{path.stem}.unreadable-{_stamp()}{path.suffix}")
                try:
                    os.replace(path, aside)
                except FileNotFoundError:
                    pass               # another process set it aside first
                notes.append(Said("note.history_set_aside", path=path, detail=exc, aside=aside.name))
        raise AssertionError("unreachable")

    @staticmethod
    def _version(path: Path) -> int | None:
        try:
            c = sqlite3.connect(str(path))
            try:
                return int(c.execute("PRAGMA user_version").fetchone()[0])
            finally:
                c.close()
        except sqlite3.Error:
            return None

    @classmethod
    def _prepare(cls, conn: sqlite3.Connection, path: Path, notes: list[str]) -> int | None:
        """Create or migrate to :data:`SCHEMA_VERSION` in one transaction. Returns the version, ``None`` for a newer
        one. Raises ``sqlite3.DatabaseError`` for a file that is not a (MindFlow) SQLite database."""
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            return None
        if version == SCHEMA_VERSION:
            if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("the integrity check failed")
            cls._check_table(conn)
            return version
        if version >= 1:                  # a copy first (outside the write transaction: the backup reads it)
            cls._check_table(conn)
            backup = path.with_name(f"{path.stem}.v{version}.backup{path.suffix}")
            if not backup.exists():
                dst = sqlite3.connect(str(backup))
                try:
                    conn.backup(dst)
                finally:
                    dst.close()
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])   # another process may have done it
            if version == 0:
                tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
                if tables:
                    raise sqlite3.DatabaseError(f"not a MindFlow history (tables {', '.join(tables)})")
                for stmt in _statements(_V1):
                    conn.execute(stmt)
                version = 1
            elif version < SCHEMA_VERSION:
                backup = path.with_name(f"{path.stem}.v{version}.backup{path.suffix}")
                notes.append(Said("note.history_upgraded", name=path.name, old=version, new=SCHEMA_VERSION,
                                  backup=backup.name))
            for v in range(version, SCHEMA_VERSION):
                for stmt in MIGRATIONS[v]:
                    conn.execute(stmt)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return SCHEMA_VERSION

    @staticmethod
    def _check_table(conn: sqlite3.Connection) -> None:
        cols = {r[1] for r in conn.execute("PRAGMA table_info(sessions)")}
        if "report" not in cols or "started_at" not in cols:
            raise sqlite3.DatabaseError("not a MindFlow history (no sessions table)")

    # ------------------------------------------------------------------ use
    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "History":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def add(self, row: HistoryRow) -> None:
        """Insert ``row``, replacing an earlier row of the same report folder (a finish retried, a recovery)."""
        marks = ", ".join("?" * len(_COLUMNS))
        self._conn.execute(f"INSERT OR REPLACE INTO sessions ({', '.join(_COLUMNS)}) VALUES ({marks})", _to_row(row))

    def rows(self) -> list[HistoryRow]:
        """Every session, oldest first."""
        cur = self._conn.execute("SELECT * FROM sessions ORDER BY started_at, id")
        return [_from_row(r) for r in cur]

    def find(self, key: InputKey) -> HistoryRow | None:
        """The latest session made from the same file (path, size, mtime) with the same settings, or ``None``."""
        cur = self._conn.execute(
            "SELECT * FROM sessions WHERE input_path = ? AND input_size = ? AND input_mtime_ns = ? AND "
            "settings_key = ? ORDER BY id DESC LIMIT 1", (key.path, key.size, key.mtime_ns, key.settings_key))
        r = cur.fetchone()
        return None if r is None else _from_row(r)


def _statements(script: str) -> list[str]:
    """Split a schema script into statements (no ``;`` inside our statements; ``--`` comments dropped)."""
    lines = [ln.split("--", 1)[0] for ln in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def relative_report(root: Path, folder: Path) -> str:
    """``folder`` relative to ``root`` with ``/`` separators (the absolute path when it is not under it)."""
    try:
        return Path(os.path.relpath(Path(folder).resolve(), Path(root).resolve())).as_posix()
    except ValueError:          # another drive (Windows)
        return Path(folder).resolve().as_posix()


def find_analysed(root: str | Path, key: InputKey) -> HistoryRow | None:
    """The latest session under ``root`` made from ``key``'s file and settings whose report folder still exists;
    ``None`` when there is none or the history cannot be read (then the file is analysed again)."""
    root = Path(root).expanduser()
    if not (root / HISTORY_DB).exists() and not (root / f"history-v{SCHEMA_VERSION}.sqlite").exists():
        return None
    try:
        with History.open(root) as h:
            row = h.find(key)
    except (HistoryError, sqlite3.Error) as exc:
        log.warning("cannot read the history to skip files already analysed: %s", exc)
        return None
    if row is None or not (root / row.report / HTML_FILE).is_file():
        return None
    return row
