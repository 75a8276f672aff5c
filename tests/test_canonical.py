"""The canonical schema in Python matches the DDL, and conform() enforces it."""

import datetime as dt

import polars as pl
import pytest

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
