"""Small synthetic sessions for the classifier's own tests and benchmark.

This is not the simulator of issue 4 (``retroingest/simulate``); it is a compact, vectorised
generator of canonical record frames with a ground-truth label per record, so the classifier can
be tested before and independently of the simulator. Parameters follow section 8 of
``reference/biomech.md`` (speeds, cadences, HR gain 24 bpm per m/s and tau 58 s, GPS noise).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from retroingest.canonical import RECORD_SCHEMA

START = dt.datetime(2026, 5, 1, 7, 0, tzinfo=dt.timezone.utc)


@dataclass
class Athlete:
    """One simulated runner: forward easy pace/cadence and how they run backward."""

    run_speed: float = 3.0       # m/s, easy forward
    run_cadence: float = 165.0   # spm
    beta: float = 0.15           # cadence elasticity to speed (forward running)
    walk_speed: float = 1.35
    walk_cadence: float = 110.0
    br_speed_ratio: float = 0.75
    br_cadence_ratio: float = 1.06
    bw_speed_ratio: float = 0.7
    bw_cadence_ratio: float = 0.97
    hr_rest: float = 60.0
    hr_easy: float = 145.0
    hr_gain: float = 24.0        # bpm per m/s (Hunt 2015)
    gct_ms: float = 255.0

    @classmethod
    def draw(cls, rng: np.random.Generator) -> "Athlete":
        """A random athlete within the literature ranges (biomech.md section 8)."""
        return cls(
            run_speed=rng.uniform(2.6, 3.7), run_cadence=float(np.clip(rng.normal(166, 8), 150, 186)),
            beta=rng.uniform(0.08, 0.22), walk_speed=rng.uniform(1.2, 1.5),
            walk_cadence=rng.uniform(102, 118), br_speed_ratio=rng.uniform(0.68, 0.82),
            br_cadence_ratio=rng.uniform(1.0, 1.14), bw_speed_ratio=rng.uniform(0.6, 0.75),
            bw_cadence_ratio=rng.uniform(0.92, 1.03), hr_rest=rng.uniform(50, 70),
            hr_easy=rng.uniform(135, 158), hr_gain=float(np.clip(rng.normal(24, 6), 12, 40)),
            gct_ms=rng.uniform(225, 285),
        )


# a phase: (gait, direction, duration_s, speed factor, grade); speed factor is relative to the
# athlete's own forward speed of that gait, direction 'forward'/'backward'/None
Phase = tuple[str, str | None, float, float, float]


def plan(kind: str, rng: np.random.Generator) -> tuple[list[Phase], dict]:
    """Phases of one session of a named kind, plus options (gps, track geometry, altitude)."""
    u = rng.uniform
    P: list[Phase] = []
    opts = {"gps": True, "track": False}
    if kind == "track_intervals":
        opts["track"] = True
        P += [("stationary", None, u(20, 60), 0, 0), ("run", "forward", u(600, 900), 1.0, 0)]
        for _ in range(int(rng.integers(4, 9))):
            P += [("run", "backward", u(40, 180), u(0.95, 1.05), 0), ("walk", "forward", u(30, 60), 0.9, 0),
                  ("run", "forward", u(60, 120), u(0.75, 0.85), 0)]
        P += [("run", "forward", u(300, 600), 0.95, 0), ("stationary", None, u(10, 30), 0, 0)]
    elif kind == "long_backward":
        P += [("run", "forward", u(300, 600), 1.0, 0), ("run", "backward", u(900, 1800), 1.0, 0),
              ("walk", "forward", u(60, 120), 1.0, 0)]
    elif kind == "backward_walk_treadmill":
        opts["gps"] = False
        P += [("walk", "forward", u(120, 300), 1.0, 0)]
        for _ in range(int(rng.integers(3, 6))):
            P += [("walk", "backward", u(60, 240), 1.0, 0), ("walk", "forward", u(60, 120), 1.0, 0)]
    elif kind == "backward_walk_track":  # a few backward-walking reps between forward walks on a track
        opts["track"] = True
        P += [("walk", "forward", u(300, 600), 1.0, 0)]
        for _ in range(int(rng.integers(3, 6))):
            P += [("walk", "backward", u(60, 150), 1.0, 0), ("walk", "forward", u(90, 180), 1.0, 0)]
    elif kind == "run_walk":  # hard negative: run/walk intervals, walking while HR recovers
        for _ in range(int(rng.integers(4, 8))):
            P += [("run", "forward", u(240, 480), u(0.95, 1.1), 0), ("walk", "forward", u(60, 120), u(0.8, 1.0), 0)]
    elif kind == "forward_easy":
        P += [("run", "forward", u(1800, 3600), 1.0, 0)]
    elif kind == "recovery_jogs":  # hard negative: fast reps with slow forward recovery jogs
        P += [("run", "forward", u(600, 900), 1.0, 0)]
        for _ in range(int(rng.integers(5, 10))):
            P += [("run", "forward", u(60, 240), u(1.15, 1.35), 0), ("run", "forward", u(60, 180), u(0.68, 0.78), 0)]
        P += [("run", "forward", u(300, 600), 0.95, 0)]
    elif kind == "hills":  # hard negative: uphill running shortens steps, altitude rises
        P += [("run", "forward", u(600, 900), 1.0, 0)]
        for _ in range(int(rng.integers(3, 7))):
            g = u(0.04, 0.12)
            P += [("run", "forward", u(60, 240), 1.0 - 3.5 * g, g), ("run", "forward", u(60, 200), 1.05, -g * u(0.5, 1))]
        P += [("run", "forward", u(300, 600), 1.0, 0)]
    elif kind == "trail_stops":
        P += [("run", "forward", u(300, 600), 0.9, 0.02)]
        for _ in range(int(rng.integers(3, 7))):
            P += [("stationary", None, u(10, 120), 0, 0), ("walk", "forward", u(30, 120), 0.9, u(0.05, 0.15)),
                  ("run", "forward", u(120, 600), u(0.8, 1.0), u(-0.05, 0.05))]
    elif kind == "treadmill_forward":
        opts["gps"] = False
        P += [("walk", "forward", u(120, 300), 1.0, 0), ("run", "forward", u(1200, 2400), u(0.9, 1.1), 0),
              ("walk", "forward", u(120, 300), 1.0, 0)]
    elif kind == "gps_drift_standing":
        P += [("stationary", None, u(300, 900), 0, 0), ("run", "forward", u(600, 1200), 1.0, 0),
              ("stationary", None, u(300, 900), 0, 0)]
    elif kind == "strides":  # hard negative: short fast strides with walk-backs
        P += [("run", "forward", u(900, 1200), 1.0, 0)]
        for _ in range(int(rng.integers(4, 9))):
            P += [("run", "forward", u(15, 25), u(1.4, 1.7), 0), ("walk", "forward", u(40, 80), 0.9, 0)]
        P += [("run", "forward", u(300, 600), 0.95, 0)]
    else:
        raise ValueError(f"unknown session kind {kind!r}")
    return P, opts


KINDS = ("track_intervals", "long_backward", "backward_walk_treadmill", "forward_easy", "recovery_jogs",
         "hills", "trail_stops", "treadmill_forward", "gps_drift_standing", "strides", "backward_walk_track",
         "run_walk")
NEGATIVE_KINDS = ("forward_easy", "recovery_jogs", "hills", "trail_stops", "treadmill_forward",
                  "gps_drift_standing", "strides", "run_walk")


def session(kind: str, seed: int, athlete: Athlete | None = None, *, drop_cadence: bool = False,
            drop_hr: bool = False, sample_s: float = 1.0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(records in RECORD_SCHEMA, truth with columns elapsed_s, gait, direction) for one session."""
    rng = np.random.default_rng(seed)
    a = athlete or Athlete.draw(rng)
    phases, opts = plan(kind, rng)
    dur = np.array([p[2] for p in phases])
    n = int(dur.sum())
    idx = np.repeat(np.arange(len(phases)), np.round(dur).astype(int))[:n]
    n = idx.size
    gait = np.array([p[0] for p in phases], dtype=object)[idx]
    direc = np.array([p[1] for p in phases], dtype=object)[idx]
    fac = np.array([p[3] for p in phases])[idx]
    grade = np.array([p[4] for p in phases])[idx]
    back = direc == "backward"
    run, walk, stat = gait == "run", gait == "walk", gait == "stationary"

    # true speed and cadence: forward on the athlete's locus, backward shortened steps
    v = np.where(run, a.run_speed * fac, np.where(walk, a.walk_speed * fac, 0.0))
    v = np.where(run & back, a.run_speed * a.br_speed_ratio * fac, v)
    v = np.where(walk & back, a.walk_speed * a.bw_speed_ratio * fac, v)
    c = np.where(run, a.run_cadence * np.power(np.maximum(v, 0.1) / a.run_speed, a.beta), 0.0)
    c = np.where(walk, a.walk_cadence * np.power(np.maximum(v, 0.1) / a.walk_speed, 0.45), c)
    c = np.where(run & back, a.run_cadence * a.br_cadence_ratio * fac ** 0.1, c)
    c = np.where(walk & back, a.walk_cadence * a.bw_cadence_ratio, c)
    c = np.where(run & (grade > 0), a.run_cadence * (1 + 0.2 * grade), c)  # uphill: cadence kept
    # within-bout wander and a 1.5 s speed latency
    wander = np.cumsum(rng.normal(0, 0.01, n)); wander -= np.convolve(wander, np.ones(120) / 120, "same")
    v_true = np.maximum(v * (1 + wander), 0)
    v_meas = _lag(v_true, 1.5) + rng.normal(0, rng.uniform(0.08, 0.25), n)
    v_meas = np.where(stat, np.abs(rng.normal(0, 0.2, n)), np.maximum(v_meas, 0))
    cad = np.where(stat, 0.0, c * (1 + rng.normal(0, 0.012, n)))
    cad = np.round(cad / 2) * 2  # integer strides/min, no fractional cadence
    # HR: energy-equivalent speed (backward costs ~1.35x per distance) through a 58 s lag
    v_eq = np.where(back, v_true * 1.35, v_true) * (1 + 4.5 * np.maximum(grade, 0))
    hr_t = np.where(run | walk, a.hr_easy + a.hr_gain * (v_eq - a.run_speed), a.hr_rest + 20)
    hr_t = np.where(walk, a.hr_rest + 35 + 30 * (v_eq - a.walk_speed), hr_t)
    hr = _lag(hr_t, 58.0) + rng.normal(0, 1.5, n)
    alt = 100 + np.cumsum(v_true * grade) + rng.normal(0, 0.3, n)
    dist = np.cumsum(v_true)
    gct = np.where(run, a.gct_ms * (np.maximum(v_true, 0.5) / a.run_speed) ** -0.6, np.nan)
    gct = np.where(run & back, gct * 0.75, gct) * (1 + rng.normal(0, 0.03, n))
    if opts["gps"]:
        lat, lon = _positions(dist, opts["track"], rng)
    else:
        lat = lon = np.full(n, np.nan)
    t = np.arange(n, dtype=float)
    keep = np.ones(n, bool)
    if sample_s > 1:  # smart recording: irregular 1-7 s gaps
        gaps = rng.integers(1, int(2 * sample_s), n)
        keep = np.zeros(n, bool); keep[np.cumsum(gaps)[np.cumsum(gaps) < n]] = True; keep[0] = True
    ts = [START + dt.timedelta(seconds=float(s)) for s in t[keep]]
    df = pl.DataFrame({
        "ts": ts, "lat_deg": lat[keep], "lon_deg": lon[keep], "altitude_m": alt[keep],
        "distance_m": dist[keep], "speed_mps": v_meas[keep],
        "cadence_spm": None if drop_cadence else np.where(cad[keep] > 0, cad[keep], np.nan),
        "heart_rate_bpm": None if drop_hr else np.round(hr[keep]),
        "stance_time_ms": gct[keep],
    }, nan_to_null=True)
    df = _conform(df)
    truth = pl.DataFrame({"elapsed_s": t[keep], "gait": gait[keep].astype(str),
                          "direction": [None if d is None else str(d) for d in direc[keep]]})
    return df, truth


def _lag(x: np.ndarray, tau: float) -> np.ndarray:
    """First-order lag (exponential filter) with time constant tau seconds at 1 Hz."""
    alpha = 1.0 - np.exp(-1.0 / tau)
    out = np.empty_like(x)
    acc = x[0]
    for i, xi in enumerate(x):  # simulation helper; the classifier itself has no per-record loop
        acc += alpha * (xi - acc)
        out[i] = acc
    return out


def _positions(dist: np.ndarray, track: bool, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Lat/lon along a 400 m oval (track) or a wandering road, with ~3 m GPS noise."""
    if track:
        s = np.mod(dist, 400.0)
        r, straight = 36.5, 84.39
        x = np.where(s < straight, s, 0.0); y = np.zeros_like(s)
        seg2 = (s >= straight) & (s < straight + np.pi * r)
        th = (s - straight) / r
        x = np.where(seg2, straight + r * np.sin(th), x); y = np.where(seg2, r - r * np.cos(th), y)
        seg3 = (s >= straight + np.pi * r) & (s < 2 * straight + np.pi * r)
        x = np.where(seg3, straight - (s - straight - np.pi * r), x); y = np.where(seg3, 2 * r, y)
        seg4 = s >= 2 * straight + np.pi * r
        th4 = (s - 2 * straight - np.pi * r) / r
        x = np.where(seg4, -r * np.sin(th4), x); y = np.where(seg4, r + r * np.cos(th4), y)
    else:
        heading = np.cumsum(rng.normal(0, 0.02, dist.size))
        step = np.diff(dist, prepend=0.0)
        x = np.cumsum(step * np.cos(heading)); y = np.cumsum(step * np.sin(heading))
    x = x + rng.normal(0, 2.0, x.size); y = y + rng.normal(0, 2.0, y.size)
    lat = 47.0 + y / 111_195.0
    lon = 8.0 + x / (111_195.0 * np.cos(np.radians(47.0)))
    return lat, lon


def _conform(df: pl.DataFrame) -> pl.DataFrame:
    from retroingest.canonical import conform
    return conform(df)


__all__ = ["Athlete", "KINDS", "NEGATIVE_KINDS", "session", "RECORD_SCHEMA"]
