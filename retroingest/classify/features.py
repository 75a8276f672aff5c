"""Per-record features for many activities at once (NumPy, no per-record Python loop).

Input is one frame of canonical records for several activities, sorted by (activity_id,
elapsed_s). Windows are centred and time-based (so "smart recording" files with 1–7 s gaps get
the same windows in seconds) and never cross an activity boundary: every window is a pair of
indices found with ``searchsorted`` on a global time axis where activities sit 10^7 s apart, and
means come from cumulative sums.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from retroingest.classify import kernels

# Speed from the displacement over a window instead of the mean of 1 s displacements, for noisy
# (position-derived) speeds at walking pace. Measured on development seeds: backward walking recall
# on GPX up, real-corpus false positives down (7.98 from 9.67 s/h); applied at running pace it cost
# false positives on a winding real TCX route, hence the walking-pace limit.
CHORD_SPEED = True
MAX_DT_S = 10.0      # a record stands for at most this much time (longer gaps are pauses)
UPHILL_COST_PER_GRADE = 4.5  # grade-adjusted speed: +4.5 % effort per +1 % grade (Minetti 2002 [E])

COLUMNS = ("activity_id", "elapsed_s", "lat_deg", "lon_deg", "altitude_m", "distance_m", "speed_mps",
           "cadence_spm", "heart_rate_bpm", "stance_time_ms")


@dataclass
class Features:
    """Arrays of length N (all activities concatenated) plus group bounds."""

    activity_id: np.ndarray
    starts: np.ndarray      # index of each activity's first record
    ends: np.ndarray        # index one past each activity's last record
    group: np.ndarray       # activity ordinal per record
    t: np.ndarray           # elapsed_s
    dt: np.ndarray          # seconds this record stands for (clipped)
    v: np.ndarray           # speed, 10 s centred mean (NaN = no speed)
    v_eff: np.ndarray       # grade-adjusted speed
    c: np.ndarray           # cadence spm, 8 s centred mean of valid values (NaN = none)
    hr: np.ndarray          # heart rate bpm (NaN = none)
    v_lag: np.ndarray       # trailing 110 s mean of v_eff (HR lags speed, tau ≈ 58 s)
    steady: np.ndarray      # speed within 12 % of its centred 60 s mean (not a burst or a transition)
    cadence_doubled: np.ndarray  # per record: the activity's cadence looked like strides/min and was doubled
    noisy_speed: np.ndarray      # per record: the activity's speed is noisy (positions), smoothed harder
    grade: np.ndarray       # rise over run, ±20 s window (0 when unknown)
    grade_known: np.ndarray
    gct: np.ndarray         # stance time ms, 8 s mean (NaN = none)
    has_gps: np.ndarray     # per record: a position fix exists nearby
    lat: np.ndarray
    lon: np.ndarray
    distance: np.ndarray
    grid: TimeGrid

    @property
    def n(self) -> int:
        return self.t.size


class TimeGrid:
    """Windows on a compact global time axis (activities 1000 s apart, 1 s cells).

    ``window(before, after)`` gives, for every record, the [lo, hi) indices of the records whose
    time lies in [t - before, t + after] (to the whole second), and ``mean(x, before, after)`` the
    mean of the non-NaN values of x there; both walk two pointers through each activity (records
    are sorted by time within an activity), so no window crosses an activity.
    """

    SPACING_S = 1000.0

    def __init__(self, t: np.ndarray, starts: np.ndarray, ends: np.ndarray, group: np.ndarray):
        self.starts = np.ascontiguousarray(starts, np.int64)
        self.ends = np.ascontiguousarray(ends, np.int64)
        self.tg = np.zeros(t.size)
        if t.size:
            t0 = t[starts]
            span = t[ends - 1] - t0
            offset = np.concatenate(([0.0], np.cumsum(span + self.SPACING_S)[:-1]))
            self.tg = np.ascontiguousarray(t - t0[group] + offset[group], np.float64)
        self.fl, self.ce = kernels.cells(self.tg)

    def window(self, before: int, after: int) -> tuple[np.ndarray, np.ndarray]:
        """[lo, hi) index bounds of the window [t - before, t + after] for every record."""
        return kernels.bounds(self.fl, self.ce, self.starts, self.ends, int(before), int(after))

    def mean(self, x: np.ndarray, before: int, after: int) -> np.ndarray:
        """Mean of the non-NaN values of x in the window [t - before, t + after] of every record."""
        return kernels.wmean_grid(np.ascontiguousarray(x, np.float64), self.fl, self.ce, self.starts, self.ends,
                                  int(before), int(after))


def _wmean(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Mean of the non-NaN values of x in each window (NaN when the window has none)."""
    return kernels.wmean(np.ascontiguousarray(x, dtype=np.float64), lo, hi)


def compute(records: pl.DataFrame) -> Features:
    """Features for a frame holding COLUMNS, sorted by activity_id then elapsed_s.

    One compiled pass per window (``kernels.features``); the steps, per activity:

    * dt: seconds a record stands for (time since the previous record, 0.2 to MAX_DT_S);
    * speed: the file's speed, else distance change over dt; outside 0-12 m/s is missing;
    * cadence below 30 spm is 0 ('no steps'); a GPX/TCX cadence read as steps/min that was really
      strides/min (most records at >= 2.2 m/s show 60-105 "spm", i.e. walking steps of 1.3 m or
      more, which nobody takes) is doubled; in an activity with a cadence channel (>= 30 % of
      records) a NULL cadence means no steps unless the athlete is clearly moving (>= 0.6 m/s:
      a sensor dropout, left missing);
    * HR outside 30-230 and stance time outside 100-450 ms are missing; optical-HR "cadence lock"
      (HR within 3 of the cadence or 2 of half of it for most of a ±10 s window) drops HR;
    * v: 10 s centred mean speed; where the activity's speed is noisy (mean |1 s change| >
      0.12 m/s: positions in trees, GPX speeds from positions) a 20 s mean, and below 2 m/s the
      straight-line displacement over 10 s (CHORD_SPEED), which position noise does not inflate;
    * c, stance time: 8 s means; altitude 10 s mean;
    * grade: altitude change over distance in a ±20 s window when it covers >= 20 m (0 otherwise,
      ``grade_known`` false), clipped to ±30 %; v_eff = v × (1 + 4.5 × uphill grade, ≤ 15 %);
    * v_lag: trailing 110 s mean of v_eff (HR lags speed, tau ≈ 58 s, Hunt 2015: a boxcar of
      2 tau has the same mean delay); steady: v within 12 % of its 60 s mean;
    * has_gps: a position fix in more than half of a ±30 s window.
    """
    def col(name: str) -> np.ndarray:
        if name not in records.columns:
            return np.full(records.height, np.nan)
        ser = records[name]
        if ser.dtype != pl.Float64:
            ser = ser.cast(pl.Float64)
        # nulls become NaN; always a writable copy, so that the compiled kernels see one array type
        return ser.to_numpy(writable=True)

    aid = records["activity_id"].to_numpy()
    n = aid.size
    change = np.flatnonzero(np.diff(aid) != 0) + 1 if n else np.array([], int)
    starts = np.concatenate(([0], change)).astype(np.int64) if n else np.zeros(0, np.int64)
    ends = np.concatenate((change, [n])).astype(np.int64) if n else np.zeros(0, np.int64)
    group = np.zeros(n, np.int64)
    if n:
        group[change] = 1
        group = np.cumsum(group)
    t = col("elapsed_s")
    grid = TimeGrid(t, starts, ends, group)
    dist = col("distance_m")
    lat, lon = col("lat_deg"), col("lon_deg")
    (dt, v, v_eff, c, hr, v_lag, steady, halved, noisy, grade, grade_known, gct_s, has_gps) = kernels.features(
        starts, ends, group, t, grid.fl, grid.ce, dist, col("speed_mps"), col("cadence_spm"), col("heart_rate_bpm"),
        col("stance_time_ms"), col("altitude_m"), lat, lon, MAX_DT_S, UPHILL_COST_PER_GRADE, CHORD_SPEED)
    return Features(aid, starts, ends, group, t, dt, v, v_eff, c, hr, v_lag, steady, halved, noisy, grade, grade_known,
                    gct_s, has_gps, lat, lon, dist, grid)
