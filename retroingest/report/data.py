"""What the report shows, read from the dashboard views (docs/VIEWS.md) and v_records."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import duckdb
import polars as pl

MAX_TIMELINE_POINTS = 900
MAX_ROUTE_POINTS = 1500
DETAIL_LIMIT = 20          # activities drawn in full when no --activity is given


@dataclass
class ActivityDetail:
    """One activity drawn in full: summary, channels over time, route, segments."""

    summary: dict[str, Any]
    t_s: list[float] = field(default_factory=list)
    speed_mps: list[float | None] = field(default_factory=list)
    cadence_spm: list[float | None] = field(default_factory=list)
    heart_rate_bpm: list[float | None] = field(default_factory=list)
    shaded: list[tuple[float, float, str, str]] = field(default_factory=list)
    lat: list[float] = field(default_factory=list)
    lon: list[float] = field(default_factory=list)
    route_classes: list[str] = field(default_factory=list)
    segments: list[dict[str, Any]] = field(default_factory=list)
    claims: dict[str, Any] | None = None


@dataclass
class ReportData:
    generated_at: dt.datetime
    totals: dict[str, Any]
    weekly: list[dict[str, Any]]
    claims_totals: list[dict[str, Any]]
    by_context: list[dict[str, Any]]
    road_bouts: list[dict[str, Any]]
    activities: list[dict[str, Any]]
    details: list[ActivityDetail]
    profiles: list[dict[str, Any]] = field(default_factory=list)
    focus: int | None = None   # one activity only (--activity): the overview sections are left out


def _dicts(con: duckdb.DuckDBPyConnection, sql: str, args: list | None = None) -> list[dict[str, Any]]:
    cur = con.execute(sql, args or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def _downsample(df: pl.DataFrame, n_max: int) -> pl.DataFrame:
    """Mean per bucket of consecutive rows, so at most n_max rows remain (keeps 'cls' of the first)."""
    if df.height <= n_max:
        return df
    bucket = (pl.int_range(pl.len()) * n_max // pl.len()).alias("_b")
    num = [c for c, t in df.schema.items() if t.is_numeric()]
    return (df.with_columns(bucket).group_by("_b", maintain_order=True)
            .agg([pl.col(c).mean() for c in num] + [pl.col(c).first() for c in df.columns if c not in num])
            .drop("_b").select(df.columns))


def activity_detail(con: duckdb.DuckDBPyConnection, activity_id: int) -> ActivityDetail | None:
    """Everything the per-activity panel needs; None when the activity is not a primary one."""
    summ = _dicts(con, "SELECT * FROM v_activity_backward WHERE activity_id = ?", [activity_id])
    if not summ:
        return None
    det = ActivityDetail(summary=summ[0])
    det.segments = _dicts(con, "SELECT * FROM v_segments WHERE activity_id = ? ORDER BY start_time", [activity_id])
    claims = _dicts(con, "SELECT * FROM v_claims_vs_evidence WHERE activity_id = ?", [activity_id])
    det.claims = claims[0] if claims else None
    rec = con.execute(
        "SELECT ts, elapsed_s, lat_deg, lon_deg, speed_mps, cadence_spm, heart_rate_bpm "
        "FROM v_records_public WHERE activity_id = ? ORDER BY seq", [activity_id]).pl()  # privacy zones hidden
    if rec.height == 0:
        return det
    bw = pl.DataFrame(
        [{"start_time": s["start_time"], "end_time": s["end_time"], "gait": s["gait"]}
         for s in det.segments if s["direction"] == "backward"],
        schema={"start_time": pl.Datetime("us", "UTC"), "end_time": pl.Datetime("us", "UTC"), "gait": pl.String},
    ).sort("start_time")
    rec = (
        rec.with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))
        .join_asof(bw, left_on="ts", right_on="start_time", strategy="backward")
        .with_columns(
            pl.when(pl.col("end_time").is_not_null() & (pl.col("ts") < pl.col("end_time")))
            .then(pl.concat_str(pl.lit("bw-"), pl.col("gait"))).otherwise(pl.lit("fw")).alias("cls"))
    )
    line = _downsample(rec.select("elapsed_s", "speed_mps", "cadence_spm", "heart_rate_bpm"), MAX_TIMELINE_POINTS)
    det.t_s = line["elapsed_s"].to_list()
    det.speed_mps = line["speed_mps"].to_list()
    det.cadence_spm = line["cadence_spm"].to_list()
    det.heart_rate_bpm = line["heart_rate_bpm"].to_list()
    t0 = rec["ts"][0]
    for s in det.segments:
        if s["direction"] != "backward":
            continue
        a = (s["start_time"] - t0).total_seconds()
        b = (s["end_time"] - t0).total_seconds()
        tip = (f"backward {s['gait']} {b - a:.0f} s, {s['context']}, "
               f"confidence {s['confidence']:.2f}")
        det.shaded.append((a, b, f"shade-{s['gait']}", tip))
    pos = rec.filter(pl.col("lat_deg").is_not_null() & pl.col("lon_deg").is_not_null())
    if pos.height:
        # keep every backward point's class: thin forward and backward points alike, by stride
        stride = max(1, -(-pos.height // MAX_ROUTE_POINTS))
        pos = pos.gather_every(stride)
        det.lat, det.lon = pos["lat_deg"].to_list(), pos["lon_deg"].to_list()
        det.route_classes = pos["cls"].to_list()
    return det


def gather(con: duckdb.DuckDBPyConnection, activity_id: int | None = None,
           limit: int = DETAIL_LIMIT) -> ReportData:
    """Read the views into a ReportData; `activity_id` narrows the detail panels to one activity."""
    totals = _dicts(con, """
        SELECT count(*) AS n_activities,
               count(*) FILTER (WHERE n_backward_segments > 0) AS n_with_backward,
               count(*) FILTER (WHERE is_classified) AS n_classified,
               coalesce(sum(moving_time_s), 0) AS moving_time_s,
               coalesce(sum(backward_time_s), 0) AS backward_time_s,
               coalesce(sum(backward_distance_m), 0) AS backward_distance_m,
               min(local_date) AS first_date, max(local_date) AS last_date
        FROM v_activity_backward""")[0]
    weekly = _dicts(con, """
        SELECT week_start, sum(backward_time_s) AS backward_time_s,
               sum(backward_distance_m) AS backward_distance_m, sum(moving_time_s) AS moving_time_s,
               sum(backward_time_4wk_avg_s) AS backward_time_4wk_avg_s
        FROM v_backward_weekly GROUP BY week_start ORDER BY week_start""")
    claims_totals = _dicts(con, "SELECT * FROM v_claims_vs_evidence_totals ORDER BY athlete_id, gait, metric_order")
    by_context = _dicts(con, """
        SELECT context, sum(backward_time_s) AS backward_time_s, sum(backward_distance_m) AS backward_distance_m,
               sum(n_segments) AS n_segments, max(longest_bout_s) AS longest_bout_s
        FROM v_backward_by_context GROUP BY context ORDER BY backward_time_s DESC""")
    road_bouts = _dicts(con, "SELECT * FROM v_safety_road_bouts")
    profiles = _dicts(con, """
        SELECT p.profile, p.source, p.description, p.run_distance_ratio, p.walk_distance_ratio, p.energy_model,
               count(e.activity_id) AS n_activities, sum(e.backward_distance_m) AS backward_distance_m,
               sum(e.fwd_distance_m) AS fwd_distance_m, sum(e.fwd_steps) AS fwd_steps,
               sum(e.energy_kcal) AS energy_kcal
        FROM equivalence_profiles p
        LEFT JOIN v_equivalence e ON e.profile = p.profile AND e.params_hash = p.params_hash AND e.level = 'activity'
        WHERE p.active GROUP BY ALL ORDER BY p.source, p.profile""")
    activities = _dicts(con, """
        SELECT * FROM v_activity_backward WHERE n_backward_segments > 0
        ORDER BY start_time DESC""")
    if activity_id is not None:
        ids = [activity_id]
    else:
        ids = [a["activity_id"] for a in activities[:limit]]
        if not ids:  # forward-only warehouse: still show the latest activities
            ids = [r[0] for r in con.execute(
                "SELECT activity_id FROM v_activity_backward ORDER BY start_time DESC LIMIT 3").fetchall()]
    details = [d for d in (activity_detail(con, i) for i in ids) if d is not None]
    return ReportData(dt.datetime.now(dt.timezone.utc), totals, weekly, claims_totals, by_context,
                      road_bouts, activities, details, profiles=profiles, focus=activity_id)
