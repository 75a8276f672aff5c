"""End-to-end ingest: a generated archive of >= 2,000 FIT activities (~7 M records) into a fresh warehouse.

Usage: .venv/bin/python benchmarks/bench_e2e.py [--files 2048] [--workers 2] [--ref-files 16] [--no-post]

1. Templates: FIT files from the project simulator (``retroingest.simulate``, garmin-fit-sdk Encoder)
   plus 1.5-3 h steady runs (``bench_decode.synthetic_run``). Archive: ``--files`` copies cycling over
   the templates, each shifted to its own day (every date_time field moved by whole days, file
   CRC rewritten), so every file is a distinct activity with a distinct hash. All in a temp dir.
2. The whole archive through one call of ``retroingest.ingest.ingest`` (what ``retroingest ingest``
   and the nightly flow run) into a fresh warehouse; the total is that call's wall time, and the
   stage times come from ``IngestResult.timings_s``: decode (discover, read, hash, decode to
   staging, ``--workers`` processes), load (DuckDB), post steps (classify, metrics; ``--no-post``
   skips them), checkpoint, snapshot (the read-only copy published for dashboards).
3. The same stages on a subset of ``--ref-files`` files in one process, with the columnar reader
   and with the reference reader (fitparse, via ``decode.fit.default_reader``); the reference time
   for the whole archive is that subset's decode time scaled by records (divided by workers).
4. One new file: a further 10 h run, ingested alone into the loaded warehouse, and the nightly case
   of the whole folder again plus that file (every other file skipped as unchanged).
Peak RSS: VmHWM of this process (decode in-process and loads) and ``RUSAGE_CHILDREN`` ru_maxrss of
the decode workers (an upper bound: Linux carries the parent's RSS across exec).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_decode import synthetic_run  # noqa: E402
from retroingest import ingest as ing  # noqa: E402
from retroingest.decode import fit as fitmod  # noqa: E402
from retroingest.decode import fit_columnar as fc  # noqa: E402
from retroingest.sources import discover  # noqa: E402

DAY = 86_400


def vmhwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def datetime_positions(data: bytes) -> tuple[np.ndarray, int]:
    """Byte offsets of every little-endian uint32 date_time field, and the first record timestamp."""
    w = fc._walk(data)
    offs = np.frombuffer(w.offs, dtype=np.int64) if len(w.offs) else np.zeros(0, dtype=np.int64)
    ids = np.frombuffer(w.ids, dtype=np.int32) if len(w.ids) else np.zeros(0, dtype=np.int32)
    for start, count, stride, did in w.runs:
        offs = np.concatenate([offs, start + stride * np.arange(count)])
        ids = np.concatenate([ids, np.full(count, did, dtype=np.int32)])
    pos = []
    for d in w.defs:
        mesg = fc.MESSAGE_TYPES.get(d.plan.gnum)
        if mesg is None:
            continue
        rows = offs[ids == d.id]
        for (num, size, base), o in zip(d.plan.fields, d.plan.offsets):
            f = mesg.fields.get(num)
            if f is None or fc._type_name(f) not in ("date_time", "local_date_time"):
                continue
            if d.plan.endian != "<" or size != 4 or base.kind != "int" or f.subfields:
                raise ValueError("template has a date_time layout this patcher does not handle")
            pos.append(rows + o)
    pos = np.sort(np.concatenate(pos)) if pos else np.zeros(0, dtype=np.int64)
    vals = np.frombuffer(data, dtype=np.uint8)[pos[:, None] + np.arange(4)].copy().view("<u4")[:, 0]
    real = vals[(vals >= 0x10000000) & (vals != 0xFFFFFFFF)]
    return pos, int(real.min())


def shifted(data: bytes, pos: np.ndarray, delta_s: int) -> bytes:
    """The same file with every absolute date_time moved by delta_s seconds and the CRC rewritten."""
    buf = np.frombuffer(data, dtype=np.uint8).copy()
    idx = pos[:, None] + np.arange(4)
    vals = buf[idx].copy().view("<u4")[:, 0].astype(np.int64)
    ok = (vals >= 0x10000000) & (vals != 0xFFFFFFFF)
    vals[ok] += delta_s
    buf[idx] = vals.astype("<u4").view(np.uint8).reshape(-1, 4)
    end = int(buf[0]) + int(struct.unpack("<I", buf[4:8].tobytes())[0])
    buf[end:end + 2] = np.frombuffer(struct.pack("<H", fc.crc16(buf[:end])), dtype=np.uint8)
    return buf.tobytes()


def build_templates(tmp: Path, n_sim: int, n_long: int, seed: int) -> list[Path]:
    from retroingest.simulate.simulate import simulate

    files = [f.path for f in simulate(tmp / "sim", n_sim, seed) if f.format == "fit"]
    rng = np.random.default_rng(seed)
    for i in range(n_long):
        p = tmp / "sim" / f"steady_{i:02d}.fit"
        synthetic_run(p, hours=float(rng.uniform(1.5, 3.0)), seed=seed + i)
        files.append(p)
    return files


def build_archive(templates: list[Path], out: Path, n_files: int, base: dt.datetime) -> tuple[int, list[Path]]:
    """n_files shifted copies; returns the total record count and the written paths."""
    out.mkdir(parents=True)
    prepared = []
    for t in templates:
        data = t.read_bytes()
        pos, first = datetime_positions(data)
        n_rec = fc.read_messages_fast(data).messages["record"].height
        prepared.append((t.stem, data, pos, first, n_rec))
    base_fit = int(base.timestamp()) - 631_065_600
    total, paths = 0, []
    for i in range(n_files):
        stem, data, pos, first, n_rec = prepared[i % len(prepared)]
        # move the template's first day onto day i of the archive, keeping its time of day
        delta = (base_fit + i * DAY) - (first - first % DAY)
        p = out / f"a{i:05d}_{stem}.fit"
        p.write_bytes(shifted(data, pos, delta))
        total += n_rec
        paths.append(p)
    return total, paths


def cpu_s() -> float:
    """CPU seconds of this process plus its finished children (the decode workers)."""
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def run_pipeline(folder: Path, wpath: Path, workers: int, post: bool) -> dict:
    """One call of ``retroingest.ingest.ingest`` (what the CLI and the nightly flow run), with its stage timings."""
    t0, c0 = time.perf_counter(), cpu_s()
    res = ing.ingest([folder], wpath, workers=workers, run_post_steps=post, command="bench e2e")
    total, cpu = time.perf_counter() - t0, cpu_s() - c0
    con = duckdb.connect(str(wpath), read_only=True)
    try:
        decoders = dict(con.execute("SELECT decoder, count(*) FROM source_files WHERE import_id = ? "
                                    "AND decoder IS NOT NULL GROUP BY ALL", [res.import_id]).fetchall())
    finally:
        con.close()
    return {**{f"{k}_s": v for k, v in res.timings_s.items()}, "total_s": total, "cpu_s": cpu,
            "records": res.n_records, "counts": res.counts, "post": res.post_steps, "decoders": decoders}


def show(label: str, r: dict) -> None:
    rec = r["records"] or 0
    stages = " | ".join(f"{k[:-2]} {r.get(k, 0.0):6.1f} s" for k in ("decode_s", "load_s", "post_s", "checkpoint_s", "snapshot_s"))
    print(f"{label:34} files {sum(r['counts'].values()):5d} records {rec:9,d} | {stages} | total {r['total_s']:7.1f} s "
          f"(CPU {r['cpu_s']:.1f} s) | {r['counts']} {r['decoders']} {r['post']}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=2048)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--ref-files", type=int, default=16, help="subset size for the reference reader")
    ap.add_argument("--sim", type=int, default=80, help="simulator sessions used as templates")
    ap.add_argument("--long", type=int, default=20, help="1.5-3 h steady runs used as templates")
    ap.add_argument("--no-post", action="store_true", help="skip classification and metrics")
    ap.add_argument("--seed", type=int, default=70_001)
    args = ap.parse_args()
    print(f"# {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"workers {args.workers}, post steps {'off' if args.no_post else 'on'}, load average {os.getloadavg()}")
    tmp = Path(tempfile.mkdtemp(prefix="retroingest-bench-e2e-"))
    try:
        t = time.perf_counter()
        templates = build_templates(tmp, args.sim, args.long, args.seed)
        base = dt.datetime(2010, 1, 1, tzinfo=dt.timezone.utc)
        total, paths = build_archive(templates, tmp / "archive", args.files, base)
        mb = sum(p.stat().st_size for p in paths) / 1e6
        print(f"# archive: {len(paths)} FIT files from {len(templates)} templates, {total:,} records, "
              f"{mb:.0f} MB, built in {time.perf_counter() - t:.0f} s", flush=True)

        full = run_pipeline(tmp / "archive", tmp / "fast.duckdb", args.workers, not args.no_post)
        show(f"fast, {args.workers} workers, whole archive", full)
        rss_main, rss_children = vmhwm_mb(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

        # one new file: alone, then the nightly case (whole folder again + another new file)
        def new_run(folder: Path, name: str, day: int, seed: int) -> None:
            folder.mkdir(exist_ok=True)
            p = folder / name
            synthetic_run(p, hours=10.0, seed=seed)
            pos, first = datetime_positions(p.read_bytes())
            delta = (int(base.timestamp()) - 631_065_600 + day * DAY) - (first - first % DAY)
            p.write_bytes(shifted(p.read_bytes(), pos, delta))

        new_run(tmp / "new", "new-10h.fit", args.files + 5, args.seed + 999)
        one = run_pipeline(tmp / "new", tmp / "fast.duckdb", 1, not args.no_post)
        show("one new 10 h file, alone", one)
        new_run(tmp / "archive", "zz-new-10h.fit", args.files + 7, args.seed + 998)
        again = run_pipeline(tmp / "archive", tmp / "fast.duckdb", args.workers, not args.no_post)
        show("whole folder again + a new file", again)

        # same pipeline, one process, on a subset: columnar vs reference reader
        sub = tmp / "subset"
        sub.mkdir()
        step = max(1, len(paths) // args.ref_files)
        for p in paths[::step][: args.ref_files]:
            shutil.copy(p, sub / p.name)
        fast_sub = run_pipeline(sub, tmp / "sub-fast.duckdb", 1, not args.no_post)
        show("fast, 1 process, subset", fast_sub)
        orig = fitmod.default_reader
        fitmod.default_reader = lambda: fitmod.read_messages_fitparse
        try:
            ref_sub = run_pipeline(sub, tmp / "sub-ref.duckdb", 1, not args.no_post)
        finally:
            fitmod.default_reader = orig
        show("fitparse, 1 process, subset", ref_sub)
        ratio = ref_sub["decode_s"] / fast_sub["decode_s"]  # the decode stage alone, same files, same process
        est_decode = ref_sub["decode_s"] / ref_sub["records"] * full["records"] / args.workers
        est_total = est_decode + full["total_s"] - full["decode_s"]
        print(f"# subset decode stage: fitparse / fast = {ratio:.0f}x "
              f"({ref_sub['records'] / ref_sub['decode_s']:,.0f} vs {fast_sub['records'] / fast_sub['decode_s']:,.0f} rec/s per process)")
        print(f"# whole archive with fitparse (estimated from the subset, {args.workers} workers): decode "
              f"{est_decode / 60:.0f} min, total {est_total / 60:.0f} min; measured with the columnar reader: "
              f"decode {full['decode_s']:.0f} s, total {full['total_s']:.0f} s")
        print(f"# load average at the end: {os.getloadavg()}")
        print(f"# peak RSS: this process {rss_main:.0f} MB (loads run here), decode workers <= {rss_children:.0f} MB each")
        print(f"# targets (issue 7): archive end to end {full['total_s']:.1f} s (<= 60 s), peak RSS {rss_main:.0f} MB "
              f"(<= 2048 MB), one new file {one['total_s']:.2f} s (<= 1 s; "
              f"{one['total_s'] - one.get('snapshot_s', 0.0):.2f} s before the snapshot copy)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
