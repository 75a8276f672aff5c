"""`retroingest report` without a browser: the command, configuration, and what the page says."""

from __future__ import annotations

import datetime as dt
import re

from click.testing import CliRunner

from retroingest import warehouse
from retroingest.cli import main
from test_metrics import T0, add_activity, interval_session
from test_views import road_session


def _warehouse(tmp_path):
    con = warehouse.connect(tmp_path / "retro.duckdb")
    add_activity(con, 1, T0, interval_session(), body_mass_kg=80.0)
    add_activity(con, 2, T0 + dt.timedelta(days=8), road_session(), sub_sport="road")
    con.close()
    return tmp_path / "retro.duckdb"


def report(*args):
    return CliRunner().invoke(main, ["report", *args])


def test_a_profile_added_in_the_configuration_shows_up_in_the_report(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = _warehouse(tmp_path)
    res = report("-w", str(db), "--out", str(tmp_path / "out"))
    assert res.exit_code == 0, res.output
    assert "coach" not in (tmp_path / "out" / "index.html").read_text()
    cfg = tmp_path / "retroingest.toml"
    cfg.write_text('[profiles.coach]\nbase = "seed_claims"\ndescription = "My coach says x3"\n'
                   'run_distance_ratio = 3\nwalk_distance_ratio = 3\n')
    res = report("-w", str(db), "--out", str(tmp_path / "out"))
    assert res.exit_code == 0, res.output
    html = (tmp_path / "out" / "index.html").read_text()
    row = re.search(r"<tr><td><code>coach</code></td>.*?</tr>", html)
    assert row and "My coach says x3" in row.group(0)
    d = 4 * 120 * 2.2 + 600 * 2.2 + 300 * 1.0  # all backward metres of both activities
    assert f"{3 * d / 1000:.2f} km" in row.group(0)


def test_page_tells_about_assumed_body_mass_and_long_road_bouts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = _warehouse(tmp_path)
    assert report("-w", str(db), "--out", str(tmp_path)).exit_code == 0
    html = (tmp_path / "index.html").read_text()
    assert "assume a body mass of 70 kg" in html
    assert re.search(r'id="safety-note">2 backward bout\(s\) of 5 minutes or more on roads', html)
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html


def test_report_errors_name_the_problem(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = _warehouse(tmp_path)
    res = report("-w", str(db), "--out", str(tmp_path), "--activity", "999")
    assert res.exit_code == 1 and "no primary foot-sport activity 999" in res.output
    bad = tmp_path / "bad.toml"
    bad.write_text("[profiles.x]\nrun_distance_ratoi = 2\n")
    res = report("-w", str(db), "--out", str(tmp_path), "--config", str(bad))
    assert res.exit_code == 1 and "run_distance_ratoi" in res.output
    res = report("-w", str(db), "--out", str(tmp_path), "--config", str(tmp_path / "missing.toml"))
    assert res.exit_code == 1 and "not found" in res.output
