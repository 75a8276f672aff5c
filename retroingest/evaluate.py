"""Accuracy harness (issue 4): simulate a held-out set, run the real pipeline, score the segments.

Method (docs/ACCURACY.md has the long form):

1. ``simulate()`` a fresh set with a seed >= ``DEV_SEED_LIMIT`` (seeds below are development
   seeds, used by tests and tuning; the harness refuses them unless told otherwise).
2. Ingest the files into a temporary DuckDB warehouse with the library's ``ingest()`` in
   chronological batches (one batch per round of sessions, like nightly imports), so each
   athlete's forward history accumulates as it would in use. Ingest runs the classifier.
3. Read the ``segments`` table and put truth and prediction on one grid of 1 s cells per
   activity (cell k is sampled at its middle, first record + k + 0.5 s).
4. Score: per-second precision/recall/F1 for backward (walk and run together); recall by
   gait; events = maximal runs of backward cells lasting >= 30 s; a true event is found when
   >= 50 % of its cells are predicted backward, a predicted event is correct when >= 50 % of its
   cells are truly backward; boundary error = |start| and |end| differences between a found
   event and the predicted event overlapping it most; false-positive backward seconds per hour
   of moving time on the synthetic hard negatives and on real forward runs of the corpus.

The metric functions are pure NumPy and are tested on hand-made intervals (tests/test_evaluate.py).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import polars as pl

from retroingest.simulate import DEV_SEED_LIMIT, read_manifest, read_truth, simulate

HELD_OUT_SEED = 20_261_389      # the default evaluation seed: not yet run by anyone
# seeds >= DEV_SEED_LIMIT that are not held out any more: looked at during development
# (docs/CLASSIFIER.md, benchmarks) or already reported (docs/ACCURACY.md)
SPENT_SEEDS = frozenset({10_002, 10_003, 10_004, 10_005, 10_006, 70_001, 20_261_123, 27_182_818, 20_261_207, 20_261_221,
                         20_261_235, 20_261_249, 20_261_263, 20_261_277, 20_261_291, 20_261_305,
                         20_261_319, 20_261_333, 20_261_347, 20_261_361, 20_261_375})
DEFAULT_N = 96
MIN_EVENT_S = 30
EVENT_OVERLAP = 0.5
GAITS = ("stationary", "walk", "run")


# ----------------------------------------------------------------------------- rasters

def raster(intervals: pl.DataFrame, t0: dt.datetime, n: int, tolerance_s: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Label n 1-s cells from intervals (start_time, end_time, gait, direction).

    Cell k is sampled at t0 + k + 0.5 s and takes the label of the last interval starting at or
    before it (gaps between intervals inherit the previous label); cells more than
    ``tolerance_s`` past the last interval's end, or before the first start, get gait −1.
    Returns (gait code: index into GAITS or −1, backward: bool).
    """
    gait = np.full(n, -1, dtype=np.int8)
    backward = np.zeros(n, dtype=bool)
    if intervals.height == 0 or n == 0:
        return gait, backward
    iv = intervals.sort("start_time")
    base = t0.timestamp()   # epoch seconds are time-zone independent (DuckDB may hand back local zones)
    st = iv["start_time"].dt.epoch("us").to_numpy() / 1e6 - base
    en = iv["end_time"].dt.epoch("us").to_numpy() / 1e6 - base
    s = np.arange(n) + 0.5
    idx = np.searchsorted(st, s, side="right") - 1
    ok = (idx >= 0) & (s <= en.max() + tolerance_s)
    codes = np.array([GAITS.index(g) if g in GAITS else -1 for g in iv["gait"].to_list()], dtype=np.int8)
    bwd = (iv["direction"] == "backward").fill_null(False).to_numpy()
    gait[ok] = codes[idx[ok]]
    backward[ok] = bwd[idx[ok]]
    return gait, backward


def raster_values(intervals: pl.DataFrame, t0: dt.datetime, n: int, column: str,
                  tolerance_s: float = 1.0) -> np.ndarray:
    """A numeric interval column (e.g. confidence) on the same 1-s cells as :func:`raster` (NaN = none)."""
    out = np.full(n, np.nan)
    if intervals.height == 0 or n == 0 or column not in intervals.columns:
        return out
    iv = intervals.sort("start_time")
    base = t0.timestamp()
    st = iv["start_time"].dt.epoch("us").to_numpy() / 1e6 - base
    en = iv["end_time"].dt.epoch("us").to_numpy() / 1e6 - base
    s = np.arange(n) + 0.5
    idx = np.searchsorted(st, s, side="right") - 1
    ok = (idx >= 0) & (s <= en.max() + tolerance_s)
    vals = iv[column].cast(pl.Float64).fill_null(np.nan).to_numpy()
    out[ok] = vals[idx[ok]]
    return out


CONFIDENCE_BINS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0001)


def reliability(items: Iterable["Scored"]) -> list[dict[str, Any]]:
    """Calibration of segment confidence for direction: per confidence bin, how often the
    predicted direction (backward vs not) is right, over moving cells."""
    items = [s for s in items if s.confidence is not None]
    if not items:
        return []
    conf = np.concatenate([s.confidence for s in items])
    right = np.concatenate([s.pred_bwd == s.truth_bwd for s in items])
    bwd = np.concatenate([s.pred_bwd for s in items])
    mv = np.concatenate([s.moving for s in items]) & np.isfinite(conf)
    rows = []
    for lo, hi in zip(CONFIDENCE_BINS[:-1], CONFIDENCE_BINS[1:]):
        for label, sel in (("backward", bwd), ("forward", ~bwd)):
            m = mv & sel & (conf >= lo) & (conf < hi)
            if m.any():
                rows.append({"predicted": label, "bin": f"[{lo:.2f}, {min(hi, 1.0):.2f}]", "cells": int(m.sum()),
                             "mean_confidence": float(conf[m].mean()), "accuracy": float(right[m].mean())})
    return rows


def bouts(mask: np.ndarray) -> np.ndarray:
    """Maximal runs of True as an (m, 2) array of [start, end) cell indices."""
    m = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    d = np.diff(m.astype(np.int8))
    return np.stack([np.flatnonzero(d == 1), np.flatnonzero(d == -1)], axis=1)


# ----------------------------------------------------------------------------- metrics

def prf(tp: float, fp: float, fn: float) -> dict[str, float | None]:
    """Precision, recall and F1 from counts (None when undefined)."""
    p = tp / (tp + fp) if tp + fp else None
    r = tp / (tp + fn) if tp + fn else None
    f1 = 2 * p * r / (p + r) if p is not None and r is not None and p + r > 0 else (0.0 if p == 0 or r == 0 else None)
    return {"precision": p, "recall": r, "f1": f1}


@dataclass
class EventScore:
    """Event matching counts for one or more activities, with the boundary errors (s)."""

    n_true: int = 0
    n_found: int = 0
    n_pred: int = 0
    n_correct: int = 0
    boundary_errors_s: list[float] = field(default_factory=list)

    def add(self, other: "EventScore") -> None:
        self.n_true += other.n_true
        self.n_found += other.n_found
        self.n_pred += other.n_pred
        self.n_correct += other.n_correct
        self.boundary_errors_s += other.boundary_errors_s

    @property
    def recall(self) -> float | None:
        return self.n_found / self.n_true if self.n_true else None

    @property
    def precision(self) -> float | None:
        return self.n_correct / self.n_pred if self.n_pred else None

    @property
    def median_boundary_error_s(self) -> float | None:
        return float(np.median(self.boundary_errors_s)) if self.boundary_errors_s else None


def true_events(truth: np.ndarray, pred: np.ndarray, min_s: int = MIN_EVENT_S) -> tuple[np.ndarray, np.ndarray]:
    """The true backward events (bouts >= min_s, as [start, end) rows) and the share of each
    that the prediction covers."""
    tb = bouts(truth)
    tb = tb[(tb[:, 1] - tb[:, 0]) >= min_s]
    cum_p = np.concatenate([[0], np.cumsum(pred)])
    covered = (cum_p[tb[:, 1]] - cum_p[tb[:, 0]]) / np.maximum(tb[:, 1] - tb[:, 0], 1)
    return tb, covered


def event_score(truth: np.ndarray, pred: np.ndarray, min_s: int = MIN_EVENT_S,
                overlap: float = EVENT_OVERLAP) -> EventScore:
    """Match backward events (runs of cells >= min_s long) between truth and prediction."""
    tb, covered = true_events(truth, pred, min_s)
    pb = bouts(pred)
    pb_long = pb[(pb[:, 1] - pb[:, 0]) >= min_s]
    sc = EventScore(n_true=len(tb), n_pred=len(pb_long))
    cum_t = np.concatenate([[0], np.cumsum(truth)])
    if len(tb):
        found = covered >= overlap
        sc.n_found = int(found.sum())
        if len(pb):
            # overlap of every (true, predicted) pair; pick the predicted bout overlapping most
            ov = np.clip(np.minimum(tb[:, None, 1], pb[None, :, 1]) - np.maximum(tb[:, None, 0], pb[None, :, 0]), 0, None)
            best = ov.argmax(axis=1)
            for_err = found & (ov.max(axis=1) > 0)
            errs = np.concatenate([np.abs(pb[best, 0] - tb[:, 0])[for_err], np.abs(pb[best, 1] - tb[:, 1])[for_err]])
            sc.boundary_errors_s = errs.astype(float).tolist()
    if len(pb_long):
        correct = (cum_t[pb_long[:, 1]] - cum_t[pb_long[:, 0]]) / (pb_long[:, 1] - pb_long[:, 0]) >= overlap
        sc.n_correct = int(correct.sum())
    return sc


@dataclass
class Scored:
    """One activity on the 1 s grid: truth and prediction, plus what it is."""

    file: str
    scenario: str
    kind: str                      # backward | negative | stroll | real
    truth_gait: np.ndarray
    truth_bwd: np.ndarray
    pred_gait: np.ndarray
    pred_bwd: np.ndarray
    moving: np.ndarray             # cells counted as moving time
    info: dict[str, Any] = field(default_factory=dict)
    confidence: np.ndarray | None = None   # segment confidence per cell (NaN where none)


# How far a simulated athlete's backward gait sits from the forward one, split where the
# classifier's per-record noise lies: walking and running cadence residuals spread about 0.02-0.05
# (log) per record, so an excess under 7 % hides inside a few records' noise; the HR surcharge is
# judged against lag and drift of about 5-10 bpm within a session.
CADENCE_VISIBLE = 0.07     # log(backward / forward cadence at the same speed)
HR_VISIBLE_BPM = 10.0      # steady extra HR backward at the same speed


def _evidence_class(info: dict[str, Any], gait: str) -> str:
    """'cadence +7 % or more' / 'cadence under +7 %' / 'no cadence', and the same for HR."""
    excess, extra = info.get(f"{gait}_cadence_excess"), info.get(f"{gait}_hr_surcharge_bpm")
    if excess is None or extra is None or not (np.isfinite(excess) and np.isfinite(extra)):
        return "unknown"
    c_lim, h_lim = f"+{CADENCE_VISIBLE * 100:.0f} %", f"+{HR_VISIBLE_BPM:.0f} bpm"
    cad = ("no cadence" if not info.get("has_cadence")
           else f"cadence {c_lim + ' or more' if excess >= CADENCE_VISIBLE else 'under ' + c_lim}")
    hr = ("no HR" if not info.get("has_hr")
          else f"HR {h_lim + ' or more' if extra >= HR_VISIBLE_BPM else 'under ' + h_lim}")
    return f"{cad}, {hr}"


def by_evidence(items: Iterable[Scored], overlap: float = EVENT_OVERLAP) -> dict[str, dict[str, Any]]:
    """Event and second recall of backward bouts (>= MIN_EVENT_S), grouped by what the
    simulated data can show: the bout's gait, whether the file has cadence and how far the
    athlete's backward cadence sits above the forward cadence at the same speed, and whether
    it has HR and how large the athlete's backward HR surcharge is. A miss where neither
    cadence nor HR differ is a limit of the data, not only of the classifier."""
    rows: dict[str, dict[str, Any]] = {}
    for s in items:
        if s.kind != "backward":
            continue
        tb, covered = true_events(s.truth_bwd, s.pred_bwd)
        for (a, b), cov in zip(tb, covered):
            gait = "run" if (s.truth_gait[a:b] == GAITS.index("run")).mean() >= 0.5 else "walk"
            r = rows.setdefault(f"{gait}: {_evidence_class(s.info, gait)}",
                                {"events_true": 0, "events_found": 0, "backward_s": 0, "found_s": 0})
            r["events_true"] += 1
            r["events_found"] += int(cov >= overlap)
            r["backward_s"] += int(b - a)
            r["found_s"] += int(s.pred_bwd[a:b].sum())
    for r in rows.values():
        r["event_recall"] = r["events_found"] / r["events_true"]
        r["recall"] = r["found_s"] / r["backward_s"]
    return dict(sorted(rows.items()))


# what the missed backward cells were called instead (pred_gait -1 = no segment at all)
_CALLED = {-1: "not classified", 0: "stationary", 1: "walk forward", 2: "run forward"}


def most_missed(items: Iterable[Scored], k: int = 10) -> list[dict[str, Any]]:
    """The backward sessions that lost the most backward seconds, worst first: where the misses
    are, what they were called instead, and the evidence class of the gait that lost the most
    (see ``by_evidence``). A handful of files usually holds most of the missed seconds; this
    list is where diagnosis starts."""
    rows = []
    for s in items:
        if s.kind != "backward":
            continue
        missed = s.truth_bwd & ~s.pred_bwd
        n_missed = int(missed.sum())
        if n_missed == 0:
            continue
        tb, covered = true_events(s.truth_bwd, s.pred_bwd)
        run = GAITS.index("run")
        missed_run = int((missed & (s.truth_gait == run)).sum())
        gait = "run" if missed_run * 2 >= n_missed else "walk"
        called, counts = np.unique(s.pred_gait[missed], return_counts=True)
        rows.append({"file": s.file, "scenario": s.scenario, "missed_s": n_missed,
                     "backward_s": int(s.truth_bwd.sum()), "events_true": len(tb),
                     "events_found": int((np.asarray(covered) >= EVENT_OVERLAP).sum()),
                     "gait": gait, "evidence": _evidence_class(s.info, gait),
                     "called": _CALLED.get(int(called[counts.argmax()]), "?")})
    rows.sort(key=lambda r: (-r["missed_s"], r["file"]))
    return rows[:k]


def summarise(items: Iterable[Scored]) -> dict[str, Any]:
    """All headline metrics over a set of scored activities."""
    items = list(items)
    out: dict[str, Any] = {"n_activities": len(items)}
    if not items:
        return out
    tb = np.concatenate([s.truth_bwd for s in items])
    pbw = np.concatenate([s.pred_bwd for s in items])
    tg = np.concatenate([s.truth_gait for s in items])
    pg = np.concatenate([s.pred_gait for s in items])
    mv = np.concatenate([s.moving for s in items])
    tp, fp, fn = int((tb & pbw).sum()), int((~tb & pbw).sum()), int((tb & ~pbw).sum())
    out.update(backward_s=int(tb.sum()), tp_s=tp, fp_s=fp, fn_s=fn, **prf(tp, fp, fn))
    for g in ("walk", "run"):
        sel = tb & (tg == GAITS.index(g))
        out[f"recall_{g}"] = float(pbw[sel].mean()) if sel.any() else None
        out[f"backward_{g}_s"] = int(sel.sum())
        said = pbw & (pg == GAITS.index(g))          # cells the classifier called backward <gait>
        out[f"precision_{g}"] = float(tb[said].mean()) if said.any() else None
    both = tb & pbw
    out["gait_agreement_on_tp"] = float((tg[both] == pg[both]).mean()) if both.any() else None
    ev = EventScore()
    for s in items:
        ev.add(event_score(s.truth_bwd, s.pred_bwd))
    out.update(events_true=ev.n_true, events_found=ev.n_found, event_recall=ev.recall,
               events_pred=ev.n_pred, events_correct=ev.n_correct, event_precision=ev.precision,
               median_boundary_error_s=ev.median_boundary_error_s,
               p90_boundary_error_s=float(np.percentile(ev.boundary_errors_s, 90)) if ev.boundary_errors_s else None)
    fwd_moving = mv & ~tb
    out["moving_h"] = float(mv.sum() / 3600)
    out["fp_per_moving_h"] = float(fp / (fwd_moving.sum() / 3600)) if fwd_moving.any() else None
    return out


def bootstrap_ci(items: list[Scored], n_boot: int = 1000, seed: int = 0, level: float = 0.9) -> dict[str, list[float]]:
    """Percentile intervals for the headline metrics, resampling whole activities (sessions).

    Seconds within a session are not independent; resampling sessions gives honest widths.
    """
    if not items:
        return {}
    per = np.array([[int((s.truth_bwd & s.pred_bwd).sum()), int((~s.truth_bwd & s.pred_bwd).sum()),
                     int((s.truth_bwd & ~s.pred_bwd).sum())] for s in items], dtype=float)
    ev = [event_score(s.truth_bwd, s.pred_bwd) for s in items]
    evc = np.array([[e.n_true, e.n_found] for e in ev], dtype=float)
    neg = np.array([s.kind == "negative" for s in items])
    fwd_mv = np.array([(s.moving & ~s.truth_bwd).sum() / 3600 for s in items])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(items), size=(n_boot, len(items)))
    tp, fp, fn = (per[idx, j].sum(axis=1) for j in range(3))
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = 2 * tp / (2 * tp + fp + fn)
        er = evc[idx, 1].sum(axis=1) / evc[idx, 0].sum(axis=1)
        fpn = (per[idx, 1] * neg[idx]).sum(axis=1) / (fwd_mv[idx] * neg[idx]).sum(axis=1)
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    out = {}
    for name, v in (("backward_f1", f1), ("event_recall", er), ("fp_per_h_synthetic_negatives", fpn)):
        v = v[np.isfinite(v)]
        if v.size:
            out[name] = [float(x) for x in np.percentile(v, q)]
    return out


# ----------------------------------------------------------------------------- the pipeline

def _activity_segments(con, where: str = "", params: list | None = None) -> pl.DataFrame:
    """Activities (primary copies of foot sports) with their file path, and their segments."""
    acts = con.execute(
        "SELECT a.activity_id, f.path, a.start_time, a.end_time, a.moving_time_s, a.sport, a.has_cadence "
        "FROM activities a JOIN source_files f ON a.file_id = f.file_id "
        "WHERE a.duplicate_of IS NULL AND a.is_foot_sport " + where, params or []).pl()
    segs = con.execute(
        "SELECT activity_id, start_time, end_time, gait, direction, confidence FROM segments").pl()
    return acts, segs


def ingest_batches(batches: list[list[Path]], warehouse_path: Path, workers: int | None = None) -> list[Any]:
    """Ingest file batches in order through the library's ingest (which also classifies)."""
    from retroingest.ingest import ingest  # the lead's pipeline entry

    results = []
    for batch in batches:
        if batch:
            results.append(ingest([str(p) for p in batch], warehouse_path, workers=workers,
                                  command="evaluate", lock_wait_s=30))
    return results


def _ensure_classified(warehouse_path: Path) -> str:
    """Classify activities that ingest left without segments (when the post-step did not run)."""
    from retroingest import warehouse

    con = warehouse.connect(warehouse_path, wait_s=30)
    try:
        missing = [r[0] for r in con.execute(
            "SELECT activity_id FROM activities a WHERE a.duplicate_of IS NULL AND a.is_foot_sport AND NOT EXISTS "
            "(SELECT 1 FROM segments s WHERE s.activity_id = a.activity_id)").fetchall()]
        if not missing:
            return "all activities classified by ingest"
        from retroingest.classify import classify_activities

        classify_activities(con, missing)
        return f"{len(missing)} activities classified after ingest"
    finally:
        con.close()


def _pred_for(segs: pl.DataFrame, activity_id: int) -> pl.DataFrame:
    return segs.filter(pl.col("activity_id") == activity_id)


EVIDENCE_COLUMNS = ("run_cadence_excess", "walk_cadence_excess", "run_hr_surcharge_bpm", "walk_hr_surcharge_bpm")


def score_synthetic(sim_dir: Path, warehouse_paths: Path | list[Path]) -> list[Scored]:
    """Score every simulated activity in the warehouse(s) against its truth CSV."""
    from retroingest import warehouse

    manifest = read_manifest(sim_dir / "manifest.csv").with_columns(
        # 1 = the athlete's first session (population priors only), 2 = second, ...
        pl.col("start_time").rank("ordinal").over("athlete_id").cast(pl.Int64).alias("session_rank"))
    parts = []
    for wp in ([warehouse_paths] if isinstance(warehouse_paths, (str, Path)) else warehouse_paths):
        con = warehouse.connect(wp, read_only=True, wait_s=30)
        try:
            parts.append(_activity_segments(con))
        finally:
            con.close()
    acts = pl.concat([p[0] for p in parts], how="vertical_relaxed")
    segs = pl.concat([p[1] for p in parts], how="vertical_relaxed")
    by_name = {Path(p.split("!/")[-1]).name: r for p, r in zip(acts["path"], acts.iter_rows(named=True))}
    out = []
    for m in manifest.iter_rows(named=True):
        truth = read_truth(sim_dir / m["truth"])
        t0 = truth["start_time"][0]
        n = int((truth["end_time"][-1] - t0).total_seconds())
        tg, tb = raster(truth, t0, n)
        act = by_name.get(m["file"])
        if act is None:   # not ingested (quarantined): everything counts as missed
            pg, pb, conf = np.full(n, -1, np.int8), np.zeros(n, bool), np.full(n, np.nan)
        else:
            pred = _pred_for(segs, act["activity_id"])
            pg, pb = raster(pred, t0, n)
            conf = raster_values(pred, t0, n, "confidence")
        out.append(Scored(file=m["file"], scenario=m["scenario"], kind=m["kind"], truth_gait=tg, truth_bwd=tb,
                          pred_gait=pg, pred_bwd=pb, moving=tg > 0, confidence=conf,
                          info={k: m[k] for k in ("format", "has_cadence", "has_hr", "has_gps", "sampling",
                                                  "athlete_id", "venue", "sub_sport", "session_rank")}
                          | {k: m.get(k) for k in EVIDENCE_COLUMNS}   # absent in older sets
                          | {"ingested": act is not None}))
    return out


def corpus_selection(corpus: Path) -> dict[str, list[Path]]:
    """Real files for the false-positive rates, from the corpus MANIFEST.

    ``runs``: long_run_negative_candidate = true, plus every other non-broken file whose sport
    names running (multisport files included: only their running legs are scored) with cadence.
    ``walks``: walking files with cadence (reported apart: a hard negative for backward walking).
    """
    m = pl.read_csv(corpus / "MANIFEST.csv", infer_schema_length=0).filter(pl.col("category") != "bad")
    sport = pl.col("sport").fill_null("").str.to_lowercase()
    cad = pl.col("has_cadence") == "true"
    runs = m.filter((pl.col("long_run_negative_candidate") == "true") | ((sport.str.contains("run") | (sport == "9")) & cad))
    walks = m.filter((sport == "walking") & cad)
    return {"runs": [corpus / f for f in runs["file"].to_list()], "walks": [corpus / f for f in walks["file"].to_list()]}


RUN_SPORTS = ("running", "trail_running", "generic", "training", "treadmill", "track")


def score_corpus(files: list[Path], warehouse_path: Path, sports: tuple[str, ...] = RUN_SPORTS,
                 without: tuple[str, ...] = (), config: dict[str, Any] | None = None) -> list[Scored]:
    """Real forward activities with cadence: every predicted backward second is a false positive.

    ``without``: channels to remove before classifying again (``store.classify_without``, nothing
    written) instead of reading the stored segments: e.g. the real runs as a watch without
    cadence would have recorded them; ``config`` maps their devices to athletes as at ingest.
    """
    from retroingest import warehouse
    from retroingest.classify.store import classify_without

    con = warehouse.connect(warehouse_path, read_only=True, wait_s=30)
    try:
        acts, segs = _activity_segments(con)
        wanted = {str(p.resolve()) for p in files} | {p.name for p in files}
        keep = [a["path"] in wanted or Path(a["path"].split("!/")[-1]).name in wanted
                for a in acts.select("path").iter_rows(named=True)]
        acts = acts.filter(pl.Series(keep, dtype=pl.Boolean) & pl.col("sport").is_in(list(sports))
                           & pl.col("has_cadence").fill_null(False))
        if without and acts.height:
            segs = classify_without(con, acts["activity_id"].to_list(), without, config=config).segments
    finally:
        con.close()
    out = []
    for act in acts.iter_rows(named=True):
        path = act["path"]
        t0 = act["start_time"]
        n = int((act["end_time"] - t0).total_seconds()) + 1
        pg, pb = raster(_pred_for(segs, act["activity_id"]), t0, n)
        moving_s = act["moving_time_s"] or 0.0
        # real files have no truth: all forward; moving time is the warehouse's recomputed value
        moving = np.zeros(n, bool)
        moving[: int(round(min(moving_s, n)))] = True
        out.append(Scored(file=Path(path).name, scenario="real", kind="real",
                          truth_gait=np.full(n, -1, np.int8), truth_bwd=np.zeros(n, bool),
                          pred_gait=pg, pred_bwd=pb, moving=moving, info={"sport": act["sport"]}))
    return out


def fp_table(items: list[Scored]) -> dict[str, Any]:
    """False-positive backward seconds per hour of moving time, total and per file."""
    fp = sum(int((s.pred_bwd & ~s.truth_bwd).sum()) for s in items)
    mv = sum(int((s.moving & ~s.truth_bwd).sum()) for s in items)
    worst = sorted(((int((s.pred_bwd & ~s.truth_bwd).sum()), s.file, s.scenario) for s in items), reverse=True)[:5]
    return {"n_activities": len(items), "fp_s": fp, "moving_h": mv / 3600,
            "fp_per_moving_h": fp / (mv / 3600) if mv else None,
            "worst": [{"file": f, "scenario": sc, "fp_s": n} for n, f, sc in worst if n > 0]}


# ----------------------------------------------------------------------------- configuration

def athletes_toml(files) -> str:
    """Configuration for the simulated set: each athlete's device serial and body mass.

    This is what a user would configure (DOMAIN.md: device serial → athlete). GPX files carry no
    serial, so they fall to athlete 'default', as they would in use.
    """
    seen: dict[str, Any] = {}
    for f in files:
        seen.setdefault(f.athlete_id, f)
    lines = []
    for aid, f in sorted(seen.items()):
        lines += [f"[athletes.{aid}]", f'device_serials = ["{f.device_serial}"]', f"body_mass_kg = {f.body_mass_kg}", ""]
    return "\n".join(lines)


class _config_env:
    """Point RETROINGEST_CONFIG at a file for the duration of a block (restored afterwards)."""

    def __init__(self, path: Path):
        self.path, self.old = path, None

    def __enter__(self):
        self.old = os.environ.get("RETROINGEST_CONFIG")
        os.environ["RETROINGEST_CONFIG"] = str(self.path)

    def __exit__(self, *exc):
        if self.old is None:
            os.environ.pop("RETROINGEST_CONFIG", None)
        else:
            os.environ["RETROINGEST_CONFIG"] = self.old


# ----------------------------------------------------------------------------- the run

TARGETS = {
    "backward_f1": (">=", 0.95),
    "event_recall": (">=", 0.97),
    "median_boundary_error_s": ("<=", 3.0),
    "fp_per_h_real": ("<=", 10.0),
    "fp_per_h_synthetic_negatives": ("<=", 30.0),
}


@dataclass
class Report:
    seed: int
    n: int
    overall: dict[str, Any]
    by_scenario: dict[str, dict[str, Any]]
    by_condition: dict[str, dict[str, Any]]
    fp_synthetic_negatives: dict[str, Any]
    fp_by_negative_scenario: dict[str, dict[str, Any]]
    fp_stroll: dict[str, Any]
    fp_forward_parts_of_backward_sessions: dict[str, Any]
    fp_real: dict[str, Any] | None
    notes: list[str]
    headline: dict[str, Any] = field(default_factory=dict)
    fp_real_pooled: dict[str, Any] | None = None
    fp_real_walks: dict[str, Any] | None = None
    fp_real_without_cadence: dict[str, Any] | None = None   # the same real runs, cadence removed
    calibration: list[dict[str, Any]] = field(default_factory=list)
    by_evidence: dict[str, dict[str, Any]] = field(default_factory=dict)   # what the data can show
    most_missed: list[dict[str, Any]] = field(default_factory=list)       # files losing the most
    intervals_90: dict[str, list[float]] = field(default_factory=dict)   # bootstrap over sessions

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, default=str)


def build_report(seed: int, n: int, synthetic: list[Scored], real: list[Scored] | None,
                 notes: list[str]) -> Report:
    """Assemble the report from scored activities (no I/O)."""
    bwd_sessions = [s for s in synthetic if s.kind == "backward"]
    negatives = [s for s in synthetic if s.kind == "negative"]
    overall = summarise(synthetic)
    by_scenario = {sc: summarise([s for s in synthetic if s.scenario == sc])
                   for sc in sorted({s.scenario for s in synthetic})}
    by_condition = {}
    for key in ("format", "has_cadence", "has_hr", "sampling", "venue", "session_rank"):
        for val in sorted({str(s.info.get(key)) for s in synthetic}):
            by_condition[f"{key}={val}"] = summarise([s for s in synthetic if str(s.info.get(key)) == val])
    fp_neg = fp_table(negatives)
    fp_real = fp_table(real) if real is not None else None
    rep = Report(
        seed=seed, n=n, overall=overall, by_scenario=by_scenario, by_condition=by_condition,
        fp_synthetic_negatives=fp_neg,
        fp_by_negative_scenario={sc: fp_table([s for s in negatives if s.scenario == sc])
                                 for sc in sorted({s.scenario for s in negatives})},
        fp_stroll=fp_table([s for s in synthetic if s.kind == "stroll"]),
        fp_forward_parts_of_backward_sessions=fp_table(bwd_sessions),
        fp_real=fp_real, notes=notes,
    )
    rep.calibration = reliability(synthetic)
    rep.by_evidence = by_evidence(synthetic)
    rep.most_missed = most_missed(synthetic)
    rep.intervals_90 = bootstrap_ci(synthetic)
    rep.headline = {
        "backward_f1": overall.get("f1"),
        "backward_precision": overall.get("precision"),
        "backward_recall": overall.get("recall"),
        "recall_walk": overall.get("recall_walk"),
        "recall_run": overall.get("recall_run"),
        "precision_walk": overall.get("precision_walk"),
        "precision_run": overall.get("precision_run"),
        "event_recall": overall.get("event_recall"),
        "event_precision": overall.get("event_precision"),
        "median_boundary_error_s": overall.get("median_boundary_error_s"),
        "fp_per_h_synthetic_negatives": fp_neg["fp_per_moving_h"],
        "fp_per_h_real": fp_real["fp_per_moving_h"] if fp_real else None,
    }
    return rep


def meets(value: float | None, target: tuple[str, float]) -> bool | None:
    if value is None:
        return None
    op, thr = target
    return value >= thr if op == ">=" else value <= thr


LAYOUTS = ("per_athlete", "shared")


def _note_results(results, notes: list[str], label: str) -> None:
    for r in results:
        steps = ", ".join(f"{k}: {v}" for k, v in r.post_steps.items()) or "no post steps"
        notes.append(f"{label}: {r.counts} ({steps})")
        for q_label, reason in r.quarantined:
            notes.append(f"quarantined {q_label}: {reason}")


def run_synthetic(files, work: Path, layout: str, notes: list[str], workers: int | None = None) -> list[Path]:
    """Ingest the simulated files session by session; returns the warehouse paths.

    ``per_athlete``: one warehouse per athlete (one person's watch and exports, the main use);
    every file, GPX included, belongs to athlete 'default', configured with the body mass.
    ``shared``: one warehouse for everyone, device serial → athlete configured; GPX files (no
    serial) fall to 'default'. In both, sessions are ingested in time order, so forward history
    accumulates as with nightly imports.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}")
    ordered = sorted(files, key=lambda f: f.start_time)
    if layout == "shared":
        rank: dict[str, int] = {}
        batches: dict[int, list[Path]] = {}
        for f in ordered:   # one batch per round of sessions (each athlete's k-th session)
            k = rank.get(f.athlete_id, 0)
            rank[f.athlete_id] = k + 1
            batches.setdefault(k, []).append(f.path)
        wh = work / "synthetic.duckdb"
        cfg = work / "synthetic.toml"
        cfg.write_text(athletes_toml(files))
        with _config_env(cfg):
            results = ingest_batches([batches[k] for k in sorted(batches)], wh, workers=workers)
            extra = _ensure_classified(wh)
        _note_results(results, notes, "ingest batch")
        notes.append(extra)
        return [wh]
    paths = []
    for aid in sorted({f.athlete_id for f in files}):
        mine = [f for f in ordered if f.athlete_id == aid]
        wh = work / f"athlete_{aid}.duckdb"
        cfg = work / f"athlete_{aid}.toml"
        cfg.write_text(f"[athletes.default]\nbody_mass_kg = {mine[0].body_mass_kg}\n")
        with _config_env(cfg):
            results = ingest_batches([[f.path] for f in mine], wh, workers=workers)
            extra = _ensure_classified(wh)
        bad = sum(r.counts.get("quarantined", 0) + r.counts.get("duplicate", 0) for r in results)
        if bad or extra != "all activities classified by ingest":
            notes.append(f"athlete {aid}: {bad} sessions quarantined or duplicate; {extra}")
        _note_results([r for r in results if r.quarantined], notes, f"athlete {aid}")
        paths.append(wh)
    notes.append(f"{len(paths)} athletes, each session ingested on its own in time order")
    return paths


def evaluate(seed: int = HELD_OUT_SEED, n: int = DEFAULT_N, corpus: Path | None = None,
             workdir: Path | None = None, allow_dev_seed: bool = False, workers: int | None = None,
             layout: str = "per_athlete") -> Report:
    """Simulate a held-out set, run ingest + classify into temp warehouses, and score it.

    Without ``workdir`` the files and warehouses (about 600 MB for 96 files) go to a temporary
    directory that is removed afterwards; with it they stay for inspection."""
    if (seed < DEV_SEED_LIMIT or seed in SPENT_SEEDS) and not allow_dev_seed:
        raise ValueError(f"seed {seed} is a development seed (< {DEV_SEED_LIMIT} or used in development: "
                         f"{sorted(SPENT_SEEDS)}); pick another or allow it")
    if workdir is not None:
        return _evaluate_in(Path(workdir), seed, n, corpus, workers, layout, kept=True)
    with tempfile.TemporaryDirectory(prefix="retroingest-eval-") as tmp:
        return _evaluate_in(Path(tmp), seed, n, corpus, workers, layout, kept=False)


def _evaluate_in(work: Path, seed: int, n: int, corpus: Path | None, workers: int | None, layout: str,
                 kept: bool) -> Report:
    sim_dir = work / "sim"
    files = simulate(sim_dir, n, seed)
    notes = [f"simulated {len(files)} files into {sim_dir if kept else 'a temporary directory (removed; --workdir keeps it)'}"
             f"; warehouse layout: {layout}"]
    wh_paths = run_synthetic(files, work, layout, notes, workers)
    synthetic = score_synthetic(sim_dir, wh_paths)
    notes.append(f"classifier_version: {', '.join(_classifier_versions(wh_paths)) or 'no segments'}; "
                 f"code: {_git_describe()}")
    real = real_pooled = real_walks = real_no_cad = None
    if corpus is not None and (corpus / "MANIFEST.csv").exists():
        sel = corpus_selection(corpus)
        cfiles = sel["runs"] + sel["walks"]
        # the corpus holds many people's watches: each device is its own athlete (headline);
        # the pooled variant (every file one athlete 'default') is reported beside it
        for mode in ("per_device", "default"):
            cwh = work / f"corpus_{mode}.duckdb"
            ccfg = work / f"corpus_{mode}.toml"
            ccfg.write_text(f'[classify]\nunmapped_devices = "{mode}"\n')
            with _config_env(ccfg):
                ingest_batches([cfiles], cwh, workers=workers)
                notes.append(f"corpus ({mode}): " + _ensure_classified(cwh))
            if mode == "per_device":
                real = score_corpus(sel["runs"], cwh)
                real_walks = score_corpus(sel["walks"], cwh, sports=("walking",))
                real_no_cad = score_corpus(sel["runs"], cwh, without=("cadence_spm",),
                                           config={"classify": {"unmapped_devices": mode}})
            else:
                real_pooled = score_corpus(sel["runs"], cwh)
        notes.append(f"corpus: {len(sel['runs'])} running files selected, {len(real)} running activities with "
                     f"cadence scored; {len(sel['walks'])} walking files, {len(real_walks)} scored")
    else:
        notes.append("corpus not found: no real-run false-positive rate")
    rep = build_report(seed, n, synthetic, real, notes)
    rep.fp_real_pooled = fp_table(real_pooled) if real_pooled is not None else None
    rep.fp_real_walks = fp_table(real_walks) if real_walks is not None else None
    rep.fp_real_without_cadence = fp_table(real_no_cad) if real_no_cad is not None else None
    return rep


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{100 * v:.1f} %" if pct else f"{v:.2f}"
    return str(v)


def format_report(rep: Report) -> str:
    """Human-readable report (markdown tables) printed by ``retroingest evaluate``."""
    h, o = rep.headline, rep.overall
    lines = [f"# retroingest accuracy, seed {rep.seed}, n = {rep.n}", "",
             "| metric | value | target | met |", "|---|---|---|---|"]
    for key, label, pct in [
        ("backward_f1", "backward per-second F1 (walk+run)", False),
        ("backward_precision", "backward per-second precision", False),
        ("backward_recall", "backward per-second recall", False),
        ("recall_run", "recall, backward running seconds", False),
        ("recall_walk", "recall, backward walking seconds", False),
        ("precision_run", "precision, seconds called backward running", False),
        ("precision_walk", "precision, seconds called backward walking", False),
        ("event_recall", f"event recall, bouts >= {MIN_EVENT_S} s", False),
        ("event_precision", f"event precision, bouts >= {MIN_EVENT_S} s", False),
        ("median_boundary_error_s", "median boundary error (s)", False),
        ("fp_per_h_synthetic_negatives", "FP backward s per moving hour, synthetic hard negatives", False),
        ("fp_per_h_real", "FP backward s per moving hour, real corpus runs", False),
    ]:
        tgt = TARGETS.get(key)
        ok = meets(h.get(key), tgt) if tgt else None
        ci = rep.intervals_90.get(key)
        val = _fmt(h.get(key), pct) + (f" (90 %: {ci[0]:.2f}–{ci[1]:.2f})" if ci else "")
        lines.append(f"| {label} | {val} | {'' if not tgt else tgt[0] + ' ' + str(tgt[1])} | "
                     f"{'' if ok is None else ('yes' if ok else 'NO')} |")
    lines += ["", f"backward seconds: {o.get('backward_s')} (run {o.get('backward_run_s')}, walk "
              f"{o.get('backward_walk_s')}); events >= {MIN_EVENT_S} s: {o.get('events_true')} true, "
              f"{o.get('events_found')} found, {o.get('events_pred')} predicted, {o.get('events_correct')} correct; "
              f"p90 boundary error {_fmt(o.get('p90_boundary_error_s'))} s; gait agreement on true positives "
              f"{_fmt(o.get('gait_agreement_on_tp'))}", ""]
    lines += ["## By scenario", "", "| scenario | files | backward s | precision | recall | F1 | events found/true | FP s/moving h |",
              "|---|---|---|---|---|---|---|---|"]
    for sc, s in rep.by_scenario.items():
        lines.append(f"| {sc} | {s['n_activities']} | {s.get('backward_s')} | {_fmt(s.get('precision'))} | "
                     f"{_fmt(s.get('recall'))} | {_fmt(s.get('f1'))} | {s.get('events_found')}/{s.get('events_true')} | "
                     f"{_fmt(s.get('fp_per_moving_h'))} |")
    if rep.by_evidence:
        lines += ["", "## By what the data can show (bouts >= 30 s)", "",
                  f"The simulated athlete's backward cadence against the forward cadence at the same speed "
                  f"(+{CADENCE_VISIBLE * 100:.0f} % or more: clear of per-record noise), and their backward HR surcharge, "
                  "where the file records cadence and HR.", "",
                  "| gait: evidence in the file | events found/true | event recall | second recall |",
                  "|---|---|---|---|"]
        for k, r in rep.by_evidence.items():
            lines.append(f"| {k} | {r['events_found']}/{r['events_true']} | {_fmt(r['event_recall'])} | "
                         f"{_fmt(r['recall'])} |")
    if rep.most_missed:
        lines += ["", "## Most missed backward seconds (files)", "",
                  "| file | scenario | missed s / backward s | events found/true | gait that lost most: evidence "
                  "| called instead |", "|---|---|---|---|---|---|"]
        for r in rep.most_missed:
            lines.append(f"| {r['file']} | {r['scenario']} | {r['missed_s']}/{r['backward_s']} | "
                         f"{r['events_found']}/{r['events_true']} | {r['gait']}: {r['evidence']} | {r['called']} |")
    lines += ["", "## By recording condition", "", "| condition | files | precision | recall | F1 | FP s/moving h |",
              "|---|---|---|---|---|---|"]
    for c, s in rep.by_condition.items():
        lines.append(f"| {c} | {s['n_activities']} | {_fmt(s.get('precision'))} | {_fmt(s.get('recall'))} | "
                     f"{_fmt(s.get('f1'))} | {_fmt(s.get('fp_per_moving_h'))} |")
    lines += ["", "## False positives (backward seconds per hour of moving time)", "",
              "| set | activities | moving h | FP s | FP s/h |", "|---|---|---|---|---|"]
    sets = [("synthetic hard negatives", rep.fp_synthetic_negatives)]
    sets += [(f"  {k}", v) for k, v in rep.fp_by_negative_scenario.items()]
    sets += [("slow forward strolls (reported apart)", rep.fp_stroll),
             ("forward parts of backward sessions", rep.fp_forward_parts_of_backward_sessions)]
    if rep.fp_real:
        sets.append(("real corpus forward runs (one athlete per device)", rep.fp_real))
    if rep.fp_real_pooled:
        sets.append(("real corpus forward runs (all one athlete)", rep.fp_real_pooled))
    if rep.fp_real_walks:
        sets.append(("real corpus walks (reported apart)", rep.fp_real_walks))
    if rep.fp_real_without_cadence:
        sets.append(("real corpus forward runs, cadence removed", rep.fp_real_without_cadence))
    for name, t in sets:
        lines.append(f"| {name} | {t['n_activities']} | {t['moving_h']:.2f} | {t['fp_s']} | {_fmt(t['fp_per_moving_h'])} |")
    if rep.calibration:
        lines += ["", "## Confidence calibration (direction, moving seconds)", "",
                  "| predicted | confidence bin | seconds | mean confidence | share correct |", "|---|---|---|---|---|"]
        for c in rep.calibration:
            lines.append(f"| {c['predicted']} | {c['bin']} | {c['cells']} | {c['mean_confidence']:.2f} | "
                         f"{c['accuracy']:.2f} |")
    for label, t in (("worst real files", rep.fp_real), ("worst real files, cadence removed", rep.fp_real_without_cadence)):
        worst = (t or {}).get("worst", [])
        if worst:
            lines += ["", f"{label}: " + "; ".join(f"{w['file']} {w['fp_s']} s" for w in worst)]
    lines += ["", "## Notes", ""] + [f"- {x}" for x in rep.notes]
    return "\n".join(lines)


def _classifier_versions(paths: list[Path]) -> list[str]:
    from retroingest import warehouse

    out: set[str] = set()
    for wp in paths:
        con = warehouse.connect(wp, read_only=True, wait_s=30)
        try:
            out |= {r[0] for r in con.execute("SELECT DISTINCT classifier_version FROM segments").fetchall()}
        finally:
            con.close()
    return sorted(out)


def _git_describe() -> str:
    """Commit of the code under test, with '+dirty' when the working tree has uncommitted changes."""
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + ("+dirty" if dirty else "")


def default_corpus() -> Path:
    """../shared/corpus next to the repository, or $RETROINGEST_CORPUS."""
    repo = Path(__file__).resolve().parents[1]
    return Path(os.environ.get("RETROINGEST_CORPUS", repo.parent / "shared" / "corpus"))
