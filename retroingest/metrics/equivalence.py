"""Per backward segment and per activity: what it was worth under each active profile.

Pure functions over Polars frames do the arithmetic; :func:`compute_equivalence` reads the
warehouse, calls them and replaces the `equivalence` rows of the affected activities in one
transaction. Definitions and sources: docs/METRICS.md.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable

import duckdb
import polars as pl

from retroingest import config as config_mod
from retroingest.metrics import formulas as f
from retroingest.metrics.profiles import active_profiles, sync_profiles
from retroingest.warehouse import transaction

ASSUMED_MASS_KG = 70.0          # DOMAIN.md: else 70 kg, marked as assumed
ASSUMED_HR_REST_BPM = 60.0      # TRIMP defaults when the athlete is not configured
ASSUMED_HR_MAX_BPM = 190.0
MAX_RECORD_GAP_S = 10.0         # a longer gap between records is a pause, not HR time
MIN_HR_COVERAGE = 0.5           # TRIMP only when HR covers at least half the backward time

SEGMENT_SCHEMA = pl.Schema({
    "segment_id": pl.Int64, "activity_id": pl.Int64, "athlete_id": pl.String,
    "start_time": pl.Datetime("us", "UTC"), "end_time": pl.Datetime("us", "UTC"),
    "duration_s": pl.Float64, "distance_m": pl.Float64, "n_steps": pl.Float64,
    "gait": pl.String, "context": pl.String,
    "file_mass_kg": pl.Float64, "athlete_mass_kg": pl.Float64,
})
HR_SCHEMA = pl.Schema({"segment_id": pl.Int64, "heart_rate_bpm": pl.Float64, "dt_s": pl.Float64})

_SEGMENTS_SQL = """
SELECT s.segment_id, s.activity_id, coalesce(s.athlete_id, 'default') AS athlete_id,
       s.start_time, s.end_time, s.duration_s, s.distance_m, s.n_steps, s.gait, s.context,
       a.body_mass_kg AS file_mass_kg, ath.body_mass_kg AS athlete_mass_kg
FROM segments s
JOIN activities a USING (activity_id)
LEFT JOIN athletes ath ON ath.athlete_id = coalesce(s.athlete_id, 'default')
WHERE s.direction = 'backward' AND s.gait IN ('walk', 'run') {filter}
ORDER BY s.activity_id, s.start_time
"""

# Each record's time share: until the next record, cut at the segment end and at long gaps.
_HR_SQL = """
WITH bw AS (
    SELECT segment_id, activity_id, start_time, end_time FROM segments
    WHERE direction = 'backward' AND gait IN ('walk', 'run') {filter}
), r AS (
    SELECT activity_id, ts, heart_rate_bpm,
           lead(ts) OVER (PARTITION BY activity_id ORDER BY ts) AS next_ts
    FROM records WHERE activity_id IN (SELECT activity_id FROM bw)
)
SELECT bw.segment_id, r.heart_rate_bpm,
       epoch(least(coalesce(r.next_ts, r.ts), bw.end_time)) - epoch(r.ts) AS dt_s
FROM r JOIN bw ON r.activity_id = bw.activity_id AND r.ts >= bw.start_time AND r.ts < bw.end_time
"""


def _filter(activity_ids: list[int] | None, alias: str = "s.") -> tuple[str, list]:
    if activity_ids is None:
        return "", []
    return f"AND {alias}activity_id IN (SELECT unnest(?::BIGINT[]))", [list(activity_ids)]


def load_backward_segments(con: duckdb.DuckDBPyConnection, activity_ids: list[int] | None = None) -> pl.DataFrame:
    """Backward walk/run segments with the file's and the athlete table's body mass."""
    where, args = _filter(activity_ids)
    df = con.execute(_SEGMENTS_SQL.format(filter=where), args).pl()
    return df.cast(SEGMENT_SCHEMA) if df.height else pl.DataFrame(schema=SEGMENT_SCHEMA)


def load_backward_hr(con: duckdb.DuckDBPyConnection, activity_ids: list[int] | None = None) -> pl.DataFrame:
    """One row per record inside a backward segment: segment_id, heart_rate_bpm, dt_s (s)."""
    where, args = _filter(activity_ids, alias="")
    df = con.execute(_HR_SQL.format(filter=where), args).pl()
    return df.cast(HR_SCHEMA) if df.height else pl.DataFrame(schema=HR_SCHEMA)


def athlete_params(config: dict[str, Any], athlete_ids: Iterable[str]) -> pl.DataFrame:
    """Per athlete from configuration: body mass (kg), HR rest/max (bpm), sex, and their source."""
    rows = []
    for aid in sorted(set(athlete_ids)):
        sec = config_mod.athlete(config, aid)
        has_hr = "hr_rest_bpm" in sec and "hr_max_bpm" in sec
        rows.append({
            "athlete_id": aid,
            "config_mass_kg": float(sec["body_mass_kg"]) if "body_mass_kg" in sec else None,
            "hr_rest_bpm": float(sec["hr_rest_bpm"]) if has_hr else ASSUMED_HR_REST_BPM,
            "hr_max_bpm": float(sec["hr_max_bpm"]) if has_hr else ASSUMED_HR_MAX_BPM,
            "sex": str(sec.get("sex", "male")),
            "trimp_hr_source": "athlete_config" if has_hr else "assumed",
        })
    return pl.DataFrame(rows, schema={"athlete_id": pl.String, "config_mass_kg": pl.Float64,
                                      "hr_rest_bpm": pl.Float64, "hr_max_bpm": pl.Float64,
                                      "sex": pl.String, "trimp_hr_source": pl.String})


def with_body_mass(segments: pl.DataFrame, athletes: pl.DataFrame) -> pl.DataFrame:
    """Add body_mass_kg and body_mass_source: file, else athlete configuration, else 70 kg."""
    athlete_mass = pl.coalesce("athlete_mass_kg", "config_mass_kg")
    return segments.join(athletes, on="athlete_id", how="left").with_columns(
        pl.coalesce("file_mass_kg", athlete_mass, pl.lit(ASSUMED_MASS_KG)).alias("body_mass_kg"),
        pl.when(pl.col("file_mass_kg").is_not_null()).then(pl.lit("file"))
        .when(athlete_mass.is_not_null()).then(pl.lit("athlete_config"))
        .otherwise(pl.lit("assumed_70kg")).alias("body_mass_source"),
    )


def hr_load(segments: pl.DataFrame, hr: pl.DataFrame) -> pl.DataFrame:
    """Per segment: hr_time_s, avg_heart_rate_bpm (time-weighted) and raw Banister TRIMP."""
    per_record = (
        hr.lazy()
        .filter(pl.col("heart_rate_bpm").is_not_null())
        .with_columns(pl.col("dt_s").clip(0.0, MAX_RECORD_GAP_S))
        .join(segments.lazy().select("segment_id", "hr_rest_bpm", "hr_max_bpm", "sex"), on="segment_id")
        .with_columns(
            f.trimp_expr(pl.col("dt_s") / 60.0,
                         f.hr_reserve_expr(pl.col("heart_rate_bpm"), pl.col("hr_rest_bpm"), pl.col("hr_max_bpm")),
                         pl.col("sex")).alias("trimp_raw"))
        .group_by("segment_id")
        .agg(pl.col("dt_s").sum().alias("hr_time_s"),
             ((pl.col("heart_rate_bpm") * pl.col("dt_s")).sum() / pl.col("dt_s").sum()).alias("avg_heart_rate_bpm"),
             pl.col("trimp_raw").sum())
    )
    return segments.lazy().join(per_record, on="segment_id", how="left").collect(engine="in-memory")


def _by_gait(run_col: str, walk_col: str) -> pl.Expr:
    return pl.when(pl.col("gait") == "run").then(pl.col(run_col)).otherwise(pl.col(walk_col))


def _ratio_band(key: str) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(central, low, high) ratio for run/walk `key`; a missing bound falls back to central."""
    central = _by_gait(f"run_{key}", f"walk_{key}")
    low = pl.coalesce(_by_gait(f"run_{key}_low", f"walk_{key}_low"), central)
    high = pl.coalesce(_by_gait(f"run_{key}_high", f"walk_{key}_high"), central)
    return central, low, high


def _energy(r_suffix: str) -> pl.Expr:
    """Gross kcal under the row's profile, using the ratio column suffix '', '_low' or '_high'."""
    minutes = pl.col("duration_s") / 60.0
    speed = f.speed_m_per_min()
    mass = pl.col("body_mass_kg")
    run = f.kcal_expr(f.acsm_vo2_expr(speed, 0.2, pl.col(f"run_energy_ratio{r_suffix}")
                                      .fill_null(pl.col("run_energy_ratio"))), mass, minutes)
    walk_acsm = f.kcal_expr(f.acsm_vo2_expr(speed, 0.1, pl.col(f"walk_energy_ratio{r_suffix}")
                                            .fill_null(pl.col("walk_energy_ratio"))), mass, minutes)
    walk_comp = f.kcal_expr(pl.col("walk_compendium_met") * f.ML_O2_PER_MET, mass, minutes)
    return (
        pl.when(pl.col("energy_model") == "flat_rate").then(pl.col("flat_kcal_per_min") * minutes)
        .when(pl.col("gait") == "run").then(run)
        .when(_in_compendium_window()).then(walk_comp)
        .otherwise(walk_acsm)
    )


def _in_compendium_window() -> pl.Expr:
    speed_mps = pl.col("distance_m") / pl.col("duration_s")
    return (pl.col("walk_compendium_met").is_not_null()
            & speed_mps.is_between(pl.col("walk_compendium_min_speed_mps"),
                                   pl.col("walk_compendium_max_speed_mps")))


def _energy_method() -> pl.Expr:
    return (
        pl.when(pl.col("energy_model") == "flat_rate").then(pl.lit("flat_rate"))
        .when(pl.col("distance_m").is_null() | (pl.col("duration_s") <= 0)).then(pl.lit(None, pl.String))
        .when(pl.col("gait") == "run").then(pl.lit("acsm_running"))
        .when(_in_compendium_window()).then(pl.lit("compendium_17320"))
        .otherwise(pl.lit("acsm_walking"))
    )


def _pace(distance: pl.Expr) -> pl.Expr:
    return pl.when(distance > 0).then(pl.col("backward_time_s") / distance * 1000.0)


def segment_equivalence(segments: pl.DataFrame, profiles: pl.DataFrame) -> pl.DataFrame:
    """One row per (backward segment, profile): forward equivalents, energy, pace and TRIMP.

    `segments` needs the columns added by :func:`with_body_mass` and :func:`hr_load`.
    """
    d, d_lo, d_hi = _ratio_band("distance_ratio")
    s, s_lo, s_hi = _ratio_band("step_ratio")
    t, t_lo, t_hi = _ratio_band("time_ratio")
    bwd_d, bwd_s, bwd_t = pl.col("distance_m"), pl.col("n_steps"), pl.col("duration_s")
    coverage = pl.when(pl.col("duration_s") > 0).then(pl.col("hr_time_s") / pl.col("duration_s"))
    return (
        segments.lazy()
        .join(profiles.lazy(), how="cross")
        .with_columns(
            pl.lit("segment").alias("level"),
            pl.lit(1, pl.Int32).alias("n_segments"),
            bwd_t.alias("backward_time_s"),
            bwd_d.alias("backward_distance_m"),
            bwd_s.alias("backward_steps"),
            (bwd_d * d).alias("fwd_distance_m"),
            (bwd_d * d_lo).alias("fwd_distance_low_m"),
            (bwd_d * d_hi).alias("fwd_distance_high_m"),
            (bwd_s * s).alias("fwd_steps"),
            (bwd_s * s_lo).alias("fwd_steps_low"),
            (bwd_s * s_hi).alias("fwd_steps_high"),
            (bwd_t * t).alias("fwd_time_s"),
            (bwd_t * t_lo).alias("fwd_time_low_s"),
            (bwd_t * t_hi).alias("fwd_time_high_s"),
            _energy("").alias("energy_kcal"),
            _energy("_low").alias("energy_kcal_low"),
            _energy("_high").alias("energy_kcal_high"),
            _energy_method().alias("energy_method"),
            coverage.alias("hr_coverage"),
        )
        .with_columns(*_paces_and_trimp())
        .collect(engine="in-memory")
    )


def _paces_and_trimp() -> list[pl.Expr]:
    """Paces and HR load derived from a row's totals (same for segment and activity rows)."""
    return [
        _pace(pl.col("backward_distance_m")).alias("backward_pace_s_per_km"),
        _pace(pl.col("fwd_distance_m")).alias("fwd_equivalent_pace_s_per_km"),
        pl.when(pl.col("hr_coverage") >= MIN_HR_COVERAGE)
        .then(pl.col("trimp_raw") / pl.col("hr_coverage")).alias("trimp"),
    ]


def _sum_known(col: str) -> pl.Expr:
    """Sum over segments where known; NULL when no segment knows it."""
    return pl.when(pl.col(col).is_not_null().any()).then(pl.col(col).sum()).alias(col)


def _same_or_mixed(col: str) -> pl.Expr:
    return pl.when(pl.col(col).n_unique() == 1).then(pl.col(col).first()).otherwise(pl.lit("mixed")).alias(col)


SUMMED = ("backward_time_s", "backward_distance_m", "backward_steps",
          "fwd_distance_m", "fwd_distance_low_m", "fwd_distance_high_m",
          "fwd_steps", "fwd_steps_low", "fwd_steps_high",
          "fwd_time_s", "fwd_time_low_s", "fwd_time_high_s",
          "energy_kcal", "energy_kcal_low", "energy_kcal_high", "hr_time_s", "trimp_raw")


def activity_equivalence(seg_eq: pl.DataFrame) -> pl.DataFrame:
    """Sum segment rows into one row per (activity, profile)."""
    return (
        seg_eq.lazy()
        .with_columns((pl.col("avg_heart_rate_bpm") * pl.col("hr_time_s")).alias("_hr_x_t"))
        .group_by("profile", "params_hash", "activity_id")
        .agg(
            pl.col("athlete_id").first(),
            pl.col("start_time").min(),
            _same_or_mixed("gait"), _same_or_mixed("context"), _same_or_mixed("energy_method"),
            pl.len().cast(pl.Int32).alias("n_segments"),
            *[_sum_known(c) for c in SUMMED],
            pl.col("_hr_x_t").sum().alias("_hr_x_t"),
            pl.col("body_mass_kg").first(), pl.col("body_mass_source").first(),
            pl.col("trimp_hr_source").first(),
        )
        .with_columns(
            pl.lit("activity").alias("level"),
            pl.lit(None, pl.Int64).alias("segment_id"),
            pl.when(pl.col("hr_time_s") > 0).then(pl.col("_hr_x_t") / pl.col("hr_time_s"))
            .alias("avg_heart_rate_bpm"),
            pl.when(pl.col("backward_time_s") > 0)
            .then(pl.col("hr_time_s") / pl.col("backward_time_s")).alias("hr_coverage"),
        )
        .with_columns(*_paces_and_trimp())
        .collect(engine="in-memory")
    )


OUTPUT_COLUMNS = (
    "profile", "params_hash", "level", "activity_id", "segment_id", "athlete_id", "start_time",
    "gait", "context", "n_segments", "backward_time_s", "backward_distance_m", "backward_steps",
    "fwd_distance_m", "fwd_distance_low_m", "fwd_distance_high_m",
    "fwd_steps", "fwd_steps_low", "fwd_steps_high", "fwd_time_s", "fwd_time_low_s", "fwd_time_high_s",
    "energy_kcal", "energy_kcal_low", "energy_kcal_high", "energy_method",
    "body_mass_kg", "body_mass_source", "backward_pace_s_per_km", "fwd_equivalent_pace_s_per_km",
    "avg_heart_rate_bpm", "hr_coverage", "trimp", "trimp_hr_source",
)


def equivalence_rows(segments: pl.DataFrame, hr: pl.DataFrame, profiles: pl.DataFrame,
                     config: dict[str, Any]) -> pl.DataFrame:
    """Segment and activity rows for every active profile, in the `equivalence` column order."""
    athletes = athlete_params(config, segments["athlete_id"].to_list())
    seg = hr_load(with_body_mass(segments, athletes), hr)
    seg_eq = segment_equivalence(seg, profiles)
    act_eq = activity_equivalence(seg_eq)
    cols = list(OUTPUT_COLUMNS)
    return pl.concat([seg_eq.select(cols), act_eq.select(cols)], how="vertical_relaxed")


def compute_equivalence(con: duckdb.DuckDBPyConnection, activity_ids: Iterable[int] | None = None,
                        config: dict[str, Any] | None = None) -> int:
    """Recompute `equivalence` for the given activities (all when None); returns rows written.

    Profiles are first synced from configuration; when the active set changed, every activity
    is recomputed whatever `activity_ids` says. Old rows are replaced in one transaction.
    """
    if config is None:
        config = config_mod.load()
    ids = None if activity_ids is None else sorted({int(a) for a in activity_ids})
    now = dt.datetime.now(dt.timezone.utc)
    with transaction(con):
        if sync_profiles(con, config):
            ids = None
        segments = load_backward_segments(con, ids)
        hr = load_backward_hr(con, ids)
        rows = equivalence_rows(segments, hr, active_profiles(con), config)
        rows = rows.with_columns(pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("computed_at"))
        if ids is None:
            con.execute("DELETE FROM equivalence")
        else:
            con.execute("DELETE FROM equivalence WHERE activity_id IN (SELECT unnest(?::BIGINT[]))", [ids])
        if rows.height:
            con.register("_equivalence_new", rows)
            try:
                con.execute("INSERT INTO equivalence BY NAME SELECT * FROM _equivalence_new")
            finally:
                con.unregister("_equivalence_new")
    return rows.height


def stale_activity_ids(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Activities whose backward segments lack rows for an active profile, or whose rows no longer
    match a backward segment (re-classified: gone, or a different gait, length or distance)."""
    return [r[0] for r in con.execute("""
        SELECT DISTINCT s.activity_id
        FROM segments s CROSS JOIN (SELECT profile, params_hash FROM equivalence_profiles WHERE active) p
        WHERE s.direction = 'backward' AND s.gait IN ('walk', 'run')
          AND NOT EXISTS (SELECT 1 FROM equivalence e
                          WHERE e.segment_id = s.segment_id AND e.profile = p.profile
                            AND e.params_hash = p.params_hash)
        UNION
        SELECT DISTINCT e.activity_id FROM equivalence e
        WHERE e.segment_id IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM segments s WHERE s.segment_id = e.segment_id
                          AND s.direction = 'backward' AND s.gait = e.gait
                          AND s.duration_s = e.backward_time_s
                          AND s.distance_m IS NOT DISTINCT FROM e.backward_distance_m
                          AND s.n_steps IS NOT DISTINCT FROM e.backward_steps)
        ORDER BY 1
    """).fetchall()]


def refresh(con: duckdb.DuckDBPyConnection, config: dict[str, Any] | None = None) -> int:
    """Bring `equivalence` up to date with configuration and segments; returns rows written."""
    if config is None:
        config = config_mod.load()
    with transaction(con):
        changed = sync_profiles(con, config)
    if changed:
        return compute_equivalence(con, None, config)
    stale = stale_activity_ids(con)
    return compute_equivalence(con, stale, config) if stale else 0
