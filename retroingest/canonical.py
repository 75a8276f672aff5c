"""The canonical per-record form: one schema for every format, SI units named in the columns.

The schema is declared in ``schemas/migrations/001_foundation.sql`` (table ``records``) and
mirrored here; ``tests/test_canonical.py`` checks the two agree. Every decoder ends in
:func:`conform`, which casts, orders and rejects stray columns, and :func:`summarise`, which
recomputes activity statistics from the records so device summaries can sit beside them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from retroingest.errors import ContractError

UTC = "UTC"
TS = pl.Datetime("us", UTC)

# Columns of the `records` table, minus activity_id (added by the loader).
RECORD_SCHEMA = pl.Schema(
    {
        "seq": pl.Int32,
        "ts": TS,
        "elapsed_s": pl.Float64,
        "lat_deg": pl.Float64,
        "lon_deg": pl.Float64,
        "altitude_m": pl.Float64,
        "distance_m": pl.Float64,
        "speed_mps": pl.Float64,
        "cadence_spm": pl.Float64,
        "cadence_rpm": pl.Float64,
        "heart_rate_bpm": pl.Float64,
        "power_w": pl.Float64,
        "temperature_c": pl.Float64,
        "vertical_oscillation_mm": pl.Float64,
        "stance_time_ms": pl.Float64,
        "stance_time_balance_pct": pl.Float64,
        "vertical_ratio_pct": pl.Float64,
        "step_length_m": pl.Float64,
        "lap_index": pl.Int32,
    }
)

LAP_SCHEMA = pl.Schema(
    {
        "lap_index": pl.Int32,
        "start_time": TS,
        "end_time": TS,
        "elapsed_time_s": pl.Float64,
        "timer_time_s": pl.Float64,
        "distance_m": pl.Float64,
        "avg_speed_mps": pl.Float64,
        "max_speed_mps": pl.Float64,
        "avg_heart_rate_bpm": pl.Float64,
        "max_heart_rate_bpm": pl.Float64,
        "avg_cadence_spm": pl.Float64,
        "avg_cadence_rpm": pl.Float64,
        "total_ascent_m": pl.Float64,
        "total_descent_m": pl.Float64,
        "calories_kcal": pl.Float64,
        "trigger": pl.String,
        "intensity": pl.String,
    }
)

# Sports whose cadence is counted in steps (foot strikes) rather than revolutions.
FOOT_SPORTS = frozenset(
    {"running", "walking", "hiking", "mountaineering", "trail_running", "treadmill",
     "track", "snowshoeing", "fitness_equipment_run", "transition_run", "generic_foot"}
)

# Physiological range for human gait, steps per minute; values outside are sensor junk.
CADENCE_SPM_RANGE = (20.0, 260.0)
# Heart rate outside 25-250 bpm is a strap artefact (0 = no contact, 254/255 = sentinels), not data.
HEART_RATE_RANGE = (25.0, 250.0)
# FIT altitude is stored as (m + 500) * 5; a raw 0 from a device without an altimeter decodes to
# -500 m, lower than any place on land (Dead Sea shore: -430 m). Below -450 m is NULL.
ALTITUDE_MIN_M = -450.0
MOVING_SPEED_MPS = 0.3  # low on purpose: backward walking runs at 0.6-1.0 m/s


def is_foot_sport(sport: str | None) -> bool:
    """True when cadence for this sport means steps (running, walking, hiking)."""
    return sport in FOOT_SPORTS


@dataclass
class DecodedActivity:
    """One activity out of a file: activity-level fields, canonical records and laps."""

    meta: dict[str, Any]
    records: pl.DataFrame
    laps: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=LAP_SCHEMA))


@dataclass
class DecodedFile:
    """What a decoder returns for one file. ``salvage_reason`` is set when damage cut it short."""

    format: str
    decoder: str
    activities: list[DecodedActivity]
    salvage_reason: str | None = None
    salvage_code: str | None = None
    fit_file_type: str | None = None


def conform(df: pl.DataFrame, path: str | None = None) -> pl.DataFrame:
    """Cast, order and check a decoder's record frame against RECORD_SCHEMA.

    Missing optional columns are added as NULL; unknown columns are a ContractError (a decoder
    bug). NaN becomes NULL, rows are sorted by time, and ``seq``/``elapsed_s`` are assigned.
    """
    stray = set(df.columns) - set(RECORD_SCHEMA)
    if stray:
        raise ContractError(path, f"decoder produced non-canonical columns {sorted(stray)}",
                            reason_code="contract")
    if "ts" not in df.columns:
        raise ContractError(path, "decoder produced no ts column", reason_code="contract")
    exprs = []
    for name, dtype in RECORD_SCHEMA.items():
        if name in ("seq", "elapsed_s"):
            continue
        if name in df.columns:
            col = pl.col(name).cast(dtype)
            if dtype == pl.Float64:  # NaN and ±inf (e.g. '1e999' in XML) are not measurements
                col = pl.when(col.is_finite()).then(col)
            exprs.append(col.alias(name))
        else:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
    out = (
        df.lazy()
        .select(exprs)
        .filter(pl.col("ts").is_not_null())
        .sort("ts", maintain_order=True)
        .with_columns(
            pl.int_range(pl.len(), dtype=pl.Int32).alias("seq"),
            ((pl.col("ts") - pl.col("ts").first()).dt.total_microseconds() / 1e6).alias("elapsed_s"),
        )
        .with_columns(
            # a cadence outside human gait is a sensor artefact, not data
            pl.when(pl.col("cadence_spm").is_between(*CADENCE_SPM_RANGE))
            .then(pl.col("cadence_spm"))
            .alias("cadence_spm"),
            pl.when(pl.col("altitude_m") >= ALTITUDE_MIN_M).then(pl.col("altitude_m")).alias("altitude_m"),
            pl.when(pl.col("heart_rate_bpm").is_between(*HEART_RATE_RANGE))
            .then(pl.col("heart_rate_bpm"))
            .alias("heart_rate_bpm"),
        )
        .select(list(RECORD_SCHEMA))
        .collect(engine="in-memory")
    )
    return out


def haversine_m(lat1, lon1, lat2, lon2):
    """Great-circle distance in metres between arrays of points in degrees (NumPy, vectorised)."""
    r = 6_371_008.8  # mean Earth radius, m (IUGG)
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(lon2) - np.radians(lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * r * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def fill_distance_speed(df: pl.DataFrame) -> pl.DataFrame:
    """For files that did not record distance or speed (GPX, some TCX): derive them.

    Distance, when the file has none at all, is the cumulative 2-D great-circle length of the
    positions. Speed, when the file has none at all, is distance over time between consecutive
    records (so GPS-derived speed carries fix noise). A partly recorded column is never mixed with
    derived values.
    """
    if df.height == 0:
        return df
    out = df
    if df["distance_m"].null_count() == df.height:
        lat = df["lat_deg"].to_numpy().astype(float)
        lon = df["lon_deg"].to_numpy().astype(float)
        has_pos = ~np.isnan(lat)
        if has_pos.any():
            step = np.zeros(len(lat))
            if len(lat) > 1:
                # consecutive fixes, skipping records without a position
                idx = np.flatnonzero(has_pos)
                d = haversine_m(lat[idx[:-1]], lon[idx[:-1]], lat[idx[1:]], lon[idx[1:]])
                step[idx[1:]] = d
            cum = np.cumsum(step)
            cum[~has_pos] = np.nan
            out = out.with_columns(pl.Series("distance_m", cum).fill_nan(None))
    if df["speed_mps"].null_count() == df.height:
        dist = out["distance_m"].to_numpy().astype(float)
        t = out["elapsed_s"].to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            spd = np.diff(dist, prepend=np.nan) / np.diff(t, prepend=np.nan)
        spd[~np.isfinite(spd) | (spd < 0)] = np.nan
        out = out.with_columns(pl.Series("speed_mps", spd).fill_nan(None))
    return out


def _ascent_descent(alt: np.ndarray, hysteresis_m: float = 2.0) -> tuple[float | None, float | None]:
    """Total ascent/descent with a hysteresis so barometric and GPS noise does not add up."""
    alt = alt[~np.isnan(alt)]
    if alt.size < 2:
        return None, None
    up = down = 0.0
    ref = alt[0]
    for a in alt[1:]:  # short 1-D loop over an already-filtered array; cheap relative to decode
        if a - ref >= hysteresis_m:
            up += a - ref
            ref = a
        elif ref - a >= hysteresis_m:
            down += ref - a
            ref = a
    return float(up), float(down)


def summarise(records: pl.DataFrame, foot_sport: bool) -> dict[str, Any]:
    """Recompute activity statistics from canonical records (the ``activities`` recomputed columns)."""
    n = records.height
    if n == 0:
        raise ValueError("cannot summarise an activity with no records")
    ts = records["ts"]
    start, end = ts.min(), ts.max()
    t = records["elapsed_s"].to_numpy()
    spd = records["speed_mps"].to_numpy().astype(float)
    dt = np.diff(t, append=t[-1])
    # a gap longer than 60 s is a pause (auto-pause, smart recording stop), not movement
    moving = (spd >= MOVING_SPEED_MPS) & (dt <= 60)
    has_speed = not np.all(np.isnan(spd))
    moving_time = float(dt[moving].sum()) if has_speed else None
    dist = records["distance_m"].drop_nulls()
    distance = float(dist.max()) if dist.len() else None
    if distance is not None and dist.len() and dist.min() is not None and dist.min() > 0 and n > 1:
        # cumulative distance that did not start at zero (a later session of a multisport file)
        distance = float(dist.max() - dist.min())
    sel = records.filter(pl.col("speed_mps") >= MOVING_SPEED_MPS) if has_speed else records
    cad_col = "cadence_spm" if foot_sport else "cadence_rpm"
    alt = records["altitude_m"].to_numpy().astype(float)
    up, down = _ascent_descent(alt)

    def _f(v):
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

    def _has(col):
        return records[col].null_count() < n

    return {
        "start_time": start,
        "end_time": end,
        "duration_s": (end - start).total_seconds(),
        "moving_time_s": moving_time,
        "distance_m": distance,
        "n_records": n,
        "avg_speed_mps": (distance / moving_time) if distance and moving_time else None,
        "max_speed_mps": _f(records["speed_mps"].max()),
        "avg_heart_rate_bpm": _f(records["heart_rate_bpm"].mean()),
        "max_heart_rate_bpm": _f(records["heart_rate_bpm"].max()),
        "median_cadence_spm": _f(sel["cadence_spm"].median()) if foot_sport else None,
        "median_cadence_rpm": _f(sel["cadence_rpm"].median()) if not foot_sport else None,
        "total_ascent_m": up,
        "total_descent_m": down,
        "has_gps": _has("lat_deg"),
        "has_heart_rate": _has("heart_rate_bpm"),
        "has_cadence": _has(cad_col),
        "has_power": _has("power_w"),
        "has_running_dynamics": any(
            _has(c) for c in ("vertical_oscillation_mm", "stance_time_ms", "vertical_ratio_pct", "step_length_m")
        ),
    }


FORMAT_RANK = {"fit": 3, "tcx": 2, "gpx": 1}


def richness(summary: dict[str, Any], fmt: str) -> float:
    """Score for choosing which copy of one real activity to keep: channels, then format, then records."""
    channels = sum(
        bool(summary.get(k))
        for k in ("has_gps", "has_heart_rate", "has_cadence", "has_power", "has_running_dynamics")
    )
    return channels * 1e9 + FORMAT_RANK.get(fmt, 0) * 1e8 + min(summary.get("n_records", 0), 1e8 - 1)
