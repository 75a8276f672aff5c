"""Simulated athletes: body mass, fitness and one consistent forward (and backward) gait each.

Every number is drawn from the ranges in ``../shared/reference/biomech.md`` section 8 and the
DOMAIN.md table, kept as wide as the literature allows (issue 4: do not tune to a narrow set).
The gait of one athlete is consistent across sessions (speed → cadence → step length follow one
rule), so a per-athlete forward baseline makes sense; between athletes it varies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Garmin products (FIT garmin_product enum) and whether they record running dynamics on their own.
DEVICES = (("fr965", 4315), ("fr255", 3992), ("fr955", 4024), ("fenix7", 3906), ("fr945", 3113),
           ("fr245", 3076), ("fr55", 3869), ("fr935", 2691), ("fenix6", 3290), ("fr745", 3589),
           ("fr165", 4432), ("fr970", 4565))

# Device local time offsets (s) athletes live in.
UTC_OFFSETS = (-8 * 3600, -5 * 3600, -3 * 3600, 0, 3600, 2 * 3600, 19800, 8 * 3600, 10 * 3600)

# City-ish anchor points (lat, lon) for outdoor sessions.
HOMES = ((47.3769, 8.5417), (40.7812, -73.9665), (-33.8915, 151.2767), (51.5073, -0.1657),
         (35.6762, 139.6503), (52.5200, 13.4050), (-23.5874, -46.6576), (45.5019, -73.5674))


def _clip_normal(rng: np.random.Generator, mean: float, sd: float, lo: float, hi: float) -> float:
    return float(np.clip(rng.normal(mean, sd), lo, hi))


@dataclass(frozen=True)
class Athlete:
    """One simulated person and their watch. Speeds m/s, cadences steps/min, HR bpm."""

    athlete_id: str
    device_serial: int
    product_name: str
    product_id: int
    utc_offset_s: int
    home: tuple[float, float]
    body_mass_kg: float
    # forward running: easy self-selected speed and cadence; cadence ∝ speed**run_cad_exp
    fr_speed: float
    fr_cadence: float
    run_cad_exp: float
    # forward walking
    fw_speed: float
    fw_cadence: float
    walk_cad_exp: float
    # backward gaits relative to the forward ones
    br_speed_ratio: float     # self-selected BR speed / easy FR speed (0.68-0.82)
    br_cad_ratio: float       # self-selected BR cadence / easy FR cadence (0.97-1.15: same or higher)
    bw_speed_ratio: float     # BW speed / FW speed (0.6-0.75)
    bw_cad_ratio: float       # BW cadence / FW cadence (0.92-1.03: "unchanged", Laufer 2005)
    # heart rate
    hr_rest: float
    hr_easy: float            # steady HR at easy FR speed on the flat
    hr_max: float
    hr_tau_s: float           # first-order lag of HR behind effort
    br_hr_surcharge: float    # extra bpm backward vs forward running at the same speed
    bw_hr_surcharge: float    # extra bpm backward vs forward walking at the same speed
    # running dynamics (only written when the device records them)
    has_dynamics: bool
    vo_fr_mm: float
    gct_fr_ms: float
    br_vo_factor: float
    br_gct_factor: float
    br_dynamics_mode: str     # plausible | garbage | dropped (wrist algorithms are trained forward)
    has_fractional_cadence: bool

    # -- gait laws -------------------------------------------------------------------------

    def cadence_spm(self, gait: str, direction: str, speed: np.ndarray) -> np.ndarray:
        """Steady cadence (steps/min) this athlete uses for a gait at a speed (m/s)."""
        speed = np.maximum(np.asarray(speed, dtype=float), 0.05)
        if gait == "run":
            if direction == "backward":
                return self.fr_cadence * self.br_cad_ratio * (speed / self.br_speed) ** self.run_cad_exp
            return self.fr_cadence * (speed / self.fr_speed) ** self.run_cad_exp
        if gait == "walk":
            if direction == "backward":
                bw_speed = self.fw_speed * self.bw_speed_ratio
                return self.fw_cadence * self.bw_cad_ratio * (speed / bw_speed) ** self.walk_cad_exp
            return self.fw_cadence * (speed / self.fw_speed) ** self.walk_cad_exp
        return np.zeros_like(speed)

    def cadence_excess(self, gait: str) -> float:
        """log(backward cadence / forward cadence at the same speed), at this athlete's own
        backward speed: how far the backward gait sits off the forward cadence locus. The
        accuracy harness groups bouts by it (a few per cent is inside per-record noise)."""
        v = np.array([self.br_speed if gait == "run" else self.bw_speed])
        return float(np.log(self.cadence_spm(gait, "backward", v)[0] / self.cadence_spm(gait, "forward", v)[0]))

    @property
    def br_speed(self) -> float:
        return self.fr_speed * self.br_speed_ratio

    @property
    def bw_speed(self) -> float:
        return self.fw_speed * self.bw_speed_ratio


def draw_athlete(rng: np.random.Generator, index: int) -> Athlete:
    """Draw one athlete: fitness links easy speed, resting HR and running economy."""
    fitness = rng.normal()
    fr_speed = float(np.clip(3.0 + 0.3 * fitness + rng.normal(0, 0.1), 2.4, 3.9))
    hr_rest = _clip_normal(rng, 60 - 4 * fitness, 6, 42, 78)
    hr_max = _clip_normal(rng, 188, 9, 165, 208)
    hr_easy = float(np.clip(hr_rest + rng.uniform(60, 95), 115, hr_max - 20))
    product_name, product_id = DEVICES[int(rng.integers(len(DEVICES)))]
    practice = rng.uniform(0, 1)  # habitual retro-runners: smaller HR surcharge (Heath 2001)
    return Athlete(
        athlete_id=f"a{index:02d}",
        device_serial=int(3_900_000_000 + rng.integers(1, 99_999_999)),
        product_name=product_name,
        product_id=product_id,
        utc_offset_s=int(UTC_OFFSETS[int(rng.integers(len(UTC_OFFSETS)))]),
        home=HOMES[int(rng.integers(len(HOMES)))],
        body_mass_kg=round(_clip_normal(rng, 71, 12, 47, 112), 1),
        fr_speed=fr_speed,
        fr_cadence=_clip_normal(rng, 165 + 6 * fitness / 2, 8, 148, 188),
        # Cavanagh & Kram: +4 % over +31 % speed (0.15); the corpus runs' within-run exponent is
        # 0.02-0.21 (classify/baseline.py), so some runners hold their cadence as they slow down:
        # a slower section at an unchanged cadence (short steps, no backward gait) is a hard negative
        run_cad_exp=float(rng.uniform(0.02, 0.25)),
        fw_speed=_clip_normal(rng, 1.35, 0.15, 1.0, 1.7),
        fw_cadence=_clip_normal(rng, 110, 8, 95, 125),
        walk_cad_exp=float(rng.uniform(0.3, 0.6)),
        br_speed_ratio=float(rng.uniform(0.68, 0.82)),
        br_cad_ratio=float(rng.uniform(0.97, 1.15)),      # biomech §8: 175 ± 12 vs 165 ± 8
        bw_speed_ratio=float(rng.uniform(0.60, 0.75)),
        bw_cad_ratio=float(rng.uniform(0.92, 1.03)),
        hr_rest=hr_rest,
        hr_easy=hr_easy,
        hr_max=hr_max,
        hr_tau_s=float(rng.uniform(20, 60)),                # Hunt 2015: 58 ± 24 s; brief: 20-30 s
        br_hr_surcharge=float(np.clip(rng.normal(22, 6) - 12 * practice, 4, 36)),
        bw_hr_surcharge=float(np.clip(rng.normal(19, 6) - 12 * practice, 3, 32)),
        has_dynamics=bool(rng.uniform() < 0.35),
        vo_fr_mm=_clip_normal(rng, 85, 15, 58, 118),
        gct_fr_ms=_clip_normal(rng, 255, 25, 195, 305),
        br_vo_factor=float(rng.uniform(0.75, 1.25)),        # unknown (U): keep it wide
        br_gct_factor=float(rng.uniform(0.70, 0.85)),       # ≈ 0.75 × FR at the same speed
        br_dynamics_mode=str(rng.choice(["plausible", "plausible", "garbage", "dropped"])),
        has_fractional_cadence=bool(rng.uniform() < 0.75),
    )
