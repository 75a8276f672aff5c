"""Dashboard views (warehouse/views/020_*.sql and later) and the example queries in warehouse/queries/."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from retroingest import warehouse
from retroingest.metrics import compute_equivalence
from test_metrics import T0, Bout, add_activity, interval_session

REPO = Path(__file__).resolve().parents[1]
QUERIES = sorted((REPO / "warehouse" / "queries").glob("*.sql"))
MY_VIEWS = ["v_segments", "v_backward_segments", "v_activity_backward", "v_backward_daily",
            "v_backward_weekly", "v_backward_by_context", "v_safety_road_bouts", "v_equivalence",
            "v_claims_vs_evidence", "v_claims_vs_evidence_totals"]


@pytest.fixture
def con(warehouse_path):
    c = warehouse.connect(warehouse_path)
    yield c
    c.close()


def one(con, sql, *args):
    return con.execute(sql, list(args)).fetchone()


def road_session() -> list[Bout]:
    return [Bout(600, 3.0, 166, context="road"),
            Bout(400, 2.2, 176, direction="backward", context="road"),       # long: flagged
            Bout(120, 3.0, 166, context="road"),
            Bout(200, 2.2, 176, direction="backward", context="road"),       # short: not flagged
            Bout(300, 1.0, 100, gait="walk", direction="backward", context="road")]  # 5 min walk: flagged


@pytest.fixture(scope="module")
def populated(tmp_path_factory):
    """Three weeks: week 1 track intervals, week 2 nothing, week 3 a road session; plus copies.

    Built once for the module: the tests using it only read.
    """
    con = warehouse.connect(tmp_path_factory.mktemp("views") / "retro.duckdb")
    add_activity(con, 1, T0, interval_session(), body_mass_kg=70.0)
    add_activity(con, 2, T0 + dt.timedelta(days=15), road_session(), sub_sport="road")
    add_activity(con, 3, T0 + dt.timedelta(days=16), [Bout(1800, 3.0, 166, context="road")], sub_sport="road")
    # a GPX copy of activity 1: must never be counted twice
    add_activity(con, 11, T0, interval_session(), duplicate_of=1)
    compute_equivalence(con, config={})
    yield con
    con.close()


def test_views_read_only_primary_activities(populated):
    con = populated
    assert one(con, "SELECT count(*) FROM v_activity_backward WHERE activity_id = 11")[0] == 0
    assert one(con, "SELECT count(*) FROM v_segments WHERE activity_id = 11")[0] == 0
    assert one(con, "SELECT count(*) FROM v_equivalence WHERE activity_id = 11")[0] == 0
    assert one(con, "SELECT count(*) FROM equivalence WHERE activity_id = 11")[0] > 0  # stored, not shown
    assert one(con, "SELECT backward_time_s FROM v_backward_daily WHERE local_date = ?", T0.date())[0] == 480


def test_activity_summary_splits_backward_work_by_gait_and_context(populated):
    row = populated.execute(
        "SELECT n_backward_segments, backward_time_s, backward_run_time_s, backward_walk_time_s, "
        "backward_road_s, backward_track_s, longest_backward_bout_s, n_long_road_bouts, "
        "backward_share_of_moving_time, is_classified FROM v_activity_backward WHERE activity_id = 2").fetchone()
    assert row == (3, 900, 600, 300, 900, 0, 400, 2, pytest.approx(900 / 1620), True)
    fwd = one(populated, "SELECT n_backward_segments, backward_time_s, backward_share_of_moving_time "
                         "FROM v_activity_backward WHERE activity_id = 3")
    assert fwd == (0, 0, 0)


def test_daily_share_and_local_date_from_the_device_offset(con):
    late = dt.datetime(2026, 11, 4, 23, 30, tzinfo=dt.timezone.utc)  # 00:30 on the 5th at UTC+1
    add_activity(con, 1, late, [Bout(300, 3.0, 166), Bout(100, 2.2, 176, direction="backward")])
    row = one(con, "SELECT local_date, moving_time_s, backward_time_s, backward_share_of_moving_time "
                   "FROM v_backward_daily")
    assert row == (dt.date(2026, 11, 5), 400, 100, pytest.approx(0.25))


def test_weekly_volume_fills_empty_weeks_and_measures_progression(populated):
    rows = populated.execute(
        "SELECT week_start, backward_time_s, prev_week_backward_time_s, backward_time_change_pct "
        "FROM v_backward_weekly ORDER BY week_start").fetchall()
    assert rows == [
        (dt.date(2026, 11, 2), 480, None, None),
        (dt.date(2026, 11, 9), 0, 480, -100.0),        # the empty week is a 0, not a hole
        (dt.date(2026, 11, 16), 900, 0, None),         # no percentage against 0
    ]


def test_backward_by_context_shares_sum_to_one(populated):
    rows = dict(populated.execute(
        "SELECT context, share_of_backward_time FROM v_backward_by_context").fetchall())
    assert rows == {"track": pytest.approx(480 / 1380), "road": pytest.approx(900 / 1380)}


def test_long_backward_bouts_on_roads_are_flagged(populated):
    flagged = populated.execute("SELECT duration_s, gait FROM v_safety_road_bouts ORDER BY duration_s").fetchall()
    assert flagged == [(300, "walk"), (400, "run")]


def test_claims_vs_evidence_verdicts(populated):
    rows = {(g, m): (ratio, verdict) for g, m, ratio, verdict in populated.execute(
        "SELECT gait, metric, claims_over_evidence, verdict FROM v_claims_vs_evidence_totals").fetchall()}
    assert rows[("run", "forward_equivalent_distance")] == (pytest.approx(6 / 1.35), "overstated")
    assert rows[("walk", "forward_equivalent_steps")] == (pytest.approx(10 / 0.95), "overstated")
    # 400 kcal per 30 min: plausible for backward running, not for backward walking at 1 m/s
    run_ratio, run_verdict = rows[("run", "energy")]
    assert run_verdict == "plausible" and 0.8 < run_ratio < 1.2
    walk_ratio, walk_verdict = rows[("walk", "energy")]
    assert walk_verdict == "overstated" and walk_ratio > 2.5
    per_activity = one(populated, "SELECT claims_fwd_distance_m, evidence_fwd_distance_m, distance_overstatement "
                                  "FROM v_claims_vs_evidence WHERE activity_id = 1")
    assert per_activity == pytest.approx((6 * 1056, 1.35 * 1056, 6 / 1.35))


def test_views_work_on_an_empty_warehouse(con):
    for v in MY_VIEWS:
        assert con.execute(f"SELECT count(*) FROM {v}").fetchone()[0] == 0, v


def test_every_view_column_is_documented_in_views_md(con):
    doc = (REPO / "docs" / "VIEWS.md").read_text()
    missing = []
    for v in MY_VIEWS:
        section = re.search(rf"^### `{v}`\n(.*?)(?=^### |\Z)", doc, re.M | re.S)
        assert section, f"docs/VIEWS.md has no section for {v}"
        cols = [r[0] for r in con.execute(f"DESCRIBE {v}").fetchall()]
        missing += [f"{v}.{c}" for c in cols if f"`{c}`" not in section.group(1)]
    assert not missing, f"undocumented view columns: {missing}"


# ---- example queries -----------------------------------------------------------------------

def test_there_are_example_queries():
    assert len(QUERIES) >= 4


@pytest.mark.parametrize("path", QUERIES, ids=lambda p: p.stem)
def test_example_query_runs_on_empty_and_populated_warehouses(con, path):
    sql = path.read_text()
    assert con.execute(sql).fetchall() == []
    today = dt.datetime.combine(dt.date.today(), dt.time(1, 0), tzinfo=dt.timezone.utc)
    add_activity(con, 1, today, road_session(), sub_sport="road")
    compute_equivalence(con, config={})
    assert con.execute(sql).fetchall(), f"{path.name} returned nothing on a warehouse with backward work"


def test_this_month_query_answers_how_far_on_which_surface_and_what_it_was_worth(con):
    today = dt.datetime.combine(dt.date.today(), dt.time(1, 0), tzinfo=dt.timezone.utc)
    add_activity(con, 1, today, road_session(), sub_sport="road")
    add_activity(con, 2, today - dt.timedelta(days=400), interval_session())  # long ago: not this month
    compute_equivalence(con, config={})
    cur = con.execute((REPO / "warehouse/queries/backward_this_month_by_context.sql").read_text())
    rows = [dict(zip([d[0] for d in cur.description], r)) for r in cur.fetchall()]
    assert len(rows) == 1 and rows[0]["context"] == "road"
    km = (400 * 2.2 + 200 * 2.2 + 300 * 1.0) / 1000
    assert rows[0]["backward_km"] == pytest.approx(round(km, 2))
    assert rows[0]["claims_fwd_equivalent_km"] == pytest.approx(round(6 * km, 2))
    assert rows[0]["evidence_fwd_equivalent_km"] == pytest.approx(round((600 * 2.2 * 1.35 + 300 * 1.4) / 1000, 2))


def test_claims_query_lists_three_metrics_with_verdicts(populated):
    rows = populated.execute((REPO / "warehouse/queries/claims_vs_evidence.sql").read_text()).fetchall()
    assert [r[0] for r in rows] == ["forward_equivalent_distance", "forward_equivalent_steps", "energy"]
    assert [r[-1] for r in rows][:2] == ["overstated", "overstated"]


def test_views_are_recreated_when_their_sql_changes_and_left_alone_otherwise(warehouse_path, tmp_path, monkeypatch):
    warehouse.connect(warehouse_path).close()
    con = warehouse.connect(warehouse_path)
    assert warehouse.apply_views(con) is False  # same text as the open above applied: nothing to do
    con.close()
    views = tmp_path / "views"
    views.mkdir()
    for p in sorted(warehouse.VIEWS_DIR.glob("*.sql")):
        (views / p.name).write_text(p.read_text())
    (views / "999_extra.sql").write_text("CREATE OR REPLACE VIEW v_extra AS SELECT 42 AS answer;\n")
    monkeypatch.setattr(warehouse, "VIEWS_DIR", views)
    con = warehouse.connect(warehouse_path)  # a new view file: applied on the next write open
    assert one(con, "SELECT answer FROM v_extra") == (42,)
    con.close()
    (views / "999_extra.sql").write_text("CREATE OR REPLACE VIEW v_extra AS SELECT 43 AS answer;\n")
    con = warehouse.connect(warehouse_path)
    assert one(con, "SELECT answer FROM v_extra") == (43,)
    assert warehouse.apply_views(con) is False
    con.close()
