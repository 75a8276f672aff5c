"""Classify canonical records into contiguous gait/direction segments (pure library, no I/O).

``classify(records, activities, baselines)`` runs the whole chain on any number of activities at
once: features → per-activity adaptation → emissions → batched Viterbi → minimum durations →
segments with calibrated confidence, context and evidence, plus each activity's forward reference
for the athlete's baseline.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from retroingest.classify import boutmodel, hmm, kernels, model
from retroingest.classify import context as ctxmod
from retroingest.classify import features as featmod
from retroingest.classify.baseline import POPULATION, ActivityRef, Baseline
from retroingest.classify.model import BR, BW, FR, FW, PARAMS, S, Params

# bump whenever the states it writes can change, so ``retroingest classify`` (pending activities)
# re-runs segments written by an older version; history in docs/CLASSIFIER.md
CLASSIFIER_VERSION = "retroingest-classify 0.5.2"
MIN_BACKWARD_RUN_S = 20.0   # a backward run shorter than this is relabelled forward
MIN_BACKWARD_WALK_S = 45.0  # backward walking needs longer to be told from a slow stroll
MIN_SEGMENT_S = 5.0     # shorter flickers join their neighbour
# confidence calibration: logistic on the segment's summed direction / gait evidence
# (fitted on synthetic sessions, seeds 100-399; see docs/CLASSIFIER.md)
DIR_SCALE = 0.5
GAIT_SCALE = 0.3
CAP_NO_CADENCE = {"forward": 0.8, "backward": 0.6}
CAP_WALK_DIRECTION = {"forward": 0.9, "backward": 0.75}
# long stretches much slower than today's fast running at unchanged HR and cadence
# (kernels.same_effort): min 240 s, HR judged after 120 s of lag, 0.6-0.82x the 90th percentile of
# 60 s mean running speed, HR no more than 3 bpm below the fast running's, cadence >= 0.97x its,
# |grade| < 3 % and grade known on >= 90 % of the stretch; without cadence (< 10 % of moving records)
# the cadence condition is dropped and forward walking may be part of the stretch
SAME_EFFORT = np.array([240.0, 120.0, 0.6, 0.82, 3.0, 0.97, 0.9, 0.03, 0.9])
SAME_EFFORT_CONFIDENCE = 0.6   # HR and speed only, against cadence (measured: docs/ACCURACY.md)
# outdoor forward-walk stretches with shorter steps and a higher HR than the forward walking line
# (kernels.walk_effort): HR lag tau 40 s (simulated 20-60 s; Hunt 2015: 58 +- 24 s); over +-15 s,
# lag-corrected HR residual / 10 bpm + cadence residual / 0.08 >= 2 with HR >= +5 bpm and cadence
# residual >= 0; >= 60 s, |grade| < 3 % and grade known on >= 90 % of it, HR falling across it by
# no more than 3 bpm (20 s means at either end)
WALK_EFFORT = np.array([40.0, 0.08, 10.0, 60.0, 0.03, 0.9, 5.0, 0.0, 2.0, 3.0])
WALK_EFFORT_CONFIDENCE = 0.6
# walking at two alternating paces, the slower with shorter steps (kernels.walk_split), on a track or
# a treadmill, or in a walk (running < WALK_ONLY_RUN_SHARE of the moving records), where HR >= 3 bpm
# higher at the slower pace is needed as well as the residual test: >= 300 s of flat walking, 0.25 nats weight per record, 6 nats per switch, split
# gain >= 30 nats, speed 0.5-0.8x (Laufer 2005: 0.6-0.75x), each state >= 10 % of the walking, the
# faster >= 90 s in bouts >= 30 s, median HR no more than 2 bpm lower in the slower
# state, its residual >= +0.06, or >= +0.03 with residual / 0.06 + HR difference / 10 bpm >= 1;
# without cadence HR >= 3 bpm higher; bouts >= 45 s, |grade| < 3 %
WALK_ONLY_RUN_SHARE = 0.05
WALK_SPLIT = np.array([300.0, 0.25, 6.0, 0.06, 0.5, 0.8, 0.1, 45.0, 2.0, 30.0, 0.03, 3.0, 0.03, 10.0])
RECOVERY_FALL_BPM = 5.0   # a no-cadence "backward run" whose HR falls this much across it is a recovery
# a stretch the learned bout model (boutmodel.py) turned backward: 0.86 of such seconds were truly
# backward on validation seeds 20-24 (docs/ACCURACY.md, "The learned bout model"); set lower
# because the model was trained on the simulator's sessions and its precision on real backward
# sessions is unmeasured
BOUT_MODEL_CONFIDENCE = 0.75
SHIPPED = "shipped"   # ``classify(bout_model=SHIPPED)``: the model file in the package

SEGMENT_SCHEMA = pl.Schema({
    "segment_id": pl.Int64, "activity_id": pl.Int64, "athlete_id": pl.String,
    "start_time": pl.Datetime("us", "UTC"), "end_time": pl.Datetime("us", "UTC"),
    "duration_s": pl.Float64, "distance_m": pl.Float64, "n_steps": pl.Float64,
    "gait": pl.String, "direction": pl.String, "confidence": pl.Float64, "context": pl.String,
    "step_length_ratio": pl.Float64, "median_speed_mps": pl.Float64, "median_cadence_spm": pl.Float64,
    "hr_residual_bpm": pl.Float64, "median_grade_pct": pl.Float64, "evidence": pl.String,
    "classifier_version": pl.String,
})


@dataclass
class Result:
    """Segments (``segments`` table columns), per-record states, and per-activity forward references."""

    segments: pl.DataFrame
    states: pl.DataFrame      # activity_id, seq, state (model.STATES names)
    refs: list[ActivityRef]
    # the learned bout model's candidates: activity_id, start/end_time, the features, p_backward
    # (null when no model was used) and whether it turned the stretch backward
    bouts: pl.DataFrame | None = None


def classify(records: pl.DataFrame, activities: pl.DataFrame | None = None,
             baselines: dict[str, Baseline] | None = None, params: Params = PARAMS,
             bout_model: boutmodel.BoutModel | str | None = SHIPPED) -> Result:
    """Classify records of one or more activities.

    ``records``: canonical columns (RECORD_SCHEMA) plus ``activity_id`` (absent: one activity, id 0).
    ``activities``: optional ``activity_id, sub_sport, athlete_id``; ``baselines``: athlete_id →
    Baseline (missing athletes use the population prior). ``bout_model``: the learned model's
    trees (``SHIPPED``: the package's; None: the rules alone, as its training script needs).
    """
    if "activity_id" not in records.columns:
        records = records.with_columns(pl.lit(0, pl.Int64).alias("activity_id"))
    records = records.with_columns(pl.col("activity_id").cast(pl.Int64))
    aid_np = records["activity_id"].to_numpy()
    el_np = records["elapsed_s"].to_numpy()
    ordered = bool(np.all((np.diff(aid_np) > 0) | ((np.diff(aid_np) == 0) & (np.diff(el_np) >= 0))))
    if not ordered:
        records = records.sort(["activity_id", "elapsed_s"], maintain_order=True)
    for name in featmod.COLUMNS:
        if name not in records.columns:
            records = records.with_columns(pl.lit(None, pl.Float64).alias(name))
    if records.height == 0:
        return Result(pl.DataFrame(schema=SEGMENT_SCHEMA),
                      pl.DataFrame(schema={"activity_id": pl.Int64, "seq": pl.Int32, "state": pl.String}), [])
    f = featmod.compute(records)
    ids = f.activity_id[f.starts]
    meta = {}
    if activities is not None and activities.height:
        for row in activities.iter_rows(named=True):  # one row per activity, not per record
            meta[int(row["activity_id"])] = row
    sub_sports = [meta.get(int(a), {}).get("sub_sport") for a in ids]
    athletes = [meta.get(int(a), {}).get("athlete_id") or "default" for a in ids]
    baselines = baselines or {}
    bls = [baselines.get(a, POPULATION) for a in athletes]

    ctx = ctxmod.per_record(f, sub_sports)
    special = _activity_share((ctx == ctxmod.TRACK) | (ctx == ctxmod.TREADMILL), f) > 0.3   # track or treadmill
    context_prior = np.where(special, 0.05, 0.02)
    context_bias = np.where(special, 0.05, 0.0)

    models = model.adapt(f, bls, context_prior, special, params)
    em = model.emissions(f, bls, models, context_bias, params)
    path = hmm.viterbi(em.loglik, f.starts, f.ends, hmm.log_transitions())
    path = _min_durations(path, f)
    path = _recovering_hr(path, f, em)
    same = _same_effort(path, f, bls)
    path = np.where(same, np.int8(BR), path).astype(path.dtype)
    walk_eff = _walk_effort(path, f, em, ctx, models)
    # a walk (running under 5 % of the moving records) may be split anywhere: inside runs, walking
    # after running is slower at a raised HR, which is what the split looks for
    moving = _activity_share(path != S, f)
    walk_only = _activity_share((path == FR) | (path == BR), f) < WALK_ONLY_RUN_SHARE * np.maximum(moving, 1e-9)
    split = _walk_split(path, f, em, np.where(special, 1, np.where(walk_only, 2, 0)).astype(np.int8)) & ~walk_eff
    path = np.where(walk_eff | split, np.int8(BW), path).astype(path.dtype)
    bm = boutmodel.default() if isinstance(bout_model, str) and bout_model == SHIPPED else bout_model
    learned_p, sibling, bouts = _bout_model(path, f, ctx, records["ts"], bm)
    path = np.where(np.isfinite(learned_p), np.int8(BR), path).astype(path.dtype)
    segs = _segments(records, f, path, em, ctx, ids, athletes, bls, models, same, walk_eff, split, learned_p,
                     sibling)
    refs = _refs(f, path, em, ids, athletes, bls, models, segs)
    states = pl.DataFrame({
        "activity_id": f.activity_id,
        "seq": records["seq"] if "seq" in records.columns else np.arange(f.n, dtype=np.int32),
        "state": pl.Series(model.STATES, dtype=pl.String).gather(path),
    })
    return Result(segs, states, refs, bouts)


def _activity_share(mask: np.ndarray, f: featmod.Features) -> np.ndarray:
    """Per activity, the share of its records where ``mask`` holds."""
    if f.n == 0:
        return np.zeros(f.starts.size)
    return np.add.reduceat(mask.astype(float), f.starts) / np.maximum(f.ends - f.starts, 1)


def _runs(path: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) index of each run of equal state within an activity."""
    n = path.size
    brk = np.flatnonzero((np.diff(path) != 0) | (np.diff(group) != 0)) + 1
    st = np.concatenate(([0], brk))
    en = np.concatenate((brk, [n]))
    return st, en


def _min_durations(path: np.ndarray, f: featmod.Features) -> np.ndarray:
    """Relabel too-short backward bouts as forward, then let short flickers join a neighbour."""
    path = path.copy()
    if path.size == 0:
        return path
    cum = np.concatenate(([0.0], np.cumsum(f.dt)))
    st, en = _runs(path, f.group)
    dur = cum[en] - cum[st]
    short_back = (((path[st] == BR) & (dur < MIN_BACKWARD_RUN_S))
                  | ((path[st] == BW) & (dur < MIN_BACKWARD_WALK_S)))
    for a, b, s in zip(st[short_back], en[short_back], path[st][short_back]):
        path[a:b] = FR if s == BR else FW
    for _ in range(3):
        st, en = _runs(path, f.group)
        dur = cum[en] - cum[st]
        short = dur < MIN_SEGMENT_S
        if not short.any():
            break
        prev_same_group = np.concatenate(([False], f.group[st[1:]] == f.group[st[1:] - 1]))
        for i in np.flatnonzero(short):
            if prev_same_group[i]:
                path[st[i]:en[i]] = path[st[i] - 1]
            elif i + 1 < st.size and f.group[st[i + 1]] == f.group[st[i]]:
                path[st[i]:en[i]] = path[st[i + 1]]
    return path


def _recovering_hr(path: np.ndarray, f: featmod.Features, em: model.Emissions) -> np.ndarray:
    """Backward running decoded without cadence whose HR falls across the bout becomes forward.

    Without cadence a backward run is a speed drop at an HR above the forward line; so is a jog
    right after hard running, while HR recovers more slowly than one lag constant says (a real
    indoor interval session: 387 s of false backward running with the cadence removed). A
    backward bout keeps or raises HR (it costs what easy running does); a recovery lowers it.
    Falling: the last 20 s mean below the first 20 s mean by more than RECOVERY_FALL_BPM.
    """
    st, en = _runs(path, f.group)
    cand = np.flatnonzero(path[st] == BR)
    if cand.size == 0:
        return path
    path = path.copy()
    hr = f.hr
    for i in cand:
        a, b = st[i], en[i]
        if em.has_c[a:b].mean() >= 0.5:
            continue
        t = f.t[a:b]
        head = hr[a:b][t <= t[0] + 20.0]
        tail = hr[a:b][t >= t[-1] - 20.0]
        if np.isfinite(head).sum() >= 5 and np.isfinite(tail).sum() >= 5 and \
                np.nanmean(head) - np.nanmean(tail) > RECOVERY_FALL_BPM:
            path[a:b] = FR
    return path


def _same_effort(path: np.ndarray, f: featmod.Features, bls: list[Baseline]) -> np.ndarray:
    """Records of forward-run stretches that keep the fast running's HR and cadence at 0.6-0.82x its
    speed: backward running whose cadence alone looked forward (see ``kernels.same_effort``)."""
    a64 = np.ascontiguousarray
    return kernels.same_effort(a64(f.starts, np.int64), a64(f.ends, np.int64), a64(path, np.int8), a64(f.t, float),
                               a64(f.v, float), a64(f.c, float), a64(f.hr, float), a64(f.grade, float),
                               a64(f.grade_known, bool),
                               np.array([b.run_speed_mps if b.learned else np.nan for b in bls], dtype=float),
                               SAME_EFFORT)


def _walk_effort(path: np.ndarray, f: featmod.Features, em: model.Emissions, ctx: np.ndarray,
                 models: list[model.ActivityModel]) -> np.ndarray:
    """Records of outdoor forward-walk stretches with shorter steps and a higher HR than forward
    walking: backward walking the walking mixture could not split off (see ``kernels.walk_effort``)."""
    a64 = np.ascontiguousarray
    outdoor = _activity_share((ctx == ctxmod.ROAD) | (ctx == ctxmod.TRACK), f) > 0.5

    def col(name: str) -> np.ndarray:
        return np.array([np.nan if getattr(m, name) is None else getattr(m, name) for m in models], dtype=float)

    return kernels.walk_effort(a64(f.starts, np.int64), a64(f.ends, np.int64), a64(path, np.int8), a64(f.t, float),
                               a64(f.v, float), a64(f.c, float), a64(em.r_walk, float), a64(f.hr, float),
                               a64(f.grade, float), a64(f.grade_known, bool), a64(outdoor, bool),
                               col("hr_a"), col("hr_b"), col("hr_c"), WALK_EFFORT)


def _walk_split(path: np.ndarray, f: featmod.Features, em: model.Emissions, venue: np.ndarray) -> np.ndarray:
    """Records of walking bouts at a slower, shorter-stepped pace that alternates with the
    activity's forward walking (see ``kernels.walk_split``)."""
    a64 = np.ascontiguousarray
    return kernels.walk_split(a64(f.starts, np.int64), a64(f.ends, np.int64), a64(path, np.int8), a64(f.t, float),
                              a64(f.v, float), a64(f.c, float), a64(em.r_walk, float), a64(f.hr, float),
                              a64(f.grade, float), a64(f.dt, float), a64(venue, np.int8), WALK_SPLIT)


def _bout_model(path: np.ndarray, f: featmod.Features, ctx: np.ndarray, ts: pl.Series,
                bm: boutmodel.BoutModel | None) -> tuple[np.ndarray, np.ndarray, pl.DataFrame]:
    """Forward-running stretches the learned model calls backward (``boutmodel.py``), and their
    siblings (``boutmodel.siblings``).

    Returns p(backward) per record on the stretches it turns backward (NaN elsewhere), which of
    those records were turned as a sibling, and the table of every candidate with its features,
    p and how it was turned.
    """
    cand = boutmodel.candidates(path, f, ctx)
    p = bm.predict(cand.X) if bm is not None else np.full(cand.start.size, np.nan)
    flip = bm.turned_backward(cand.X, p) if bm is not None else np.zeros(cand.start.size, bool)
    twin = boutmodel.siblings(cand.X, p, f.group[cand.start], flip)
    flip |= twin
    learned_p = np.full(f.n, np.nan)
    sibling = np.zeros(f.n, bool)
    for i in np.flatnonzero(flip):   # per turned stretch, not per record
        a, b = int(cand.start[i]), int(cand.end[i])
        lo, hi = boutmodel.trim(f.t[a:b], f.v[a:b])   # forward running merged into it stays forward
        if f.t[a + hi - 1] - f.t[a + lo] >= boutmodel.MIN_CANDIDATE_S:
            learned_p[a + lo:a + hi] = p[i]
            sibling[a + lo:a + hi] = twin[i]
        else:
            flip[i] = twin[i] = False
    table = pl.DataFrame({"activity_id": f.activity_id[cand.start].astype(np.int64),
                          "start_time": ts.gather(cand.start), "end_time": ts.gather(cand.end - 1),
                          **{name: cand.X[:, i] for i, name in enumerate(boutmodel.FEATURES)},
                          "p_backward": p, "turned_backward": flip, "as_sibling": twin}, nan_to_null=True)
    return learned_p, sibling, table


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


def _segments(records: pl.DataFrame, f: featmod.Features, path: np.ndarray, em: model.Emissions,
              ctx: np.ndarray, ids: np.ndarray, athletes: list[str], bls: list[Baseline],
              models: list[model.ActivityModel], same: np.ndarray, walk_eff: np.ndarray,
              split: np.ndarray, learned_p: np.ndarray, sibling: np.ndarray) -> pl.DataFrame:
    st, en = _runs(path, f.group)
    state = path
    a64 = np.ascontiguousarray
    beta = np.array([b.run_beta for b in bls], dtype=float)
    wbeta = np.array([b.walk_beta for b in bls], dtype=float)
    ts = records["ts"]
    dist = f.distance
    if np.isnan(dist).any():
        dist = np.where(np.isnan(dist), np.cumsum(np.nan_to_num(f.v) * f.dt), dist)
    sums, meds, means, mode = kernels.segment_stats(
        a64(st, np.int64), a64(en, np.int64), a64(path, np.int8), a64(em.loglik, np.float32), a64(em.dir_run, float),
        a64(em.dir_walk, float), a64(em.r_run, float), a64(em.r_walk, float), beta, wbeta,
        a64(f.group, np.int64), a64(f.dt, float), a64(f.v, float), a64(f.c, float), a64(em.has_c, bool),
        a64(em.hr_res, float), a64(f.grade, float), a64(f.grade_known, bool), a64(em.has_hr, bool),
        a64(em.has_v, bool), a64(f.has_gps, bool), a64(f.cadence_doubled, bool), a64(ctx, np.int8),
        len(ctxmod.CONTEXTS))
    agg = pl.DataFrame({
        "group": f.group[st], "state": state[st].astype(np.int8), "start_time": ts.gather(st),
        "last_ts": ts.gather(en - 1), "d": sums[:, 0], "margin": sums[:, 1], "step_ratio": meds[:, 0],
        "v": meds[:, 1], "c": meds[:, 2], "hr_res": meds[:, 3], "grade": meds[:, 4],
        "grade_known": means[:, 0], "has_c": means[:, 1], "has_hr": means[:, 2], "has_v": means[:, 3],
        "gps": means[:, 4], "ctx": mode, "steps": sums[:, 2], "d0": dist[st], "d1": dist[en - 1],
        "doubled": means[:, 5] > 0,
        "same_effort": np.add.reduceat(same.astype(float), st) / (en - st) > 0.5,
        "walk_effort": np.add.reduceat(walk_eff.astype(float), st) / (en - st) > 0.5,
        "walk_split": np.add.reduceat(split.astype(float), st) / (en - st) > 0.5,
        "learned_p": np.fmax.reduceat(learned_p, st),
        "sibling": np.add.reduceat(sibling.astype(np.int64), st) > 0,   # as learned_p: any record
    }, nan_to_null=True)
    # contiguous cover: a segment ends where the next one (same activity) starts
    nxt_start = agg["start_time"].shift(-1)
    same_next = agg["group"].shift(-1) == agg["group"]
    agg = agg.with_columns(
        pl.when(same_next).then(nxt_start).otherwise(pl.col("last_ts")).alias("end_time"),
        pl.when(same_next).then(pl.col("d0").shift(-1)).otherwise(pl.col("d1")).alias("d_end"),
    )
    g = agg["group"].to_numpy()
    stt = agg["state"].to_numpy()
    back = (stt == BR) | (stt == BW)
    walk = (stt == FW) | (stt == BW)
    p_back = _sigmoid(DIR_SCALE * agg["d"].to_numpy())
    p_dir = np.where(back, p_back, 1.0 - p_back)
    p_gait = _sigmoid(GAIT_SCALE * agg["margin"].to_numpy() + 1.0)
    has_c = agg["has_c"].to_numpy()
    dirname = np.array(["forward", "backward"])[back.astype(int)]
    cap = np.ones(len(stt))
    cap = np.where(has_c < 0.5, np.where(back, CAP_NO_CADENCE["backward"], CAP_NO_CADENCE["forward"]), cap)
    cap = np.where(walk, np.minimum(cap, np.where(back, CAP_WALK_DIRECTION["backward"],
                                                  CAP_WALK_DIRECTION["forward"])), cap)
    conf = np.where(stt == S, p_gait, np.minimum(p_dir, cap) * p_gait)
    conf = np.where(agg["same_effort"].to_numpy(), SAME_EFFORT_CONFIDENCE, conf)
    conf = np.where(agg["walk_effort"].to_numpy(), WALK_EFFORT_CONFIDENCE, conf)
    # a walk-split bout gets the walking-direction cap (without cadence the no-cadence cap): 0.975
    # of its seconds were backward on dev seeds 5-9 (ACCURACY.md), but no slow stroll at two paces
    # on a real track is simulated
    conf = np.where(agg["walk_split"].to_numpy(), np.where(has_c < 0.5, CAP_NO_CADENCE["backward"],
                                                           CAP_WALK_DIRECTION["backward"]), conf)
    learned = agg["learned_p"].is_not_null().to_numpy() & (stt == BR)
    conf = np.where(learned, np.minimum(BOUT_MODEL_CONFIDENCE, cap), conf)   # without cadence, the cap
    evidence = [_evidence(row, bls[gi], models[gi]) for row, gi in zip(agg.iter_rows(named=True), g)]
    aid = ids[g]
    start_us = agg["start_time"].dt.epoch("us").to_numpy()
    seg_id = [_segment_id(int(a), int(s)) for a, s in zip(aid, start_us)]
    out = pl.DataFrame({
        "segment_id": seg_id, "activity_id": aid.astype(np.int64),
        "athlete_id": [athletes[gi] for gi in g],
        "start_time": agg["start_time"], "end_time": agg["end_time"],
        "duration_s": (agg["end_time"] - agg["start_time"]).dt.total_microseconds() / 1e6,
        "distance_m": (agg["d_end"] - agg["d0"]).clip(lower_bound=0.0),
        "n_steps": agg["steps"],
        "gait": np.array(["stationary", "walk", "walk", "run", "run"])[stt],
        "direction": [None if s == S else dn for s, dn in zip(stt, dirname)],
        "confidence": np.round(conf, 4),
        "context": np.array(ctxmod.CONTEXTS)[agg["ctx"].to_numpy()],
        "step_length_ratio": agg["step_ratio"], "median_speed_mps": agg["v"],
        "median_cadence_spm": agg["c"], "hr_residual_bpm": agg["hr_res"],
        "median_grade_pct": agg["grade"], "evidence": evidence,
        "classifier_version": CLASSIFIER_VERSION,
    }, schema_overrides={"step_length_ratio": pl.Float64}).with_columns(
        pl.when(pl.col("gait") == "stationary").then(None).otherwise(pl.col("step_length_ratio"))
        .alias("step_length_ratio"))
    return out.cast(SEGMENT_SCHEMA).select(list(SEGMENT_SCHEMA))


def _segment_id(activity_id: int, start_us: int) -> int:
    h = hashlib.blake2b(f"{activity_id}:{start_us}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big", signed=True)


def _evidence(row: dict, bl: Baseline, m: model.ActivityModel) -> str:
    """A short human-readable note on what decided the segment and what was missing."""
    parts = []
    if row["same_effort"]:
        parts.append("much slower than today's fast running at the same HR"
                     + (" and cadence" if row["has_c"] >= 0.5 else ""))
    if row["walk_effort"]:
        parts.append("shorter steps and a higher HR than today's forward walking")
    if row["walk_split"]:
        parts.append("a slower pace with shorter steps, in bouts between today's forward walking")
    if row["learned_p"] is not None and row["state"] == BR:
        parts.append(f"learned bout model over pace, HR and cadence against today's fast running, "
                     f"trained on simulated sessions (p={row['learned_p']:.2f}"
                     + ("; turned as the twin of a surer bout this session at the same pace and cadence)"
                        if row["sibling"] else ")"))
    if row["state"] != S:
        if row["has_c"] >= 0.5 and row["step_ratio"] is not None:
            parts.append(f"step {row['step_ratio']:.2f}x forward at {row['c']:.0f} spm")
        if row["hr_res"] is not None and row["has_hr"] >= 0.5:
            parts.append(f"HR {row['hr_res']:+.0f} bpm vs forward")
        if row["grade_known"] >= 0.5 and row["grade"] is not None:
            parts.append(f"grade {row['grade']:+.1f}%")
    missing = []
    if row["has_v"] < 0.5:
        missing.append("no speed")
    if row["has_c"] < 0.5 and row["state"] != S:
        missing.append("no cadence: speed and HR only")
    if row["has_hr"] < 0.5 and row["state"] != S:
        missing.append("no HR")
    if row["gps"] < 0.5:
        missing.append("no GPS")
    if row["state"] in (FW, BW):
        missing.append("walking direction is hard without an IMU")
    if row.get("doubled"):
        missing.append("cadence looked like strides/min and was doubled")
    parts += missing
    parts.append("baseline " + (f"learned ({bl.n_activities} activities)" if bl.learned else "population prior"))
    if m.hypothesis_backward >= 0.5:
        parts.append(f"activity's dominant running looked backward (p={m.hypothesis_backward:.2f})")
    return "; ".join(parts)


def _refs(f: featmod.Features, path: np.ndarray, em: model.Emissions, ids: np.ndarray, athletes: list[str],
          bls: list[Baseline], models: list[model.ActivityModel], segs: pl.DataFrame) -> list[ActivityRef]:
    """Each activity's forward reference, from records decoded as forward run / walk."""
    pop = np.array([math.log(POPULATION.run_cadence_spm), math.log(POPULATION.run_speed_mps), POPULATION.run_beta,
                    math.log(POPULATION.walk_cadence_spm), math.log(POPULATION.walk_speed_mps), POPULATION.walk_beta])
    a64 = np.ascontiguousarray
    tab = kernels.refs(a64(f.starts, np.int64), a64(f.ends, np.int64), a64(path, np.int8), a64(em.has_c, bool),
                       a64(em.has_v, bool), a64(f.v_eff, float), a64(f.c, float), a64(f.gct, float),
                       a64(f.grade, float), a64(f.dt, float), pop)

    def opt(x: float) -> float | None:
        return None if math.isnan(x) else float(x)

    return [ActivityRef(int(ids[gi]), athletes[gi], float(r[0]), opt(r[3]), opt(r[4]), opt(r[2]), float(r[1]),
                        opt(r[6]), models[gi].hr_b, opt(r[5])) for gi, r in enumerate(tab)]
