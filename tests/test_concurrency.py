"""Readers during imports (docs/CONCURRENCY.md): a separate process queries in a loop while a
real import holds the DuckDB write lock, and never fails; it is served the snapshot published
after the previous import. Plus the import lock that serialises whole imports."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import duckdb
import pytest

from retroingest import ingest, warehouse
from retroingest.errors import WarehouseBusyError
from retroingest.sources import discover

RETROINGEST = Path(sys.executable).with_name("retroingest")

READER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from retroingest import warehouse
    wh, stop, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    rows = []
    while not stop.exists():
        t = time.time()
        try:
            con = warehouse.connect(wh, read_only=True, wait_s=0)
            try:
                n = con.execute("SELECT count(*) FROM v_activities").fetchone()[0]
                db = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()[0]
            finally:
                con.close()
            rows.append({"t": t, "ok": True, "n": n, "db": db})
        except Exception as exc:
            rows.append({"t": t, "ok": False, "error": f"{type(exc).__name__}: {exc}"})
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(rows))
        tmp.replace(out)  # atomic: the test reads this file while the loop runs
        time.sleep(0.01)
""")


def _fit_files(corpus: Path, lo: int, hi: int, n: int) -> list[Path]:
    files = sorted((corpus / "fit").glob("*.fit"), key=lambda p: (p.stat().st_size, p.name))
    return [f for f in files if lo < f.stat().st_size < hi][:n]


def _stage(wh: Path, files: list[Path]):
    root = ingest.staging_root(wh)
    root.mkdir(parents=True, exist_ok=True)
    return ingest.decode_all(discover(files), root, ingest.read_known(wh), workers=2)


def test_reader_process_never_fails_during_a_real_import(tmp_path, corpus):
    wh = tmp_path / "retro.duckdb"
    first = _fit_files(corpus, 5_000, 20_000, 4)
    ingest.ingest(first, wh, workers=1)
    warehouse.publish_snapshot(wh)
    n_before = duckdb.connect(str(wh), read_only=True).execute("SELECT count(*) FROM v_activities").fetchone()[0]
    staged, n_unchanged = _stage(wh, _fit_files(corpus, 20_000, 200_000, 16))  # decoding needs no lock

    stop, out = tmp_path / "stop", tmp_path / "reader.json"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(wh), str(stop), str(out)])
    cli_results: list[subprocess.CompletedProcess] = []
    lock_window: dict[str, float] = {}

    def cli_reader():  # ad-hoc SQL through the CLI, in a loop, at the same time
        while not stop.exists():
            cli_results.append(subprocess.run([str(RETROINGEST), "sql", "-f", "csv", "SELECT count(*) AS n FROM v_activities",
                                               "--warehouse", str(wh)], capture_output=True, text=True, timeout=120))
    try:
        from_json = lambda: json.loads(out.read_text()) if out.exists() else []  # noqa: E731
        deadline = time.monotonic() + 60
        while len(from_json()) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        cli = threading.Thread(target=cli_reader)
        cli.start()
        with warehouse.import_lock(wh):  # as the flows do: readers now step aside to the snapshot
            lock_window["start"] = time.time()
            # waits (bounded) for queries already running on the live file, then holds the write lock
            result = ingest.load_and_finish(wh, staged, n_unchanged, "test import", lock_wait_s=60)
            lock_window["end"] = time.time()
            warehouse.publish_snapshot(wh)
        done = time.time()
        deadline = time.monotonic() + 60  # a few queries after the import, however loaded the machine is
        while sum(r["t"] > done for r in from_json()) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.touch()
        reader.wait(60)
    cli.join(120)
    rows = from_json()
    assert result.counts.get("ingested") == 16
    failures = [r for r in rows if not r["ok"]]
    assert not failures, failures[:5]
    during = [r for r in rows if lock_window["start"] + 0.2 < r["t"] < lock_window["end"] - 0.2]
    assert during, "the reader must have queried while the import held the lock"
    assert all(r["db"].endswith("retro.snapshot.duckdb") and r["n"] == n_before for r in during), during[:5]
    assert rows[-1]["db"] == str(wh) and rows[-1]["n"] == n_before + 16, rows[-3:]
    counts = [r["n"] for r in rows]
    assert counts == sorted(counts), "readers never go back in time"
    assert cli_results and all(r.returncode == 0 for r in cli_results), [r.stderr for r in cli_results if r.returncode]


def test_read_only_open_without_snapshot_waits_bounded_then_says_why(tmp_path):
    wh = tmp_path / "retro.duckdb"
    warehouse.connect(wh).close()
    writer = warehouse.connect(wh)  # an import in progress (another process, below, sees the lock)
    try:
        code = (f"from retroingest import warehouse\n"
                f"try:\n    warehouse.connect({str(wh)!r}, read_only=True, wait_s=1.0)\n"
                f"except Exception as e:\n    print(type(e).__name__, e)\n")
        t = time.monotonic()
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
        assert "WarehouseBusyError" in out and "an import is running" in out
        assert time.monotonic() - t >= 1.0
    finally:
        writer.close()


def test_import_lock_serialises_imports_and_reports_who_waits(tmp_path):
    wh = tmp_path / "retro.duckdb"
    order: list[str] = []
    with warehouse.import_lock(wh):
        with pytest.raises(WarehouseBusyError, match="another import is running"):
            with warehouse.import_lock(wh, wait_s=0.3):
                pass

        def second():
            with warehouse.import_lock(wh, wait_s=30):
                order.append("second")
        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.5)
        order.append("first done")
    t.join(30)
    assert order == ["first done", "second"]


def test_snapshot_is_replaced_atomically_while_a_reader_holds_the_old_one(tmp_path, corpus):
    wh = tmp_path / "retro.duckdb"
    ingest.ingest(_fit_files(corpus, 5_000, 20_000, 1), wh, workers=1)
    snap = warehouse.publish_snapshot(wh)
    old = duckdb.connect(str(snap), read_only=True)
    try:
        ingest.ingest(_fit_files(corpus, 5_000, 20_000, 3), wh, workers=1)
        warehouse.publish_snapshot(wh)
        assert old.execute("SELECT count(*) FROM activities").fetchone()[0] == 1
    finally:
        old.close()
    new = duckdb.connect(str(snap), read_only=True)
    try:
        assert new.execute("SELECT count(*) FROM activities").fetchone()[0] == 3
    finally:
        new.close()
