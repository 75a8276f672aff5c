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

import numpy as np
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
    s = df.get_column(name)
    if not s.null_count():
        return s[0]
    # the first non-NULL element, as s[i] gives it (a list column's element is a Series)
    i = next((i for i, v in enumerate(s.to_list()) if v is not None), None)
    return None if i is None else s[i]


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


def _float_column(rec: pl.DataFrame, name: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """A record field cast to Float64 as NumPy (NaN where NULL) and its NULL mask; (None, None) if absent."""
    if name not in rec.columns:
        return None, None
    src = rec.get_column(name)
    s = src.cast(pl.Float64)
    v = s.to_numpy()
    if not s.null_count():
        return v, np.zeros(v.size, dtype=bool)
    nan = np.isnan(v)
    if int(nan.sum()) == s.null_count():  # no NaN besides the NULLs
        return v, nan
    return v, s.to_arrow().is_null().to_numpy(zero_copy_only=False)


def _coalesce(a: tuple, b: tuple) -> np.ndarray | None:
    """pl.coalesce of two (values, null mask) columns, as values with NaN for NULL."""
    if a[0] is None:
        return b[0]
    if b[0] is None or not a[1].any():
        return a[0]
    return np.where(a[1], b[0], a[0])


_RECORD_PLAIN = {  # canonical column: (record field, multiplier) for columns taken as they are
    "lat_deg": ("position_lat", SEMICIRCLE_DEG), "lon_deg": ("position_long", SEMICIRCLE_DEG),
    "distance_m": ("distance", None), "heart_rate_bpm": ("heart_rate", None), "power_w": ("power", None),
    "temperature_c": ("temperature", None), "vertical_oscillation_mm": ("vertical_oscillation", None),
    "stance_time_ms": ("stance_time", None), "stance_time_balance_pct": ("stance_time_balance", None),
    "vertical_ratio_pct": ("vertical_ratio", None),
}


def _record_columns(rec: pl.DataFrame) -> dict[str, np.ndarray]:
    """Canonical columns from FIT record messages (before conform), as float64 NumPy with NaN
    for NULL; ``cadence_total`` (strides or rpm, fractional part added) is split by sport later."""
    cols: dict[str, np.ndarray] = {}
    for out, (name, mult) in _RECORD_PLAIN.items():
        v = _float_column(rec, name)[0]
        if v is not None:
            cols[out] = v * mult if mult is not None else v
    alt = _coalesce(_float_column(rec, "enhanced_altitude"), _float_column(rec, "altitude"))
    if alt is not None:
        cols["altitude_m"] = alt
    spd = _coalesce(_float_column(rec, "enhanced_speed"), _float_column(rec, "speed"))
    if spd is not None:
        cols["speed_mps"] = spd
    step = _float_column(rec, "step_length")[0]
    if step is not None:
        cols["step_length_m"] = step * (1 / 1000.0)  # mm -> m, bit-identical to polars' `/ 1000.0`
    cad = _float_column(rec, "cadence")[0]
    if cad is not None:
        frac, frac_null = _float_column(rec, "fractional_cadence")
        cols["cadence_total"] = cad + (0.0 if frac is None else np.where(frac_null, 0.0, frac))
    return cols


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
    names = laps.columns
    lo = start - dt.timedelta(seconds=1)
    for values in laps.rows():
        lap = dict(zip(names, values))
        ls = lap.get("start_time")
        if ls is None or ls < lo or ls > end:
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


def _lap_of(ts_us: np.ndarray, laps: pl.DataFrame) -> np.ndarray:
    """lap_index per record time (int64 µs): the last lap by start_time that started at or before
    it (the later one of laps starting at the same time), 0 before the first lap."""
    starts, ok = canonical.datetime_us(laps.get_column("start_time").cast(TS))
    idx = laps.get_column("lap_index").cast(pl.Int64).to_numpy()
    if ok is not None:
        starts, idx = starts[ok], idx[ok]
    order = np.argsort(starts, kind="stable")
    pos = np.searchsorted(starts[order], ts_us, side="right") - 1
    return np.where(pos >= 0, idx[order][np.maximum(pos, 0)], 0) if idx.size else np.zeros(ts_us.size, np.int64)


def _assign_laps(records: pl.DataFrame, laps: pl.DataFrame) -> pl.DataFrame:
    if laps.height == 0 or records.height == 0:
        return records
    lap = _lap_of(canonical.datetime_us(records.get_column("ts"))[0], laps)
    return records.with_columns(pl.Series("lap_index", lap, dtype=pl.Int32))


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def _us(t: dt.datetime) -> int:
    return (t - _EPOCH) // dt.timedelta(microseconds=1)


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
    ts_us, valid = canonical.datetime_us(rec.get_column("timestamp").cast(TS))
    # time order, ties in file order (a stable sort of the timed records)
    rows = np.arange(ts_us.size) if valid is None else np.flatnonzero(valid)
    if ts_us.size > 1 and not (valid is None and bool(np.all(ts_us[1:] >= ts_us[:-1]))):
        rows = rows[np.argsort(ts_us[rows], kind="stable")]
    ts_us = ts_us[rows]
    columns = {name: v[rows] for name, v in _record_columns(rec).items()}
    cadence_total = columns.pop("cadence_total", None)
    lap_msgs = msgs.get("lap", pl.DataFrame())
    # session boundaries: a record belongs to the last session that started at or before it
    starts = [w["start_time"] for w in windows]
    activities = []
    for i, w in enumerate(windows):
        sport = None if w.get("sport") is None else str(w.get("sport"))
        sub_sport = None if w.get("sub_sport") is None else str(w.get("sub_sport"))
        sport = sport or "generic"
        foot = canonical.is_foot_sport(sport) or sub_sport in ("treadmill", "track", "trail")
        a, b = 0, ts_us.size
        if len(windows) > 1:
            lo = starts[i] if i > 0 else None
            hi = starts[i + 1] if i + 1 < len(starts) else None
            if lo is not None:
                a = int(np.searchsorted(ts_us, _us(lo), side="left"))
            if hi is not None:
                b = max(a, int(np.searchsorted(ts_us, _us(hi), side="left")))
        if b == a:
            continue
        sub = {name: v[a:b] for name, v in columns.items()}
        if cadence_total is not None:
            # record.cadence is strides/min for running and walking (DOMAIN.md): steps = 2 × strides
            sub["cadence_spm" if foot else "cadence_rpm"] = 2.0 * cadence_total[a:b] if foot else cadence_total[a:b]
        conformed = canonical.conform_columns(ts_us[a:b], sub)
        first, last = (_EPOCH + dt.timedelta(microseconds=int(conformed["ts"][k])) for k in (0, -1))
        laps = _laps_frame(lap_msgs, foot, first, last)
        if laps.height:
            conformed["lap_index"] = _lap_of(conformed["ts"], laps).astype(np.float64)
        records = canonical.records_frame(conformed)
        summary = canonical.summarise(records, foot)
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
