"""User configuration: one TOML file, read-only, no code needed to change behaviour.

Where it is looked for, first match wins:

1. the ``path`` argument (CLI ``--config FILE``);
2. ``$RETROINGEST_CONFIG``;
3. ``retroingest.toml`` in the current directory.

A missing file is an empty configuration: every setting has a documented default. Sections in
use (see docs/METRICS.md for the full reference):

``[athletes.<athlete_id>]``
    ``body_mass_kg``, ``hr_rest_bpm``, ``hr_max_bpm``, ``sex`` ("male" | "female", for TRIMP).
``[profiles.<name>]``
    an equivalence profile: ``base = "<profile>"`` plus any parameter column of
    ``equivalence_profiles`` to override (retroingest.metrics.profiles).

Other stages may add their own sections; unknown sections are ignored here.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from retroingest.errors import RetroIngestError

ENV_CONFIG = "RETROINGEST_CONFIG"
DEFAULT_NAME = "retroingest.toml"


class ConfigError(RetroIngestError):
    """The configuration file exists but cannot be used (bad TOML, wrong type, unknown key)."""


def config_path(path: str | Path | None = None) -> Path:
    """The configuration file in effect (it may not exist)."""
    if path:
        return Path(path)
    if os.environ.get(ENV_CONFIG):
        return Path(os.environ[ENV_CONFIG])
    return Path.cwd() / DEFAULT_NAME


def load(path: str | Path | None = None) -> dict[str, Any]:
    """Parse the configuration file into a dict; {} when there is none."""
    p = config_path(path)
    if not p.exists():
        if path:  # asked for explicitly: a typo must not silently fall back to defaults
            raise ConfigError(str(p), "configuration file not found", reason_code="config_missing")
        return {}
    try:
        with p.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(p), f"invalid TOML: {exc}", reason_code="config_invalid") from exc


def athlete(config: dict[str, Any], athlete_id: str) -> dict[str, Any]:
    """The ``[athletes.<id>]`` table, {} when absent."""
    section = config.get("athletes", {}).get(athlete_id, {})
    if not isinstance(section, dict):
        raise ConfigError(None, f"[athletes.{athlete_id}] must be a table", reason_code="config_invalid")
    return section


# --- [sources] and [pipelines]: what the nightly import reads, and how it runs (docs/CONFIG.md) ---

SOURCES_DEFAULTS: dict[str, Any] = {
    "watch": True,          # look for mounted watches (USB mass storage, gvfs MTP, jmtpfs)
    "watch_mounts": None,   # glob patterns of mount points; None = the platform defaults
    "archive_dir": None,    # where watch files are copied; None = <warehouse dir>/watch-archive
    "inbox": [],            # folders scanned recursively (files, .gz, .zip exports)
    "exports": [],          # export zips or folder trees
    "urls": [],             # fsspec URLs (file://, memory://, s3://, ...)
}
PIPELINES_DEFAULTS: dict[str, Any] = {
    "cron": "0 3 * * *",    # nightly import schedule
    "timezone": None,       # IANA name; None = this machine's local zone
    "workers": 2,           # parallel decode tasks
    "task_runner": "thread",  # thread | process | dask
    "dask_address": None,   # tcp://scheduler:8786 for an existing Dask cluster
    "import_wait_s": 600.0,  # how long an import waits for another one to finish
}
# environment overrides; lists are split on os.pathsep, except urls (whitespace)
ENV_OVERRIDES = {
    "sources": {"watch": "RETROINGEST_WATCH", "watch_mounts": "RETROINGEST_WATCH_MOUNTS",
                "archive_dir": "RETROINGEST_ARCHIVE_DIR", "inbox": "RETROINGEST_INBOX",
                "exports": "RETROINGEST_EXPORTS", "urls": "RETROINGEST_URLS"},
    "pipelines": {"cron": "RETROINGEST_CRON", "timezone": "RETROINGEST_TIMEZONE", "workers": "RETROINGEST_WORKERS",
                  "task_runner": "RETROINGEST_TASK_RUNNER", "dask_address": "RETROINGEST_DASK_ADDRESS",
                  "import_wait_s": "RETROINGEST_IMPORT_WAIT_S"},
}


def _merged(config: dict[str, Any], name: str, defaults: dict[str, Any]) -> dict[str, Any]:
    """``[name]`` over ``defaults``, then environment overrides, with types checked against defaults."""
    table = config.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(None, f"[{name}] must be a table", reason_code="config_invalid")
    unknown = set(table) - set(defaults)
    if unknown:
        raise ConfigError(None, f"[{name}] unknown key(s): {', '.join(sorted(unknown))}", reason_code="config_invalid")
    out = {**defaults, **table}
    for key, var in ENV_OVERRIDES[name].items():
        raw = os.environ.get(var)
        if raw is None or raw == "":
            continue
        if key == "urls":
            out[key] = raw.split()
        elif isinstance(defaults[key], list) or key == "watch_mounts":
            out[key] = [p for p in raw.split(os.pathsep) if p]
        elif isinstance(defaults[key], bool):
            out[key] = raw.strip().lower() in ("1", "true", "yes", "on")
        elif isinstance(defaults[key], (int, float)):
            out[key] = type(defaults[key])(raw)
        else:
            out[key] = raw
    for key in ("inbox", "exports", "urls", "watch_mounts"):
        if key in out and isinstance(out[key], str):
            out[key] = [out[key]]
    return out


def sources(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``[sources]`` settings with defaults and ``RETROINGEST_*`` environment overrides."""
    return _merged(load() if config is None else config, "sources", SOURCES_DEFAULTS)


def pipelines(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``[pipelines]`` settings (schedule, workers, task runner) with environment overrides."""
    return _merged(load() if config is None else config, "pipelines", PIPELINES_DEFAULTS)


# --- [privacy]: private places whose positions are hidden in the report and dashboard views ---

def privacy_zones(config: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """``[privacy] zones = [{name, lat, lon, radius_m}, ...]`` checked; [] when not configured.

    Positions within ``radius_m`` metres (great-circle) of a zone's centre are shown as NULL in
    ``v_records_public`` and drawn nowhere in the HTML report, as Strava's privacy zones do.
    """
    cfg = load() if config is None else config
    sec = cfg.get("privacy", {})
    if not isinstance(sec, dict):
        raise ConfigError(None, "[privacy] must be a table", reason_code="config_invalid")
    zones = sec.get("zones", [])
    if not isinstance(zones, list):
        raise ConfigError(None, "[privacy] zones must be a list of tables", reason_code="config_invalid")
    out = []
    for i, z in enumerate(zones):
        if not isinstance(z, dict) or set(z) - {"name", "lat", "lon", "radius_m"}:
            raise ConfigError(None, f"[privacy] zones[{i}]: keys are name, lat, lon, radius_m", reason_code="config_invalid")
        try:
            lat, lon, r = float(z["lat"]), float(z["lon"]), float(z.get("radius_m", 500))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(None, f"[privacy] zones[{i}]: lat and lon (degrees) are required numbers",
                              reason_code="config_invalid") from exc
        if not (-90 <= lat <= 90 and -180 <= lon <= 180 and 0 < r <= 50_000):
            raise ConfigError(None, f"[privacy] zones[{i}]: lat/lon out of range or radius_m not in (0, 50000]",
                              reason_code="config_invalid")
        out.append({"name": str(z.get("name") or f"zone{i + 1}"), "lat_deg": lat, "lon_deg": lon, "radius_m": r})
    return out
