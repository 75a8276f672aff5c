"""The markdown summary of one import, built from the published snapshot (never the live file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retroingest import warehouse

MAX_ROWS = 50


def _backward(con, ids: list[int]) -> list[tuple]:
    has_segments = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'segments'").fetchone()[0]
    if not ids or not has_segments:
        return []
    return con.execute(
        "SELECT s.activity_id, s.start_time, s.duration_s, s.distance_m, s.gait, s.confidence, f.path "
        "FROM segments s JOIN activities a USING (activity_id) JOIN source_files f ON f.file_id = a.file_id "
        "WHERE s.direction = 'backward' AND s.activity_id IN (SELECT unnest(?::BIGINT[])) "
        "ORDER BY s.start_time", [ids]).fetchall()


def _activities(con, ids: list[int]) -> list[tuple]:
    if not ids:
        return []
    return con.execute(
        "SELECT a.start_time, a.sport, a.sub_sport, a.distance_m, a.duration_s, f.path "
        "FROM activities a JOIN source_files f ON f.file_id = a.file_id "
        "WHERE a.activity_id IN (SELECT unnest(?::BIGINT[])) ORDER BY a.start_time", [ids]).fetchall()


def details(snapshot: str | Path, new_activity_ids: list[int]) -> dict[str, list[tuple]]:
    """New activities and their backward segments, read from the snapshot."""
    con = warehouse.connect(snapshot, read_only=True, wait_s=30, snapshot_fallback=False)
    try:
        return {"activities": _activities(con, new_activity_ids), "backward": _backward(con, new_activity_ids)}
    finally:
        con.close()


def _km(m: Any) -> str:
    return "" if m is None else f"{m / 1000:.2f}"


def markdown(title: str, summary: dict[str, Any], rows: dict[str, list[tuple]]) -> str:
    """One page: counts, new activities, new backward segments, quarantined and deferred files."""
    c = summary["counts"]
    back = rows["backward"]
    lines = [f"# {title}", "",
             "| | |", "|---|---|",
             f"| files seen | {summary['n_files']} |",
             f"| decoded this run | {summary['decoded']} |",
             f"| unchanged (not decoded) | {c.get('unchanged', 0)} |",
             f"| ingested / salvaged / duplicate / skipped | {c.get('ingested', 0)} / {c.get('salvaged', 0)} / "
             f"{c.get('duplicate', 0)} / {c.get('skipped', 0)} |",
             f"| new activities | {len(summary['new_activity_ids'])} |",
             f"| new backward segments | {len(back)} ({sum(r[3] or 0 for r in back) / 1000:.2f} km, "
             f"{sum(r[2] or 0 for r in back) / 60:.1f} min) |",
             f"| quarantined | {len(summary['quarantined'])} |",
             f"| deferred to the next run | {len(summary['deferred'])} |",
             f"| post-load steps | {', '.join(f'{k}: {v}' for k, v in summary['post_steps'].items()) or 'none'} |",
             f"| decode / load time | {summary['timings_s']['decode']:.1f} s / {summary['timings_s']['load']:.1f} s |",
             ""]
    for w in summary.get("watches", []):
        lines.append(f"- watch `{w['volume']}`: {w['copied']} new file(s) copied to the archive, {w['already']} already there")
    if rows["activities"]:
        lines += ["", "## New activities", "", "| start (UTC) | sport | km | min | file |", "|---|---|---|---|---|"]
        for start, sport, sub, dist, dur, path in rows["activities"][:MAX_ROWS]:
            lines.append(f"| {start:%Y-%m-%d %H:%M} | {sport}/{sub} | {_km(dist)} | {(dur or 0) / 60:.0f} | `{path}` |")
    if back:
        lines += ["", "## New backward segments", "", "| start (UTC) | gait | m | s | confidence | file |",
                  "|---|---|---|---|---|---|"]
        for _aid, start, dur, dist, gait, conf, path in back[:MAX_ROWS]:
            lines.append(f"| {start:%Y-%m-%d %H:%M:%S} | {gait} | {dist or 0:.0f} | {dur:.0f} | {conf:.2f} | `{path}` |")
    if summary["quarantined"]:
        lines += ["", "## Quarantined files", ""]
        lines += [f"- `{label}`: {reason}" for label, reason in summary["quarantined"][:MAX_ROWS]]
    if summary["deferred"]:
        lines += ["", "## Deferred (transient errors, tried again next run)", ""]
        lines += [f"- `{where}`: {reason}" for where, reason in summary["deferred"][:MAX_ROWS]]
    return "\n".join(lines) + "\n"
