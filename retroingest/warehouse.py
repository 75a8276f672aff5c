"""Opening the DuckDB warehouse: location, migrations, views.

Migrations are the numbered ``schemas/migrations/NNN_name.sql`` files, applied in order, one
transaction each, recorded in ``schema_version``. Views are ``warehouse/views/*.sql``
(``CREATE OR REPLACE VIEW``), re-applied when the warehouse is opened for writing and their text
differs from what was last applied, so a dashboard always sees views that match the code.

DuckDB allows one writing process per file and locks readers of other processes out while it
writes; :func:`connect` turns that lock error into :class:`WarehouseBusyError` with a clear
message, and read-only opens retry for a while.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from retroingest.errors import LoadError, WarehouseBusyError

REPO = Path(__file__).resolve().parents[1]
MIGRATIONS_DIR = REPO / "schemas" / "migrations"
VIEWS_DIR = REPO / "warehouse" / "views"
DEFAULT_WAREHOUSE = REPO / "warehouse" / "retro.duckdb"
ENV_WAREHOUSE = "RETROINGEST_WAREHOUSE"
ENV_MEMORY_LIMIT = "RETROINGEST_DUCKDB_MEMORY_LIMIT"
# DuckDB's own default is 80 % of RAM, and it keeps what it loaded cached up to that. The writer
# runs beside decode workers and the classifier, often on a laptop, so it gets a bound; bulk
# inserts do not need more (loading the 2,048-file bench_e2e archive: same CPU time, peak RSS of
# the loading process 1.2 GB with DuckDB's default, 1.2 GB with 1GB, 0.8 GB with 512MB).
DEFAULT_WRITER_MEMORY_LIMIT = "512MB"

_MIGRATION_RE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


def default_path() -> Path:
    """$RETROINGEST_WAREHOUSE, else warehouse/retro.duckdb in the repository."""
    return Path(os.environ.get(ENV_WAREHOUSE) or DEFAULT_WAREHOUSE)


def migrations() -> list[tuple[int, str, Path]]:
    """(version, name, path) of every migration file, in order."""
    out = []
    for p in sorted(MIGRATIONS_DIR.glob("*.sql")):
        m = _MIGRATION_RE.match(p.name)
        if m:
            out.append((int(m.group(1)), m.group(2), p))
    return out


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


def connect(path: str | Path | None = None, *, read_only: bool = False,
            wait_s: float = 0.0, snapshot_fallback: bool = True) -> duckdb.DuckDBPyConnection:
    """Open the warehouse. Writers apply pending migrations and refresh views.

    ``wait_s``: how long to keep retrying while another process holds the lock.
    A read-only open that finds the file locked by a writer opens the last published snapshot
    instead, when there is one (see :func:`publish_snapshot`, docs/CONCURRENCY.md).
    """
    path = Path(path) if path else default_path()
    if read_only and not path.exists():
        raise LoadError(str(path), "warehouse does not exist yet: run 'retroingest ingest' first",
                        reason_code="no_warehouse")
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    delay = 0.05
    if read_only and snapshot_fallback and import_running(path) and snapshot_path(path).exists():
        # readers step aside while another process imports, so they never starve its writer
        path = snapshot_path(path)
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.Error as exc:  # IOException on lock conflicts
            if not _is_lock_error(exc):
                raise LoadError(str(path), f"cannot open warehouse: {exc}", reason_code="open_failed") from exc
            if read_only and snapshot_fallback and snapshot_path(path).exists():
                # an import holds the write lock: read the copy published after the last import
                con = duckdb.connect(str(snapshot_path(path)), read_only=True)
                break
            if time.monotonic() >= deadline:
                raise WarehouseBusyError(
                    str(path),
                    "warehouse is locked by another process (an import is running); "
                    "try again when it finishes",
                    reason_code="locked",
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    con.execute("SET TimeZone = 'UTC'")
    if not read_only:
        limit = os.environ.get(ENV_MEMORY_LIMIT) or DEFAULT_WRITER_MEMORY_LIMIT
        try:
            con.execute(f"SET memory_limit = '{limit}'")
        except duckdb.Error as exc:
            con.close()
            raise LoadError(str(path), f"{ENV_MEMORY_LIMIT}={limit!r} is not a DuckDB memory size ({exc})",
                            reason_code="bad_setting") from exc
        migrate(con)
        apply_views(con)
    return con


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """Highest applied migration version (0 for an empty warehouse)."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
    ).fetchone()[0]
    if not exists:
        return 0
    return con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]


def pending_migrations(con: duckdb.DuckDBPyConnection) -> list[tuple[int, str, Path]]:
    """Migrations not yet applied; listing them never writes."""
    current = schema_version(con)
    return [m for m in migrations() if m[0] > current]


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply pending migrations, one transaction each; returns the versions applied."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    applied = []
    for version, name, path in pending_migrations(con):
        sql = path.read_text()
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(sql)
            con.execute("INSERT INTO schema_version VALUES (?, ?, ?)",
                        [version, name, dt.datetime.now(dt.timezone.utc)])
            con.execute("COMMIT")
        except Exception as exc:
            con.execute("ROLLBACK")
            raise LoadError(str(path), f"migration {version} ({name}) failed: {exc}",
                            reason_code="migration_failed") from exc
        applied.append(version)
    return applied


def views_hash() -> str:
    """SHA-256 of every warehouse/views/*.sql file (names and text), in apply order."""
    h = hashlib.sha256()
    for p in sorted(VIEWS_DIR.glob("*.sql")) if VIEWS_DIR.exists() else ():
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def apply_views(con: duckdb.DuckDBPyConnection, force: bool = False) -> bool:
    """(Re)create every view in warehouse/views/, in file-name order, when their text changed.

    Returns whether the views were (re)created. The hash of the applied text is kept in
    ``warehouse_meta``; ``force`` re-creates them regardless.
    """
    if not VIEWS_DIR.exists():
        return False
    digest = views_hash()
    row = con.execute("SELECT value FROM warehouse_meta WHERE key = 'views_hash'").fetchone()
    if row and row[0] == digest and not force:
        return False
    for p in sorted(VIEWS_DIR.glob("*.sql")):
        con.execute(p.read_text())
    con.execute("INSERT OR REPLACE INTO warehouse_meta VALUES ('views_hash', ?, ?)",
                [digest, dt.datetime.now(dt.timezone.utc)])
    return True


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN … COMMIT, rolling back on any error so nothing is half-written."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


# --- Readers during imports (docs/CONCURRENCY.md) --------------------------------------------

def snapshot_path(path: str | Path | None = None) -> Path:
    """The read-only copy published after each import: ``retro.duckdb`` -> ``retro.snapshot.duckdb``."""
    path = Path(path) if path else default_path()
    return path.with_name(path.stem + ".snapshot" + path.suffix)


def publish_snapshot(path: str | Path | None = None, wait_s: float = 60.0) -> Path:
    """Copy the warehouse to :func:`snapshot_path` atomically; returns the snapshot path.

    The copy is taken while holding a read-only connection, so no writer can change the file
    during the copy; readers that have the old snapshot open keep reading it (POSIX rename).
    """
    path = Path(path) if path else default_path()
    snap = snapshot_path(path)
    tmp = snap.with_name(snap.name + ".tmp")
    con = connect(path, read_only=True, wait_s=wait_s, snapshot_fallback=False)
    try:
        shutil.copyfile(path, tmp)
        wal = Path(str(path) + ".wal")
        if wal.exists():  # a crashed writer's log: the copy must replay it too
            shutil.copyfile(wal, Path(str(tmp) + ".wal"))
    finally:
        con.close()
    if Path(str(tmp) + ".wal").exists():
        os.replace(Path(str(tmp) + ".wal"), Path(str(snap) + ".wal"))
    else:
        Path(str(snap) + ".wal").unlink(missing_ok=True)  # never replay an old log onto a new copy
    os.replace(tmp, snap)
    return snap


@contextmanager
def import_lock(path: str | Path | None = None, wait_s: float = 0.0) -> Iterator[Path]:
    """Serialise whole imports (decode + load) on one warehouse across processes.

    Waits up to ``wait_s`` seconds, then raises :class:`WarehouseBusyError`. The lock is an
    ``flock`` on ``<warehouse>.import.lock``, released by the OS if the process dies.
    """
    import fcntl

    path = Path(path) if path else default_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = Path(str(path) + ".import.lock")
    fh = lock.open("a+")
    deadline = time.monotonic() + wait_s
    try:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WarehouseBusyError(
                        str(path), f"another import is running on this warehouse (waited {wait_s:.0f} s); "
                        "nothing was changed, run it again later", reason_code="import_running") from None
                time.sleep(0.2)
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        yield lock
        fh.seek(0)
        fh.truncate()  # no pid: readers see that no import runs (import_running)
        fh.flush()
    finally:
        fh.close()  # closing releases the flock


def import_running(path: str | Path | None = None) -> int | None:
    """PID of another live process inside :func:`import_lock` for this warehouse, else None.

    Reads the pid the lock holder wrote; never takes the lock itself (a probe must not make an
    import that starts at that moment fail).
    """
    path = Path(path) if path else default_path()
    try:
        pid = int(Path(str(path) + ".import.lock").read_text().strip() or 0)
    except (OSError, ValueError):
        return None
    if pid <= 0 or pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None  # it crashed; the OS released its flock
    except PermissionError:
        pass
    return pid
