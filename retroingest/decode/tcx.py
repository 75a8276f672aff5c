"""TCX (Garmin Training Center) → canonical activities, one per <Activity>.

Trackpoints give time, position, altitude, distance, HR and cadence; the ActivityExtension v2
``TPX`` adds Speed, RunCadence (per leg, so strides/min) and Watts. Laps carry the device's
summary (TotalTimeSeconds, DistanceMeters, Calories, average/max HR), kept beside recomputed
values. Courses hold no activity and are skipped.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import polars as pl

from retroingest import canonical
from retroingest.canonical import DecodedFile
from retroingest.decode.common import local, parse_time, parse_xml, points_frame, sport_from_text, to_float
from retroingest.decode.gpx import build_activity, problem_text
from retroingest.errors import DecodeError, NotActivityError

DECODER = "retroingest-tcx 1"


def _child(el, name: str):
    for c in el:
        if local(c.tag) == name:
            return c
    return None


def _text(el, *names: str) -> str | None:
    """Text of a nested child path by local names, e.g. _text(tp, 'HeartRateBpm', 'Value')."""
    for n in names:
        if el is None:
            return None
        el = _child(el, n)
    return None if el is None else el.text


def _trackpoint(tp, problems: Counter) -> dict[str, Any]:
    p: dict[str, Any] = {"time": _text(tp, "Time")}
    pos = _child(tp, "Position")
    if pos is not None:
        lat, lon = to_float(_text(pos, "LatitudeDegrees")), to_float(_text(pos, "LongitudeDegrees"))
        if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
            problems["trackpoints with non-numeric or out-of-range position"] += 1
        else:
            p["lat"], p["lon"] = lat, lon
    for key, path in (("ele", ("AltitudeMeters",)), ("dist", ("DistanceMeters",)),
                      ("hr", ("HeartRateBpm", "Value")), ("cad", ("Cadence",))):
        raw = _text(tp, *path)
        v = to_float(raw)
        if raw is not None and raw.strip() and v is None:
            problems[f"non-numeric {path[0]} values"] += 1
        p[key] = v
    ext = _child(tp, "Extensions")
    if ext is not None:
        for e in ext.iter():
            name = local(e.tag)
            if name == "Speed":
                p["speed"] = to_float(e.text)
            elif name == "RunCadence":
                p["runcad"] = to_float(e.text)
            elif name == "Watts":
                p["power"] = to_float(e.text)
    return p


def _lap_row(lap, foot: bool) -> dict[str, Any]:
    start, _ = parse_time(lap.get("StartTime"))
    total = to_float(_text(lap, "TotalTimeSeconds"))
    avg_speed = max_run_cad = avg_run_cad = None
    ext = _child(lap, "Extensions")
    if ext is not None:
        for e in ext.iter():
            if local(e.tag) == "AvgSpeed":
                avg_speed = to_float(e.text)
            elif local(e.tag) == "AvgRunCadence":
                avg_run_cad = to_float(e.text)
            elif local(e.tag) == "MaxRunCadence":
                max_run_cad = to_float(e.text)
    cad = to_float(_text(lap, "Cadence"))
    del max_run_cad
    return {
        "start_time": start,
        "end_time": None,
        "elapsed_time_s": total,
        "timer_time_s": total,
        "distance_m": to_float(_text(lap, "DistanceMeters")),
        "avg_speed_mps": avg_speed,
        "max_speed_mps": to_float(_text(lap, "MaximumSpeed")),
        "avg_heart_rate_bpm": to_float(_text(lap, "AverageHeartRateBpm", "Value")),
        "max_heart_rate_bpm": to_float(_text(lap, "MaximumHeartRateBpm", "Value")),
        "avg_cadence_spm": (2 * avg_run_cad) if (foot and avg_run_cad is not None) else None,
        "avg_cadence_rpm": cad if not foot else None,
        "total_ascent_m": None,
        "total_descent_m": None,
        "calories_kcal": to_float(_text(lap, "Calories")),
        "trigger": (_text(lap, "TriggerMethod") or None),
        "intensity": (_text(lap, "Intensity") or None),
    }


def decode_tcx(data: bytes, path: str | None = None) -> DecodedFile:
    """Decode TCX bytes; each <Activity> becomes one activity (session_index = its position)."""
    root = parse_xml(data, path)
    if local(root.tag) != "TrainingCenterDatabase":
        raise DecodeError(path, f"not a TCX file: root element is <{local(root.tag)}>", reason_code="unknown_format")
    acts_el = _child(root, "Activities")
    activities_xml = [a for a in (acts_el if acts_el is not None else []) if local(a.tag) == "Activity"]
    if not activities_xml:
        kind = "courses" if _child(root, "Courses") is not None else "no activities"
        raise NotActivityError(path, f"TCX holds {kind}, not an activity", reason_code="not_activity")
    problems: Counter = Counter()
    out = []
    creator = None
    for idx, act in enumerate(activities_xml):
        sport_attr = act.get("Sport")
        sport = sport_from_text(sport_attr) or "generic"
        foot = canonical.is_foot_sport(sport)
        creator = _text(act, "Creator", "Name") or creator
        points: list[dict[str, Any]] = []
        laps = []
        for lap in (c for c in act if local(c.tag) == "Lap"):
            laps.append(_lap_row(lap, foot))
            for tp in lap.iter():
                if local(tp.tag) == "Trackpoint":
                    points.append(_trackpoint(tp, problems))
        timed = [p for p in points if p.get("time")]
        if not timed:
            continue
        parsed = [parse_time(p["time"]) for p in timed]
        # RunCadence (per leg) wins over the generic Cadence element when a file has it
        has_runcad = any(p.get("runcad") is not None for p in timed)
        df = points_frame(timed, [t for t, _ in parsed], {
            "lat_deg": "lat", "lon_deg": "lon", "altitude_m": "ele", "distance_m": "dist", "speed_mps": "speed",
            "heart_rate_bpm": "hr", "cad_raw": "runcad" if has_runcad else "cad", "power_w": "power"})
        lap_df = pl.DataFrame(
            sorted((r for r in laps if r["start_time"]), key=lambda r: r["start_time"]),
            schema={k: v for k, v in canonical.LAP_SCHEMA.items() if k != "lap_index"},
        ).with_row_index("lap_index").with_columns(pl.col("lap_index").cast(pl.Int32)).select(list(canonical.LAP_SCHEMA))
        offsets = [o for _, o in parsed if o is not None]
        device = _device_summary(lap_df, foot)
        out.append(build_activity(
            df, path, fmt="tcx", sport=sport, sub_sport=None, creator=creator,
            utc_offset_s=offsets[0] if offsets else None,
            naive_times=not offsets and any(o is None for _, o in parsed),
            laps=lap_df, device=device, session_index=idx,
            cadence_hint="strides_per_min" if has_runcad and foot else None,
        ))
    if not out:
        raise NotActivityError(path, "TCX activities have no timed trackpoints", reason_code="no_timed_points")
    reason = problem_text(problems)
    return DecodedFile(format="tcx", decoder=DECODER, activities=out,
                       salvage_reason=reason, salvage_code="bad_values" if reason else None)


def _device_summary(laps: pl.DataFrame, foot: bool) -> dict[str, Any]:
    """The device's own totals: TCX has no session, so laps are summed (HR weighted by time)."""
    if laps.height == 0:
        return {}
    t = laps["elapsed_time_s"].fill_null(0)
    hr = laps["avg_heart_rate_bpm"]
    w = (hr.fill_null(0) * t).sum()
    wt = t.filter(hr.is_not_null()).sum()
    return {
        "device_elapsed_time_s": laps["elapsed_time_s"].sum(),
        "device_timer_time_s": laps["timer_time_s"].sum(),
        "device_distance_m": laps["distance_m"].sum() if laps["distance_m"].null_count() < laps.height else None,
        "device_max_speed_mps": laps["max_speed_mps"].max(),
        "device_avg_heart_rate_bpm": (w / wt) if wt else None,
        "device_max_heart_rate_bpm": laps["max_heart_rate_bpm"].max(),
        "device_calories_kcal": laps["calories_kcal"].sum() if laps["calories_kcal"].null_count() < laps.height else None,
        "device_num_laps": laps.height,
    }
