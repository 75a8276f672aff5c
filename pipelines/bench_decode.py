"""Decode throughput, 1 vs 2 workers, per task runner (numbers in docs/SCALING.md).

    PYTHONPATH=. python -m pipelines.bench_decode [N_FILES]

Runs the backfill flow over N corpus FIT files (20-300 kB) into a fresh warehouse for each
runner, and the library's own process pool (ingest.decode_all) without Prefect, and prints
files/s and MB/s. Uses an ephemeral Prefect server; set PREFECT_HOME to a scratch folder.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("RETROINGEST_CORPUS", REPO.parent / "shared" / "corpus"))


def files(n: int) -> list[Path]:
    fits = sorted((CORPUS / "fit").glob("*.fit"), key=lambda p: p.name)
    return [f for f in fits if 20_000 < f.stat().st_size < 300_000][:n]


def main(n: int = 30) -> None:
    from pipelines.flows import backfill
    from pipelines.runners import make_task_runner
    from retroingest import ingest
    from retroingest.sources import discover

    chosen = files(n)
    mb = sum(f.stat().st_size for f in chosen) / 1e6
    inbox = Path(tempfile.mkdtemp(prefix="bench-inbox-"))
    for f in chosen:
        (inbox / f.name).write_bytes(f.read_bytes())
    print(f"{len(chosen)} files, {mb:.1f} MB; {os.cpu_count()} cores; load {os.getloadavg()[0]:.1f}")
    rows = []
    for workers in (1, 2):
        root = Path(tempfile.mkdtemp(prefix="bench-stage-"))
        t = time.perf_counter()
        ingest.decode_all(discover([inbox]), root, {"by_path": {}, "sha_to_path": {}}, workers=workers)
        rows.append((f"library decode_all, {workers} process(es), no Prefect, decode only", time.perf_counter() - t))
    for kind in ("thread", "process", "dask"):
        for workers in (1, 2):
            if kind == "dask":
                try:
                    import prefect_dask  # noqa: F401
                except ImportError:
                    continue
            wh = Path(tempfile.mkdtemp(prefix="bench-wh-")) / "retro.duckdb"
            flow = backfill.with_options(task_runner=make_task_runner(kind, workers))
            t = time.perf_counter()
            out = flow([str(inbox)], str(wh))
            rows.append((f"backfill flow, {kind} x{workers} (decode+load+classify+metrics)", time.perf_counter() - t))
            assert out["decoded"] == len(chosen), out["counts"]
    for what, secs in rows:
        print(f"{what:<75} {secs:6.1f} s  {len(chosen) / secs:5.2f} files/s  {mb / secs:5.2f} MB/s")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
