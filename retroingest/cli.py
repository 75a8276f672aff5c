"""Command-line interface. Each command opens the warehouse, calls one library function, prints.

Exit codes (documented in README.md):
  0  success — including a batch in which some files were quarantined (the summary says so)
  1  failure: the warehouse could not be opened or written, or a query failed
  2  usage error (bad option or argument)
  3  the warehouse is locked by another process (an import is running); try again later
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import click

from retroingest import warehouse
from retroingest.errors import RetroIngestError, WarehouseBusyError

EXIT_FAILURE, EXIT_BUSY = 1, 3

warehouse_option = click.option(
    "--warehouse", "-w", "warehouse_path", type=click.Path(dir_okay=False, path_type=Path),
    envvar=warehouse.ENV_WAREHOUSE, show_envvar=True, default=None,
    help=f"DuckDB warehouse file [default: {warehouse.DEFAULT_WAREHOUSE.relative_to(warehouse.REPO)}]",
)


def _fail(exc: RetroIngestError) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(EXIT_BUSY if isinstance(exc, WarehouseBusyError) else EXIT_FAILURE)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="retroingest")
def main() -> None:
    """retroingest: FIT, GPX and TCX files into a DuckDB warehouse, with backward-running detection.

    Example: retroingest ingest ~/exports/strava.zip && retroingest status
    """


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@warehouse_option
@click.option("--workers", "-j", type=click.IntRange(1, 64), default=None, help="parallel decode processes [default: 2]")
@click.option("--quiet", "-q", is_flag=True, help="no progress display")
@click.option("--wait", "wait_s", type=float, default=0.0, show_default=True,
              help="seconds to wait for another import to release the warehouse")
def ingest(paths, warehouse_path, workers, quiet, wait_s):
    """Ingest activity files, folders (recursively), .gz files and .zip exports.

    Running it twice over the same inputs changes nothing. A bad file is quarantined with its
    reason and never stops the batch.

    Example: retroingest ingest GARMIN/Activity ~/Downloads/export_12345.zip
    """
    from retroingest.ingest import ingest as run_ingest

    wpath = warehouse_path or warehouse.default_path()
    seen = {"n": 0}

    def progress(label: str, what: str) -> None:
        seen["n"] += 1
        if not quiet and sys.stderr.isatty():
            click.echo(f"\r[{seen['n']}] {what:<11} {Path(label.split('!/')[-1]).name[:60]:<60}", err=True, nl=False)
        elif not quiet and what in ("quarantined",):
            click.echo(f"quarantined: {label}", err=True)

    try:
        result = run_ingest(paths, wpath, workers=workers, progress=progress, lock_wait_s=wait_s)
    except RetroIngestError as exc:
        _fail(exc)
    if not quiet and sys.stderr.isatty():
        click.echo("", err=True)
    c = result.counts
    parts = [f"{k} {c[k]}" for k in ("ingested", "salvaged", "duplicate", "skipped", "quarantined", "unchanged") if c.get(k)]
    click.echo(f"{result.n_files} files: " + (", ".join(parts) or "nothing new") + f"; {result.n_records:,} records added"
               f" -> {wpath}")
    for step, state in result.post_steps.items():
        click.echo(f"  {step}: {state}")
    if result.quarantined:
        click.echo(f"{len(result.quarantined)} file(s) quarantined (the rest of the batch was imported):")
        for label, reason in result.quarantined:
            click.echo(f"  {label}: {reason}")


def _print_rows(columns: list[str], rows: list[tuple], fmt: str) -> None:
    if fmt == "csv":
        w = csv.writer(sys.stdout)
        w.writerow(columns)
        w.writerows(rows)
    elif fmt == "json":
        click.echo(json.dumps([dict(zip(columns, r)) for r in rows], default=str, indent=1))
    else:
        text = [[("" if v is None else str(v)) for v in r] for r in rows]
        widths = [min(60, max([len(c)] + [len(t[i]) for t in text])) for i, c in enumerate(columns)]
        click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
        click.echo("  ".join("-" * w for w in widths))
        for t in text:
            click.echo("  ".join(v[:w].ljust(w) for v, w in zip(t, widths)))
        click.echo(f"({len(rows)} rows)")


@main.command()
@click.argument("query")
@warehouse_option
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def sql(query, warehouse_path, fmt):
    """Run a read-only SQL query on the warehouse.

    Example: retroingest sql "SELECT sport, count(*) FROM v_activities GROUP BY 1" -f csv
    """
    import duckdb

    try:
        con = warehouse.connect(warehouse_path, read_only=True, wait_s=30)
    except RetroIngestError as exc:
        _fail(exc)
    try:
        cur = con.execute(query)
        columns = [d[0] for d in cur.description] if cur.description else []
        rows = cur.fetchall() if columns else []
    except duckdb.Error as exc:
        click.echo(f"error: query failed: {exc}", err=True)
        sys.exit(EXIT_FAILURE)
    finally:
        con.close()
    _print_rows(columns, rows, fmt)


@main.command()
@warehouse_option
def status(warehouse_path):
    """Counts by status, the last import, and quarantined files with their reasons.

    Example: retroingest status --warehouse warehouse/retro.duckdb
    """
    try:
        con = warehouse.connect(warehouse_path, read_only=True, wait_s=30)
    except RetroIngestError as exc:
        _fail(exc)
    try:
        click.echo(f"warehouse: {warehouse_path or warehouse.default_path()} (schema version {warehouse.schema_version(con)})")
        counts = con.execute("SELECT status, count(*) FROM source_files GROUP BY 1 ORDER BY 2 DESC").fetchall()
        click.echo("files: " + (", ".join(f"{s} {n}" for s, n in counts) or "none"))
        n_act, n_dup, n_rec = con.execute(
            "SELECT count(*) FILTER (WHERE duplicate_of IS NULL), count(*) FILTER (WHERE duplicate_of IS NOT NULL), "
            "coalesce(sum(n_records) FILTER (WHERE duplicate_of IS NULL), 0) FROM activities").fetchone()
        click.echo(f"activities: {n_act} (plus {n_dup} secondary copies of the same activities); records: {n_rec:,}")
        last = con.execute("SELECT import_id, started_at, finished_at, n_files, n_ingested, n_quarantined, command "
                           "FROM imports ORDER BY import_id DESC LIMIT 1").fetchone()
        if last:
            click.echo(f"last import: #{last[0]} {last[6]} started {last[1]:%Y-%m-%d %H:%M:%S} UTC, "
                       f"{'finished' if last[2] else 'DID NOT FINISH'}; {last[3]} files, {last[4]} ingested, "
                       f"{last[5]} quarantined")
        bad = con.execute("SELECT path, reason FROM source_files WHERE status = 'quarantined' ORDER BY path").fetchall()
        if bad:
            click.echo(f"quarantined ({len(bad)}):")
            for path, reason in bad:
                click.echo(f"  {path}: {reason}")
    finally:
        con.close()


# `retroingest report` (issue 5): the offline HTML dashboard, defined in retroingest/report/cli.py.
from retroingest.report.cli import report as _report_command  # noqa: E402

main.add_command(_report_command)


@main.command()
@click.option("--cron", default=None, help="cron expression for the nightly import [default: [pipelines] cron, 0 3 * * *]")
@click.option("--timezone", "tz", default=None, help="IANA time zone of the cron [default: this machine's]")
@warehouse_option
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="configuration file [default: $RETROINGEST_CONFIG or ./retroingest.toml]")
def serve(cron, tz, warehouse_path, config_path):
    """Keep the nightly import scheduled: a Prefect deployment served on a cron schedule.

    Starts a local Prefect server (127.0.0.1, PREFECT_HOME=.prefect/) unless PREFECT_API_URL
    points at one (or at Prefect Cloud). Needs the extra 'pipelines'. Stop with Ctrl-C.

    Example: retroingest serve --cron "30 2 * * *" --timezone Europe/Berlin
    """
    if str(warehouse.REPO) not in sys.path:  # pipelines/ lives beside the package, in the repository
        sys.path.insert(0, str(warehouse.REPO))
    try:
        from pipelines.serve import main as serve_main
    except ImportError as exc:
        click.echo(f"error: {exc}; install the extra: pip install -e '.[pipelines]'", err=True)
        sys.exit(EXIT_FAILURE)
    try:
        serve_main(cron=cron, timezone=tz, warehouse_path=str(warehouse_path) if warehouse_path else None,
                   config_path=config_path)
    except RetroIngestError as exc:
        _fail(exc)


@main.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="folder for the activity files, their <stem>.truth.csv and manifest.csv")
@click.option("--n", "n", type=click.IntRange(1, 10_000), default=24, show_default=True, help="number of files")
@click.option("--seed", type=int, default=1, show_default=True,
              help="random seed; seeds below 10000 are development seeds (the evaluate harness uses others)")
def simulate(out_dir, n, seed):
    """Write simulated FIT/GPX activities with ground-truth gait intervals (backward/forward, walk/run).

    Example: retroingest simulate --out /tmp/sim --n 24 --seed 1 && retroingest ingest /tmp/sim
    """
    from retroingest.simulate import simulate as run_simulate

    files = run_simulate(out_dir, n, seed)
    n_bwd = sum(f.backward_s > 0 for f in files)
    click.echo(f"{len(files)} files ({sum(f.format == 'fit' for f in files)} FIT, "
               f"{sum(f.format == 'gpx' for f in files)} GPX; {n_bwd} with backward bouts, "
               f"{sum(f.backward_s for f in files)} backward seconds) -> {out_dir}/manifest.csv")


@main.command()
@click.option("--all", "all_", is_flag=True, help="re-classify every primary foot-sport activity, not only pending ones")
@click.option("--activity", "activity_ids", type=int, multiple=True, help="classify this activity id (repeatable)")
@warehouse_option
@click.option("--wait", "wait_s", type=float, default=0.0, show_default=True,
              help="seconds to wait for a running import to release the warehouse")
def classify(all_, activity_ids, warehouse_path, wait_s):
    """Detect backward walking/running and replace the activities' segments (then refresh metrics).

    Without --all only activities with no segments, or segments of an older classifier version,
    are classified. Example: retroingest classify --all --warehouse warehouse/retro.duckdb
    """
    from retroingest.classify import pending_activities
    from retroingest.ingest import reclassify

    try:
        if activity_ids:
            ids = list(activity_ids)
        else:
            con = warehouse.connect(warehouse_path, wait_s=wait_s)
            try:
                ids = pending_activities(con, all_activities=all_)
            finally:
                con.close()
        if not ids:
            click.echo("classify: nothing to do (every foot-sport activity has current segments; use --all to redo)")
            return
        steps = reclassify(warehouse_path, ids, lock_wait_s=wait_s)
    except RetroIngestError as exc:
        _fail(exc)
    failed = {k: v for k, v in steps.items() if v != "ok"}
    click.echo(f"classify: {len(ids)} activities; " + ", ".join(f"{k}: {v}" for k, v in steps.items()))
    if failed:
        sys.exit(EXIT_FAILURE)


@main.command()
@click.option("--seed", type=int, default=None,
              help="held-out seed [default: the next one nobody has run, evaluate.HELD_OUT_SEED]; "
                   "seeds < 10000 and spent seeds need --allow-dev-seed")
@click.option("--n", "n", type=click.IntRange(1, 10_000), default=96, show_default=True, help="simulated files")
@click.option("--corpus", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="real corpus for the forward-run false-positive rate [default: ../shared/corpus]")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="keep the simulated files and warehouses here [default: a temp dir, removed afterwards]")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="also write the full report as JSON")
@click.option("--layout", type=click.Choice(["per_athlete", "shared"]), default="per_athlete", show_default=True,
              help="one warehouse per simulated athlete, or one shared warehouse with serial -> athlete mapping")
@click.option("--allow-dev-seed", is_flag=True,
              help="accept a development or spent seed (debugging, or reproducing a past report)")
def evaluate(seed, n, corpus, workdir, json_path, layout, allow_dev_seed):
    """Accuracy harness: simulate a held-out set, ingest + classify it, print precision/recall/F1 and FP rates.

    Example: retroingest evaluate --n 96 --json accuracy.json
    """
    from retroingest import evaluate as ev

    try:
        rep = ev.evaluate(seed=ev.HELD_OUT_SEED if seed is None else seed, n=n, corpus=corpus or ev.default_corpus(),
                          workdir=workdir, allow_dev_seed=allow_dev_seed, layout=layout)
    except ValueError as exc:
        raise click.UsageError(str(exc))
    click.echo(ev.format_report(rep))
    if json_path:
        json_path.write_text(rep.to_json())


@main.command()
@warehouse_option
@click.option("--verbose", "-v", is_flag=True, help="list every quarantined file, not only the first 20")
@click.option("--strict", is_flag=True, help="exit 1 on warnings too (an unfinished import, staged leftovers)")
@click.option("--wait", "wait_s", type=float, default=30.0, show_default=True,
              help="seconds to wait for a running import to release the warehouse")
def doctor(warehouse_path, verbose, strict, wait_s):
    """Check the warehouse's integrity: schema version, orphans, duplicate primaries, partial
    activities, records outside their activity, unfinished imports, quarantine contents.

    Prints each problem with a hint; exits 1 when a problem (or, with --strict, a warning) is found.

    Example: retroingest doctor --warehouse warehouse/retro.duckdb
    """
    from retroingest.doctor import check, format_report

    try:
        rep = check(warehouse_path, wait_s=wait_s)
    except RetroIngestError as exc:
        _fail(exc)
    click.echo(format_report(rep, verbose=verbose))
    if not rep.ok or (strict and rep.warnings):
        sys.exit(EXIT_FAILURE)


if __name__ == "__main__":
    main()
