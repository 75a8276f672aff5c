"""Energy and load formulas as Polars expression builders, plus scalar twins for tests and docs.

Sources (details in docs/METRICS.md and ../shared/reference/biomech.md sections 4-5):

- ACSM's Guidelines for Exercise Testing and Prescription, metabolic equations:
  running VO2 = 0.2*S + 0.9*S*G + 3.5, walking VO2 = 0.1*S + 1.8*S*G + 3.5 (mL/kg/min, S in
  m/min). Backward locomotion multiplies the net (speed) term by r (biomech.md 4.3); grade is
  not modelled (level ground assumed).
- 1 MET = 3.5 mL/kg/min; 1 L O2 ~ 5 kcal, so kcal/min = VO2 * mass_kg / 200.
- Compendium of Physical Activities code 17320: walking, backward, 3.5 mph (1.56 m/s), level,
  6.0 MET (Ainsworth et al. 2011; Herrmann et al. 2024).
- Banister TRIMP (Banister 1991): minutes x HRr x a*exp(b*HRr), HRr = (HR - rest)/(max - rest),
  a = 0.64, b = 1.92 for men; a = 0.86, b = 1.67 for women.
"""

from __future__ import annotations

import math

import polars as pl

ML_O2_PER_MET = 3.5          # mL/kg/min
KCAL_DIVISOR = 200.0         # kcal/min = VO2[mL/kg/min] * kg / 200
TRIMP_COEFFS = {"male": (0.64, 1.92), "female": (0.86, 1.67)}


def acsm_running_vo2(speed_mps: float, r: float = 1.0) -> float:
    """ACSM level running VO2 in mL/kg/min, net term x r."""
    return 0.2 * speed_mps * 60.0 * r + ML_O2_PER_MET


def acsm_walking_vo2(speed_mps: float, r: float = 1.0) -> float:
    """ACSM level walking VO2 in mL/kg/min, net term x r."""
    return 0.1 * speed_mps * 60.0 * r + ML_O2_PER_MET


def kcal_per_min(vo2_ml_kg_min: float, mass_kg: float) -> float:
    """Gross energy rate in kcal/min from VO2 (mL/kg/min) and body mass (kg)."""
    return vo2_ml_kg_min * mass_kg / KCAL_DIVISOR


def banister_trimp(minutes: float, hr_bpm: float, hr_rest_bpm: float, hr_max_bpm: float,
                   sex: str = "male") -> float:
    """Banister TRIMP (arbitrary units) for `minutes` at a steady heart rate."""
    a, b = TRIMP_COEFFS[sex]
    hrr = min(max((hr_bpm - hr_rest_bpm) / (hr_max_bpm - hr_rest_bpm), 0.0), 1.0)
    return minutes * hrr * a * math.exp(b * hrr)


# ---- expression builders -------------------------------------------------------------------

def speed_m_per_min(distance: str = "distance_m", duration: str = "duration_s") -> pl.Expr:
    """Average speed in m/min; NULL when distance is unknown or the duration is 0."""
    return (
        pl.when(pl.col(duration) > 0)
        .then(pl.col(distance) / pl.col(duration) * 60.0)
    )


def acsm_vo2_expr(speed_mpm: pl.Expr, net_coeff: float, r: pl.Expr) -> pl.Expr:
    """ACSM level VO2 (mL/kg/min): net_coeff*S*r + 3.5 (0.2 running, 0.1 walking)."""
    return net_coeff * speed_mpm * r + ML_O2_PER_MET


def kcal_expr(vo2: pl.Expr, mass_kg: pl.Expr, minutes: pl.Expr) -> pl.Expr:
    """Gross kcal over `minutes` at `vo2` (mL/kg/min) for `mass_kg`."""
    return vo2 * mass_kg / KCAL_DIVISOR * minutes


def hr_reserve_expr(hr: pl.Expr, rest: pl.Expr, hrmax: pl.Expr) -> pl.Expr:
    """Heart-rate reserve fraction, clipped to 0-1."""
    return ((hr - rest) / (hrmax - rest)).clip(0.0, 1.0)


def trimp_expr(minutes: pl.Expr, hrr: pl.Expr, sex: pl.Expr) -> pl.Expr:
    """Banister TRIMP contribution of `minutes` at heart-rate reserve fraction `hrr`."""
    a_m, b_m = TRIMP_COEFFS["male"]
    a_f, b_f = TRIMP_COEFFS["female"]
    female = sex == "female"
    a = pl.when(female).then(pl.lit(a_f)).otherwise(pl.lit(a_m))
    b = pl.when(female).then(pl.lit(b_f)).otherwise(pl.lit(b_m))
    return minutes * hrr * a * (b * hrr).exp()
