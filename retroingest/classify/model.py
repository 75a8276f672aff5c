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
    hr_walk_ok: bool = False         # the HR line was fitted mostly on walking
    walk_bimodal: bool = False       # walking shows a forward and a separate short-step cluster
    run_speed: float | None = None   # forward running speed today (60th percentile), m/s
    walk_speed: float | None = None
    hr_a: float | None = None
    hr_b: float | None = None
    hr_c: float | None = None   # drift, bpm per hour
    gct_ref: float | None = None  # log GCT at the baseline reference speed


def adapt(f: Features, baselines: list[Baseline], context_prior: np.ndarray, p: Params = PARAMS) -> list[ActivityModel]:
    """Estimate each activity's forward locus offset and HR line from its own records.

    Forward running has the longest step at a given cadence, so the forward cluster is the low
    end of the cadence residual. If that low end is itself far above the athlete's baseline, the
    whole activity may be backward: the two hypotheses are weighed against the baseline's
    uncertainty (wide for a new athlete, narrow once history accumulates).
    """
    out = []
    logv = np.log(np.maximum(f.v_eff, 0.05))
    logc = np.log(np.maximum(np.nan_to_num(f.c, nan=1.0), 1.0))
    # per-record residuals against each activity's baseline loci, for all activities at once
    gi = f.group
    prm = np.array([[math.log(b.run_cadence_spm), math.log(b.run_speed_mps), b.run_beta,
                     math.log(b.walk_cadence_spm), math.log(b.walk_speed_mps), b.walk_beta]
                    for b in baselines]).reshape(len(baselines), 6)[gi].T
    r_run_all = logc - (prm[0] + prm[2] * (logv - prm[1]))
    r_walk_all = logc - (prm[3] + prm[5] * (logv - prm[4]))
    with np.errstate(invalid="ignore"):
        base_ok = (np.abs(f.grade) < 0.04) & f.steady
        run_ok_all = base_ok & (f.c >= 135) & (f.v >= 1.4)
        walk_ok_all = base_ok & (f.c >= 80) & (f.c < 135) & (f.v >= 0.5) & (f.v < 2.0)
    for g, (a, b) in enumerate(zip(f.starts, f.ends)):
        bl = baselines[g]
        sl = slice(a, b)
        v = f.v[sl]
        steady = f.steady[sl]
        r_run, r_walk = r_run_all[sl], r_walk_all[sl]
        run_ok, walk_ok = run_ok_all[sl], walk_ok_all[sl]
        prior = float(context_prior[g])
        run_off, p_back, run_sd = 0.0, 0.0, p.run_sd_fwd
        if run_ok.sum() >= 120:
            run_off, p_back, run_sd, _ = _forward_cluster(
                r_run[run_ok], f.dt[sl][run_ok], p.run_shift, bl.offset_sd, prior, 0.015, 0.07)
        walk_off, walk_sd, walk_bimodal = 0.0, p.walk_sd_fwd, False
        if walk_ok.sum() >= 60:
            walk_off, _, walk_sd, walk_bimodal = _forward_cluster(
                r_walk[walk_ok], f.dt[sl][walk_ok], p.walk_shift, max(bl.offset_sd, 0.05), prior, 0.03, 0.13,
                smooth=0.018, min_mass=WALK_MIN_MASS, valley_ratio=WALK_VALLEY, mixture_test=True)
        m = ActivityModel(run_off, walk_off, p_back, run_sd=run_sd, walk_sd=walk_sd, walk_bimodal=walk_bimodal)
        # the athlete's forward speeds today (backward faster than these is implausible)
        fr_sel = run_ok & (r_run - run_off < p.run_shift / 2)
        if fr_sel.sum() >= 60:
            m.run_speed = float(np.quantile(v[fr_sel], 0.6))
        fw_sel = walk_ok & (r_walk - walk_off < p.walk_shift / 2)
        if fw_sel.sum() >= 60:
            m.walk_speed = float(np.quantile(v[fw_sel], 0.6))
        # HR line from forward-looking moving records
        hr = f.hr[sl]
        fwd_like = ((run_ok & (r_run - run_off < p.run_shift / 2)) | (walk_ok & (r_walk - walk_off < p.walk_shift / 2)))
        ok = fwd_like & ~np.isnan(hr) & ~np.isnan(f.v_lag[sl])
        if ok.sum() >= 120:
            x = f.v_lag[sl][ok]
            th = f.t[sl][ok] / 3600.0
            y = hr[ok]
            gain = bl.hr_gain_bpm_per_mps
            nok = x.size
            xm, ym, tm = x.mean(), y.mean(), th.mean()
            xc, yc, tc = x - xm, y - ym, th - tm
            sxx, stt, sxt = xc @ xc, tc @ tc, xc @ tc
            if sxx >= nok * 0.04 and nok >= 300:
                # least squares of HR on (lagged speed, time), closed form for two regressors
                sxy, sty = xc @ yc, tc @ yc
                det = sxx * stt - sxt * sxt
                b_fit = (sxy * stt - sty * sxt) / det if det > 1e-9 else sxy / sxx
                # shrink the gain toward the baseline; keep drift non-negative and bounded
                gain = float(np.clip(0.5 * b_fit + 0.5 * gain, 10.0, 40.0))
            drift = 0.0
            if stt > nok * (0.5 / 3.46) ** 2:  # the fitted stretch spans more than ~0.5 h
                drift = float(np.clip((tc @ (yc - gain * xc)) / stt, 0.0, 15.0))
            m.hr_b, m.hr_c = gain, drift
            m.hr_walk_ok = bool((ok & walk_ok).sum() > (ok & run_ok).sum())
            m.hr_a = float(np.median(y - gain * x - drift * th))
            # re-centre on the forward cluster of all steady moving records: forward is the
            # cheapest gait, so its HR residuals form the lowest well-populated peak
            mov = (v >= 0.5) & steady & ~np.isnan(hr) & ~np.isnan(f.v_lag[sl])
            res = hr[mov] - (m.hr_a + gain * f.v_lag[sl][mov] + drift * f.t[sl][mov] / 3600.0)
            if res.size >= 60:
                m.hr_a += _lowest_peak(res, f.dt[sl][mov], step=1.0, smooth=3.0, min_mass=0.25)
        gct = f.gct[sl]
        gok = run_ok & (r_run - run_off < p.run_shift / 2) & ~np.isnan(gct)
        if gok.sum() >= 60:
            m.gct_ref = float(np.median(np.log(gct[gok]) + 0.6 * (logv[sl][gok] - math.log(bl.run_speed_mps))))
        out.append(m)
    return out


def _lowest_peak(x: np.ndarray, w: np.ndarray, step: float, smooth: float, min_mass: float) -> float:
    """Centre of the lowest peak holding >= min_mass of the (time-weighted) values of x."""
    lo = float(np.quantile(x, 0.01)) - 3 * smooth
    idx = np.clip(((x - lo) / step).astype(np.int64), 0, 999)
    h = np.bincount(idx, weights=w, minlength=1000)
    half = int(3 * smooth / step)
    ker = np.exp(-0.5 * (np.arange(-half, half + 1) * step / smooth) ** 2)
    hs = np.convolve(h, ker, "same")
    peaks = np.flatnonzero((hs[1:-1] >= hs[:-2]) & (hs[1:-1] > hs[2:])) + 1
    cum = np.concatenate(([0.0], np.cumsum(h)))
    win = max(1, int(2 * smooth / step))
    mass = (cum[np.minimum(peaks + win + 1, h.size)] - cum[np.maximum(peaks - win, 0)]) / max(h.sum(), 1e-9)
    sig = peaks[mass >= min_mass]
    k = int(sig.min()) if sig.size else int(np.argmax(hs))
    return lo + (k + 0.5) * step


HIST_LO, HIST_STEP, HIST_N = -0.4, 0.005, 181
WALK_MIN_MASS, WALK_VALLEY = 0.10, 0.6
MIX_GAIN = 3.0
_HIST_X = HIST_LO + HIST_STEP * np.arange(HIST_N)


def _two_cluster_gain(h: np.ndarray, shift: float) -> tuple[float, float, float]:
    """How much better two clusters one ``shift`` apart explain a residual histogram than one.

    Returns (gain in nats per ~5 s of data, forward offset, backward share) of the best
    mixture N(o, s) + N(o + shift, s) against the best single N(mu, s'), both fitted to the
    time-weighted histogram. A wide single cluster (a stroll, a hike) gains little; a forward
    cluster with a separate shorter-stepped one gains a lot even when the smaller one is only a
    shoulder of the larger.
    """
    x = _HIST_X
    tot = h.sum()
    if tot <= 0:
        return 0.0, 0.0, 0.0
    mu = float((h * x).sum() / tot)
    sd1 = max(float(np.sqrt((h * (x - mu) ** 2).sum() / tot)), 0.02)
    ll1 = float((h * (-0.5 * ((x - mu) / sd1) ** 2 - math.log(sd1))).sum())
    o = x[(x > mu - shift - 0.1) & (x < mu + 0.02)][::2, None, None]    # (O, 1, 1), 0.01 steps
    sds = np.array([0.025, 0.035, 0.05, 0.07])[None, :, None]             # (1, S, 1)
    xx = x[None, None, :]
    lf = np.exp(-0.5 * ((xx - o) / sds) ** 2) / sds
    lb = np.exp(-0.5 * ((xx - o - shift) / sds) ** 2) / sds
    pi = np.full(lf.shape[:2] + (1,), 0.5)
    for _ in range(6):
        mix = (1 - pi) * lf + pi * lb + 1e-12
        pi = np.clip((h * pi * lb / mix).sum(axis=2, keepdims=True) / tot, 0.02, 0.98)
    ll2 = (h * np.log((1 - pi) * lf + pi * lb + 1e-12)).sum(axis=2)
    k = np.unravel_index(int(np.argmax(ll2)), ll2.shape)
    gain = (float(ll2[k]) - ll1) / 5.0
    return gain, float(o[k[0], 0, 0]), float(pi[k[0], k[1], 0])


def _mixture_ll(h: np.ndarray, o: float, shift: float, sd: float) -> float:
    """Log-likelihood of a residual histogram under forward N(o, sd) + backward N(o + shift, sd)
    + 3 % uniform outliers, with the backward share fitted by a few EM steps."""
    x = _HIST_X
    lf = np.exp(-0.5 * ((x - o) / sd) ** 2) / (sd * 2.5066)
    sb = sd
    lb = np.exp(-0.5 * ((x - o - shift) / sb) ** 2) / (sb * 2.5066)
    out = 0.03 / (HIST_STEP * HIST_N)
    pi = 0.3
    tot = max(h.sum(), 1e-9)
    for _ in range(8):
        mix = 0.97 * ((1 - pi) * lf + pi * lb) + out
        pi = float(np.clip((h * 0.97 * pi * lb / mix).sum() / tot, 1e-3, 1 - 1e-3))
    mix = 0.97 * ((1 - pi) * lf + pi * lb) + out
    # records are far from independent (smoothing windows, slow drifts): count ~1 per 20 s
    return float((h * np.log(mix)).sum() / 20.0)


def _forward_cluster(r: np.ndarray, w: np.ndarray, shift: float, prior_sd: float, prior_back: float,
                     sd_floor: float, sd_cap: float, smooth: float = 0.01, min_mass: float = 0.10,
                     valley_ratio: float = 0.6, mixture_test: bool = False) -> tuple[float, float, float, bool]:
    """Forward offset, backward share and forward spread of an activity's cadence residuals.

    A time-weighted histogram of the residuals is smoothed and its peaks found. Forward gait has
    the longest step at a given cadence, so the *lowest* peak holding >= 10 % of the time is the
    forward cluster. With a single peak the activity is all one direction: all forward, or all
    backward (then its forward locus sits one ``shift`` lower); the two are weighed against the
    baseline's prior on the offset (wide for a new athlete, narrow once history accumulates),
    because the data alone cannot tell them apart.
    """
    idx = np.clip(np.round((r - HIST_LO) / HIST_STEP).astype(np.int64), 0, HIST_N - 1)
    h = np.bincount(idx, weights=w, minlength=HIST_N)
    total = h.sum()
    half = int(round(3 * smooth / HIST_STEP))
    hs = np.convolve(h, np.exp(-0.5 * (np.arange(-half, half + 1) * HIST_STEP / smooth) ** 2), "same")
    inner = (hs[1:-1] >= hs[:-2]) & (hs[1:-1] > hs[2:])
    peaks = np.flatnonzero(inner) + 1
    cum = np.concatenate(([0.0], np.cumsum(h)))
    win = int(round(2.5 * smooth / HIST_STEP))
    mass = (cum[np.minimum(peaks + win + 1, HIST_N)] - cum[np.maximum(peaks - win, 0)]) / max(total, 1e-9)
    sig = peaks[mass >= min_mass]
    top = int(np.argmax(hs))
    low = int(sig.min()) if sig.size else top
    o_low, o_top = float(_HIST_X[low]), float(_HIST_X[top])
    if o_top - o_low >= 0.025:
        o = o_low
    else:
        # one dominant peak: forward at o_top, or backward at o_top (forward would then sit one
        # shift lower). A small separate cluster one shift *above* the peak (a few backward reps)
        # says forward; otherwise the baseline's prior on this athlete's forward locus decides,
        # because a single cluster looks the same either way.
        m_above = float(h[(_HIST_X > o_top + 0.6 * shift) & (_HIST_X < o_top + 1.8 * shift)].sum() / max(total, 1e-9))
        m_below = float(h[(_HIST_X < o_top - 0.6 * shift) & (_HIST_X > o_top - 1.8 * shift)].sum() / max(total, 1e-9))
        lf = -0.5 * (o_top / prior_sd) ** 2 - math.log(prior_sd)
        sdb = math.hypot(prior_sd, 0.05)
        lb = -0.5 * ((o_top - shift) / sdb) ** 2 - math.log(sdb)
        logit = lb - lf + math.log(prior_back / (1.0 - prior_back))
        if m_above >= 0.03 and m_above > 2 * m_below:
            logit = -1.0
        score = [0.0, logit]
        o = o_top if score[0] >= score[1] else o_top - shift
    back_share = float(h[_HIST_X > o + 0.5 * shift].sum() / max(total, 1e-9))
    near = (r > o - 0.12) & (r < o + 0.4 * shift)
    if near.sum() >= 20:
        dev = np.abs(r[near] - o)
        sd = float(np.clip(1.4826 * np.median(dev), sd_floor, sd_cap))
    else:
        sd = sd_cap
    # a second, separate cluster of shorter steps: a significant peak at least half a shift
    # above the forward one with a real valley between them
    k0 = int(np.clip(round((o - HIST_LO) / HIST_STEP), 0, HIST_N - 1))
    bimodal = False
    if mixture_test and total >= 480.0:
        gain, o_mix, share = _two_cluster_gain(h, shift)
        # enough walking to judge (>= 8 minutes), a forward locus within reach of the population
        # one, and a real share of each cluster
        if gain > MIX_GAIN and 0.08 < share < 0.92 and total >= 480.0 and abs(o_mix) <= 0.15:
            return o_mix, share, sd, True
    for pk in sig:
        if _HIST_X[pk] - o >= 0.5 * shift and pk > k0:
            valley = hs[k0:pk + 1].min()
            if valley < valley_ratio * min(hs[k0], hs[pk]):
                bimodal = True
    return o, back_share, sd, bimodal


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
              context_bias: np.ndarray, p: Params = PARAMS, debug: dict | None = None) -> Emissions:
    """Log-likelihoods of every record under the five states (vectorised over all records)."""
    n = f.n
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
        1.0 if (m.walk_sd < 0.085 and m.walk_bimodal) else 0.0,
        # the HR line is fitted where the activity spends its time: walking HR after running
        # (walk breaks) sits far above a running line, so HR speaks for walking only in walking
        # activities
        1.0 if m.hr_walk_ok else 0.0,
        float(cb),
    ] for b, m, cb in zip(baselines, models, context_bias)], dtype=float).reshape(len(models), 17)
    # single precision: half the memory traffic; log-likelihoods need no more than ~6 digits
    f32 = np.float32
    T = np.ascontiguousarray(table.astype(f32)[g].T) if n else np.zeros((17, 0), f32)
    log_cr, log_vr, beta_r, log_cw, log_vw, beta_w, sd_r0, sd_w0, v_today, w_today, \
        hr_a, hr_b, hr_c, gref, walk_clean, hr_walk, cbias = T
    fv, fc = f.v.astype(f32), f.c.astype(f32)
    has_v = ~np.isnan(fv)
    v = np.where(has_v, fv, f32(0.0))
    logv = np.log(np.maximum(v, f32(0.05)))
    logve = np.log(np.maximum(np.nan_to_num(f.v_eff.astype(f32), nan=0.0), f32(0.05)))
    has_c = ~np.isnan(fc)
    c = np.where(has_c, fc, f32(0.0))
    stepping = has_c & (c >= 40)
    st = stepping.astype(f32)
    logc = np.log(np.maximum(c, f32(1.0)))

    # --- speed (gait only) ---
    sv = has_v.astype(f32)
    l_s = sv * (0.98 - huber(v * (1 / 0.3)))
    k = math.log(0.28 * 2.5066)
    l_walk = sv * (-huber((logv - log_vw + 0.05) * (1 / 0.28)) - k - logv)
    l_run = sv * (-huber((logv - log_vr + 0.05) * (1 / 0.28)) - k - logv)
    # --- cadence against the loci (without speed: cadence alone, at the reference speed, weak) ---
    dv_r = np.where(has_v, beta_r * (logve - log_vr), 0.0)
    dv_w = np.where(has_v, beta_w * (logve - log_vw), 0.0)
    rr = np.where(stepping, logc - log_cr - dv_r, 0.0)
    rw = np.where(stepping, logc - log_cw - dv_w, 0.0)
    widen = np.where(has_v, f32(1.0), f32(2.0))
    sd_r = sd_r0 * widen
    sd_w = sd_w0 * widen
    sdb_r = np.maximum(sd_r, p.run_sd_back * widen)
    sdb_w = np.maximum(sd_w, p.walk_sd_back * widen)
    fr_c = -huber(rr / sd_r) - np.log(sd_r)
    br_c = -huber((rr - p.run_shift) / sdb_r) - np.log(sdb_r)
    fw_c = -huber(rw / sd_w) - np.log(sd_w)
    bw_c = -huber((rw - p.walk_shift) / sdb_w) - np.log(sdb_w)
    # gait evidence: cadence explained by either direction of that gait
    l_run += st * np.maximum(fr_c, br_c)
    l_walk += st * np.maximum(fw_c, bw_c)
    # direction evidence: a capped difference, which fades out for far shorter steps than any
    # backward gait (running drills, skipping, shuffling in a crowd) instead of growing
    d_run = st * np.clip(br_c - fr_c, -p.max_dir_llr, p.max_dir_llr)
    d_walk = st * np.clip(bw_c - fw_c, -p.max_dir_llr, p.max_dir_llr)
    d_run = np.where(d_run > 0, d_run * np.clip((0.28 - rr) * (1 / 0.08), 0.0, 1.0), d_run)
    d_walk = np.where(d_walk > 0, d_walk * np.clip((0.40 - rw) * (1 / 0.10), 0.0, 1.0), d_walk)
    # a step longer than forward at that cadence never speaks for backward (the wider backward
    # spread must not win in the far tail)
    d_run = np.where(rr <= 0, np.minimum(d_run, 0.0), d_run)
    d_walk = np.where(rw <= 0, np.minimum(d_walk, 0.0), d_walk)
    # cadence says 'no steps': the stationary state (or, while moving, a sensor dropout)
    zero = has_c & (c < 40)
    l_s += np.where(stepping, -4.0, 0.0)
    l_move_zero = np.where(zero, -3.0, 0.0)
    l_run += l_move_zero
    l_walk += l_move_zero
    # backward faster than the athlete's forward pace today is implausible (strides are forward)
    d_run -= st * huber(np.maximum(0.0, logve - v_today - math.log(0.92)) * (1 / 0.08))
    # ... and so is a "backward run" at under 58 % of it (drills, shuffling): self-selected
    # backward running is 0.68-0.82 x easy forward speed (biomech.md §1.2)
    d_run -= st * huber(np.maximum(0.0, v_today + math.log(0.58) - logve) * (1 / 0.08))
    d_walk -= st * huber(np.maximum(0.0, logve - w_today - math.log(0.95)) * (1 / 0.1))
    # --- heart rate: confounded (heat, fatigue, walk breaks after hard efforts): it may veto,
    # barely assert ---
    hr_res = f.hr.astype(f32) - (hr_a + hr_b * f.v_lag.astype(f32) + hr_c * f.t.astype(f32) * f32(1 / 3600.0))
    has_hr = ~np.isnan(hr_res)
    hres = np.where(has_hr, hr_res, 0.0)
    d_hr = np.where(has_hr, np.clip(huber(hres * (1 / p.hr_sd_fwd)) - huber((hres - p.hr_shift) * (1 / p.hr_sd_back))
                                    - math.log(p.hr_sd_back / p.hr_sd_fwd), -2.0, 1.5), 0.0)
    # --- stance time (running only) ---
    has_g = ~np.isnan(f.gct) & ~np.isnan(gref) & stepping
    if has_g.any():
        g_res = np.log(np.where(has_g, f.gct.astype(f32), f32(1.0))) - (gref - f32(0.6) * (logve - log_vr))
        d_g = np.where(has_g, np.clip(huber(g_res / p.gct_sd_fwd) - huber((g_res - p.gct_shift) / p.gct_sd_back)
                                      - math.log(p.gct_sd_back / p.gct_sd_fwd), -1.5, 1.5), 0.0)
    else:
        d_g = np.zeros(n, f32)
    # --- grade: steep ground counts against backward ---
    d_grade = -np.minimum(f32(4.0), np.maximum(f32(0.0), np.abs(f.grade.astype(f32)) - f32(p.grade_free)) * f32(1 / 0.015))

    w = p.evidence_weight
    if debug is not None:
        debug.update(d_run=d_run, d_walk=d_walk, d_hr=d_hr, d_g=d_g, d_grade=d_grade)
    dir_run = w * (d_run + d_hr + d_g + d_grade) - p.back_bias + cbias
    dir_walk = w * walk_clean * (d_walk + hr_walk * d_hr + d_grade) - p.back_bias_walk + cbias
    # direction: a bounded log-odds split of the gait's likelihood between its two directions;
    # each record counts by the time it stands for (smart recording: fewer records, same evidence)
    sdt = np.sqrt(f.dt).astype(f32)
    L = np.empty((n, 5), f32)
    L[:, S] = l_s * sdt
    ls_w = _logsigmoid(dir_walk)          # log P(backward); log P(forward) = ls - x
    ls_r = _logsigmoid(dir_run)
    L[:, BW] = (l_walk + ls_w) * sdt
    L[:, FW] = (l_walk + ls_w - dir_walk) * sdt
    L[:, BR] = (l_run + ls_r) * sdt
    L[:, FR] = (l_run + ls_r - dir_run) * sdt
    nanr = ~stepping
    r_run = np.where(nanr, np.nan, rr)
    r_walk = np.where(nanr, np.nan, rw)
    return Emissions(L, r_run, r_walk, np.where(has_hr, hr_res, np.nan), dir_run, dir_walk,
                     has_v, stepping, has_hr)
