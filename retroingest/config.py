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
