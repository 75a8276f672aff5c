"""Research prototype, not part of the pipeline: a learned per-bout model over weak cues.

Question it answers: of the backward bouts that the classifier decodes as *forward running*
(mostly athletes whose backward cadence is within 7 % of forward, docs/ACCURACY.md "What the
data can show"), how many could a model that combines weak cues find, and at what cost in false
positives on synthetic negatives and on the real corpus runs? Measured 7 Dec 2026 (ACCURACY.md,
"Four tries on the misses"); the next step for issue 4 if its false positives can be brought
inside the targets.

Usage (needs scikit-learn, which is deliberately not a dependency of retroingest)::

    retroingest evaluate --seed 5 --allow-dev-seed --workdir /tmp/wd/s5   # likewise 6, 7, 8, 9
    pip install --target /tmp/skl scikit-learn
    PYTHONPATH=/tmp/skl .venv/bin/python benchmarks/research_bout_model.py /tmp/wd/s5 /tmp/wd/s6 ...

Candidates: every stretch of >= 30 s decoded as forward running, re-classified here with each
warehouse's stored baselines. Label: the share of the stretch that is truly backward (>= 0.5
counts as backward). Features per candidate (all from the file, none from the truth): duration;
median speed over a robust "fast" pace (90th percentile of 30 s mean running speed within
running stretches of >= 120 s, so strides do not set it) and over the athlete's learned usual
pace; cadence and HR against that fast running; HR rise from the first to the last 20 s; speed
CV; whether a stand or walk comes before and after; context; position in the session; share of
running; grade; whether cadence and HR are present. Each dev workdir is predicted by a model
trained on the others (leave one seed out); the real runs (the first workdir's
``corpus_per_device.duckdb``) are never trained on.
"""

from __future__ import annotations

import argparse
import glob
from pathlib import Path

import numpy as np
import polars as pl

from retroingest import warehouse
from retroingest.classify import context as ctxmod
from retroingest.classify import core, kernels, store
from retroingest.classify import features as featmod
from retroingest.classify.baseline import POPULATION
from retroingest.evaluate import bouts, raster, read_truth
from retroingest.simulate import read_manifest

FEATURES = ("dur_s", "v_over_fast", "v_over_usual", "c_over_fast", "hr_minus_fast_bpm", "hr_rise_bpm",
            "v_cv", "slow_before", "slow_after", "context", "position", "running_share", "grade",
            "has_cadence", "has_hr")


def _median(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(np.median(x)) if x.size else float("nan")


def candidates(db: Path, sim_dir: Path | None, tag: str) -> list[dict]:
    """Decoded forward-running stretches of one warehouse, with features and (if simulated) labels."""
    con = warehouse.connect(db, read_only=True, wait_s=30)
    try:
        acts = store._activities(con, None, {})
        if acts.height == 0:
            return []
        recs = store._records(con, acts["activity_id"])
        bls = store._load_baselines(con)
        paths = dict(con.execute("SELECT a.activity_id, f.path FROM activities a JOIN source_files f USING (file_id)")
                     .fetchall())
    finally:
        con.close()
    res = core.classify(recs, acts, bls)
    state = res.states.join(recs.select("activity_id", "seq"), on=["activity_id", "seq"], how="right")["state"]
    state = state.to_numpy()
    f = featmod.compute(recs)
    ctx = ctxmod.per_record(f, acts["sub_sport"].to_list())
    rows = []
    for g in range(f.starts.size):
        a, b = int(f.starts[g]), int(f.ends[g])
        aid = int(recs["activity_id"][a])
        name = Path(paths[aid].split("!/")[-1]).name
        truth = None
        if sim_dir is not None:
            tp = sim_dir / (name.rsplit(".", 1)[0] + ".truth.csv")
            tr = read_truth(tp)
            t0 = tr["start_time"][0]
            n = int((tr["end_time"][-1] - t0).total_seconds())
            _, tb = raster(tr, t0, n)
            idx = np.clip(((recs["ts"][a:b] - t0).dt.total_seconds()).to_numpy().astype(int), 0, n - 1)
            truth = tb[idx]
        t, v, c, hr, s = f.t[a:b], f.v[a:b], f.c[a:b], f.hr[a:b], state[a:b]
        running = (s == "run_forward") | (s == "run_backward")
        vs = kernels._centred_mean(t, v, ~np.isnan(v), 30.0)
        long_run = np.zeros(s.size, bool)
        for p, q in bouts(running):
            if t[q - 1] - t[p] >= 120:
                long_run[p:q] = True
        ok = long_run & ~np.isnan(vs)
        if ok.sum() < 60:
            continue
        fast = np.quantile(vs[ok], 0.9)
        fast_recs = ok & (vs >= 0.92 * fast)
        hr_fast = _median(hr[fast_recs]) if (fast_recs & ~np.isnan(hr)).sum() > 30 else np.nan
        c_fast = _median(c[fast_recs]) if (fast_recs & ~np.isnan(c)).sum() > 30 else np.nan
        bl = bls.get(acts.filter(pl.col("activity_id") == aid)["athlete_id"][0], POPULATION)
        usual = bl.run_speed_mps if bl.learned else np.nan
        span = max(t[-1] - t[0], 1.0)
        for p, q in bouts(s == "run_forward"):
            dur = t[q - 1] - t[p]
            if dur < 30:
                continue
            h = hr[p:q]
            vm = _median(v[p:q])
            rows.append({
                "tag": tag, "file": name, "dur_s": dur, "v_over_fast": vm / fast, "v_over_usual": vm / usual,
                "c_over_fast": _median(c[p:q]) / c_fast, "hr_minus_fast_bpm": _median(h) - hr_fast,
                "hr_rise_bpm": _median(h[-20:]) - _median(h[:20]) if (~np.isnan(h)).sum() > 40 else np.nan,
                "v_cv": float(np.nanstd(v[p:q]) / max(np.nanmean(v[p:q]), 0.1)),
                "slow_before": int(p > 0 and s[p - 1] in ("stationary", "walk_forward", "walk_backward")),
                "slow_after": int(q < s.size and s[q] in ("stationary", "walk_forward", "walk_backward")),
                "context": int(np.bincount(ctx[a:b][p:q], minlength=len(ctxmod.CONTEXTS)).argmax()),
                "position": (t[p] - t[0]) / span, "running_share": float(running.mean()),
                "grade": _median(f.grade[a:b][p:q]), "has_cadence": int((~np.isnan(c[p:q])).mean() > 0.5),
                "has_hr": int((~np.isnan(h)).mean() > 0.5),
                "backward_share": float(truth[p:q].mean()) if truth is not None else 0.0,
            })
    return rows


def main() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier   # research only

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("workdirs", nargs="+", type=Path, help="retroingest evaluate --workdir directories (dev seeds)")
    ap.add_argument("--threshold", type=float, nargs="*", default=[0.5, 0.8, 0.9])
    args = ap.parse_args()
    rows = []
    for wd in args.workdirs:
        for db in sorted(glob.glob(str(wd / "athlete_*.duckdb"))):
            if not db.endswith(".snapshot.duckdb"):
                rows += candidates(Path(db), wd / "sim", wd.name)
    real_db = args.workdirs[0] / "corpus_per_device.duckdb"
    if real_db.exists():
        rows += candidates(real_db, None, "real")
    df = pl.DataFrame(rows)
    kinds = pl.concat([read_manifest(wd / "sim" / "manifest.csv").select("file", "kind").with_columns(tag=pl.lit(wd.name))
                       for wd in args.workdirs])
    df = df.join(kinds, on=["tag", "file"], how="left")
    sim, real = df.filter(pl.col("tag") != "real"), df.filter(pl.col("tag") == "real")
    X, y = sim.select(FEATURES).to_numpy().astype(float), (sim["backward_share"].to_numpy() >= 0.5).astype(int)
    tags, dur, share = sim["tag"].to_numpy(), sim["dur_s"].to_numpy(), sim["backward_share"].to_numpy()
    kind = sim["kind"].to_numpy()
    p = np.zeros(y.size)
    for tag in np.unique(tags):
        model = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=15,
                                               min_samples_leaf=10, random_state=0)
        model.fit(X[tags != tag], y[tags != tag])
        p[tags == tag] = model.predict_proba(X[tags == tag])[:, 1]
    final = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=15,
                                           min_samples_leaf=10, random_state=0).fit(X, y)
    pr = final.predict_proba(real.select(FEATURES).to_numpy().astype(float))[:, 1] if real.height else np.zeros(0)
    dr = real["dur_s"].to_numpy() if real.height else np.zeros(0)
    print(f"candidates: {y.size} simulated ({y.sum()} backward, {(dur * share).sum():.0f} backward s), "
          f"{real.height} real")
    for thr in args.threshold:
        sel = p >= thr
        print(f"p >= {thr}: backward bouts {int((sel & (y == 1)).sum())}/{int(y.sum())}, "
              f"true s {(dur * share)[sel].sum():.0f}, false s in negative sessions "
              f"{(dur * (1 - share))[sel & (kind == 'negative')].sum():.0f}, in backward sessions "
              f"{(dur * (1 - share))[sel & (kind != 'negative')].sum():.0f}; real runs (model on all seeds): "
              f"{int((pr >= thr).sum())} stretches, {dr[pr >= thr].sum():.0f} s")


if __name__ == "__main__":
    main()
