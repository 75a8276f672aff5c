"""Write the offline HTML dashboard: refresh the metrics if needed, read the views, render one file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from retroingest import config as config_mod
from retroingest import warehouse
from retroingest.errors import LoadError, WarehouseBusyError
from retroingest.report.data import gather
from retroingest.report.page import render


def report_filename(activity_id: int | None) -> str:
    """index.html for the whole warehouse, activity-<id>.html for one activity."""
    return "index.html" if activity_id is None else f"activity-{activity_id}.html"


def build_report(con: duckdb.DuckDBPyConnection, out_dir: str | Path, activity_id: int | None = None,
                 *, source: str = "", note: str = "") -> Path:
    """Render the dashboard from an open warehouse into out_dir; returns the HTML file's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    html = render(gather(con, activity_id), source=source, note=note)
    path = out / report_filename(activity_id)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a page
    return path


def write_report(warehouse_path: str | Path | None, out_dir: str | Path, activity_id: int | None = None,
                 config: dict[str, Any] | None = None) -> Path:
    """Open the warehouse, bring the equivalence metrics up to date, write the report; returns its path.

    While an import holds the write lock the report is drawn read-only from what is stored, and
    says so at the top.
    """
    from retroingest.metrics import refresh

    path = Path(warehouse_path) if warehouse_path else warehouse.default_path()
    cfg = config_mod.load() if config is None else config
    try:
        con = warehouse.connect(path, wait_s=5)
        from retroingest.privacy import sync_zones
        sync_zones(con, config_mod.privacy_zones(cfg))  # [privacy] zones as configured now
        refresh(con, cfg)
        note = ""
    except WarehouseBusyError:
        con = warehouse.connect(path, read_only=True, wait_s=30)
        note = "Metrics were not refreshed: an import held the warehouse."
    try:
        if activity_id is not None and not con.execute(
                "SELECT count(*) FROM v_activity_backward WHERE activity_id = ?", [activity_id]).fetchone()[0]:
            raise LoadError(str(path), f"no primary foot-sport activity {activity_id}", reason_code="not_found")
        return build_report(con, out_dir, activity_id, source=str(path), note=note)
    finally:
        con.close()
