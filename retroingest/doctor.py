"""Warehouse integrity checks (``retroingest doctor``). Reads only; never changes the warehouse.

Each check is one SQL query that returns the offending rows; a non-empty answer is a
:class:`Finding` with a count, a few examples and a hint saying what to do. ``error`` findings
mean the warehouse is inconsistent (the CLI exits 1); ``warning`` findings are worth knowing but
leave the data consistent (an import that was interrupted, a quarantined file that no longer
exists, staged work left behind by a crashed run).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from retroingest import warehouse

EXAMPLES = 5


@dataclass
class Finding:
    check: str
    severity: str        # error | warning | info
    count: int
    detail: str
    hint: str
    examples: list[tuple] = field(default_factory=list)


@dataclass
class DoctorReport:
    warehouse: str
    schema_version: int = 0
    expected_version: int = 0
    findings: list[Finding] = field(default_factory=list)
    quarantined: list[tuple[str, str, bool]] = field(default_factory=list)  # (path, reason, source still exists)
    checks_run: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.problems


# (name, severity, SQL returning offending rows (first column identifies), detail, hint)
_CHECKS: list[tuple[str, str, str, str, str]] = [
    ("orphan_records", "error",
     "SELECT activity_id, count(*) FROM records r WHERE NOT EXISTS "
     "(SELECT 1 FROM activities a WHERE a.activity_id = r.activity_id) GROUP BY 1 ORDER BY 1",
     "records whose activity does not exist",
     "a partial delete or a load outside retroingest: delete these records "
     "(DELETE FROM records WHERE activity_id NOT IN (SELECT activity_id FROM activities)) and re-ingest the file"),
    ("orphan_laps", "error",
     "SELECT activity_id, count(*) FROM laps l WHERE NOT EXISTS "
     "(SELECT 1 FROM activities a WHERE a.activity_id = l.activity_id) GROUP BY 1 ORDER BY 1",
     "laps whose activity does not exist",
     "delete them (DELETE FROM laps WHERE activity_id NOT IN (SELECT activity_id FROM activities))"),
    ("orphan_segments", "error",
     "SELECT segment_id, activity_id FROM segments s WHERE NOT EXISTS "
     "(SELECT 1 FROM activities a WHERE a.activity_id = s.activity_id) ORDER BY 1",
     "classified segments whose activity does not exist",
     "run 'retroingest classify --all' to rebuild segments from the stored activities"),
    ("orphan_equivalence", "error",
     "SELECT profile, activity_id, segment_id FROM equivalence e WHERE e.activity_id IS NOT NULL AND NOT EXISTS "
     "(SELECT 1 FROM activities a WHERE a.activity_id = e.activity_id) "
     "OR e.segment_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM segments s WHERE s.segment_id = e.segment_id) "
     "ORDER BY 2, 3",
     "equivalence rows whose activity or segment does not exist",
     "run 'retroingest classify --all', which recomputes the equivalence metrics too"),
    ("activities_without_file", "error",
     "SELECT activity_id, file_id FROM activities a WHERE NOT EXISTS "
     "(SELECT 1 FROM source_files f WHERE f.file_id = a.file_id) ORDER BY 1",
     "activities whose source file row does not exist",
     "the file row was deleted by hand: re-ingest the original file, or delete these activities"),
    ("files_without_activities", "error",
     "SELECT f.path, f.status, f.n_activities, (SELECT count(*) FROM activities a WHERE a.file_id = f.file_id) AS n "
     "FROM source_files f WHERE f.status IN ('ingested', 'salvaged', 'duplicate') AND f.n_activities > 0 "
     "AND f.n_activities <> (SELECT count(*) FROM activities a WHERE a.file_id = f.file_id) ORDER BY 1",
     "ingested files that do not hold the activities they were loaded with (n_activities differs)",
     "a load was cut off outside its transaction: delete the file row and its activities, then re-ingest it"),
    ("record_count_mismatch", "error",
     "SELECT a.activity_id, a.n_records, count(r.activity_id) AS stored FROM activities a "
     "LEFT JOIN records r USING (activity_id) GROUP BY a.activity_id, a.n_records "
     "HAVING a.n_records <> count(r.activity_id) ORDER BY 1",
     "activities whose stored record count differs from n_records (a partial activity)",
     "delete the activity and its file row, then re-ingest the file"),
    ("records_outside_activity", "error",
     "SELECT r.activity_id, count(*), min(r.ts), max(r.ts) FROM records r JOIN activities a USING (activity_id) "
     "WHERE r.ts < a.start_time - INTERVAL 1 SECOND OR r.ts > a.end_time + INTERVAL 1 SECOND "
     "GROUP BY 1 ORDER BY 1",
     "records outside their activity's start_time..end_time",
     "the activity summary is stale or the records belong elsewhere: delete the activity and re-ingest its file"),
    ("duplicate_primaries", "error",
     "SELECT device_serial, time_created, session_index, list(activity_id ORDER BY activity_id) FROM activities "
     "WHERE duplicate_of IS NULL AND device_serial IS NOT NULL AND time_created IS NOT NULL "
     "GROUP BY 1, 2, 3 HAVING count(*) > 1 ORDER BY 1, 2, 3",
     "the same recording (device serial + time_created + session) is primary more than once",
     "v_activities counts it twice: set duplicate_of on all but the richest copy, or delete the copies and re-ingest"),
    ("duplicate_content_primaries", "error",
     "SELECT f.sha256, a.session_index, list(a.activity_id ORDER BY a.activity_id) FROM activities a "
     "JOIN source_files f USING (file_id) WHERE a.duplicate_of IS NULL GROUP BY 1, 2 HAVING count(*) > 1",
     "the same file content is primary more than once",
     "v_activities counts it twice: keep one copy as primary (duplicate_of IS NULL), point the others to it"),
    ("dangling_duplicate_of", "error",
     "SELECT a.activity_id, a.duplicate_of FROM activities a LEFT JOIN activities p ON p.activity_id = a.duplicate_of "
     "WHERE a.duplicate_of IS NOT NULL AND (p.activity_id IS NULL OR p.duplicate_of IS NOT NULL) ORDER BY 1",
     "secondary copies whose duplicate_of names a missing or secondary activity",
     "point them at the group's primary (the richest copy) or set duplicate_of = NULL for one of them"),
    ("status_without_reason", "error",
     "SELECT path, status FROM source_files WHERE status NOT IN ('ingested') AND (reason IS NULL OR reason = '') "
     "OR status NOT IN ('ingested', 'salvaged', 'duplicate', 'skipped', 'quarantined') ORDER BY 1",
     "files with an unknown status, or a non-ingested status without a reason",
     "re-ingest the file after deleting its row; every status other than 'ingested' must say why"),
    ("unfinished_imports", "warning",
     "SELECT import_id, started_at, command FROM imports WHERE finished_at IS NULL ORDER BY 1",
     "imports that did not finish (killed, power loss); whole batches were loaded or none",
     "run the same 'retroingest ingest' again: it loads what is missing and changes nothing else"),
]


def _examples(rows: list[tuple]) -> list[tuple]:
    return [tuple(str(v) for v in r) for r in rows[:EXAMPLES]]


def _source_exists(path: str) -> bool:
    """Whether a quarantined file's source is still there (zip members: the archive)."""
    if "://" in path:
        return False
    return Path(path.split("!/", 1)[0]).exists()


def check_connection(con: duckdb.DuckDBPyConnection, wpath: str | Path) -> DoctorReport:
    """Run every check on an open connection (read-only is enough)."""
    rep = DoctorReport(warehouse=str(wpath))
    rep.schema_version = warehouse.schema_version(con)
    rep.expected_version = max((m[0] for m in warehouse.migrations()), default=0)
    rep.checks_run.append("schema_version")
    if rep.schema_version != rep.expected_version:
        newer = rep.schema_version > rep.expected_version
        rep.findings.append(Finding(
            "schema_version", "error", 1,
            f"schema version {rep.schema_version}, this code expects {rep.expected_version}",
            "the warehouse was written by a newer retroingest: upgrade retroingest" if newer else
            "run any writing command (e.g. 'retroingest ingest' on a folder) to apply the pending migrations"))
        if rep.schema_version == 0:
            return rep
    for name, severity, sql, detail, hint in _CHECKS:
        rep.checks_run.append(name)
        try:
            rows = con.execute(sql).fetchall()
        except duckdb.Error as exc:  # a table missing at this schema version
            rep.findings.append(Finding(name, "error", 1, f"check could not run: {exc}",
                                        "apply the pending migrations, then run doctor again"))
            continue
        if rows:
            rep.findings.append(Finding(name, severity, len(rows), detail, hint, _examples(rows)))
    rep.checks_run.append("quarantine")
    rep.quarantined = [(p, r or "", _source_exists(p)) for p, r in con.execute(
        "SELECT path, reason FROM source_files WHERE status = 'quarantined' ORDER BY path").fetchall()]
    gone = [q for q in rep.quarantined if not q[2]]
    if gone:
        rep.findings.append(Finding(
            "quarantine_source_missing", "warning", len(gone),
            "quarantined files whose source no longer exists (they cannot be repaired and re-ingested from there)",
            "keep a copy of files you want to recover; otherwise nothing to do", _examples(gone)))
    return rep


def check(wpath: str | Path | None = None, wait_s: float = 30.0) -> DoctorReport:
    """Open the warehouse read-only and run every check, plus leftovers of a crashed run."""
    wpath = Path(wpath) if wpath else warehouse.default_path()
    con = warehouse.connect(wpath, read_only=True, wait_s=wait_s, snapshot_fallback=False)
    try:
        rep = check_connection(con, wpath)
    finally:
        con.close()
    from retroingest.ingest import staging_root

    root = staging_root(wpath)
    left = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
    rep.checks_run.append("staging_leftovers")
    if left and not warehouse.import_running(wpath):
        rep.findings.append(Finding(
            "staging_leftovers", "warning", len(left), f"staged files left in {root} by an interrupted import",
            "run 'retroingest ingest' again on the same inputs: staged work is reused, then removed",
            [(x,) for x in left[:EXAMPLES]]))
    return rep


def format_report(rep: DoctorReport, verbose: bool = False) -> str:
    """Plain text: one line per finding with its hint, then the quarantine list."""
    lines = [f"warehouse: {rep.warehouse} (schema version {rep.schema_version}, current {rep.expected_version})",
             f"checks: {len(rep.checks_run)} run, {len(rep.problems)} problem(s), {len(rep.warnings)} warning(s)"]
    for f in rep.findings:
        lines.append(f"{f.severity.upper()} {f.check}: {f.count} - {f.detail}")
        for ex in f.examples:
            lines.append(f"    e.g. {', '.join(ex)}")
        lines.append(f"    hint: {f.hint}")
    if rep.quarantined:
        lines.append(f"quarantined files ({len(rep.quarantined)}):")
        shown = rep.quarantined if verbose else rep.quarantined[:20]
        for path, reason, exists in shown:
            lines.append(f"  [{'present' if exists else 'MISSING'}] {path}: {reason}")
        if len(shown) < len(rep.quarantined):
            lines.append(f"  ... {len(rep.quarantined) - len(shown)} more (--verbose lists all)")
    lines.append("result: " + ("OK" if rep.ok else "PROBLEMS FOUND"))
    return "\n".join(lines)
