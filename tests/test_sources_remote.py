"""fsspec sources: memory:// and file:// URLs through discover and the real ingest, incrementally."""

from __future__ import annotations

import gzip
import uuid

import duckdb
import pytest

fsspec = pytest.importorskip("fsspec")

from retroingest import ingest  # noqa: E402
from retroingest.errors import SourceError  # noqa: E402
from retroingest.sources import discover  # noqa: E402
from retroingest.sources.remote import is_url  # noqa: E402
from retroingest.sources.reopen import item_for_label  # noqa: E402


def test_is_url():
    assert is_url("memory://x/a.fit") and is_url("file:///tmp/a.fit") and is_url("simplecache::s3://b/k")
    assert not is_url("/tmp/a.fit") and not is_url("C:/x.fit") and not is_url("a.zip!/x.fit")


def test_memory_url_ingests_once_then_is_unchanged(tmp_path, corpus):
    root = f"/inbox-{uuid.uuid4().hex}"
    fs = fsspec.filesystem("memory")
    fs.pipe(f"{root}/run.fit", (corpus / "fit/activitylog2__310xt-run.fit").read_bytes())
    fs.pipe(f"{root}/sub/walk.gpx.gz", gzip.compress((corpus / "gpx/togeojson__run_gpxtpx.gpx").read_bytes()))
    fs.pipe(f"{root}/readme.txt", b"x")
    labels = [i.label for i in discover([f"memory://{root}"])]
    assert labels == [f"memory://{root}/run.fit", f"memory://{root}/sub/walk.gpx.gz"]
    wh = tmp_path / "retro.duckdb"
    first = ingest.ingest([f"memory://{root}"], wh, workers=1)
    assert first.counts.get("ingested") == 2
    again = ingest.ingest([f"memory://{root}"], wh, workers=1)
    assert again.counts == {"unchanged": 2}
    con = duckdb.connect(str(wh), read_only=True)
    try:
        assert sorted(r[0] for r in con.execute("SELECT path FROM source_files").fetchall()) == labels
    finally:
        con.close()


def test_file_url_and_reopen_by_label(tmp_path, corpus):
    (tmp_path / "in").mkdir()
    src = corpus / "tcx/runpandas__run_garmin.tcx"
    (tmp_path / "in" / "a.tcx").write_bytes(src.read_bytes())
    items = list(discover([f"file://{tmp_path}/in"]))
    assert [i.label for i in items] == [f"file://{tmp_path}/in/a.tcx"]
    assert item_for_label(items[0].label).read() == src.read_bytes()
    assert items[0].size_bytes == src.stat().st_size and items[0].mtime is not None


def test_vanished_url_is_a_retryable_source_error():
    with pytest.raises(SourceError) as exc:
        item_for_label("memory:///does/not/exist.fit")
    assert exc.value.retryable


def test_zip_member_label_reopens(tmp_path, corpus):
    import zipfile

    z = tmp_path / "export.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("activities/1.fit.gz", gzip.compress((corpus / "fit/activitylog2__310xt-run.fit").read_bytes()))
    label = f"{z}!/activities/1.fit.gz"
    assert item_for_label(label).read() == (corpus / "fit/activitylog2__310xt-run.fit").read_bytes()
