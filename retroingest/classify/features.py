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
    """Window bounds on a compact global time axis (activities 1000 s apart, 1 s cells).

    ``window(before, after)`` gives, for every record, the [lo, hi) indices of the records whose
    time lies in [t - before, t + after] (to the whole second), with two array lookups into the
    cumulative record count per second, instead of a binary search per record.
    """

    SPACING_S = 1000.0

    def __init__(self, t: np.ndarray, starts: np.ndarray, ends: np.ndarray, group: np.ndarray):
        n = t.size
        self.tg = np.zeros(n)
        if n == 0:
            self.cum = np.zeros(1, np.int64)
            return
        t0 = t[starts]
        span = t[ends - 1] - t0
        offset = np.concatenate(([0.0], np.cumsum(span + self.SPACING_S)[:-1]))
        self.tg = t - t0[group] + offset[group]
        cells = np.floor(self.tg).astype(np.int64)
        self.m = int(cells[-1]) + 2
        self.searchsorted = self.m > 50_000_000 or np.any(np.diff(self.tg) < 0)
        if not self.searchsorted:
            self.cum = np.concatenate(([0], np.cumsum(np.bincount(cells, minlength=self.m))))

    def window(self, before: float, after: float) -> tuple[np.ndarray, np.ndarray]:
        """[lo, hi) index bounds of the window [t - before, t + after] for every record."""
        if self.tg.size == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        if self.searchsorted:
            return (np.searchsorted(self.tg, self.tg - before, side="left"),
                    np.searchsorted(self.tg, self.tg + after, side="right"))
        a = np.clip(np.ceil(self.tg - before).astype(np.int64), 0, self.m)
        b = np.clip(np.floor(self.tg + after).astype(np.int64) + 1, 0, self.m)
        return self.cum[a], self.cum[b]


def _wmean(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Mean of the non-NaN values of x in each window (NaN when the window has none)."""
    ok = ~np.isnan(x)
    cs = np.zeros(x.size + 1)
    if ok.all():
        np.cumsum(x, out=cs[1:])
        cnt = (hi - lo).astype(float)
    else:
        np.cumsum(np.where(ok, x, 0.0), out=cs[1:])
        cn = np.zeros(x.size + 1)
        np.cumsum(ok, out=cn[1:])
        cnt = cn[hi] - cn[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (cs[hi] - cs[lo]) / cnt
    return out


def _chord_speed(lat: np.ndarray, lon: np.ndarray, t: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Straight-line distance between the first and last record of each window over its duration, m/s."""
    n = lat.size
    if n == 0 or np.isnan(lat).all():
        return np.full(n, np.nan)
    a, b = lo, np.maximum(hi - 1, lo)
    lat0 = np.nanmedian(lat)
    ky = 111_195.0
    kx = ky * np.cos(np.radians(lat0))
    dy = (lat[b] - lat[a]) * ky
    dx = (lon[b] - lon[a]) * kx
    span = t[b] - t[a]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.sqrt(dx * dx + dy * dy) / span
    return np.where(span >= 5.0, out, np.nan)


def compute(records: pl.DataFrame) -> Features:
    """Features for a frame holding COLUMNS, sorted by activity_id then elapsed_s."""
    def col(name: str) -> np.ndarray:
        if name not in records.columns:
            return np.full(records.height, np.nan)
        ser = records[name]
        if ser.dtype != pl.Float64:
            ser = ser.cast(pl.Float64)
        return ser.to_numpy()  # nulls become NaN

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
    dt = np.diff(t, prepend=np.nan)
    dt[starts] = np.nan
    dt = np.clip(np.nan_to_num(dt, nan=1.0), 0.2, MAX_DT_S)

    dist = col("distance_m")
    speed = col("speed_mps")
    # speed from distance where the file has none
    with np.errstate(invalid="ignore", divide="ignore"):
        dd = np.diff(dist, prepend=np.nan)
        dd[starts] = np.nan
        v_from_d = np.where((dd >= 0) & (dt > 0), dd / dt, np.nan)
    speed = np.where(np.isnan(speed), v_from_d, speed)
    speed = np.where((speed < 0) | (speed > 12), np.nan, speed)

    cad = col("cadence_spm")
    cad = np.where(cad < 30, 0.0, cad)  # 0 = the pod/watch says 'no steps'
    # canonical records store 'no steps' as NULL: in an activity that has a cadence channel, a
    # NULL cadence means no steps (standing), not a missing sensor
    # ... unless the athlete is clearly moving (a sensor dropout: missing, not zero)
    lo5, hi5 = grid.window(5.0, 5.0)
    v_raw = _wmean(speed, lo5, hi5)
    # a GPX/TCX cadence read as steps/min that was really strides/min: most running-speed records
    # (>= 2.2 m/s) at 60-105 "spm" would be walking steps of 1.3 m or more, which nobody takes;
    # such an activity's cadence is doubled (the decoder's unit decision is not repeated here
    # otherwise)
    halved = np.zeros(n, bool)
    if n:
        with np.errstate(invalid="ignore"):
            fast = (v_raw >= 2.2) & ~np.isnan(cad)
            low = fast & (cad >= 60) & (cad <= 105)
        n_fast = np.add.reduceat(fast.astype(float), starts)
        n_low = np.add.reduceat(low.astype(float), starts)
        halved = ((n_fast >= 120) & (n_low > 0.6 * n_fast))[group]
        cad = np.where(halved, cad * 2.0, cad)
    if n:
        has = (~np.isnan(cad)).astype(float)
        share = np.add.reduceat(has, starts) / np.maximum(ends - starts, 1)
        channel = (share >= 0.3)[group]
        with np.errstate(invalid="ignore"):
            still = ~(v_raw >= 0.6)
        cad = np.where(channel & np.isnan(cad) & still, 0.0, cad)
    hr = col("heart_rate_bpm")
    hr = np.where((hr < 30) | (hr > 230), np.nan, hr)
    gct = col("stance_time_ms")
    gct = np.where((gct < 100) | (gct > 450), np.nan, gct)
    alt = col("altitude_m")
    lat, lon = col("lat_deg"), col("lon_deg")

    lo4, hi4 = grid.window(4.0, 4.0)
    has_gct = not np.isnan(gct).all()
    v, alt_s = v_raw, _wmean(alt, lo5, hi5)
    # noisy speed (positions in trees or city canyons, GPX speeds from positions): a 20 s mean
    noisy = np.zeros(n, bool)
    if n:
        jump = np.abs(np.diff(speed, prepend=np.nan))
        jump[starts] = np.nan
        jump_ok = np.where(np.isnan(jump), 0.0, jump)
        cnt = np.add.reduceat((~np.isnan(jump)).astype(float), starts)
        mean_jump = np.add.reduceat(jump_ok, starts) / np.maximum(cnt, 1)
        noisy = (mean_jump > 0.12)[group]
        if noisy.any():
            lo10, hi10 = grid.window(10.0, 10.0)
            v = np.where(noisy, _wmean(speed, lo10, hi10), v)
            # with positions: displacement over the window, not the mean of per-second
            # displacements (position noise makes every 1 s step look longer, most of all at
            # walking pace); falls back to the mean where the window has no fixes at both ends
            chord = _wmean(_chord_speed(lat, lon, t, lo5, hi5), lo5, hi5) if CHORD_SPEED else v
            # only at walking pace, where the noise bias dominates; at running pace a winding
            # route makes the chord shorter than the path
            v = np.where(noisy & ~np.isnan(chord) & CHORD_SPEED & (v < 2.0), chord, v)
    if has_gct:
        c, gct_s = _wmean(cad, lo4, hi4), _wmean(gct, lo4, hi4)
    else:
        c, gct_s = _wmean(cad, lo4, hi4), np.full(n, np.nan)
    # grade: altitude change over distance in a ±20 s window, only when it covers >= 20 m
    lo20, hi20 = grid.window(20.0, 20.0)
    hi20 = hi20 - 1
    dist_f = dist.copy()
    if np.isnan(dist_f).any():  # integrate speed where the file has no distance
        integ = np.cumsum(np.nan_to_num(speed) * dt)
        dist_f = np.where(np.isnan(dist_f), integ, dist_f)
    with np.errstate(invalid="ignore", divide="ignore"):
        run_m = dist_f[hi20] - dist_f[lo20]
        rise = alt_s[hi20] - alt_s[lo20]
        grade = np.where(run_m >= 20.0, rise / run_m, np.nan)
    grade_known = ~np.isnan(grade)
    grade = np.clip(np.nan_to_num(grade, nan=0.0), -0.3, 0.3)

    v_eff = v * (1.0 + UPHILL_COST_PER_GRADE * np.clip(grade, 0.0, 0.15))
    lo_lag, hi_lag = grid.window(110.0, 0.0)
    v_lag = _wmean(v_eff, lo_lag, hi_lag)

    lo60, hi60 = grid.window(30.0, 30.0)
    # optical HR "cadence lock": the wrist sensor follows the arm swing and reports the cadence
    # (or half of it) as heart rate; where it holds for most of a minute, HR is not HR
    with np.errstate(invalid="ignore"):
        locked = ((np.abs(hr - cad) <= 3.0) | (np.abs(hr - cad / 2.0) <= 2.0)) & (cad > 0)
    lo20s, hi20s = grid.window(10.0, 10.0)
    lock_share = _wmean(locked.astype(float), lo20s, hi20s)
    hr = np.where(lock_share > 0.5, np.nan, hr)
    v60 = _wmean(v, lo60, hi60)
    with np.errstate(invalid="ignore"):
        steady = np.abs(v - v60) < 0.12 * v60

    has_fix = (~np.isnan(lat)).astype(float)
    lo30, hi30 = lo60, hi60
    has_gps = _wmean(has_fix, lo30, hi30) > 0.5
    return Features(aid, starts, ends, group, t, dt, v, v_eff, c, hr, v_lag, steady, halved, noisy, grade, grade_known,
                    gct_s, has_gps, lat, lon, dist, grid)
