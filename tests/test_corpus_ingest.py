"""The whole real-file corpus through the real pipeline into a real DuckDB file.

Independent references: garmin-fit-sdk (Garmin's own decoder) for FIT, gpxpy for GPX, the
standard-library XML reader for TCX. Tolerances are stated next to each comparison.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from retroingest import canonical
from retroingest.ingest import ingest
from test_ingest import counts  # noqa: E402  (tests/ is on sys.path under pytest)

pytestmark = pytest.mark.corpus

MULTI_FORMAT = {
    "heartandsole__4426508309": ["fit/heartandsole__4426508309.fit", "gpx/heartandsole__activity_4426508309.gpx",
                                 "tcx/heartandsole__activity_4426508309.tcx"],
    "heartandsole__testdata": ["fit/heartandsole__testdata.fit", "gpx/heartandsole__testdata.gpx",
                               "tcx/heartandsole__testdata.tcx"],
    "sportslib__2067489619": ["fit/sportslib__2067489619.fit", "gpx/sportslib__2067489619.gpx"],
    "goldencheetah__10kUNLP2014-Garmin15": ["fit/goldencheetah__10kUNLP2014-Garmin15.fit",
                                            "tcx/goldencheetah__10kUNLP2014-Garmin15.tcx"],
    "runpandas__run": ["gpx/runpandas__run.gpx", "tcx/runpandas__run.tcx"],
}


@pytest.fixture(scope="module")
def loaded(corpus, tmp_path_factory):
    """The whole corpus ingested once; returns (warehouse path, first result, second result)."""
    wpath = tmp_path_factory.mktemp("corpus") / "retro.duckdb"
    dirs = [corpus / d for d in ("fit", "gpx", "tcx", "bad")]
    first = ingest(dirs, wpath, workers=2, run_post_steps=False)
    counts_before = counts(wpath)
    second = ingest(dirs, wpath, workers=2, run_post_steps=False)
    return wpath, first, second, counts_before


def _files(wpath) -> pl.DataFrame:
    return _query(wpath, "SELECT * FROM source_files")


def _query(wpath, sql, params=None) -> pl.DataFrame:
    con = duckdb.connect(str(wpath), read_only=True)
    try:
        return con.execute(sql, params or []).pl()
    finally:
        con.close()


def test_every_good_corpus_file_is_ingested_skipped_or_duplicate(loaded, corpus):
    wpath = loaded[0]
    files = _files(wpath)
    by_path = dict(zip(files["path"], files["status"]))
    for sub in ("fit", "gpx", "tcx"):
        for f in sorted((corpus / sub).iterdir()):
            status = by_path.get(str(f.absolute()))
            assert status in ("ingested", "skipped", "duplicate"), f"{f.name}: {status}"


def test_every_bad_corpus_file_is_quarantined_or_salvaged_with_a_reason(loaded, corpus):
    files = _files(loaded[0])
    rows = {p: (s, r) for p, s, r in zip(files["path"], files["status"], files["reason"])}
    for f in sorted((corpus / "bad").iterdir()):
        status, reason = rows[str(f.absolute())]
        assert status in ("quarantined", "salvaged"), f"{f.name}: {status}"
        assert reason and len(reason) > 10, f.name


def test_non_activity_fit_files_are_skipped_with_their_file_type(loaded, corpus):
    files = _files(loaded[0]).filter(pl.col("path").str.ends_with("fitparse__MonitoringFile.fit")
                                     | pl.col("path").str.ends_with("fitparse__Settings.fit"))
    assert files.height == 2
    assert set(files["status"]) == {"skipped"}
    assert all(t and t != "activity" for t in files["fit_file_type"])


def test_truncated_fit_keeps_the_records_before_the_damage(loaded, corpus):
    row = _files(loaded[0]).filter(pl.col("path").str.ends_with("fitparse__nick.fit")).row(0, named=True)
    assert row["status"] == "salvaged" and "truncated" in row["reason"]
    assert row["n_records"] > 10_000  # fitparse and fitdecode both salvage 14,391 records here


def test_second_ingest_of_the_whole_corpus_adds_no_rows(loaded):
    wpath, first, second, before = loaded
    assert counts(wpath) == before
    assert set(second.counts) == {"unchanged"} or all(
        v == 0 for k, v in second.counts.items() if k != "unchanged")
    assert second.counts["unchanged"] == first.n_files


def test_every_record_is_canonical_no_sentinels(loaded):
    r = _query(loaded[0], """
        SELECT max(heart_rate_bpm) hr, min(heart_rate_bpm) hr_min, max(cadence_spm) spm, max(power_w) pw,
               max(abs(lat_deg)) lat, max(abs(lon_deg)) lon, max(speed_mps) spd, min(altitude_m) alt_min
        FROM records""").row(0, named=True)
    assert canonical.HEART_RATE_RANGE[0] <= r["hr_min"] and r["hr"] <= canonical.HEART_RATE_RANGE[1]
    assert r["spm"] <= canonical.CADENCE_SPM_RANGE[1]
    assert r["pw"] < 65535
    assert r["lat"] <= 90 and r["lon"] <= 180
    assert r["alt_min"] >= canonical.ALTITUDE_MIN_M  # raw 0 (= -500 m) and 0xFFFF are NULL


# ------------------------------------------------------------------ FIT vs garmin-fit-sdk

def _sdk_records(path: Path):
    from garmin_fit_sdk import Decoder, Stream

    dec = Decoder(Stream.from_byte_array(bytearray(path.read_bytes())))
    msgs, errors = dec.read(merge_heart_rates=False, convert_datetimes_to_dates=True, expand_components=True)
    return msgs.get("record_mesgs", []), errors


def _ours(wpath, path: Path) -> pl.DataFrame:
    return _query(wpath, """
        SELECT r.*, a.is_foot_sport FROM records r JOIN activities a USING (activity_id)
        JOIN source_files f USING (file_id) WHERE f.path = ? ORDER BY r.ts, a.session_index, r.seq
        """, [str(path.absolute())])


def test_fit_records_agree_with_garmin_fit_sdk(loaded, corpus):
    """Counts and values per record: exact timestamps; distance, HR, cadence within 1e-6."""
    wpath = loaded[0]
    files = _files(wpath).filter((pl.col("format") == "fit") & pl.col("status").is_in(["ingested", "duplicate"]))
    compared = 0
    for path in files["path"]:
        p = Path(path)
        recs, errors = _sdk_records(p)
        if errors:  # e.g. compressed-timestamp files the SDK cannot read
            continue
        recs = [r for r in recs if r.get("timestamp") is not None]
        ours = _ours(wpath, p)
        assert ours.height == len(recs), p.name
        ref = sorted(recs, key=lambda r: r["timestamp"])
        ref_ts = [r["timestamp"].replace(tzinfo=dt.timezone.utc) if r["timestamp"].tzinfo is None else r["timestamp"]
                  for r in ref]
        assert ours["ts"].to_list() == ref_ts, p.name
        lo, hi = canonical.HEART_RATE_RANGE  # outside it the canonical form holds NULL by design
        for col, key in (("distance_m", "distance"), ("heart_rate_bpm", "heart_rate")):
            ref_v = np.array([np.nan if r.get(key) is None else float(r[key]) for r in ref])
            if key == "heart_rate":
                ref_v[(ref_v < lo) | (ref_v > hi)] = np.nan
            got = ours[col].to_numpy().astype(float)
            assert np.allclose(got, ref_v, equal_nan=True, atol=1e-6), (p.name, col)
        cad = np.array([np.nan if r.get("cadence") is None else
                        float(r["cadence"]) + float(r.get("fractional_cadence") or 0) for r in ref])
        got = np.where(ours["is_foot_sport"].to_numpy(), ours["cadence_spm"].to_numpy().astype(float) / 2,
                       ours["cadence_rpm"].to_numpy().astype(float))
        lo_c, hi_c = canonical.CADENCE_SPM_RANGE  # outside it a foot-sport cadence is NULL by design
        plausible = ~np.isnan(cad) & ((~ours["is_foot_sport"].to_numpy()) | ((cad * 2 >= lo_c) & (cad * 2 <= hi_c)))
        assert np.allclose(got[plausible], cad[plausible], atol=1e-6), p.name
        compared += 1
    assert compared >= 40


# ------------------------------------------------------------------ GPX vs gpxpy

def test_gpx_points_agree_with_gpxpy(loaded, corpus):
    """Timed point counts and time, position and elevation of every point (exact to 1e-9 deg)."""
    import gpxpy

    wpath = loaded[0]
    files = _files(wpath).filter((pl.col("format") == "gpx") & pl.col("status").is_in(["ingested", "duplicate"])
                                 & pl.col("path").str.contains("/gpx/"))
    compared = 0
    for path in files["path"]:
        p = Path(path)
        g = gpxpy.parse(p.read_text(encoding="utf-8-sig"))
        pts = [pt for t in g.tracks for s in t.segments for pt in s.points if pt.time is not None]
        if not pts:
            pts = [pt for r in g.routes for pt in r.points if pt.time is not None]
        ours = _ours(wpath, p)
        assert ours.height == len(pts), p.name
        pts.sort(key=lambda pt: pt.time)
        ts = [pt.time.astimezone(dt.timezone.utc) if pt.time.tzinfo else pt.time.replace(tzinfo=dt.timezone.utc)
              for pt in pts]
        assert ours["ts"].to_list() == ts, p.name
        assert np.allclose(ours["lat_deg"].to_numpy().astype(float), [pt.latitude for pt in pts], atol=1e-9)
        ele = np.array([np.nan if pt.elevation is None else pt.elevation for pt in pts])
        assert np.allclose(ours["altitude_m"].to_numpy().astype(float), ele, equal_nan=True)
        compared += 1
    assert compared >= 30


# ------------------------------------------------------------------ TCX vs ElementTree

def test_tcx_trackpoints_agree_with_an_xml_reader(loaded, corpus):
    """Trackpoint counts, time, distance and heart rate (exact)."""
    wpath = loaded[0]
    files = _files(wpath).filter((pl.col("format") == "tcx") & pl.col("path").str.contains("/tcx/")
                                 & pl.col("status").is_in(["ingested", "duplicate"]))
    compared = 0
    for path in files["path"]:
        p = Path(path)
        root = ET.parse(p).getroot()
        ns = {"t": "http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2"}
        tps = [tp for tp in root.iterfind(".//t:Trackpoint", ns) if tp.find("t:Time", ns) is not None]
        ours = _ours(wpath, p)
        assert ours.height == len(tps), p.name
        dist = sorted(float(tp.find("t:DistanceMeters", ns).text) for tp in tps
                      if tp.find("t:DistanceMeters", ns) is not None)
        if dist:
            assert ours["distance_m"].max() == pytest.approx(dist[-1])
        lo, hi = canonical.HEART_RATE_RANGE
        hrs = [float(v.text) for v in root.iterfind(".//t:Trackpoint/t:HeartRateBpm/t:Value", ns)
               if lo <= float(v.text) <= hi]
        assert ours["heart_rate_bpm"].drop_nulls().sum() == pytest.approx(sum(hrs)), p.name
        compared += 1
    assert compared >= 10


# ------------------------------------------------------------------ the same run in several formats

def test_multi_format_activities_agree_and_are_counted_once(loaded, corpus):
    """Start ±2 s; duration ±2 % (or 5 s); distance ±3 % or 30 m, whichever is larger (a GPX distance is
    the 2-D length of raw fixes: on the 160 m heartandsole walk, fix noise alone adds ~29 m); median
    cadence ±3 spm."""
    wpath = loaded[0]
    for name, rels in MULTI_FORMAT.items():
        paths = [str((corpus / r).absolute()) for r in rels]
        acts = _query(wpath, """
            SELECT f.path, a.* FROM activities a JOIN source_files f USING (file_id)
            WHERE f.path IN (SELECT unnest(?)) ORDER BY a.richness DESC""", [paths])
        assert acts.height == len(rels), name
        assert acts.filter(pl.col("duplicate_of").is_null()).height == 1, f"{name} counted more than once"
        primary = acts.filter(pl.col("duplicate_of").is_null()).row(0, named=True)
        assert acts.filter(pl.col("duplicate_of").is_not_null())["duplicate_of"].unique().to_list() in (
            [primary["activity_id"]], []), name
        for row in acts.iter_rows(named=True):
            assert abs((row["start_time"] - primary["start_time"]).total_seconds()) <= 2, (name, row["path"])
            tol = max(5.0, 0.02 * primary["duration_s"])
            assert abs(row["duration_s"] - primary["duration_s"]) <= tol, (name, row["path"])
            if row["distance_m"] and primary["distance_m"]:
                tol_m = max(30.0, 0.03 * primary["distance_m"])
                assert abs(row["distance_m"] - primary["distance_m"]) <= tol_m, (name, row["path"])
            if row["median_cadence_spm"] and primary["median_cadence_spm"]:
                assert abs(row["median_cadence_spm"] - primary["median_cadence_spm"]) <= 3, (name, row["path"])
