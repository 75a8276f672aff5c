"""Decode throughput, 1 vs 2 workers, per task runner (numbers in docs/SCALING.md).

    PYTHONPATH=. python -m pipelines.bench_decode [N_FILES] [REPEATS]

Runs the backfill flow over N corpus FIT files (under 300 kB) into a fresh warehouse for each
runner and worker count, after one warm-up run (so the temporary Prefect server's start is
not counted), best of REPEATS. Reports the decode phase (fan-out to staging) and the load phase
(one writer: load, classify, metrics) separately, plus the library's own process pool without
Prefect. Set PREFECT_HOME to a scratch folder.
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
    return [f for f in fits if 2_000 < f.stat().st_size < 300_000][:n]


def main(n: int = 60, repeats: int = 2) -> None:
    from pipelines.flows import backfill
    from pipelines.runners import make_task_runner
    from retroingest import ingest
    from retroingest.sources import discover

    chosen = files(n)
    mb = sum(f.stat().st_size for f in chosen) / 1e6
    inbox = Path(tempfile.mkdtemp(prefix="bench-inbox-"))
    for f in chosen:
        (inbox / f.name).write_bytes(f.read_bytes())
    print(f"{len(chosen)} files, {mb:.1f} MB; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}", flush=True)
    backfill([str(inbox)], str(Path(tempfile.mkdtemp()) / "warm.duckdb"))  # starts the temporary server
    for workers in (1, 2):
        best = float("inf")
        for _ in range(repeats):
            root = Path(tempfile.mkdtemp(prefix="bench-stage-"))
            t = time.perf_counter()
            ingest.decode_all(discover([inbox]), root, {"by_path": {}, "sha_to_path": {}}, workers=workers)
            best = min(best, time.perf_counter() - t)
        print(f"library decode_all, {workers} process(es), no Prefect: decode {best:5.1f} s "
              f"({len(chosen) / best:5.1f} files/s)", flush=True)
    for kind in ("thread", "process", "dask"):
        if kind == "dask":
            try:
                import prefect_dask  # noqa: F401
            except ImportError:
                continue
        for workers in (1, 2):
            runs = []
            for _ in range(repeats):
                wh = Path(tempfile.mkdtemp(prefix="bench-wh-")) / "retro.duckdb"
                t = time.perf_counter()
                out = backfill.with_options(task_runner=make_task_runner(kind, workers))([str(inbox)], str(wh))
                runs.append((time.perf_counter() - t, out["timings_s"]["decode"], out["timings_s"]["load"]))
                assert out["decoded"] == len(chosen), out["counts"]
            total, dec, load = min(runs)
            print(f"backfill flow, {kind:<7} x{workers}: total {total:5.1f} s, decode {dec:5.1f} s "
                  f"({len(chosen) / dec:5.1f} files/s), load+classify+metrics {load:5.1f} s; "
                  f"load average {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
