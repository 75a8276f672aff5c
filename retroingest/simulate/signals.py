"""From a planned session to per-second physical truth and what a watch would record.

Everything runs on a 1 s grid with NumPy (no per-record loops). The recorded channels carry the
device artefacts of biomech.md section 6: GPS position noise as a slow random walk, Doppler speed
noise and 1-2 s latency, a first-order HR lag with the backward surcharge, cadence quantisation,
running dynamics that may be garbage while running backward, dropouts and missing stretches.
The sampling mask (1 s or "smart recording") is applied by the writers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from retroingest.simulate.athletes import Athlete
from retroingest.simulate.scenarios import Session

GAITS = ("stationary", "walk", "run")
DIRECTIONS = ("", "forward", "backward")

# 400 m standard track, lane 1 measured 0.3 m from the kerb: 2 × 84.39 + 2π × 36.8 ≈ 400 m.
TRACK_STRAIGHT_M = 84.39
TRACK_RADIUS_M = 36.8
TRACK_LAP_M = 2 * TRACK_STRAIGHT_M + 2 * np.pi * TRACK_RADIUS_M
M_PER_DEG_LAT = 111_320.0


# ----------------------------------------------------------------------------- signal helpers

def exp_kernel(tau_s: float) -> np.ndarray:
    """Causal first-order (exponential) impulse response on a 1 s grid, summing to 1."""
    k = np.exp(-np.arange(int(6 * tau_s) + 2) / max(tau_s, 1e-3))
    return k / k.sum()


def lag(x: np.ndarray, tau_s: float, x0: float | None = None) -> np.ndarray:
    """First-order lag y' = (x − y)/τ by convolution; starts from ``x0`` (default x[0])."""
    k = exp_kernel(tau_s)
    pad = np.full(k.size - 1, x[0] if x0 is None else x0)
    return np.convolve(np.concatenate([pad, x]), k)[k.size - 1: k.size - 1 + x.size]


def ar_noise(rng: np.random.Generator, n: int, tau_s: float, sd: float) -> np.ndarray:
    """Coloured noise: white noise through a first-order filter, scaled to standard deviation sd."""
    if sd == 0 or n == 0:
        return np.zeros(n)
    k = np.exp(-np.arange(int(6 * tau_s) + 2) / max(tau_s, 1e-3))
    w = rng.normal(size=n + k.size - 1)
    y = np.convolve(w, k, mode="valid")
    return y * (sd / np.sqrt(np.sum(k**2)))


def box(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average with edge padding (acceleration ramps between phases)."""
    if width <= 1:
        return x.copy()
    left, right = width // 2, width - 1 - width // 2
    xp = np.concatenate([np.full(left, x[0]), x, np.full(right, x[-1])])
    return np.convolve(xp, np.ones(width) / width, mode="valid")


def gps_error(rng: np.random.Generator, n: int, tau_s: float, sd_m: float) -> np.ndarray:
    """GPS position error (m) on one axis: a slow random walk (AR(1), τ = tau_s) that the receiver's
    filter smooths further (4 s lag), so 1 s increments stay at 0.05-0.3 m/s as on real watches."""
    e = lag(ar_noise(rng, n, tau_s, 1.0), 4.0)
    sd = e.std()
    return e * (sd_m / sd) if sd > 0 else e


def stretches(rng: np.random.Generator, n: int, count: int, lo_s: int, hi_s: int) -> np.ndarray:
    """Boolean mask with ``count`` random stretches of lo_s..hi_s seconds set."""
    mask = np.zeros(n, dtype=bool)
    if n < 10 or count <= 0:
        return mask
    starts = rng.integers(0, n, size=count)
    lens = rng.integers(lo_s, hi_s + 1, size=count)
    idx = np.arange(n)
    hit = (idx[None, :] >= starts[:, None]) & (idx[None, :] < (starts + lens)[:, None])
    return hit.any(axis=0)


def track_xy(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position (m) on a 400 m track for path length p (m), counter-clockwise from the home straight."""
    L, r = TRACK_STRAIGHT_M, TRACK_RADIUS_M
    s = np.mod(p, TRACK_LAP_M)
    bend = np.pi * r
    x = np.empty_like(s)
    y = np.empty_like(s)
    a = s < L                                   # home straight, heading +x at y = −r
    x[a], y[a] = -L / 2 + s[a], -r
    b = (s >= L) & (s < L + bend)               # right bend
    th = (s[b] - L) / r - np.pi / 2
    x[b], y[b] = L / 2 + r * np.cos(th), r * np.sin(th)
    c = (s >= L + bend) & (s < 2 * L + bend)    # back straight, heading −x at y = +r
    x[c], y[c] = L / 2 - (s[c] - L - bend), r
    d = s >= 2 * L + bend                       # left bend
    th = (s[d] - 2 * L - bend) / r + np.pi / 2
    x[d], y[d] = -L / 2 + r * np.cos(th), r * np.sin(th)
    return x, y


def road_xy(rng: np.random.Generator, p: np.ndarray, wiggle: float) -> tuple[np.ndarray, np.ndarray]:
    """Position (m) along a random smooth road (heading random walk, ``wiggle`` rad/√m)."""
    lo, hi = int(np.floor(p.min())) - 2, int(np.ceil(p.max())) + 2
    grid = np.arange(lo, hi + 1, dtype=float)
    heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, wiggle, grid.size))
    heading = box(heading, 25)
    x = np.cumsum(np.cos(heading))
    y = np.cumsum(np.sin(heading))
    return np.interp(p, grid, x), np.interp(p, grid, y)


# ----------------------------------------------------------------------------- device config

@dataclass
class DeviceConfig:
    """Per-file recording conditions."""

    fmt: str                       # fit | gpx
    sampling: str                  # 1s | smart
    has_gps: bool
    has_hr: bool
    has_cadence: bool
    has_dynamics: bool
    weight_in_file: bool
    auto_pause: bool
    gps_pos_sd_m: float
    gps_pos_tau_s: float
    gps_speed_sd: float
    gps_jitter_m: float            # white per-fix position noise (m), on top of the slow error
    speed_lag_s: int
    pod_calibration: float
    pod_backward_factor: float
    hr_noise_sd: float
    gpx_cadence_convention: str = ""   # strides_per_min | steps_per_min (GPX only)
    hr_lock: tuple[float, int] | None = None   # cadence lock: (start as a fraction of the session, length s)
    dropouts: bool = True          # False: no missing stretches or record gaps (unit tests)


def draw_config(rng: np.random.Generator, athlete: Athlete, session: Session, fmt: str) -> DeviceConfig:
    """Recording conditions for one file: GPS quality, sampling mode, missing channels."""
    treadmill = session.venue == "treadmill"
    trail = session.venue == "trail"
    return DeviceConfig(
        fmt=fmt,
        sampling="smart" if rng.uniform() < 0.3 else "1s",
        has_gps=not treadmill,
        has_hr=treadmill or rng.uniform() > 0.08,
        has_cadence=treadmill or rng.uniform() > 0.08,
        has_dynamics=athlete.has_dynamics and fmt == "fit",
        weight_in_file=fmt == "fit" and rng.uniform() < 0.75,
        auto_pause=(not treadmill) and rng.uniform() < 0.2,
        gps_pos_sd_m=float(rng.uniform(3.0, 7.0) if trail else rng.uniform(1.0, 4.0)),
        gps_pos_tau_s=float(rng.uniform(15, 90)),
        gps_speed_sd=float(rng.uniform(0.1, 0.35) if trail else rng.uniform(0.03, 0.18)),
        gps_jitter_m=float(rng.uniform(0.4, 1.2) if trail else rng.uniform(0.1, 0.6)),
        speed_lag_s=int(rng.integers(0, 3)),
        pod_calibration=float(rng.uniform(0.95, 1.05)),
        pod_backward_factor=float(rng.uniform(0.85, 1.15)),   # foot-pod algorithms assume forward
        hr_noise_sd=float(rng.uniform(0.5, 1.5)),
        gpx_cadence_convention=(str(rng.choice(["strides_per_min", "steps_per_min"])) if fmt == "gpx" else ""),
    )


# ----------------------------------------------------------------------------- rendering

@dataclass
class Rendered:
    """Per-second truth and recorded channels (NaN = not recorded) on a 1 s grid of n seconds."""

    n: int
    gait: np.ndarray               # int8 index into GAITS
    direction: np.ndarray          # int8 index into DIRECTIONS
    keep: np.ndarray               # bool: a record exists at this second
    lat: np.ndarray
    lon: np.ndarray
    alt: np.ndarray
    dist: np.ndarray
    speed: np.ndarray
    hr: np.ndarray
    cadence_spm: np.ndarray
    vo_mm: np.ndarray
    gct_ms: np.ndarray
    vr_pct: np.ndarray
    step_mm: np.ndarray
    true_speed: np.ndarray
    true_step_m: np.ndarray
    lap_starts: np.ndarray         # second indices where laps begin (first is 0)
    lap_triggers: list[str] = field(default_factory=list)
    lap_intensity: list[str] = field(default_factory=list)


def _per_phase(session: Session, attr: str) -> np.ndarray:
    return np.array([getattr(p, attr) for p in session.phases])


def render(session: Session, a: Athlete, cfg: DeviceConfig, rng: np.random.Generator) -> Rendered:
    """Render a session into per-second truth and device channels (vectorised over seconds)."""
    dur = _per_phase(session, "duration_s").astype(int)
    dur = np.maximum(dur, 1)
    n = int(dur.sum())
    phase_of = np.repeat(np.arange(dur.size), dur)
    gait = np.array([GAITS.index(p.gait) for p in session.phases], dtype=np.int8)[phase_of]
    direction = np.array([DIRECTIONS.index(p.direction) for p in session.phases], dtype=np.int8)[phase_of]
    target = _per_phase(session, "speed").astype(float)[phase_of]
    grade = _per_phase(session, "grade").astype(float)[phase_of]
    sign = _per_phase(session, "sign").astype(float)[phase_of]
    moving = gait > 0
    run = gait == 2
    backward = direction == 2
    treadmill = session.venue == "treadmill"

    # --- true speed: target, slow within-bout variation, acceleration ramps at the switches
    var_sd = np.where(gait == 1, 0.04, 0.03) * (0.2 if treadmill else 1.0)
    speed = target * (1 + ar_noise(rng, n, 30, 1.0) * var_sd)
    if not treadmill:
        # outdoor forward running has brief slowdowns (crossings, turns, a drink): 5-20 s at
        # 0.5-0.85 × speed while cadence drops less, so steps shorten as they do in real runs
        # (corpus runs: ~9 % of records below 0.85 × the median step)
        slow = np.ones(n)
        fwd_run = run & ~backward
        for _ in range(int(rng.poisson(fwd_run.sum() / 180))):
            k = int(rng.integers(0, n))
            if fwd_run[k]:
                slow[k: k + int(rng.integers(5, 21))] = rng.uniform(0.5, 0.85)
        slow = np.where(fwd_run, slow, 1.0)
        speed = speed * slow
    else:
        slow = np.ones(n)
    speed = np.clip(box(speed, 7 if treadmill else 5), 0.0, None)

    # --- true cadence: each phase's cadence from the athlete's laws, following speed weakly
    phase_cad = np.array([
        p.cadence_spm if p.cadence_spm is not None
        else float(a.cadence_spm(p.gait, p.direction or "forward", np.array([max(p.speed, 0.1)]))[0])
        for p in session.phases
    ])[phase_of]
    exp_ = np.where(run, a.run_cad_exp, a.walk_cad_exp)
    ratio = np.where(target > 0, speed / np.maximum(target, 0.1), 0.0)
    ratio = ratio / np.sqrt(box(slow, 5))      # cadence keeps half the slowdown (in log terms)
    cad = np.where(moving, phase_cad * np.clip(ratio, 0.3, 2.0) ** exp_, 0.0)
    # an unfamiliar gait is less regular: backward cadence wanders more (biomech §8, E)
    # slow wander (terrain, fatigue; τ 60 s) + short-term jitter; calibrated on the corpus runs
    # (within-run cadence SD ≈ 4-7 spm, 1 s differences ≈ 2 spm)
    cad = cad * (1 + ar_noise(rng, n, 60, 0.015))
    cad = box(cad, 3) + ar_noise(rng, n, 5, 1.2) * np.where(backward, 1.8, 1.0) + rng.normal(0, 1.5, n)
    cad = np.where(box(moving.astype(float), 3) > 0.01, np.clip(cad, 0, None), 0.0)
    true_step = np.where(cad > 20, speed / np.maximum(cad, 1) * 60, np.nan)

    # --- heart rate: steady state ∝ net VO2 (ACSM), backward surcharge, drift, first-order lag
    s_mpm = speed * 60
    vo2_run = 0.2 * s_mpm * np.maximum(1 + 4.5 * grade, 0.45)
    vo2_walk = 0.1 * s_mpm * np.maximum(1 + 18 * grade, 0.5)
    vo2 = np.where(run, vo2_run, np.where(gait == 1, vo2_walk, 0.0))
    ref = 0.2 * a.fr_speed * 60
    stand_base = a.hr_rest + 10
    hr_ss = stand_base + (a.hr_easy - stand_base) * vo2 / ref + session.hr_day_offset_bpm
    hr_ss += np.where(backward & run, a.br_hr_surcharge, 0.0) + np.where(backward & (gait == 1), a.bw_hr_surcharge, 0.0)
    hr_ss += np.cumsum(moving) / 60.0 * rng.uniform(0.05, 0.25)     # cardiac drift, bpm per moving minute
    hr_ss = np.minimum(hr_ss, a.hr_max)
    hr = lag(hr_ss, a.hr_tau_s, x0=a.hr_rest + 15) + ar_noise(rng, n, 6, cfg.hr_noise_sd)

    # --- path, position and altitude
    p = np.cumsum(speed * sign)
    if session.venue == "track":
        x, y = track_xy(p)
    elif session.venue in ("road", "trail"):
        x, y = road_xy(rng, p, 0.02 if session.venue == "road" else 0.06)
    else:
        x = y = np.zeros(n)
    alt_true = rng.uniform(0, 900) + (0.0 if treadmill else np.cumsum(speed * grade))
    alt = alt_true + ar_noise(rng, n, 20, 0.3)
    if cfg.has_gps:
        x = x + gps_error(rng, n, cfg.gps_pos_tau_s, cfg.gps_pos_sd_m) + rng.normal(0, cfg.gps_jitter_m, n)
        y = y + gps_error(rng, n, cfg.gps_pos_tau_s, cfg.gps_pos_sd_m) + rng.normal(0, cfg.gps_jitter_m, n)
        lat0, lon0 = a.home
        lat0 += rng.uniform(-0.03, 0.03)
        lon0 += rng.uniform(-0.03, 0.03)
        lat = lat0 + y / M_PER_DEG_LAT
        lon = lon0 + x / (M_PER_DEG_LAT * np.cos(np.radians(lat0)))
        gps_out = stretches(rng, n, int(rng.integers(1, 4)) if rng.uniform() < 0.3 else 0, 10, 60)
        gps_out &= cfg.dropouts
        gps_out[0] = gps_out[-1] = False     # a GPX track starts and ends with a fix
        lat[gps_out] = np.nan
        lon[gps_out] = np.nan
    else:
        lat = np.full(n, np.nan)
        lon = np.full(n, np.nan)

    # --- recorded speed: Doppler GPS (noise, latency; apparent speed while standing) or foot pod
    if cfg.has_gps:
        lagged = np.concatenate([np.full(cfg.speed_lag_s, speed[0]), speed])[:n]
        n1 = ar_noise(rng, n, 6, cfg.gps_speed_sd)
        n2 = ar_noise(rng, n, 6, cfg.gps_speed_sd)
        rec_speed = np.sqrt((lagged + n1) ** 2 + n2**2)
    else:
        rec_speed = speed * cfg.pod_calibration * np.where(backward, cfg.pod_backward_factor, 1.0)
        rec_speed = np.clip(rec_speed + ar_noise(rng, n, 5, 0.03), 0, None)
        rec_speed = np.where(moving | (speed > 0.05), rec_speed, 0.0)
    dist = np.concatenate([[0.0], np.cumsum(rec_speed[1:])])

    # --- recorded cadence and HR with missing stretches
    rec_cad = cad.copy()
    if not cfg.has_cadence:
        rec_cad[:] = np.nan
    elif rng.uniform() < 0.2 and cfg.dropouts:
        rec_cad[stretches(rng, n, int(rng.integers(1, 4)), 20, 240)] = np.nan
    if cfg.hr_lock is not None:
        lo = int(cfg.hr_lock[0] * n)
        locked = np.zeros(n, dtype=bool)
        locked[lo: lo + cfg.hr_lock[1]] = True
        locked &= run & (cad > 120)
        hr = np.where(locked, cad + rng.normal(0, 1.0, n), hr)
    if not cfg.has_hr:
        hr[:] = np.nan
    elif rng.uniform() < 0.3 and cfg.dropouts:
        hr[stretches(rng, n, int(rng.integers(1, 4)), 20, 300)] = np.nan

    # --- running dynamics (only while running, only on devices that record them)
    nan = np.full(n, np.nan)
    vo = gct = vr = step_mm = nan
    if cfg.has_dynamics:
        dev_step = np.where(rec_cad > 20, rec_speed / np.maximum(rec_cad, 1) * 60, np.nan)
        on = run & (speed > 1.0) & np.isfinite(rec_cad)
        v_rel = np.maximum(speed, 0.5) / a.fr_speed
        vo = a.vo_fr_mm * v_rel**0.1 + ar_noise(rng, n, 10, 2.5)
        gct = a.gct_fr_ms * v_rel**-0.5 + ar_noise(rng, n, 10, 5.0)
        if a.br_dynamics_mode == "plausible":
            vo = np.where(backward, vo * a.br_vo_factor, vo)
            gct = np.where(backward, gct * a.br_gct_factor, gct)
        elif a.br_dynamics_mode == "garbage":
            vo = np.where(backward, rng.normal(a.vo_fr_mm, 25, n), vo)
            gct = np.where(backward, rng.normal(a.gct_fr_ms, 50, n), gct)
        else:
            on = on & ~backward
        vo = np.where(on, np.clip(vo, 30, 200), np.nan)
        gct = np.where(on, np.clip(gct, 120, 450), np.nan)
        step_mm = np.where(on, dev_step * 1000, np.nan)
        vr = np.where(on, vo / step_mm * 100, np.nan)

    # --- which seconds have a record: sampling mode, dropouts, auto-pause
    keep = np.ones(n, dtype=bool)
    if cfg.sampling == "smart":
        gaps = rng.choice(np.arange(1, 9), size=n, p=[.25, .2, .15, .12, .1, .08, .06, .04])
        idx = np.cumsum(gaps)
        keep = np.zeros(n, dtype=bool)
        keep[idx[idx < n]] = True
        change = np.flatnonzero((np.abs(np.diff(speed)) > 0.25) | (np.diff(gait) != 0)) + 1
        keep[change] = True
    if rng.uniform() < 0.3 and cfg.dropouts:
        keep &= ~stretches(rng, n, int(rng.integers(1, 3)), 5, 40)
    if cfg.auto_pause:
        keep &= ~((gait == 0) & (speed < 0.2))
    keep[0] = keep[-1] = True

    # --- laps: manual presses at phase starts, plus distance auto-laps
    phase_start = np.concatenate([[0], np.cumsum(dur)[:-1]])
    manual = phase_start[[p.lap_start and session.manual_laps for p in session.phases]]
    auto = np.array([], dtype=int)
    if session.auto_lap_m:
        marks = np.arange(session.auto_lap_m, dist[-1], session.auto_lap_m)
        auto = np.searchsorted(dist, marks)
    starts = np.unique(np.concatenate([[0], manual, auto]).astype(int))
    starts = starts[starts < n - 1]
    triggers = ["manual" if s in set(manual.tolist()) else "distance" for s in starts]
    triggers[0] = "manual" if len(manual) and manual[0] == 0 else "session_end" if len(starts) == 1 else triggers[0]
    intensity = [session.phases[int(phase_of[s])].intensity for s in starts]

    return Rendered(
        n=n, gait=gait, direction=direction, keep=keep, lat=lat, lon=lon, alt=alt, dist=dist,
        speed=rec_speed, hr=hr, cadence_spm=rec_cad, vo_mm=vo, gct_ms=gct, vr_pct=vr, step_mm=step_mm,
        true_speed=speed, true_step_m=true_step, lap_starts=starts, lap_triggers=triggers,
        lap_intensity=intensity,
    )
