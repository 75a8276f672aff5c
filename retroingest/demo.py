"""`make demo`: ingest the bundled sample files (and simulated retro-running sessions) into the
default warehouse, then print a summary, an example query and where the report is.

Works from the repository alone: the sample files live in examples/data (sources and licences in
examples/data/SOURCES.md) and the simulated sessions are generated on the spot.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from retroingest import warehouse
from retroingest.ingest import ingest

REPO = warehouse.REPO
SAMPLES = REPO / "examples" / "data"
EXAMPLE_QUERY = """
SELECT sport, format, count(*) AS activities,
       round(sum(distance_m) / 1000, 2) AS km,
       round(sum(duration_s) / 3600, 2) AS hours,
       round(median(median_cadence_spm)) AS median_cadence_spm
FROM v_activities GROUP BY ALL ORDER BY activities DESC
""".strip()


def _simulated(out: Path) -> list[Path]:
    """A few simulated sessions with backward bouts (the bundled real files have none)."""
    from retroingest.simulate import simulate

    if out.exists():
        shutil.rmtree(out)
    simulate(out, n=4, seed=4242)  # a development seed; held-out seeds are >= 10000 (docs/ACCURACY.md)
    return [out]


def main() -> int:
    wpath = warehouse.default_path()
    sim_dir = wpath.parent / "demo-simulated"
    inputs = [SAMPLES] + _simulated(sim_dir)
    print(f"Ingesting {', '.join(str(p.relative_to(REPO)) if p.is_relative_to(REPO) else str(p) for p in inputs)}"
          f" into {wpath} ...")
    result = ingest(inputs, wpath, command="make demo")
    c = result.counts
    print("files: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items()) if v))
    for step, state in result.post_steps.items():
        print(f"  {step}: {state}")
    con = warehouse.connect(wpath, read_only=True)
    try:
        print("\nExample query (retroingest sql \"...\"):\n" + EXAMPLE_QUERY + "\n")
        _print_table(con.execute(EXAMPLE_QUERY))
        dups = con.execute("SELECT path, reason FROM source_files WHERE status = 'duplicate' ORDER BY path").fetchall()
        if dups:
            print("\nSame activity in several formats, counted once:")
            for path, reason in dups:
                print(f"  {Path(path).name}: {reason}")
        n_back, back_min = con.execute(
            "SELECT count(*), round(coalesce(sum(duration_s), 0) / 60, 1) FROM v_backward_segments").fetchone()
        print(f"\nBackward segments found: {n_back} ({back_min} min)")
        if n_back:
            claims = (REPO / "warehouse" / "queries" / "claims_vs_evidence.sql").read_text()
            print("\nWhat it was worth, claims vs evidence (warehouse/queries/claims_vs_evidence.sql):")
            _print_table(con.execute(claims))
    finally:
        con.close()
    print(f"\nReport (offline HTML, open it in a browser): {_report(wpath)}")
    print("\nTry: .venv/bin/retroingest status   |   .venv/bin/retroingest sql \"SELECT * FROM v_activities\"")
    return 0


def _print_table(cur) -> None:
    cols = [d[0] for d in cur.description]
    rows = cur.fetchall()
    widths = [max(len(c), *(len(str(r[i])) for r in rows)) if rows else len(c) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    for r in rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths)))


def _report(wpath: Path) -> str:
    from retroingest.report import write_report

    return str(write_report(wpath, wpath.parent / "report"))


if __name__ == "__main__":
    sys.exit(main())
