"""Pieces shared by the XML decoders (GPX, TCX): safe parsing, timestamps, the cadence-unit decision."""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import numpy as np
import polars as pl
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from retroingest.errors import DecodeError, UnsafeInputError

# Strava's numeric activity types as found in GPX <type> (and a few common words).
SPORT_WORDS = {
    "9": "running", "run": "running", "running": "running", "trail_running": "running",
    "10": "walking", "walk": "walking", "walking": "walking",
    "4": "hiking", "hike": "hiking", "hiking": "hiking",
    "1": "cycling", "ride": "cycling", "cycling": "cycling", "biking": "cycling", "bike": "cycling",
    "road_biking": "cycling", "mountain_biking": "cycling",
    "swim": "swimming", "swimming": "swimming",
    "other": "generic",
}


def local(tag: str) -> str:
    """Element tag without its namespace: '{http://…}trkpt' → 'trkpt'."""
    return tag.rsplit("}", 1)[-1]


def parse_xml(data: bytes, path: str | None) -> Element:
    """Parse XML with DTDs and entities refused (billion laughs, external entities)."""
    if not data.strip():
        raise DecodeError(path, "empty file", reason_code="empty")
    try:
        return fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise UnsafeInputError(path, f"unsafe XML refused: {type(exc).__name__} ({exc})",
                               reason_code="unsafe_xml") from exc
    except ParseError as exc:
        raise DecodeError(path, f"malformed XML: {exc}", reason_code="malformed_xml") from exc
    except (LookupError, UnicodeError, ValueError) as exc:  # unknown or multi-byte declared encoding, bytes not in it
        raise DecodeError(path, f"malformed XML: bad encoding ({exc})", reason_code="malformed_xml") from exc


_TZ_RE = re.compile(r"(Z|[+-]\d\d:?\d\d)$")


def parse_time(text: str | None) -> tuple[dt.datetime | None, int | None]:
    """ISO-8601 → (UTC datetime, the text's UTC offset in s or None when it had no zone)."""
    if not text:
        return None, None
    s = text.strip()
    try:
        t = dt.datetime.fromisoformat(s.replace("Z", "+00:00") if s.endswith("Z") else s)
    except ValueError:
        return None, None
    if t.tzinfo is None:
        return t.replace(tzinfo=dt.timezone.utc), None
    off = t.utcoffset()
    return t.astimezone(dt.timezone.utc), int(off.total_seconds()) if off is not None else None


def points_frame(points: list[dict[str, Any]], times: list, columns: dict[str, str]) -> pl.DataFrame:
    """Frame of raw point values: ``ts`` plus each canonical column taken from a point-dict key."""
    from retroingest.canonical import TS

    data = {"ts": pl.Series(times, dtype=TS)}
    for column, key in columns.items():
        data[column] = pl.Series([p.get(key) for p in points], dtype=pl.Float64)
    return pl.DataFrame(data)


def to_float(text: str | None) -> float | None:
    """Number from XML text; None for blanks, non-numbers, NaN and infinities."""
    if text is None:
        return None
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def sport_from_text(text: str | None) -> str | None:
    """Map a GPX <type> / TCX Sport value to the FIT sport vocabulary (None when unknown)."""
    if not text:
        return None
    return SPORT_WORDS.get(text.strip().lower().replace(" ", "_"))


def expected_step_length_m(speed_mps: float) -> float:
    """Typical step length at a speed, walking or running: about 0.74 m at 1.35 m/s and 1.09 m at
    3.0 m/s (DOMAIN.md table), i.e. 0.40 + 0.23·v, a straight line through those anchors."""
    return 0.40 + 0.23 * speed_mps


def decide_cadence_unit(cad: np.ndarray, speed: np.ndarray, sport: str | None) -> dict[str, Any]:
    """Decide what a GPX/TCX cadence column means, from its values together with speed.

    Exporters disagree: Garmin Connect writes strides/min in gpxtpx:cad, Strava writes steps/min
    for some devices, OpenTracks writes rpm. Returns ``multiplier`` (to steps/min), ``unit`` and a
    ``reason`` sentence that is stored with the activity, so the decision is never silent.
    """
    cad = np.asarray(cad, dtype=float)
    speed = np.asarray(speed, dtype=float)
    ok = ~np.isnan(cad) & (cad > 0)
    if not ok.any():
        return {"multiplier": None, "unit": None, "reason": None}
    moving = ok & ~np.isnan(speed) & (speed >= 0.5)
    if sport == "cycling":
        return {"multiplier": 1.0, "unit": "rpm", "reason": "cycling: cadence is crank rpm"}
    if moving.sum() >= 10:
        c = float(np.median(cad[moving]))
        v = float(np.median(speed[moving]))
        expected = expected_step_length_m(v)
        # read as strides (x2) or as steps (x1): pick the reading whose implied step length
        # (speed / steps per second) is nearer, in ratio, to a human step at that speed
        step = {m: v / (m * c / 60.0) for m in (2.0, 1.0)}
        m = min(step, key=lambda k: abs(math.log(step[k] / expected)))
        unit = "strides_per_min" if m == 2.0 else "steps_per_min"
        other = 1.0 if m == 2.0 else 2.0
        reason = (f"median cadence {c:.0f} at median moving speed {v:.2f} m/s: read as {unit.replace('_', ' ')} "
                  f"it gives {m * c:.0f} steps/min and {step[m]:.2f} m steps, the other reading "
                  f"{step[other]:.2f} m; a typical step at that speed is {expected:.2f} m")
        return {"multiplier": m, "unit": unit, "reason": reason}
    c = float(np.median(cad[ok]))
    m = 2.0 if c < 100 else 1.0
    unit = "strides_per_min" if m == 2.0 else "steps_per_min"
    return {"multiplier": m, "unit": unit,
            "reason": f"no usable speed: median cadence {c:.0f} read as {unit.replace('_', ' ')} by value alone (low confidence)"}
