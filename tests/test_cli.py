"""The command line as a user meets it: help with examples, exit codes, output formats, docs kept true."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from retroingest import schema_doc, warehouse
from retroingest.cli import main

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from test_ingest import fit_bytes  # noqa: E402


def run(*args, env=None):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


@pytest.mark.parametrize("name", sorted(main.commands))
def test_every_command_has_help_with_an_example(name):
    res = run(name, "--help")
    assert res.exit_code == 0
    assert "Example" in res.output, f"'retroingest {name} --help' shows no example"


def test_every_warehouse_column_is_documented_and_schema_doc_is_current():
    missing = [f"{t}.{c}" for t, _f, cols in schema_doc.tables() for c, _ty, meaning in cols if not meaning]
    assert not missing, f"columns without a comment in schemas/migrations: {missing}"
    assert (REPO / "docs" / "SCHEMA.md").read_text() == schema_doc.render(), \
        "docs/SCHEMA.md is stale: python -m retroingest.schema_doc > docs/SCHEMA.md"


@pytest.fixture
def filled(tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    (data / "run.fit").write_bytes(fit_bytes())
    (data / "broken.tcx").write_bytes(b"<TrainingCenterDatabase><Activities>")
    wpath = tmp_path / "w.duckdb"
    res = run("ingest", str(data), "--warehouse", str(wpath), "-q")
    return wpath, res


def test_ingest_with_a_quarantined_file_exits_zero_and_says_so(filled):
    _, res = filled
    assert res.exit_code == 0
    assert "1 file(s) quarantined" in res.output and "broken.tcx" in res.output and "malformed XML" in res.output


def test_status_lists_counts_last_import_and_quarantine_reasons(filled):
    wpath, _ = filled
    res = run("status", "--warehouse", str(wpath))
    assert res.exit_code == 0
    assert "ingested 1" in res.output and "quarantined 1" in res.output
    assert "last import: #1" in res.output and "broken.tcx: malformed XML" in res.output


def test_sql_prints_table_csv_and_json(filled):
    wpath, _ = filled
    q = "SELECT sport, round(median_cadence_spm) AS spm FROM v_activities"
    assert "running" in run("sql", q, "-w", str(wpath)).output
    assert run("sql", q, "-w", str(wpath), "-f", "csv").output.splitlines() == ["sport,spm", "running,171.0"]
    assert json.loads(run("sql", q, "-w", str(wpath), "-f", "json").output) == [{"sport": "running", "spm": 171.0}]


def test_bad_query_exits_1_with_the_error(filled):
    wpath, _ = filled
    res = CliRunner().invoke(main, ["sql", "SELECT nope FROM nowhere", "-w", str(wpath)])
    assert res.exit_code == 1 and "query failed" in res.output


def test_environment_variable_sets_the_warehouse(filled):
    wpath, _ = filled
    res = run("sql", "SELECT count(*) AS n FROM activities", "-f", "csv", env={warehouse.ENV_WAREHOUSE: str(wpath)})
    assert res.output.splitlines() == ["n", "1"]


def test_usage_error_exits_2():
    assert CliRunner().invoke(main, ["ingest"]).exit_code == 2


def test_ingest_exits_3_while_another_process_holds_the_warehouse(tmp_path):
    wpath = tmp_path / "w.duckdb"
    warehouse.connect(wpath).close()
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import duckdb, sys, time
        con = duckdb.connect({str(wpath)!r})
        print("locked", flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        (tmp_path / "run.fit").write_bytes(fit_bytes())
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        t = time.monotonic()
        res = subprocess.run([sys.executable, "-m", "retroingest.cli", "ingest", str(tmp_path / "run.fit"),
                              "-w", str(wpath), "-q"], capture_output=True, text=True, env=env, timeout=120)
        assert res.returncode == 3, res.stderr
        assert "locked by another process" in res.stderr
        assert time.monotonic() - t < 60
    finally:
        holder.kill()
        holder.wait()
