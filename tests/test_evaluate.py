"""The accuracy harness's metrics, checked against hand-made truth and prediction intervals."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from retroingest.evaluate import (
    HELD_OUT_SEED, Scored, bouts, build_report, event_score, format_report, prf, raster, summarise,
)
from retroingest.simulate import DEV_SEED_LIMIT

T0 = dt.datetime(2025, 5, 1, 7, 0, 0, tzinfo=dt.timezone.utc)


def iv(*rows) -> pl.DataFrame:
    """Intervals from (start_s, end_s, gait, direction) relative to T0."""
    return pl.DataFrame(
        {"start_time": [T0 + dt.timedelta(seconds=a) for a, *_ in rows],
         "end_time": [T0 + dt.timedelta(seconds=b) for _, b, *_ in rows],
         "gait": [g for *_, g, _ in rows], "direction": [d for *_, d in rows]},
        schema={"start_time": pl.Datetime("us", "UTC"), "end_time": pl.Datetime("us", "UTC"),
                "gait": pl.String, "direction": pl.String})


def mask(n, *spans):
    m = np.zeros(n, bool)
    for a, b in spans:
        m[a:b] = True
    return m


def test_held_out_seed_is_not_a_development_seed():
    from retroingest.evaluate import SPENT_SEEDS

    assert HELD_OUT_SEED >= DEV_SEED_LIMIT and HELD_OUT_SEED not in SPENT_SEEDS


def test_raster_samples_the_middle_of_each_second():
    truth = iv((0, 100, "run", "forward"), (100, 160, "run", "backward"), (160, 170, "stationary", None),
               (170, 200, "walk", "backward"))
    gait, bwd = raster(truth, T0, 200)
    assert bwd.sum() == 60 + 30
    assert not bwd[99] and bwd[100] and bwd[159] and not bwd[160]
    assert (gait[160:170] == 0).all() and (gait[170:] == 1).all() and (gait[:100] == 2).all()


def test_raster_handles_other_time_zones_and_gaps():
    pred = iv((0, 50, "run", "forward"), (60, 90, "run", "backward"))
    pred = pred.with_columns(pl.col("start_time", "end_time").dt.convert_time_zone("Europe/Zurich"))
    gait, bwd = raster(pred, T0, 120)
    assert bwd[60:90].all() and not bwd[:60].any()
    assert (gait[50:60] == 2).all()          # a gap inherits the previous label
    assert (gait[91:] == -1).all()           # beyond the last end (+1 s tolerance): unlabelled


def test_bouts_finds_maximal_runs():
    assert bouts(mask(10, (2, 4), (6, 10))).tolist() == [[2, 4], [6, 10]]
    assert bouts(np.zeros(5, bool)).shape == (0, 2)


def test_prf_from_counts():
    r = prf(tp=90, fp=10, fn=30)
    assert r["precision"] == pytest.approx(0.9)
    assert r["recall"] == pytest.approx(0.75)
    assert r["f1"] == pytest.approx(2 * 0.9 * 0.75 / 1.65)
    assert prf(0, 0, 0)["f1"] is None
    assert prf(0, 5, 5)["f1"] == 0.0


def test_event_found_with_boundary_errors():
    truth = mask(600, (100, 160), (300, 400), (500, 520))      # the 20 s bout is not an event
    pred = mask(600, (103, 158), (310, 390), (505, 515))
    sc = event_score(truth, pred)
    assert (sc.n_true, sc.n_found) == (2, 2)
    assert (sc.n_pred, sc.n_correct) == (2, 2)
    assert sorted(sc.boundary_errors_s) == [2, 3, 10, 10]
    assert sc.median_boundary_error_s == 6.5


def test_event_missed_when_less_than_half_is_predicted():
    truth = mask(300, (100, 200))
    pred = mask(300, (100, 140))               # 40 % coverage, and only 40 s predicted
    sc = event_score(truth, pred)
    assert sc.n_found == 0 and sc.recall == 0.0
    assert sc.n_pred == 1 and sc.n_correct == 1  # but that predicted event is truly backward


def test_false_event_lowers_event_precision():
    truth = mask(600, (100, 200))
    pred = mask(600, (100, 200), (400, 450))
    sc = event_score(truth, pred)
    assert sc.recall == 1.0 and sc.precision == 0.5
    assert sc.boundary_errors_s == [0.0, 0.0]


def test_split_prediction_uses_the_largest_overlap_for_boundaries():
    truth = mask(400, (100, 220))
    pred = mask(400, (100, 150), (160, 220))
    sc = event_score(truth, pred)
    assert sc.n_found == 1
    assert sorted(sc.boundary_errors_s) == [0, 60]   # best overlap is [160, 220): start off by 60 s


def _scored(name, kind, truth_spans, pred_spans, n=3600, gait=2, walk_spans=()):
    tb = mask(n, *truth_spans)
    tg = np.full(n, gait, np.int8)
    for a, b in walk_spans:
        tg[a:b] = 1
    return Scored(file=name, scenario=name, kind=kind, truth_gait=tg, truth_bwd=tb, pred_gait=tg.copy(),
                  pred_bwd=mask(n, *pred_spans), moving=tg > 0, info={"format": "fit"})


def test_summary_counts_seconds_recall_by_gait_and_false_positive_rate():
    a = _scored("a", "backward", [(100, 400), (1000, 1200)], [(110, 400), (1000, 1100)], walk_spans=[(1000, 1200)])
    b = _scored("b", "negative", [], [(50, 80)])
    s = summarise([a, b])
    assert s["tp_s"] == 290 + 100 and s["fn_s"] == 10 + 100 and s["fp_s"] == 30
    assert s["recall_run"] == pytest.approx(290 / 300)
    assert s["recall_walk"] == pytest.approx(100 / 200)
    assert s["precision_walk"] == 1.0
    assert s["precision_run"] == pytest.approx(290 / (290 + 30))
    fwd_moving_h = (7200 - 500) / 3600
    assert s["fp_per_moving_h"] == pytest.approx(30 / fwd_moving_h)
    rep = build_report(HELD_OUT_SEED, 2, [a, b], None, ["hand-made"])
    assert rep.fp_synthetic_negatives["fp_s"] == 30
    assert rep.fp_synthetic_negatives["fp_per_moving_h"] == pytest.approx(30.0)
    assert rep.headline["fp_per_h_real"] is None
    text = format_report(rep)
    assert "backward per-second F1" in text and "| negative |" not in text


def test_bouts_are_grouped_by_the_evidence_the_file_holds():
    from retroingest.evaluate import by_evidence

    clear = {"has_cadence": True, "has_hr": True, "run_cadence_excess": 0.12, "walk_cadence_excess": 0.02,
             "run_hr_surcharge_bpm": 20.0, "walk_hr_surcharge_bpm": 5.0}
    a = _scored("a", "backward", [(100, 400), (1000, 1200)], [(100, 400)], walk_spans=[(1000, 1200)])
    a.info |= clear
    b = _scored("b", "backward", [(100, 160)], [(100, 140)])
    b.info |= clear | {"has_cadence": False}
    old = _scored("c", "backward", [(100, 200)], [])                  # a set simulated before the columns
    neg = _scored("n", "negative", [], [(0, 100)])
    rows = by_evidence([a, b, old, neg])
    assert rows["run: cadence +7 % or more, HR +10 bpm or more"] == {
        "events_true": 1, "events_found": 1, "backward_s": 300, "found_s": 300, "event_recall": 1.0, "recall": 1.0}
    walk = rows["walk: cadence under +7 %, HR under +10 bpm"]
    assert (walk["events_found"], walk["recall"]) == (0, 0.0)
    assert rows["run: no cadence, HR +10 bpm or more"]["recall"] == pytest.approx(40 / 60)
    assert rows["run: unknown"]["events_true"] == 1
    assert len(rows) == 4                                             # negatives hold no bouts
    assert "| walk: cadence under +7 %, HR under +10 bpm | 0/1 |" in format_report(
        build_report(HELD_OUT_SEED, 4, [a, b, old, neg], None, []))


def test_files_that_lost_the_most_backward_seconds_are_listed_worst_first():
    from retroingest.evaluate import most_missed

    a = _scored("a", "backward", [(100, 400)], [(100, 350)])              # 50 s missed, called running
    b = _scored("b", "backward", [(100, 400), (500, 600)], [(100, 200)], walk_spans=[(100, 400)])
    b.pred_gait[200:400] = 0                                              # 200 s missed as standing
    b.info |= {"has_cadence": True, "has_hr": False, "walk_cadence_excess": 0.02, "walk_hr_surcharge_bpm": 5.0}
    c = _scored("c", "backward", [(100, 400)], [(100, 400)])              # nothing missed
    neg = _scored("n", "negative", [], [(0, 100)])
    rows = most_missed([a, b, c, neg])
    assert [r["file"] for r in rows] == ["b", "a"]
    assert rows[0] == {"file": "b", "scenario": "b", "missed_s": 300, "backward_s": 400, "events_true": 2,
                       "events_found": 0, "gait": "walk", "evidence": "cadence under +7 %, no HR",
                       "called": "stationary"}
    assert (rows[1]["missed_s"], rows[1]["events_found"], rows[1]["called"]) == (50, 1, "run forward")
    assert most_missed([a, b], k=1)[0]["file"] == "b"
    text = format_report(build_report(HELD_OUT_SEED, 4, [a, b, c, neg], None, []))
    assert "| b | b | 300/400 | 0/2 | walk: cadence under +7 %, no HR | stationary |" in text


def test_dev_seeds_are_refused_unless_allowed(tmp_path):
    from retroingest.evaluate import evaluate

    with pytest.raises(ValueError, match="development seed"):
        evaluate(seed=5, n=1, corpus=None, workdir=tmp_path)
    with pytest.raises(ValueError, match="development seed"):
        evaluate(seed=10_003, n=1, corpus=None, workdir=tmp_path)   # looked at in docs/CLASSIFIER.md


def test_smoke_real_pipeline_on_three_simulated_files(tmp_path):
    """The harness end to end (simulate → ingest → classify → segments → scores) on a tiny dev set."""
    from retroingest.evaluate import evaluate
    from retroingest.simulate import read_manifest

    rep = evaluate(seed=31, n=3, corpus=None, workdir=tmp_path, allow_dev_seed=True)
    m = read_manifest(tmp_path / "sim" / "manifest.csv")
    o = rep.overall
    assert o["n_activities"] == 3
    # every truth backward second is either found or missed, none lost on the way
    assert o["tp_s"] + o["fn_s"] == o["backward_s"] == pytest.approx(m["backward_s"].sum(), abs=3 * 2)
    for key in ("f1", "precision", "recall", "event_recall"):
        assert o[key] is None or 0.0 <= o[key] <= 1.0
    assert rep.fp_real is None and "corpus not found" in " ".join(rep.notes)
    assert "backward per-second F1" in format_report(rep)


def test_without_a_workdir_the_simulated_set_is_removed_afterwards(tmp_path, monkeypatch):
    import tempfile

    from retroingest.evaluate import evaluate

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    rep = evaluate(seed=32, n=1, corpus=None, allow_dev_seed=True)
    assert rep.overall["n_activities"] == 1
    assert list(tmp_path.iterdir()) == []
    assert "temporary directory (removed" in " ".join(rep.notes)


def test_confidence_calibration_bins_share_correct():
    from retroingest.evaluate import raster_values, reliability

    pred = iv((0, 100, "run", "forward"), (100, 200, "run", "backward")).with_columns(
        pl.Series("confidence", [0.95, 0.65]))
    conf = raster_values(pred, T0, 200, "confidence")
    assert conf[50] == 0.95 and conf[150] == 0.65
    s = _scored("c", "backward", [(100, 150)], [(100, 200)], n=200)
    s.confidence = conf
    rows = {(r["predicted"], r["bin"]): r for r in reliability([s])}
    assert rows[("backward", "[0.60, 0.70]")]["accuracy"] == pytest.approx(0.5)
    assert rows[("forward", "[0.95, 1.00]")]["accuracy"] == 1.0


def test_bootstrap_interval_brackets_the_point_estimate():
    from retroingest.evaluate import bootstrap_ci

    items = [_scored(f"b{i}", "backward", [(100, 400)], [(100 + 10 * i, 400)]) for i in range(8)]
    items += [_scored(f"n{i}", "negative", [], [(0, 5 * i)]) for i in range(4)]
    ci = bootstrap_ci(items, n_boot=300)
    point = summarise(items)["f1"]
    assert ci["backward_f1"][0] <= point <= ci["backward_f1"][1]
    assert ci["backward_f1"][1] - ci["backward_f1"][0] > 0
    assert ci["event_recall"] == [1.0, 1.0]
