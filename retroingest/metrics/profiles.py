"""Equivalence profiles: shipped rows in `equivalence_profiles`, changed from configuration.

The parameter vocabulary is the table's own columns (schemas/migrations/003_equivalence.sql), so
a new parameter needs a migration, never a code change here. A ``[profiles.<name>]`` section of
retroingest.toml starts from ``base`` (default: the shipped profile of the same name, else
``evidence``), overrides the keys it lists, and becomes a new row with its own params_hash; the
row becomes the active one for that name. ``enabled = false`` switches a profile off.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import duckdb
import polars as pl

from retroingest.config import ConfigError

META_COLUMNS = ("profile", "params_hash", "source", "active", "created_at")
TEXT_PARAMS = ("description", "sources", "energy_model")
CONFIG_ONLY_KEYS = ("base", "enabled")


def param_columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Parameter columns of equivalence_profiles, in table order."""
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = 'equivalence_profiles' ORDER BY ordinal_position"
    ).fetchall()
    return [r[0] for r in rows if r[0] not in META_COLUMNS]


def params_hash(params: dict[str, Any]) -> str:
    """Stable 16-hex-digit hash of a parameter set (numbers as floats)."""
    norm = {k: (float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v)
            for k, v in params.items()}
    return hashlib.sha256(json.dumps(norm, sort_keys=True).encode()).hexdigest()[:16]


def _rows(con: duckdb.DuckDBPyConnection, where: str = "", args: list | None = None) -> list[dict]:
    cur = con.execute(f"SELECT * FROM equivalence_profiles {where}", args or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def _resolve(name: str, section: dict[str, Any], builtins: dict[str, dict], cols: list[str]) -> dict:
    if not isinstance(section, dict):
        raise ConfigError(None, f"[profiles.{name}] must be a table", reason_code="config_invalid")
    unknown = set(section) - set(cols) - set(CONFIG_ONLY_KEYS)
    if unknown:
        raise ConfigError(None, f"[profiles.{name}]: unknown keys {sorted(unknown)}; "
                          f"known: {', '.join(cols)}", reason_code="config_invalid")
    base = section.get("base", name if name in builtins else "evidence")
    if base not in builtins:
        raise ConfigError(None, f"[profiles.{name}]: base '{base}' is not a shipped profile "
                          f"({', '.join(sorted(builtins))})", reason_code="config_invalid")
    params = {c: builtins[base][c] for c in cols}
    for key, value in section.items():
        if key in CONFIG_ONLY_KEYS:
            continue
        if key in TEXT_PARAMS:
            if not isinstance(value, str):
                raise ConfigError(None, f"[profiles.{name}].{key} must be a string",
                                  reason_code="config_invalid")
        elif not (value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)
                                    and value >= 0)):
            raise ConfigError(None, f"[profiles.{name}].{key} must be a number >= 0",
                              reason_code="config_invalid")
        params[key] = value
    return params


def sync_profiles(con: duckdb.DuckDBPyConnection, config: dict[str, Any]) -> bool:
    """Make the active rows match the configuration; True when the active set changed.

    Call inside the caller's transaction. Old parameter sets stay as inactive rows.
    """
    cols = param_columns(con)
    all_rows = _rows(con)
    builtins = {r["profile"]: r for r in all_rows if r["source"] == "builtin"}
    before = {(r["profile"], r["params_hash"]) for r in all_rows if r["active"]}
    sections = config.get("profiles", {}) or {}
    if not isinstance(sections, dict):
        raise ConfigError(None, "[profiles] must be a table of tables", reason_code="config_invalid")

    wanted: dict[str, str | None] = {name: r["params_hash"] for name, r in builtins.items()}
    now = dt.datetime.now(dt.timezone.utc)
    for name, section in sections.items():
        if isinstance(section, dict) and section.get("enabled", True) is False:
            wanted[name] = None
            continue
        params = _resolve(name, section, builtins, cols)
        h = params_hash(params)
        if name in builtins and all(_same(params[c], builtins[name][c]) for c in cols):
            h = builtins[name]["params_hash"]  # an override that changes nothing
        elif not con.execute("SELECT count(*) FROM equivalence_profiles WHERE profile = ? AND params_hash = ?",
                             [name, h]).fetchone()[0]:
            names = ["profile", "params_hash", "source", "active", "created_at", *cols]
            con.execute(
                f"INSERT INTO equivalence_profiles ({', '.join(names)}) "
                f"VALUES ({', '.join('?' * len(names))})",
                [name, h, "config", False, now, *[params[c] for c in cols]],
            )
        wanted[name] = h

    known = {r["profile"] for r in _rows(con)}
    for name in known:
        con.execute("UPDATE equivalence_profiles SET active = (params_hash IS NOT DISTINCT FROM ?) "
                    "WHERE profile = ?", [wanted.get(name), name])
    after = {(r["profile"], r["params_hash"]) for r in _rows(con, "WHERE active")}
    return before != after


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(float(a) - float(b)) < 1e-12
    return a == b


def active_profiles(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The active profile rows as a frame, one per profile name."""
    return con.execute("SELECT * FROM equivalence_profiles WHERE active ORDER BY profile").pl()
