"""The learned bout model: its tree arithmetic, its file, its candidates and what it changes."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from retroingest.classify import boutmodel, classify
from retroingest.classify.core import BOUT_MODEL_CONFIDENCE
from retroingest.classify.synth import session

NF = len(boutmodel.FEATURES)
DUR, V_FAST = boutmodel.FEATURES.index("dur_s"), boutmodel.FEATURES.index("v_over_fast")


def _tree(feature, split, nan_left, left, right, value) -> dict:
    return {"feature": feature, "split": split, "nan_left": nan_left, "left": left, "right": right, "value": value}


def _doc(trees, baseline=0.0, threshold=0.9) -> dict:
    return {"format": boutmodel.FORMAT, "features": list(boutmodel.FEATURES), "threshold": threshold,
            "baseline": baseline, "trees": trees}


# one split on speed ratio (NaN goes right), one two-level tree on duration then speed (NaN goes left)
STUMP = _tree([V_FAST, -1, -1], [0.8, 0, 0], [0, 0, 0], [1, -1, -1], [2, -1, -1], [0.0, 2.0, -1.0])
DEEP = _tree([DUR, -1, V_FAST, -1, -1], [100.0, 0, 0.5, 0, 0], [1, 0, 0, 0, 0], [1, -1, 3, -1, -1],
             [2, -1, 4, -1, -1], [0.0, 0.5, 0.0, 1.5, -0.5])


def _row(**kw) -> np.ndarray:
    x = np.full(NF, np.nan)
    for k, v in kw.items():
        x[boutmodel.FEATURES.index(k)] = v
    return x


def test_trees_route_by_threshold_and_missing_values_and_sum_to_a_logistic():
    m = boutmodel.from_json(_doc([STUMP, DEEP], baseline=-1.0))
    X = np.stack([_row(v_over_fast=0.7, dur_s=50.0),      # stump left +2, deep left +0.5
                  _row(v_over_fast=0.9, dur_s=300.0),     # stump right -1, deep right then right -0.5
                  _row(v_over_fast=0.4, dur_s=300.0),     # stump left +2, deep right then left +1.5
                  _row(v_over_fast=np.nan, dur_s=np.nan)])  # stump NaN right -1, deep NaN left +0.5
    raw = -1.0 + np.array([2.0 + 0.5, -1.0 - 0.5, 2.0 + 1.5, -1.0 + 0.5])
    np.testing.assert_allclose(m.predict(X), 1 / (1 + np.exp(-raw)), rtol=1e-12)
    assert m.predict(np.zeros((0, NF))).shape == (0,)


def test_a_model_survives_its_json_form_unchanged():
    m = boutmodel.from_json(_doc([STUMP, DEEP], baseline=0.3, threshold=0.8))
    again = boutmodel.from_json(json.loads(json.dumps(m.to_json())))
    X = np.random.default_rng(1).uniform(0, 400, size=(50, NF))
    X[::7, V_FAST] = np.nan
    np.testing.assert_array_equal(again.predict(X), m.predict(X))
    assert again.threshold == 0.8


@pytest.mark.parametrize("change, reason", [
    (lambda d: d.update(format="other 9"), "format"),
    (lambda d: d.update(features=list(boutmodel.FEATURES[::-1])), "features"),
    (lambda d: d["trees"][0].update(left=[7, -1, -1]), "outside its tree"),
    (lambda d: d["trees"][0].update(value=[0.0]), "value"),
    (lambda d: d.pop("baseline"), "malformed"),
])
def test_a_broken_model_file_is_refused_with_the_file_and_the_reason(tmp_path, change, reason):
    doc = _doc([json.loads(json.dumps(STUMP))])
    change(doc)
    path = tmp_path / "model.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(boutmodel.BoutModelError) as e:
        boutmodel.load(path)
    assert str(path) in str(e.value) and reason in str(e.value)


def test_the_shipped_model_reads_the_features_this_code_computes():
    m = boutmodel.load()
    assert m.features == boutmodel.FEATURES
    assert 0.5 <= m.threshold < 1.0
    assert m.meta["seeds"] and all(s < 10_000 for s in m.meta["seeds"])   # development seeds only
    used = set(m.feature[m.feature >= 0].tolist())
    assert used <= set(range(NF)) and len(used) > 3


def test_candidates_are_the_forward_running_stretches_of_at_least_30_s():
    df, _ = session("forward_easy", seed=3)
    res = classify(df, bout_model=None)
    states = res.states["state"].to_numpy()
    t = df["elapsed_s"].to_numpy()
    runs = []
    i = 0
    while i < states.size:
        j = i
        while j < states.size and states[j] == states[i]:
            j += 1
        if states[i] == "run_forward" and t[j - 1] - t[i] >= 30:
            runs.append((t[i], t[j - 1]))
        i = j
    bouts = res.bouts
    assert bouts.height == len(runs) > 0
    np.testing.assert_allclose(bouts["dur_s"].to_numpy(), [b - a for a, b in runs])
    assert bouts["p_backward"].is_null().all() and not bouts["turned_backward"].any()
    # an easy run's main stretch is at today's fast pace
    longest = bouts.sort("dur_s").row(-1, named=True)
    assert 0.85 <= longest["v_over_fast"] <= 1.05 and longest["has_cadence"] == 1.0


def test_a_stretch_the_model_calls_backward_becomes_backward_running_that_says_why():
    df, _ = session("forward_easy", seed=3)
    always = boutmodel.from_json(_doc([_tree([-1], [0.0], [0], [-1], [-1], [10.0])]))
    rules = classify(df, bout_model=None)
    learned = classify(df, bout_model=always)
    longest = rules.bouts.sort("dur_s").row(-1, named=True)
    seg = learned.segments.filter(pl.col("start_time") == longest["start_time"]).row(0, named=True)
    assert (seg["gait"], seg["direction"]) == ("run", "backward")
    assert seg["confidence"] == BOUT_MODEL_CONFIDENCE
    assert "learned bout model" in seg["evidence"] and "simulated" in seg["evidence"]
    assert learned.bouts["turned_backward"].all()
    # a model that never fires changes nothing
    never = boutmodel.from_json(_doc([_tree([-1], [0.0], [0], [-1], [-1], [-10.0])]))
    assert classify(df, bout_model=never).segments.equals(rules.segments)


def test_without_cadence_a_stretch_at_todays_fast_pace_is_never_turned_backward():
    always = boutmodel.from_json(_doc([_tree([-1], [0.0], [0], [-1], [-1], [10.0])]))
    cad = boutmodel.FEATURES.index("has_cadence")
    X = np.stack([_row(has_cadence=0.0, v_over_fast=1.0), _row(has_cadence=0.0, v_over_fast=0.75),
                  _row(has_cadence=1.0, v_over_fast=1.0), _row(has_cadence=0.0, v_over_fast=np.nan)])
    assert X[:, cad].tolist() == [0.0, 0.0, 1.0, 0.0]
    assert always.turned_backward(X, always.predict(X)).tolist() == [False, True, True, False]
    df, _ = session("forward_easy", seed=3, drop_cadence=True)
    res = classify(df, bout_model=always)
    assert res.bouts.height and not res.bouts.filter(pl.col("v_over_fast") > 0.92)["turned_backward"].any()


def test_the_environment_can_switch_the_model_off_or_point_at_another_file(tmp_path, monkeypatch):
    df, _ = session("forward_easy", seed=3)
    path = tmp_path / "always.json"
    path.write_text(json.dumps(_doc([_tree([-1], [0.0], [0], [-1], [-1], [10.0])])))
    monkeypatch.setenv(boutmodel.ENV, str(path))
    assert classify(df).bouts["turned_backward"].all()
    monkeypatch.setenv(boutmodel.ENV, "off")
    assert boutmodel.default() is None
    assert classify(df).bouts["p_backward"].is_null().all()
    monkeypatch.setenv(boutmodel.ENV, str(tmp_path / "missing.json"))
    with pytest.raises(boutmodel.BoutModelError, match="missing.json"):
        classify(df)


def test_forward_running_merged_into_a_turned_stretch_is_trimmed_off_its_ends():
    t = np.arange(900.0)
    warm, back, cool = np.full(200, 3.0), np.full(500, 2.1), np.full(200, 3.1)
    # the speed is smoothed over 30 s first, so an edge is found to within a few seconds
    lo, hi = boutmodel.trim(t, np.concatenate([warm, back, cool]))
    assert abs(lo - 200) <= 5 and abs(hi - 700) <= 5
    lo, hi = boutmodel.trim(t[:700], np.concatenate([warm, back]))
    assert abs(lo - 200) <= 5 and hi == 700
    # not a part faster than backward running can be (1.2x), and not a short one
    assert boutmodel.trim(t[:700], np.concatenate([np.full(200, 2.4), back])) == (0, 700)
    assert boutmodel.trim(t[:540], np.concatenate([np.full(40, 3.0), back])) == (0, 540)
    assert boutmodel.trim(t[:500], back) == (0, 500)


def test_a_stretch_at_the_pace_and_cadence_of_a_turned_rep_in_its_session_is_turned_as_its_sibling():
    rows = [_row(v_over_fast=0.80, c_over_fast=0.97, has_cadence=1.0),     # 0: turned (p 0.95)
            _row(v_over_fast=0.85, c_over_fast=0.99, has_cadence=1.0),     # 1: its twin, p 0.4
            _row(v_over_fast=0.93, c_over_fast=0.99, has_cadence=1.0),     # 2: faster than 0.08 away
            _row(v_over_fast=0.80, c_over_fast=1.03, has_cadence=1.0),     # 3: cadence 0.06 away
            _row(v_over_fast=0.81, c_over_fast=0.97, has_cadence=1.0),     # 4: too unlikely, p 0.1
            _row(v_over_fast=0.80, c_over_fast=np.nan, has_cadence=0.0),   # 5: no cadence to compare
            _row(v_over_fast=0.80, c_over_fast=0.97, has_cadence=1.0)]     # 6: another session, none turned
    X = np.stack(rows)
    p = np.array([0.95, 0.4, 0.5, 0.5, 0.1, 0.5, 0.85])
    activity = np.array([1, 1, 1, 1, 1, 1, 2])
    turned = p >= 0.9
    assert boutmodel.siblings(X, p, activity, turned).tolist() == [False, True, False, False, False, False, False]
    # only a turned stretch vouches: with nothing turned there are no siblings
    assert not boutmodel.siblings(X, p, activity, np.zeros(7, bool)).any()


def test_a_sibling_becomes_backward_running_that_says_it_followed_a_surer_rep():
    df, _ = session("track_intervals", seed=4)
    rules = classify(df, bout_model=None).bouts
    reps = rules.filter(pl.col("dur_s") < 200)   # the reps, not the warm-up or cool-down
    sure = reps.sort("dur_s").row(-1, named=True)
    # a model sure of the longest rep only, and lukewarm (p 0.5) about everything else
    dur = boutmodel.FEATURES.index("dur_s")
    lo, hi = sure["dur_s"] - 0.5, sure["dur_s"] + 0.5
    model = boutmodel.from_json(_doc([_tree([dur, -1, dur, -1, -1], [lo, 0, hi, 0, 0], [0] * 5, [1, -1, 3, -1, -1],
                                            [2, -1, 4, -1, -1], [0.0, 0.0, 0.0, 3.0, 0.0])]))
    res = classify(df, bout_model=model)
    b = res.bouts
    assert b.filter(pl.col("p_backward") >= 0.9).height == 1
    twins = b.filter(pl.col("as_sibling"))
    assert twins.height >= 2 and twins["turned_backward"].all()
    assert ((twins["v_over_fast"] - sure["v_over_fast"]).abs() <= boutmodel.SIBLING_SPEED_TOLERANCE).all()
    # the warm-up and cool-down, at today's fast pace, are no rep's twin
    assert not b.filter(pl.col("v_over_fast") > 0.9)["turned_backward"].any()
    seg = res.segments.filter(pl.col("start_time") == twins["start_time"][0]).row(0, named=True)
    assert seg["direction"] == "backward" and "twin of a surer bout" in seg["evidence"]
