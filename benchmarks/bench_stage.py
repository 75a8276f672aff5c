"""Decode stage CPU: records per CPU-second of ``retroingest.stage.write_stage`` on archive-sized FIT files.

Usage: .venv/bin/python benchmarks/bench_stage.py [--sim 80] [--long 20] [--repeat 5] [--files DIR]

``write_stage`` is the whole per-file unit of work of the decode step: SHA-256, read (columnar FIT
reader), unit rules, canonical form, summaries, laps, three staging Parquet files and file.json.
The files are the templates of ``bench_e2e.py``'s archive (same mix, so the same ~3,400 records
per file on average): the FIT files of ``--sim`` simulator sessions (``retroingest.simulate``) plus
``--long`` steady 1.5-3 h runs (``bench_decode.synthetic_run``), written to a temp dir (or taken from
``--files``: every ``*.fit`` below it). Timing is ``time.process_time`` (CPU of this process, so other load on the machine
matters less than for wall time) around staging every file into a fresh folder; bytes are read
before the clock starts, one untimed pass warms caches; the best and the median of ``--repeat``
passes are printed. The reader's share is the same files through ``read_messages_fast`` alone.

To compare with an older commit, check it out as a worktree and run this script on the same
files with ``PYTHONPATH=<worktree>`` (the line ``code:`` says which tree was measured).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.append(str(REPO))                  # after $PYTHONPATH, so an older worktree can be measured
sys.path.append(str(REPO / "benchmarks"))

import retroingest  # noqa: E402
from bench_decode import synthetic_run  # noqa: E402
from retroingest import stage  # noqa: E402
from retroingest.decode.fit_columnar import read_messages_fast  # noqa: E402


def make_files(out: Path, n_sim: int, n_long: int, seed: int) -> list[Path]:
    """Simulator FIT files plus steady runs of 1.5-3 h (1 Hz), all written into ``out``."""
    from retroingest.simulate.simulate import simulate

    files = [f.path for f in simulate(out / "sim", n_sim, seed) if f.format == "fit"]
    rng = np.random.default_rng(seed)
    for i in range(n_long):
        p = out / f"steady_{i:02d}.fit"
        synthetic_run(p, hours=float(rng.uniform(1.5, 3.0)), seed=seed + i)
        files.append(p)
    return files


def stage_pass(datas: list[tuple[str, bytes]], root: Path) -> tuple[float, int]:
    """CPU seconds to stage every file into ``root``, and the records staged."""
    c0 = time.process_time()
    n = 0
    for label, data in datas:
        info = stage.write_stage(root, label, data, len(data), None)
        if info.status not in ("ok", "salvaged"):
            raise SystemExit(f"{label}: {info.status} {info.reason}")
        n += info.n_records
    return time.process_time() - c0, n


def reader_pass(datas: list[tuple[str, bytes]]) -> float:
    c0 = time.process_time()
    for label, data in datas:
        read_messages_fast(data, label)
    return time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim", type=int, default=80, help="simulator sessions (their FIT files are used)")
    ap.add_argument("--long", type=int, default=20, help="steady 1.5-3 h runs")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=70_001)
    ap.add_argument("--files", type=Path, help="use every *.fit below this folder instead of generating")
    ap.add_argument("--keep", type=Path, help="generate the files into this folder and keep them")
    args = ap.parse_args()
    print(f"# {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"load average {os.getloadavg()}")
    print(f"# code: {Path(retroingest.__file__).parent}")
    tmp = Path(tempfile.mkdtemp(prefix="retroingest-bench-stage-"))
    try:
        if args.files:
            paths = sorted(args.files.rglob("*.fit"))
        else:
            paths = make_files(args.keep or tmp / "in", args.sim, args.long, args.seed)
        datas = [(str(p), p.read_bytes()) for p in paths]
        stage_pass(datas, tmp / "warm")
        reader_pass(datas)
        stage_cpu, reader_cpu = [], []
        n_rec = 0
        for r in range(args.repeat):
            c, n_rec = stage_pass(datas, tmp / f"pass{r}")
            stage_cpu.append(c)
            shutil.rmtree(tmp / f"pass{r}")
            reader_cpu.append(reader_pass(datas))
        best, med = min(stage_cpu), statistics.median(stage_cpu)
        rbest, rmed = min(reader_cpu), statistics.median(reader_cpu)
        print(f"# {len(datas)} FIT files, {n_rec:,} records ({n_rec / len(datas):,.0f} per file), "
              f"{sum(len(d) for _, d in datas) / 1e6:.1f} MB, {args.repeat} passes")
        print(f"decode stage (write_stage): best {best:.3f} CPU-s = {n_rec / best:,.0f} records/CPU-s "
              f"({best / len(datas) * 1e3:.2f} ms/file); median {med:.3f} CPU-s = {n_rec / med:,.0f} records/CPU-s")
        print(f"reader alone (read_messages_fast): best {rbest:.3f} CPU-s = {n_rec / rbest:,.0f} records/CPU-s "
              f"({rbest / len(datas) * 1e3:.2f} ms/file); median {rmed:.3f} CPU-s")
        print(f"reader share of the stage: {rbest / best:.0%} (best passes), {rmed / med:.0%} (medians)")
        print(f"# load average at the end: {os.getloadavg()}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
