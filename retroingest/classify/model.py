"""Emission model: how likely each record is under each of the five states.

States: stationary, forward walk, backward walk, forward run, backward run (stationary has no
direction). Each record's log-likelihood per state is a sum of independent terms, each present only
when its channel is:

* speed (gait only: walking and running speed ranges, shared by both directions, so a slow pace
  alone never says "backward");
* cadence against the athlete's forward locus at that (grade-adjusted) speed: the residual
  r = log c − locus(log v). Forward gait sits at r ≈ 0; backward gait takes a short step at the
  same or higher cadence, so r > 0 (DOMAIN.md: "a short step at a normal or high cadence");
  r/beta is the log step-length ratio to the forward step at that cadence;
* heart rate against the forward HR–speed line of the activity with a 110 s trailing speed
  (first-order lag, tau ≈ 58 s, Hunt 2015); backward costs ≈ 1.35× per distance, so at its
  slower speed HR sits ≈ +15–30 bpm above the forward line;
* grade: uphill running is judged at grade-adjusted speed; any steep grade counts against
  "backward" (backward bouts are run on flat tracks, roads and treadmills);
* stance time, when present: ≈ 0.75× forward at the same speed (Wright & Weyand 2001).

Every term uses a Huber loss (Gaussian core, linear tails), so a glitch cannot dominate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from retroingest.classify import kernels
from retroingest.classify.baseline import POPULATION, Baseline
from retroingest.classify.features import Features

STATES = ("stationary", "walk_forward", "walk_backward", "run_forward", "run_backward")
S, FW, BW, FR, BR = range(5)
GAIT = np.array(["stationary", "walk", "walk", "run", "run"])
DIRECTION = np.array([None, "forward", "backward", "forward", "backward"], dtype=object)


@dataclass(frozen=True)
class Params:
    """Model constants; every one is a literature value or an estimate documented in CLASSIFIER.md."""

    # backward cadence excess over the forward locus (log units) and spreads
    run_shift: float = 0.10      # BR: cadence x1.0-1.15 at 0.70-0.80 x speed → r ≈ 0.05-0.18 [E from §8]
    run_sd_fwd: float = 0.030    # forward run locus residual (corpus within-run SD 0.01-0.035)
    run_sd_back: float = 0.045
    walk_shift: float = 0.13     # BW: cadence ≈ FW at 0.6-0.75 x speed (Laufer 2005) [D]
    walk_sd_fwd: float = 0.05
    walk_sd_back: float = 0.06
    hr_shift: float = 14.0       # bpm above the forward line (Williford 1998: +22 at matched speed) [P/E]
    hr_sd_fwd: float = 8.0
    hr_sd_back: float = 10.0
    gct_shift: float = -0.25     # log GCT, BR ≈ 0.75-0.77 × FR at matched speed (Wright & Weyand 2001) [D]
    gct_sd_fwd: float = 0.07
    gct_sd_back: float = 0.12
    grade_free: float = 0.04     # |grade| tolerated before it counts against backward
    # how much one record's evidence counts (features come from overlapping ~8-10 s windows)
    evidence_weight: float = 0.5
    back_bias: float = 0.2      # per-record log-odds cost of "backward" (it is rare)
    back_bias_walk: float = 0.3  # backward walking needs more: a slow stroll looks much the same
    max_dir_llr: float = 3.0     # cap on one record's direction evidence (before weighting)


PARAMS = Params()
PARAMS_RUN_SD = PARAMS.run_sd_fwd
PARAMS_WALK_SD = PARAMS.walk_sd_fwd


def huber(z: np.ndarray) -> np.ndarray:
    """Gaussian core, linear tails: 0.5 z^2 for |z| <= 2, else 2|z| - 2."""
    a = np.abs(z)
    m = np.minimum(a, 2.0)
    return m * (a - 0.5 * m)


def _logsigmoid(x: np.ndarray) -> np.ndarray:
    """log(1 / (1 + exp(-x))), stable for large |x|."""
    return np.minimum(x, 0.0) - np.log1p(np.exp(-np.abs(x)))


def _logn(x: np.ndarray, mu, sd) -> np.ndarray:
    return -huber((x - mu) / sd) - np.log(sd)


@dataclass
class ActivityModel:
    """Per-activity adaptation: where this activity's forward gait sits, and its HR line."""

    run_offset: float        # log-cadence offset of forward running vs the baseline locus
    walk_offset: float
    hypothesis_backward: float  # fitted share of backward running in the activity
    run_sd: float = PARAMS_RUN_SD  # within-cluster SD of the run cadence residual in this activity
    walk_sd: float = PARAMS_WALK_SD
    walk_back_share: float = 0.0     # share of walking judged backward by the cluster fit
    hr_walk_ok: bool = False         # the HR line was fitted mostly on walking
    walk_bimodal: bool = False       # walking shows a forward and a separate short-step cluster
    run_speed: float | None = None   # forward running speed today (60th percentile), m/s
    walk_speed: float | None = None
    hr_a: float | None = None
    hr_b: float | None = None
    hr_c: float | None = None   # drift, bpm per hour
    gct_ref: float | None = None  # log GCT at the baseline reference speed
    walk_shift: float = PARAMS.walk_shift  # backward walking's distance above the forward locus here (log)


def adapt(f: Features, baselines: list[Baseline], context_prior: np.ndarray, special: np.ndarray,
          p: Params = PARAMS) -> list[ActivityModel]:
    """Estimate each activity's forward locus offset and HR line from its own records.

    Forward running has the longest step at a given cadence, so the forward cluster is the low
    end of the cadence residual. If that low end is itself far above the athlete's baseline, the
    whole activity may be backward: the two hypotheses are weighed against the baseline's
    uncertainty (wide for a new athlete, narrow once history accumulates).
    """
    out = []
    loci = np.array([[math.log(b.run_cadence_spm), math.log(b.run_speed_mps), b.run_beta,
                      math.log(b.walk_cadence_spm), math.log(b.walk_speed_mps), b.walk_beta]
                     for b in baselines], dtype=float).reshape(len(baselines), 6)
    bl = np.array([[b.offset_sd, b.hr_gain_bpm_per_mps, math.log(b.run_speed_mps)] for b in baselines],
                  dtype=float).reshape(len(baselines), 3)
    prm = np.array([p.run_shift, p.run_sd_fwd, p.walk_shift, p.walk_sd_fwd, WALK_MIN_MASS, WALK_VALLEY, MIX_GAIN])
    a64 = np.ascontiguousarray
    res = kernels.adapt(
        a64(f.starts, np.int64), a64(f.ends, np.int64), a64(f.v, float), a64(f.v_eff, float), a64(f.c, float),
        a64(f.grade, float), a64(f.dt, float), a64(f.t, float), a64(f.hr, float), a64(f.v_lag, float),
        a64(f.gct, float), a64(f.steady, bool), loci, bl, a64(context_prior, float), a64(special, bool), prm)

    def opt(x: float) -> float | None:
        return None if math.isnan(x) else float(x)

    for row in res:
        out.append(ActivityModel(
            float(row[0]), float(row[1]), float(row[2]), run_sd=float(row[3]), walk_sd=float(row[4]),
            hr_walk_ok=bool(row[11] == 1.0), walk_bimodal=bool(row[5] == 1.0), walk_back_share=float(row[13]),
            run_speed=opt(row[6]),
            walk_speed=opt(row[7]), hr_a=opt(row[8]), hr_b=opt(row[9]), hr_c=opt(row[10]), gct_ref=opt(row[12]),
            walk_shift=float(row[14])))
    return out


# walking clusters: minimum share of a cluster, valley depth between two, and the two-cluster
# mixture's required gain (nats per ~5 s) over one cluster (kernels.forward_cluster)
WALK_MIN_MASS, WALK_VALLEY = 0.10, 0.6
MIX_GAIN = 3.0



@dataclass
class Emissions:
    """Log-likelihood per record and state (N, 5), plus the evidence terms kept for segments."""

    loglik: np.ndarray
    r_run: np.ndarray        # cadence residual vs the forward run locus (log), NaN without cadence
    r_walk: np.ndarray
    hr_res: np.ndarray       # bpm vs the forward HR line, NaN without HR
    dir_run: np.ndarray      # weighted direction evidence, run (BR minus FR)
    dir_walk: np.ndarray
    has_v: np.ndarray
    has_c: np.ndarray
    has_hr: np.ndarray


def emissions(f: Features, baselines: list[Baseline], models: list[ActivityModel],
              context_bias: np.ndarray, p: Params = PARAMS) -> Emissions:
    """Log-likelihoods of every record under the five states (one compiled pass over all records).

    The terms, per record (``kernels.emissions`` computes them in one loop, in double precision):

    * speed: walking and running speed ranges (gait only); stationary near 0 m/s;
    * cadence residual against each gait's forward locus, r = log c - locus(log v); forward at
      r ≈ 0 (SD from ``adapt``), backward at r ≈ +shift; gait evidence is the better of the two
      directions, direction evidence their capped difference, faded out for far shorter steps
      than any backward gait (running drills) and never positive for a step longer than forward;
    * 'no steps' (cadence 0) speaks for stationary; backward faster than 0.92x (or slower than
      0.58x) today's forward running pace is implausible, as is backward walking faster than 0.95x
      forward walking;
    * HR residual against the activity's forward line: may veto strongly, assert only weakly
      (capped at -2/+1.5 nats); stance time ±1.5; |grade| > 4 % counts against backward;
    * direction is a bounded log-odds split of the gait's likelihood; every record counts by
      sqrt(seconds it stands for).
    """
    g = f.group
    # per-activity numbers, gathered to records in one indexing operation
    nan = float("nan")
    table = np.array([[
        math.log(b.run_cadence_spm) + m.run_offset, math.log(b.run_speed_mps), b.run_beta,
        math.log(b.walk_cadence_spm) + m.walk_offset, math.log(b.walk_speed_mps), b.walk_beta,
        m.run_sd, m.walk_sd,
        math.log(m.run_speed) if m.run_speed else math.log(b.run_speed_mps),
        math.log(m.walk_speed) if m.walk_speed else math.log(b.walk_speed_mps),
        nan if m.hr_a is None else m.hr_a, nan if m.hr_b is None else m.hr_b, nan if m.hr_c is None else m.hr_c,
        nan if m.gct_ref is None else m.gct_ref,
        # Backward walking is looked for only where walking splits into two clusters, a forward
        # one and a shorter-stepped one (bouts against the athlete's own forward walking in the
        # same session); one wide cluster is a stroll, a hike or stop-and-go, where the two cannot
        # be told apart.
        # On a treadmill or track (speed from a pod or belt, not noisy positions) a single walking
        # cluster whose steps are far shorter than the athlete's forward walking at that cadence
        # (adapt placed the forward locus one shift below it) counts too.
        1.0 if (m.walk_sd < 0.085 and (m.walk_bimodal or (m.walk_back_share >= 0.5 and cb > 0))) else 0.0,
        # the HR line is fitted where the activity spends its time: walking HR after running
        # (walk breaks) sits far above a running line, so HR speaks for walking only in walking
        # activities
        1.0 if m.hr_walk_ok else 0.0,
        float(cb),
        # where backward walking sits above the forward locus: the walking mixture's fitted
        # distance when it found two clusters, else Params.walk_shift (adapt returns that)
        m.walk_shift,
    ] for b, m, cb in zip(baselines, models, context_bias)], dtype=float).reshape(len(models), 18)
    prm = np.array([getattr(p, k) for k in kernels.P_NAMES], dtype=float)
    L, r_run, r_walk, hr_res, dir_run, dir_walk, has_v, stepping, has_hr = kernels.emissions(
        _f64(f.v), _f64(f.c), _f64(f.v_eff), _f64(f.hr), _f64(f.v_lag), _f64(f.t), _f64(f.gct), _f64(f.grade),
        _f64(f.dt), np.ascontiguousarray(g, dtype=np.int64), np.ascontiguousarray(table), prm)
    return Emissions(L, r_run, r_walk, hr_res, dir_run, dir_walk, has_v, stepping, has_hr)


def _f64(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float64)
