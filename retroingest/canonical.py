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
import pyarrow as pa

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


_FLOAT_COLUMNS = frozenset(n for n, t in RECORD_SCHEMA.items() if t == pl.Float64)


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
    ts_us, ts_valid = datetime_us(df.get_column("ts").cast(TS))
    columns = {}
    for name in df.columns:
        if name in ("ts", "seq", "elapsed_s"):
            continue
        # the schema's cast, then float64 with NaN for NULL (Int32 lap_index is exact in float64)
        columns[name] = df.get_column(name).cast(RECORD_SCHEMA[name]).cast(pl.Float64).to_numpy()
    return records_frame(conform_columns(ts_us, columns, ts_valid))


def datetime_us(s: pl.Series) -> tuple[np.ndarray, np.ndarray | None]:
    """A Datetime('us') series as int64 µs since the Unix epoch (0 where NULL) and its valid mask
    (None when nothing is NULL)."""
    v = s.to_numpy().view(np.int64)  # datetime64[us], NaT for NULL
    if not s.null_count():
        return v, None
    valid = v != np.iinfo(np.int64).min
    return np.where(valid, v, 0), valid


def conform_columns(ts_us: np.ndarray, columns: dict[str, np.ndarray],
                    ts_valid: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The rules of :func:`conform` on NumPy columns: ts as int64 µs since the Unix epoch (UTC),
    the others float64 with NaN for NULL, named as in RECORD_SCHEMA (missing ones become NULL).

    Rows without ts are dropped, rows are sorted by ts (stable), non-finite values become NULL,
    values outside the cadence, heart-rate and altitude ranges become NULL, ``seq`` and
    ``elapsed_s`` (s since the first record) are assigned. Returns every RECORD_SCHEMA column in
    order: ts int64 µs, seq int32, the others float64 with NaN for NULL (lap_index too).
    """
    keep = None if ts_valid is None or ts_valid.all() else np.flatnonzero(ts_valid)
    ts = np.asarray(ts_us, dtype=np.int64)
    if keep is not None:
        ts = ts[keep]
    n = ts.size
    order = None if n < 2 or bool(np.all(ts[1:] >= ts[:-1])) else np.argsort(ts, kind="stable")
    if order is not None:
        ts = ts[order]
    out: dict[str, np.ndarray] = {}
    for name in RECORD_SCHEMA:
        if name == "ts":
            out[name] = ts
        elif name == "seq":
            out[name] = np.arange(n, dtype=np.int32)
        elif name == "elapsed_s":
            # times the reciprocal, as polars divides by a constant (the values stay bit-identical)
            out[name] = (ts - ts[0]) * (1 / 1e6) if n else np.zeros(0)
        else:
            v = columns.get(name)
            if v is None:
                out[name] = np.full(n, np.nan)
                continue
            v = np.asarray(v, dtype=np.float64)
            if keep is not None:
                v = v[keep]
            if order is not None:
                v = v[order]
            if name in _FLOAT_COLUMNS:  # NaN and ±inf (e.g. '1e999' in XML) are not measurements
                v = np.where(np.isfinite(v), v, np.nan)
            out[name] = v
    with np.errstate(invalid="ignore"):
        # a cadence outside human gait is a sensor artefact, not data
        cad = out["cadence_spm"]
        out["cadence_spm"] = np.where((cad >= CADENCE_SPM_RANGE[0]) & (cad <= CADENCE_SPM_RANGE[1]), cad, np.nan)
        alt = out["altitude_m"]
        out["altitude_m"] = np.where(alt >= ALTITUDE_MIN_M, alt, np.nan)
        hr = out["heart_rate_bpm"]
        out["heart_rate_bpm"] = np.where((hr >= HEART_RATE_RANGE[0]) & (hr <= HEART_RATE_RANGE[1]), hr, np.nan)
    return out


try:  # polars' own constructor under pl.from_arrow; its Python wrapper costs more than the conversion
    from polars.dataframe.frame import PyDataFrame as _PyDataFrame
except ImportError:  # pragma: no cover - another polars layout
    _PyDataFrame = None


def frame_from_arrow(table: pa.Table) -> pl.DataFrame:
    """``pl.from_arrow(table)`` for small tables built here (plain names, one batch, no overrides).

    For the few-column, few-row frames of a FIT file, pl.from_arrow spends about three quarters
    of its time in Python schema handling that has nothing to do for them; this calls the
    constructor it ends in (polars 2.1) and falls back to pl.from_arrow if that is not there.
    """
    if _PyDataFrame is not None and table.num_columns:
        try:
            return pl.DataFrame._from_pydf(_PyDataFrame.from_arrow_record_batches(table.to_batches(), table.schema))
        except AttributeError:  # pragma: no cover
            pass
    return pl.from_arrow(table)


def records_frame(columns: dict[str, np.ndarray]) -> pl.DataFrame:
    """The canonical record frame from :func:`conform_columns` output (NaN becomes NULL)."""
    arrays = []
    for name, dtype in RECORD_SCHEMA.items():
        v = columns[name]
        if name == "ts":
            arrays.append(pa.array(v, type=pa.timestamp("us", tz=UTC)))
        elif name == "seq":
            arrays.append(pa.array(v, type=pa.int32()))
        elif dtype == pl.Int32:
            nan = np.isnan(v)
            arrays.append(pa.array(np.where(nan, 0, v).astype(np.int32), mask=nan if nan.any() else None))
        else:
            arrays.append(pa.array(v, from_pandas=True))  # NaN -> NULL
    return frame_from_arrow(pa.Table.from_arrays(arrays, names=list(RECORD_SCHEMA)))


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
    """Total ascent/descent with a hysteresis so barometric and GPS noise does not add up.

    The reference level moves to a sample once it is ``hysteresis_m`` or more above or below it;
    the climbs and drops between successive reference levels are summed in order. A sample equal
    to the one before it can never move the reference (the previous one either did, and the
    reference is that value, or did not, and neither can this one), so repeats are dropped in
    bulk first; the remaining walk is sequential by nature and runs over Python floats.
    """
    alt = alt[~np.isnan(alt)]
    if alt.size < 2:
        return None, None
    alt = alt[np.concatenate(([True], alt[1:] != alt[:-1]))]
    up = down = 0.0
    vals = alt.tolist()
    ref = vals[0]
    for a in vals[1:]:
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
    speed = records["speed_mps"]
    spd = speed.to_numpy().astype(float)
    dt = np.diff(t, append=t[-1])
    # a gap longer than 60 s is a pause (auto-pause, smart recording stop), not movement
    with np.errstate(invalid="ignore"):
        moving = (spd >= MOVING_SPEED_MPS) & (dt <= 60)
    has_speed = not np.all(np.isnan(spd))
    moving_time = float(dt[moving].sum()) if has_speed else None
    dist = records["distance_m"].to_numpy()
    dist = dist[~np.isnan(dist)]  # canonical records hold NULL, never NaN
    distance = float(dist.max()) if dist.size else None
    if distance is not None and dist.min() > 0 and n > 1:
        # cumulative distance that did not start at zero (a later session of a multisport file)
        distance = float(dist.max() - dist.min())
    cad_col = "cadence_spm" if foot_sport else "cadence_rpm"
    cad = records[cad_col]
    if has_speed:
        with np.errstate(invalid="ignore"):
            cad = cad.filter(pl.Series(spd >= MOVING_SPEED_MPS))  # NULL speed is not moving
    alt = records["altitude_m"].to_numpy().astype(float)
    up, down = _ascent_descent(alt)
    nulls = dict(zip(records.columns, (c.null_count() for c in records.get_columns())))

    def _f(v):
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

    def _has(col):
        return nulls[col] < n

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
        "median_cadence_spm": _f(cad.median()) if foot_sport else None,
        "median_cadence_rpm": _f(cad.median()) if not foot_sport else None,
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
