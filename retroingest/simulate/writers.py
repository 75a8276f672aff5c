"""Writers for simulated sessions: FIT through Garmin's own encoder, GPX 1.1 with TrackPointExtension.

The only per-record Python loop is the FIT encoder call itself (the SDK takes one message at a
time). GPX text is built column-wise with Polars expressions.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
from garmin_fit_sdk import Encoder
from garmin_fit_sdk.profile import Profile

from retroingest.simulate.athletes import Athlete
from retroingest.simulate.scenarios import Session
from retroingest.simulate.signals import DeviceConfig, Rendered

FIT_EPOCH_S = 631_065_600          # 1989-12-31T00:00:00Z in Unix seconds
DEG_TO_SEMICIRCLE = 2**31 / 180.0
MESG = Profile["mesg_num"]


def _fit_ts(t: dt.datetime) -> int:
    return int(t.timestamp()) - FIT_EPOCH_S


def _series(name: str, x: np.ndarray, dtype=pl.Float64) -> pl.Series:
    return pl.Series(name, x, dtype=pl.Float64, nan_to_null=True).cast(dtype)


def _cadence_fields(spm: np.ndarray, fractional: bool) -> tuple[np.ndarray, np.ndarray]:
    """Steps/min → FIT strides/min as integer ``cadence`` plus ``fractional_cadence`` (1/128 steps)."""
    strides = spm / 2.0
    if fractional:
        q = np.round(strides * 128) / 128
        whole = np.floor(q)
        return whole, q - whole
    return np.round(strides), np.full(spm.shape, np.nan)


def record_frame(r: Rendered, a: Athlete, cfg: DeviceConfig, t0: dt.datetime) -> pl.DataFrame:
    """The FIT record messages of one file, physical values named as in the FIT profile."""
    idx = np.flatnonzero(r.keep)
    cad, frac = _cadence_fields(r.cadence_spm[idx], a.has_fractional_cadence)
    hr = np.clip(np.round(r.hr[idx]), 30, 230)
    return pl.DataFrame([
        pl.Series("timestamp", _fit_ts(t0) + idx, dtype=pl.Int64),
        _series("position_lat", np.round(r.lat[idx] * DEG_TO_SEMICIRCLE), pl.Int64),
        _series("position_long", np.round(r.lon[idx] * DEG_TO_SEMICIRCLE), pl.Int64),
        _series("distance", np.round(r.dist[idx], 2)),
        _series("enhanced_speed", np.round(r.speed[idx], 3)),
        _series("enhanced_altitude", np.round(r.alt[idx], 1)),
        _series("heart_rate", hr, pl.Int64),
        _series("cadence", cad, pl.Int64),
        _series("fractional_cadence", frac),
        _series("vertical_oscillation", np.round(r.vo_mm[idx], 1)),
        _series("stance_time", np.round(r.gct_ms[idx], 1)),
        _series("vertical_ratio", np.round(r.vr_pct[idx], 2)),
        _series("step_length", np.round(r.step_mm[idx], 1)),
    ])


def _summary(r: Rendered, lo: int, hi: int, a: Athlete, keep_only: bool = True) -> dict:
    """Lap/session summary over seconds [lo, hi): device-style averages from the records."""
    sl = slice(lo, hi)
    k = r.keep[sl]
    dist = float(r.dist[hi - 1] - r.dist[lo]) if hi - 1 > lo else 0.0
    elapsed = float(min(hi, r.n - 1) - lo)     # the last lap ends at the last record
    hr = r.hr[sl][k]
    hr = hr[np.isfinite(hr)]
    spd = r.speed[sl][k]
    cad = r.cadence_spm[sl][k]
    cad = cad[np.isfinite(cad) & (cad > 20)]
    out = {
        "total_elapsed_time": elapsed,
        "total_timer_time": elapsed,
        "total_distance": round(dist, 2),
        "enhanced_avg_speed": round(dist / elapsed, 3) if elapsed > 0 else None,
        "enhanced_max_speed": round(float(spd.max()), 3) if spd.size else None,
        "avg_heart_rate": int(round(hr.mean())) if hr.size else None,
        "max_heart_rate": int(round(hr.max())) if hr.size else None,
    }
    if cad.size:
        strides = cad.mean() / 2
        out["avg_cadence"] = int(np.floor(strides))
        out["avg_fractional_cadence"] = round(float(strides - np.floor(strides)), 3)
    alt = r.alt[sl][k]
    if alt.size > 30:   # devices smooth altitude before summing climbs; raw noise would add up
        alt = np.convolve(np.concatenate([np.full(15, alt[0]), alt, np.full(14, alt[-1])]), np.ones(30) / 30, "valid")
    d = np.diff(alt)
    out["total_ascent"] = int(round(d[d > 0].sum())) if d.size else 0
    out["total_descent"] = int(round(-d[d < 0].sum())) if d.size else 0
    # ≈ 1 kcal per kg per km running (ACSM net), half of that walking; good enough for a summary
    out["total_calories"] = int(round(a.body_mass_kg * dist / 1000 * 0.9))
    return {k_: v for k_, v in out.items() if v is not None}


def write_fit(path: Path, r: Rendered, session: Session, a: Athlete, cfg: DeviceConfig,
              t0: dt.datetime) -> int:
    """Encode one session as a FIT activity file; returns the number of record messages."""
    enc = Encoder()
    t_end = t0 + dt.timedelta(seconds=r.n - 1)
    enc.on_mesg(MESG["FILE_ID"], {"type": "activity", "manufacturer": "garmin", "product": a.product_id,
                                  "serial_number": a.device_serial, "time_created": _fit_ts(t0)})
    enc.on_mesg(MESG["DEVICE_SETTINGS"], {"time_offset": [a.utc_offset_s & 0xFFFFFFFF]})
    profile = {"height": 1.60 + (a.device_serial % 35) / 100, "resting_heart_rate": int(round(a.hr_rest))}
    if cfg.weight_in_file:
        profile["weight"] = a.body_mass_kg
    enc.on_mesg(MESG["USER_PROFILE"], profile)
    enc.on_mesg(MESG["EVENT"], {"timestamp": _fit_ts(t0), "event": "timer", "event_type": "start",
                                "event_group": 0})

    recs = record_frame(r, a, cfg, t0)
    rec_ts = recs["timestamp"].to_numpy() - _fit_ts(t0)
    rows = recs.iter_rows(named=True)
    lap_bounds = list(r.lap_starts) + [r.n]
    written = 0
    rec_num = MESG["RECORD"]
    for li in range(len(lap_bounds) - 1):                 # loop over laps, then records
        lo, hi = int(lap_bounds[li]), int(lap_bounds[li + 1])
        n_in = int(np.searchsorted(rec_ts, hi) - np.searchsorted(rec_ts, lo))
        for _ in range(n_in):
            enc.on_mesg(rec_num, next(rows))
            written += 1
        lap_end = min(hi, r.n - 1) if li == len(lap_bounds) - 2 else hi
        lap = {"message_index": li, "timestamp": _fit_ts(t0) + lap_end, "start_time": _fit_ts(t0) + lo,
               "event": "lap", "event_type": "stop", "sport": session.sport, "sub_sport": session.sub_sport,
               "lap_trigger": "session_end" if li == len(lap_bounds) - 2 else r.lap_triggers[li + 1],
               "intensity": r.lap_intensity[li], **_summary(r, lo, max(hi, lo + 1), a)}
        enc.on_mesg(MESG["LAP"], lap)
    for row in rows:                                       # records after the last lap start, if any
        enc.on_mesg(rec_num, row)
        written += 1
    enc.on_mesg(MESG["EVENT"], {"timestamp": _fit_ts(t_end), "event": "timer", "event_type": "stop_all",
                                "event_group": 0})
    ses = {"message_index": 0, "timestamp": _fit_ts(t_end), "start_time": _fit_ts(t0), "event": "session",
           "event_type": "stop", "trigger": "activity_end", "sport": session.sport,
           "sub_sport": session.sub_sport, "first_lap_index": 0, "num_laps": len(r.lap_starts),
           **_summary(r, 0, r.n, a)}
    enc.on_mesg(MESG["SESSION"], ses)
    enc.on_mesg(MESG["ACTIVITY"], {"timestamp": _fit_ts(t_end), "total_timer_time": float(r.n - 1),
                                   "num_sessions": 1, "type": "manual", "event": "activity",
                                   "event_type": "stop", "local_timestamp": _fit_ts(t_end) + a.utc_offset_s})
    path.write_bytes(enc.close())
    return written


GPX_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<gpx creator="{creator}" version="1.1" xmlns="http://www.topografix.com/GPX/1/1" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v1" '
    'xsi:schemaLocation="http://www.topografix.com/GPX/1/1 http://www.topografix.com/GPX/1/1/gpx.xsd '
    'http://www.garmin.com/xmlschemas/TrackPointExtension/v1 '
    'http://www.garmin.com/xmlschemas/TrackPointExtensionv1.xsd">\n'
    ' <metadata>\n  <time>{time}</time>\n </metadata>\n'
    ' <trk>\n  <name>{name}</name>\n  <type>{type}</type>\n  <trkseg>\n'
)
GPX_TAIL = "  </trkseg>\n </trk>\n</gpx>\n"
GPX_CREATORS = ("Garmin Connect", "StravaGPX", "Open GPX Tracker", "RunGap")


def write_gpx(path: Path, r: Rendered, session: Session, a: Athlete, cfg: DeviceConfig,
              t0: dt.datetime, creator: str) -> int:
    """Write one session as GPX 1.1; ``cfg.gpx_cadence_convention`` decides the unit of gpxtpx:cad."""
    idx = np.flatnonzero(r.keep & np.isfinite(r.lat))
    spm = r.cadence_spm[idx]
    cad = np.round(spm / 2.0) if cfg.gpx_cadence_convention == "strides_per_min" else np.round(spm)
    df = pl.DataFrame([
        pl.Series("t", [t0], dtype=pl.Datetime("us", "UTC")).repeat_by(len(idx)).explode()
        + pl.Series(idx * 1_000_000, dtype=pl.Int64).cast(pl.Duration("us")),
        _series("lat", r.lat[idx]), _series("lon", r.lon[idx]), _series("ele", r.alt[idx]),
        _series("hr", np.clip(np.round(r.hr[idx]), 30, 230), pl.Int64), _series("cad", cad, pl.Int64),
    ])
    hr_el = pl.format("<gpxtpx:hr>{}</gpxtpx:hr>", pl.col("hr"))
    cad_el = pl.format("<gpxtpx:cad>{}</gpxtpx:cad>", pl.col("cad"))
    ext = pl.when(pl.col("hr").is_not_null() | pl.col("cad").is_not_null()).then(
        pl.concat_str([pl.lit("<extensions><gpxtpx:TrackPointExtension>"), hr_el, cad_el,
                       pl.lit("</gpxtpx:TrackPointExtension></extensions>")], ignore_nulls=True)
    ).otherwise(pl.lit(""))
    lines = df.select(pl.format(
        '   <trkpt lat="{}" lon="{}"><ele>{}</ele><time>{}</time>{}</trkpt>',
        pl.col("lat").round(7), pl.col("lon").round(7), pl.col("ele").round(1),
        pl.col("t").dt.strftime("%Y-%m-%dT%H:%M:%SZ"), ext,
    ).alias("line"))["line"]
    head = GPX_HEAD.format(creator=creator, time=t0.strftime("%Y-%m-%dT%H:%M:%SZ"),
                           name=f"{session.sport.title()} {t0:%Y-%m-%d}", type=session.sport)
    path.write_text(head + "\n".join(lines.to_list()) + "\n" + GPX_TAIL, encoding="utf-8")
    return len(idx)
