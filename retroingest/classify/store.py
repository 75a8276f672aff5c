"""Warehouse side of the classifier: read records, learn baselines, replace segments atomically.

``classify_activities(con, activity_ids=None)`` is what ingest calls for new activities and what
``retroingest classify [--all]`` re-runs. Reads are columnar (``.pl()``), writes are one
transaction: the activities' old segments and forward references are deleted and the new ones
inserted from Arrow frames, and the athletes' baselines are updated.

Athletes: a device serial maps to an athlete through ``device_athletes``. The configuration can
fill that table (``[athletes.<id>] device_serials = ["3912345678", ...]``) and can choose what
happens to unmapped devices (``[classify] unmapped_devices = "default" | "per_device"``; default
``"default"``: every unmapped device and every file without a serial belongs to athlete
'default'; ``"per_device"`` gives each unmapped serial its own athlete ``device:<serial>``).
"""

from __future__ import annotations

import datetime as dt
import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

import duckdb
import polars as pl

from retroingest.classify import baseline as blmod
from retroingest.classify.baseline import POPULATION, ActivityRef, Baseline
from retroingest.classify.core import CLASSIFIER_VERSION, SEGMENT_SCHEMA, Result, classify
from retroingest.warehouse import transaction

DEFAULT_ATHLETE = "default"
# records classified together: 500 k keeps the peak working set near 1 GB and was faster than 2 M
# (2,048 activities, 7 M records: 2.0 GB peak, 7.7 s at 2 M; 1.3 GB, 4.8 s at 500 k; same run)
BATCH_RECORDS = 500_000
WORKERS = 2     # threads classifying halves of a batch (the machine's cores, at most)
RECORD_COLUMNS = ("activity_id", "seq", "ts", "elapsed_s", "lat_deg", "lon_deg", "altitude_m", "distance_m",
                  "speed_mps", "cadence_spm", "heart_rate_bpm", "stance_time_ms")
REF_COLUMNS = ("activity_id", "athlete_id", "run_forward_s", "run_speed_mps", "run_cadence_spm", "run_offset",
               "walk_forward_s", "walk_offset", "hr_gain_bpm_per_mps", "gct_ms")
# a second pass is worth it when the learned locus moved by more than this (log cadence ≈ 1.5 %)
RELEARN_SHIFT = 0.015


def classify_activities(con: duckdb.DuckDBPyConnection, activity_ids: Sequence[int] | None = None, *,
                        config: dict[str, Any] | None = None) -> int:
    """Classify primary foot-sport activities (all when ``activity_ids`` is None); returns how many.

    Old segments of those activities are replaced in one transaction; athlete baselines are
    updated from the forward running found, and activities whose athlete's baseline moved are
    classified a second time against the improved baseline before anything is written.
    """
    if config is None:
        from retroingest import config as cfgmod
        config = cfgmod.load()
    _sync_config_devices(con, config)
    acts = _activities(con, activity_ids, config)
    if acts.height == 0:
        return 0
    baselines = _load_baselines(con)
    refs_all: dict[int, ActivityRef] = {}
    seg_frames: list[pl.DataFrame] = []
    for batch in _batches(acts):
        records = _records(con, batch["activity_id"])
        res = _classify_parallel(records, batch, baselines)
        new_refs = {r.activity_id: r for r in res.refs}
        learned = _relearn(con, new_refs, refs_all, baselines)
        moved = [a for a, b in learned.items() if _moved(baselines.get(a, POPULATION), b)]
        baselines.update(learned)
        if moved:
            again = batch.filter(pl.col("athlete_id").is_in(moved))
            keep = batch.filter(~pl.col("athlete_id").is_in(moved))
            res2 = _classify_parallel(records.filter(pl.col("activity_id").is_in(again["activity_id"].implode())),
                                      again, baselines)
            segs = pl.concat([res.segments.filter(pl.col("activity_id").is_in(keep["activity_id"].implode())),
                              res2.segments])
            for r in res2.refs:
                new_refs[r.activity_id] = r
            baselines.update(_relearn(con, new_refs, refs_all, baselines))
        else:
            segs = res.segments
        refs_all.update(new_refs)
        seg_frames.append(segs)
    segments = pl.concat(seg_frames) if seg_frames else pl.DataFrame(schema=SEGMENT_SCHEMA)
    _write(con, acts["activity_id"].to_list(), segments, list(refs_all.values()), baselines,
           set(acts["athlete_id"].to_list()))
    return acts.height


def classify_without(con: duckdb.DuckDBPyConnection, activity_ids: Sequence[int], channels: Sequence[str], *,
                     config: dict[str, Any] | None = None) -> Result:
    """Classify stored activities as if their files lacked some channels (e.g. ``cadence_spm``),
    against the stored baselines, writing nothing.

    How the classifier degrades on real files when a sensor is missing: the accuracy harness
    scores the corpus's real forward runs with their cadence removed, because real runs without
    a cadence channel are too few to measure the no-cadence false-positive rate on.
    """
    unknown = set(channels) - set(RECORD_COLUMNS[4:])
    if unknown:
        raise ValueError(f"cannot drop {sorted(unknown)}: not a measured record channel")
    if config is None:
        from retroingest import config as cfgmod
        config = cfgmod.load()
    acts = _activities(con, activity_ids, config)
    records = _records(con, acts["activity_id"]).with_columns(
        [pl.lit(None, pl.Float64).alias(c) for c in channels])
    return classify(records, acts, _load_baselines(con))


def pending_activities(con: duckdb.DuckDBPyConnection, all_activities: bool = False) -> list[int]:
    """Primary foot-sport activities without current segments (all of them with ``all_activities``)."""
    sql = "SELECT a.activity_id FROM activities a WHERE a.duplicate_of IS NULL AND a.is_foot_sport"
    if not all_activities:
        sql += (" AND NOT EXISTS (SELECT 1 FROM segments s WHERE s.activity_id = a.activity_id"
                " AND s.classifier_version = ?)")
        return [r[0] for r in con.execute(sql + " ORDER BY a.start_time", [CLASSIFIER_VERSION]).fetchall()]
    return [r[0] for r in con.execute(sql + " ORDER BY a.start_time").fetchall()]


def _sync_config_devices(con: duckdb.DuckDBPyConnection, config: dict[str, Any]) -> None:
    rows = []
    for athlete_id, section in (config.get("athletes") or {}).items():
        for serial in (section or {}).get("device_serials", []) or []:
            rows.append((str(serial), str(athlete_id)))
    if rows:
        with transaction(con):
            con.executemany("INSERT OR REPLACE INTO device_athletes (device_serial, athlete_id) VALUES (?, ?)", rows)


def _activities(con: duckdb.DuckDBPyConnection, ids: Sequence[int] | None, config: dict[str, Any]) -> pl.DataFrame:
    per_device = (config.get("classify") or {}).get("unmapped_devices", "default") == "per_device"
    unmapped = ("CASE WHEN a.device_serial IS NULL THEN 'default' ELSE 'device:' || a.device_serial END"
                if per_device else "'default'")
    sql = f"""
        SELECT a.activity_id, a.sport, a.sub_sport, a.n_records,
               coalesce(d.athlete_id, {unmapped}) AS athlete_id
        FROM activities a LEFT JOIN device_athletes d ON d.device_serial = a.device_serial
        WHERE a.duplicate_of IS NULL AND a.is_foot_sport
    """
    if ids is not None:
        ids = [int(i) for i in ids]
        if not ids:
            return pl.DataFrame(schema={"activity_id": pl.Int64, "sport": pl.String, "sub_sport": pl.String,
                                        "n_records": pl.Int64, "athlete_id": pl.String})
        id_tbl = _id_table(ids)  # noqa: F841 (read by DuckDB by name)
        sql += " AND a.activity_id IN (SELECT activity_id FROM id_tbl)"
        return con.execute(sql + " ORDER BY a.start_time, a.activity_id").pl()
    return con.execute(sql + " ORDER BY a.start_time, a.activity_id").pl()


def _batches(acts: pl.DataFrame):
    """Consecutive groups of activities holding about BATCH_RECORDS records each (in start order)."""
    cum = acts["n_records"].fill_null(0).cum_sum()
    bid = (cum // BATCH_RECORDS).alias("_b")
    for _, part in acts.with_columns(bid).group_by("_b", maintain_order=True):
        yield part.drop("_b")


def _id_table(ids) -> Any:
    """An Arrow table of activity ids for DuckDB to join against (a Python list parameter costs
    a Python-object conversion per id)."""
    return pl.DataFrame({"activity_id": pl.Series(ids, dtype=pl.Int64)}).to_arrow()


def _records(con: duckdb.DuckDBPyConnection, ids: pl.Series) -> pl.DataFrame:
    cols = ", ".join(f"r.{c}" for c in RECORD_COLUMNS)
    id_tbl = _id_table(ids)  # noqa: F841 (read by DuckDB by name)
    return con.execute(
        f"SELECT {cols} FROM records r SEMI JOIN id_tbl USING (activity_id) ORDER BY r.activity_id, r.seq").pl()


def _classify_parallel(records: pl.DataFrame, acts: pl.DataFrame, baselines: dict[str, Baseline]) -> Result:
    """``classify`` on two halves of the activities in two threads (the compiled kernels and
    Polars release the GIL). Activities are independent given the baselines, so the result is
    the same as one call."""
    workers = min(WORKERS, os.cpu_count() or 1)
    if workers < 2 or records.height < 200_000 or acts.height < 2:
        return classify(records, acts, baselines)
    ids = records["activity_id"]
    cut_at = records.height // 2
    cut_id = ids[cut_at]
    parts = [(records.filter(pl.col("activity_id") < cut_id), acts.filter(pl.col("activity_id") < cut_id)),
             (records.filter(pl.col("activity_id") >= cut_id), acts.filter(pl.col("activity_id") >= cut_id))]
    parts = [p for p in parts if p[0].height]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda p: classify(p[0], p[1], baselines), parts))
    return Result(pl.concat([r.segments for r in results]), pl.concat([r.states for r in results]),
                  [x for r in results for x in r.refs], pl.concat([r.bouts for r in results]))


def _load_baselines(con: duckdb.DuckDBPyConnection) -> dict[str, Baseline]:
    rows = con.execute("SELECT athlete_id, baseline_json FROM athletes").fetchall()
    return {a: Baseline.from_json(j) for a, j in rows}


def _stored_refs(con: duckdb.DuckDBPyConnection, athletes: list[str]) -> list[ActivityRef]:
    if not athletes:
        return []
    ath_tbl = pl.DataFrame({"athlete_id": pl.Series(athletes, dtype=pl.String)}).to_arrow()  # noqa: F841
    df = con.execute(f"SELECT {', '.join(REF_COLUMNS)} FROM classifier_activity_refs "
                     "SEMI JOIN ath_tbl USING (athlete_id)").pl()
    return [ActivityRef(**row) for row in df.iter_rows(named=True)]


def _relearn(con: duckdb.DuckDBPyConnection, new: dict[int, ActivityRef], earlier: dict[int, ActivityRef],
             current: dict[str, Baseline]) -> dict[str, Baseline]:
    """Baselines of the athletes in ``new`` from stored refs, replaced by this run's refs."""
    athletes = sorted({r.athlete_id for r in new.values()})
    by_athlete: dict[str, dict[int, ActivityRef]] = {a: {} for a in athletes}
    for r in _stored_refs(con, athletes):   # one query for all of them
        by_athlete[r.athlete_id][r.activity_id] = r
    for src in (earlier, new):
        for k, r in src.items():
            if r.athlete_id in by_athlete:
                by_athlete[r.athlete_id][k] = r
    return {a: blmod.aggregate(refs.values()) for a, refs in by_athlete.items()}


def _moved(old: Baseline, new: Baseline) -> bool:
    if old.learned != new.learned:
        return new.learned
    d = abs(math.log(new.run_cadence_spm) - POPULATION.run_locus(math.log(new.run_speed_mps))
            - (math.log(old.run_cadence_spm) - POPULATION.run_locus(math.log(old.run_speed_mps))))
    return d > RELEARN_SHIFT or new.offset_sd < old.offset_sd * 0.7


def _write(con: duckdb.DuckDBPyConnection, ids: list[int], segments: pl.DataFrame, refs: list[ActivityRef],
           baselines: dict[str, Baseline], athletes: set[str]) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    seg_arrow = segments.select(list(SEGMENT_SCHEMA)).to_arrow()  # noqa: F841 (read by DuckDB by name)
    ref_df = pl.DataFrame(
        [{**{k: getattr(r, k) for k in REF_COLUMNS}, "classifier_version": CLASSIFIER_VERSION, "updated_at": now}
         for r in refs],
        schema={"activity_id": pl.Int64, "athlete_id": pl.String, "run_forward_s": pl.Float64,
                "run_speed_mps": pl.Float64, "run_cadence_spm": pl.Float64, "run_offset": pl.Float64,
                "walk_forward_s": pl.Float64, "walk_offset": pl.Float64, "hr_gain_bpm_per_mps": pl.Float64,
                "gct_ms": pl.Float64, "classifier_version": pl.String, "updated_at": pl.Datetime("us", "UTC")},
    )
    ref_arrow = ref_df.to_arrow()  # noqa: F841
    ath_arrow = pl.DataFrame(  # noqa: F841
        [(a, baselines.get(a, POPULATION).to_json() if baselines.get(a, POPULATION).learned else None,
          int(baselines.get(a, POPULATION).n_forward_s), now) for a in sorted(athletes)],
        schema={"athlete_id": pl.String, "baseline_json": pl.String, "baseline_n_records": pl.Int64,
                "updated_at": pl.Datetime("us", "UTC")}, orient="row").to_arrow()
    id_tbl = _id_table(ids)  # noqa: F841
    cols = ", ".join(SEGMENT_SCHEMA)
    with transaction(con):
        con.execute("DELETE FROM segments WHERE activity_id IN (SELECT activity_id FROM id_tbl)")
        con.execute(f"INSERT INTO segments ({cols}) SELECT {cols} FROM seg_arrow")
        con.execute("DELETE FROM classifier_activity_refs WHERE activity_id IN (SELECT activity_id FROM id_tbl)")
        con.execute("INSERT INTO classifier_activity_refs SELECT * FROM ref_arrow")
        con.execute(
            "INSERT INTO athletes (athlete_id, baseline_json, baseline_n_records, updated_at) "
            "SELECT athlete_id, baseline_json, baseline_n_records, updated_at FROM ath_arrow "
            "ON CONFLICT (athlete_id) DO UPDATE SET baseline_json = excluded.baseline_json, "
            "baseline_n_records = excluded.baseline_n_records, updated_at = excluded.updated_at")
