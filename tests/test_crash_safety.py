"""Crash safety: SIGKILL a real `retroingest ingest` process at random points, then check the warehouse.

After each kill the warehouse must open, pass the doctor's integrity checks (no partial activity:
every activity holds exactly n_records records, every ingested file holds its activities), and
re-running the same command must give exactly the tables of an uninterrupted run (ids, statuses
and counts; timestamps and import ids aside).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from retroingest import doctor, warehouse
from test_ingest import T0, fit_bytes

N_GENERATED_FULL = 230     # > 200 files: the load runs in two batches (two transactions)
N_GENERATED_QUICK = 12
CORPUS_PICK = ("fit/fitparse__garmin-fenix-5-run.fit", "fit/fitparse__2015-10-13-08-43-15.fit",
               "gpx/togeojson__run_gpxtpx.gpx", "tcx/heartandsole__testdata.tcx",
               "bad/fitparse__activity-unexpected-eof.fit", "bad/togeojson__bad.gpx")

# What must be identical between an interrupted-then-rerun warehouse and an uninterrupted one.
SNAPSHOT_SQL = {
    "source_files": "SELECT file_id, path, sha256, status, reason_code, n_activities, n_records, "
                    "duplicate_of_file_id FROM source_files ORDER BY file_id",
    "activities": "SELECT activity_id, file_id, session_index, duplicate_of, n_records, start_time, end_time "
                  "FROM activities ORDER BY activity_id",
    "records": "SELECT activity_id, count(*), min(ts), max(ts), sum(coalesce(heart_rate_bpm, 0)) "
               "FROM records GROUP BY 1 ORDER BY 1",
    "laps": "SELECT activity_id, count(*) FROM laps GROUP BY 1 ORDER BY 1",
    "segments": "SELECT segment_id, activity_id, direction, gait FROM segments ORDER BY 1",
    "equivalence": "SELECT profile, level, activity_id, segment_id FROM equivalence ORDER BY ALL",
}


def make_inbox(folder: Path, corpus: Path, n_generated: int) -> Path:
    folder.mkdir(parents=True)
    for rel in CORPUS_PICK:
        shutil.copy(corpus / rel, folder / rel.replace("/", "__"))
    for i in range(n_generated):
        start = T0 + dt.timedelta(hours=2 * i)
        (folder / f"gen_{i:03d}.fit").write_bytes(
            fit_bytes(n=60, serial=3_900_100_000 + i, created=start, start=start, hr=120 + i % 40))
    return folder


def run_ingest(inbox: Path, wpath: Path, timeout: float = 300) -> float:
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "retroingest.cli", "ingest", str(inbox), "-w", str(wpath), "-q"],
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return time.monotonic() - t0


def staged_count(wpath: Path) -> int:
    root = Path(str(wpath) + ".staging")
    try:
        return sum(1 for _ in root.iterdir())
    except OSError:
        return 0


def kill_during_ingest(inbox: Path, wpath: Path, mode: str, delay_s: float) -> int | None:
    """Start an ingest and SIGKILL it (with its decode workers); returns its exit code if it finished first.

    ``mode`` picks the moment: 'time' (``delay_s`` after start), 'decode' (once files are being
    staged), 'committed' (once a load batch committed: staged folders start to vanish), each plus
    ``delay_s``.
    """
    proc = subprocess.Popen([sys.executable, "-m", "retroingest.cli", "ingest", str(inbox), "-w", str(wpath), "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    peak = 0
    deadline = time.monotonic() + 300
    while mode != "time" and proc.poll() is None and time.monotonic() < deadline:
        n = staged_count(wpath)
        peak = max(peak, n)
        if (mode == "decode" and n >= 3) or (mode == "committed" and 0 < peak and n < peak):
            break
        time.sleep(0.01)
    try:
        return proc.wait(timeout=delay_s)  # finished before the kill
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the process group: the ingest and its decode workers only
        proc.wait()
        return None


def snapshot(wpath: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(wpath), read_only=True)
    try:
        return {name: con.execute(sql).fetchall() for name, sql in SNAPSHOT_SQL.items()}
    finally:
        con.close()


def check_after_kill(wpath: Path) -> str:
    """The warehouse opens and holds no partial activity; returns which phase the kill hit."""
    if not wpath.exists():
        return "before the warehouse existed"
    con = warehouse.connect(wpath, read_only=True, snapshot_fallback=False)  # opens (replays the WAL)
    con.close()
    rep = doctor.check(wpath)
    assert rep.ok, doctor.format_report(rep)
    con = duckdb.connect(str(wpath), read_only=True)
    try:
        n_files = con.execute("SELECT count(*) FROM source_files").fetchone()[0] if warehouse.schema_version(con) else 0
    finally:
        con.close()
    return "before any batch committed" if n_files == 0 else f"after {n_files} file rows committed"


def trials(tmp_path: Path, corpus: Path, n_trials: int, seed: int, n_generated: int) -> list[str]:
    inbox = make_inbox(tmp_path / "inbox", corpus, n_generated)
    ref = tmp_path / "ref.duckdb"
    t_ref = run_ingest(inbox, ref)
    expected = snapshot(ref)
    assert expected["segments"], "the reference run must classify something, or segments are not compared"
    rng = random.Random(seed)
    modes = ["decode", "committed", "committed-late", "time"]
    phases = []
    for k in range(n_trials):
        wpath = tmp_path / f"trial{k}" / "retro.duckdb"
        wpath.parent.mkdir()
        mode = modes[k % len(modes)]
        # decode: while files are staged; committed: right after a batch commit (post steps not run);
        # committed-late: during classify/metrics/checkpoint; time: anywhere in the run
        delay = {"decode": rng.uniform(0, 0.5), "committed": rng.uniform(0, 0.2),
                 "committed-late": rng.uniform(0.2, 1.0), "time": rng.uniform(0.5, t_ref)}[mode]
        code = kill_during_ingest(inbox, wpath, mode.split("-")[0], delay)
        phases.append(f"trial {k} kill {mode} +{delay:.1f} s: "
                      + ("run had finished" if code is not None else check_after_kill(wpath)))
        run_ingest(inbox, wpath)
        assert snapshot(wpath) == expected, f"{phases[-1]}: differs from the uninterrupted run"
        assert doctor.check(wpath).ok
    return phases


def test_sigkill_at_three_points_then_rerun_equals_uninterrupted_run(tmp_path, corpus):
    phases = trials(tmp_path, corpus, n_trials=3, seed=8, n_generated=N_GENERATED_QUICK)
    print("\n".join(phases))
    assert len(phases) == 3


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_sigkill_twenty_trials(tmp_path, corpus):
    phases = trials(tmp_path, corpus, n_trials=20, seed=20, n_generated=N_GENERATED_FULL)
    print("\n".join(phases))
    assert len(phases) == 20
