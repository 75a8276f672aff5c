"""The flows: nightly_import, backfill, reclassify. Thin: every step is one library call.

discover (per source root) -> decode in parallel (one task per file, labels in, staging folder
paths out) -> load through the one writer (``ingest.load_and_finish``: load, classify,
metrics) -> publish the read-only snapshot -> markdown artifact. A whole import holds
``warehouse.import_lock``, so two imports never interleave; the DuckDB write lock is held only
inside the load task. Transient source errors are retried; a bad file never fails a flow.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task, unmapped
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from pipelines import report
from pipelines.runners import make_task_runner
from retroingest import config, ingest, warehouse
from retroingest.errors import SourceError, WarehouseBusyError
from retroingest.sources import SourceItem, discover
from retroingest.sources import watch as watch_source
from retroingest.sources.reopen import item_for_label
from retroingest.stage import StagedFile


def _retryable(task, task_run, state) -> bool:
    """Retry only transient errors (``RetroIngestError.retryable``: unplugged watch, remote timeout)."""
    try:
        state.result()
    except BaseException as exc:  # noqa: BLE001 - we only inspect it
        return bool(getattr(exc, "retryable", False))
    return False


def _default_runner():
    """The decode task runner from [pipelines] / RETROINGEST_TASK_RUNNER (thread, 2 workers by default)."""
    try:
        p = config.pipelines()
    except Exception:  # a broken config file is reported when the flow reads it, not at import
        p = config.PIPELINES_DEFAULTS
    return make_task_runner(p["task_runner"], int(p["workers"]), p["dask_address"])


# seconds between attempts for transient source errors; RETROINGEST_RETRY_DELAYS="2,10" (tests use 0,0)
RETRY_DELAYS = [float(x) for x in os.environ.get("RETROINGEST_RETRY_DELAYS", "2,10").split(",")]
RETRY = dict(retries=len(RETRY_DELAYS), retry_delay_seconds=RETRY_DELAYS, retry_condition_fn=_retryable,
             cache_policy=NO_CACHE)


@task(**RETRY)
def copy_from_watch(root: str, archive_dir: str) -> dict[str, Any]:
    """Copy new activity files from one mounted watch into the archive (read-only on the watch)."""
    vol = watch_source.volume_at(Path(root))
    if vol is None:
        raise SourceError(root, "watch no longer mounted", reason_code="vanished")
    rep = watch_source.copy_new(vol, archive_dir)
    if rep.errors:
        raise SourceError(root, f"{len(rep.errors)} file(s) not copied, first: {rep.errors[0][0]}: {rep.errors[0][1]}",
                          reason_code="copy_failed")
    return {"volume": vol.volume_id, "copied": len(rep.copied), "already": rep.already}


@task(**RETRY)
def list_source(root: str) -> list[tuple[str, int, float | None]]:
    """(label, size, mtime) of every candidate file under one source root: folder, zip, file or URL."""
    return [(i.label, i.size_bytes, i.mtime) for i in discover([root])]


@task(cache_policy=NO_CACHE)
def plan(listed: list[tuple[str, int, float | None]], warehouse_path: str) -> tuple[list[tuple[str, str | None]], int]:
    """Drop files stored with the same path, size and mtime; returns [(label, previous sha)] and #unchanged."""
    known = ingest.read_known(Path(warehouse_path))
    todo, n_unchanged, seen = [], 0, set()
    for label, size, mtime in listed:
        if label in seen:
            continue
        seen.add(label)
        if ingest.unchanged(SourceItem(label, size, mtime, opener=lambda: b""), known):
            n_unchanged += 1
        else:
            prev = known["by_path"].get(label)
            todo.append((label, prev[0] if prev else None))
    return todo, n_unchanged


@task(**RETRY)
def decode_file(label: str, stage_root: str, prev_sha: str | None = None) -> str | None:
    """Decode one file into its staging folder; returns that folder (None: content already stored)."""
    info = ingest.stage_item(item_for_label(label), Path(stage_root), prev_sha)
    return info.stage_dir if info else None


@task(cache_policy=NO_CACHE)
def load(warehouse_path: str, stage_dirs: list[str], n_unchanged: int, command: str, lock_wait_s: float) -> dict:
    """Load staged files through the one writer (then classify, metrics) and publish the snapshot."""
    res = ingest.load_and_finish(Path(warehouse_path), [StagedFile.read(d) for d in stage_dirs], n_unchanged,
                                 command, lock_wait_s=lock_wait_s)
    snap = warehouse.publish_snapshot(warehouse_path)
    return {"counts": res.counts, "n_files": res.n_files, "n_records": res.n_records, "import_id": res.import_id,
            "new_activity_ids": res.new_activity_ids, "quarantined": res.quarantined,
            "post_steps": res.post_steps, "snapshot": str(snap)}


@task(cache_policy=NO_CACHE)
def publish_report(title: str, summary: dict) -> str:
    """A markdown artifact: new activities, new backward segments, quarantined and deferred files."""
    md = report.markdown(title, summary, report.details(summary["snapshot"], summary["new_activity_ids"]))
    create_markdown_artifact(key="retroingest-import", markdown=md, description=title)
    return md


def _failure(future) -> str | None:
    """None when the task completed, else its error message (the flow goes on)."""
    future.wait()
    state = future.state
    if state.is_completed():
        return None
    try:
        future.result()
    except BaseException as exc:  # noqa: BLE001 - turned into a line of the report
        return str(exc)
    return state.message or state.name


def _import(roots: list[str], warehouse_path: Path, command: str, lock_wait_s: float,
            watches: list[dict] | None = None, deferred: list | None = None) -> dict:
    """discover -> decode (parallel) -> load -> report; shared by nightly_import and backfill."""
    logger = get_run_logger()
    deferred = list(deferred or [])
    listings = [(r, list_source.submit(r)) for r in roots]
    listed = []
    for root, fut in listings:
        err = _failure(fut)
        if err:
            deferred.append((root, err))
        else:
            listed += fut.result()
    todo, n_unchanged = plan(listed, str(warehouse_path))
    stage_root = ingest.staging_root(warehouse_path)
    stage_root.mkdir(parents=True, exist_ok=True)
    logger.info("%d file(s) to decode, %d unchanged", len(todo), n_unchanged)
    t0 = time.perf_counter()
    futures = decode_file.map([t[0] for t in todo], unmapped(str(stage_root)), [t[1] for t in todo]) if todo else []
    stage_dirs = []
    for (label, _), fut in zip(todo, futures):
        err = _failure(fut)
        if err:
            deferred.append((label, err))
        elif fut.result() is None:
            n_unchanged += 1
        else:
            stage_dirs.append(fut.result())
    t1 = time.perf_counter()
    summary = load(str(warehouse_path), stage_dirs, n_unchanged, command, lock_wait_s)
    summary.update(decoded=len(stage_dirs), deferred=deferred, watches=watches or [], roots=roots,
                   timings_s={"decode": round(t1 - t0, 3), "load": round(time.perf_counter() - t1, 3)})
    summary["report"] = publish_report(f"{command} {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC", summary)
    for where, why in deferred:
        logger.warning("deferred to the next run: %s: %s", where, why)
    return summary


def _warehouse(path: str | None) -> Path:
    return Path(path) if path else warehouse.default_path()


@flow(name="nightly-import", task_runner=_default_runner(), log_prints=True)
def nightly_import(warehouse_path: str | None = None, config_path: str | None = None,
                   import_wait_s: float | None = None) -> dict:
    """Copy new files from mounted watches, then import the archive, inboxes, exports and URLs."""
    cfg = config.load(config_path)
    src, pipe = config.sources(cfg), config.pipelines(cfg)
    if import_wait_s is not None:
        pipe["import_wait_s"] = import_wait_s
    wpath = _warehouse(warehouse_path)
    archive = Path(src["archive_dir"]).expanduser() if src["archive_dir"] else wpath.parent / "watch-archive"
    with warehouse.import_lock(wpath, wait_s=float(pipe["import_wait_s"])):
        watches, deferred = [], []
        if src["watch"]:
            roots = [str(v.root) for v in watch_source.find_watches(src["watch_mounts"])]
            for root, fut in [(r, copy_from_watch.submit(r, str(archive))) for r in roots]:
                err = _failure(fut)
                if err:
                    deferred.append((root, err))
                else:
                    watches.append(fut.result())
        local = [str(Path(p).expanduser()) for p in [*src["inbox"], *src["exports"]]]
        roots = ([str(archive)] if archive.exists() else []) + [p for p in local if Path(p).exists()] + src["urls"]
        deferred += [(p, "configured source does not exist") for p in local if not Path(p).exists()]
        return _import(roots, wpath, "nightly_import", float(pipe["import_wait_s"]), watches, deferred)


@flow(name="backfill", task_runner=_default_runner(), log_prints=True)
def backfill(paths: list[str], warehouse_path: str | None = None, import_wait_s: float = 600.0) -> dict:
    """Import whole export archives, folder trees or URLs (idempotent: unchanged files are skipped)."""
    wpath = _warehouse(warehouse_path)
    with warehouse.import_lock(wpath, wait_s=import_wait_s):
        return _import([str(p) for p in paths], wpath, "backfill", import_wait_s)


@task(cache_policy=NO_CACHE)
def rerun_post_steps(warehouse_path: str, lock_wait_s: float) -> dict[str, str]:
    """Classify and compute metrics again for every stored activity, then publish the snapshot."""
    out = ingest.reclassify(warehouse_path, lock_wait_s=lock_wait_s)
    warehouse.publish_snapshot(warehouse_path)
    return out


@flow(name="reclassify", log_prints=True)
def reclassify(warehouse_path: str | None = None, import_wait_s: float = 600.0) -> dict[str, str]:
    """Re-run classification and metrics over the whole warehouse (after a classifier or profile change)."""
    wpath = _warehouse(warehouse_path)
    with warehouse.import_lock(wpath, wait_s=import_wait_s):
        return rerun_post_steps(str(wpath), import_wait_s)


def _cli(argv: list[str] | None = None) -> int:
    """python -m pipelines.flows {nightly_import,backfill,reclassify} [PATHS...]: run one flow now."""
    ap = argparse.ArgumentParser(prog="python -m pipelines.flows", description="Run one retroingest flow now.")
    ap.add_argument("flow", choices=["nightly_import", "backfill", "reclassify"])
    ap.add_argument("paths", nargs="*", help="backfill: export zips, folders or URLs")
    ap.add_argument("--warehouse", default=None, help="DuckDB warehouse file [default: $RETROINGEST_WAREHOUSE]")
    ap.add_argument("--config", default=None, help="configuration file (nightly_import)")
    ap.add_argument("--wait", type=float, default=None, help="seconds to wait for another import [default: 600]")
    a = ap.parse_args(argv)
    wait = 600.0 if a.wait is None else a.wait
    try:
        if a.flow == "nightly_import":
            out = nightly_import(a.warehouse, a.config, a.wait)
        elif a.flow == "backfill":
            out = backfill(a.paths, a.warehouse, wait)
        else:
            out = reclassify(a.warehouse, wait)
    except WarehouseBusyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    out = {k: v for k, v in out.items() if k != "report"}
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(_cli())
