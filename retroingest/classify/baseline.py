"""The athlete's forward-gait baseline: population priors, JSON storage, and learning from history.

The classifier judges every record against the *same athlete's* forward gait. A new athlete
starts from population priors (DOMAIN.md table; reference/biomech.md section 8); every classified
activity contributes a per-activity forward reference (``classifier_activity_refs``), and the
athlete's baseline is a robust, count-weighted aggregate of those references, so it improves as
forward history accumulates and a re-run never counts the same activity twice.

Forward running follows a *locus* in (log speed, log cadence): log c = log c_ref + beta ·
(log v − log v_ref). Cadence changes little with speed (Cavanagh & Kram 1989: +4 % cadence for
+28 % stride length between 3.15 and 4.12 m/s, i.e. beta ≈ 0.15); the corpus runs show a
within-run beta of 0.02–0.21 (median 0.12). Walking cadence scales more with speed (beta ≈ 0.45).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Iterable

# Population priors, each with its source (biomech.md section 8 / DOMAIN.md table).
PRIOR_RUN_SPEED_MPS = 3.0        # easy FR 3.04 ± 0.28 m/s (de Ruiter 2019) [P]
PRIOR_RUN_CADENCE_SPM = 165.0    # 165 ± 8 spm (de Ruiter 2019) [P]
PRIOR_RUN_BETA = 0.12            # Cavanagh & Kram 1989 [P-derived]; corpus within-run median 0.12
PRIOR_WALK_SPEED_MPS = 1.35      # 1.35 ± 0.15 m/s (Bohannon 2011; Andrews) [P]
PRIOR_WALK_CADENCE_SPM = 110.0   # 108.6 spm (Umberger 2007) [P]
PRIOR_WALK_BETA = 0.45           # [E] walking step length and cadence both rise with speed
PRIOR_HR_GAIN_BPM_PER_MPS = 24.0  # 24.2 ± 8.3 bpm per m/s (Hunt 2015) [P]
PRIOR_HR_TAU_S = 58.0            # 57.6 ± 23.6 s (Hunt 2015) [P]
PRIOR_GCT_MS = 255.0             # 255 ± 25 ms easy FR (Garmin 160–300 ms) [S/E]
# between-athlete spread of the run-locus offset (log cadence at a given speed); measured on the
# 29 corpus runs against the priors above: SD ≈ 0.06
PRIOR_OFFSET_SD = 0.06
LEARNED_OFFSET_SD_FLOOR = 0.02   # day-to-day variation of one athlete's cadence (≈ 3 spm)


@dataclass(frozen=True)
class Baseline:
    """An athlete's forward gait: run and walk loci, HR response, GCT; plus how sure we are."""

    run_speed_mps: float = PRIOR_RUN_SPEED_MPS
    run_cadence_spm: float = PRIOR_RUN_CADENCE_SPM
    run_beta: float = PRIOR_RUN_BETA
    walk_speed_mps: float = PRIOR_WALK_SPEED_MPS
    walk_cadence_spm: float = PRIOR_WALK_CADENCE_SPM
    walk_beta: float = PRIOR_WALK_BETA
    hr_gain_bpm_per_mps: float = PRIOR_HR_GAIN_BPM_PER_MPS
    gct_ms: float | None = None
    offset_sd: float = PRIOR_OFFSET_SD   # uncertainty of the run locus for a new activity (log units)
    n_activities: int = 0
    n_forward_s: float = 0.0
    source: str = "population_prior"

    @property
    def learned(self) -> bool:
        """True when at least one activity of forward running has informed the baseline."""
        return self.n_activities > 0

    def run_locus(self, log_v):
        """Forward-running log cadence expected at log speed ``log_v`` (NumPy or float)."""
        return math.log(self.run_cadence_spm) + self.run_beta * (log_v - math.log(self.run_speed_mps))

    def walk_locus(self, log_v):
        """Forward-walking log cadence expected at log speed ``log_v``."""
        return math.log(self.walk_cadence_spm) + self.walk_beta * (log_v - math.log(self.walk_speed_mps))

    def to_json(self) -> str:
        """Serialise for ``athletes.baseline_json``."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> "Baseline":
        """Parse ``athletes.baseline_json``; NULL or unknown content gives the population prior."""
        if not text:
            return cls()
        try:
            raw = json.loads(text)
        except (TypeError, ValueError):
            return cls()
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(**known)


POPULATION = Baseline()


@dataclass(frozen=True)
class ActivityRef:
    """Forward reference measured in one activity (one row of ``classifier_activity_refs``)."""

    activity_id: int
    athlete_id: str
    run_forward_s: float
    run_speed_mps: float | None      # median forward-run speed
    run_cadence_spm: float | None    # median forward-run cadence
    run_offset: float | None         # median log-cadence residual vs the population run locus
    walk_forward_s: float
    walk_offset: float | None        # same for walking
    hr_gain_bpm_per_mps: float | None
    gct_ms: float | None             # forward stance time at the population reference speed
    extra: dict[str, Any] = field(default_factory=dict)


def aggregate(refs: Iterable[ActivityRef], prior: Baseline = POPULATION) -> Baseline:
    """The athlete's baseline from their per-activity forward references (count-weighted medians).

    The locus offset is learned relative to the population locus (so the speed of a given day does
    not matter, only where on the cadence-speed plane this athlete runs forward). Its uncertainty
    shrinks with the number of activities, down to a day-to-day floor.
    """
    refs = [r for r in refs if r.run_forward_s >= 120 and r.run_offset is not None]
    if not refs:
        return prior
    w = [min(r.run_forward_s, 3600.0) for r in refs]
    off = _wmedian([r.run_offset for r in refs], w)
    speed = _wmedian([r.run_speed_mps for r in refs], w)
    n = len(refs)
    spread = _wsd([r.run_offset for r in refs], w) if n >= 3 else prior.offset_sd
    # uncertainty for the next activity: between-activity spread, shrinking from the prior
    k = n / (n + 2.0)
    offset_sd = max(LEARNED_OFFSET_SD_FLOOR, k * spread + (1 - k) * prior.offset_sd)
    # express the learned locus at the athlete's own typical speed
    log_v = math.log(speed)
    cad = math.exp(POPULATION.run_locus(log_v) + off)
    # walking is learned only from real walking (>= 10 min of it in an activity, in >= 2 activities):
    # walk breaks inside runs are tired, transitional steps, not this athlete's forward walk
    walk = [r for r in refs if r.walk_forward_s >= 600 and r.walk_offset is not None]
    walk_cad = prior.walk_cadence_spm
    if len(walk) >= 2:
        woff = _wmedian([r.walk_offset for r in walk], [min(r.walk_forward_s, 1800.0) for r in walk])
        walk_cad = math.exp(math.log(POPULATION.walk_cadence_spm) + woff)
    gains = [r.hr_gain_bpm_per_mps for r in refs if r.hr_gain_bpm_per_mps is not None]
    gain = _wmedian(gains, [1.0] * len(gains)) if gains else prior.hr_gain_bpm_per_mps
    gcts = [r.gct_ms for r in refs if r.gct_ms is not None]
    gct = _wmedian(gcts, [1.0] * len(gcts)) if gcts else prior.gct_ms
    return replace(
        prior, run_speed_mps=speed, run_cadence_spm=cad, walk_cadence_spm=walk_cad,
        walk_speed_mps=POPULATION.walk_speed_mps, hr_gain_bpm_per_mps=gain, gct_ms=gct,
        offset_sd=offset_sd, n_activities=n, n_forward_s=float(sum(r.run_forward_s for r in refs)),
        source="learned",
    )


def _wmedian(x: list[float], w: list[float]) -> float:
    pairs = sorted(zip(x, w))
    half = sum(w) / 2.0
    acc = 0.0
    for xi, wi in pairs:
        acc += wi
        if acc >= half:
            return float(xi)
    return float(pairs[-1][0])


def _wsd(x: list[float], w: list[float]) -> float:
    tw = sum(w)
    m = sum(xi * wi for xi, wi in zip(x, w)) / tw
    return math.sqrt(sum(wi * (xi - m) ** 2 for xi, wi in zip(x, w)) / tw)
