"""Session scenarios: each builds a list of :class:`Phase` (the ground truth) for one athlete.

A phase is one gait held for a while: its gait and direction are the truth labels, its target
speed comes from the athlete's own gait laws (athletes.py). Scenarios are either *backward*
sessions (they contain backward bouts) or *negative* sessions (forward only, built from the hard
negatives of DOMAIN.md). ``slow_stroll`` is a separate kind: slow forward walking is nearly
indistinguishable from backward walking without an IMU, so it is reported apart.

Loops here run over phases (a few dozen per session), never over records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from retroingest.simulate.athletes import Athlete


@dataclass
class Phase:
    """One stretch of a single gait. ``sign`` −1 walks back along the path (out-and-back)."""

    gait: str                     # stationary | walk | run
    direction: str                # forward | backward | '' (stationary)
    duration_s: int
    speed: float                  # target true speed, m/s
    grade: float = 0.0            # rise over run along the direction of travel
    sign: int = 1
    cadence_spm: float | None = None  # override the athlete's cadence law (drills, uphill)
    lap_start: bool = False       # the athlete pressed lap at the start of this phase
    intensity: str = "active"


@dataclass
class Session:
    """A planned session: venue decides geometry (track, road, trail, treadmill)."""

    scenario: str
    kind: str                     # backward | negative | stroll
    venue: str                    # track | road | trail | treadmill
    sport: str                    # running | walking
    sub_sport: str
    phases: list[Phase] = field(default_factory=list)
    auto_lap_m: float | None = 1000.0
    manual_laps: bool = True      # False: the athlete never pressed lap (only auto-laps remain)
    hr_day_offset_bpm: float = 0.0   # today's HR at any effort against the athlete's usual day


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _secs(rng: np.random.Generator, lo: float, hi: float) -> int:
    return int(round(rng.uniform(lo, hi)))


def _fr(a: Athlete, rng, lo_min, hi_min, f_lo=0.9, f_hi=1.02, **kw) -> Phase:
    return Phase("run", "forward", _secs(rng, 60 * lo_min, 60 * hi_min), a.fr_speed * _u(rng, f_lo, f_hi), **kw)


def _fw(a: Athlete, rng, lo_s, hi_s, f_lo=0.9, f_hi=1.1, **kw) -> Phase:
    return Phase("walk", "forward", _secs(rng, lo_s, hi_s), a.fw_speed * _u(rng, f_lo, f_hi), **kw)


def _stand(rng, lo_s, hi_s, **kw) -> Phase:
    return Phase("stationary", "", _secs(rng, lo_s, hi_s), 0.0, **kw)


def _slow_jog(a: Athlete, rng, dur_s: int, **kw) -> Phase:
    """The hard negative of DOMAIN.md: forward at 2.0-2.4 m/s with the athlete's own cadence."""
    return Phase("run", "forward", dur_s, _u(rng, 2.0, 2.4), **kw)


def _road_sub(rng) -> str:
    return str(rng.choice(["road", "generic", "street"]))


# ----------------------------------------------------------------------------- backward sessions

def track_intervals(a: Athlete, rng: np.random.Generator) -> Session:
    """Forward warm-up → backward reps on a 400 m track (laps or out-and-back) → cool-down."""
    s = Session("track_intervals", "backward", "track", "running",
                "track" if rng.uniform() < 0.6 else "generic", auto_lap_m=None)
    s.phases.append(_fr(a, rng, 6, 20, lap_start=True, intensity="warmup"))
    if rng.uniform() < 0.4:
        s.phases.append(_stand(rng, 20, 120))
    mode = "laps" if rng.uniform() < 0.55 else "out_and_back"
    walk_reps = rng.uniform() < 0.2
    for _ in range(int(rng.integers(4, 13))):
        if walk_reps:
            v = a.bw_speed * _u(rng, 0.85, 1.15)
            gait = "walk"
        else:
            v = a.br_speed * _u(rng, 0.9, 1.1)
            gait = "run"
        if mode == "laps":
            dist = float(rng.choice([100.0, 200.0, 200.0, 300.0, 400.0]))
            s.phases.append(Phase(gait, "backward", int(round(dist / v)), v, lap_start=True, intensity="active"))
            r = rng.uniform()
            if r < 0.35:
                s.phases.append(_stand(rng, 30, 120, lap_start=True, intensity="rest"))
            elif r < 0.7:
                s.phases.append(_fw(a, rng, 60, 150, lap_start=True, intensity="rest"))
            else:
                s.phases.append(_slow_jog(a, rng, _secs(rng, 45, 100), lap_start=True, intensity="rest"))
        else:
            dist = _u(rng, 50, 84)
            s.phases.append(Phase(gait, "backward", int(round(dist / v)), v, lap_start=True, intensity="active"))
            if rng.uniform() < 0.4:
                s.phases.append(_stand(rng, 5, 30, intensity="rest"))
            back = (_fw(a, rng, 1, 1, intensity="rest") if rng.uniform() < 0.5
                    else _slow_jog(a, rng, 1, intensity="rest"))
            back.duration_s = int(round(dist / back.speed))
            back.sign = -1
            s.phases.append(back)
    s.phases.append(_fr(a, rng, 5, 15, lap_start=True, intensity="cooldown"))
    if rng.uniform() < 0.5:
        s.phases.append(_fw(a, rng, 60, 300, intensity="cooldown"))
    return s


def long_backward(a: Athlete, rng: np.random.Generator) -> Session:
    """A long continuous backward run (10-40 min) on a road or a track."""
    venue = "track" if rng.uniform() < 0.4 else "road"
    s = Session("long_backward", "backward", venue, "running",
                ("track" if rng.uniform() < 0.6 else "generic") if venue == "track" else _road_sub(rng),
                auto_lap_m=400.0 if venue == "track" else 1000.0)
    s.phases.append(_fr(a, rng, 5, 12, intensity="warmup"))
    s.phases.append(Phase("run", "backward", _secs(rng, 600, 2400), a.br_speed * _u(rng, 0.88, 1.05)))
    if rng.uniform() < 0.5:
        s.phases.append(_stand(rng, 20, 90))
        s.phases.append(Phase("run", "backward", _secs(rng, 300, 900), a.br_speed * _u(rng, 0.85, 1.0)))
    s.phases.append(_fw(a, rng, 180, 600, intensity="cooldown"))
    return s


def treadmill_backward(a: Athlete, rng: np.random.Generator) -> Session:
    """Backward walking (sometimes running) on a treadmill: no GPS, speed from a foot pod."""
    running = rng.uniform() < 0.3
    s = Session("treadmill_backward", "backward", "treadmill", "running" if running else "walking",
                "treadmill", auto_lap_m=1000.0)
    s.phases.append(_fw(a, rng, 180, 360, intensity="warmup"))
    for _ in range(int(rng.integers(3, 7))):
        if running:
            s.phases.append(Phase("run", "backward", _secs(rng, 60, 300), a.br_speed * _u(rng, 0.85, 1.05)))
            s.phases.append(_slow_jog(a, rng, _secs(rng, 60, 180)) if rng.uniform() < 0.5
                            else _fw(a, rng, 60, 150))
        else:
            s.phases.append(Phase("walk", "backward", _secs(rng, 120, 480), a.bw_speed * _u(rng, 0.9, 1.1)))
            s.phases.append(_fw(a, rng, 60, 180))
        if rng.uniform() < 0.25:
            s.phases.append(_stand(rng, 15, 60))
    s.phases.append(_fw(a, rng, 120, 300, intensity="cooldown"))
    return s


def walk_backward_outdoor(a: Athlete, rng: np.random.Generator) -> Session:
    """Rehab-style backward walking bouts in a park or on a track, between forward walks."""
    venue = "track" if rng.uniform() < 0.5 else "road"
    s = Session("walk_backward_outdoor", "backward", venue, "walking",
                "generic" if venue == "road" else "track", auto_lap_m=1000.0)
    s.phases.append(_fw(a, rng, 300, 600))
    for _ in range(int(rng.integers(3, 7))):
        s.phases.append(Phase("walk", "backward", _secs(rng, 60, 300), a.bw_speed * _u(rng, 0.85, 1.15)))
        s.phases.append(_fw(a, rng, 90, 300))
    return s


# ----------------------------------------------------------------------------- forward (negative) sessions

def easy_run(a: Athlete, rng: np.random.Generator) -> Session:
    """A plain forward run: the history a per-athlete baseline learns from."""
    venue = "road" if rng.uniform() < 0.85 else "track"
    s = Session("easy_run", "negative", venue, "running", _road_sub(rng) if venue == "road" else "track")
    for _ in range(int(rng.integers(2, 6))):
        s.phases.append(_fr(a, rng, 4, 15, 0.85, 1.15))
    return s


def recovery_jogs(a: Athlete, rng: np.random.Generator) -> Session:
    """Forward intervals with slow recovery jogs (2.0-2.4 m/s, 150-165 spm): a hard negative."""
    venue = "road" if rng.uniform() < 0.6 else "track"
    s = Session("recovery_jogs", "negative", venue, "running", _road_sub(rng) if venue == "road" else "track")
    s.phases.append(_fr(a, rng, 8, 15, intensity="warmup"))
    for _ in range(int(rng.integers(4, 10))):
        s.phases.append(Phase("run", "forward", _secs(rng, 60, 300), a.fr_speed * _u(rng, 1.2, 1.5),
                              lap_start=True, intensity="active"))
        s.phases.append(_slow_jog(a, rng, _secs(rng, 60, 240), lap_start=True, intensity="rest"))
    s.phases.append(_fr(a, rng, 5, 10, 0.8, 0.95, lap_start=True, intensity="cooldown"))
    return s


def hills(a: Athlete, rng: np.random.Generator) -> Session:
    """Hill repeats: uphill with shorter steps at the flat cadence (altitude rises), jog back down."""
    s = Session("hills", "negative", "road", "running", _road_sub(rng))
    s.phases.append(_fr(a, rng, 8, 15, intensity="warmup"))
    for _ in range(int(rng.integers(4, 10))):
        g = _u(rng, 0.04, 0.12)
        v_up = max(a.fr_speed * (1 - _u(rng, 2.0, 3.5) * g), 1.9)
        cad_flat = float(a.cadence_spm("run", "forward", np.array([a.fr_speed]))[0])
        up = Phase("run", "forward", _secs(rng, 45, 180), v_up, grade=g, cadence_spm=cad_flat * _u(rng, 0.97, 1.04),
                   lap_start=True, intensity="active")
        down_v = a.fr_speed * _u(rng, 0.8, 1.0)
        down = Phase("run", "forward", int(round(up.duration_s * v_up / down_v)), down_v, grade=-g, sign=-1,
                     intensity="rest")
        s.phases += [up, down]
    s.phases.append(_fr(a, rng, 5, 12, intensity="cooldown"))
    return s


def trail(a: Athlete, rng: np.random.Generator) -> Session:
    """Trail run: rolling grade, power-hiking the steep climbs, and stops."""
    s = Session("trail", "negative", "trail", "running", "trail")
    for _ in range(int(rng.integers(8, 20))):
        g = _u(rng, -0.10, 0.14)
        if g > 0.10:
            s.phases.append(Phase("walk", "forward", _secs(rng, 60, 240), _u(rng, 0.7, 1.2), grade=g))
        else:
            v = a.fr_speed * (1 - 2.5 * max(g, 0.0)) * _u(rng, 0.8, 1.0)
            s.phases.append(Phase("run", "forward", _secs(rng, 60, 400), max(v, 1.9), grade=g))
        if rng.uniform() < 0.25:
            s.phases.append(_stand(rng, 10, 120))
    return s


def treadmill_forward(a: Athlete, rng: np.random.Generator) -> Session:
    """Forward treadmill running with speed steps (and slow segments), no GPS."""
    s = Session("treadmill_forward", "negative", "treadmill", "running", "treadmill")
    s.phases.append(_fw(a, rng, 120, 240, intensity="warmup"))
    for _ in range(int(rng.integers(3, 8))):
        if rng.uniform() < 0.3:
            s.phases.append(_slow_jog(a, rng, _secs(rng, 120, 400)))
        else:
            s.phases.append(_fr(a, rng, 3, 10, 0.9, 1.3, grade=float(rng.choice([0.0, 0.0, 0.01, 0.02]))))
    s.phases.append(_fw(a, rng, 60, 240, intensity="cooldown"))
    return s


def strides_drills(a: Athlete, rng: np.random.Generator) -> Session:
    """Easy run, then running drills (short steps, very high cadence) and strides: a hard negative."""
    venue = "track" if rng.uniform() < 0.5 else "road"
    s = Session("strides_drills", "negative", venue, "running", "track" if venue == "track" else _road_sub(rng))
    s.phases.append(_fr(a, rng, 10, 20, intensity="warmup"))
    for _ in range(int(rng.integers(3, 8))):
        d = Phase("run", "forward", _secs(rng, 10, 30), _u(rng, 1.0, 2.0), cadence_spm=_u(rng, 170, 225))
        back = _fw(a, rng, 1, 1, intensity="rest")
        back.duration_s, back.sign = int(round(d.duration_s * d.speed / back.speed)), -1
        s.phases += [d, back]
    for _ in range(int(rng.integers(4, 9))):
        v = _u(rng, 4.5, 6.5)
        st = Phase("run", "forward", _secs(rng, 15, 25), v, intensity="active")
        s.phases.append(st)
        s.phases.append(_stand(rng, 10, 40) if rng.uniform() < 0.5 else
                        Phase("walk", "forward", int(round(st.duration_s * v / a.fw_speed)), a.fw_speed, sign=-1))
    s.phases.append(_fr(a, rng, 5, 12, intensity="cooldown"))
    return s


def gps_drift_standing(a: Athlete, rng: np.random.Generator) -> Session:
    """A run with long stands (watch not paused) while the GPS position drifts."""
    s = Session("gps_drift_standing", "negative", "road", "running", _road_sub(rng))
    for _ in range(int(rng.integers(2, 4))):
        s.phases.append(_fr(a, rng, 5, 15))
        s.phases.append(_stand(rng, 120, 600))
    s.phases.append(_fr(a, rng, 5, 15))
    return s


def slow_stroll(a: Athlete, rng: np.random.Generator) -> Session:
    """Slow forward walking with stops: looks like backward walking without an IMU."""
    s = Session("slow_stroll", "stroll", "road", "walking", "casual_walking")
    for _ in range(int(rng.integers(3, 8))):
        s.phases.append(Phase("walk", "forward", _secs(rng, 120, 600), _u(rng, 0.75, 1.1)))
        if rng.uniform() < 0.5:
            s.phases.append(_stand(rng, 10, 90))
    return s


Builder = Callable[[Athlete, np.random.Generator], Session]

# The first len(COVERAGE) files of a set take these in order (so small sets cover every kind);
# later files draw from WEIGHTS.
COVERAGE: tuple[Builder, ...] = (
    track_intervals, easy_run, long_backward, recovery_jogs, treadmill_backward, hills,
    walk_backward_outdoor, strides_drills, trail, treadmill_forward, gps_drift_standing, slow_stroll,
)
WEIGHTS: dict[Builder, float] = {
    track_intervals: 3, long_backward: 1.5, treadmill_backward: 1.5, walk_backward_outdoor: 1,
    easy_run: 2.5, recovery_jogs: 1.5, hills: 1.5, trail: 1, treadmill_forward: 1,
    strides_drills: 1, gps_drift_standing: 1, slow_stroll: 0.7,
}
SCENARIOS: dict[str, Builder] = {b.__name__: b for b in COVERAGE}


def pick_builders(rng: np.random.Generator, n: int) -> list[Builder]:
    """Scenario per file: the coverage list first, then weighted draws."""
    out = list(COVERAGE[:n])
    if n > len(COVERAGE):
        keys = list(WEIGHTS)
        p = np.array([WEIGHTS[k] for k in keys], dtype=float)
        idx = rng.choice(len(keys), size=n - len(COVERAGE), p=p / p.sum())
        out += [keys[i] for i in idx]
    return out
