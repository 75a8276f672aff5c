"""The gait simulator: files decode with retroingest's own decoders and agree with their truth."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import polars as pl
import pytest

from retroingest.decode.fit import decode_fit
from retroingest.decode.gpx import decode_gpx
from retroingest.simulate import DEV_SEED_LIMIT, MANIFEST, read_manifest, read_truth, simulate
from retroingest.simulate.athletes import draw_athlete
from retroingest.simulate.scenarios import COVERAGE, Phase, Session
from retroingest.simulate.signals import DeviceConfig, render

SEED = 11  # a development seed (< DEV_SEED_LIMIT); the accuracy harness never uses it
N = len(COVERAGE)  # one file per scenario


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    files = simulate(out, N, SEED)
    return out, files


@pytest.fixture(scope="module")
def decoded(sim):
    """file name → (SimulatedFile, canonical records joined to their truth labels)."""
    out = {}
    for f in sim[1]:
        data = f.path.read_bytes()
        dec = decode_fit(data, str(f.path)) if f.format == "fit" else decode_gpx(data, str(f.path))
        assert len(dec.activities) == 1
        act = dec.activities[0]
        truth = read_truth(f.truth_path)
        labelled = act.records.join_asof(
            truth.select(pl.col("start_time").alias("ts"), "gait", "direction"), on="ts", strategy="backward")
        out[f.file] = (f, act, truth, labelled)
    return out


def _steady(df: pl.DataFrame) -> pl.DataFrame:
    """Records at least 10 s away from any label change (no acceleration ramps or HR lag edges)."""
    code = (df["gait"] + df["direction"].fill_null("")).to_numpy()
    t = df["elapsed_s"].to_numpy()
    change_t = t[1:][code[1:] != code[:-1]]
    if change_t.size == 0:
        return df
    dist = np.min(np.abs(t[:, None] - change_t[None, :]), axis=1)
    return df.filter(pl.Series(dist >= 10))


def test_dev_seed_is_below_the_held_out_range():
    assert SEED < DEV_SEED_LIMIT


def test_every_file_decodes_and_the_truth_covers_it_contiguously(decoded):
    for name, (f, act, truth, _) in decoded.items():
        starts, ends = truth["start_time"], truth["end_time"]
        assert (ends.head(-1) == starts.tail(-1)).all(), f"{name}: truth intervals are not contiguous"
        assert (ends > starts).all(), name
        assert starts[0] == act.records["ts"].min(), f"{name}: truth does not start at the first record"
        assert ends[-1] == act.records["ts"].max(), f"{name}: truth does not end at the last record"
        assert set(truth["gait"].unique()) <= {"stationary", "walk", "run"}
        stationary = truth["gait"] == "stationary"
        assert truth.filter(stationary)["direction"].null_count() == stationary.sum()
        assert truth.filter(~stationary)["direction"].is_in(["forward", "backward"]).all()


def test_manifest_lists_every_file_with_its_conditions(sim):
    out, files = sim
    m = read_manifest(out / MANIFEST)
    for col in ("file", "format", "scenario", "athlete_id", "body_mass_kg", "device_serial", "has_gps",
                "has_cadence", "has_hr", "sampling", "gpx_cadence_convention"):
        assert col in m.columns
    assert sorted(m["file"].to_list()) == sorted(f.file for f in files)
    assert set(m["scenario"]) == {b.__name__ for b in COVERAGE}
    assert set(m["format"]) == {"fit", "gpx"}


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path):
    a = simulate(tmp_path / "a", 3, 123)
    b = simulate(tmp_path / "b", 3, 123)
    c = simulate(tmp_path / "c", 3, 124)
    assert [f.file for f in a] == [f.file for f in b]
    for fa, fb in zip(a, b):
        assert fa.path.read_bytes() == fb.path.read_bytes()
        assert fa.truth_path.read_bytes() == fb.truth_path.read_bytes()
    assert any(fa.path.read_bytes() != fc.path.read_bytes() for fa, fc in zip(a, c))


def test_fit_files_carry_device_identity_and_body_mass_as_declared(decoded):
    for name, (f, act, _, _) in decoded.items():
        if f.format != "fit":
            continue
        m = act.meta
        assert m["device_serial"] == str(f.device_serial)
        assert m["device_manufacturer"] == "garmin"
        assert m["sport"] in ("running", "walking")
        assert m["sub_sport"] == f.sub_sport or (f.sub_sport == "casual_walking")
        assert m["body_mass_kg"] == (pytest.approx(f.body_mass_kg) if f.weight_in_file else None)
        assert m["utc_offset_s"] == f.utc_offset_s
        assert m["has_gps"] == f.has_gps
        assert m["device_distance_m"] == pytest.approx(act.records["distance_m"].max(), abs=1.0)


def _gait_medians(lab: pl.DataFrame) -> dict:
    df = _steady(lab).filter(pl.col("cadence_spm").is_not_null() & (pl.col("speed_mps") > 0.5))
    df = df.with_columns((pl.col("speed_mps") / (pl.col("cadence_spm") / 60)).alias("step_m"))
    by = df.group_by("gait", "direction").agg(pl.col("step_m").median(), pl.col("cadence_spm").median(), pl.len())
    return {(r["gait"], r["direction"]): r for r in by.iter_rows(named=True) if r["len"] >= 20}


def test_backward_running_has_shorter_steps_at_equal_or_higher_cadence(decoded):
    """Per athlete (GPS files): BR steps ≈ 0.7 × their forward running steps, at the same or higher cadence."""
    by_athlete: dict[str, list[pl.DataFrame]] = {}
    for f, _, _, lab in decoded.values():
        if f.venue != "treadmill":   # a foot pod's backward speed is off by up to ±15 %
            by_athlete.setdefault(f.athlete_id, []).append(lab)
    checked = 0
    for athlete, labs in by_athlete.items():
        df = pl.concat(labs)
        # their normal forward running: the faster half (slow recovery jogs and hills are hard negatives)
        fr_v = df.filter((pl.col("gait") == "run") & (pl.col("direction") == "forward"))["speed_mps"].median()
        if fr_v is None:
            continue
        g = _gait_medians(df.filter((pl.col("direction") != "forward") | (pl.col("gait") != "run")
                                    | (pl.col("speed_mps") >= fr_v)))
        if ("run", "forward") in g and ("run", "backward") in g:
            fr, br = g[("run", "forward")], g[("run", "backward")]
            assert br["step_m"] < 0.9 * fr["step_m"], athlete
            assert br["cadence_spm"] >= 0.95 * fr["cadence_spm"], athlete
            checked += 1
    assert checked >= 1


def test_backward_walking_has_shorter_steps_at_about_the_same_cadence(decoded):
    checked = 0
    for f, _, _, lab in decoded.values():
        g = _gait_medians(lab)
        if ("walk", "forward") in g and ("walk", "backward") in g:
            fw, bw = g[("walk", "forward")], g[("walk", "backward")]
            # a foot pod's speed may be off by ±15 % walking backward (its algorithm assumes forward)
            # GPX speed comes from noisy positions: its bias (≈ +0.1-0.3 m/s) lengthens slow steps most
            assert bw["step_m"] < (0.97 if f.venue == "treadmill" or f.format == "gpx" else 0.9) * fw["step_m"], f.file
            assert abs(bw["cadence_spm"] / fw["cadence_spm"] - 1) < 0.2, f.file   # "unchanged" (Laufer 2005)
            checked += 1
    assert checked >= 1


def test_gait_speeds_fall_in_the_literature_ranges(decoded):
    # device (Doppler) speed only: GPX speed derived from noisy fixes is biased upwards when slow
    df = pl.concat([_steady(lab) for f, _, _, lab in decoded.values() if f.venue != "treadmill" and f.format == "fit"])
    med = {(r["gait"], r["direction"]): r["speed_mps"]
           for r in df.group_by("gait", "direction").agg(pl.col("speed_mps").median()).iter_rows(named=True)}
    ranges = {("run", "backward"): (1.4, 2.9), ("run", "forward"): (2.2, 4.5), ("walk", "backward"): (0.6, 1.3)}
    for key, (lo, hi) in ranges.items():
        if key in med:   # biomech.md §8 ranges, widened by slow athletes and per-bout variation
            assert lo <= med[key] <= hi, key
    if ("stationary", None) in med:
        assert med[("stationary", None)] < 0.6          # GPS drift: apparent speed while standing


def test_gpx_cadence_conventions_differ_as_declared(decoded):
    ratio = {}
    for f, act, _, _ in decoded.values():
        if f.format != "gpx" or not f.has_cadence:
            continue
        raw = np.array([int(v) for v in re.findall(r"<gpxtpx:cad>(\d+)</gpxtpx:cad>", f.path.read_text())])
        spm = act.records["cadence_spm"].drop_nulls()
        ratio.setdefault(f.gpx_cadence_convention, []).append(float(np.median(raw[raw > 0]) / spm.median()))
        # the decoder, deciding from values and speed, recovers steps/min either way
        assert act.meta["cadence_source_unit"] == f.gpx_cadence_convention, f.file
    assert set(ratio) == {"strides_per_min", "steps_per_min"}
    assert all(r == pytest.approx(0.5, abs=0.03) for r in ratio["strides_per_min"])
    assert all(r == pytest.approx(1.0, abs=0.03) for r in ratio["steps_per_min"])


def test_treadmill_files_have_no_positions_but_distance_accumulates(decoded):
    tread = [(f, act) for f, act, _, _ in decoded.values() if f.venue == "treadmill"]
    assert tread
    for f, act in tread:
        r = act.records
        assert r["lat_deg"].null_count() == r.height
        d = r["distance_m"].to_numpy()
        assert np.all(np.diff(d) >= 0) and d[-1] > 500


def test_smart_recording_is_irregular_and_one_second_is_regular(decoded):
    for f, act, _, _ in decoded.values():
        dt_s = np.diff(act.records["elapsed_s"].to_numpy())
        if f.sampling == "smart":
            assert np.median(dt_s) >= 2
        else:
            assert np.mean(dt_s == 1) > 0.9


def test_fit_cadence_is_quantised_to_whole_or_fractional_strides(decoded):
    for f, act, _, _ in decoded.values():
        if f.format != "fit" or not f.has_cadence:
            continue
        spm = act.records["cadence_spm"].drop_nulls().to_numpy()
        strides = spm / 2
        assert np.allclose(strides * 128, np.round(strides * 128))      # 1/128 stride steps


def _render(phases, a, seed=0, venue="road", hr_day_offset_bpm=0.0):
    s = Session("unit", "backward", venue, "running", "generic", phases=phases, hr_day_offset_bpm=hr_day_offset_bpm)
    cfg = DeviceConfig(fmt="fit", sampling="1s", has_gps=venue != "treadmill", has_hr=True, has_cadence=True,
                       has_dynamics=False, weight_in_file=True, auto_pause=False, gps_pos_sd_m=2.0,
                       gps_pos_tau_s=30, gps_speed_sd=0.1, gps_jitter_m=0.5, speed_lag_s=1, pod_calibration=1.0,
                       pod_backward_factor=1.0, hr_noise_sd=1.0, dropouts=False)
    return render(s, a, cfg, np.random.default_rng(seed))


def test_backward_running_costs_more_heart_rate_at_the_same_speed():
    a = draw_athlete(np.random.default_rng(3), 0)
    r = _render([Phase("run", "forward", 900, 2.2), Phase("run", "backward", 900, 2.2)], a)
    fwd = np.median(r.hr[600:900])
    bwd = np.median(r.hr[1500:1800])
    assert bwd - fwd == pytest.approx(a.br_hr_surcharge, abs=4)


def test_cadence_excess_is_what_the_rendered_cadence_shows_at_the_same_speed():
    for seed in (3, 6, 9):
        a = draw_athlete(np.random.default_rng(seed), 0)
        for gait, v in (("run", a.br_speed), ("walk", a.bw_speed)):
            r = _render([Phase(gait, "forward", 600, v), Phase(gait, "backward", 600, v)], a)
            shown = np.log(np.median(r.cadence_spm[700:1150]) / np.median(r.cadence_spm[100:550]))
            assert shown == pytest.approx(a.cadence_excess(gait), abs=0.02), (seed, gait)


def test_manifest_states_each_athletes_backward_evidence(sim):
    out, files = sim
    m = read_manifest(out / MANIFEST)
    for gait in ("run", "walk"):
        assert m[f"{gait}_cadence_excess"].is_finite().all()
        # the simulator's ranges (athletes.py): backward cadence is never far below forward
        assert (m[f"{gait}_cadence_excess"] > -0.1).all() and (m[f"{gait}_cadence_excess"] < 0.5).all()
        assert m[f"{gait}_hr_surcharge_bpm"].is_between(3, 36).all()


def test_a_day_with_a_higher_heart_rate_shifts_every_effort_by_the_same_beats():
    a = draw_athlete(np.random.default_rng(7), 0)
    phases = [Phase("run", "forward", 600, a.fr_speed), Phase("walk", "forward", 300, a.fw_speed)]
    usual, today = _render(phases, a), _render(phases, a, hr_day_offset_bpm=6.0)
    assert np.median(today.hr[300:600] - usual.hr[300:600]) == pytest.approx(6.0, abs=0.1)
    assert np.median(today.hr[800:900] - usual.hr[800:900]) == pytest.approx(6.0, abs=0.1)
    assert np.array_equal(today.cadence_spm, usual.cadence_spm, equal_nan=True)


def test_manifest_states_each_sessions_heart_rate_day_offset(sim):
    out, files = sim
    m = read_manifest(out / MANIFEST)
    off = m["hr_day_offset_bpm"]
    assert off.is_between(-9, 9).all() and off.n_unique() == m.height   # one draw per session
    assert 1.0 < off.std() < 8.0


def test_heart_rate_lags_behind_a_change_of_effort():
    a = draw_athlete(np.random.default_rng(4), 0)
    r = _render([Phase("stationary", "", 300, 0.0), Phase("run", "forward", 600, a.fr_speed)], a)
    rise = r.hr[300 + int(a.hr_tau_s)] - r.hr[290]
    full = np.median(r.hr[800:900]) - r.hr[290]
    assert 0.45 < rise / full < 0.8     # one time constant ≈ 63 % of the step


def test_uphill_running_raises_altitude_and_shortens_steps():
    a = draw_athlete(np.random.default_rng(5), 0)
    cad_flat = float(a.cadence_spm("run", "forward", np.array([a.fr_speed]))[0])
    r = _render([Phase("run", "forward", 300, a.fr_speed),
                 Phase("run", "forward", 300, a.fr_speed * 0.75, grade=0.08, cadence_spm=cad_flat)], a)
    assert r.alt[590] - r.alt[310] == pytest.approx(0.08 * a.fr_speed * 0.75 * 280, rel=0.15)
    assert np.nanmedian(r.true_step_m[320:590]) < 0.85 * np.nanmedian(r.true_step_m[20:290])


def test_track_sessions_stay_on_a_400_m_track():
    a = draw_athlete(np.random.default_rng(6), 0)
    r = _render([Phase("run", "forward", 600, a.fr_speed)], a, venue="track")
    lat0 = np.nanmean(r.lat)
    y = (r.lat - lat0) * 111_320
    x = (r.lon - np.nanmean(r.lon)) * 111_320 * np.cos(np.radians(lat0))
    assert np.nanmax(x) - np.nanmin(x) < 84.39 + 2 * 36.8 + 20     # ≈ 158 m long
    assert np.nanmax(y) - np.nanmin(y) < 2 * 36.8 + 20             # ≈ 74 m wide


def test_sessions_never_overlap_in_time(sim):
    files = sorted(sim[1], key=lambda f: f.start_time)
    for a, b in zip(files, files[1:]):
        assert a.start_time + dt.timedelta(seconds=a.n_seconds) < b.start_time


def test_gpx_speed_from_positions_is_as_noisy_as_real_gpx(decoded):
    for f, act, _, lab in decoded.values():
        if f.format != "gpx":
            continue
        steady = _steady(lab).filter((pl.col("gait") == "run") & (pl.col("direction") == "forward"))
        if steady.height < 300:
            continue
        v = steady["speed_mps"].to_numpy()
        jitter = np.nanstd(np.diff(v)) / np.sqrt(2)
        assert 0.1 < jitter < 2.0, f.file      # real corpus GPX: 0.4-1.8 m/s between 1 s fixes


def test_fit_files_pass_the_garmin_sdk_integrity_check_and_summaries_match_records(sim):
    from garmin_fit_sdk import Decoder, Stream

    for f in [f for f in sim[1] if f.format == "fit"][:4]:   # the SDK decoder is slow: four files
        data = bytearray(f.path.read_bytes())
        assert Decoder(Stream.from_byte_array(data)).check_integrity(), f.file
        msgs, errors = Decoder(Stream.from_byte_array(data)).read()
        assert errors == []
        rec, ses = msgs["record_mesgs"], msgs["session_mesgs"][0]
        assert len(rec) == f.n_records
        span = (rec[-1]["timestamp"] - rec[0]["timestamp"]).total_seconds()
        assert ses["total_elapsed_time"] == pytest.approx(span)
        assert ses["num_laps"] == len(msgs["lap_mesgs"])
        assert sum(lap["total_elapsed_time"] for lap in msgs["lap_mesgs"]) == pytest.approx(span)
        assert msgs["file_id_mesgs"][0]["serial_number"] == f.device_serial


def test_backward_walking_keeps_cadence_and_shortens_steps_in_the_physics():
    a = draw_athlete(np.random.default_rng(8), 0)
    r = _render([Phase("walk", "forward", 300, a.fw_speed), Phase("walk", "backward", 300, a.bw_speed)], a)
    fw_cad, bw_cad = np.median(r.cadence_spm[30:290]), np.median(r.cadence_spm[330:590])
    assert abs(bw_cad / fw_cad - 1) < 0.1
    assert np.nanmedian(r.true_step_m[330:590]) < 0.8 * np.nanmedian(r.true_step_m[30:290])
