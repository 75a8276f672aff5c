"""Write the offline HTML dashboard: refresh the metrics if needed, read the views, render one file."""

from __future__ import annotations

from pathlib import Path

import duckdb

from retroingest.report.data import gather
from retroingest.report.page import render


def report_filename(activity_id: int | None) -> str:
    """index.html for the whole warehouse, activity-<id>.html for one activity."""
    return "index.html" if activity_id is None else f"activity-{activity_id}.html"


def build_report(con: duckdb.DuckDBPyConnection, out_dir: str | Path, activity_id: int | None = None,
                 *, source: str = "") -> Path:
    """Render the dashboard into out_dir and return the HTML file's path.

    The caller decides whether to refresh the equivalence metrics first (see cli.report).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    html = render(gather(con, activity_id), source=source)
    path = out / report_filename(activity_id)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a page
    return path
