"""Compiled inner loops of the classifier (numba, ``cache=True``; one pass over the records each).

The classifier's arithmetic is defined in ``features.py``, ``model.py`` and ``hmm.py``; these are
the same computations written as explicit loops so that a batch is classified at > 1 million
records per second on one core. They release the GIL (``nogil``). The first call in a fresh
environment compiles them (a few seconds, then cached on disk next to this file in
``__pycache__``); ``warm_up()`` does that on purpose and ``benchmarks/bench_classify.py`` reports
its cost separately.
"""

from __future__ import annotations

import math
import time

import numpy as np
from numba import njit

_JIT = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")
NAN = np.nan


@njit(**_JIT)
def wmean(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Mean of the non-NaN values of x in each [lo, hi) window (NaN when the window has none)."""
    n = x.size
    cs = np.empty(n + 1)
    cn = np.empty(n + 1)
    cs[0] = 0.0
    cn[0] = 0.0
    s = 0.0
    c = 0.0
    for i in range(n):
        v = x[i]
        if v == v:
            s += v
            c += 1.0
        cs[i + 1] = s
        cn[i + 1] = c
    out = np.empty(n)
    for i in range(n):
        k = cn[hi[i]] - cn[lo[i]]
        out[i] = (cs[hi[i]] - cs[lo[i]]) / k if k > 0 else NAN
    return out


@njit(**_JIT)
def cells(tg: np.ndarray):
    """Whole-second cells of the time grid: floor(tg) and ceil(tg) as integers."""
    n = tg.size
    fl = np.empty(n, np.int64)
    ce = np.empty(n, np.int64)
    for i in range(n):
        fl[i] = math.floor(tg[i])
        ce[i] = math.ceil(tg[i])
    return fl, ce


@njit(**_JIT)
def bounds(fl: np.ndarray, ce: np.ndarray, starts: np.ndarray, ends: np.ndarray, before: int, after: int):
    """[lo, hi) record bounds of the window [t - before, t + after] (whole seconds: the records whose
    cell floor(t_j) lies in [ceil(t_i) - before, floor(t_i) + after]), per record, never crossing
    an activity; two pointers, cells sorted within each activity."""
    n = fl.size
    lo = np.empty(n, np.int64)
    hi = np.empty(n, np.int64)
    for g in range(starts.size):
        a, b = starts[g], ends[g]
        p = a
        q = a
        for i in range(a, b):
            ca = ce[i] - before
            cb = fl[i] + after
            while q < b and fl[q] <= cb:
                q += 1
            while p < b and fl[p] < ca:
                p += 1
            lo[i] = p
            hi[i] = q
    return lo, hi


@njit(**_JIT)
def wmean_grid(x: np.ndarray, fl: np.ndarray, ce: np.ndarray, starts: np.ndarray, ends: np.ndarray,
               before: int, after: int) -> np.ndarray:
    """``wmean`` over the windows of ``bounds`` with running sums (one pass, no index arrays)."""
    out, _ = wmean2_grid(x, x, fl, ce, starts, ends, before, after, False)
    return out


@njit(**_JIT)
def wmean2_grid(x: np.ndarray, y: np.ndarray, fl: np.ndarray, ce: np.ndarray, starts: np.ndarray,
                ends: np.ndarray, before: int, after: int, both: bool):
    """Window means of x (and of y when ``both``) over the same windows, in one pass."""
    n = fl.size
    out = np.empty(n)
    out2 = np.empty(n if both else 0)
    for g in range(starts.size):
        a, b = starts[g], ends[g]
        p = a
        q = a
        s = 0.0
        c = 0
        s2 = 0.0
        c2 = 0
        for i in range(a, b):
            ca = ce[i] - before
            cb = fl[i] + after
            while q < b and fl[q] <= cb:
                v = x[q]
                if v == v:
                    s += v
                    c += 1
                if both:
                    v = y[q]
                    if v == v:
                        s2 += v
                        c2 += 1
                q += 1
            while p < b and fl[p] < ca:
                v = x[p]
                if v == v:
                    s -= v
                    c -= 1
                if both:
                    v = y[p]
                    if v == v:
                        s2 -= v
                        c2 -= 1
                p += 1
            if c > 0:
                out[i] = s / c
            else:
                s = 0.0
                out[i] = NAN
            if both:
                if c2 > 0:
                    out2[i] = s2 / c2
                else:
                    s2 = 0.0
                    out2[i] = NAN
    return out, out2


@njit(**_JIT)
def viterbi(L: np.ndarray, starts: np.ndarray, ends: np.ndarray, logA: np.ndarray) -> np.ndarray:
    """Exact Viterbi path of every sequence [starts[k], ends[k]) of log-likelihoods L (N, K).

    Ties go to the lowest state index (as ``np.argmax``).
    """
    n, k = L.shape
    path = np.zeros(n, np.int8)
    bp = np.empty((n, k), np.int8)
    delta = np.empty(k)
    new = np.empty(k)
    for g in range(starts.size):
        a = starts[g]
        b = ends[g]
        if b <= a:
            continue
        for j in range(k):
            delta[j] = L[a, j]
        for t in range(a + 1, b):
            for j in range(k):
                best = -np.inf
                bi = 0
                for i in range(k):
                    v = delta[i] + logA[i, j]
                    if v > best:
                        best = v
                        bi = i
                new[j] = best + L[t, j]
                bp[t, j] = bi
            for j in range(k):
                delta[j] = new[j]
        s = 0
        for j in range(1, k):
            if delta[j] > delta[s]:
                s = j
        for t in range(b - 1, a - 1, -1):
            path[t] = s
            if t > a:
                s = bp[t, s]
    return path


@njit(inline="always")
def _huber(z):
    a = abs(z)
    m = min(a, 2.0)
    return m * (a - 0.5 * m)


@njit(inline="always")
def _logsig(x):
    return min(x, 0.0) - math.log1p(math.exp(-abs(x)))


@njit(inline="always")
def _clip(x, lo, hi):
    return min(max(x, lo), hi)


# positions of the model constants in the ``prm`` vector passed to ``emissions``
P_NAMES = ("run_shift", "run_sd_back", "walk_shift", "walk_sd_back", "hr_shift", "hr_sd_fwd", "hr_sd_back",
           "gct_shift", "gct_sd_fwd", "gct_sd_back", "grade_free", "evidence_weight", "back_bias",
           "back_bias_walk", "max_dir_llr")


@njit(**_JIT)
def emissions(v_in, c_in, veff_in, hr_in, vlag_in, t_in, gct_in, grade_in, dt_in, group, table, prm):
    """Log-likelihood (N, 5) of every record under the five states; see ``model.emissions``."""
    n = v_in.size
    S, FW, BW, FR, BR = 0, 1, 2, 3, 4
    L = np.empty((n, 5), np.float32)   # single precision: half the memory traffic downstream
    r_run = np.empty(n)
    r_walk = np.empty(n)
    hr_out = np.empty(n)
    dir_run_o = np.empty(n)
    dir_walk_o = np.empty(n)
    has_v_o = np.empty(n, np.bool_)
    step_o = np.empty(n, np.bool_)
    has_hr_o = np.empty(n, np.bool_)
    run_shift, run_sd_back, walk_shift, walk_sd_back = prm[0], prm[1], prm[2], prm[3]
    hr_shift, hr_sd_fwd, hr_sd_back = prm[4], prm[5], prm[6]
    gct_shift, gct_sd_fwd, gct_sd_back = prm[7], prm[8], prm[9]
    grade_free, w, back_bias, back_bias_walk, max_llr = prm[10], prm[11], prm[12], prm[13], prm[14]
    k0 = math.log(0.28 * 2.5066)
    l092, l058, l095, l085 = math.log(0.92), math.log(0.58), math.log(0.95), math.log(0.85)
    log_hr_ratio = math.log(hr_sd_back / hr_sd_fwd)
    log_gct_ratio = math.log(gct_sd_back / gct_sd_fwd)
    # per activity: log of the four cadence spreads (a record without speed doubles them)
    G = table.shape[0]
    lsd = np.empty((G, 4))
    for q in range(G):
        lsd[q, 0] = math.log(table[q, 6])
        lsd[q, 1] = math.log(max(table[q, 6], run_sd_back))
        lsd[q, 2] = math.log(table[q, 7])
        lsd[q, 3] = math.log(table[q, 7] if table[q, 17] < walk_shift else max(table[q, 7], walk_sd_back))
    log2 = math.log(2.0)
    for i in range(n):
        row = table[group[i]]
        log_cr, log_vr, beta_r, log_cw, log_vw, beta_w = row[0], row[1], row[2], row[3], row[4], row[5]
        sd_r0, sd_w0, v_today, w_today = row[6], row[7], row[8], row[9]
        hr_a, hr_b, hr_c, gref, walk_clean, hr_walk, cbias = row[10], row[11], row[12], row[13], row[14], row[15], row[16]
        walk_sep = row[17]
        fv = v_in[i]
        has_v = fv == fv
        v = fv if has_v else 0.0
        logv = math.log(max(v, 0.05))
        ve = veff_in[i]
        logve = math.log(max(ve if ve == ve else 0.0, 0.05))
        fc = c_in[i]
        has_c = fc == fc
        c = fc if has_c else 0.0
        stepping = has_c and c >= 40.0
        st = 1.0 if stepping else 0.0
        logc = math.log(max(c, 1.0))
        sv = 1.0 if has_v else 0.0
        l_s = sv * (0.98 - _huber(v / 0.3))
        l_walk = sv * (-_huber((logv - log_vw + 0.05) / 0.28) - k0 - logv)
        l_run = sv * (-_huber((logv - log_vr + 0.05) / 0.28) - k0 - logv)
        dv_r = beta_r * (logve - log_vr) if has_v else 0.0
        dv_w = beta_w * (logve - log_vw) if has_v else 0.0
        rr = logc - log_cr - dv_r if stepping else 0.0
        rw = logc - log_cw - dv_w if stepping else 0.0
        widen = 1.0 if has_v else 2.0
        sd_r = sd_r0 * widen
        sd_w = sd_w0 * widen
        sdb_r = max(sd_r, run_sd_back * widen)
        # a close backward-walking cluster was fitted by the mixture with the forward one's spread
        sdb_w = sd_w if walk_sep < walk_shift else max(sd_w, walk_sd_back * widen)
        lw = 0.0 if has_v else log2
        gq = group[i]
        fr_c = -_huber(rr / sd_r) - (lsd[gq, 0] + lw)
        br_c = -_huber((rr - run_shift) / sdb_r) - (lsd[gq, 1] + lw)
        fw_c = -_huber(rw / sd_w) - (lsd[gq, 2] + lw)
        bw_c = -_huber((rw - walk_sep) / sdb_w) - (lsd[gq, 3] + lw)
        l_run += st * max(fr_c, br_c)
        l_walk += st * max(fw_c, bw_c)
        d_run = st * _clip(br_c - fr_c, -max_llr, max_llr)
        d_walk = st * _clip(bw_c - fw_c, -max_llr, max_llr)
        if d_run > 0:
            d_run *= _clip((0.28 - rr) / 0.08, 0.0, 1.0)
        if d_walk > 0:
            d_walk *= _clip((0.40 - rw) / 0.10, 0.0, 1.0)
        if rr <= 0:
            d_run = min(d_run, 0.0)
        if rw <= 0:
            d_walk = min(d_walk, 0.0)
        if stepping:
            l_s -= 4.0
        if has_c and c < 40.0:
            l_run -= 3.0
            l_walk -= 3.0
        # (these two also hold without cadence, where speed and HR are all there is)
        # without cadence the speed window is all that speaks for the gait, so it is sharper
        # (and its upper edge lower: backward is <= 0.82x easy pace, and today's pace is then a
        # high quantile of running speed)
        sp_w = st if has_c else 1.0
        sp_scale = 0.08 if has_c else 0.03
        d_run -= sp_w * _huber(max(0.0, logve - v_today - (l092 if has_c else l085)) / sp_scale)
        d_run -= sp_w * _huber(max(0.0, v_today + l058 - logve) / sp_scale)
        d_walk -= st * _huber(max(0.0, logve - w_today - l095) / 0.1)
        hres = hr_in[i] - (hr_a + hr_b * vlag_in[i] + hr_c * t_in[i] / 3600.0)
        has_hr = hres == hres
        d_hr = 0.0
        if has_hr:
            d_hr = _clip(_huber(hres / hr_sd_fwd) - _huber((hres - hr_shift) / hr_sd_back) - log_hr_ratio, -2.0, 1.5)
        d_g = 0.0
        g = gct_in[i]
        if g == g and gref == gref and stepping:
            g_res = math.log(g) - (gref - 0.6 * (logve - log_vr))
            d_g = _clip(_huber(g_res / gct_sd_fwd) - _huber((g_res - gct_shift) / gct_sd_back) - log_gct_ratio,
                        -1.5, 1.5)
        d_grade = -min(4.0, max(0.0, abs(grade_in[i]) - grade_free) / 0.015)
        dir_run = w * (d_run + d_hr + d_g + d_grade) - back_bias + cbias
        if not has_c:
            dir_run -= NO_CADENCE_BIAS   # speed and HR only: HR drift and pace changes mimic it
        dir_walk = w * walk_clean * (d_walk + hr_walk * d_hr + d_grade) - back_bias_walk + cbias
        sdt = math.sqrt(dt_in[i])
        ls_w = _logsig(dir_walk)
        ls_r = _logsig(dir_run)
        L[i, S] = l_s * sdt
        L[i, BW] = (l_walk + ls_w) * sdt
        L[i, FW] = (l_walk + ls_w - dir_walk) * sdt
        L[i, BR] = (l_run + ls_r) * sdt
        L[i, FR] = (l_run + ls_r - dir_run) * sdt
        r_run[i] = rr if stepping else NAN
        r_walk[i] = rw if stepping else NAN
        hr_out[i] = hres if has_hr else NAN
        dir_run_o[i] = dir_run
        dir_walk_o[i] = dir_walk
        has_v_o[i] = has_v
        step_o[i] = stepping
        has_hr_o[i] = has_hr
    return L, r_run, r_walk, hr_out, dir_run_o, dir_walk_o, has_v_o, step_o, has_hr_o


def warm_up() -> float:
    """Compile (or load from the on-disk cache) every kernel by classifying two tiny synthetic
    activities, one with GPS and one treadmill; returns the seconds it took."""
    from retroingest.classify.core import classify
    from retroingest.classify.synth import session

    t0 = time.perf_counter()
    import polars as pl
    a, _ = session("track_intervals", seed=1)
    b, _ = session("backward_walk_treadmill", seed=2)
    frame = pl.concat([a.head(900).with_columns(pl.lit(1, pl.Int64).alias("activity_id")),
                       b.head(900).with_columns(pl.lit(2, pl.Int64).alias("activity_id"))])
    classify(frame)
    return time.perf_counter() - t0



# --- per-activity adaptation (model.adapt) ----------------------------------------------------

HIST_LO, HIST_STEP, HIST_N = -0.4, 0.005, 181
NO_CADENCE_BIAS = 0.4     # extra per-record log-odds against backward running without cadence
NO_CADENCE_SPEED_Q = 0.85  # quantile of running speeds taken as today's forward pace without cadence
TRACK_MAX_RG_PER_M = 0.2   # track: radius of gyration per metre covered in the 4-minute window
TRACK_LAP_M = 400.0        # or one lap covered within 8 minutes (walking)
# walking mixture test (forward_cluster): backward-cluster distances tried, and the gain a closer
# one (below Params.walk_shift, 0.13 in log cadence) needs; measured on development seeds 8 and 9 (docs/ACCURACY.md)
MIX_SHIFTS = np.array([0.05, 0.06, 0.07, 0.08, 0.1, 0.13, 0.16, 0.2])
MIX_GAIN_CLOSE = 15.0


@njit(**_JIT)
def _smooth(h: np.ndarray, half: int, scale: float) -> np.ndarray:
    """``np.convolve(h, gaussian, "same")`` for a symmetric Gaussian of 2*half+1 taps (scale in bins)."""
    n = h.size
    ker = np.empty(2 * half + 1)
    for j in range(-half, half + 1):
        ker[j + half] = math.exp(-0.5 * (j * scale) ** 2)
    out = np.zeros(n)
    for i in range(n):
        s = 0.0
        for j in range(-half, half + 1):
            k = i + j
            if 0 <= k < n:
                s += h[k] * ker[j + half]
        out[i] = s
    return out


@njit(**_JIT)
def _median(x: np.ndarray) -> float:
    """Median; NaN for an empty array or when any value is NaN (as ``np.median``)."""
    if x.size == 0:
        return NAN
    for v in x:
        if v != v:
            return NAN
    return np.median(x)


@njit(**_JIT)
def lowest_peak(x: np.ndarray, w: np.ndarray, step: float, smooth: float, min_mass: float) -> float:
    """Centre of the lowest peak holding >= min_mass of the (time-weighted) values of x."""
    lo = np.quantile(x, 0.01) - 3 * smooth
    nb = 1000
    h = np.zeros(nb)
    for i in range(x.size):
        k = int((x[i] - lo) / step)  # truncation toward zero, as astype(int64)
        k = min(max(k, 0), nb - 1)
        h[k] += w[i]
    half = int(3 * smooth / step)
    hs = _smooth(h, half, step / smooth)
    cum = np.zeros(nb + 1)
    cum[1:] = np.cumsum(h)
    total = max(h.sum(), 1e-9)
    win = max(1, int(2 * smooth / step))
    best = -1
    for p in range(1, nb - 1):
        if hs[p] >= hs[p - 1] and hs[p] > hs[p + 1]:
            mass = (cum[min(p + win + 1, nb)] - cum[max(p - win, 0)]) / total
            if mass >= min_mass:
                best = p
                break
    if best < 0:
        best = int(np.argmax(hs))
    return lo + (best + 0.5) * step


@njit(**_JIT)
def _mixture_bound(hz, xz, o, sd, shift):
    """Upper bound on ``_mixture_ll``'s log-likelihood for any share: sum of weight x log of the
    larger component density (+1e-12, bounded without exp: log(a + e) <= log a + e/a)."""
    ls = math.log(sd)
    le = math.log(1e-12)
    out = 0.0
    for i in range(hz.size):
        zf = (xz[i] - o) / sd
        zb = (xz[i] - o - shift) / sd
        la = -0.5 * min(zf * zf, zb * zb) - ls
        if la >= le + 10.0:
            out += hz[i] * (la + 5e-5)            # e/a <= exp(-10) < 5e-5
        else:
            out += hz[i] * (math.log(2.0) + max(la, le))
    return out


@njit(**_JIT)
def _mixture_ll(hz, xz, o, sd, shift, lf, lb, tot):
    """Log-likelihood and share of N(o, sd) + N(o + shift, sd) fitted by six EM steps from 0.5."""
    k = hz.size
    for i in range(k):
        lf[i] = math.exp(-0.5 * ((xz[i] - o) / sd) ** 2) / sd
        lb[i] = math.exp(-0.5 * ((xz[i] - o - shift) / sd) ** 2) / sd
    pi = 0.5
    for _ in range(6):
        s = 0.0
        for i in range(k):
            s += hz[i] * pi * lb[i] / ((1 - pi) * lf[i] + pi * lb[i] + 1e-12)
        pi = min(max(s / tot, 0.02), 0.98)
    ll2 = 0.0
    for i in range(k):
        ll2 += hz[i] * math.log((1 - pi) * lf[i] + pi * lb[i] + 1e-12)
    return ll2, pi


@njit(**_JIT)
def two_cluster_gain(h: np.ndarray, shift: float):
    """How much better two clusters one ``shift`` apart explain a residual histogram than one.

    Returns (gain in nats per ~5 s of data, forward offset, backward share) of the best
    mixture N(o, s) + N(o + shift, s) against the best single N(mu, s'), both fitted to the
    time-weighted histogram. A wide single cluster (a stroll, a hike) gains little; a forward
    cluster with a separate shorter-stepped one gains a lot even when the smaller one is only a
    shoulder of the larger.
    """
    tot = h.sum()
    if tot <= 0:
        return 0.0, 0.0, 0.0
    nb = h.size
    x = HIST_LO + HIST_STEP * np.arange(nb)
    mu = (h * x).sum() / tot
    sd1 = max(math.sqrt((h * (x - mu) ** 2).sum() / tot), 0.02)
    ll1 = (h * (-0.5 * ((x - mu) / sd1) ** 2 - math.log(sd1))).sum()
    cand = x[(x > mu - shift - 0.1) & (x < mu + 0.02)][::2]
    sds = np.array([0.025, 0.035, 0.05, 0.07])
    best_ll, best_o, best_pi = -np.inf, 0.0, 0.0
    found = False
    # empty bins add nothing to any sum below: work on the occupied ones only
    nz = np.flatnonzero(h > 0)
    hz = h[nz]
    xz = x[nz]
    k = nz.size
    lf = np.empty(k)
    lb = np.empty(k)
    # Pruning, exact: a mixture's density is at most the larger of its two components, so
    # bound[c] >= its log-likelihood whatever the share. The candidate with the highest bound is
    # fitted first; any candidate whose bound is below that fit's log-likelihood cannot be the
    # best and is skipped. The rest are fitted in the original order with the original strict
    # comparison, so the same candidate wins as without pruning (adaptation 336 -> 207 ms per
    # million records, bench_classify.py --profile).
    n_sd = sds.size
    if cand.size == 0:
        return 0.0, 0.0, 0.0
    bound = np.empty(cand.size * n_sd)
    for ci in range(cand.size):
        for si in range(n_sd):
            bound[ci * n_sd + si] = _mixture_bound(hz, xz, cand[ci], sds[si], shift)
    top = int(np.argmax(bound))
    floor, pi_top = _mixture_ll(hz, xz, cand[top // n_sd], sds[top % n_sd], shift, lf, lb, tot)
    for ci in range(cand.size):
        o = cand[ci]
        for si in range(n_sd):
            c = ci * n_sd + si
            if bound[c] < floor:
                continue
            ll2, pi = (floor, pi_top) if c == top else _mixture_ll(hz, xz, o, sds[si], shift, lf, lb, tot)
            if not found or ll2 > best_ll:
                best_ll, best_o, best_pi, found = ll2, o, pi, True
    if not found:
        return 0.0, 0.0, 0.0
    return (best_ll - ll1) / 5.0, best_o, best_pi


@njit(**_JIT)
def forward_cluster(r, w, shift, prior_sd, prior_back, sd_floor, sd_cap, smooth, min_mass, valley_ratio,
                    mixture_test, mix_gain, close_ok):
    """Forward offset, backward share, forward spread and bimodality of an activity's cadence residuals.

    A time-weighted histogram of the residuals is smoothed and its peaks found. Forward gait has
    the longest step at a given cadence, so the *lowest* peak holding >= ``min_mass`` of the time
    is the forward cluster. With a single peak the activity is all one direction: all forward, or
    all backward (then its forward locus sits one ``shift`` lower); the two are weighed against the
    baseline's prior on the offset (wide for a new athlete, narrow once history accumulates),
    because the data alone cannot tell them apart; a small separate cluster one shift *above* the
    peak (a few backward reps) says forward. ``bimodal``: a significant peak at least half a shift
    above the forward one with a real valley between them (or, with ``mixture_test``, a
    two-cluster mixture that explains the histogram much better than one cluster; with
    ``close_ok`` the mixture's backward cluster may also sit closer than ``shift`` above the forward one).
    """
    nb = HIST_N
    x = HIST_LO + HIST_STEP * np.arange(nb)
    h = np.zeros(nb)
    for i in range(r.size):
        k = int(np.rint((r[i] - HIST_LO) / HIST_STEP))
        k = min(max(k, 0), nb - 1)
        h[k] += w[i]
    total = h.sum()
    tot_ = max(total, 1e-9)
    half = int(np.rint(3 * smooth / HIST_STEP))
    hs = _smooth(h, half, HIST_STEP / smooth)
    cum = np.zeros(nb + 1)
    cum[1:] = np.cumsum(h)
    win = int(np.rint(2.5 * smooth / HIST_STEP))
    sig = np.empty(nb, np.int64)
    nsig = 0
    for p in range(1, nb - 1):
        if hs[p] >= hs[p - 1] and hs[p] > hs[p + 1]:
            mass = (cum[min(p + win + 1, nb)] - cum[max(p - win, 0)]) / tot_
            if mass >= min_mass:
                sig[nsig] = p
                nsig += 1
    top = int(np.argmax(hs))
    low = sig[0] if nsig > 0 else top
    o_low, o_top = x[low], x[top]
    if o_top - o_low >= 0.025:
        o = o_low
    else:
        m_above = 0.0
        m_below = 0.0
        for i in range(nb):
            if x[i] > o_top + 0.6 * shift and x[i] < o_top + 1.8 * shift:
                m_above += h[i]
            if x[i] < o_top - 0.6 * shift and x[i] > o_top - 1.8 * shift:
                m_below += h[i]
        m_above /= tot_
        m_below /= tot_
        lf = -0.5 * (o_top / prior_sd) ** 2 - math.log(prior_sd)
        sdb = math.hypot(prior_sd, 0.05)
        lbk = -0.5 * ((o_top - shift) / sdb) ** 2 - math.log(sdb)
        logit = lbk - lf + math.log(prior_back / (1.0 - prior_back))
        if m_above >= 0.03 and m_above > 2 * m_below:
            logit = -1.0
        o = o_top if 0.0 >= logit else o_top - shift
    back = 0.0
    for i in range(nb):
        if x[i] > o + 0.5 * shift:
            back += h[i]
    back_share = back / tot_
    near = (r > o - 0.12) & (r < o + 0.4 * shift)
    if near.sum() >= 20:
        sd = min(max(1.4826 * np.median(np.abs(r[near] - o)), sd_floor), sd_cap)
    else:
        sd = sd_cap
    k0 = int(min(max(np.rint((o - HIST_LO) / HIST_STEP), 0), nb - 1))
    if mixture_test and total >= 480.0:
        # the backward cluster's distance is the athlete's, not a constant: with a shallow
        # cadence-speed law it is as little as +0.05 (biomech §8 ranges), so several shifts are
        # tried; the closer ones (below ``shift``) must explain the histogram far better and hold a real
        # share of the time, because a stroll at two paces can also leave two near clusters,
        # and are only tried where speed is measured well (close_ok: track or treadmill; outdoors
        # a real 6 h run/walk in the corpus left a close pair from GPS speed alone)
        best_gain, best_o, best_share, best_shift = -1e9, 0.0, 0.0, shift
        for sh in MIX_SHIFTS:
            close = sh < shift
            if close and not close_ok:
                continue
            gain, o_mix, share = two_cluster_gain(h, sh)
            ok = (gain > (MIX_GAIN_CLOSE if close else mix_gain) and abs(o_mix) <= 0.15
                  and ((0.2 < share < 0.8) if close else (0.08 < share < 0.92)))
            if ok and gain > best_gain:
                best_gain, best_o, best_share, best_shift = gain, o_mix, share, sh
        if best_gain > -1e9:
            return best_o, best_share, sd, True, best_shift
    bimodal = False
    for q in range(nsig):
        pk = sig[q]
        if x[pk] - o >= 0.5 * shift and pk > k0:
            valley = hs[k0:pk + 1].min()
            if valley < valley_ratio * min(hs[k0], hs[pk]):
                bimodal = True
    return o, back_share, sd, bimodal, shift


@njit(**_JIT)
def adapt(starts, ends, v, v_eff, c, grade, dt, t, hr, v_lag, gct, steady, loci, bl, context_prior, special, prm):
    """Per-activity forward offsets, spreads, speeds, HR line and stance reference (see ``model.adapt``).

    Residuals r = log c - locus(log v_eff) against each activity's baseline loci (``loci`` rows:
    log run cadence, log run speed, run beta, log walk cadence, log walk speed, walk beta); the
    clusters are fitted on steady, flat (|grade| < 4 %) records: running at >= 135 spm and
    >= 1.4 m/s, walking at 80-135 spm and 0.5-2 m/s.
    ``bl`` rows: offset_sd, hr_gain, log run speed. ``special``: a track or treadmill session. ``prm``: run_shift, run_sd_fwd, walk_shift,
    walk_sd_fwd, walk_min_mass, walk_valley, mix_gain. Returns a (G, 15) array: run_off, walk_off,
    p_back, run_sd, walk_sd, walk_bimodal, run_speed, walk_speed, hr_a, hr_b, hr_c, hr_walk_ok,
    gct_ref (NaN = none), walk backward share, walking backward-cluster distance (log cadence).
    """
    run_shift, run_sd_fwd, walk_shift, walk_sd_fwd = prm[0], prm[1], prm[2], prm[3]
    walk_min_mass, walk_valley, mix_gain = prm[4], prm[5], prm[6]
    G = starts.size
    out = np.full((G, 15), NAN)
    for g in range(G):
        a, b = starts[g], ends[g]
        nn = b - a
        run_ok = np.zeros(nn, np.bool_)
        walk_ok = np.zeros(nn, np.bool_)
        r_run = np.empty(nn)
        r_walk = np.empty(nn)
        logv = np.empty(nn)
        for i in range(nn):
            j = a + i
            lv = math.log(max(v_eff[j], 0.05)) if v_eff[j] == v_eff[j] else NAN
            cj = c[j]
            lc = math.log(max(cj if cj == cj else 1.0, 1.0))
            logv[i] = lv
            r_run[i] = lc - (loci[g, 0] + loci[g, 2] * (lv - loci[g, 1]))
            r_walk[i] = lc - (loci[g, 3] + loci[g, 5] * (lv - loci[g, 4]))
            if abs(grade[j]) < 0.04 and steady[j]:
                vj = v[j]
                run_ok[i] = cj >= 135 and vj >= 1.4
                walk_ok[i] = cj >= 80 and cj < 135 and vj >= 0.5 and vj < 2.0
        dts = dt[a:b]
        prior = context_prior[g]
        offset_sd = bl[g, 0]
        run_off, p_back, run_sd = 0.0, 0.0, run_sd_fwd
        if run_ok.sum() >= 120:
            run_off, p_back, run_sd, _, _ = forward_cluster(r_run[run_ok], dts[run_ok], run_shift, offset_sd, prior,
                                                         0.015, 0.07, 0.01, 0.10, 0.6, True, mix_gain, special[g])
        walk_off, walk_sd, walk_bimodal, walk_back, walk_sep = 0.0, walk_sd_fwd, False, 0.0, walk_shift
        if walk_ok.sum() >= 60:
            walk_off, walk_back, walk_sd, walk_bimodal, walk_sep = forward_cluster(
                r_walk[walk_ok], dts[walk_ok], walk_shift, max(offset_sd, 0.05), prior, 0.03, 0.13, 0.018,
                walk_min_mass, walk_valley, True, mix_gain, special[g])
        out[g, 0], out[g, 1], out[g, 2], out[g, 3], out[g, 4] = run_off, walk_off, p_back, run_sd, walk_sd
        out[g, 5] = 1.0 if walk_bimodal else 0.0
        out[g, 13] = walk_back
        out[g, 14] = walk_sep
        vs = v[a:b]
        fr_sel = run_ok & (r_run - run_off < run_shift / 2)
        if fr_sel.sum() >= 60:
            out[g, 6] = np.quantile(vs[fr_sel], 0.6)
        # no cadence (a file without the channel, or long dropouts): today's forward running
        # speed and the HR line come from steady, flat running-speed records without cadence;
        # forward running is the faster part (backward is 0.68-0.82 x easy forward, biomech §8),
        # hence a high quantile, and the HR line is re-centred on its lowest peak below
        nc_sel = np.zeros(nn, np.bool_)
        if run_ok.sum() < 120:
            for i in range(nn):
                j = a + i
                nc_sel[i] = (c[j] != c[j]) and abs(grade[j]) < 0.04 and steady[j] and v[j] >= 1.4
            if nc_sel.sum() >= 120:
                out[g, 6] = np.quantile(vs[nc_sel], NO_CADENCE_SPEED_Q)
                # the HR line from the forward-fast part only (a slower backward share would
                # flatten the fitted gain and hide its own HR excess)
                nc_sel &= vs >= 0.9 * out[g, 6]
            else:
                nc_sel[:] = False
        fw_sel = walk_ok & (r_walk - walk_off < walk_sep / 2)
        if fw_sel.sum() >= 60:
            out[g, 7] = np.quantile(vs[fw_sel], 0.6)
        hrs = hr[a:b]
        vl = v_lag[a:b]
        ts = t[a:b]
        ok = (fr_sel | fw_sel | nc_sel) & ~np.isnan(hrs) & ~np.isnan(vl)
        nok = ok.sum()
        if nok >= 120:
            xx = vl[ok]
            th = ts[ok] / 3600.0
            y = hrs[ok]
            gain = bl[g, 1]
            xc = xx - xx.mean()
            yc = y - y.mean()
            tc = th - th.mean()
            sxx, stt, sxt = (xc * xc).sum(), (tc * tc).sum(), (xc * tc).sum()
            if sxx >= nok * 0.04 and nok >= 300:
                sxy, sty = (xc * yc).sum(), (tc * yc).sum()
                det = sxx * stt - sxt * sxt
                b_fit = (sxy * stt - sty * sxt) / det if det > 1e-9 else sxy / sxx
                gain = min(max(0.5 * b_fit + 0.5 * gain, 10.0), 40.0)
            drift = 0.0
            if stt > nok * (0.5 / 3.46) ** 2:
                drift = min(max((tc * (yc - gain * xc)).sum() / stt, 0.0), 15.0)
            out[g, 9], out[g, 10] = gain, drift
            out[g, 11] = 1.0 if (ok & walk_ok).sum() > (ok & run_ok).sum() else 0.0
            hr_a = _median(y - gain * xx - drift * th)
            # without cadence only running-speed records re-centre it (walking HR sits far
            # below a running line and would become the 'forward' peak)
            v_mov = 1.4 if nc_sel.any() else 0.5
            mov = (vs >= v_mov) & steady[a:b] & ~np.isnan(hrs) & ~np.isnan(vl)
            if mov.sum() >= 60:
                res = hrs[mov] - (hr_a + gain * vl[mov] + drift * ts[mov] / 3600.0)
                hr_a += lowest_peak(res, dts[mov], 1.0, 3.0, 0.25)
            out[g, 8] = hr_a
        gs = gct[a:b]
        gok = fr_sel & ~np.isnan(gs)
        if gok.sum() >= 60:
            out[g, 12] = _median(np.log(gs[gok]) + 0.6 * (logv[gok] - bl[g, 2]))
    return out


# --- forward references per activity (core._refs) ----------------------------------------------

@njit(**_JIT)
def refs(starts, ends, path, has_c, has_v, v_eff, c, gct, grade, dt, pop):
    """Per activity: seconds of flat forward running / walking and their medians (see ``core._refs``).

    ``pop``: log run cadence, log run speed, run beta, log walk cadence, log walk speed, walk beta
    of the population prior. Returns (G, 7): fr_s, fw_s, run_off, run_v, run_c, gct_ms, walk_off.
    """
    G = starts.size
    out = np.full((G, 7), NAN)
    longest = 0
    for g in range(G):
        longest = max(longest, ends[g] - starts[g])
    b_off = np.empty(longest)
    b_v = np.empty(longest)
    b_c = np.empty(longest)
    b_g = np.empty(longest)
    b_w = np.empty(longest)
    for g in range(G):
        a, b = starts[g], ends[g]
        fr_s = 0.0
        fw_s = 0.0
        nr = 0
        ng = 0
        nw = 0
        for j in range(a, b):
            if not (has_c[j] and has_v[j] and abs(grade[j]) < 0.04):
                continue
            ve = v_eff[j] if v_eff[j] == v_eff[j] else 0.0
            lv = math.log(max(ve, 0.05))
            lc = math.log(max(c[j] if c[j] == c[j] else 1.0, 1.0))
            if path[j] == 3 and c[j] >= 135:
                fr_s += dt[j]
                b_off[nr] = lc - (pop[0] + pop[2] * (lv - pop[1]))
                b_v[nr] = v_eff[j]
                b_c[nr] = c[j]
                nr += 1
                if np.isfinite(gct[j]):
                    b_g[ng] = math.log(gct[j]) + 0.6 * (lv - pop[1])
                    ng += 1
            elif path[j] == 1:
                fw_s += dt[j]
                b_w[nw] = lc - (pop[3] + pop[5] * (lv - pop[4]))
                nw += 1
        out[g, 0], out[g, 1] = fr_s, fw_s
        if fr_s >= 60:
            out[g, 2] = _median(b_off[:nr])
            out[g, 3] = _median(b_v[:nr])
            out[g, 4] = _median(b_c[:nr])
            if ng >= 60:
                out[g, 5] = math.exp(_median(b_g[:ng]))
        if fw_s >= 60:
            out[g, 6] = _median(b_w[:nw])
    return out


# --- segment statistics (core._segments) --------------------------------------------------------

@njit(**_JIT)
def _nanmedian_into(buf, x, a, b):
    q = 0
    for i in range(a, b):
        v = x[i]
        if v == v:
            buf[q] = v
            q += 1
    return np.median(buf[:q]) if q > 0 else NAN


@njit(**_JIT)
def segment_stats(st, en, path, L, dir_run, dir_walk, r_run, r_walk, beta_g, wbeta_g, group, dt, v, c, has_c,
                  hr_res, grade, grade_known, has_hr, has_v, gps, doubled, ctx, n_ctx):
    """Per run [st, en) of one state: summed direction evidence and gait margin, steps, NaN-ignoring
    medians (step-length ratio, speed, cadence, HR residual, grade %), shares of records with each
    channel, and the most frequent context code (ties: the lowest code). See ``core._segments``."""
    m = st.size
    n = path.size
    sums = np.zeros((m, 3))      # d, margin, steps
    meds = np.full((m, 5), NAN)  # step ratio, v, cadence, hr residual, grade %
    means = np.zeros((m, 6))     # grade_known, has_c, has_hr, has_v, gps, doubled
    mode = np.zeros(m, np.int8)
    ratio = np.empty(n)
    cad = np.empty(n)
    g100 = np.empty(n)
    longest = 0
    for s in range(m):
        longest = max(longest, en[s] - st[s])
    buf = np.empty(longest)
    cnt = np.zeros(n_ctx, np.int64)
    for s in range(m):
        a, b = st[s], en[s]
        state = path[a]
        is_run = state == 3 or state == 4
        is_walk = state == 1 or state == 2
        gcode = 0 if state == 0 else (1 if is_walk else 2)
        d_sum = 0.0
        m_sum = 0.0
        steps = 0.0
        cnt[:] = 0
        mk = np.zeros(6)
        for i in range(a, b):
            sq = math.sqrt(dt[i])
            if is_run:
                d_sum += dir_run[i] * sq
            elif is_walk:
                d_sum += dir_walk[i] * sq
            gl0 = L[i, 0]
            gl1 = max(L[i, 1], L[i, 2])
            gl2 = max(L[i, 3], L[i, 4])
            if gcode == 0:
                mg = gl0 - max(gl1, gl2)
            elif gcode == 1:
                mg = gl1 - max(gl0, gl2)
            else:
                mg = gl2 - max(gl0, gl1)
            m_sum += min(max(mg, -5.0), 5.0)
            cad[i] = c[i] if has_c[i] else NAN
            if has_c[i] and c[i] == c[i]:
                steps += c[i] / 60.0 * dt[i]
            if is_run:
                ratio[i] = math.exp(-r_run[i] / beta_g[group[i]])
            elif is_walk:
                ratio[i] = math.exp(-r_walk[i] / wbeta_g[group[i]])
            else:
                ratio[i] = NAN
            g100[i] = grade[i] * 100.0
            mk[0] += grade_known[i]
            mk[1] += has_c[i]
            mk[2] += has_hr[i]
            mk[3] += has_v[i]
            mk[4] += gps[i]
            mk[5] += doubled[i]
            cnt[ctx[i]] += 1
        sums[s, 0], sums[s, 1], sums[s, 2] = d_sum, m_sum, steps
        for k in range(6):
            means[s, k] = mk[k] / (b - a)
        meds[s, 0] = _nanmedian_into(buf, ratio, a, b)
        meds[s, 1] = _nanmedian_into(buf, v, a, b)
        meds[s, 2] = _nanmedian_into(buf, cad, a, b)
        meds[s, 3] = _nanmedian_into(buf, hr_res, a, b)
        meds[s, 4] = _nanmedian_into(buf, g100, a, b)
        best = 0
        for j in range(1, n_ctx):
            if cnt[j] > cnt[best]:
                best = j
        mode[s] = best
    return sums, meds, means, mode


# --- features (features.compute) ----------------------------------------------------------------

@njit(**_JIT)
def _group_sum(x, starts, ends):
    out = np.zeros(starts.size)
    for g in range(starts.size):
        s = 0.0
        for i in range(starts[g], ends[g]):
            s += x[i]
        out[g] = s
    return out


@njit(**_JIT)
def _chord_speed(lat, lon, t, lo, hi):
    n = lat.size
    out = np.full(n, NAN)
    if n == 0 or np.isnan(lat).all():
        return out
    lat0 = np.nanmedian(lat)
    ky = 111_195.0
    kx = ky * math.cos(math.radians(lat0))
    for i in range(n):
        a = lo[i]
        b = max(hi[i] - 1, a)
        span = t[b] - t[a]
        if span >= 5.0:
            dy = (lat[b] - lat[a]) * ky
            dx = (lon[b] - lon[a]) * kx
            out[i] = math.sqrt(dx * dx + dy * dy) / span
    return out


@njit(**_JIT)
def features(starts, ends, group, t, fl, ce, dist, speed, cad, hr, gct, alt, lat, lon, max_dt, uphill_cost,
             chord_speed):
    """Per-record features (see ``features.compute``, which documents every step)."""
    n = t.size

    def wm(x, before, after):
        return wmean_grid(x, fl, ce, starts, ends, before, after)

    def wm2(x, y, before, after):
        return wmean2_grid(x, y, fl, ce, starts, ends, before, after, True)

    G = starts.size
    is_start = np.zeros(n, np.bool_)
    for g in range(G):
        if ends[g] > starts[g]:
            is_start[starts[g]] = True
    dt = np.empty(n)
    for i in range(n):
        d = NAN if is_start[i] else t[i] - t[i - 1]
        if d != d:
            d = 1.0
        dt[i] = min(max(d, 0.2), max_dt)
    sp = np.empty(n)
    for i in range(n):
        s = speed[i]
        if s != s and not is_start[i]:
            dd = dist[i] - dist[i - 1]
            if dd >= 0 and dt[i] > 0:
                s = dd / dt[i]
        if s < 0 or s > 12:
            s = NAN
        sp[i] = s
    cd = np.empty(n)
    for i in range(n):
        c = cad[i]
        cd[i] = 0.0 if c < 30 else c
    v_raw, alt_s = wm2(sp, alt, 5, 5)
    # strides/min read as steps/min; cadence channel; 'no steps'
    fast = np.zeros(n)
    low = np.zeros(n)
    has = np.zeros(n)
    for i in range(n):
        if v_raw[i] >= 2.2 and cd[i] == cd[i]:
            fast[i] = 1.0
            if 60 <= cd[i] <= 105:
                low[i] = 1.0
        if cd[i] == cd[i]:
            has[i] = 1.0
    n_fast = _group_sum(fast, starts, ends)
    n_low = _group_sum(low, starts, ends)
    n_has = _group_sum(has, starts, ends)
    halved_g = (n_fast >= 120) & (n_low > 0.6 * n_fast)
    channel_g = np.empty(G, np.bool_)
    for g in range(G):
        channel_g[g] = n_has[g] / max(ends[g] - starts[g], 1) >= 0.3
    halved = np.empty(n, np.bool_)
    hr_c = np.empty(n)
    gct_c = np.empty(n)
    locked = np.empty(n)
    for i in range(n):
        g = group[i]
        halved[i] = halved_g[g]
        if halved[i]:
            cd[i] = cd[i] * 2.0
        if channel_g[g] and cd[i] != cd[i] and not (v_raw[i] >= 0.6):
            cd[i] = 0.0
        h = hr[i]
        hr_c[i] = NAN if (h < 30 or h > 230) else h
        q = gct[i]
        gct_c[i] = NAN if (q < 100 or q > 450) else q
        h = hr_c[i]
        c = cd[i]
        locked[i] = 1.0 if ((abs(h - c) <= 3.0 or abs(h - c / 2.0) <= 2.0) and c > 0) else 0.0
    # noisy speed: mean |1 s speed change| per activity
    jsum = np.zeros(G)
    jcnt = np.zeros(G)
    for i in range(n):
        if not is_start[i]:
            j = abs(sp[i] - sp[i - 1])
            if j == j:
                jsum[group[i]] += j
                jcnt[group[i]] += 1.0
    noisy_g = np.empty(G, np.bool_)
    any_noisy = False
    for g in range(G):
        noisy_g[g] = jsum[g] / max(jcnt[g], 1.0) > 0.12
        any_noisy = any_noisy or noisy_g[g]
    noisy = np.empty(n, np.bool_)
    for i in range(n):
        noisy[i] = noisy_g[group[i]]
    v = v_raw.copy()
    if any_noisy:
        lock_share, v10 = wm2(locked, sp, 10, 10)
        lo5, hi5 = bounds(fl, ce, starts, ends, 5, 5)
        chord = wm(_chord_speed(lat, lon, t, lo5, hi5), 5, 5) if chord_speed else v10
        for i in range(n):
            if noisy[i]:
                v[i] = v10[i]
                if chord_speed and chord[i] == chord[i] and v[i] < 2.0:
                    v[i] = chord[i]
    else:
        lock_share = wm(locked, 10, 10)
    has_gct = False
    for i in range(n):
        if gct_c[i] == gct_c[i]:
            has_gct = True
            break
    if has_gct:
        c_s, gct_s = wm2(cd, gct_c, 4, 4)
    else:
        c_s, gct_s = wm(cd, 4, 4), np.full(n, NAN)
    # grade over ±20 s when it covers >= 20 m; distance integrated from speed where missing
    dist_f = dist.copy()
    integ = 0.0
    for i in range(n):
        s = sp[i]
        integ += (s if s == s else 0.0) * dt[i]
        if dist_f[i] != dist_f[i]:
            dist_f[i] = integ
    grade = np.empty(n)
    grade_known = np.empty(n, np.bool_)
    v_eff = np.empty(n)
    lo20, hi20 = bounds(fl, ce, starts, ends, 20, 20)
    for i in range(n):
        a = lo20[i]
        b = hi20[i] - 1
        run_m = dist_f[b] - dist_f[a]
        gr = NAN
        if run_m >= 20.0:
            gr = (alt_s[b] - alt_s[a]) / run_m
        grade_known[i] = gr == gr
        gr = 0.0 if gr != gr else gr
        gr = min(max(gr, -0.3), 0.3)
        grade[i] = gr
        v_eff[i] = v[i] * (1.0 + uphill_cost * min(max(gr, 0.0), 0.15))
    v_lag = wm(v_eff, 110, 0)
    has_fix = np.empty(n)
    for i in range(n):
        if lock_share[i] > 0.5:
            hr_c[i] = NAN
        has_fix[i] = 0.0 if lat[i] != lat[i] else 1.0
    v60, fix_share = wm2(v, has_fix, 30, 30)
    steady = np.empty(n, np.bool_)
    has_gps = np.empty(n, np.bool_)
    for i in range(n):
        steady[i] = abs(v[i] - v60[i]) < 0.12 * v60[i]
        has_gps[i] = fix_share[i] > 0.5
    return dt, v, v_eff, c_s, hr_c, v_lag, steady, halved, noisy, grade, grade_known, gct_s, has_gps


# --- context (context.per_record) ---------------------------------------------------------------

@njit(**_JIT)
def _spread(x, y, d, fl, ce, a, b, before, after, rg, covered):
    """Radius of gyration of the positions (x, y) and the distance covered (from cumulative ``d``)
    in each record's window [t - before, t + after] of one activity [a, b): one pass with running
    sums, as ``wmean2_grid`` and ``bounds`` would give them."""
    p = a
    q = a
    sx = 0.0
    sy = 0.0
    sxx = 0.0
    syy = 0.0
    cx = 0
    cy = 0
    for i in range(a, b):
        ca = ce[i] - before
        cb = fl[i] + after
        while q < b and fl[q] <= cb:
            v = x[q]
            if v == v:
                sx += v
                sxx += v * v
                cx += 1
            v = y[q]
            if v == v:
                sy += v
                syy += v * v
                cy += 1
            q += 1
        while p < b and fl[p] < ca:
            v = x[p]
            if v == v:
                sx -= v
                sxx -= v * v
                cx -= 1
            v = y[p]
            if v == v:
                sy -= v
                syy -= v * v
                cy -= 1
            p += 1
        var = 0.0
        if cx > 0:
            m = sx / cx
            var += max(sxx / cx - m * m, 0.0)
        else:
            sx = 0.0
            sxx = 0.0
        if cy > 0:
            m = sy / cy
            var += max(syy / cy - m * m, 0.0)
        else:
            sy = 0.0
            syy = 0.0
        rg[i] = math.sqrt(var) if cx > 0 and cy > 0 else NAN
        cov = d[max(q - 1, p)] - d[p]
        covered[i] = cov if cov == cov else 0.0


@njit(**_JIT)
def context(starts, ends, group, fl, ce, lat, lon, dist, v, dt, has_gps, sub_code, m_per_deg, max_rg, min_cover):
    """Context code per record: 0 unknown, 1 road, 2 track, 3 treadmill (see ``context.per_record``).

    ``sub_code`` per activity: 0 other, 1 sub_sport track, 2 indoor sub_sport. Positions are
    projected to metres around each activity's first fix, so that a batch holding activities on
    different continents keeps metre precision in the windowed sums of squares.
    """
    n = fl.size
    ctx = np.zeros(n, np.int8)
    x = np.full(n, NAN)
    y = np.full(n, NAN)
    d = np.empty(n)
    rg = np.empty(n)
    cov = np.empty(n)
    rg8 = np.empty(n)
    cov8 = np.empty(n)
    for g in range(starts.size):
        a, b = starts[g], ends[g]
        lat0 = NAN
        lon0 = NAN
        for i in range(a, b):
            if lat[i] == lat[i] and lon[i] == lon[i]:
                lat0, lon0 = lat[i], lon[i]
                break
        if lat0 == lat0:
            for i in range(a, b):
                y[i] = (lat[i] - lat0) * m_per_deg
                la = lat[i] if lat[i] == lat[i] else lat0
                # shortest way round the antimeridian
                dl = lon[i] - lon0
                if dl > 180.0:
                    dl -= 360.0
                elif dl < -180.0:
                    dl += 360.0
                x[i] = dl * m_per_deg * math.cos(math.radians(la))
        # distance covered from speed, not from positions: position noise adds distance (a
        # stroll's GPX track measured 40 % more than its speed), which made a slow, winding walk
        # look like laps
        any_v = False
        for i in range(a, b):
            if v[i] == v[i]:
                any_v = True
                break
        if any_v:
            acc = 0.0
            for i in range(a, b):
                acc += (v[i] if v[i] == v[i] else 0.0) * dt[i]
                d[i] = acc
        else:
            d[a:b] = dist[a:b]
        _spread(x, y, d, fl, ce, a, b, 120, 120, rg, cov)
        # 8-minute window: walking covers a full lap only in that time
        _spread(x, y, d, fl, ce, a, b, 240, 240, rg8, cov8)
    for i in range(n):
        c = 0
        if has_gps[i]:
            c = 1
            # positions repeating in a small area: a straight stretch of length L has a radius of
            # gyration of 0.29 L, so a slow walk (240 m in 4 minutes: 69 m) would pass the radius
            # test alone; a 400 m track holds it at <= 0.2 L from 250 m on and <= 0.16 L over a lap
            if ((rg[i] <= max_rg and cov[i] >= min_cover and rg[i] <= TRACK_MAX_RG_PER_M * cov[i])
                    or (rg8[i] <= max_rg and cov8[i] >= TRACK_LAP_M)):
                c = 2
        elif v[i] == v[i]:
            c = 3
        sc = sub_code[group[i]]
        if sc == 1:
            c = 2
        elif sc == 2:
            c = 3
        ctx[i] = c
    return ctx


# --- long slower stretches that keep the fast running's HR and cadence (core._same_effort) -------

@njit(**_JIT)
def _centred_mean(t, x, ok, half_s):
    """Mean of x over the ``ok`` records within ±half_s seconds of each record (NaN where none)."""
    n = t.size
    out = np.full(n, NAN)
    cs = np.zeros(n + 1)
    cn = np.zeros(n + 1)
    for i in range(n):
        cs[i + 1] = cs[i] + (x[i] if ok[i] else 0.0)
        cn[i + 1] = cn[i] + (1.0 if ok[i] else 0.0)
    lo = 0
    hi = 0
    for i in range(n):
        while t[lo] < t[i] - half_s:
            lo += 1
        while hi < n and t[hi] <= t[i] + half_s:
            hi += 1
        k = cn[hi] - cn[lo]
        if k > 0:
            out[i] = (cs[hi] - cs[lo]) / k
    return out


@njit(**_JIT)
def _true_runs(mask):
    """Start and end (exclusive) of each maximal run of True in ``mask``."""
    n = mask.size
    st = np.empty(n, np.int64)
    en = np.empty(n, np.int64)
    k = 0
    i = 0
    while i < n:
        if mask[i]:
            j = i
            while j < n and mask[j]:
                j += 1
            st[k], en[k] = i, j
            k += 1
            i = j
        else:
            i += 1
    return st[:k], en[:k]


@njit(**_JIT)
def same_effort(starts, ends, path, t, v, c, hr, grade, grade_known, v_usual, prm):
    """Forward-run stretches that are much slower than today's fast running at the same HR and cadence.

    Backward running at its self-selected pace (0.68-0.82x easy forward) costs about what easy
    forward running does (x1.35 per distance, biomech §8), so HR stays where it was while speed
    drops; a forward runner who slows that much drops HR by ~15-20 bpm (24 bpm per m/s, Hunt 2015)
    and cadence a little. Where the cadence residual cannot tell (a backward cadence no higher
    than forward at that speed), this is the evidence left. Only long (``min_s``), flat stretches
    with known grade count (an unknown hill slows a runner at the same HR), judged after
    ``lag_s`` of HR lag. ``v_usual``: the athlete's learned forward running speed per activity
    (NaN for a new athlete); today's fast running is never slower than it (a session that is
    90 % backward running has its 90th percentile on the backward part), and needs >= 120 s at
    >= 0.92x it, so a slow day is skipped rather than judged. An activity without cadence
    (< 10 % of its moving records) is judged on HR and speed alone, over forward walking and
    running (a backward run at 1.7-2.2 m/s without cadence decodes as both). ``prm``: min_s, lag_s, speed_lo, speed_hi (x today's fast running, the
    ``fast_q`` quantile of 60 s mean running speed), hr_margin_bpm, cad_ratio, fast_q, max_grade,
    min_grade_known. Returns the mask of records to relabel as backward running.
    """
    min_s, lag_s, lo_r, hi_r, hr_margin, cad_ratio, fast_q, max_grade, min_known = (
        prm[0], prm[1], prm[2], prm[3], prm[4], prm[5], prm[6], prm[7], prm[8])
    FW, FR = 1, 3
    flag = np.zeros(path.size, np.bool_)
    for g in range(starts.size):
        a, b = starts[g], ends[g]
        tt, vv, cc, hh, pp = t[a:b], v[a:b], c[a:b], hr[a:b], path[a:b]
        nn = b - a
        # without cadence the decoder splits a slow backward run into forward "walk" and "run"
        # by speed alone, so every forward-moving record may belong to the slower stretch and
        # the cadence condition is dropped: HR and speed are then all the evidence
        n_moving = 0
        n_cad = 0
        for i in range(nn):
            if vv[i] == vv[i] and vv[i] > 0.5:
                n_moving += 1
                if cc[i] == cc[i]:
                    n_cad += 1
        no_cad = n_cad < 0.1 * n_moving
        run = np.zeros(nn, np.bool_)
        moving = np.zeros(nn, np.bool_)
        for i in range(nn):
            if no_cad:
                run[i] = pp[i] == FR and vv[i] == vv[i]
                moving[i] = (pp[i] == FR or pp[i] == FW) and vv[i] == vv[i]
            else:
                run[i] = pp[i] == FR and cc[i] == cc[i] and cc[i] >= 135 and vv[i] == vv[i]
                moving[i] = run[i]
        if run.sum() < 600:
            continue
        vs = _centred_mean(tt, vv, moving, 30.0)
        ok = run & ~np.isnan(vs) & ~np.isnan(hh)
        if ok.sum() < 600:
            continue
        v_fast = np.quantile(vs[ok], fast_q)
        if v_usual[g] == v_usual[g]:
            # a session that is mostly backward puts the quantile on the backward part: today's
            # fast running is at least the athlete's usual forward pace, if enough of it was run
            v_fast = max(v_fast, v_usual[g])
        fast = ok & (vs >= 0.92 * v_fast)
        if fast.sum() < 120:
            continue
        hr_fast = np.median(hh[fast])
        c_fast = np.median(cc[fast]) if not no_cad else NAN
        judged = moving & ~np.isnan(vs) & ~np.isnan(hh)   # == ok with cadence
        slower = np.zeros(nn, np.bool_)
        for i in range(nn):
            slower[i] = (pp[i] == FR or (no_cad and pp[i] == FW)) and abs(grade[a + i]) < max_grade and (
                vs[i] != vs[i] or lo_r * v_fast <= vs[i] <= hi_r * v_fast)
        st, en = _true_runs(slower)
        for q in range(st.size):
            i, j = st[q], en[q]
            if tt[j - 1] - tt[i] >= min_s and grade_known[a + i:a + j].mean() >= min_known:
                sel = judged[i:j] & (tt[i:j] >= tt[i] + lag_s)
                if (sel.sum() >= 60 and np.median(hh[i:j][sel]) >= hr_fast - hr_margin
                        and (no_cad or np.median(cc[i:j][sel]) >= cad_ratio * c_fast)):
                    flag[a + i:a + j] = True
    return flag


@njit(**_JIT)
def _lead_corrected(t, x, ok, half_s, span_s, tau_s):
    """x smoothed (±half_s) plus tau_s × its slope over ±span_s: the steady state that a
    first-order lag with time constant tau_s is heading for (NaN where x is missing)."""
    n = t.size
    xs = _centred_mean(t, x, ok, half_s)
    out = np.full(n, NAN)
    lo = 0
    hi = 0
    for i in range(n):
        while lo < n - 1 and t[lo + 1] <= t[i] - span_s:
            lo += 1
        while hi < n - 1 and t[hi] < t[i] + span_s:
            hi += 1
        if ok[i] and hi > lo and xs[hi] == xs[hi] and xs[lo] == xs[lo] and t[hi] > t[lo]:
            out[i] = xs[i] + tau_s * (xs[hi] - xs[lo]) / (t[hi] - t[lo])
    return out


@njit(**_JIT)
def walk_effort(starts, ends, path, t, v, c, r_walk, hr, grade, grade_known, outdoor, hr_a, hr_b, hr_c, prm):
    """Forward-walk stretches with shorter steps *and* a higher HR than the forward walking line.

    Backward walking sits above the forward walking locus in cadence (shorter steps; simulated
    +0.0 to +0.34 in log cadence) and costs more (HR +3 to +32 bpm at the same speed). Where
    the walking mixture sees no second cluster (GPS speed noise widens a track walk's residuals to
    ~0.05, and a few reps are too little walking), the two together still tell. Per record, over
    ±15 s: the cadence residual rs and the lag-corrected HR residual es (smoothed HR plus tau × its
    slope, against the activity's forward HR line at that speed: a bout's HR steps with it, and a
    walk after running is judged at the level its HR is falling to). A stretch qualifies where
    es / ``hr_scale`` + rs / ``r_scale`` >= ``score_min`` with es >= ``hr_floor`` and rs >= ``r_floor``
    throughout, for >= ``min_s``, flat (|grade| < ``max_grade``, grade known on >= ``min_known``),
    outdoors only (on a belt an unseen incline raises HR and shortens steps alike), at a walking
    cadence and speed (< 135 spm, < 2 m/s: a slow jog decoded as walking is not a walk), and with
    HR not falling across it by more than ``max_fall`` bpm (a bout raises HR; a walk that recovers
    from running lowers it, faster at first than one time constant says).
    ``prm``: tau_s, r_scale, hr_scale, min_s, max_grade, min_known, hr_floor, r_floor, score_min,
    max_fall.
    Returns the mask of records to relabel as backward walking.
    """
    tau, r_scale, hr_scale, min_s, max_grade, min_known = prm[0], prm[1], prm[2], prm[3], prm[4], prm[5]
    hr_floor, r_floor, score_min, max_fall = prm[6], prm[7], prm[8], prm[9]
    FW = 1
    flag = np.zeros(path.size, np.bool_)
    for g in range(starts.size):
        if not outdoor[g] or hr_a[g] != hr_a[g] or hr_b[g] != hr_b[g]:
            continue
        a, b = starts[g], ends[g]
        tt, vv, cc, rw, hh, pp = t[a:b], v[a:b], c[a:b], r_walk[a:b], hr[a:b], path[a:b]
        nn = b - a
        walk = np.zeros(nn, np.bool_)
        for i in range(nn):
            walk[i] = pp[i] == FW and rw[i] == rw[i] and vv[i] == vv[i] and cc[i] < 135.0 and vv[i] < 2.0
        if walk.sum() < min_s:
            continue
        has_hr = ~np.isnan(hh)
        hss = _lead_corrected(tt, hh, has_hr, 7.0, 10.0, tau)
        h10 = _centred_mean(tt, hh, has_hr, 10.0)
        vs = _centred_mean(tt, vv, walk, 10.0)
        drift = hr_c[g] if hr_c[g] == hr_c[g] else 0.0
        e = hss - (hr_a[g] + hr_b[g] * vs + drift * tt / 3600.0)
        ok = walk & ~np.isnan(e)
        rs = _centred_mean(tt, rw, walk, 15.0)
        es = _centred_mean(tt, e, ok, 15.0)
        effort = np.zeros(nn, np.bool_)
        for i in range(nn):
            effort[i] = pp[i] == FW and abs(grade[a + i]) < max_grade and (
                not walk[i] or (es[i] == es[i] and es[i] >= hr_floor and rs[i] >= r_floor
                                and es[i] / hr_scale + rs[i] / r_scale >= score_min))
        st, en = _true_runs(effort)
        for q in range(st.size):
            i0, j0 = st[q], en[q]
            # records without a residual (no HR, not stepping) may bridge, not start or end it
            while i0 < j0 and not ok[i0]:
                i0 += 1
            while j0 > i0 and not ok[j0 - 1]:
                j0 -= 1
            if (j0 > i0 and tt[j0 - 1] - tt[i0] >= min_s and ok[i0:j0].mean() >= 0.5
                    and grade_known[a + i0:a + j0].mean() >= min_known
                    and h10[j0 - 1] - h10[i0] >= -max_fall):
                flag[a + i0:a + j0] = True
    return flag


# --- walking that alternates between two paces, one with shorter steps (core._walk_split) ------

@njit(**_JIT)
def _two_state_path(x, y, tt, w, switch, sx_floor, sy_floor, lab):
    """Hard-EM fit of a two-state sticky HMM on (x, y) per record, from labels ``lab`` (0/1).

    Each state is N(mean_x, sx) x N(mean_y, sy) with SDs pooled over both states (Huber loss,
    weight ``w`` per record); leaving a state costs ``switch`` nats; a time gap > 10 s between
    records starts afresh. Returns (total score, means (2, 2), sx, sy); ``lab`` holds the path.
    """
    n = x.size
    mx = np.zeros(2)
    my = np.zeros(2)
    sx, sy = sx_floor, sy_floor
    score = -np.inf
    L = np.empty((n, 2))
    bp = np.empty((n, 2), np.int8)
    for _ in range(8):
        cnt = np.zeros(2)
        sxs = np.zeros(2)
        sys_ = np.zeros(2)
        for i in range(n):
            k = lab[i]
            cnt[k] += 1.0
            sxs[k] += x[i]
            sys_[k] += y[i]
        if cnt[0] < 10 or cnt[1] < 10:
            return -np.inf, np.stack((mx, my)), sx, sy
        for k in range(2):
            mx[k] = sxs[k] / cnt[k]
            my[k] = sys_[k] / cnt[k]
        vx = 0.0
        vy = 0.0
        for i in range(n):
            vx += (x[i] - mx[lab[i]]) ** 2
            vy += (y[i] - my[lab[i]]) ** 2
        sx = max(math.sqrt(vx / n), sx_floor)
        sy = max(math.sqrt(vy / n), sy_floor)
        for i in range(n):
            for k in range(2):
                L[i, k] = -w * (_huber((x[i] - mx[k]) / sx) + _huber((y[i] - my[k]) / sy) + math.log(sx * sy))
        d0, d1 = L[0, 0], L[0, 1]
        for i in range(1, n):
            cost = switch if tt[i] - tt[i - 1] <= 10.0 else 0.0
            s00, s10 = d0, d1 - cost
            s11, s01 = d1, d0 - cost
            bp[i, 0] = 0 if s00 >= s10 else 1
            bp[i, 1] = 1 if s11 >= s01 else 0
            d0 = max(s00, s10) + L[i, 0]
            d1 = max(s11, s01) + L[i, 1]
        s = 0 if d0 >= d1 else 1
        new_score = max(d0, d1)
        changed = False
        for i in range(n - 1, -1, -1):
            if lab[i] != s:
                changed = True
            lab[i] = s
            if i > 0:
                s = bp[i, s]
        score = new_score
        if not changed:
            break
    return score, np.stack((mx, my)), sx, sy


@njit(**_JIT)
def _state_bouts(lab, tt, k):
    """First and last index (inclusive) of each run of state ``k`` whose records are contiguous
    in time (no gap > 10 s, as ``_two_state_path`` reads them)."""
    n = lab.size
    first = np.empty(n, np.int64)
    last = np.empty(n, np.int64)
    m = 0
    i = 0
    while i < n:
        if lab[i] != k:
            i += 1
            continue
        j = i
        while j + 1 < n and lab[j + 1] == k and tt[j + 1] - tt[j] <= 10.0:
            j += 1
        first[m], last[m] = i, j
        m += 1
        i = j + 1
    return first[:m], last[:m]


@njit(**_JIT)
def walk_split(starts, ends, path, t, v, c, r_walk, hr, grade, dt, venue, prm):
    """Walking that alternates between a faster pace and a slower one with shorter steps.

    Backward walking reps between forward walks (rehab bouts, walking reps on a track) leave two
    paces in one activity: the backward one 0.6-0.75x as fast (Laufer 2005) at about the same
    cadence, so its steps are shorter than forward walking at that speed (cadence residual
    higher). Per record the residual is too noisy to split them (GPS speed noise widens a track
    walk's residuals to ~0.05, about the distance between the two); over whole bouts it is not.
    A two-state sticky HMM on (cadence residual, log speed) of the activity's flat walking
    records finds the bouts. The slower state is backward walking when the split explains the
    walking much better than one state (``gain_min`` nats), its speed is ``ratio_lo``-``ratio_hi``
    x the faster one's, each state holds >= ``min_share`` of the walking time, the faster holds
    >= 90 s in bouts >= 30 s (not a few transition records after running), its median HR is no
    more than ``hr_margin`` bpm below the faster one's (a forward walker who slows down lowers
    HR; backward walking costs more: +19 bpm at 1.34 m/s, Williford 1998), and its residual is
    >= ``dr_min`` above the faster one's, or >= ``dr_floor`` with residual / dr_min + HR
    difference / ``hr_scale`` >= 1 (a pod over-reading backward speed hides part of the step
    shortening, not the HR rise). Without cadence (< 10 % of the walking
    records) the split runs on speed alone and needs the slower state's HR >= ``nocad_hr`` bpm
    above the faster one's. Bouts shorter than ``min_bout_s`` are left alone. ``venue`` per
    activity: 0 = not tried (roads and trails of runs: real runs in the corpus hold slow walking
    at two paces that looks the same), 1 = a track or a treadmill, 2 = a walk elsewhere, where
    the slower state's HR must also be >= ``nocad_hr`` bpm above the faster one's, on top of the
    step-shortening test (a stroll's cadence may fall less than the walking locus says, which
    looks like shorter steps, and a walker slowing on an unseen rise raises HR with forward steps).
    ``prm``: min_total_s, w, switch, dr_min, ratio_lo, ratio_hi, min_share, min_bout_s,
    hr_margin, gain_min, max_grade, nocad_hr, dr_floor, hr_scale. Returns the mask of records to
    relabel as backward walking.
    """
    min_total, w, switch, dr_min, ratio_lo, ratio_hi = prm[0], prm[1], prm[2], prm[3], prm[4], prm[5]
    min_share, min_bout, hr_margin, gain_min, max_grade = prm[6], prm[7], prm[8], prm[9], prm[10]
    nocad_hr, dr_floor, hr_scale = prm[11], prm[12], prm[13]
    FW, BW = 1, 2
    flag = np.zeros(path.size, np.bool_)
    for g in range(starts.size):
        if venue[g] == 0:
            continue
        a, b = starts[g], ends[g]
        walking = np.zeros(b - a, np.bool_)
        n_cad = 0
        for i in range(a, b):
            walking[i - a] = (path[i] == FW or path[i] == BW) and v[i] == v[i] and 0.4 <= v[i] < 2.0
            if walking[i - a] and c[i] == c[i]:
                n_cad += 1
        # without cadence (< 10 % of the walking records have it) only speed splits the walking
        # and HR must say which state costs more
        no_cad = n_cad < 0.1 * walking.sum()
        sel = np.zeros(b - a, np.bool_)
        tot = 0.0
        for i in range(a, b):
            ok = (walking[i - a] and not abs(grade[i]) >= max_grade
                  and (no_cad or (r_walk[i] == r_walk[i] and c[i] < 135.0)))
            sel[i - a] = ok
            if ok:
                tot += dt[i]
        if tot < min_total:
            continue
        idx = np.flatnonzero(sel) + a
        n = idx.size
        x = np.zeros(n) if no_cad else r_walk[idx]
        y = np.log(v[idx])
        tt = t[idx]
        # one state
        mx1, my1 = x.mean(), y.mean()
        sx1 = max(x.std(), 0.02)
        sy1 = max(y.std(), 0.04)
        ll1 = 0.0
        for i in range(n):
            ll1 -= w * (_huber((x[i] - mx1) / sx1) + _huber((y[i] - my1) / sy1) + math.log(sx1 * sy1))
        lab = np.zeros(n, np.int8)
        ymed = np.median(y)
        for i in range(n):
            lab[i] = 1 if y[i] < ymed else 0
        ll2, means, sx, sy = _two_state_path(x, y, tt, w, switch, 0.02, 0.04, lab)
        if not ll2 - ll1 >= gain_min:
            continue
        slow = 0 if means[1, 0] < means[1, 1] else 1
        fast = 1 - slow
        dr = means[0, slow] - means[0, fast]
        ratio = math.exp(means[1, slow] - means[1, fast])
        t_slow = 0.0
        for i in range(n):
            if lab[i] == slow:
                t_slow += dt[idx[i]]
        share = t_slow / tot
        if not (ratio_lo <= ratio <= ratio_hi and min_share <= share <= 1.0 - min_share):
            continue
        first, last = _state_bouts(lab, tt, fast)
        dur = tt[last] - tt[first]
        if dur[dur >= 30.0].sum() < 90.0:
            continue
        hs = hr[idx]
        h_ok = ~np.isnan(hs)
        m_slow = h_ok & (lab == slow)
        m_fast = h_ok & (lab == fast)
        d_hr = NAN
        if m_slow.sum() >= 30 and m_fast.sum() >= 30:
            d_hr = np.median(hs[m_slow]) - np.median(hs[m_fast])
            if d_hr < -hr_margin:
                continue
        if (no_cad or venue[g] == 2) and not d_hr >= nocad_hr:
            # speed alone, or a walk off the track: the slower state must cost clearly more
            continue
        if not no_cad and not (dr >= dr_min or (dr >= dr_floor and d_hr == d_hr and dr / dr_min + d_hr / hr_scale >= 1.0)):
            # a smaller step shortening counts where HR rises with it (a belt's pod may
            # over-read backward speed and hide part of the shortening)
            continue
        # bouts of the slower state long enough to count
        first, last = _state_bouts(lab, tt, slow)
        for q in range(first.size):
            if tt[last[q]] - tt[first[q]] >= min_bout:
                for k in range(idx[first[q]], idx[last[q]] + 1):
                    flag[k] = path[k] == FW or path[k] == BW
    return flag


# --- candidates of the learned bout model (boutmodel.candidates) ----------------------------------

BOUT_N_FEATURES = 14


@njit(**_JIT)
def _finite_count(x):
    k = 0
    for v in x:
        if v == v:
            k += 1
    return k


@njit(**_JIT)
def bout_candidates(starts, ends, path, t, v, c, hr, grade, ctx, n_ctx, prm):
    """Stretches decoded as forward running, with the weak cues the bout model reads.

    Per activity, a robust fast-running reference first: the ``fast_q`` quantile of the
    ``smooth_half_s`` centred mean speed over records inside running stretches of >= ``long_run_s``
    (so that strides and short reps do not set it; >= ``min_ref`` such records or the activity has
    no candidates), and the median HR and cadence of the records at >= ``fast_band`` x that speed
    (when > ``min_fast`` of them have a value). Then one row per forward-running stretch of >=
    ``min_dur_s`` (columns in ``boutmodel.FEATURES`` order). prm: min_dur_s, long_run_s, min_ref,
    fast_q, fast_band, min_fast, smooth_half_s, edge_n, min_rise_n.
    Returns (start index, end index exclusive, features (m, BOUT_N_FEATURES)).
    """
    min_dur, long_run_s, min_ref, fast_q, fast_band = prm[0], prm[1], int(prm[2]), prm[3], prm[4]
    min_fast, half, edge, min_rise = int(prm[5]), prm[6], int(prm[7]), int(prm[8])
    BW, FR, BR = 2, 3, 4
    n = t.size
    buf = np.empty(n)   # for the NaN-skipping medians (_nanmedian_into)
    out_a = np.empty(n // 2 + 1, np.int64)
    out_b = np.empty(n // 2 + 1, np.int64)
    X = np.full((n // 2 + 1, BOUT_N_FEATURES), NAN)
    m = 0
    for g in range(starts.size):
        a, b = starts[g], ends[g]
        if b - a < 2:
            continue
        tt, vv, cc, hh, s = t[a:b], v[a:b], c[a:b], hr[a:b], path[a:b]
        k = b - a
        running = (s == FR) | (s == BR)
        vs = _centred_mean(tt, vv, ~np.isnan(vv), half)
        ok = np.zeros(k, np.bool_)
        rs, re = _true_runs(running)
        for i in range(rs.size):
            if tt[re[i] - 1] - tt[rs[i]] >= long_run_s:
                ok[rs[i]:re[i]] = True
        ok &= ~np.isnan(vs)
        if ok.sum() < min_ref:
            continue
        fast = np.quantile(vs[ok], fast_q)
        fast_recs = ok & (vs >= fast_band * fast)
        hr_f = hh[fast_recs]
        c_f = cc[fast_recs]
        hr_fast = _nanmedian_into(buf, hr_f, 0, hr_f.size) if _finite_count(hr_f) > min_fast else NAN
        c_fast = _nanmedian_into(buf, c_f, 0, c_f.size) if _finite_count(c_f) > min_fast else NAN
        span = max(tt[k - 1] - tt[0], 1.0)
        run_share = running.sum() / k
        fs, fe = _true_runs(s == FR)
        for i in range(fs.size):
            p, q = fs[i], fe[i]
            dur = tt[q - 1] - tt[p]
            if dur < min_dur:
                continue
            h = hh[p:q]
            vm = _nanmedian_into(buf, vv, p, q)
            x = X[m]
            x[0] = dur
            x[1] = vm / fast
            x[2] = _nanmedian_into(buf, cc, p, q) / c_fast
            x[3] = _nanmedian_into(buf, hh, p, q) - hr_fast
            if _finite_count(h) > min_rise:
                x[4] = _nanmedian_into(buf, hh, max(q - edge, p), q) - _nanmedian_into(buf, hh, p, min(p + edge, q))
            vsum = 0.0
            vsq = 0.0
            vn = 0
            for vi in vv[p:q]:
                if vi == vi:
                    vsum += vi
                    vsq += vi * vi
                    vn += 1
            if vn > 0:
                mu = vsum / vn
                x[5] = math.sqrt(max(vsq / vn - mu * mu, 0.0)) / max(mu, 0.1)
            x[6] = 1.0 if p > 0 and s[p - 1] <= BW else 0.0
            x[7] = 1.0 if q < k and s[q] <= BW else 0.0
            counts = np.zeros(n_ctx, np.int64)
            for j in range(a + p, a + q):
                counts[ctx[j]] += 1
            x[8] = float(np.argmax(counts))
            x[9] = (tt[p] - tt[0]) / span
            x[10] = run_share
            x[11] = _nanmedian_into(buf, grade, a + p, a + q)
            x[12] = 1.0 if _finite_count(cc[p:q]) / (q - p) > 0.5 else 0.0
            x[13] = 1.0 if _finite_count(h) / (q - p) > 0.5 else 0.0
            out_a[m] = a + p
            out_b[m] = a + q
            m += 1
    return out_a[:m], out_b[:m], X[:m]
