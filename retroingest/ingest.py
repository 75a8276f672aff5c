"""The ingest pipeline, as plain functions: discover → read+hash → decode to staging → load → post-steps.

The CLI's ``ingest`` and the Prefect flows call these same stage functions; flows add only
scheduling, retries and parallelism. :func:`ingest` streams: decoded files are loaded batch by
batch while later files are still decoding (:class:`DecodeStream`), so both cores stay busy and
staging never holds the whole archive. Its DuckDB write lock is held from the start of loading to
the end; readers meanwhile open the snapshot published after the previous import
(docs/CONCURRENCY.md). The flows decode in tasks first and take the write lock only to load.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import threading
import time

from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from retroingest import load, stage, warehouse
from retroingest.errors import RetroIngestError
from retroingest.sources import SourceItem, discover
from retroingest.stage import StagedFile

ProgressFn = Callable[[str, str], None]  # (label, what happened)


@dataclass
class IngestResult:
    counts: dict[str, int] = field(default_factory=dict)
    n_files: int = 0
    n_records: int = 0
    new_activity_ids: list[int] = field(default_factory=list)
    quarantined: list[tuple[str, str]] = field(default_factory=list)
    import_id: int | None = None
    post_steps: dict[str, str] = field(default_factory=dict)
    # wall seconds per stage: decode (the loader waiting for decoded files; decoding that overlaps
    # loading is not counted twice), load, post (classify, metrics), checkpoint, snapshot
    timings_s: dict[str, float] = field(default_factory=dict)


def read_known(warehouse_path: Path, wait_s: float = 0.0) -> dict:
    """Paths and hashes already in the warehouse (empty when it does not exist yet)."""
    if not Path(warehouse_path).exists():
        return {"by_path": {}, "sha_to_path": {}}
    con = warehouse.connect(warehouse_path, read_only=True, wait_s=wait_s)
    try:
        if warehouse.schema_version(con) == 0:
            return {"by_path": {}, "sha_to_path": {}}
        return load.known_files(con)
    finally:
        con.close()


def unchanged(item: SourceItem, known: dict) -> bool:
    """Same path, size and mtime as a file already stored: skip without reading it."""
    prev = known["by_path"].get(item.label)
    if not prev or item.mtime is None or prev[2] is None:
        return False
    return prev[1] == item.size_bytes and abs(prev[2] - item.mtime) < 1e-3


def prepare(item: SourceItem, stage_root: Path, known: dict, seen: dict[str, str]) -> tuple[str, object]:
    """Read and hash one item. Returns ('unchanged', None), ('staged', StagedFile) for files that need
    no decoding (duplicates, read errors) or ('decode', (label, data, size, mtime, sha))."""
    if unchanged(item, known):
        return "unchanged", None
    try:
        data = item.read()
    except RetroIngestError as exc:
        info = StagedFile(label=item.label, sha256=stage.sha256_hex(item.label.encode()), size_bytes=item.size_bytes,
                          mtime=item.mtime, status="quarantined", reason=exc.reason, reason_code=exc.reason_code)
        return "staged", stage.write_note(stage_root, info)
    sha = stage.sha256_hex(data)
    prev = known["by_path"].get(item.label)
    if prev and prev[0] == sha:
        return "unchanged", None
    first = known["sha_to_path"].get(sha) or seen.get(sha)
    if first and first != item.label:
        info = StagedFile(label=item.label, sha256=sha, size_bytes=item.size_bytes, mtime=item.mtime,
                          status="duplicate", reason=f"exact copy of {first}", reason_code="exact_duplicate")
        return "staged", stage.write_note(stage_root, info)
    seen.setdefault(sha, item.label)
    return "decode", (item.label, data, item.size_bytes, item.mtime, sha)


def _decode_job(args: tuple) -> StagedFile:
    stage_root, label, data, size, mtime, sha = args
    return stage.write_stage(Path(stage_root), label, data, size, mtime, sha)


class DecodeStream:
    """Staged files in discovery order, each yielded as soon as it (and every file before it) is decoded.

    Iterating it reads and hashes each item in this process (exact duplicates and unchanged files
    need no decoding) and decodes the rest in ``workers`` spawned processes. Up to
    ``max_in_flight`` files (and ``max_in_flight_bytes`` of their content) are read ahead of the
    consumer: enough for the workers to keep decoding while the loader writes a whole batch,
    few enough that memory and staging stay bounded however large the archive.
    ``n_unchanged`` counts the files skipped as unchanged; it is final once the iteration ends.
    """

    def __init__(self, items: Iterable[SourceItem], stage_root: Path, known: dict, workers: int = 1,
                 progress: ProgressFn | None = None, max_in_flight: int = 256,
                 max_in_flight_bytes: int = 256 * 2**20):
        self.items, self.stage_root, self.known = items, Path(stage_root), known
        self.workers, self.progress = workers, progress
        self.max_in_flight, self.max_in_flight_bytes = max_in_flight, max_in_flight_bytes
        self.n_unchanged = 0
        self.wait_s = 0.0  # wall time the consumer spent waiting for the next staged file

    def _note(self, label: str, what: str) -> None:
        if self.progress:
            self.progress(label, what)

    def __iter__(self) -> Iterator[StagedFile]:
        produce = self._produce()
        while True:
            t0 = time.perf_counter()
            try:
                info = next(produce)
            except StopIteration:
                return
            finally:
                self.wait_s += time.perf_counter() - t0
            yield info

    def _produce(self) -> Iterator[StagedFile]:
        seen: dict[str, str] = {}
        pending: deque = deque()  # StagedFile (ready) or Future, in discovery order
        sizes: deque = deque()    # bytes read for each pending entry
        first_job = None  # decoded in this process if it turns out to be the only one
        pool = None
        try:
            for item in self.items:
                kind, payload = prepare(item, self.stage_root, self.known, seen)
                if kind == "unchanged":
                    self.n_unchanged += 1
                    self._note(item.label, "unchanged")
                    continue
                if kind == "staged":
                    self._note(item.label, payload.status)
                    entry = payload
                elif self.workers <= 1:
                    entry = self._finish(_decode_job((str(self.stage_root), *payload)))
                elif first_job is None and pool is None:
                    entry = first_job = (str(self.stage_root), *payload)
                else:
                    if pool is None:
                        # spawn, not fork: forking a process whose Polars thread pool is running deadlocks the children
                        pool = ProcessPoolExecutor(max_workers=self.workers,
                                                   mp_context=multiprocessing.get_context("spawn"))
                        pending = deque(pool.submit(_decode_job, p) if p is first_job else p for p in pending)
                        first_job = None
                    entry = pool.submit(_decode_job, (str(self.stage_root), *payload))
                pending.append(entry)
                sizes.append(len(payload[1]) if kind == "decode" else 0)
                while pending and (len(pending) > self.max_in_flight or sum(sizes) > self.max_in_flight_bytes
                                   or not isinstance(pending[0], Future) or pending[0].done()):
                    if pending[0] is first_job:
                        break  # wait: a second job decides whether a pool is worth starting
                    sizes.popleft()
                    yield self._resolve(pending.popleft())
            while pending:
                head = pending.popleft()
                if head is first_job:
                    head = self._finish(_decode_job(head))
                yield self._resolve(head)
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)

    def _resolve(self, head) -> StagedFile:
        if isinstance(head, Future):
            return self._finish(head.result())
        return head

    def _finish(self, info: StagedFile) -> StagedFile:
        self._note(info.label, info.status)
        return info


def decode_all(items: Iterable[SourceItem], stage_root: Path, known: dict, workers: int = 1,
               progress: ProgressFn | None = None) -> tuple[list[StagedFile], int]:
    """Decode every new item into staging; returns the staged files in discovery order and the
    number of unchanged files skipped. (:class:`DecodeStream` without the streaming.)"""
    stream = DecodeStream(items, stage_root, known, workers, progress)
    staged = list(stream)
    return staged, stream.n_unchanged


PostStep = Callable[..., object]


def post_load_steps() -> list[tuple[str, PostStep]]:
    """Steps run on newly loaded primary activities: classification, then equivalence metrics.

    They are looked up at run time so that the ingest path works before those stages exist.
    """
    steps: list[tuple[str, PostStep]] = []
    try:
        from retroingest.classify import classify_activities
        steps.append(("classify", classify_activities))
    except ImportError:
        pass
    try:
        from retroingest.metrics import compute_equivalence
        steps.append(("metrics", compute_equivalence))
    except ImportError:
        pass
    return steps


def _warm_post_steps() -> threading.Thread | None:
    """Load the classifier's compiled kernels (numba's disk cache, ~0.4 s per process) in a thread
    while the loader writes: DuckDB releases the GIL, so a one-file import does not pay it twice."""
    try:
        from retroingest.classify.kernels import warm_up
    except ImportError:
        return None

    def run() -> None:
        try:
            warm_up()
        except Exception:  # only a head start: the post step itself reports any real failure
            pass

    thread = threading.Thread(target=run, name="retroingest-warm-up", daemon=True)
    thread.start()
    return thread


def load_and_finish(warehouse_path: Path, staged: Iterable[StagedFile] | DecodeStream, n_unchanged: int | None,
                    command: str, progress: ProgressFn | None = None, run_post_steps: bool = True,
                    lock_wait_s: float = 0.0) -> IngestResult:
    """Hold the write lock: record the import, load staged files, run post-load steps.

    ``staged`` may be a :class:`DecodeStream`: batches are then loaded while later files decode,
    and ``n_unchanged`` (None) is taken from the stream once it is exhausted.
    """
    con = warehouse.connect(warehouse_path, wait_s=lock_wait_s)
    result = IngestResult()
    try:
        import_id = load.next_import_id(con)
        started = dt.datetime.now(dt.timezone.utc)
        con.execute("INSERT INTO imports (import_id, started_at, command) VALUES (?, ?, ?)",
                    [import_id, started, command])

        def done(info: StagedFile) -> None:
            stage.clear(info.stage_dir)

        warming = _warm_post_steps() if run_post_steps else None
        t0 = time.perf_counter()
        summary = load.load_staged(con, staged, import_id, on_file=done)
        if warming:
            warming.join()
        waited = staged.wait_s if isinstance(staged, DecodeStream) else 0.0
        result.timings_s["decode"] = waited  # decoding not overlapped with loading
        result.timings_s["load"] = time.perf_counter() - t0 - waited
        if n_unchanged is None:
            n_unchanged = staged.n_unchanged
        result.n_files = sum(summary.counts.values()) + n_unchanged
        summary.counts["unchanged"] = summary.counts.get("unchanged", 0) + n_unchanged
        result.counts = summary.counts
        result.n_records = summary.n_records
        result.new_activity_ids = summary.new_activity_ids
        result.quarantined = summary.quarantined
        result.import_id = import_id
        # a killed import may have committed batches but not run its post steps: finish them here
        resumed_imports, resumed_ids = unfinished_post_steps(con, import_id) if run_post_steps else ([], [])
        post_ids = resumed_ids + [a for a in summary.new_activity_ids if a not in set(resumed_ids)]
        t0 = time.perf_counter()
        if run_post_steps and post_ids:
            for name, fn in post_load_steps():
                try:
                    fn(con, post_ids)
                    result.post_steps[name] = "ok"
                except Exception as exc:  # data is loaded; a failing post step is reported, not fatal
                    result.post_steps[name] = f"failed: {type(exc).__name__}: {exc}"
        result.timings_s["post"] = time.perf_counter() - t0
        c = summary.counts
        con.execute(
            "UPDATE imports SET finished_at = ?, n_files = ?, n_ingested = ?, n_salvaged = ?, n_duplicate = ?, "
            "n_skipped = ?, n_quarantined = ?, n_unchanged = ?, n_records = ? WHERE import_id = ?",
            [dt.datetime.now(dt.timezone.utc), result.n_files, c.get("ingested", 0), c.get("salvaged", 0),
             c.get("duplicate", 0), c.get("skipped", 0), c.get("quarantined", 0), c.get("unchanged", 0),
             summary.n_records, import_id])
        try:  # dashboards read v_records_public: keep its zones as configured now
            from retroingest import config as config_mod
            from retroingest.privacy import sync_zones
            sync_zones(con, config_mod.privacy_zones())
        except RetroIngestError as exc:
            result.post_steps["privacy zones"] = f"failed: {exc}"
        if resumed_imports:
            con.execute("UPDATE imports SET finished_at = ?, command = command || ? WHERE list_contains(?, import_id)",
                        [dt.datetime.now(dt.timezone.utc), f" (interrupted; completed by import {import_id})",
                         resumed_imports])
        t0 = time.perf_counter()
        con.execute("CHECKPOINT")
    finally:
        con.close()
    result.timings_s["checkpoint"] = time.perf_counter() - t0
    return result


def unfinished_post_steps(con, import_id: int) -> tuple[list[int], list[int]]:
    """Earlier imports that never finished (killed after loading some batches), and their primary
    activities in load order: the post steps (classify, metrics) still owe them a run."""
    imports = [r[0] for r in con.execute(
        "SELECT import_id FROM imports WHERE finished_at IS NULL AND import_id <> ? ORDER BY 1", [import_id]).fetchall()]
    if not imports:
        return [], []
    ids = [r[0] for r in con.execute(
        "SELECT a.activity_id FROM activities a JOIN source_files f USING (file_id) "
        "WHERE list_contains(?, f.import_id) AND a.duplicate_of IS NULL ORDER BY f.import_id, f.path, a.session_index",
        [imports]).fetchall()]
    return imports, ids


def staging_root(warehouse_path: Path) -> Path:
    """Staging lives beside the warehouse so a crashed run's work can be found and completed."""
    return Path(str(warehouse_path) + ".staging")


def ingest(paths: Sequence[str | os.PathLike], warehouse_path: str | Path | None = None, *, workers: int | None = None,
           progress: ProgressFn | None = None, command: str = "cli ingest", run_post_steps: bool = True,
           lock_wait_s: float = 0.0, snapshot: bool = True) -> IngestResult:
    """Ingest files, folders, .gz files and zip archives into the warehouse. Idempotent.

    The whole run holds the import lock (a second import waits ``lock_wait_s`` or fails with
    WarehouseBusyError); readers meanwhile use the snapshot published after the previous import
    (docs/CONCURRENCY.md), and a fresh snapshot is published at the end.
    """
    wpath = Path(warehouse_path) if warehouse_path else warehouse.default_path()
    wpath.parent.mkdir(parents=True, exist_ok=True)
    workers = workers or min(2, os.cpu_count() or 1)
    root = staging_root(wpath)
    with warehouse.import_lock(wpath, wait_s=lock_wait_s):
        root.mkdir(parents=True, exist_ok=True)
        known = read_known(wpath, wait_s=lock_wait_s)
        stream = DecodeStream(discover(paths), root, known, workers=workers, progress=progress)
        result = load_and_finish(wpath, stream, None, command, progress, run_post_steps, lock_wait_s)
        if snapshot:
            t0 = time.perf_counter()
            warehouse.publish_snapshot(wpath)
            result.timings_s["snapshot"] = time.perf_counter() - t0
    try:
        root.rmdir()
    except OSError:
        pass
    return result


def stage_item(item: SourceItem, stage_root: Path, prev_sha: str | None = None) -> StagedFile | None:
    """Read, hash and decode one item into staging (one parallel unit of work; no warehouse access).

    Returns None when the content equals ``prev_sha`` (already stored under this label). A
    retryable read error (:class:`SourceError`: unplugged watch, remote timeout) is raised so the
    caller can retry it later; any other read error is staged as quarantined.
    """
    try:
        data = item.read()
    except RetroIngestError as exc:
        if exc.retryable:
            raise
        info = StagedFile(label=item.label, sha256=stage.sha256_hex(item.label.encode()), size_bytes=item.size_bytes,
                          mtime=item.mtime, status="quarantined", reason=exc.reason, reason_code=exc.reason_code)
        return stage.write_note(stage_root, info)
    sha = stage.sha256_hex(data)
    if sha == prev_sha:
        return None
    return stage.write_stage(stage_root, item.label, data, item.size_bytes, item.mtime, sha)


def reclassify(warehouse_path: str | Path | None = None, activity_ids: Sequence[int] | None = None,
               lock_wait_s: float = 0.0) -> dict[str, str]:
    """Re-run the post-load steps (classify, metrics) on stored primary activities (all by default)."""
    con = warehouse.connect(warehouse_path, wait_s=lock_wait_s)
    out: dict[str, str] = {}
    try:
        ids = list(activity_ids) if activity_ids is not None else [r[0] for r in con.execute(
            "SELECT activity_id FROM activities WHERE duplicate_of IS NULL ORDER BY activity_id").fetchall()]
        for name, fn in post_load_steps():
            try:
                fn(con, ids)
                out[name] = "ok"
            except Exception as exc:  # reported, like in load_and_finish
                out[name] = f"failed: {type(exc).__name__}: {exc}"
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return out





