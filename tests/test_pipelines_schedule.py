"""`retroingest serve` against a REAL Prefect server: the deployment exists with its cron, the
scheduler creates runs (this is what fails silently with wrong fastapi/SQLAlchemy pins), and a
run of the served deployment imports files."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest

pytest.importorskip("prefect")

REPO = Path(__file__).resolve().parents[1]
RETROINGEST = Path(sys.executable).with_name("retroingest")


def _wait_for(fn, timeout: float, what: str, step: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def served(tmp_path, corpus):
    """`retroingest serve` in a subprocess; it starts its own `prefect server start` (no PREFECT_API_URL)."""
    home = tmp_path / "prefect-home"
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "run.fit").write_bytes((corpus / "fit" / "fitparse__garmin-fenix-5-run.fit").read_bytes())
    cfg = tmp_path / "retroingest.toml"
    cfg.write_text(f'[sources]\nwatch = false\ninbox = ["{inbox}"]\n\n[pipelines]\ncron = "0 3 * * *"\n'
                   f'timezone = "Europe/Berlin"\n')
    wh = tmp_path / "wh" / "retro.duckdb"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1",
               PREFECT_RUNNER_POLL_FREQUENCY="2", RETROINGEST_CONFIG=str(cfg))
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([str(RETROINGEST), "serve", "--warehouse", str(wh)], env=env, cwd=tmp_path,
                            stdout=log, stderr=subprocess.STDOUT)
    info_file = home / "retroingest-serve.json"
    try:
        def ready():
            if proc.poll() is not None:
                raise AssertionError(f"serve exited: {(tmp_path / 'serve.log').read_text()[-3000:]}")
            return info_file.exists() and json.loads(info_file.read_text())
        info = _wait_for(ready, 150, "the Prefect server and serve to start")
        yield {"info": info, "warehouse": wh, "log": tmp_path / "serve.log", "proc": proc}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        if info_file.exists() and json.loads(info_file.read_text()).get("server_pid"):
            pid = json.loads(info_file.read_text())["server_pid"]
            _wait_for(lambda: not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text(),
                      30, "the Prefect server to stop")
        log.close()


def test_serve_registers_the_nightly_cron_and_the_scheduler_creates_runs(served):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (DeploymentFilter, DeploymentFilterId, FlowRunFilter,
                                                FlowRunFilterState, FlowRunFilterStateType)
    from prefect.client.schemas.objects import StateType
    from prefect.settings import PREFECT_API_URL, temporary_settings

    info = served["info"]
    assert info["api_url"].startswith("http://127.0.0.1:")
    with temporary_settings({PREFECT_API_URL: info["api_url"]}), get_client(sync_client=True) as client:
        dep = _wait_for(lambda: _deployment(client), 60, "the deployment to be registered")
        assert len(dep.schedules) == 1
        sched = dep.schedules[0]
        assert sched.active and sched.schedule.cron == "0 3 * * *" and sched.schedule.timezone == "Europe/Berlin"
        assert dep.parameters["warehouse_path"] == str(served["warehouse"].absolute())
        assert dep.global_concurrency_limit is not None and dep.global_concurrency_limit.limit == 1

        def scheduled():
            return client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id])),
                flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(
                    any_=[StateType.SCHEDULED]))))
        runs = _wait_for(scheduled, 90, "the scheduler to create scheduled runs", step=2)
        berlin = [r.expected_start_time.astimezone(ZoneInfo("Europe/Berlin")) for r in runs]
        assert all((t.hour, t.minute) == (3, 0) for t in berlin), berlin
        assert min(berlin) > dt.datetime.now(ZoneInfo("Europe/Berlin"))

        # a run of the served deployment (what the cron would start at 03:00) imports the inbox
        run = client.create_flow_run_from_deployment(dep.id)
        final = _wait_for(lambda: (s := client.read_flow_run(run.id).state) and s.is_final() and s, 120,
                          "the served deployment to run", step=2)
        assert final.is_completed(), f"{final}: {served['log'].read_text()[-3000:]}"
    con = duckdb.connect(str(served["warehouse"]), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM source_files WHERE status = 'ingested'").fetchone()[0] == 1
    finally:
        con.close()


def _deployment(client):
    from prefect.exceptions import ObjectNotFound

    try:
        return client.read_deployment_by_name("nightly-import/nightly")
    except ObjectNotFound:
        return None
