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

from retroingest.classify import kernels
from retroingest.classify.features import Features

CONTEXTS = ("unknown", "road", "track", "treadmill")
UNKNOWN, ROAD, TRACK, TREADMILL = range(4)
INDOOR_SUB_SPORTS = {"treadmill", "indoor_running", "indoor_walking", "virtual_activity"}
M_PER_DEG = 111_195.0
TRACK_MAX_RADIUS_M = 70.0   # radius of gyration over a 4-minute window
TRACK_MIN_COVER_M = 250.0   # distance covered in that window


def per_record(f: Features, sub_sports: list[str | None]) -> np.ndarray:
    """Context code per record (one compiled pass, ``kernels.context``)."""
    sub_code = np.array([1 if s == "track" else 2 if s in INDOOR_SUB_SPORTS else 0 for s in sub_sports], np.int64)
    a64 = np.ascontiguousarray
    return kernels.context(f.grid.starts, f.grid.ends, a64(f.group, np.int64), f.grid.fl, f.grid.ce, a64(f.lat, float),
                           a64(f.lon, float), a64(f.distance, float), a64(f.v, float), a64(f.dt, float),
                           a64(f.has_gps, bool), sub_code, M_PER_DEG, TRACK_MAX_RADIUS_M, TRACK_MIN_COVER_M)
