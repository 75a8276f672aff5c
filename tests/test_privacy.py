"""Privacy zones: positions near configured private places are NULL in v_records_public and absent
from the HTML report; positions elsewhere are untouched."""

from __future__ import annotations

import math

import duckdb
import pytest

from retroingest import config, warehouse
from retroingest.config import ConfigError
from retroingest.ingest import ingest
from retroingest.privacy import sync_zones
from test_ingest import fit_bytes

# fit_bytes() walks north from 550_000_000 semicircles, 100 semicircles (~0.93 m) per second
SEMI = 180.0 / 2**31
START_LAT, LON = 550_000_000 * SEMI, 100_000_000 * SEMI
HOME = {"privacy": {"zones": [{"name": "home", "lat": START_LAT, "lon": LON, "radius_m": 50}]}}


def haversine_m(lat1, lon1, lat2, lon2) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6371008.8 * math.asin(math.sqrt(a))


@pytest.fixture
def run_near_home(tmp_path, warehouse_path):
    (tmp_path / "run.fit").write_bytes(fit_bytes(n=300))
    ingest([tmp_path / "run.fit"], warehouse_path, workers=1, run_post_steps=False)
    return warehouse_path


def test_config_zones_are_checked():
    assert config.privacy_zones({}) == []
    assert config.privacy_zones(HOME)[0]["radius_m"] == 50
    with pytest.raises(ConfigError):
        config.privacy_zones({"privacy": {"zones": [{"name": "x", "lat": 91, "lon": 0}]}})
    with pytest.raises(ConfigError):
        config.privacy_zones({"privacy": {"zones": [{"name": "x", "lat": 1, "lon": 0, "radius": 5}]}})


def test_positions_inside_a_zone_are_null_in_the_public_view(run_near_home):
    con = warehouse.connect(run_near_home)
    try:
        sync_zones(con, config.privacy_zones(HOME))
        raw = con.execute("SELECT seq, lat_deg, lon_deg FROM v_records ORDER BY seq").fetchall()
        pub = con.execute("SELECT seq, lat_deg, lon_deg FROM v_records_public ORDER BY seq").fetchall()
    finally:
        con.close()
    assert len(raw) == len(pub) == 300
    for (seq, lat, lon), (_, plat, plon) in zip(raw, pub):
        d = haversine_m(START_LAT, LON, lat, lon)
        if d <= 49.9:
            assert (plat, plon) == (None, None), (seq, d)
        elif d >= 50.1:
            assert (plat, plon) == (lat, lon), (seq, d)
    hidden = sum(p[1] is None for p in pub)
    assert 45 <= hidden <= 60  # ~54 s of a 0.93 m/s walk away from home


def test_without_zones_nothing_is_hidden(run_near_home):
    con = duckdb.connect(str(run_near_home), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM v_records_public WHERE lat_deg IS NULL").fetchone()[0] == 0
    finally:
        con.close()


def test_report_draws_no_position_inside_a_zone(run_near_home, tmp_path):
    from retroingest.report.build import write_report
    from retroingest.report.data import activity_detail

    write_report(run_near_home, tmp_path / "report", config=HOME)  # syncs the configured zones
    con = duckdb.connect(str(run_near_home), read_only=True)
    try:
        aid = con.execute("SELECT activity_id FROM activities").fetchone()[0]
        det = activity_detail(con, aid)
    finally:
        con.close()
    assert det is not None and det.lat and min(haversine_m(START_LAT, LON, a, b) for a, b in zip(det.lat, det.lon)) > 50


def test_ingest_syncs_the_configured_zones(tmp_path, warehouse_path, monkeypatch):
    cfg = tmp_path / "retroingest.toml"
    cfg.write_text(f'[privacy]\nzones = [{{name = "home", lat = {START_LAT}, lon = {LON}, radius_m = 50}}]\n')
    monkeypatch.setenv(config.ENV_CONFIG, str(cfg))
    (tmp_path / "run.fit").write_bytes(fit_bytes(n=120))
    ingest([tmp_path / "run.fit"], warehouse_path, workers=1, run_post_steps=False)
    con = duckdb.connect(str(warehouse_path), read_only=True)
    try:
        assert con.execute("SELECT name FROM privacy_zones").fetchall() == [("home",)]
        assert con.execute("SELECT count(*) FROM v_records_public WHERE lat_deg IS NULL").fetchone()[0] >= 45
    finally:
        con.close()
