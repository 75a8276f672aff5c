"""GPX 1.0 / 1.1 → canonical activity.

Tracks (all segments, all tracks) make one activity; routes are used only when a file has no
timed track points. Extensions are matched by local name, so Garmin's TrackPointExtension v1/v2,
Cluetrust and similar vendor schemas all work: hr/heartrate, cad/cadence, atemp/temp, power/watts,
speed. Cadence units are decided per file from the values and speed (see
:func:`retroingest.decode.common.decide_cadence_unit`) and the decision is stored.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import polars as pl

from retroingest import canonical
from retroingest.canonical import DecodedActivity, DecodedFile
from retroingest.decode.common import (
    decide_cadence_unit, local, parse_time, parse_xml, points_frame, sport_from_text, to_float,
)
from retroingest.errors import DecodeError, NotActivityError

DECODER = "retroingest-gpx 1"
FIX_VALUES = {"none", "2d", "3d", "dgps", "pps"}
_EXT_FIELDS = {
    "hr": "hr", "heartrate": "hr", "heart_rate": "hr",
    "cad": "cad", "cadence": "cad", "runcadence": "cad",
    "atemp": "temp", "temp": "temp", "temperature": "temp",
    "power": "power", "watts": "power", "pwr": "power",
    "speed": "speed",
}


def _point(el, problems: Counter) -> dict[str, Any]:
    lat, lon = to_float(el.get("lat")), to_float(el.get("lon"))
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        problems["points with missing or invalid lat/lon"] += 1
        lat = lon = None
    p: dict[str, Any] = {"lat": lat, "lon": lon}
    for child in el:
        name = local(child.tag)
        if name == "time":
            p["time"] = child.text
        elif name == "ele":
            p["ele"] = to_float(child.text)
        elif name == "speed":  # GPX 1.0 element
            p["speed"] = to_float(child.text)
        elif name == "fix":
            if (child.text or "").strip() not in FIX_VALUES:
                problems[f"<fix> values outside the GPX schema ({(child.text or '').strip()[:20]!r})"] += 1
        elif name == "extensions":
            for ext in child.iter():
                key = _EXT_FIELDS.get(local(ext.tag).lower())
                if key and ext.text and key not in p:
                    p[key] = to_float(ext.text)
    return p


def _name_sport(root) -> tuple[str | None, str | None]:
    """Sport from <trk><type>, else from a track/metadata name word (run, walk, ride ...)."""
    names = []
    for el in root.iter():
        tag = local(el.tag)
        if tag == "type" and el.text:
            s = sport_from_text(el.text)
            if s:
                return s, f"GPX <type> {el.text.strip()!r}"
        elif tag == "name" and el.text:
            names.append(el.text.lower())
    for text in names:
        for word, sport in (("run", "running"), ("walk", "walking"), ("hike", "hiking"),
                            ("ride", "cycling"), ("cycling", "cycling"), ("bike", "cycling")):
            if word in text:
                return sport, f"GPX name {text[:40]!r}"
    return None, None


def decode_gpx(data: bytes, path: str | None = None) -> DecodedFile:
    """Decode GPX bytes into one activity (tracks, else timed routes)."""
    root = parse_xml(data, path)
    if local(root.tag) != "gpx":
        raise DecodeError(path, f"not a GPX file: root element is <{local(root.tag)}>", reason_code="unknown_format")
    problems: Counter = Counter()
    points: list[dict[str, Any]] = []
    for kind, seg_tag, pt_tag in (("trk", "trkseg", "trkpt"), ("rte", None, "rtept")):
        for container in (e for e in root if local(e.tag) == kind):
            for el in container.iter():
                if local(el.tag) == pt_tag:
                    points.append(_point(el, problems))
        if any(p.get("time") for p in points):
            break
        points = []
    timed = [p for p in points if p.get("time")]
    if not timed:
        raise NotActivityError(path, "GPX has no timed track or route points (a route, course or waypoint file)",
                               reason_code="no_timed_points")
    times, offsets = zip(*(parse_time(p["time"]) for p in timed))
    bad_times = sum(t is None for t in times)
    if bad_times:
        problems["points with unparseable <time>"] += bad_times
    df = points_frame(timed, list(times), {
        "lat_deg": "lat", "lon_deg": "lon", "altitude_m": "ele", "speed_mps": "speed",
        "heart_rate_bpm": "hr", "cad_raw": "cad", "power_w": "power", "temperature_c": "temp"})
    if df.filter(pl.col("ts").is_not_null()).height == 0:
        raise DecodeError(path, "no <time> value could be parsed", reason_code="bad_values")
    known_offsets = [o for o in offsets if o is not None]
    sport, sport_reason = _name_sport(root)
    creator = root.get("creator")
    return build_activity_file(df, path, fmt="gpx", decoder=DECODER, sport=sport, sub_sport=None,
                               creator=creator, utc_offset_s=known_offsets[0] if known_offsets else None,
                               naive_times=any(o is None for o in offsets) and not known_offsets,
                               problems=problems)


def build_activity_file(df: pl.DataFrame, path: str | None, *, fmt: str, decoder: str, sport: str | None,
                        sub_sport: str | None, creator: str | None, utc_offset_s: int | None,
                        naive_times: bool, problems: Counter, laps: pl.DataFrame | None = None,
                        device: dict[str, Any] | None = None, session_index: int = 0,
                        cadence_hint: str | None = None) -> DecodedFile:
    """Shared tail of the XML decoders: cadence units, conform, derive distance/speed, summarise."""
    activity = build_activity(df, path, fmt=fmt, sport=sport, sub_sport=sub_sport, creator=creator,
                              utc_offset_s=utc_offset_s, naive_times=naive_times, laps=laps, device=device,
                              session_index=session_index, cadence_hint=cadence_hint)
    reason = problem_text(problems)
    return DecodedFile(format=fmt, decoder=decoder, activities=[activity],
                       salvage_reason=reason, salvage_code="bad_values" if reason else None)


def problem_text(problems: Counter) -> str | None:
    """One sentence listing what was wrong in a file that could still be read."""
    if not problems:
        return None
    return "read with problems: " + "; ".join(f"{n} {what}" for what, n in problems.most_common())


def build_activity(df: pl.DataFrame, path: str | None, *, fmt: str, sport: str | None, sub_sport: str | None,
                   creator: str | None, utc_offset_s: int | None, naive_times: bool,
                   laps: pl.DataFrame | None = None, device: dict[str, Any] | None = None,
                   session_index: int = 0, cadence_hint: str | None = None) -> DecodedActivity:
    """Turn a frame of raw XML point values (``cad_raw`` not yet in a unit) into a canonical activity."""
    sport = sport or "generic"
    foot = canonical.is_foot_sport(sport)
    base = canonical.conform(df.drop("cad_raw"), path)
    base = canonical.fill_distance_speed(base)
    # cad_raw follows the same sort as conform (by ts, stable)
    raw = df.filter(pl.col("ts").is_not_null()).sort("ts", maintain_order=True)["cad_raw"].to_numpy()
    if cadence_hint == "strides_per_min":
        decision = {"multiplier": 2.0, "unit": "strides_per_min",
                    "reason": "TCX RunCadence extension is per leg (strides/min)"}
        if np.all(np.isnan(raw.astype(float))):
            decision = {"multiplier": None, "unit": None, "reason": None}
    else:
        decision = decide_cadence_unit(raw, base["speed_mps"].to_numpy(), sport if foot or sport == "cycling" else None)
    if decision["multiplier"] is not None:
        if foot:
            base = base.with_columns(pl.Series("cadence_spm", raw * decision["multiplier"]))
        else:
            base = base.with_columns(pl.Series("cadence_rpm", raw))
            decision = {"multiplier": 1.0, "unit": "rpm",
                        "reason": f"sport {sport}: cadence stored as recorded in cadence_rpm"}
    base = canonical.conform(base.drop("seq", "elapsed_s"), path)
    if base.height == 0:
        raise DecodeError(path, "no points with a valid time", reason_code="bad_values")
    summary = canonical.summarise(base, foot)
    laps = laps if laps is not None else pl.DataFrame(schema=canonical.LAP_SCHEMA)
    if laps.height:
        from retroingest.decode.fit import _assign_laps  # one implementation of lap assignment
        base = _assign_laps(base, laps)
    meta = {
        "format": fmt,
        "session_index": session_index,
        "sport": sport,
        "sub_sport": sub_sport or "generic",
        "is_foot_sport": foot,
        "utc_offset_s": utc_offset_s,
        "tz_source": ("gpx_offset" if utc_offset_s is not None else ("assumed_utc" if naive_times else None)),
        "body_mass_kg": None,
        "device_manufacturer": None,
        "device_product": None,
        "device_serial": None,
        "time_created": None,
        "creator": creator,
        "cadence_source_unit": decision["unit"],
        "cadence_unit_reason": decision["reason"],
        **summary,
        "device_elapsed_time_s": None, "device_timer_time_s": None, "device_distance_m": None,
        "device_avg_speed_mps": None, "device_max_speed_mps": None, "device_avg_heart_rate_bpm": None,
        "device_max_heart_rate_bpm": None, "device_avg_cadence_spm": None, "device_avg_cadence_rpm": None,
        "device_total_ascent_m": None, "device_total_descent_m": None, "device_calories_kcal": None,
        "device_num_laps": laps.height or None,
        **(device or {}),
    }
    return DecodedActivity(meta=meta, records=base, laps=laps)
