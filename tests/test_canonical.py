"""The canonical schema in Python matches the DDL, and conform() enforces it."""

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from retroingest import canonical, warehouse
from retroingest.errors import ContractError

DUCK_TO_POLARS = {"DOUBLE": pl.Float64, "INTEGER": pl.Int32, "TIMESTAMP WITH TIME ZONE": canonical.TS,
                  "BIGINT": pl.Int64, "VARCHAR": pl.String}


def _ddl_columns(con, table):
    return {r[0]: r[1] for r in con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
        [table]).fetchall()}


def test_record_schema_matches_records_ddl(warehouse_path):
    con = warehouse.connect(warehouse_path)
    ddl = _ddl_columns(con, "records")
    assert ddl.pop("activity_id") == "BIGINT"
    assert list(ddl) == list(canonical.RECORD_SCHEMA)
    for name, duck_type in ddl.items():
        assert DUCK_TO_POLARS[duck_type] == canonical.RECORD_SCHEMA[name], name


def test_lap_schema_matches_laps_ddl(warehouse_path):
    con = warehouse.connect(warehouse_path)
    ddl = _ddl_columns(con, "laps")
    assert ddl.pop("activity_id") == "BIGINT"
    assert list(ddl) == list(canonical.LAP_SCHEMA)


def test_unit_suffixes_name_every_measurement_column():
    unitless = {"seq", "ts", "lap_index"}
    suffixes = ("_s", "_deg", "_m", "_mps", "_spm", "_rpm", "_bpm", "_w", "_c", "_mm", "_ms", "_pct")
    for name in canonical.RECORD_SCHEMA:
        assert name in unitless or name.endswith(suffixes), name


def test_conform_rejects_non_canonical_columns():
    df = pl.DataFrame({"ts": [dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)], "cadence": [80]})
    with pytest.raises(ContractError, match="cadence"):
        canonical.conform(df, "x.fit")


def test_conform_orders_by_time_and_turns_nan_and_implausible_cadence_into_null():
    t0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    df = pl.DataFrame({
        "ts": [t0 + dt.timedelta(seconds=2), t0, t0 + dt.timedelta(seconds=1)],
        "speed_mps": [float("nan"), 3.0, 3.1],
        "cadence_spm": [510.0, 170.0, 172.0],  # 255 strides/min x 2: an invalid sentinel doubled
    })
    out = canonical.conform(df)
    assert out["elapsed_s"].to_list() == [0.0, 1.0, 2.0]
    assert out["seq"].to_list() == [0, 1, 2]
    assert out["speed_mps"].to_list() == [3.0, 3.1, None]
    assert out["cadence_spm"].to_list() == [170.0, 172.0, None]
    assert out.schema == canonical.RECORD_SCHEMA


def _ascent_descent_one_sample_at_a_time(alt, hysteresis_m=2.0):
    """The plain definition: walk every sample, move the reference level once it is far enough."""
    alt = [a for a in alt if not math.isnan(a)]
    if len(alt) < 2:
        return None, None
    up = down = 0.0
    ref = alt[0]
    for a in alt[1:]:
        if a - ref >= hysteresis_m:
            up += a - ref
            ref = a
        elif ref - a >= hysteresis_m:
            down += ref - a
            ref = a
    return up, down


def test_ascent_and_descent_equal_the_sample_by_sample_definition_to_the_last_bit():
    rng = np.random.default_rng(11)
    for trial in range(300):
        n = int(rng.integers(0, 400))
        kind = trial % 4
        if kind == 0:    # barometric: smooth, 0.2 m steps, long flat stretches (many repeats)
            alt = np.round((300 + np.cumsum(rng.normal(0, 0.3, n)) * (rng.random(n) < 0.5)) / 0.2) * 0.2
        elif kind == 1:  # GPS: noisy around a slope, every sample different
            alt = 100 + 0.05 * np.arange(n) + rng.normal(0, 3, n)
        elif kind == 2:  # steps of exactly the hysteresis, and gaps
            alt = rng.integers(-3, 4, n) * 2.0
            alt[rng.random(n) < 0.1] = np.nan
        else:            # repeats, then a jump
            alt = np.repeat(rng.normal(0, 5, max(n // 5, 1)), 5)[:n]
        got = canonical._ascent_descent(alt.astype(float))
        assert got == _ascent_descent_one_sample_at_a_time(alt.tolist()), trial


def test_conform_columns_and_conform_agree():
    """The FIT decoder conforms NumPy columns, the XML decoders a frame: one set of rules."""
    t0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    ts = [t0 + dt.timedelta(seconds=s) for s in (3, 0, 1, 1, 2)] + [None]
    df = pl.DataFrame({
        "ts": pl.Series(ts, dtype=canonical.TS),
        "altitude_m": [-480.0, 10.0, float("inf"), 12.0, None, 5.0],
        "heart_rate_bpm": [255.0, 140.0, 141.0, 20.0, 143.0, 150.0],
        "cadence_spm": [170.0, 10.0, 171.0, 172.0, 300.0, 170.0],
        "lap_index": pl.Series([1, 0, 0, None, 1, 1], dtype=pl.Int32),
    })
    us = np.array([0 if t is None else (t - t0) // dt.timedelta(microseconds=1) for t in ts], dtype=np.int64)
    us += (t0 - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(microseconds=1)
    cols = {c: df[c].cast(pl.Float64).to_numpy() for c in ("altitude_m", "heart_rate_bpm", "cadence_spm", "lap_index")}
    via_numpy = canonical.records_frame(canonical.conform_columns(us, cols, ts_valid=np.array([t is not None for t in ts])))
    out = canonical.conform(df)
    assert_frame_equal(via_numpy, out)
    assert out.schema == canonical.RECORD_SCHEMA
    assert out["lap_index"].to_list() == [0, 0, None, 1, 1]          # ties keep file order
    assert out["altitude_m"].to_list() == [10.0, None, 12.0, None, None]
    assert out["heart_rate_bpm"].to_list() == [140.0, 141.0, None, 143.0, None]
    assert out["elapsed_s"].to_list() == [0.0, 1.0, 1.0, 2.0, 3.0]
