"""Classifier throughput: records per second on one core, for a batch of synthetic activities.

Usage: .venv/bin/python benchmarks/bench_classify.py [--records 1000000] [--repeat 3]

Builds a batch of synthetic sessions (retroingest.classify.synth, every session kind) until it
holds the requested number of records, then times ``retroingest.classify.classify`` on the whole
batch (features, adaptation, emissions, Viterbi, segments) and prints records/s. Pin one core
with ``taskset -c 0`` to be strict about "one core"; NumPy here is single-threaded anyway.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("POLARS_MAX_THREADS", "1")

import polars as pl  # noqa: E402

from retroingest.classify import classify  # noqa: E402
from retroingest.classify.synth import KINDS, session  # noqa: E402


def build(n_records: int) -> pl.DataFrame:
    """Concatenate synthetic sessions (distinct activity ids) up to n_records."""
    parts, total, i = [], 0, 0
    while total < n_records:
        df, _ = session(KINDS[i % len(KINDS)], seed=i)
        parts.append(df.with_columns(pl.lit(i, pl.Int64).alias("activity_id")))
        total += df.height
        i += 1
    return pl.concat(parts).head(n_records)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    batch = build(args.records)
    n_act = batch["activity_id"].n_unique()
    best = float("inf")
    for _ in range(args.repeat):
        t = time.perf_counter()
        res = classify(batch)
        best = min(best, time.perf_counter() - t)
    print(f"{batch.height:,} records in {n_act} activities, {res.segments.height:,} segments: "
          f"best of {args.repeat}: {best:.3f} s -> {batch.height / best:,.0f} records/s")


if __name__ == "__main__":
    main()
