"""`retroingest doctor`: a clean warehouse passes; each kind of damage is found, with a hint and exit 1."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import duckdb
import pytest
from click.testing import CliRunner

from retroingest import doctor
from retroingest.cli import main
from retroingest.ingest import ingest
from test_ingest import T0, fit_bytes


@pytest.fixture
def loaded(tmp_path, warehouse_path):
    """Two runs (one also copied under another name), one file that is not an activity file."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.fit").write_bytes(fit_bytes(n=120))
    (inbox / "b.fit").write_bytes(fit_bytes(n=90, serial=3_900_000_002, start=T0 + dt.timedelta(hours=3),
                                            created=T0 + dt.timedelta(hours=3)))
    (inbox / "copy_of_a.fit").write_bytes(fit_bytes(n=120))  # exact copy: a duplicate, not decoded
    (inbox / "a_again.fit").write_bytes(fit_bytes(n=120, hr=141))  # same recording, other bytes
    (inbox / "junk.gpx").write_bytes(b"<gpx><trk><trkseg><trkpt lat='1' lon='2'>")
    ingest([inbox], warehouse_path, workers=1, run_post_steps=False)
    return warehouse_path


def damage(wpath, sql: str, params=None) -> None:
    con = duckdb.connect(str(wpath))
    try:
        con.execute(sql, params or [])
    finally:
        con.close()


def checks_failed(wpath) -> set[str]:
    return {f.check for f in doctor.check(wpath).problems}


def test_clean_warehouse_passes_and_lists_quarantine(loaded):
    res = CliRunner().invoke(main, ["doctor", "-w", str(loaded)])
    assert res.exit_code == 0, res.output
    assert "0 problem(s)" in res.output and "result: OK" in res.output
    assert "[present]" in res.output and "junk.gpx: malformed XML" in res.output


def test_partial_activity_is_found_with_hint(loaded):
    damage(loaded, "DELETE FROM records WHERE activity_id = (SELECT min(activity_id) FROM activities) AND seq > 50")
    res = CliRunner().invoke(main, ["doctor", "-w", str(loaded)])
    assert res.exit_code == 1
    assert "ERROR record_count_mismatch" in res.output and "hint: delete the activity" in res.output


def test_orphans_are_found(loaded):
    damage(loaded, "INSERT INTO records SELECT * REPLACE (42 AS activity_id) FROM records LIMIT 1")
    damage(loaded, "DELETE FROM source_files WHERE path LIKE '%b.fit'")
    assert {"orphan_records", "activities_without_file"} <= checks_failed(loaded)


def test_same_recording_primary_twice_is_found(loaded):
    damage(loaded, "UPDATE activities SET duplicate_of = NULL")
    assert checks_failed(loaded) == {"duplicate_primaries"}


def test_records_outside_their_activity_are_found(loaded):
    damage(loaded, "UPDATE records SET ts = ts + INTERVAL 1 DAY WHERE seq = 10")
    assert "records_outside_activity" in checks_failed(loaded)


def test_old_schema_version_is_an_error(loaded):
    damage(loaded, "DELETE FROM schema_version WHERE version = (SELECT max(version) FROM schema_version)")
    rep = doctor.check(loaded)
    assert [f.check for f in rep.problems] == ["schema_version"]
    assert "apply the pending migrations" in rep.problems[0].hint


def test_unfinished_import_is_a_warning_and_strict_fails(loaded):
    damage(loaded, "UPDATE imports SET finished_at = NULL")
    assert CliRunner().invoke(main, ["doctor", "-w", str(loaded)]).exit_code == 0
    res = CliRunner().invoke(main, ["doctor", "-w", str(loaded), "--strict"])
    assert res.exit_code == 1 and "WARNING unfinished_imports" in res.output


def test_quarantined_file_that_vanished_is_reported(loaded, tmp_path):
    (tmp_path / "inbox" / "junk.gpx").unlink()
    rep = doctor.check(loaded)
    assert [q[2] for q in rep.quarantined] == [False]
    assert "quarantine_source_missing" in {f.check for f in rep.warnings}


def test_doctor_command_exit_status_in_a_real_process(loaded):
    damage(loaded, "DELETE FROM records WHERE seq = 3")
    proc = subprocess.run([sys.executable, "-m", "retroingest.cli", "doctor", "-w", str(loaded)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "PROBLEMS FOUND" in proc.stdout


def test_doctor_help_has_an_example():
    res = CliRunner().invoke(main, ["doctor", "--help"])
    assert res.exit_code == 0 and "Example: retroingest doctor" in res.output
