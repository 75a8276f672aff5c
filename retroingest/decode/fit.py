"""FIT activity files → canonical activities.

Two layers, so that several byte-level decoders can share one set of unit rules:

1. a *message reader* turns bytes into :data:`FitMessages`: for each message name a polars frame,
   one row per message, columns named as in the FIT profile, values scaled as the profile says
   (m, m/s, s, bpm), enums as their profile strings, invalid values as NULL, date_time fields as
   UTC datetimes, positions still in semicircles. :func:`read_messages_fitparse` is the reference
   reader (fitparse 1.2.0); a columnar reader may produce the same frames faster.
2. :func:`messages_to_decoded` applies the unit rules once (DOMAIN.md): enhanced_* preferred,
   semicircles → degrees, strides → steps with fractional_cadence, local time offset kept,
   sessions split into activities, device summaries beside recomputed ones.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Callable

import polars as pl

from retroingest import canonical
from retroingest.canonical import TS, DecodedActivity, DecodedFile
from retroingest.errors import DecodeError, NotActivityError

FIT_EPOCH = dt.datetime(1989, 12, 31, tzinfo=dt.timezone.utc)
SEMICIRCLE_DEG = 180.0 / 2**31

# Messages and fields the canonical form needs; readers may return more, never less.
WANTED: dict[str, tuple[str, ...]] = {
    "file_id": ("type", "manufacturer", "product", "garmin_product", "serial_number", "time_created"),
    "record": (
        "timestamp", "position_lat", "position_long", "altitude", "enhanced_altitude", "distance",
        "speed", "enhanced_speed", "heart_rate", "cadence", "fractional_cadence", "power",
        "temperature", "vertical_oscillation", "stance_time", "stance_time_percent",
        "stance_time_balance", "vertical_ratio", "step_length",
    ),
    "session": (
        "timestamp", "start_time", "sport", "sub_sport", "total_elapsed_time", "total_timer_time",
        "total_distance", "avg_speed", "enhanced_avg_speed", "max_speed", "enhanced_max_speed",
        "avg_heart_rate", "max_heart_rate", "avg_cadence", "avg_running_cadence",
        "avg_fractional_cadence", "total_calories", "total_ascent", "total_descent", "num_laps",
    ),
    "lap": (
        "timestamp", "start_time", "sport", "total_elapsed_time", "total_timer_time", "total_distance",
        "avg_speed", "enhanced_avg_speed", "max_speed", "enhanced_max_speed", "avg_heart_rate",
        "max_heart_rate", "avg_cadence", "avg_running_cadence", "avg_fractional_cadence",
        "total_ascent", "total_descent", "total_calories", "lap_trigger", "intensity",
    ),
    "activity": ("timestamp", "local_timestamp", "num_sessions"),
    "sport": ("sport", "sub_sport"),
    "user_profile": ("weight",),
    "device_settings": ("time_offset",),
}

FitMessages = dict[str, pl.DataFrame]
FITPARSE_DECODER = "fitparse 1.2.0"


@dataclass
class ReadResult:
    """A reader's output: the messages, plus why reading stopped early (if it did)."""

    messages: FitMessages
    decoder: str
    error: str | None = None          # set when the file is damaged; messages hold the prefix
    error_code: str | None = None     # truncated | crc_mismatch | bad_header | corrupt
    extra: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- reference reader

def _fit_datetime(v: Any) -> Any:
    """fitparse gives naive UTC datetimes, or ints for device-relative 'system time'."""
    if isinstance(v, dt.datetime):
        return v.replace(tzinfo=dt.timezone.utc)
    if isinstance(v, int):  # seconds since device power-on: anchored at the FIT epoch, see docs
        return FIT_EPOCH + dt.timedelta(seconds=v)
    return None  # a damaged definition can make a time field a float or an array: not a time


_DATETIME_FIELDS = {"timestamp", "start_time", "time_created", "local_timestamp"}


def _scalar(v: Any) -> Any:
    """One value for a field whose rows mix scalars and arrays: an array keeps its first element,
    as FitTrackee and GAP do for tuple-valued enhanced_altitude; raw bytes become None."""
    if isinstance(v, (tuple, list)):
        v = v[0] if v else None
    return None if isinstance(v, (bytes, bytearray, tuple, list, dict)) else v


def _frames_from_rows(rows: dict[str, list[dict[str, Any]]]) -> FitMessages:
    out: FitMessages = {}
    for name, wanted in WANTED.items():
        lst = rows.get(name, [])
        cols: dict[str, list[Any]] = {f: [r.get(f) for r in lst] for f in wanted}
        series = []
        for f, vals in cols.items():
            if f in _DATETIME_FIELDS:
                series.append(pl.Series(f, [_fit_datetime(v) for v in vals], dtype=TS))
            else:
                s = pl.Series(f, vals, strict=False)
                # mixed scalars and arrays (a damaged definition) cannot be cast: one value each
                series.append(pl.Series(f, [_scalar(v) for v in vals], strict=False) if s.dtype == pl.Object else s)
        out[name] = pl.DataFrame(series) if series else pl.DataFrame()
    return out


def classify_fit_error(exc: Exception) -> tuple[str, str]:
    """Map a fitparse exception to (reason_code, words)."""
    from fitparse import utils as fu

    text = str(exc) or type(exc).__name__
    if isinstance(exc, fu.FitCRCError):
        return "crc_mismatch", f"CRC mismatch: {text}"
    if isinstance(exc, fu.FitEOFError):
        return "truncated", f"truncated: {text}"
    if isinstance(exc, fu.FitHeaderError):
        return "bad_header", f"bad header: {text}"
    return "corrupt", f"corrupt data: {text}"


def read_messages_fitparse(data: bytes, path: str | None = None) -> ReadResult:
    """Reference reader: fitparse with CRC checks on; keeps every message before any damage."""
    import fitparse
    from fitparse import records as fp_records

    # fitparse keeps developer-field definitions in a module-level dict: without this, a file's
    # result would depend on which files this process decoded before it
    fp_records.DEV_TYPES.clear()
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in WANTED}
    error = code = None
    try:
        ff = fitparse.FitFile(data, check_crc=True)
        for msg in ff.get_messages(list(WANTED)):
            row: dict[str, Any] = {}
            for fd in msg.fields:  # first wins: a later expanded component must not erase a real value
                if fd.name not in row or row[fd.name] is None:
                    row[fd.name] = fd.value
            rows[msg.name].append(row)
    except Exception as exc:  # fitparse raises many types; all mean 'stopped here'
        code, error = classify_fit_error(exc)
    return ReadResult(_frames_from_rows(rows), decoder=FITPARSE_DECODER,
                      error=error, error_code=code)


# ----------------------------------------------------------------------------- unit rules

def _col(df: pl.DataFrame, name: str) -> pl.Expr:
    return pl.col(name) if name in df.columns else pl.lit(None)


def _first(df: pl.DataFrame, name: str) -> Any:
    if name not in df.columns or df.height == 0:
        return None
    s = df[name].drop_nulls()
    return s[0] if s.len() else None


def _num(v: Any) -> float | None:
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None


def _signed32(v: int) -> int:
    return v - 2**32 if v >= 2**31 else v


def local_offset_s(msgs: FitMessages) -> tuple[int | None, str | None]:
    """Device local time minus UTC. activity.local_timestamp − timestamp first (fitparse#3),
    then device_settings.time_offset (an unsigned wrap, e.g. 4294949296 = −5 h)."""
    act = msgs.get("activity", pl.DataFrame())
    ts, lts = _first(act, "timestamp"), _first(act, "local_timestamp")
    if isinstance(ts, dt.datetime) and isinstance(lts, dt.datetime):
        off = round((lts - ts).total_seconds() / 900) * 900  # zones are multiples of 15 min
        if abs(off) <= 14 * 3600:
            return int(off), "fit_local_timestamp"
    tof = _first(msgs.get("device_settings", pl.DataFrame()), "time_offset")
    if isinstance(tof, (int, float)):
        off = _signed32(int(tof))
        if abs(off) <= 14 * 3600:
            return off, "fit_time_offset"
    return None, None


def _records_frame(rec: pl.DataFrame, foot: pl.Expr) -> pl.DataFrame:
    """Canonical columns from FIT record messages (before conform)."""
    c = lambda n: _col(rec, n)  # noqa: E731
    cadence_total = c("cadence").cast(pl.Float64) + c("fractional_cadence").cast(pl.Float64).fill_null(0.0)
    return rec.select(
        c("timestamp").cast(TS).alias("ts"),
        (c("position_lat").cast(pl.Float64) * SEMICIRCLE_DEG).alias("lat_deg"),
        (c("position_long").cast(pl.Float64) * SEMICIRCLE_DEG).alias("lon_deg"),
        pl.coalesce(c("enhanced_altitude").cast(pl.Float64), c("altitude").cast(pl.Float64)).alias("altitude_m"),
        c("distance").cast(pl.Float64).alias("distance_m"),
        pl.coalesce(c("enhanced_speed").cast(pl.Float64), c("speed").cast(pl.Float64)).alias("speed_mps"),
        # record.cadence is strides/min for running and walking (DOMAIN.md): steps = 2 × strides
        pl.when(foot).then(2.0 * cadence_total).alias("cadence_spm"),
        pl.when(foot.not_()).then(cadence_total).alias("cadence_rpm"),
        c("heart_rate").cast(pl.Float64).alias("heart_rate_bpm"),
        c("power").cast(pl.Float64).alias("power_w"),
        c("temperature").cast(pl.Float64).alias("temperature_c"),
        c("vertical_oscillation").cast(pl.Float64).alias("vertical_oscillation_mm"),
        c("stance_time").cast(pl.Float64).alias("stance_time_ms"),
        c("stance_time_balance").cast(pl.Float64).alias("stance_time_balance_pct"),
        c("vertical_ratio").cast(pl.Float64).alias("vertical_ratio_pct"),
        (c("step_length").cast(pl.Float64) / 1000.0).alias("step_length_m"),
    )


def _cadence_summary(row: dict[str, Any], foot: bool) -> tuple[float | None, float | None]:
    cad = _num(row.get("avg_running_cadence")) if foot else None
    if cad is None:
        cad = _num(row.get("avg_cadence"))
    if cad is None:
        return None, None
    cad += _num(row.get("avg_fractional_cadence")) or 0.0
    return (2.0 * cad, None) if foot else (None, cad)


def _summary(msg: dict[str, Any], foot: bool) -> dict[str, Any]:
    """A lap or session message's own totals, in canonical units (lap column names)."""
    spm, rpm = _cadence_summary(msg, foot)
    return {
        "elapsed_time_s": _num(msg.get("total_elapsed_time")),
        "timer_time_s": _num(msg.get("total_timer_time")),
        "distance_m": _num(msg.get("total_distance")),
        "avg_speed_mps": _num(msg.get("enhanced_avg_speed")) or _num(msg.get("avg_speed")),
        "max_speed_mps": _num(msg.get("enhanced_max_speed")) or _num(msg.get("max_speed")),
        "avg_heart_rate_bpm": _num(msg.get("avg_heart_rate")),
        "max_heart_rate_bpm": _num(msg.get("max_heart_rate")),
        "avg_cadence_spm": spm,
        "avg_cadence_rpm": rpm,
        "total_ascent_m": _num(msg.get("total_ascent")),
        "total_descent_m": _num(msg.get("total_descent")),
        "calories_kcal": _num(msg.get("total_calories")),
    }


# lap summary name -> activities.device_* column
_SESSION_COLUMNS = {
    "elapsed_time_s": "device_elapsed_time_s", "timer_time_s": "device_timer_time_s",
    "distance_m": "device_distance_m", "avg_speed_mps": "device_avg_speed_mps",
    "max_speed_mps": "device_max_speed_mps", "avg_heart_rate_bpm": "device_avg_heart_rate_bpm",
    "max_heart_rate_bpm": "device_max_heart_rate_bpm", "avg_cadence_spm": "device_avg_cadence_spm",
    "avg_cadence_rpm": "device_avg_cadence_rpm", "total_ascent_m": "device_total_ascent_m",
    "total_descent_m": "device_total_descent_m", "calories_kcal": "device_calories_kcal",
}


def _laps_frame(laps: pl.DataFrame, foot: bool, start: dt.datetime, end: dt.datetime) -> pl.DataFrame:
    rows = []
    for lap in laps.iter_rows(named=True):
        ls = lap.get("start_time")
        if ls is None or ls < start - dt.timedelta(seconds=1) or ls > end:
            continue
        rows.append({
            "start_time": ls,
            "end_time": lap.get("timestamp"),
            **_summary(lap, foot),
            "trigger": lap.get("lap_trigger"),
            "intensity": lap.get("intensity"),
        })
    rows.sort(key=lambda r: r["start_time"])
    for i, r in enumerate(rows):
        r["lap_index"] = i
    return pl.DataFrame(rows, schema=canonical.LAP_SCHEMA) if rows else pl.DataFrame(schema=canonical.LAP_SCHEMA)


def _assign_laps(records: pl.DataFrame, laps: pl.DataFrame) -> pl.DataFrame:
    if laps.height == 0 or records.height == 0:
        return records
    starts = laps.select("start_time", "lap_index").sort("start_time")
    return (
        records.drop("lap_index")
        .join_asof(starts, left_on="ts", right_on="start_time", strategy="backward", check_sortedness=False)
        .with_columns(pl.col("lap_index").fill_null(0))
        .drop("start_time")
        .select(list(canonical.RECORD_SCHEMA))
    )


def _session_windows(msgs: FitMessages) -> list[dict[str, Any]]:
    """One window per session; a file without sessions (crash-left) becomes one window."""
    ses = msgs.get("session", pl.DataFrame())
    sport_msg = msgs.get("sport", pl.DataFrame())
    windows = []
    if ses.height:
        for row in ses.sort("start_time", nulls_last=True).iter_rows(named=True):
            if row.get("start_time") is None:
                continue
            windows.append(row)
    if not windows:
        windows.append({
            "start_time": None,
            "sport": _first(sport_msg, "sport") or _first(msgs.get("lap", pl.DataFrame()), "sport"),
            "sub_sport": _first(sport_msg, "sub_sport"),
        })
    return windows


def _product_name(fid: pl.DataFrame) -> str | None:
    v = _first(fid, "garmin_product")
    if v is None:
        v = _first(fid, "product")
    return None if v is None else str(v)


def messages_to_decoded(res: ReadResult, path: str | None = None) -> DecodedFile:
    """Apply the FIT unit rules to a reader's messages; split sessions into activities."""
    msgs = res.messages
    fid = msgs.get("file_id", pl.DataFrame())
    file_type = _first(fid, "type")
    file_type = None if file_type is None else str(file_type)
    rec = msgs.get("record", pl.DataFrame())
    # a damaged definition can make a scalar field an array in every row: keep the first element
    arrays = [c for c, t in rec.schema.items() if isinstance(t, (pl.List, pl.Array))]
    if arrays:
        rec = rec.with_columns(pl.col(c).list.first() if isinstance(rec.schema[c], pl.List) else pl.col(c).arr.first()
                               for c in arrays)
    if file_type not in (None, "activity"):
        raise NotActivityError(path, f"FIT file type '{file_type}' holds no activity", reason_code="not_activity")
    if rec.height == 0 or rec["timestamp"].null_count() == rec.height:
        if res.error:
            raise DecodeError(path, res.error, reason_code=res.error_code or "corrupt")
        raise NotActivityError(path, f"FIT file (type {file_type or 'unknown'}) has no timed records",
                               reason_code="no_records")

    offset, tz_source = local_offset_s(msgs)
    up = msgs.get("user_profile", pl.DataFrame())
    weight = _num(_first(up, "weight"))
    serial = _first(fid, "serial_number")
    common = {
        "format": "fit",
        "utc_offset_s": offset,
        "tz_source": tz_source,
        "body_mass_kg": weight if weight and 20 <= weight <= 300 else None,
        "device_manufacturer": None if _first(fid, "manufacturer") is None else str(_first(fid, "manufacturer")),
        "device_product": _product_name(fid),
        "device_serial": None if serial is None else str(serial),
        "time_created": _first(fid, "time_created"),
        "creator": None,
    }

    windows = _session_windows(msgs)
    rec = rec.filter(pl.col("timestamp").is_not_null()).sort("timestamp", maintain_order=True)
    # session boundaries: a record belongs to the last session that started at or before it
    starts = [w["start_time"] for w in windows]
    activities = []
    for i, w in enumerate(windows):
        sport = None if w.get("sport") is None else str(w.get("sport"))
        sub_sport = None if w.get("sub_sport") is None else str(w.get("sub_sport"))
        sport = sport or "generic"
        foot = canonical.is_foot_sport(sport) or sub_sport in ("treadmill", "track", "trail")
        sub = rec
        if len(windows) > 1:
            lo = starts[i] if i > 0 else None
            hi = starts[i + 1] if i + 1 < len(starts) else None
            if lo is not None:
                sub = sub.filter(pl.col("timestamp") >= lo)
            if hi is not None:
                sub = sub.filter(pl.col("timestamp") < hi)
        if sub.height == 0:
            continue
        records = canonical.conform(_records_frame(sub, pl.lit(foot)), path)
        summary = canonical.summarise(records, foot)
        laps = _laps_frame(msgs.get("lap", pl.DataFrame()), foot, summary["start_time"], summary["end_time"])
        records = _assign_laps(records, laps)
        meta = {
            **common,
            **summary,
            "session_index": i,
            "sport": sport,
            "sub_sport": sub_sport or "generic",
            "is_foot_sport": foot,
            "cadence_source_unit": ("strides_per_min" if foot else "rpm") if summary["has_cadence"] else None,
            "cadence_unit_reason": "FIT profile: record.cadence is strides/min for foot sports, rpm otherwise"
            if summary["has_cadence"] else None,
            **{_SESSION_COLUMNS[k]: v for k, v in _summary(w, foot).items()},
            "device_num_laps": laps.height or None,
        }
        activities.append(DecodedActivity(meta=meta, records=records, laps=laps))
    if not activities:
        raise NotActivityError(path, "FIT file has no records inside its sessions", reason_code="no_records")
    return DecodedFile(format="fit", decoder=res.decoder, activities=activities,
                       salvage_reason=res.error, salvage_code=res.error_code, fit_file_type=file_type or "activity")


Reader = Callable[[bytes, "str | None"], ReadResult]


def decode_fit(data: bytes, path: str | None = None, reader: Reader | None = None) -> DecodedFile:
    """Decode FIT bytes into activities. ``reader`` defaults to the best available reader."""
    if len(data) < 12:
        raise DecodeError(path, f"bad header: file is {len(data)} bytes, shorter than a FIT header",
                          reason_code="bad_header" if data else "empty")
    header_size = data[0]
    if header_size not in (12, 14) or data[8:12] != b".FIT":
        raise DecodeError(path, "bad header: no '.FIT' signature", reason_code="bad_header")
    reader = reader or default_reader()
    return messages_to_decoded(reader(data, path), path)


def default_reader() -> Reader:
    """The columnar reader when available, falling back to fitparse for what it cannot handle."""
    try:
        from retroingest.decode.fit_columnar import read_messages_fast  # noqa: WPS433
    except ImportError:
        return read_messages_fitparse
    return read_messages_fast
