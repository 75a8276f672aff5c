"""Equivalence metrics on constructed activities with known backward distance and time.

The helpers at the top (`Bout`, `add_activity`) build real warehouse rows (activities, records,
segments) and are imported by tests/test_views.py and tests/test_report*.py too.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import duckdb
import polars as pl
import pytest

from retroingest import warehouse
from retroingest.config import ConfigError
from retroingest.metrics import compute_equivalence, refresh

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 11, 2, 7, 0, tzinfo=UTC)  # a Monday


@dataclass
class Bout:
    """A stretch of constant gait in a constructed activity."""

    seconds: int
    speed_mps: float
    cadence_spm: float | None
    gait: str = "run"                 # stationary | walk | run
    direction: str | None = "forward"
    context: str = "track"
    hr_bpm: float | None = 140.0
    confidence: float = 0.9


def add_activity(con: duckdb.DuckDBPyConnection, activity_id: int, start: dt.datetime, bouts: list[Bout], *,
                 sport: str = "running", sub_sport: str = "track", body_mass_kg: float | None = None,
                 gps: bool = True, duplicate_of: int | None = None, athlete_id: str | None = "default",
                 with_segments: bool = True) -> None:
    """Insert one activity with 1 Hz records and one segment per bout."""
    ts, dist, speed, cad, hr, lat, lon, seg_rows = [], [], [], [], [], [], [], []
    d = 0.0
    t = start
    lat0, lon0 = 48.0 + activity_id % 7 * 0.01, 11.0
    heading = 0.0
    for i, b in enumerate(bouts):
        seg_start = t
        seg_d0 = d
        for _ in range(b.seconds):
            ts.append(t)
            dist.append(d)
            speed.append(b.speed_mps)
            cad.append(b.cadence_spm)
            hr.append(b.hr_bpm)
            # walk a circle of 400 m circumference so the route is drawable
            ang = d / 400.0 * 2 * math.pi + heading
            lat.append(lat0 + 63.7 / 111_320 * math.sin(ang) if gps else None)
            lon.append(lon0 + 63.7 / (111_320 * math.cos(math.radians(lat0))) * math.cos(ang) if gps else None)
            d += b.speed_mps
            t += dt.timedelta(seconds=1)
        steps = None if b.cadence_spm is None else b.cadence_spm * b.seconds / 60.0
        seg_rows.append({
            "segment_id": activity_id * 1000 + i, "activity_id": activity_id, "athlete_id": athlete_id,
            "start_time": seg_start, "end_time": t, "duration_s": float(b.seconds),
            "distance_m": d - seg_d0, "n_steps": steps, "gait": b.gait,
            "direction": None if b.gait == "stationary" else b.direction, "confidence": b.confidence,
            "context": b.context, "median_speed_mps": b.speed_mps, "median_cadence_spm": b.cadence_spm,
            "classifier_version": "test-constructed",
        })
    n = len(ts)
    records = pl.DataFrame({
        "activity_id": [activity_id] * n, "seq": list(range(n)), "ts": ts,
        "elapsed_s": [float(i) for i in range(n)], "lat_deg": lat, "lon_deg": lon,
        "distance_m": dist, "speed_mps": speed, "cadence_spm": cad, "heart_rate_bpm": hr,
    }, schema_overrides={"lat_deg": pl.Float64, "lon_deg": pl.Float64, "cadence_spm": pl.Float64,
                         "heart_rate_bpm": pl.Float64})
    moving = float(sum(b.seconds for b in bouts if b.speed_mps >= 0.3))
    hrs = [h for h in hr if h is not None]
    con.execute(
        """INSERT INTO activities (activity_id, file_id, session_index, format, sport, sub_sport,
               is_foot_sport, start_time, end_time, utc_offset_s, duration_s, moving_time_s, distance_m,
               n_records, avg_heart_rate_bpm, has_gps, has_heart_rate, has_cadence, has_power,
               has_running_dynamics, body_mass_kg, duplicate_of, richness)
           VALUES (?, ?, 0, 'fit', ?, ?, true, ?, ?, 3600, ?, ?, ?, ?, ?, ?, ?, ?, false, false, ?, ?, 1.0)""",
        [activity_id, activity_id, sport, sub_sport, ts[0], ts[-1], float(n - 1), moving, dist[-1], n,
         sum(hrs) / len(hrs) if hrs else None, gps, bool(hrs), any(c is not None for c in cad),
         body_mass_kg, duplicate_of],
    )
    con.register("_rec", records)
    con.execute("INSERT INTO records BY NAME SELECT * FROM _rec")
    con.unregister("_rec")
    if with_segments:
        segs = pl.DataFrame(seg_rows, schema_overrides={"n_steps": pl.Float64, "median_cadence_spm": pl.Float64,
                                                        "direction": pl.String, "athlete_id": pl.String})
        con.register("_seg", segs)
        con.execute("INSERT INTO segments BY NAME SELECT * FROM _seg")
        con.unregister("_seg")


def interval_session() -> list[Bout]:
    """Warm-up, 4 x 120 s backward running at 2.2 m/s with forward recoveries, cool-down."""
    bouts = [Bout(600, 3.0, 166, hr_bpm=140)]
    for _ in range(4):
        bouts.append(Bout(120, 2.2, 176, direction="backward", hr_bpm=160))
        bouts.append(Bout(90, 2.1, 156, hr_bpm=145))
    bouts.append(Bout(300, 2.8, 162, hr_bpm=138))
    return bouts


def activity_row(con, activity_id: int, profile: str) -> dict:
    cur = con.execute("SELECT * FROM equivalence WHERE level = 'activity' AND activity_id = ? AND profile = ?",
                      [activity_id, profile])
    rows = cur.fetchall()
    assert len(rows) == 1, rows
    return dict(zip([d[0] for d in cur.description], rows[0]))


@pytest.fixture
def con(warehouse_path):
    c = warehouse.connect(warehouse_path)
    yield c
    c.close()


# ---- acceptance ----------------------------------------------------------------------------

def test_seed_claims_six_times_and_evidence_1_35_times_backward_distance(con):
    add_activity(con, 1, T0, interval_session(), body_mass_kg=80.0)
    compute_equivalence(con, config={})
    D, T = 4 * 120 * 2.2, 4 * 120.0   # known backward distance (m) and time (s)
    seed, ev = activity_row(con, 1, "seed_claims"), activity_row(con, 1, "evidence")
    assert seed["backward_distance_m"] == pytest.approx(D)
    assert seed["backward_time_s"] == pytest.approx(T)
    assert seed["fwd_distance_m"] == pytest.approx(6 * D)
    assert ev["fwd_distance_m"] == pytest.approx(1.35 * D)
    assert ev["fwd_distance_low_m"] == pytest.approx(1.15 * D)
    assert ev["fwd_distance_high_m"] == pytest.approx(1.40 * D)
    assert ev["n_segments"] == 4 and ev["gait"] == "run" and ev["context"] == "track"


def test_evidence_kcal_match_the_acsm_running_formula_by_hand(con):
    add_activity(con, 1, T0, interval_session(), body_mass_kg=80.0)
    compute_equivalence(con, config={})
    ev = activity_row(con, 1, "evidence")
    # By hand: S = 2.2 m/s = 132 m/min. VO2 = 0.2 * 132 * 1.35 + 3.5 = 35.64 + 3.5 = 39.14 mL/kg/min.
    # kcal/min = 39.14 * 80 / 200 = 15.656. T = 8 min -> 125.248 kcal.
    assert ev["energy_kcal"] == pytest.approx(125.248, rel=1e-9)
    # Band: r = 1.15 -> 0.2*132*1.15 + 3.5 = 33.86 -> 13.544 kcal/min -> 108.352 kcal;
    #       r = 1.40 -> 0.2*132*1.40 + 3.5 = 40.46 -> 16.184 kcal/min -> 129.472 kcal.
    assert ev["energy_kcal_low"] == pytest.approx(108.352, rel=1e-9)
    assert ev["energy_kcal_high"] == pytest.approx(129.472, rel=1e-9)
    assert ev["energy_method"] == "acsm_running"
    assert (ev["body_mass_kg"], ev["body_mass_source"]) == (80.0, "file")
    # seed_claims: 400 kcal per 30 min, whatever the speed or mass: 400 / 30 * 8 = 106.67 kcal
    seed = activity_row(con, 1, "seed_claims")
    assert seed["energy_kcal"] == pytest.approx(400 / 30 * 8)
    assert seed["energy_method"] == "flat_rate"


def test_steps_time_and_pace_equivalents(con):
    add_activity(con, 1, T0, interval_session(), body_mass_kg=80.0)
    compute_equivalence(con, config={})
    steps = 4 * 176 * 2.0  # 176 spm for 2 min, four times
    seed, ev = activity_row(con, 1, "seed_claims"), activity_row(con, 1, "evidence")
    assert seed["backward_steps"] == pytest.approx(steps)
    assert seed["fwd_steps"] == pytest.approx(10 * steps)
    assert (ev["fwd_steps"], ev["fwd_steps_low"], ev["fwd_steps_high"]) == pytest.approx(
        (1.175 * steps, 1.15 * steps, 1.2 * steps))
    assert (ev["fwd_time_s"], ev["fwd_time_low_s"], ev["fwd_time_high_s"]) == pytest.approx((480, 408, 552))
    assert seed["fwd_time_s"] is None  # the claims say nothing about time
    pace = 480 / (4 * 120 * 2.2) * 1000
    assert ev["backward_pace_s_per_km"] == pytest.approx(pace)
    assert ev["fwd_equivalent_pace_s_per_km"] == pytest.approx(pace / 1.35)
    assert seed["fwd_equivalent_pace_s_per_km"] == pytest.approx(pace / 6)


def test_backward_walking_uses_compendium_in_its_speed_window_else_acsm_walking(con):
    add_activity(con, 1, T0, [Bout(300, 1.3, 110, gait="walk", hr_bpm=100),
                              Bout(600, 1.45, 108, gait="walk", direction="backward", context="treadmill", hr_bpm=118),
                              Bout(600, 0.9, 100, gait="walk", direction="backward", context="treadmill", hr_bpm=112)],
                 sport="walking", sub_sport="treadmill", gps=False)
    compute_equivalence(con, config={})
    rows = {r[0]: r[1:] for r in con.execute(
        "SELECT segment_id, energy_kcal, energy_method, body_mass_source, fwd_distance_m, backward_distance_m "
        "FROM equivalence WHERE profile = 'evidence' AND level = 'segment'").fetchall()}
    # 1.45 m/s is inside 1.3-1.6 m/s: Compendium 17320, 6.0 MET = 21 mL/kg/min; 70 kg assumed:
    # 21 * 70 / 200 = 7.35 kcal/min x 10 min = 73.5 kcal
    kcal, method, mass_src, fwd, bwd = rows[1001]
    assert (kcal, method, mass_src) == (pytest.approx(73.5), "compendium_17320", "assumed_70kg")
    assert fwd == pytest.approx(1.4 * bwd)
    # 0.9 m/s = 54 m/min: ACSM walking 0.1 * 54 * 1.4 + 3.5 = 11.06 mL/kg/min -> 3.871 kcal/min x 10
    kcal, method, *_ = rows[1002]
    assert (kcal, method) == (pytest.approx(38.71), "acsm_walking")
    # steps: walking evidence x0.95 (0.8-1.1); 100 spm x 10 min = 1000 backward steps
    assert con.execute("SELECT fwd_steps, fwd_steps_low, fwd_steps_high FROM equivalence "
                       "WHERE profile = 'evidence' AND segment_id = 1002").fetchone() == pytest.approx((950, 800, 1100))
    assert activity_row(con, 1, "evidence")["energy_method"] == "mixed"


def test_body_mass_from_athlete_table_then_config_then_assumed(con):
    add_activity(con, 1, T0, interval_session(), athlete_id="ann")
    add_activity(con, 2, T0 + dt.timedelta(days=1), interval_session(), athlete_id="bob")
    add_activity(con, 3, T0 + dt.timedelta(days=2), interval_session(), athlete_id="cid")
    con.execute("INSERT INTO athletes (athlete_id, body_mass_kg) VALUES ('ann', 55.0)")
    compute_equivalence(con, config={"athletes": {"bob": {"body_mass_kg": 90}}})
    got = {a: (activity_row(con, a, "evidence")["body_mass_kg"], activity_row(con, a, "evidence")["body_mass_source"])
           for a in (1, 2, 3)}
    assert got == {1: (55.0, "athlete_config"), 2: (90.0, "athlete_config"), 3: (70.0, "assumed_70kg")}
    # energy scales with mass: kcal per kg is the same for all three
    per_kg = {a: activity_row(con, a, "evidence")["energy_kcal"] / got[a][0] for a in got}
    assert per_kg[1] == pytest.approx(per_kg[2]) == pytest.approx(per_kg[3])


def test_banister_trimp_by_hand_with_configured_heart_rate_range(con):
    add_activity(con, 1, T0, interval_session(), body_mass_kg=70.0)
    compute_equivalence(con, config={"athletes": {"default": {"hr_rest_bpm": 50, "hr_max_bpm": 190, "sex": "female"}}})
    ev = activity_row(con, 1, "evidence")
    # HRr = (160 - 50) / (190 - 50) = 0.785714; women: 0.86 * exp(1.67 * HRr)
    hrr = 110 / 140
    assert ev["trimp"] == pytest.approx(8 * hrr * 0.86 * math.exp(1.67 * hrr))
    assert ev["avg_heart_rate_bpm"] == pytest.approx(160)
    assert ev["hr_coverage"] == pytest.approx(1.0)
    assert ev["trimp_hr_source"] == "athlete_config"


def test_no_heart_rate_gives_no_trimp(con):
    bouts = [Bout(300, 3.0, 165, hr_bpm=None), Bout(200, 2.2, 175, direction="backward", hr_bpm=None)]
    add_activity(con, 1, T0, bouts)
    compute_equivalence(con, config={})
    ev = activity_row(con, 1, "evidence")
    assert ev["trimp"] is None and ev["hr_coverage"] is None and ev["avg_heart_rate_bpm"] is None
    assert ev["energy_kcal"] > 0


# ---- profiles from configuration ----------------------------------------------------------

def test_a_changed_profile_in_configuration_recomputes_every_activity(con, tmp_path):
    add_activity(con, 1, T0, interval_session())
    add_activity(con, 2, T0 + dt.timedelta(days=1), interval_session())
    compute_equivalence(con, config={})
    cfg = {"profiles": {"evidence": {"run_distance_ratio": 1.25},
                        "coach": {"base": "seed_claims", "run_distance_ratio": 3, "description": "my coach"}}}
    compute_equivalence(con, [1], config=cfg)  # asked for one activity, but the profile changed
    D = 4 * 120 * 2.2
    for a in (1, 2):
        assert activity_row(con, a, "evidence")["fwd_distance_m"] == pytest.approx(1.25 * D)
        assert activity_row(con, a, "coach")["fwd_distance_m"] == pytest.approx(3 * D)
        assert activity_row(con, a, "coach")["fwd_steps"] == pytest.approx(10 * 4 * 176 * 2)  # from its base
    active = dict(con.execute("SELECT profile, params_hash FROM equivalence_profiles WHERE active").fetchall())
    assert set(active) == {"seed_claims", "evidence", "coach"} and active["evidence"] != "builtin-1"
    assert {h for (h,) in con.execute("SELECT DISTINCT params_hash FROM equivalence WHERE profile = 'evidence'").fetchall()} \
        == {active["evidence"]}
    # taking the override out of the configuration brings back the shipped parameter set
    refresh(con, config={})
    assert activity_row(con, 2, "evidence")["fwd_distance_m"] == pytest.approx(1.35 * D)
    assert con.execute("SELECT count(*) FROM equivalence WHERE profile = 'coach'").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM equivalence_profiles").fetchone()[0] == 4  # history kept


def test_profile_from_a_toml_file(con, tmp_path, monkeypatch):
    add_activity(con, 1, T0, interval_session())
    (tmp_path / "retroingest.toml").write_text(
        '[profiles.cautious]\nbase = "evidence"\nrun_distance_ratio = 1.15\n\n[profiles.seed_claims]\nenabled = false\n')
    monkeypatch.chdir(tmp_path)
    compute_equivalence(con)
    assert {p for (p,) in con.execute("SELECT DISTINCT profile FROM equivalence").fetchall()} == {"cautious", "evidence"}
    assert activity_row(con, 1, "cautious")["fwd_distance_m"] == pytest.approx(1.15 * 4 * 120 * 2.2)


def test_bad_profile_configuration_is_refused_with_the_key_named(con):
    add_activity(con, 1, T0, interval_session())
    with pytest.raises(ConfigError, match="run_distance_ratoi"):
        compute_equivalence(con, config={"profiles": {"x": {"run_distance_ratoi": 2}}})
    with pytest.raises(ConfigError, match="number"):
        compute_equivalence(con, config={"profiles": {"x": {"run_distance_ratio": "lots"}}})


# ---- atomic replacement --------------------------------------------------------------------

def test_recompute_is_idempotent_and_scoped_to_the_given_activities(con):
    add_activity(con, 1, T0, interval_session())
    add_activity(con, 2, T0 + dt.timedelta(days=1), interval_session())
    n = compute_equivalence(con, config={})
    assert n == 2 * 2 * (4 + 1)  # 2 activities x 2 profiles x (4 segments + 1 activity row)
    before = con.execute("SELECT computed_at FROM equivalence WHERE activity_id = 2 LIMIT 1").fetchone()[0]
    assert compute_equivalence(con, [1], config={}) == 10
    assert con.execute("SELECT count(*) FROM equivalence").fetchone()[0] == n
    assert con.execute("SELECT computed_at FROM equivalence WHERE activity_id = 2 LIMIT 1").fetchone()[0] == before


def test_a_failing_recompute_leaves_the_old_rows_and_profiles(con):
    add_activity(con, 1, T0, interval_session())
    compute_equivalence(con, config={})
    snapshot = con.execute("SELECT * FROM equivalence ORDER BY ALL").fetchall()
    # a flat-rate profile without its rate violates a CHECK in the middle of the transaction
    bad = {"profiles": {"broken": {"base": "evidence", "energy_model": "flat_rate"}}}
    with pytest.raises(duckdb.ConstraintException):
        compute_equivalence(con, config=bad)
    assert con.execute("SELECT * FROM equivalence ORDER BY ALL").fetchall() == snapshot
    assert con.execute("SELECT count(*) FROM equivalence_profiles WHERE profile = 'broken'").fetchone()[0] == 0


def test_reclassified_activity_loses_rows_of_segments_that_are_gone(con):
    add_activity(con, 1, T0, interval_session())
    compute_equivalence(con, config={})
    con.execute("UPDATE segments SET direction = 'forward' WHERE activity_id = 1")
    assert refresh(con, config={}) == 0
    assert con.execute("SELECT count(*) FROM equivalence WHERE activity_id = 1").fetchone()[0] == 0


def test_refresh_notices_a_segment_whose_numbers_changed(con):
    add_activity(con, 1, T0, interval_session())
    add_activity(con, 2, T0 + dt.timedelta(days=1), interval_session())
    compute_equivalence(con, config={})
    assert refresh(con, config={}) == 0  # nothing stale
    con.execute("UPDATE segments SET distance_m = 300 WHERE segment_id = 1001")
    assert refresh(con, config={}) == 10  # activity 1 only: 2 profiles x (4 segments + 1)
    assert activity_row(con, 1, "seed_claims")["backward_distance_m"] == pytest.approx(3 * 264 + 300)


def test_forward_only_and_empty_warehouse_give_no_rows(con):
    assert compute_equivalence(con, config={}) == 0
    add_activity(con, 1, T0, [Bout(1200, 3.0, 166)])
    assert compute_equivalence(con, config={}) == 0
    assert con.execute("SELECT count(*) FROM equivalence").fetchone()[0] == 0


# ---- end to end: simulator -> ingest -> classifier -> metrics ------------------------------

def test_simulated_activities_end_to_end(tmp_path):
    """Simulated FIT/GPX files through the real pipeline: the metrics follow the classified
    backward work exactly, and that work matches the simulator's ground truth closely."""
    from retroingest.ingest import ingest
    from retroingest.simulate import simulate
    from retroingest.simulate.simulate import read_truth

    files = simulate(tmp_path / "sim", n=4, seed=42)  # a development seed (< 10000)
    backward = [f for f in files if f.backward_s > 0]
    assert backward, "the simulated set has no backward session"
    db = tmp_path / "retro.duckdb"
    result = ingest([tmp_path / "sim"], db, workers=1)
    assert result.post_steps.get("metrics") == "ok", result.post_steps
    con = warehouse.connect(db)
    missed: list[str] = []
    try:
        for f in backward:
            (aid, mass), = con.execute(
                "SELECT a.activity_id, a.body_mass_kg FROM activities a JOIN source_files s USING (file_id) "
                "WHERE s.path LIKE ? AND a.duplicate_of IS NULL", [f"%{f.file}"]).fetchall()
            # ground truth D and T: backward intervals of the truth CSV, distance from the records
            truth = read_truth(f.truth_path).filter(pl.col("direction") == "backward")
            T_true = sum((e - s).total_seconds() for s, e in truth.select("start_time", "end_time").iter_rows())
            D_true = 0.0
            for s, e in truth.select("start_time", "end_time").iter_rows():
                d0, d1 = con.execute("SELECT min(distance_m), max(distance_m) FROM records "
                                     "WHERE activity_id = ? AND ts >= ? AND ts < ?", [aid, s, e]).fetchone()
                D_true += d1 - d0
            segs = con.execute("SELECT gait, duration_s, distance_m FROM segments "
                               "WHERE activity_id = ? AND direction = 'backward'", [aid]).fetchall()
            if not segs:  # a classifier miss (issue 4's harness measures those): then no metrics either
                missed.append(f.scenario)
                assert con.execute("SELECT count(*) FROM equivalence WHERE activity_id = ?", [aid]).fetchone()[0] == 0
                continue
            T = sum(s[1] for s in segs)
            D_run = sum(s[2] for s in segs if s[0] == "run")
            D_walk = sum(s[2] for s in segs if s[0] == "walk")
            D = D_run + D_walk
            assert T == pytest.approx(T_true, rel=0.10) and D == pytest.approx(D_true, rel=0.10)
            seed, ev = activity_row(con, aid, "seed_claims"), activity_row(con, aid, "evidence")
            assert (seed["backward_time_s"], seed["backward_distance_m"]) == pytest.approx((T, D))
            assert seed["fwd_distance_m"] == pytest.approx(6 * D)
            assert ev["fwd_distance_m"] == pytest.approx(1.35 * D_run + 1.4 * D_walk)
            assert ev["fwd_distance_low_m"] == pytest.approx(1.15 * D_run + 1.25 * D_walk)
            assert ev["fwd_distance_high_m"] == pytest.approx(1.40 * D_run + 1.5 * D_walk)
            kg = mass if mass is not None else 70.0
            assert ev["body_mass_source"] == ("file" if mass is not None else "assumed_70kg")
            # ACSM by hand for the running segments: kcal = (0.2 * S * 1.35 + 3.5) * kg / 200 * minutes
            run_kcal = sum((0.2 * (d / t * 60) * 1.35 + 3.5) * kg / 200 * (t / 60)
                           for g, t, d in segs if g == "run")
            ev_run = con.execute("SELECT sum(energy_kcal) FROM equivalence WHERE activity_id = ? AND "
                                 "profile = 'evidence' AND level = 'segment' AND gait = 'run'", [aid]).fetchone()[0]
            assert (ev_run or 0.0) == pytest.approx(run_kcal)
            assert seed["energy_kcal"] == pytest.approx(400 / 30 * T / 60)
    finally:
        con.close()
    assert len(missed) < len(backward), f"no backward session was detected at all: {missed}"


def test_the_configuration_example_in_metrics_md_works(con):
    import re
    import tomllib
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "METRICS.md").read_text()
    cfg = tomllib.loads(re.search(r"```toml\n(.*?)```", doc, re.S).group(1))
    add_activity(con, 1, T0, interval_session(), body_mass_kg=80.0)
    compute_equivalence(con, config=cfg)
    assert {p for (p,) in con.execute("SELECT DISTINCT profile FROM equivalence").fetchall()} == {"evidence", "coach"}
    # r = 1.30: 0.2 * 132 * 1.30 + 3.5 = 37.82 mL/kg/min -> 15.128 kcal/min x 8 min
    assert activity_row(con, 1, "evidence")["energy_kcal"] == pytest.approx(121.024)
    assert activity_row(con, 1, "coach")["fwd_distance_m"] == pytest.approx(3 * 4 * 120 * 2.2)
