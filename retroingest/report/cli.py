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
    from retroingest.report import write_report

    try:
        out = write_report(warehouse_path, out_dir, activity_id, config_mod.load(config_path))
    except RetroIngestError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(3 if isinstance(exc, WarehouseBusyError) else 1)
    click.echo(f"report: {out}")
