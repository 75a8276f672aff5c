"""Train the learned bout model (retroingest/classify/bout_model.json) and report what it does.

Usage (scikit-learn is needed here only, never to classify; ``make bout-model`` runs all of it)::

    for s in 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19; do
        retroingest evaluate --seed $s --allow-dev-seed --workdir /tmp/bout/s$s --corpus ../shared/corpus
    done
    pip install scikit-learn            # or: pip install -e '.[train]'
    python benchmarks/train_bout_model.py /tmp/bout/s* --out retroingest/classify/bout_model.json

What it does, for each evaluate workdir (development seeds only; never a held-out seed):

1. Re-classifies every athlete warehouse with the rules alone (``classify(bout_model=None)``,
   each warehouse's stored baselines) and takes the candidates: stretches of >= 30 s decoded as
   forward running, with ``boutmodel.FEATURES`` (computed by the same compiled kernel the
   classifier uses, so training and use cannot drift apart).
2. Labels each from the simulator's truth: the share of its seconds that were backward
   (>= 0.5 counts as backward).
3. Leave one seed out: each workdir is predicted by a model trained on the others, and the
   report says, per threshold, how many backward bouts it finds, their true seconds, and the
   false seconds in negative sessions and in the forward parts of backward sessions.
4. The real corpus runs (the first workdir's ``corpus_per_device.duckdb``), never trained on:
   how many stretches and seconds the model trained on every seed would turn backward.
   ``--siblings MIN_P,DV,DC ...`` adds ``boutmodel.siblings`` at those settings (the shipped one
   first) to that report. ``--features-in`` reads the candidates a ``--features-out`` run wrote,
   instead of re-classifying the workdirs.
5. With ``--out``: fits on every workdir, exports the trees to JSON, and checks that
   ``boutmodel.BoutModel.predict`` gives scikit-learn's probabilities (max error printed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from retroingest import warehouse  # noqa: E402
from retroingest.classify import boutmodel, core, store  # noqa: E402
from retroingest.evaluate import raster, read_truth  # noqa: E402
from retroingest.simulate import read_manifest  # noqa: E402

# HistGradientBoostingClassifier settings (as measured in the prototype, docs/ACCURACY.md)
HGB = dict(max_iter=200, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=10, random_state=0)
THRESHOLD = 0.9


def candidates(db: Path, sim_dir: Path | None, tag: str) -> pl.DataFrame:
    """The rules-only candidates of one warehouse, labelled from the truth when simulated."""
    con = warehouse.connect(db, read_only=True, wait_s=30)
    try:
        acts = store._activities(con, None, {})
        if acts.height == 0:
            return pl.DataFrame()
        recs = store._records(con, acts["activity_id"])
        bls = store._load_baselines(con)
        paths = dict(con.execute("SELECT a.activity_id, f.path FROM activities a JOIN source_files f USING (file_id)")
                     .fetchall())
    finally:
        con.close()
    bouts = core.classify(recs, acts, bls, bout_model=None).bouts
    if bouts is None or bouts.height == 0:
        return pl.DataFrame()
    names = [Path(paths[int(a)].split("!/")[-1]).name for a in bouts["activity_id"]]
    share = np.zeros(bouts.height)
    if sim_dir is not None:
        truth_cache: dict[str, tuple[float, np.ndarray]] = {}
        for i, (name, t0, t1) in enumerate(zip(names, bouts["start_time"], bouts["end_time"])):
            if name not in truth_cache:
                tr = read_truth(sim_dir / (name.rsplit(".", 1)[0] + ".truth.csv"))
                start = tr["start_time"][0]
                n = int((tr["end_time"][-1] - start).total_seconds())
                truth_cache[name] = (start.timestamp(), raster(tr, start, n)[1])
            base, tb = truth_cache[name]
            a = int(np.clip(t0.timestamp() - base, 0, tb.size - 1))
            b = int(np.clip(t1.timestamp() - base, a, tb.size - 1)) + 1
            share[i] = tb[a:b].mean()
    return bouts.with_columns(tag=pl.lit(tag), file=pl.Series(names), backward_share=share)


def _labelled(workdirs: list[Path]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The labelled candidates of every simulated warehouse (with the session kind), and of the
    real corpus runs of the first workdir."""
    parts = []
    for wd in workdirs:
        for db in sorted(glob.glob(str(wd / "athlete_*.duckdb"))):
            if not db.endswith(".snapshot.duckdb"):
                parts.append(candidates(Path(db), wd / "sim", wd.name))
    real_db = workdirs[0] / "corpus_per_device.duckdb"
    real = candidates(real_db, None, "real") if real_db.exists() else pl.DataFrame()
    kinds = pl.concat([read_manifest(wd / "sim" / "manifest.csv").select("file", "kind")
                       .with_columns(tag=pl.lit(wd.name)) for wd in workdirs])
    return pl.concat([p for p in parts if p.height]).join(kinds, on=["tag", "file"], how="left"), real


def export(clf, keep: list[int]) -> boutmodel.BoutModel:
    """scikit-learn's fitted trees as a BoutModel (leaf values already include the learning rate);
    ``keep``: the ``boutmodel.FEATURES`` index of each column the model was trained on."""
    trees = []
    for (pred,) in clf._predictors:
        nodes = pred.nodes
        leaf = nodes["is_leaf"].astype(bool)
        if nodes["is_categorical"].any():
            raise ValueError("categorical splits are not supported by boutmodel")
        trees.append({"feature": np.where(leaf, -1, np.asarray(keep)[nodes["feature_idx"]]).tolist(),
                      "split": np.where(leaf, 0.0, nodes["num_threshold"]).tolist(),
                      "nan_left": np.where(leaf, 0, nodes["missing_go_to_left"]).astype(int).tolist(),
                      "left": np.where(leaf, -1, nodes["left"]).tolist(),
                      "right": np.where(leaf, -1, nodes["right"]).tolist(),
                      "value": np.where(leaf, nodes["value"], 0.0).tolist()})
    doc = {"format": boutmodel.FORMAT, "features": list(boutmodel.FEATURES), "threshold": THRESHOLD,
           "baseline": float(np.ravel(clf._baseline_prediction)[0]), "trees": trees}
    return boutmodel.from_json(doc, "exported model")


def main() -> None:
    from sklearn import __version__ as sk_version
    from sklearn.ensemble import HistGradientBoostingClassifier

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("workdirs", nargs="*", type=Path, help="retroingest evaluate --workdir directories (dev seeds)")
    ap.add_argument("--threshold", type=float, nargs="*", default=[0.5, 0.8, 0.9, 0.95])
    ap.add_argument("--out", type=Path, help="write the model trained on every workdir here")
    ap.add_argument("--drop", default="", help="comma-separated features the model may not use")
    ap.add_argument("--features-out", type=Path, help="also write the labelled candidates (parquet)")
    ap.add_argument("--features-in", type=Path,
                    help="read the labelled candidates a --features-out run wrote instead of the workdirs")
    ap.add_argument("--siblings", nargs="*", default=[], metavar="MIN_P,DV,DC",
                    help="also report boutmodel.siblings at these settings (leave one seed out, at THRESHOLD)")
    args = ap.parse_args()
    if bool(args.features_in) == bool(args.workdirs):
        ap.error("give either evaluate workdirs or --features-in")
    if args.features_in:
        both = pl.read_parquet(args.features_in)
        sim, real = both.filter(pl.col("tag") != "real"), both.filter(pl.col("tag") == "real")
    else:
        sim, real = _labelled(args.workdirs)
    if args.features_out:
        pl.concat([sim, real], how="diagonal_relaxed").write_parquet(args.features_out)
    feats = list(boutmodel.FEATURES)
    unknown = set(d for d in args.drop.split(",") if d) - set(feats)
    if unknown:
        raise SystemExit(f"--drop: no such features {sorted(unknown)}")
    keep = [i for i, name in enumerate(feats) if name not in args.drop.split(",")]
    X_all = sim.select(feats).to_numpy().astype(float)
    X = X_all[:, keep]
    y = (sim["backward_share"].to_numpy() >= 0.5).astype(int)
    tags, dur, share, kind = (sim["tag"].to_numpy(), sim["dur_s"].to_numpy(), sim["backward_share"].to_numpy(),
                              sim["kind"].to_numpy())
    p = np.zeros(y.size)
    for tag in np.unique(tags):
        clf = HistGradientBoostingClassifier(**HGB).fit(X[tags != tag], y[tags != tag])
        p[tags == tag] = clf.predict_proba(X[tags == tag])[:, 1]
    final = HistGradientBoostingClassifier(**HGB).fit(X, y)
    Xr_all = real.select(feats).to_numpy().astype(float) if real.height else np.zeros((0, len(feats)))
    pr = final.predict_proba(Xr_all[:, keep])[:, 1] if real.height else np.zeros(0)
    dr = real["dur_s"].to_numpy() if real.height else np.zeros(0)
    print(f"candidates: {y.size} simulated in {len(np.unique(tags))} workdirs ({y.sum()} backward, "
          f"{(dur * share).sum():.0f} backward s), {real.height} real")
    print("leave one seed out; real runs judged by the model trained on every workdir:")

    def summary(sel: np.ndarray, sel_real: np.ndarray) -> str:
        """Bouts and seconds the simulated selection ``sel`` gets right and wrong, and the real one."""
        return (f"backward bouts {int((sel & (y == 1)).sum())}/{int(y.sum())}, "
                f"true s {(dur * share)[sel].sum():.0f}, false s in negative sessions "
                f"{(dur * (1 - share))[sel & (kind == 'negative')].sum():.0f}, in backward sessions "
                f"{(dur * (1 - share))[sel & (kind != 'negative')].sum():.0f}; real runs: "
                f"{int(sel_real.sum())} stretches, {dr[sel_real].sum():.0f} s")

    for thr in args.threshold:
        print(f"  p >= {thr}: {summary(p >= thr, pr >= thr)}")
    session = (sim["tag"] + "/" + sim["file"]).to_numpy()
    session_r = real["file"].to_numpy() if real.height else np.zeros(0, str)
    for min_p, dv, dc in [boutmodel.SIBLING_MIN_P, boutmodel.SIBLING_SPEED_TOLERANCE, boutmodel.SIBLING_CADENCE_TOLERANCE], \
            *[[float(x) for x in a.split(",")] for a in args.siblings]:

        def with_siblings(X_, p_, session_):
            t = boutmodel.turned(X_, p_, THRESHOLD)
            return t | boutmodel.siblings(X_, p_, session_, t, min_p=min_p, speed_tolerance=dv, cadence_tolerance=dc)

        print(f"  siblings min_p {min_p}, dv {dv}, dc {dc}: "
              f"{summary(with_siblings(X_all, p, session), with_siblings(Xr_all, pr, session_r))}")
    if real.height:
        for f, d, q in zip(real["file"], dr, pr):
            if q >= min(args.threshold):
                print(f"  real stretch at p = {q:.3f}: {f}, {d:.0f} s")
    if args.out:
        model = export(final, keep)
        err = float(np.abs(model.predict(X_all) - final.predict_proba(X)[:, 1]).max())
        print(f"exported {len(model.n_nodes)} trees; max |p(numpy) - p(sklearn)| = {err:.2e}")
        if err > 1e-9:
            raise SystemExit("the exported trees do not reproduce scikit-learn's probabilities")
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        doc = model.to_json()
        doc["meta"] = {"trained": dt.date.today().isoformat(), "code": commit, "scikit_learn": sk_version,
                       "params": HGB, "unused_features": [f for i, f in enumerate(feats) if i not in keep], "workdirs": [wd.name for wd in args.workdirs],
                       "seeds": sorted(int(m.group(1)) for t in np.unique(tags) if (m := re.search(r"(\d+)$", t))),
                       "candidates": int(y.size), "backward_candidates": int(y.sum())}
        args.out.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
        print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
