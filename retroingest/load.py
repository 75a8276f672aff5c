"""Load stage: staged files → warehouse rows, with identity and de-duplication.

The only writer of ``source_files``, ``activities``, ``laps`` and ``records``. Each batch of
staged files is one transaction, so an interrupted import leaves no half-written activity and the
next run completes it. Ids are derived from content, so a re-run writes the same ids.

Identity rules (see docs/SCHEMA.md):
- exact duplicate: the same SHA-256 already stored under another path → status ``duplicate``;
- same recording: FIT ``file_id`` serial number + time_created (+ session) already stored;
- same activity in another format: time ranges overlap by ≥ 80 % of the shorter one and the
  durations are within 2x (never between two different device serials: that is a group run).
All copies are stored (nothing is lost); the richest is primary (``duplicate_of IS NULL``) and
the others point to it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import duckdb
import polars as pl

from retroingest import canonical
from retroingest.stage import StagedFile
from retroingest.warehouse import transaction

OVERLAP_SAME_ACTIVITY = 0.8
MIN_DURATION_RATIO = 0.5


def file_id_for(sha256: str, label: str) -> int:
    """Deterministic 60-bit id for a (content, path) pair."""
    return int(hashlib.sha256(f"{sha256}\n{label}".encode()).hexdigest()[:15], 16)


def activity_id_for(sha256: str, session_index: int) -> int:
    """Deterministic 60-bit id for one session of one file's content."""
    return int(sha256[:13], 16) * 256 + int(session_index)


@dataclass
class LoadSummary:
    counts: dict[str, int] = field(default_factory=dict)
    new_activity_ids: list[int] = field(default_factory=list)
    quarantined: list[tuple[str, str]] = field(default_factory=list)
    n_records: int = 0

    def add(self, status: str) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1


def next_import_id(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("SELECT coalesce(max(import_id), 0) + 1 FROM imports").fetchone()[0]


def known_files(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """What the warehouse already holds, for skipping work before decoding."""
    rows = con.execute("SELECT path, sha256, size_bytes, epoch(mtime) FROM source_files").fetchall()
    by_path = {p: (sha, size, mt) for p, sha, size, mt in rows}
    shas: dict[str, str] = {}
    for p, sha, _, _ in sorted(rows):
        shas.setdefault(sha, p)
    return {"by_path": by_path, "sha_to_path": shas}


def _source_row(info: StagedFile, file_id: int, status: str, import_id: int, **extra: Any) -> dict[str, Any]:
    return {
        "file_id": file_id,
        "sha256": info.sha256,
        "path": info.label,
        "format": info.format,
        "size_bytes": info.size_bytes,
        "status": status,
        "reason": info.reason,
        "reason_code": info.reason_code,
        "fit_file_type": info.fit_file_type,
        "decoder": info.decoder,
        "duplicate_of_file_id": None,
        "n_activities": info.n_activities,
        "n_records": info.n_records,
        "mtime": dt.datetime.fromtimestamp(info.mtime, dt.timezone.utc) if info.mtime else None,
        "ingested_at": dt.datetime.now(dt.timezone.utc),
        "import_id": import_id,
        **extra,
    }


def _insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    frame = pl.DataFrame(rows, infer_schema_length=None)
    con.register("_rows", frame)
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _rows")
    finally:
        con.unregister("_rows")


def _find_same(con: duckdb.DuckDBPyConnection, act: dict[str, Any]) -> tuple[int, float, str, str] | None:
    """An already stored primary activity that is the same real activity: (id, richness, rule, why)."""
    rows = con.execute(
        """
        SELECT activity_id, richness, start_time, end_time, device_serial, time_created, session_index, file_id
        FROM activities
        WHERE duplicate_of IS NULL AND activity_id <> ?
          AND ((device_serial = ? AND time_created = ? AND session_index = ?)
               OR (start_time < ? AND end_time > ?))
        ORDER BY start_time, activity_id
        """,
        [act["activity_id"], act.get("device_serial"), act.get("time_created"), act["session_index"],
         act["end_time"], act["start_time"]],
    ).fetchall()
    best = None
    for aid, rich, s, e, serial, tc, si, _fid in rows:
        if act.get("device_serial") and serial == act.get("device_serial") and tc == act.get("time_created") \
                and si == act["session_index"]:
            return aid, rich, "same_recording", f"device serial {serial}, time_created {tc:%Y-%m-%dT%H:%M:%SZ}"
        if serial and act.get("device_serial") and serial != act.get("device_serial"):
            continue  # two devices recording at once are two people (a group run), not one activity
        overlap = (min(e, act["end_time"]) - max(s, act["start_time"])).total_seconds()
        durations = sorted([(e - s).total_seconds(), (act["end_time"] - act["start_time"]).total_seconds()])
        shorter, longer = durations
        # both conditions: a 3-point snippet inside a long run is not "the same activity"
        if shorter > 0 and overlap / shorter >= OVERLAP_SAME_ACTIVITY and shorter / longer >= MIN_DURATION_RATIO:
            frac = overlap / shorter
            if best is None or frac > best[0]:
                best = (frac, aid, rich)
    if best:
        return best[1], best[2], "same_activity", f"time ranges overlap {best[0]:.0%}"
    return None


def _file_path(con: duckdb.DuckDBPyConnection, activity_id: int) -> tuple[int, str]:
    return con.execute(
        "SELECT f.file_id, f.path FROM activities a JOIN source_files f USING (file_id) WHERE a.activity_id = ?",
        [activity_id]).fetchone()


def _refresh_file_status(con: duckdb.DuckDBPyConnection, file_id: int, code: str, why: str) -> None:
    """A file whose activities are all secondary copies is a 'duplicate'; with a primary, it is not."""
    row = con.execute(
        "SELECT count(*) FILTER (WHERE duplicate_of IS NULL), min(duplicate_of) FROM activities WHERE file_id = ?",
        [file_id]).fetchone()
    n_primary, dup_of = row
    cur = con.execute("SELECT status FROM source_files WHERE file_id = ?", [file_id]).fetchone()
    if cur is None:
        return
    if n_primary == 0 and dup_of is not None and cur[0] == "ingested":
        keeper_file, keeper_path = _file_path(con, dup_of)
        con.execute(
            "UPDATE source_files SET status = 'duplicate', duplicate_of_file_id = ?, reason_code = ?, "
            "reason = ? WHERE file_id = ?",
            [keeper_file, code, f"{code.replace('_', ' ')} as {keeper_path} ({why}), which is richer and kept as primary",
             file_id])


def _load_activities(con: duckdb.DuckDBPyConnection, info: StagedFile, file_id: int,
                     summary: LoadSummary) -> tuple[int, str | None, str | None, int | None]:
    """Insert one staged file's activities, laps and records; returns (#primary, dup reason, code, dup file)."""
    stage = Path(info.stage_dir)
    acts = pl.read_parquet(stage / "activities.parquet")
    base = int(info.sha256[:13], 16)
    n_primary = 0
    dup_reason = dup_code = None
    dup_file = None
    touched_files: dict[int, tuple[str, str]] = {}
    demoted: set[int] = set()
    rows = []
    for meta in acts.iter_rows(named=True):
        act = {k: v for k, v in meta.items()}
        act["activity_id"] = activity_id_for(info.sha256, act["session_index"])
        act["file_id"] = file_id
        act["richness"] = canonical.richness(act, act["format"])
        act["duplicate_of"] = None
        same = _find_same(con, act)
        if same:
            other_id, other_rich, code, why = same
            if act["richness"] > other_rich:
                # the new copy is richer: it becomes primary and the old group points to it
                con.execute("UPDATE activities SET duplicate_of = ? WHERE activity_id = ? OR duplicate_of = ?",
                            [act["activity_id"], other_id, other_id])
                for r in rows:  # earlier sessions of this file, not inserted yet, that pointed at the old primary
                    if r["duplicate_of"] == other_id:
                        r["duplicate_of"] = act["activity_id"]
                touched_files[_file_path(con, other_id)[0]] = (code, why)
                demoted.add(other_id)
                n_primary += 1
            else:
                act["duplicate_of"] = other_id
                dup_file, dup_path = _file_path(con, other_id)
                dup_code = code
                dup_reason = f"{'same recording' if code == 'same_recording' else 'same activity'} as {dup_path} ({why})"
        else:
            n_primary += 1
        rows.append(act)
    _insert_rows(con, "activities", rows)
    con.execute(
        "INSERT INTO laps BY NAME SELECT * EXCLUDE (session_index), ? * 256 + session_index AS activity_id "
        "FROM read_parquet(?)", [base, str(stage / "laps.parquet")])
    con.execute(
        "INSERT INTO records BY NAME SELECT * EXCLUDE (session_index), ? * 256 + session_index AS activity_id "
        "FROM read_parquet(?)", [base, str(stage / "records.parquet")])
    summary.new_activity_ids.extend(r["activity_id"] for r in rows if r["duplicate_of"] is None)
    if demoted:  # an earlier primary of this batch that a richer copy replaced is no longer new work
        summary.new_activity_ids[:] = [a for a in summary.new_activity_ids if a not in demoted]
    for fid, (code, why) in touched_files.items():
        _refresh_file_status(con, fid, code, why)
    return n_primary, dup_reason, dup_code, dup_file


def load_one(con: duckdb.DuckDBPyConnection, info: StagedFile, import_id: int, summary: LoadSummary) -> str:
    """Write one staged file inside the caller's transaction; returns the status it ended with."""
    file_id = file_id_for(info.sha256, info.label)
    if con.execute("SELECT 1 FROM source_files WHERE file_id = ?", [file_id]).fetchone():
        summary.add("unchanged")
        return "unchanged"
    exact = con.execute(
        "SELECT file_id, path FROM source_files WHERE sha256 = ? ORDER BY ingested_at, path LIMIT 1",
        [info.sha256]).fetchone()
    if exact:
        info.reason, info.reason_code = f"exact copy (same SHA-256) of {exact[1]}", "exact_duplicate"
        info.n_activities = info.n_records = 0
        _insert_rows(con, "source_files", [_source_row(info, file_id, "duplicate", import_id,
                                                       duplicate_of_file_id=exact[0])])
        summary.add("duplicate")
        return "duplicate"
    if info.status in ("skipped", "quarantined"):
        _insert_rows(con, "source_files", [_source_row(info, file_id, info.status, import_id)])
        summary.add(info.status)
        if info.status == "quarantined":
            summary.quarantined.append((info.label, info.reason or ""))
        return info.status
    status = "salvaged" if info.status == "salvaged" else "ingested"
    # the file row goes first so activities can name their file
    _insert_rows(con, "source_files", [_source_row(info, file_id, status, import_id)])
    n_primary, dup_reason, dup_code, dup_file = _load_activities(con, info, file_id, summary)
    if n_primary == 0 and status == "salvaged":
        # damage is the more important fact: the file stays 'salvaged' and names the kept copy
        con.execute("UPDATE source_files SET reason = ?, duplicate_of_file_id = ? WHERE file_id = ?",
                    [f"{info.reason}; secondary copy: {dup_reason}", dup_file, file_id])
    elif n_primary == 0:
        con.execute("UPDATE source_files SET status = 'duplicate', reason = ?, reason_code = ?, "
                    "duplicate_of_file_id = ? WHERE file_id = ?", [dup_reason, dup_code, dup_file, file_id])
        status = "duplicate"
    summary.add(status)
    summary.n_records += info.n_records
    return status


def load_staged(con: duckdb.DuckDBPyConnection, staged: Iterable[StagedFile], import_id: int,
                batch_files: int = 200, batch_records: int = 2_000_000,
                on_file=None) -> LoadSummary:
    """Load staged files in batches, one transaction per batch (all-or-nothing per batch)."""
    summary = LoadSummary()
    batch: list[StagedFile] = []
    n_rec = 0

    def flush() -> None:
        nonlocal batch, n_rec
        if not batch:
            return
        with transaction(con):
            for info in batch:
                load_one(con, info, import_id, summary)
        if on_file:
            for info in batch:
                on_file(info)
        batch, n_rec = [], 0

    for info in staged:
        batch.append(info)
        n_rec += info.n_records
        if len(batch) >= batch_files or n_rec >= batch_records:
            flush()
    flush()
    return summary
