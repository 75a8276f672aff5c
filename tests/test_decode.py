"""Decoders: unit rules, cadence decisions, bad input reasons. Small hand-made files plus corpus files."""

from __future__ import annotations

import datetime as dt
import gzip

import numpy as np
import pytest

from retroingest import canonical
from retroingest.decode import decode_bytes, sniff_format
from retroingest.decode.fit import decode_fit, read_messages_fitparse
from retroingest.errors import DecodeError, NotActivityError, UnsafeInputError

T0 = dt.datetime(2024, 5, 1, 7, 0, tzinfo=dt.timezone.utc)


def make_gpx(cad: float, speed_mps: float = 3.0, n: int = 120, version: str = "1.1", type_: str | None = "running",
             tz: str = "Z") -> bytes:
    """A straight-line track at constant speed; cad goes into gpxtpx:cad."""
    pts = []
    for i in range(n):
        t = (T0 + dt.timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S") + tz
        lat = 46.0 + i * speed_mps / 111_195.0
        pts.append(f'<trkpt lat="{lat:.8f}" lon="7.0"><ele>500</ele><time>{t}</time>'
                   f"<extensions><gpxtpx:TrackPointExtension><gpxtpx:hr>150</gpxtpx:hr>"
                   f"<gpxtpx:cad>{cad:g}</gpxtpx:cad></gpxtpx:TrackPointExtension></extensions></trkpt>")
    ns = f"http://www.topografix.com/GPX/{version.replace('.', '/')}"
    typ = f"<type>{type_}</type>" if type_ else ""
    return (f'<?xml version="1.0"?><gpx version="{version}" creator="test" xmlns="{ns}" '
            f'xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v1">'
            f"<trk><name>t</name>{typ}<trkseg>{''.join(pts)}</trkseg></trk></gpx>").encode()


def test_gpx_cadence_in_strides_is_doubled_to_steps_and_the_decision_is_stored():
    act = decode_bytes(make_gpx(cad=84, speed_mps=3.0), "a.gpx").activities[0]
    assert act.meta["cadence_source_unit"] == "strides_per_min"
    assert "84" in act.meta["cadence_unit_reason"]
    assert act.records["cadence_spm"].median() == 168


def test_gpx_cadence_already_in_steps_is_kept():
    act = decode_bytes(make_gpx(cad=168, speed_mps=3.0), "b.gpx").activities[0]
    assert act.meta["cadence_source_unit"] == "steps_per_min"
    assert act.records["cadence_spm"].median() == 168


def test_gpx_walking_cadence_in_strides_is_doubled():
    act = decode_bytes(make_gpx(cad=56, speed_mps=1.3, type_="walking"), "w.gpx").activities[0]
    assert act.meta["cadence_source_unit"] == "strides_per_min"
    assert act.records["cadence_spm"].median() == 112


def test_gpx_speed_and_distance_are_derived_from_positions():
    act = decode_bytes(make_gpx(cad=84, speed_mps=3.0), "a.gpx").activities[0]
    assert act.records["speed_mps"].median() == pytest.approx(3.0, rel=0.01)
    assert act.meta["distance_m"] == pytest.approx(3.0 * 119, rel=0.01)


def test_gpx_1_0_local_offset_is_kept_and_times_converted_to_utc():
    act = decode_bytes(make_gpx(cad=84, version="1.0", tz="+02:00"), "c.gpx").activities[0]
    assert act.meta["utc_offset_s"] == 7200
    assert act.records["ts"][0] == T0 - dt.timedelta(hours=2)


def test_gpx_without_timed_points_is_not_an_activity():
    data = (b'<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1"><rte>'
            b'<rtept lat="1" lon="2"/><rtept lat="1.1" lon="2"/></rte></gpx>')
    with pytest.raises(NotActivityError, match="no timed"):
        decode_bytes(data, "route.gpx")


def test_malformed_xml_is_a_decode_error_naming_the_problem():
    with pytest.raises(DecodeError) as err:
        decode_bytes(b"<?xml version='1.0'?><gpx><trk><trkseg></gpx>", "broken.gpx")
    assert err.value.reason_code == "malformed_xml"
    assert "broken.gpx" in str(err.value)


def test_xml_entity_expansion_and_external_entities_are_refused():
    bomb = (b'<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
            b'<gpx version="1.1"><trk><name>&b;</name></trk></gpx>')
    with pytest.raises(UnsafeInputError):
        decode_bytes(bomb, "bomb.gpx")
    xxe = (b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           b'<TrainingCenterDatabase>&x;</TrainingCenterDatabase>')
    with pytest.raises(UnsafeInputError):
        decode_bytes(xxe, "xxe.tcx")


def test_empty_and_unknown_files_get_clear_reasons():
    with pytest.raises(DecodeError) as e1:
        decode_bytes(b"", "empty.fit")
    assert e1.value.reason_code == "empty"
    with pytest.raises(DecodeError) as e2:
        decode_bytes(b"hello world, not an activity", "notes.txt")
    assert e2.value.reason_code == "unknown_format"


def test_format_is_sniffed_from_content_not_name():
    assert sniff_format(make_gpx(cad=80), "misnamed.tcx") == "gpx"


def make_tcx(run_cadence: float | None, cadence: float | None = None, sport: str = "Running") -> bytes:
    tps = []
    for i in range(90):
        t = (T0 + dt.timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        ext = (f"<Extensions><TPX xmlns='http://www.garmin.com/xmlschemas/ActivityExtension/v2'>"
               f"<Speed>3.0</Speed><RunCadence>{run_cadence:g}</RunCadence></TPX></Extensions>") if run_cadence else ""
        cad = f"<Cadence>{cadence:g}</Cadence>" if cadence else ""
        tps.append(f"<Trackpoint><Time>{t}</Time><DistanceMeters>{3.0 * i}</DistanceMeters>"
                   f"<HeartRateBpm><Value>140</Value></HeartRateBpm>{cad}{ext}</Trackpoint>")
    return (f"<?xml version='1.0'?><TrainingCenterDatabase xmlns='http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2'>"
            f"<Activities><Activity Sport='{sport}'><Id>{T0:%Y-%m-%dT%H:%M:%SZ}</Id>"
            f"<Lap StartTime='{T0:%Y-%m-%dT%H:%M:%SZ}'><TotalTimeSeconds>89</TotalTimeSeconds>"
            f"<DistanceMeters>267</DistanceMeters><Calories>20</Calories><Track>{''.join(tps)}</Track></Lap>"
            f"</Activity></Activities></TrainingCenterDatabase>").encode()


def test_tcx_run_cadence_is_per_leg_and_becomes_steps():
    act = decode_bytes(make_tcx(run_cadence=85), "r.tcx").activities[0]
    assert act.meta["cadence_source_unit"] == "strides_per_min"
    assert act.records["cadence_spm"].median() == 170
    assert act.records["speed_mps"].median() == 3.0
    assert act.meta["device_distance_m"] == 267 and act.meta["device_calories_kcal"] == 20
    assert act.laps.height == 1 and act.records["lap_index"].unique().to_list() == [0]


def test_tcx_biking_cadence_stays_rpm():
    act = decode_bytes(make_tcx(run_cadence=None, cadence=90, sport="Biking"), "b.tcx").activities[0]
    assert act.meta["sport"] == "cycling"
    assert act.records["cadence_rpm"].median() == 90
    assert act.records["cadence_spm"].null_count() == act.records.height


# ------------------------------------------------------------------ FIT (corpus files)

@pytest.mark.corpus
def test_fit_running_cadence_is_two_times_strides_plus_fractional(corpus):
    path = corpus / "fit" / "activitylog2__920xt-run.fit"
    data = path.read_bytes()
    act = decode_fit(data, str(path), reader=read_messages_fitparse).activities[0]
    raw = read_messages_fitparse(data).messages["record"]
    expected = 2 * (raw["cadence"].cast(float) + raw["fractional_cadence"].cast(float).fill_null(0.0))
    expected = expected.to_numpy().copy()
    lo, hi = canonical.CADENCE_SPM_RANGE  # 0 = no cadence signal: NULL in the canonical form
    expected[(expected < lo) | (expected > hi)] = np.nan
    assert np.allclose(act.records["cadence_spm"].to_numpy(), expected, equal_nan=True)
    assert act.meta["cadence_source_unit"] == "strides_per_min"


@pytest.mark.corpus
def test_fit_prefers_enhanced_speed_and_keeps_the_local_offset(corpus):
    path = corpus / "fit" / "fitparse__activity-small-fenix2-run.fit"
    act = decode_fit(path.read_bytes(), str(path), reader=read_messages_fitparse).activities[0]
    assert act.meta["utc_offset_s"] == 7200 and act.meta["tz_source"] == "fit_local_timestamp"
    assert act.records["speed_mps"].null_count() == 0


@pytest.mark.corpus
def test_non_activity_fit_is_skipped_with_its_file_type(corpus):
    path = corpus / "fit" / "fitparse__Settings.fit"
    with pytest.raises(NotActivityError, match="settings"):
        decode_fit(path.read_bytes(), str(path))


@pytest.mark.corpus
def test_multisport_fit_becomes_one_activity_per_session(corpus):
    path = corpus / "fit" / "fitparse__sample_mulitple_header.fit"
    decoded = decode_fit(path.read_bytes(), str(path), reader=read_messages_fitparse)
    sports = [a.meta["sport"] for a in decoded.activities]
    assert sports[0] == "swimming" and "cycling" in sports and sports[-1] == "running"
    total = sum(a.records.height for a in decoded.activities)
    assert total == read_messages_fitparse(path.read_bytes()).messages["record"].height


@pytest.mark.corpus
def test_truncated_fit_is_salvaged_with_the_prefix(corpus, tmp_path):
    path = corpus / "fit" / "fitparse__activity-small-fenix2-run.fit"
    data = path.read_bytes()
    decoded = decode_fit(data[: len(data) // 2], "half.fit", reader=read_messages_fitparse)
    assert decoded.salvage_code == "truncated"
    assert 0 < decoded.activities[0].records.height < 2809


def test_gzip_member_decodes_like_the_plain_file(tmp_path):
    plain = make_gpx(cad=84)
    (tmp_path / "a.gpx.gz").write_bytes(gzip.compress(plain))
    from retroingest.sources import discover
    [item] = list(discover([tmp_path]))
    assert item.read() == plain


def test_gpx_strides_at_a_slow_run_are_not_mistaken_for_steps():
    """97 at 2.32 m/s fits the steps band of a walk-run overlap, but 1.43 m steps at that speed are
    not human; as strides it is 194 steps/min of 0.72 m, a short-stepped (e.g. backward) run."""
    act = decode_bytes(make_gpx(cad=97, speed_mps=2.32), "slow.gpx").activities[0]
    assert act.meta["cadence_source_unit"] == "strides_per_min"
    assert act.records["cadence_spm"].median() == 194


def test_gpx_backward_walking_steps_stay_steps():
    act = decode_bytes(make_gpx(cad=105, speed_mps=0.95, type_="walking"), "bw.gpx").activities[0]
    assert act.meta["cadence_source_unit"] == "steps_per_min"


def test_records_go_to_the_last_lap_started_at_or_before_them():
    """Lap assignment = an as-of join on lap start (ties: the later lap), 0 before the first lap."""
    import polars as pl

    from retroingest.decode.fit import _assign_laps

    t0 = dt.datetime(2024, 5, 1, 6, tzinfo=dt.timezone.utc)
    rng = np.random.default_rng(3)
    for trial in range(50):
        n = int(rng.integers(1, 60))
        secs = np.sort(rng.integers(0, 100, n))
        records = canonical.conform(pl.DataFrame({"ts": [t0 + dt.timedelta(seconds=int(s)) for s in secs]}))
        k = int(rng.integers(1, 8))
        starts = [t0 + dt.timedelta(seconds=int(s)) for s in np.sort(rng.integers(-5, 100, k))]
        if trial % 3 == 0 and k > 1:
            starts[1] = starts[0]  # two laps starting at the same second
        laps = pl.DataFrame({"lap_index": pl.Series(range(k), dtype=pl.Int32),
                             "start_time": pl.Series(starts, dtype=canonical.TS)})
        got = _assign_laps(records, laps)["lap_index"].to_list()
        expected = (records.join_asof(laps.rename({"lap_index": "lap"}), left_on="ts", right_on="start_time",
                                      strategy="backward")["lap"].fill_null(0).to_list())
        assert got == expected, trial
    laps = pl.DataFrame({"lap_index": pl.Series([0, 1, 2], dtype=pl.Int32),
                         "start_time": pl.Series([t0 + dt.timedelta(seconds=s) for s in (1, 3, 3)], dtype=canonical.TS)})
    records = canonical.conform(pl.DataFrame({"ts": [t0 + dt.timedelta(seconds=s) for s in range(5)]}))
    assert _assign_laps(records, laps)["lap_index"].to_list() == [0, 0, 0, 2, 2]
