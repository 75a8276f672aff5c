"""Privacy zones: copy the configured private places into the warehouse for v_records_public.

The masking itself is SQL (warehouse/views/090_privacy.sql), so dashboards, the report and
ad-hoc queries all hide the same positions.
"""

from __future__ import annotations

from typing import Any, Sequence

import duckdb


def sync_zones(con: duckdb.DuckDBPyConnection, zones: Sequence[dict[str, Any]]) -> int:
    """Replace the stored zones with ``zones`` (from :func:`retroingest.config.privacy_zones`); returns how many."""
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM privacy_zones")
        for z in zones:
            con.execute("INSERT INTO privacy_zones VALUES (?, ?, ?, ?)",
                        [z["name"], z["lat_deg"], z["lon_deg"], z["radius_m"]])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return len(zones)
