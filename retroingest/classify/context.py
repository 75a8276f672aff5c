"""Where a bout happened: track, treadmill, road or unknown.

* treadmill: sub_sport treadmill / indoor running or walking, or no position fixes while speed or
  distance come from a foot pod or the watch;
* track: sub_sport track, or GPS positions that keep repeating inside a small area (a 400 m oval
  has a radius of gyration of about 45 m; short out-and-back repeats less) while covering real
  distance: radius of gyration <= 70 m over a 4-minute window that covers >= 250 m;
* road: other GPS tracks; unknown: neither positions nor speed.
"""

from __future__ import annotations

import numpy as np

from retroingest.classify.features import Features, _wmean

CONTEXTS = ("unknown", "road", "track", "treadmill")
UNKNOWN, ROAD, TRACK, TREADMILL = range(4)
INDOOR_SUB_SPORTS = {"treadmill", "indoor_running", "indoor_walking", "virtual_activity"}
M_PER_DEG = 111_195.0


def per_record(f: Features, sub_sports: list[str | None]) -> np.ndarray:
    """Context code per record (vectorised)."""
    n = f.n
    ctx = np.full(n, UNKNOWN, np.int8)
    if n == 0:
        return ctx
    lo, hi = f.grid.window(120.0, 120.0)
    lat0 = np.nanmedian(f.lat) if np.isfinite(f.lat).any() else 0.0
    y = (f.lat - lat0) * M_PER_DEG
    x = f.lon * M_PER_DEG * np.cos(np.radians(np.nan_to_num(f.lat, nan=lat0)))
    x = x - np.nanmedian(x) if np.isfinite(x).any() else x
    mx, my = _wmean(x, lo, hi), _wmean(y, lo, hi)
    mxx, myy = _wmean(x * x, lo, hi), _wmean(y * y, lo, hi)
    with np.errstate(invalid="ignore"):
        rg = np.sqrt(np.maximum(mxx - mx * mx, 0) + np.maximum(myy - my * my, 0))
    dist = f.distance
    if np.isnan(dist).all():
        dist = np.cumsum(np.nan_to_num(f.v) * f.dt)
    dist = np.where(np.isnan(dist), np.nan, dist)
    hi1 = np.maximum(hi - 1, lo)
    covered = dist[hi1] - dist[lo]
    ctx[f.has_gps] = ROAD
    compact = f.has_gps & (rg <= 70.0) & (np.nan_to_num(covered) >= 250.0)
    ctx[compact] = TRACK
    has_motion = ~np.isnan(f.v)
    ctx[~f.has_gps & has_motion] = TREADMILL
    sub = np.array([s or "" for s in sub_sports], dtype=object)[f.group]
    ctx[sub == "track"] = TRACK
    indoor = np.isin(sub, list(INDOOR_SUB_SPORTS))
    ctx[indoor] = TREADMILL
    return ctx
