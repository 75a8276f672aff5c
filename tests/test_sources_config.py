"""[sources] and [pipelines] in the configuration file, and their environment overrides."""

from __future__ import annotations

import pytest

from retroingest import config


def test_defaults_when_nothing_is_configured(monkeypatch):
    for var in [*config.ENV_OVERRIDES["sources"].values(), *config.ENV_OVERRIDES["pipelines"].values()]:
        monkeypatch.delenv(var, raising=False)
    assert config.sources({}) == config.SOURCES_DEFAULTS
    assert config.pipelines({})["cron"] == "0 3 * * *"


def test_file_then_environment(tmp_path, monkeypatch):
    f = tmp_path / "retroingest.toml"
    f.write_text('[sources]\ninbox = ["~/inbox", "/data/in"]\nwatch = true\n[pipelines]\ncron = "30 2 * * *"\n'
                 'timezone = "Europe/Berlin"\n')
    monkeypatch.setenv("RETROINGEST_WATCH", "0")
    monkeypatch.setenv("RETROINGEST_URLS", "memory://a s3://bucket/exports/")
    monkeypatch.setenv("RETROINGEST_WORKERS", "4")
    monkeypatch.setenv("RETROINGEST_INBOX", "/x:/y")
    cfg = config.load(f)
    s, p = config.sources(cfg), config.pipelines(cfg)
    assert s["watch"] is False and s["urls"] == ["memory://a", "s3://bucket/exports/"] and s["inbox"] == ["/x", "/y"]
    assert p["workers"] == 4 and p["cron"] == "30 2 * * *" and p["timezone"] == "Europe/Berlin"


def test_unknown_key_is_an_error():
    with pytest.raises(config.ConfigError, match="inboxx"):
        config.sources({"sources": {"inboxx": ["/x"]}})
