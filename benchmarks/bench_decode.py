"""FIT decoding speed: the columnar reader vs the fitparse reference reader, measured in the same run.

Usage: .venv/bin/python benchmarks/bench_decode.py [--files 4] [--repeat 7] [--ref-repeat 1]

Decodes the largest FIT files of the corpus (``$RETROINGEST_CORPUS`` or ``../shared/corpus``) and a
generated 10-hour, 1 Hz running file (garmin-fit-sdk Encoder, written to a temp dir, deleted after)
with both readers, checks that the record frames are equal, and prints records/s, the ratio, and
the peak RSS of one decode in a fresh process (VmHWM; baseline = imports + reading bytes).
Timing: ``time.perf_counter`` around ``read_messages_*(bytes)``, median of the repeats, imports and
file reading outside the clock. The machine is noisy, so compare ratios from the same run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
from polars.testing import assert_frame_equal

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from retroingest.decode.fit import read_messages_fitparse  # noqa: E402
from retroingest.decode.fit_columnar import DECODER, read_messages_fast  # noqa: E402

READERS = {"fast": read_messages_fast, "fitparse": read_messages_fitparse}


def corpus_dir() -> Path:
    return Path(os.environ.get("RETROINGEST_CORPUS", REPO.parent / "shared" / "corpus"))


def synthetic_run(path: Path, hours: float = 10.0, seed: int = 1) -> int:
    """Write a 1 Hz running activity with laps every 10 min through garmin-fit-sdk's Encoder."""
    from garmin_fit_sdk import Encoder
    from garmin_fit_sdk.profile import Profile

    mesg = Profile["mesg_num"]
    rng = np.random.default_rng(seed)
    n = int(hours * 3600)
    t0 = int(dt.datetime(2026, 5, 1, 6, 0, tzinfo=dt.timezone.utc).timestamp()) - 631_065_600
    t = np.arange(n)
    speed = 3.2 + 0.4 * np.sin(t / 900) + rng.normal(0, 0.05, n)
    dist = np.cumsum(speed)
    heading = np.cumsum(rng.normal(0, 0.02, n))
    lat = 47.0 + np.cumsum(speed * np.cos(heading)) / 111_195
    lon = 8.0 + np.cumsum(speed * np.sin(heading)) / (111_195 * np.cos(np.radians(47.0)))
    alt = 450 + 30 * np.sin(t / 1500)
    hr = np.clip(np.round(140 + 10 * np.sin(t / 1200) + rng.normal(0, 2, n)), 60, 200)
    strides = 85 + rng.normal(0, 1.5, n)
    semi = 2**31 / 180
    enc = Encoder()
    enc.on_mesg(mesg["FILE_ID"], {"type": "activity", "manufacturer": "garmin", "product": 3113,
                                  "serial_number": 3_900_000_001, "time_created": t0})
    enc.on_mesg(mesg["EVENT"], {"timestamp": t0, "event": "timer", "event_type": "start"})
    lap_start = 0
    for i in range(n):
        frac = round(float(strides[i] - np.floor(strides[i])) * 128) / 128
        enc.on_mesg(mesg["RECORD"], {
            "timestamp": t0 + i, "position_lat": int(round(lat[i] * semi)), "position_long": int(round(lon[i] * semi)),
            "distance": round(float(dist[i]), 2), "enhanced_speed": round(float(speed[i]), 3),
            "enhanced_altitude": round(float(alt[i]), 1), "heart_rate": int(hr[i]),
            "cadence": int(np.floor(strides[i])), "fractional_cadence": frac, "power": int(250 + 20 * np.sin(i / 300)),
            "vertical_oscillation": 85.0, "stance_time": 245.0, "vertical_ratio": 8.1, "step_length": 1150.0,
            "temperature": 18,
        })
        if (i + 1) % 600 == 0 or i == n - 1:
            enc.on_mesg(mesg["LAP"], {"timestamp": t0 + i, "start_time": t0 + lap_start, "event": "lap",
                                      "event_type": "stop", "sport": "running",
                                      "total_elapsed_time": float(i - lap_start + 1),
                                      "total_timer_time": float(i - lap_start + 1),
                                      "total_distance": round(float(dist[i] - dist[lap_start]), 2)})
            lap_start = i + 1
    enc.on_mesg(mesg["SESSION"], {"timestamp": t0 + n - 1, "start_time": t0, "event": "session",
                                  "event_type": "stop", "sport": "running", "sub_sport": "generic",
                                  "total_elapsed_time": float(n), "total_timer_time": float(n),
                                  "total_distance": round(float(dist[-1]), 2), "num_laps": -(-n // 600)})
    enc.on_mesg(mesg["ACTIVITY"], {"timestamp": t0 + n - 1, "num_sessions": 1, "type": "manual",
                                   "event": "activity", "event_type": "stop", "local_timestamp": t0 + n - 1 + 7200})
    path.write_bytes(enc.close())
    return n


def peak_rss_mb(reader: str, path: Path) -> float:
    """Peak RSS (MB) of a fresh process that imports everything, reads the bytes and decodes once."""
    out = subprocess.run([sys.executable, __file__, "--rss-child", reader, str(path)],
                         check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def _rss_child(reader: str, path: str) -> None:
    data = Path(path).read_bytes()
    if reader != "baseline":
        READERS[reader](data, path)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss of the forking parent across exec
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            print(int(line.split()[1]) / 1024)
            return
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def timed(fn, data: bytes, repeat: int) -> tuple[float, object]:
    times, res = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        res = fn(data)
        times.append(time.perf_counter() - t)
    return statistics.median(times), res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=4, help="largest corpus FIT files to include")
    ap.add_argument("--repeat", type=int, default=7, help="repeats for the fast reader (median)")
    ap.add_argument("--ref-repeat", type=int, default=1, help="repeats for fitparse (slow)")
    ap.add_argument("--hours", type=float, default=10.0, help="length of the generated run")
    ap.add_argument("--no-rss", action="store_true", help="skip the fresh-process RSS measurements")
    ap.add_argument("--rss-child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        _rss_child(*args.rss_child)
        return

    print(f"# {platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, polars {pl.__version__}, numpy {np.__version__}, "
          f"load average {os.getloadavg()}")
    files: list[tuple[str, Path]] = []
    fit_dir = corpus_dir() / "fit"
    if fit_dir.is_dir():
        big = sorted(fit_dir.iterdir(), key=lambda p: -p.stat().st_size)[: args.files]
        files += [(p.name, p) for p in big]
    else:
        print(f"# corpus not found at {fit_dir}; only the generated file is measured")
    with tempfile.TemporaryDirectory() as tmp:
        syn = Path(tmp) / f"synthetic-run-{args.hours:g}h.fit"
        t = time.perf_counter()
        n = synthetic_run(syn, args.hours)
        print(f"# generated {syn.name}: {n} records, {syn.stat().st_size / 1e6:.2f} MB in {time.perf_counter() - t:.1f} s")
        files.append((syn.name, syn))

        head = (f"{'file':52} {'records':>8} {'MB':>5} {'fast ms':>8} {'fast rec/s':>11} "
                f"{'fitparse s':>10} {'fitparse rec/s':>14} {'ratio':>6}  decoder")
        if not args.no_rss:
            head += "   RSS MB base/fast/fitparse"
        print(head)
        ratios = []
        for name, path in files:
            data = path.read_bytes()
            read_messages_fast(data)  # warm the plan cache and imports once, outside the clock
            t_fast, fast = timed(read_messages_fast, data, args.repeat)
            t_ref, ref = timed(read_messages_fitparse, data, args.ref_repeat)
            assert_frame_equal(fast.messages["record"], ref.messages["record"])
            nrec = ref.messages["record"].height
            ratio = t_ref / t_fast
            ratios.append(ratio)
            line = (f"{name[:52]:52} {nrec:8d} {len(data) / 1e6:5.2f} {t_fast * 1e3:8.1f} {nrec / t_fast:11,.0f} "
                    f"{t_ref:10.2f} {nrec / t_ref:14,.0f} {ratio:6.0f}x  "
                    f"{'fast' if fast.decoder == DECODER else 'FALLBACK'}")
            if not args.no_rss:
                line += "   {:.0f}/{:.0f}/{:.0f}".format(*(peak_rss_mb(r, path) for r in ("baseline", "fast", "fitparse")))
            print(line, flush=True)
        print(f"# ratio fitparse time / fast time: min {min(ratios):.0f}x, median {statistics.median(ratios):.0f}x; "
              f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
