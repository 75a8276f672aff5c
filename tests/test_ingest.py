"""Safe ingest: idempotence, atomicity, bad files in a batch, archives, identity and de-duplication."""

from __future__ import annotations

import datetime as dt
import gzip
import zipfile
from pathlib import Path

import duckdb
import pytest

from retroingest import load
from retroingest.ingest import ingest

FIT_EPOCH = dt.datetime(1989, 12, 31, tzinfo=dt.timezone.utc)
T0 = dt.datetime(2025, 3, 2, 8, 0, tzinfo=dt.timezone.utc)


def fit_bytes(n: int = 300, serial: int = 3_900_000_001, created: dt.datetime = T0, hr: int = 140,
              start: dt.datetime = T0) -> bytes:
    """A small running activity written by Garmin's own FIT encoder."""
    from garmin_fit_sdk import Encoder, Profile

    mesg = Profile["mesg_num"]
    ts = lambda t: int((t - FIT_EPOCH).total_seconds())  # noqa: E731
    enc = Encoder()
    enc.on_mesg(mesg["FILE_ID"], {"type": "activity", "manufacturer": "garmin", "product": 3113,
                                  "serial_number": serial, "time_created": ts(created)})
    for i in range(n):
        enc.on_mesg(mesg["RECORD"], {"timestamp": ts(start) + i, "distance": 3.0 * i, "enhanced_speed": 3.0,
                                     "heart_rate": hr, "cadence": 85, "fractional_cadence": 0.5,
                                     "position_lat": 550_000_000 + 100 * i, "position_long": 100_000_000})
    end = ts(start) + n - 1
    enc.on_mesg(mesg["SESSION"], {"timestamp": end, "start_time": ts(start), "sport": "running",
                                  "sub_sport": "road", "total_elapsed_time": float(n - 1),
                                  "total_timer_time": float(n - 1), "total_distance": 3.0 * (n - 1)})
    enc.on_mesg(mesg["ACTIVITY"], {"timestamp": end, "local_timestamp": end + 3600, "num_sessions": 1})
    return enc.close()


def counts(wpath: Path) -> dict[str, int]:
    con = duckdb.connect(str(wpath), read_only=True)
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("source_files", "activities", "laps", "records")}
    finally:
        con.close()


def rows(wpath: Path, sql: str, params=None):
    con = duckdb.connect(str(wpath), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def test_fit_from_garmins_encoder_lands_in_canonical_units(tmp_path, warehouse_path):
    (tmp_path / "run.fit").write_bytes(fit_bytes())
    ingest([tmp_path], warehouse_path, workers=1)
    [(spm, spd, lat, off)] = rows(warehouse_path, """
        SELECT median(cadence_spm), median(speed_mps), min(lat_deg), any_value(a.utc_offset_s)
        FROM records JOIN activities a USING (activity_id)""")
    assert spm == 171.0 and spd == 3.0 and off == 3600
    assert lat == pytest.approx(550_000_000 * 180 / 2**31)


def test_running_twice_changes_nothing(tmp_path, warehouse_path):
    (tmp_path / "run.fit").write_bytes(fit_bytes())
    first = ingest([tmp_path], warehouse_path, workers=1)
    before = counts(warehouse_path)
    second = ingest([tmp_path], warehouse_path, workers=1)
    assert counts(warehouse_path) == before
    assert first.counts["ingested"] == 1 and second.counts == {"unchanged": 1}


def test_one_bad_file_never_stops_the_batch(tmp_path, warehouse_path):
    (tmp_path / "a_good.fit").write_bytes(fit_bytes())
    (tmp_path / "b_garbage.fit").write_bytes(b"\x0e\x10garbage that is not a FIT file at all")
    (tmp_path / "c_empty.gpx").write_bytes(b"")
    (tmp_path / "d_good.fit").write_bytes(fit_bytes(start=T0 + dt.timedelta(hours=3), serial=42,
                                                    created=T0 + dt.timedelta(hours=3)))
    result = ingest([tmp_path], warehouse_path, workers=2)
    assert result.counts["ingested"] == 2 and result.counts["quarantined"] == 2
    reasons = dict(rows(warehouse_path, "SELECT regexp_extract(path, '[^/]+$'), reason FROM source_files "
                                        "WHERE status = 'quarantined'"))
    assert "header" in reasons["b_garbage.fit"]
    assert "empty" in reasons["c_empty.gpx"]


def test_interrupted_load_leaves_nothing_half_written_and_the_next_run_completes(
        tmp_path, warehouse_path, monkeypatch):
    for i in range(3):
        (tmp_path / f"run{i}.fit").write_bytes(fit_bytes(serial=100 + i, start=T0 + dt.timedelta(days=i),
                                                         created=T0 + dt.timedelta(days=i)))
    real_write = load._write_plan

    def dying_write(con, plan):
        real_write(con, plan)                      # the batch's rows are written inside the transaction ...
        raise KeyboardInterrupt("power cut")       # ... and then the process dies before COMMIT

    monkeypatch.setattr(load, "_write_plan", dying_write)
    with pytest.raises(KeyboardInterrupt):
        ingest([tmp_path], warehouse_path, workers=1)
    assert counts(warehouse_path) == {"source_files": 0, "activities": 0, "laps": 0, "records": 0}
    monkeypatch.setattr(load, "_write_plan", real_write)
    ingest([tmp_path], warehouse_path, workers=1)
    clean = tmp_path.parent / "clean.duckdb"
    ingest([tmp_path], clean, workers=1)
    assert counts(warehouse_path) == counts(clean)
    q = "SELECT activity_id, file_id, n_records, start_time FROM activities ORDER BY 1"
    assert rows(warehouse_path, q) == rows(clean, q)


def test_zip_export_with_gz_members_is_ingested_and_unsafe_entries_refused(tmp_path, warehouse_path):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("activities/1.fit.gz", gzip.compress(fit_bytes()))
        zf.writestr("activities/../../evil.fit", fit_bytes(serial=7))
        zf.writestr("profile.csv", "not an activity")
    result = ingest([archive], warehouse_path, workers=1)
    got = dict(rows(warehouse_path, "SELECT path, status FROM source_files"))
    assert got[f"{archive}!/activities/1.fit.gz"] == "ingested"
    assert got[f"{archive}!/activities/../../evil.fit"] == "quarantined"
    assert len(got) == 2 and result.counts["quarantined"] == 1


def test_exact_copy_at_another_path_is_a_duplicate_without_new_rows(tmp_path, warehouse_path):
    data = fit_bytes()
    (tmp_path / "a.fit").write_bytes(data)
    (tmp_path / "b.fit").write_bytes(data)
    ingest([tmp_path], warehouse_path, workers=1)
    assert counts(warehouse_path)["activities"] == 1
    [(status, reason)] = rows(warehouse_path, "SELECT status, reason FROM source_files WHERE path LIKE '%b.fit'")
    assert status == "duplicate" and "a.fit" in reason


def test_same_recording_resaved_is_linked_and_the_richer_copy_kept(tmp_path, warehouse_path):
    short = fit_bytes(n=200)            # same serial and time_created, different bytes
    full = fit_bytes(n=300)
    (tmp_path / "1_short.fit").write_bytes(short)
    ingest([tmp_path], warehouse_path, workers=1)
    (tmp_path / "2_full.fit").write_bytes(full)
    ingest([tmp_path], warehouse_path, workers=1)
    got = rows(warehouse_path, """SELECT regexp_extract(f.path, '[^/]+$'), f.status, a.duplicate_of IS NULL, a.n_records
                                  FROM activities a JOIN source_files f USING (file_id) ORDER BY 1""")
    assert got == [("1_short.fit", "duplicate", False, 200), ("2_full.fit", "ingested", True, 300)]
    [(code,)] = rows(warehouse_path, "SELECT reason_code FROM source_files WHERE path LIKE '%1_short.fit'")
    assert code == "same_recording"


def test_two_different_activities_at_different_times_are_both_primary(tmp_path, warehouse_path):
    (tmp_path / "am.fit").write_bytes(fit_bytes(serial=1, start=T0, created=T0))
    later = T0 + dt.timedelta(hours=10)
    (tmp_path / "pm.fit").write_bytes(fit_bytes(serial=1, start=later, created=later))
    ingest([tmp_path], warehouse_path, workers=1)
    assert rows(warehouse_path, "SELECT count(*) FROM v_activities") == [(2,)]


def test_two_watches_recording_the_same_run_are_two_activities(tmp_path, warehouse_path):
    """A group run: same times, different device serials. Not merged (GPX/TCX have no serial and
    still match a FIT copy by time)."""
    (tmp_path / "me.fit").write_bytes(fit_bytes(serial=1001))
    (tmp_path / "friend.fit").write_bytes(fit_bytes(serial=2002, hr=150))
    ingest([tmp_path], warehouse_path, workers=1)
    assert rows(warehouse_path, "SELECT count(*) FROM v_activities") == [(2,)]


def test_the_writer_has_a_bounded_memory_limit_and_a_bad_setting_names_the_variable(warehouse_path, monkeypatch):
    from retroingest import warehouse
    from retroingest.errors import LoadError

    con = warehouse.connect(warehouse_path)
    limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    con.close()
    assert limit.endswith("MiB") and float(limit.split()[0]) <= 512, limit  # 512MB = 488.2 MiB, not 80 % of RAM
    monkeypatch.setenv("RETROINGEST_DUCKDB_MEMORY_LIMIT", "plenty")
    with pytest.raises(LoadError, match="RETROINGEST_DUCKDB_MEMORY_LIMIT='plenty'"):
        warehouse.connect(warehouse_path)


def test_decode_stream_yields_in_discovery_order_with_a_bounded_number_of_files_in_flight(tmp_path):
    from retroingest.ingest import DecodeStream
    from retroingest.sources import discover

    for i in range(24):
        (tmp_path / f"run{i:02d}.fit").write_bytes(fit_bytes(n=60, serial=500 + i, start=T0 + dt.timedelta(days=i),
                                                             created=T0 + dt.timedelta(days=i)))
    root = tmp_path / "staging"
    root.mkdir()
    stream = DecodeStream(discover([tmp_path]), root, {"by_path": {}, "sha_to_path": {}}, workers=2, max_in_flight=8)
    labels, started_when_yielded = [], []
    for info in stream:
        labels.append(Path(info.label).name)
        started_when_yielded.append(sum(1 for _ in root.iterdir()))  # a folder per file whose decoding began
    assert labels == [f"run{i:02d}.fit" for i in range(24)] and stream.n_unchanged == 0
    # the loader gets file k while at most max_in_flight later files are read or decoding: bounded memory
    assert all(n <= k + 1 + 8 for k, n in enumerate(started_when_yielded)), started_when_yielded
    assert started_when_yielded[0] < 24
