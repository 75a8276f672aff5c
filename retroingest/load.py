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

import bisect
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


def _epoch(ts: dt.datetime | None) -> float | None:
    return ts.timestamp() if ts is not None else None


@dataclass
class _Primary:
    """A primary activity (stored, or decided earlier in the batch) that a new copy may match."""
    activity_id: int
    richness: float
    start_s: float
    end_s: float
    serial: str | None
    time_created: dt.datetime | None
    session_index: int
    file_id: int
    path: str

    @property
    def recording_key(self) -> tuple | None:
        if self.serial and self.time_created is not None:
            return self.serial, _epoch(self.time_created), self.session_index
        return None


class _Primaries:
    """The primary activities one batch can collide with, indexed by start time and recording key.

    Read with one query per batch instead of one per activity; activities decided in the batch
    are added and demoted ones removed, so later files of the batch see earlier ones exactly as
    if each had been written before the next was looked at.
    """

    def __init__(self, rows: Iterable[_Primary]):
        self.by_id: dict[int, _Primary] = {}
        self.starts: list[tuple[float, int]] = []  # (start, id): the stored order, start_time then id
        self.by_key: dict[tuple, set[int]] = {}
        self.max_duration_s = 0.0
        for p in rows:
            self.add(p)

    def add(self, p: _Primary) -> None:
        self.by_id[p.activity_id] = p
        bisect.insort(self.starts, (p.start_s, p.activity_id))
        self.max_duration_s = max(self.max_duration_s, p.end_s - p.start_s)
        if p.recording_key:
            self.by_key.setdefault(p.recording_key, set()).add(p.activity_id)

    def remove(self, activity_id: int) -> None:
        p = self.by_id.pop(activity_id, None)
        if p is None:
            return
        del self.starts[bisect.bisect_left(self.starts, (p.start_s, activity_id))]
        if p.recording_key:
            self.by_key[p.recording_key].discard(activity_id)

    def find_same(self, act: dict[str, Any]) -> tuple[_Primary, str, str] | None:
        """The primary that is the same real activity as ``act``: (primary, rule, why), or None."""
        aid, serial = act["activity_id"], act.get("device_serial")
        if serial and act.get("time_created") is not None:
            ids = self.by_key.get((serial, _epoch(act.get("time_created")), act["session_index"]), set()) - {aid}
            if ids:
                p = min((self.by_id[i] for i in ids), key=lambda p: (p.start_s, p.activity_id))
                return p, "same_recording", f"device serial {serial}, time_created {p.time_created:%Y-%m-%dT%H:%M:%SZ}"
        s, e = _epoch(act["start_time"]), _epoch(act["end_time"])
        lo = bisect.bisect_left(self.starts, (s - self.max_duration_s,))
        hi = bisect.bisect_left(self.starts, (e,))
        best = None
        for _, other in self.starts[lo:hi]:
            p = self.by_id[other]
            if other == aid or p.end_s <= s:
                continue
            if p.serial and serial and p.serial != serial:
                continue  # two devices recording at once are two people (a group run), not one activity
            overlap = min(p.end_s, e) - max(p.start_s, s)
            shorter, longer = sorted([p.end_s - p.start_s, e - s])
            # both conditions: a 3-point snippet inside a long run is not "the same activity"
            if shorter > 0 and overlap / shorter >= OVERLAP_SAME_ACTIVITY and shorter / longer >= MIN_DURATION_RATIO:
                if best is None or overlap / shorter > best[0]:
                    best = (overlap / shorter, p)
        if best:
            return best[1], "same_activity", f"time ranges overlap {best[0]:.0%}"
        return None


def _stored_primaries(con: duckdb.DuckDBPyConnection, acts: list[dict[str, Any]]) -> _Primaries:
    """Stored primaries that overlap the batch's time span or share a FIT recording key with it."""
    if not acts:
        return _Primaries([])
    created = pl.DataFrame({"time_created": sorted({a["time_created"] for a in acts
                                                    if a.get("device_serial") and a.get("time_created")})},
                           schema={"time_created": pl.Datetime("us", "UTC")})
    con.register("_created", created)
    try:
        rows = con.execute(
            """
            SELECT a.activity_id, a.richness, epoch(a.start_time), epoch(a.end_time), a.device_serial,
                   a.time_created, a.session_index, a.file_id, f.path
            FROM activities a JOIN source_files f USING (file_id)
            WHERE a.duplicate_of IS NULL
              AND ((a.start_time < ? AND a.end_time > ?) OR a.time_created IN (SELECT time_created FROM _created))
            """,
            [max(a["end_time"] for a in acts), min(a["start_time"] for a in acts)]).fetchall()
    finally:
        con.unregister("_created")
    return _Primaries(_Primary(*r) for r in rows)


def _read_activities(con: duckdb.DuckDBPyConnection, paths: list[str]) -> list[list[dict[str, Any]]]:
    """The rows of many staged activities.parquet files, in one read.

    DuckDB unifies the files by column name: a column that is all-null (untyped) in one file and
    typed in another is read with the typed file's type.
    """
    if not paths:
        return []
    frame = con.execute("SELECT * FROM read_parquet(?, union_by_name = true, filename = true)", [paths]).pl()
    by_file: dict[str, list[dict[str, Any]]] = {p: [] for p in paths}
    for row in frame.iter_rows(named=True):
        by_file[row.pop("filename")].append(row)
    return [by_file[p] for p in paths]


@dataclass
class _Plan:
    """Everything one batch writes, decided in memory before any row is inserted."""
    files: list[dict[str, Any]] = field(default_factory=list)
    activities: list[dict[str, Any]] = field(default_factory=list)
    stage_dirs: list[tuple[str, int]] = field(default_factory=list)  # (stage dir, activity id base)
    demotions: list[tuple[int, int]] = field(default_factory=list)   # (old primary, new primary)
    touched_files: dict[int, tuple[str, str]] = field(default_factory=dict)


def _plan_batch(con: duckdb.DuckDBPyConnection, batch: list[StagedFile], import_id: int,
                summary: LoadSummary) -> _Plan:
    """Decide every file's status and every activity's primary/duplicate role for one batch."""
    plan = _Plan()
    file_ids = [file_id_for(i.sha256, i.label) for i in batch]
    con.register("_batch", pl.DataFrame({"file_id": file_ids, "sha256": [i.sha256 for i in batch]},
                                        schema={"file_id": pl.Int64, "sha256": pl.String}))
    try:  # a registered frame, not a list parameter: binding a long list costs more than the query
        present = {r[0] for r in con.execute(
            "SELECT file_id FROM source_files WHERE file_id IN (SELECT file_id FROM _batch)").fetchall()}
        first_copy: dict[str, tuple[int, str]] = {}
        for sha, fid, path in con.execute(
                "SELECT sha256, file_id, path FROM source_files WHERE sha256 IN (SELECT sha256 FROM _batch) "
                "ORDER BY ingested_at DESC, path DESC").fetchall():
            first_copy[sha] = (fid, path)  # the last one written wins: the earliest stored copy
    finally:
        con.unregister("_batch")
    loadable = [i for i, fid in zip(batch, file_ids) if fid not in present and i.sha256 not in first_copy
                and i.status not in ("skipped", "quarantined", "duplicate")]
    acts_by_file: dict[str, list[dict[str, Any]]] = {}
    paths = [str(Path(i.stage_dir) / "activities.parquet") for i in loadable]
    for info, acts in zip(loadable, _read_activities(con, paths)):
        acts_by_file[info.label] = acts
        for act in acts:
            act["activity_id"] = activity_id_for(info.sha256, act["session_index"])
            act["richness"] = canonical.richness(act, act["format"])
            act["duplicate_of"] = None
    acts_all = [a for acts in acts_by_file.values() for a in acts]
    primaries = _stored_primaries(con, acts_all)

    for info, file_id in zip(batch, file_ids):
        if file_id in present:
            summary.add("unchanged")
            continue
        present.add(file_id)
        exact = first_copy.get(info.sha256)
        if exact:
            info.reason, info.reason_code = f"exact copy (same SHA-256) of {exact[1]}", "exact_duplicate"
            info.n_activities = info.n_records = 0
            plan.files.append(_source_row(info, file_id, "duplicate", import_id, duplicate_of_file_id=exact[0]))
            summary.add("duplicate")
            continue
        first_copy[info.sha256] = (file_id, info.label)
        if info.status in ("skipped", "quarantined"):
            plan.files.append(_source_row(info, file_id, info.status, import_id))
            summary.add(info.status)
            if info.status == "quarantined":
                summary.quarantined.append((info.label, info.reason or ""))
            continue
        status = "salvaged" if info.status == "salvaged" else "ingested"
        n_primary, dup_reason, dup_code, dup_file = 0, None, None, None
        for act in acts_by_file[info.label]:
            act["file_id"] = file_id
            same = primaries.find_same(act)
            if same and act["richness"] > same[0].richness:
                # the new copy is richer: it becomes primary and the old group points to it
                other, code, why = same
                plan.demotions.append((other.activity_id, act["activity_id"]))
                for row in plan.activities:
                    if row["activity_id"] == other.activity_id or row["duplicate_of"] == other.activity_id:
                        row["duplicate_of"] = act["activity_id"]
                plan.touched_files[other.file_id] = (code, why)
                primaries.remove(other.activity_id)
                if other.activity_id in summary.new_activity_ids:  # decided earlier in this load: no longer new work
                    summary.new_activity_ids.remove(other.activity_id)
                same = None
            if same:
                other, code, why = same
                act["duplicate_of"] = other.activity_id
                dup_file, dup_code = other.file_id, code
                dup_reason = f"{'same recording' if code == 'same_recording' else 'same activity'} as {other.path} ({why})"
            else:
                n_primary += 1
                primaries.add(_Primary(act["activity_id"], act["richness"], _epoch(act["start_time"]),
                                       _epoch(act["end_time"]), act.get("device_serial"), act.get("time_created"),
                                       act["session_index"], file_id, info.label))
                summary.new_activity_ids.append(act["activity_id"])
            plan.activities.append(act)
        extra: dict[str, Any] = {}
        if n_primary == 0 and status == "salvaged":
            # damage is the more important fact: the file stays 'salvaged' and names the kept copy
            extra = {"reason": f"{info.reason}; secondary copy: {dup_reason}", "duplicate_of_file_id": dup_file}
        elif n_primary == 0:
            status = "duplicate"
            extra = {"reason": dup_reason, "reason_code": dup_code, "duplicate_of_file_id": dup_file}
        plan.files.append(_source_row(info, file_id, status, import_id, **extra))
        plan.stage_dirs.append((info.stage_dir, int(info.sha256[:13], 16)))
        summary.add(status)
        summary.n_records += info.n_records
    return plan


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


def _insert_staged(con: duckdb.DuckDBPyConnection, stage_dirs: list[tuple[str, int]]) -> None:
    """Laps and records of many staged files, one INSERT per table straight from their Parquet files."""
    for table in ("laps", "records"):
        files = pl.DataFrame({"file": [str(Path(d) / f"{table}.parquet") for d, _ in stage_dirs],
                              "base": [b for _, b in stage_dirs]}, schema={"file": pl.String, "base": pl.Int64})
        con.register("_stage_files", files)
        try:
            con.execute(
                f"INSERT INTO {table} BY NAME "
                "SELECT r.* EXCLUDE (session_index, filename), f.base * 256 + r.session_index AS activity_id "
                "FROM read_parquet(?, filename = true, union_by_name = true) r "
                "JOIN _stage_files f ON r.filename = f.file", [files["file"].to_list()])
        finally:
            con.unregister("_stage_files")


def _write_plan(con: duckdb.DuckDBPyConnection, plan: _Plan) -> None:
    """Write one batch's rows in bulk: one insert per table."""
    _insert_rows(con, "source_files", plan.files)
    for old, new in plan.demotions:  # stored copies of a demoted primary point to the richer new copy
        con.execute("UPDATE activities SET duplicate_of = ? WHERE activity_id = ? OR duplicate_of = ?", [new, old, old])
    _insert_rows(con, "activities", plan.activities)
    if plan.stage_dirs:
        _insert_staged(con, plan.stage_dirs)
    for fid, (code, why) in plan.touched_files.items():
        _refresh_file_status(con, fid, code, why)


def load_batch(con: duckdb.DuckDBPyConnection, batch: list[StagedFile], import_id: int, summary: LoadSummary) -> None:
    """Decide and write one batch of staged files inside the caller's transaction."""
    _write_plan(con, _plan_batch(con, batch, import_id, summary))


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
            load_batch(con, batch, import_id, summary)
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
