"""The Prefect flows through the real engine (one prefect_test_harness server for the module).

Acceptance of issue 6: nightly_import over a fake watch mount and an inbox, twice; the second
run decodes nothing. Also: retries of transient source errors, bad files never fail a flow,
backfill of an export zip, Dask task runner, two imports started at once.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

_ENV = {"PREFECT_HOME": tempfile.mkdtemp(prefix="retroingest-prefect-"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
        "RETROINGEST_RETRY_DELAYS": "0,0"}
for _k, _v in _ENV.items():  # before prefect is imported: its settings are read at import
    os.environ.setdefault(_k, _v)

import duckdb  # noqa: E402
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

pytest.importorskip("prefect")

from prefect.client.orchestration import get_client  # noqa: E402
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId  # noqa: E402
from prefect.settings import PREFECT_API_URL  # noqa: E402
from prefect.testing.utilities import prefect_test_harness  # noqa: E402

from pipelines.flows import backfill, nightly_import, reclassify  # noqa: E402

WATCH_FILES = ["fitparse__garmin-fenix-5-run.fit", "activitylog2__310xt-run.fit", "heartandsole__testdata.fit"]
INBOX_FILES = ["tcx/runpandas__run_garmin.tcx", "gpx/togeojson__run_gpxtpx.gpx", "bad/sportslib__empty-activities.fit"]


@pytest.fixture(scope="module")
def harness():
    """One temporary Prefect server for every engine test in this module."""
    with prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()


def make_watch(root: Path, corpus: Path) -> Path:
    """A USB mass-storage Garmin volume (upper-case folders, as some models write them)."""
    act = root / "GARMIN" / "ACTIVITY"
    act.mkdir(parents=True)
    for name in WATCH_FILES:
        (act / name).write_bytes((corpus / "fit" / name).read_bytes())
        os.utime(act / name, (1_700_000_000, 1_700_000_000))
    (root / "GARMIN" / "GarminDevice.xml").write_text("<Device><Id>3991234567</Id></Device>")
    return act


def tree_state(folder: Path) -> dict[str, tuple]:
    """Every file under a folder: size, mtime and content hash (to prove nothing was modified)."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(folder.rglob("*")) if p.is_file()}


def task_run_names(flow_run_id) -> list[str]:
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return sorted(r.name.rsplit("-", 1)[0] for r in runs)


@pytest.fixture
def nightly_setup(tmp_path, corpus):
    volume = tmp_path / "media" / "runner" / "GARMIN"
    make_watch(volume, corpus)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for rel in INBOX_FILES:
        (inbox / Path(rel).name).write_bytes((corpus / rel).read_bytes())
    cfg = tmp_path / "retroingest.toml"
    cfg.write_text(f'[sources]\nwatch_mounts = ["{tmp_path}/media/*/*"]\ninbox = ["{inbox}"]\n'
                   f'archive_dir = "{tmp_path}/archive"\n')
    return {"volume": volume, "inbox": inbox, "config": cfg, "warehouse": tmp_path / "wh" / "retro.duckdb",
            "archive": tmp_path / "archive"}


def test_nightly_import_twice_over_watch_and_inbox_decodes_nothing_the_second_time(harness, nightly_setup):
    s = nightly_setup
    before = tree_state(s["volume"])
    state1 = nightly_import(str(s["warehouse"]), str(s["config"]), return_state=True)
    first = state1.result()
    assert first["decoded"] == 6
    assert first["watches"] == [{"volume": "garmin-3991234567", "copied": 3, "already": 0}]
    assert sorted(p.name for p in (s["archive"] / "garmin-3991234567").iterdir()) == sorted(WATCH_FILES)
    assert first["counts"].get("quarantined") == 1
    assert first["quarantined"][0][0].endswith("sportslib__empty-activities.fit")
    assert len(first["new_activity_ids"]) >= 3
    assert first["post_steps"] and all(v == "ok" for v in first["post_steps"].values()), first["post_steps"]
    assert "## New activities" in first["report"] and "## Quarantined files" in first["report"]
    assert task_run_names(state1.state_details.flow_run_id).count("decode_file") == 6

    state2 = nightly_import(str(s["warehouse"]), str(s["config"]), return_state=True)
    second = state2.result()
    assert second["decoded"] == 0
    assert second["counts"] == {"unchanged": 6}
    assert second["watches"] == [{"volume": "garmin-3991234567", "copied": 0, "already": 3}]
    assert "decode_file" not in task_run_names(state2.state_details.flow_run_id)
    assert tree_state(s["volume"]) == before, "the watch must never be modified"
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[state2.state_details.flow_run_id])))
    assert len(arts) == 1 and arts[0].key == "retroingest-import" and arts[0].type == "markdown"
    assert "| decoded this run | 0 |" in arts[0].data and "3 already there" in arts[0].data

    con = duckdb.connect(str(s["warehouse"]), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM source_files").fetchone()[0] == 6
        assert con.execute("SELECT count(*) FROM source_files WHERE path LIKE ?",
                           [f"{s['archive']}%"]).fetchone()[0] == 3
        assert con.execute("SELECT n_unchanged, n_ingested FROM imports ORDER BY import_id").fetchall()[1] == (6, 0)
    finally:
        con.close()
    # the snapshot readers use during imports holds the same data
    snap = duckdb.connect(str(s["warehouse"].with_name("retro.snapshot.duckdb")), read_only=True)
    try:
        assert snap.execute("SELECT count(*) FROM source_files").fetchone()[0] == 6
    finally:
        snap.close()


def test_new_file_on_the_watch_is_copied_and_decoded_alone(harness, nightly_setup, corpus):
    s = nightly_setup
    nightly_import(str(s["warehouse"]), str(s["config"]))
    new = s["volume"] / "GARMIN" / "ACTIVITY" / "runpandas__run.fit"
    new.write_bytes((corpus / "fit" / "runpandas__run.fit").read_bytes())
    out = nightly_import(str(s["warehouse"]), str(s["config"]))
    assert out["decoded"] == 1
    assert out["watches"][0]["copied"] == 1
    assert out["counts"].get("ingested") == 1 and out["counts"]["unchanged"] == 6


def test_transient_source_error_is_retried_and_deferred_without_failing_the_flow(harness, tmp_path, corpus):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "run.fit").write_bytes((corpus / "fit" / WATCH_FILES[0]).read_bytes())
    wh = tmp_path / "retro.duckdb"
    state = backfill([str(inbox), "memory:///nowhere/"], str(wh), return_state=True)
    assert state.is_completed()
    out = state.result()
    assert out["counts"].get("ingested") == 1
    assert [d[0] for d in out["deferred"]] == ["memory:///nowhere/"]
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
    listing = [r for r in runs if r.name.startswith("list_source") and r.state.is_failed()]
    assert len(listing) == 1 and listing[0].run_count == 3, "two retries, then deferred"


def test_backfill_of_an_export_zip_with_gz_members_is_idempotent(harness, tmp_path, corpus):
    export = tmp_path / "export_12345.zip"
    with zipfile.ZipFile(export, "w") as z:
        z.writestr("activities/1.fit.gz", gzip.compress((corpus / "fit" / WATCH_FILES[1]).read_bytes()))
        z.writestr("activities/2.gpx.gz", gzip.compress((corpus / "gpx/togeojson__run_gpxtpx.gpx").read_bytes()))
        z.writestr("activities.csv", "id,name\n")
    wh = tmp_path / "retro.duckdb"
    first = backfill([str(export)], str(wh))
    assert first["decoded"] == 2 and first["counts"].get("ingested") == 2
    again = backfill([str(export)], str(wh))
    assert again["decoded"] == 0 and again["counts"] == {"unchanged": 2}


def test_backfill_on_a_dask_local_cluster(harness, tmp_path, corpus):
    pytest.importorskip("prefect_dask")
    from pipelines.runners import make_task_runner

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in WATCH_FILES:
        (inbox / name).write_bytes((corpus / "fit" / name).read_bytes())
    wh = tmp_path / "retro.duckdb"
    state = backfill.with_options(task_runner=make_task_runner("dask", workers=2))([str(inbox)], str(wh),
                                                                                   return_state=True)
    out = state.result()
    assert out["decoded"] == 3 and out["counts"].get("ingested") == 3
    assert task_run_names(state.state_details.flow_run_id).count("decode_file") == 3


def _run_flow_process(api_url: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PREFECT_API_URL": api_url, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "pipelines.flows", *args], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_imports_started_at_once_serialise_and_lose_nothing(harness, tmp_path, corpus):
    wh = tmp_path / "retro.duckdb"
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    for name in WATCH_FILES[:2]:
        (a / name).write_bytes((corpus / "fit" / name).read_bytes())
    (b / "run.tcx").write_bytes((corpus / "tcx/runpandas__run_garmin.tcx").read_bytes())
    procs = [_run_flow_process(harness, "backfill", str(d), "--warehouse", str(wh), "--wait", "120") for d in (a, b)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    results = [json.loads(o[0].strip().splitlines()[-1]) for o in outs]
    assert sorted(r["import_id"] for r in results) == [1, 2]
    con = duckdb.connect(str(wh), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM source_files WHERE status = 'ingested'").fetchone()[0] == 3
        # serialised: the imports did not overlap in time
        (s1, f1), (s2, f2) = con.execute("SELECT started_at, finished_at FROM imports ORDER BY import_id").fetchall()
        assert f1 <= s2
    finally:
        con.close()


def test_second_import_without_wait_exits_with_a_clear_message_and_a_rerun_loses_nothing(harness, tmp_path, corpus):
    from retroingest import warehouse

    wh = tmp_path / "retro.duckdb"
    b = tmp_path / "b"
    b.mkdir()
    (b / "run.fit").write_bytes((corpus / "fit" / WATCH_FILES[1]).read_bytes())
    with warehouse.import_lock(wh):  # an import in progress (holding the lock as a flow does)
        p = _run_flow_process(harness, "backfill", str(b), "--warehouse", str(wh), "--wait", "0")
        out, err = p.communicate(timeout=120)
    assert p.returncode == 3, err[-2000:]
    assert "another import is running" in err
    assert not wh.exists() or duckdb.connect(str(wh), read_only=True).execute(
        "SELECT count(*) FROM source_files").fetchone()[0] == 0
    rerun = backfill([str(b)], str(wh), 0.0)  # the lock is free again: nothing was lost
    assert rerun["counts"].get("ingested") == 1


def test_reclassify_reruns_post_steps_and_refreshes_the_snapshot(harness, tmp_path, corpus):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "run.fit").write_bytes((corpus / "fit" / WATCH_FILES[1]).read_bytes())
    wh = tmp_path / "retro.duckdb"
    backfill([str(inbox)], str(wh))
    snap = wh.with_name("retro.snapshot.duckdb")
    before = snap.stat().st_mtime_ns
    out = reclassify(str(wh))
    assert out and all(v == "ok" for v in out.values()), out
    assert snap.stat().st_mtime_ns > before
