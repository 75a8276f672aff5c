"""The ``retroingest report`` command; registered on the main group in retroingest/cli.py."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from retroingest import config as config_mod
from retroingest import warehouse
from retroingest.errors import RetroIngestError, WarehouseBusyError

DEFAULT_OUT = warehouse.REPO / "warehouse" / "report"


@click.command("report")
@click.option("--warehouse", "-w", "warehouse_path", type=click.Path(dir_okay=False, path_type=Path),
              envvar=warehouse.ENV_WAREHOUSE, show_envvar=True, default=None,
              help="DuckDB warehouse file [default: warehouse/retro.duckdb]")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_OUT,
              show_default="warehouse/report", help="folder to write the HTML file into")
@click.option("--activity", "activity_id", type=int, default=None,
              help="only this activity (writes activity-<ID>.html)")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              envvar=config_mod.ENV_CONFIG, help="configuration file [default: ./retroingest.toml]")
def report(warehouse_path, out_dir, activity_id, config_path):
    """Write a self-contained offline HTML dashboard and print its path.

    Recomputes the equivalence metrics first when profiles in the configuration or segments
    changed. Example: retroingest report --out /tmp/retro && xdg-open /tmp/retro/index.html
    """
    from retroingest.metrics import refresh
    from retroingest.report import build_report

    path = warehouse_path or warehouse.default_path()
    try:
        cfg = config_mod.load(config_path)
        try:
            con = warehouse.connect(path, wait_s=5)
            refresh(con, cfg)
            note = ""
        except WarehouseBusyError:
            # an import holds the write lock: draw what is there without refreshing
            con = warehouse.connect(path, read_only=True, wait_s=30)
            note = " (metrics not refreshed: the warehouse is busy)"
        try:
            if activity_id is not None and not con.execute(
                    "SELECT count(*) FROM v_activity_backward WHERE activity_id = ?", [activity_id]).fetchone()[0]:
                click.echo(f"error: {path}: no primary foot-sport activity {activity_id}", err=True)
                sys.exit(1)
            out = build_report(con, out_dir, activity_id, source=str(path))
        finally:
            con.close()
    except RetroIngestError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(3 if isinstance(exc, WarehouseBusyError) else 1)
    click.echo(f"report: {out}{note}")
