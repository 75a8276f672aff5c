"""A learned per-bout model: forward-running stretches that were backward running in disguise.

Why: about a fifth of simulated backward running has a cadence within 7 % of the athlete's
forward running at that speed (docs/ACCURACY.md, "What the data can show"). Cadence, the cue
every rule in this package leans on, then says "forward", and the whole bout is missed. What is
left are weak cues that only work together: the stretch is slower than today's fast running at
much the same HR and cadence, it is bracketed by stops or walking, its HR climbs across it, it
sits on a track, and so on. A gradient-boosted tree ensemble over those cues, trained on
simulated sessions, finds about half of such bouts at a threshold that keeps the real-run false
positives inside the target (measured: docs/ACCURACY.md, "The learned bout model").

How: after every rule of ``core.classify`` has run, ``candidates`` lists each stretch of >= 30 s
decoded as forward running, with ``FEATURES`` (one compiled pass, ``kernels.bout_candidates``);
``BoutModel.predict`` evaluates the trees with NumPy; stretches at ``p >= threshold`` become
backward running. The trees are data (``bout_model.json``), written by
``benchmarks/train_bout_model.py`` from scikit-learn's ``HistGradientBoostingClassifier``;
scikit-learn is needed only to train, never to classify.

What it cannot know: it was trained on the simulator's sessions, so it has also learnt how the
simulator scripts them (backward reps bracketed by walks, their place in the session). The real
corpus runs are the honest check of its false positives, and every flagged stretch says so in
its evidence.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from retroingest.classify import kernels
from retroingest.classify.context import CONTEXTS
from retroingest.classify.features import Features

FORMAT = "retroingest-bout-model 1"
MODEL_PATH = Path(__file__).with_name("bout_model.json")
FEATURES = ("dur_s", "v_over_fast", "c_over_fast", "hr_minus_fast_bpm", "hr_rise_bpm",
            "v_cv", "slow_before", "slow_after", "context", "position", "running_share", "grade",
            "has_cadence", "has_hr")
# candidate stretches (kernels.bout_candidates): >= 30 s of forward running; the fast-running
# reference from records inside running stretches >= 120 s (>= 60 of them), the 90th percentile
# of the 30 s centred mean speed, HR and cadence at >= 0.92x it (> 30 values); HR rise from the
# first to the last 20 records (> 40 HR values)
MIN_CANDIDATE_S = 30.0   # also the shortest part of a turned stretch the trim may leave
CANDIDATE = np.array([MIN_CANDIDATE_S, 120.0, 60.0, 0.9, 0.92, 30.0, 30.0, 20.0, 40.0])
assert len(FEATURES) == kernels.BOUT_N_FEATURES
# without cadence, speed is the only gait cue left, and backward running is 0.68-0.82x easy
# forward speed (reference/biomech.md section 8): a stretch at today's fast pace cannot be told
# backward, whatever its HR. Never turned: no simulated backward stretch without cadence was above
# 0.92x at p >= 0.9 (dev seeds 5-19), and a real treadmill run with its cadence removed had 269 s
# at 1.0x turned (docs/ACCURACY.md, "The learned bout model")
NO_CADENCE_MAX_SPEED_RATIO = 0.92


# siblings (``siblings``): interval reps are missed a session at a time, often beside reps of the
# same session that were turned, at the same pace and cadence but p 0.74-0.896 against 0.907-0.920
# (dev seeds 20-22). A stretch at p >= SIBLING_MIN_P within these of a turned one's speed and
# cadence ratios, in the same activity, is turned too. Leave one seed out on dev seeds 5-19 (324
# backward bouts; SIBLING_MIN_P 0.1-0.7, tolerances 0.03/0.02 to 0.15/0.08 or no cadence limit;
# ``benchmarks/train_bout_model.py --siblings``):
# bouts found 193 -> 227, true seconds 47,155 -> 54,061, false seconds in backward sessions
# 10,389 -> 12,739 (0.34 per added true second, the model alone 0.26), none added in negative
# sessions or real runs, which have no turned stretch to follow (docs/ACCURACY.md, "Interval reps
# as siblings")
SIBLING_MIN_P = 0.2
SIBLING_SPEED_TOLERANCE = 0.08     # |v_over_fast - a turned one's|
SIBLING_CADENCE_TOLERANCE = 0.05   # |c_over_fast - a turned one's|; without cadence, no sibling


def _fast_without_cadence(X: np.ndarray) -> np.ndarray:
    i_cad, i_v = FEATURES.index("has_cadence"), FEATURES.index("v_over_fast")
    return (X[:, i_cad] == 0) & ~(X[:, i_v] <= NO_CADENCE_MAX_SPEED_RATIO)


def turned(X: np.ndarray, p: np.ndarray, threshold: float) -> np.ndarray:
    """Which candidates become backward running at ``threshold``: p >= threshold, and without
    cadence only below NO_CADENCE_MAX_SPEED_RATIO x today's fast running (``BoutModel.turned_backward``
    at the model's own threshold; the training script's leave-one-seed-out report at its own)."""
    return (p >= threshold) & ~_fast_without_cadence(X)


def siblings(X: np.ndarray, p: np.ndarray, activity: np.ndarray, turned: np.ndarray, *,
             min_p: float = SIBLING_MIN_P, speed_tolerance: float = SIBLING_SPEED_TOLERANCE,
             cadence_tolerance: float = SIBLING_CADENCE_TOLERANCE) -> np.ndarray:
    """Candidates not ``turned`` that repeat a turned one of their activity: p >= ``min_p`` and
    speed and cadence ratios (to today's fast running) within the tolerances of a turned one's.

    Why: the reps of one interval session are the same effort, so the model's p for them differs
    by noise around its threshold; one rep it is sure of vouches for its twins. Only turned
    stretches vouch (no chains). A stretch with no cadence ratio (NaN) neither vouches nor
    follows, and one without cadence at today's fast pace never follows (as ``turned_backward``).
    The keywords are for ``benchmarks/train_bout_model.py --siblings``; classify uses the defaults.
    """
    i_v, i_c = FEATURES.index("v_over_fast"), FEATURES.index("c_over_fast")
    out = np.zeros(turned.size, bool)
    may = ~turned & (p >= min_p) & ~_fast_without_cadence(X)
    for act in np.unique(activity[turned]):   # per activity with a turned stretch, a handful each
        on = np.flatnonzero(turned & (activity == act))
        cand = np.flatnonzero(may & (activity == act))
        if cand.size == 0:
            continue
        near = ((np.abs(X[cand, i_v][:, None] - X[on, i_v][None, :]) <= speed_tolerance)
                & (np.abs(X[cand, i_c][:, None] - X[on, i_c][None, :]) <= cadence_tolerance))
        out[cand[near.any(axis=1)]] = True   # NaN compares False: no cadence, no sibling
    return out


class BoutModelError(ValueError):
    """The bout model file is missing, malformed, or made for other features."""


@dataclass(frozen=True)
class BoutModel:
    """A binary gradient-boosted tree ensemble, trees padded to one node count.

    Node arrays are (n_trees, n_nodes); a leaf has ``feature == -1``. A record goes left when its
    value is <= ``split``, or when it is NaN and ``nan_left`` is set (scikit-learn's rule).
    p(backward) = sigmoid(baseline + sum of the leaf values).
    """

    features: tuple[str, ...]
    threshold: float
    baseline: float
    feature: np.ndarray
    split: np.ndarray
    nan_left: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    n_nodes: np.ndarray   # per tree, its real node count (the rest is padding)
    meta: dict = field(default_factory=dict)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """p(backward) for each row of X (columns in ``features`` order)."""
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != len(self.features):
            raise ValueError(f"bout model expects {len(self.features)} feature columns, got shape {X.shape}")
        n, n_trees = X.shape[0], self.feature.shape[0]
        if n == 0:
            return np.zeros(0)
        tree = np.arange(n_trees)[None, :]
        row = np.arange(n)[:, None]
        node = np.zeros((n, n_trees), np.int64)
        for _ in range(self.feature.shape[1]):   # a root-to-leaf path is never longer; stops at the leaves
            feat = self.feature[tree, node]
            leaf = feat < 0
            if leaf.all():
                break
            x = X[row, np.where(leaf, 0, feat)]
            go_left = np.where(np.isnan(x), self.nan_left[tree, node], x <= self.split[tree, node])
            node = np.where(leaf, node, np.where(go_left, self.left[tree, node], self.right[tree, node]))
        raw = self.baseline + self.value[tree, node].sum(axis=1)
        return 1.0 / (1.0 + np.exp(-np.clip(raw, -50.0, 50.0)))

    def turned_backward(self, X: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Which candidates become backward running (``turned`` at this model's threshold)."""
        return turned(X, p, self.threshold)

    def to_json(self) -> dict:
        trees = []
        for i in range(self.feature.shape[0]):
            k = int(self.n_nodes[i])
            trees.append({"feature": self.feature[i, :k].tolist(), "split": self.split[i, :k].tolist(),
                          "nan_left": self.nan_left[i, :k].astype(int).tolist(), "left": self.left[i, :k].tolist(),
                          "right": self.right[i, :k].tolist(), "value": self.value[i, :k].tolist()})
        return {"format": FORMAT, "features": list(self.features), "threshold": self.threshold,
                "baseline": self.baseline, "meta": self.meta, "trees": trees}


def from_json(doc: dict, source: str = "bout model") -> BoutModel:
    """Build a BoutModel from its JSON form (see ``to_json``); checks shape and features."""
    try:
        if doc.get("format") != FORMAT:
            raise BoutModelError(f"{source}: format {doc.get('format')!r}, expected {FORMAT!r}")
        if tuple(doc["features"]) != FEATURES:
            raise BoutModelError(f"{source}: trained on features {doc['features']}, this code computes {list(FEATURES)}")
        trees = doc["trees"]
        if not trees:
            raise BoutModelError(f"{source}: no trees")
        width = max(len(t["feature"]) for t in trees)

        def pad(key: str, fill, dtype) -> np.ndarray:
            out = np.full((len(trees), width), fill, dtype=dtype)
            for i, t in enumerate(trees):
                if len(t[key]) != len(t["feature"]):
                    raise BoutModelError(f"{source}: tree {i} has {len(t[key])} {key} for {len(t['feature'])} nodes")
                out[i, :len(t[key])] = t[key]
            return out

        feature = pad("feature", -1, np.int64)
        left, right = pad("left", 0, np.int64), pad("right", 0, np.int64)
        inner = feature >= 0
        if (feature[inner] >= len(FEATURES)).any() or (left[inner] >= width).any() or (right[inner] >= width).any():
            raise BoutModelError(f"{source}: a node points outside its tree")
        left[~inner], right[~inner] = 0, 0
        return BoutModel(FEATURES, float(doc["threshold"]), float(doc["baseline"]), feature,
                         pad("split", 0.0, float), pad("nan_left", 0, bool), left, right, pad("value", 0.0, float),
                         np.array([len(t["feature"]) for t in trees]), meta=dict(doc.get("meta", {})))
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, BoutModelError):
            raise
        raise BoutModelError(f"{source}: malformed ({type(e).__name__}: {e})") from e


def load(path: Path = MODEL_PATH) -> BoutModel:
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise BoutModelError(f"{path}: cannot read the bout model ({e})") from e
    return from_json(doc, str(path))


@dataclass(frozen=True)
class Candidates:
    """Forward-running stretches [start, end) (record indices) and their features (m, len(FEATURES))."""

    start: np.ndarray
    end: np.ndarray
    X: np.ndarray


def candidates(path: np.ndarray, f: Features, ctx: np.ndarray) -> Candidates:
    """Every stretch of >= 30 s decoded as forward running, with the model's features."""
    a64 = np.ascontiguousarray
    st, en, X = kernels.bout_candidates(a64(f.starts, np.int64), a64(f.ends, np.int64), a64(path, np.int8),
                                        a64(f.t, float), a64(f.v, float), a64(f.c, float), a64(f.hr, float),
                                        a64(f.grade, float), a64(ctx, np.int64),
                                        len(CONTEXTS), CANDIDATE)
    return Candidates(st, en, X)


def default() -> BoutModel | None:
    """The model ``classify`` uses unless told otherwise: the package's ``bout_model.json``, or
    what ``RETROINGEST_BOUT_MODEL`` names (``off``: none, the rules alone; else a model file).
    Each file is read once."""
    choice = os.environ.get(ENV, "").strip()
    if choice.lower() == "off":
        return None
    path = Path(choice) if choice else MODEL_PATH
    if path not in _LOADED:
        _LOADED[path] = load(path)
    return _LOADED[path]


ENV = "RETROINGEST_BOUT_MODEL"
_LOADED: dict[Path, BoutModel] = {}


# trimming a turned stretch (``trim``): a part at one end, lasting >= 60 s, at >= 1.2x the rest's
# mean speed (30 s means), stays forward: backward running is 0.68-0.82x forward (reference/
# biomech.md section 8), so forward running merged into the stretch is >= 1.22x faster. Measured
# on dev seeds 5-12, 150 turned stretches (ratio chosen from 1.15, 1.2, 1.3): 11 trimmed, false
# seconds 7,220 -> 3,493, true seconds 34,553 -> 33,930 (without the 30 s smoothing: 22 trimmed,
# 3,169 and 32,870)
TRIM_SPEED_RATIO = 1.2
TRIM_MIN_S = 60.0
TRIM_HALF_S = 15.0   # the speed is first smoothed over +-15 s (a split is then good to a few seconds)


def trim(t: np.ndarray, v: np.ndarray) -> tuple[int, int]:
    """The [start, end) part of a turned stretch (times ``t``, speeds ``v``) that stays backward.

    Tried twice, so that a warm-up before and a cool-down after can both go: the best single
    split of the smoothed speed (least squares); the faster side is cut off when it is at an end,
    lasts >= TRIM_MIN_S and its mean is >= TRIM_SPEED_RATIO x the other side's.
    """
    a, b = 0, t.size
    v = kernels._centred_mean(np.ascontiguousarray(t, float), np.ascontiguousarray(v, float), ~np.isnan(v), TRIM_HALF_S)
    for _ in range(2):
        x = v[a:b]
        ok = ~np.isnan(x)
        if ok.sum() < 4:
            break
        x = np.where(ok, x, np.nanmean(x))
        n = x.size
        c1, c2 = np.cumsum(x), np.cumsum(x * x)
        k = np.arange(1, n)
        left = c2[:-1] - c1[:-1] ** 2 / k
        right = (c2[-1] - c2[:-1]) - (c1[-1] - c1[:-1]) ** 2 / (n - k)
        cut = int(np.argmin(left + right)) + 1
        m_left, m_right = x[:cut].mean(), x[cut:].mean()
        tt = t[a:b]
        if m_left >= TRIM_SPEED_RATIO * m_right and tt[cut - 1] - tt[0] >= TRIM_MIN_S:
            a += cut
        elif m_right >= TRIM_SPEED_RATIO * m_left and tt[-1] - tt[cut] >= TRIM_MIN_S:
            b = a + cut
        else:
            break
    return a, b
