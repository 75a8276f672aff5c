"""Hostile input is refused cleanly: a quarantine row with a reason, nothing read or written outside,
and the rest of the batch imported."""

from __future__ import annotations

import gzip
import os
import zipfile
from pathlib import Path

import duckdb
import pytest

from retroingest import doctor, sources
from retroingest.ingest import ingest
from test_ingest import fit_bytes

SECRET = "top-secret-line-8c1f"

GPX_HEAD = '<?xml version="1.0"?>\n'
GPX_BODY = ('<gpx version="1.1" creator="x" xmlns="http://www.topografix.com/GPX/1/1"><trk><name>{name}</name><trkseg>'
            '<trkpt lat="46.1" lon="8.3"><time>2025-01-01T10:00:00Z</time></trkpt>'
            '<trkpt lat="46.1" lon="8.3"><time>2025-01-01T10:00:05Z</time></trkpt></trkseg></trk></gpx>')
TCX_BODY = ('<TrainingCenterDatabase xmlns="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2">'
            '<Activities><Activity Sport="Running"><Id>{name}</Id></Activity></Activities></TrainingCenterDatabase>')


def laughs(root: str) -> str:
    ents = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">' for i in range(1, 10))
    return f"{GPX_HEAD}<!DOCTYPE {root} [{ents}]>\n"


def xxe(root: str, secret: Path) -> str:
    return f'{GPX_HEAD}<!DOCTYPE {root} [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'


def rows(wpath: Path) -> dict[str, tuple[str, str, str]]:
    con = duckdb.connect(str(wpath), read_only=True)
    try:
        return {Path(p.split("!/")[-1]).name: (s, rc, r) for p, s, rc, r in con.execute(
            "SELECT path, status, reason_code, reason FROM source_files").fetchall()}
    finally:
        con.close()


def dump(wpath: Path) -> str:
    """Every text value in the warehouse, to prove a secret never got in."""
    con = duckdb.connect(str(wpath), read_only=True)
    try:
        parts = []
        for t in ("source_files", "activities"):
            parts += [str(r) for r in con.execute(f"SELECT * FROM {t}").fetchall()]
        return "\n".join(parts)
    finally:
        con.close()


@pytest.fixture
def secret(tmp_path) -> Path:
    p = tmp_path / "outside" / "secret.txt"
    p.parent.mkdir()
    p.write_text(SECRET)
    return p


def test_xml_bombs_and_external_entities_are_refused(tmp_path, warehouse_path, secret):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "laughs.gpx").write_text(laughs("gpx") + GPX_BODY.format(name="&lol9;"))
    (inbox / "laughs.tcx").write_text(laughs("TrainingCenterDatabase") + TCX_BODY.format(name="&lol9;"))
    (inbox / "xxe.gpx").write_text(xxe("gpx", secret) + GPX_BODY.format(name="&xxe;"))
    (inbox / "xxe.tcx").write_text(xxe("TrainingCenterDatabase", secret) + TCX_BODY.format(name="&xxe;"))
    (inbox / "dtd.gpx").write_text(f'{GPX_HEAD}<!DOCTYPE gpx SYSTEM "file://{secret}">\n' + GPX_BODY.format(name="x"))
    (inbox / "param.gpx").write_text(f'{GPX_HEAD}<!DOCTYPE gpx [<!ENTITY % p SYSTEM "file://{secret}"> %p;]>\n'
                                     + GPX_BODY.format(name="x"))
    (inbox / "good.fit").write_bytes(fit_bytes(n=60))
    ingest([inbox], warehouse_path, workers=1, run_post_steps=False)
    got = rows(warehouse_path)
    for name in ("laughs.gpx", "laughs.tcx", "xxe.gpx", "xxe.tcx", "dtd.gpx", "param.gpx"):
        status, code, reason = got[name]
        assert (status, code) == ("quarantined", "unsafe_xml"), (name, got[name])
        assert reason.startswith("unsafe XML refused")
    assert got["good.fit"][0] == "ingested"
    assert SECRET not in dump(warehouse_path)


def make_zip(path: Path, members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_zip_entries_escaping_the_archive_are_refused(tmp_path, warehouse_path):
    z = make_zip(tmp_path / "export.zip", {
        "../../evil.fit": fit_bytes(n=30), "/etc/evil.fit": fit_bytes(n=31), "C:\\Windows\\evil.fit": fit_bytes(n=32),
        "activities/ok.fit": fit_bytes(n=33)})
    ingest([z], warehouse_path, workers=1, run_post_steps=False)
    con = duckdb.connect(str(warehouse_path), read_only=True)
    got = dict(con.execute("SELECT path, reason_code FROM source_files").fetchall())
    con.close()
    assert got == {f"{z}!/../../evil.fit": "unsafe_path", f"{z}!//etc/evil.fit": "unsafe_path",
                   f"{z}!/C:\\Windows\\evil.fit": "unsafe_path", f"{z}!/activities/ok.fit": None}
    assert not (tmp_path.parent / "evil.fit").exists() and not Path("/etc/evil.fit").exists()


def test_zip_and_gzip_bombs_are_refused(tmp_path, warehouse_path, monkeypatch):
    zeros = b"\0" * (20 << 20)  # 20 MB of zeros compress ~1000:1
    make_zip(tmp_path / "ratio.zip", {"bomb.fit": zeros, "ok.fit": fit_bytes(n=40)})
    (tmp_path / "bomb.fit.gz").write_bytes(gzip.compress(zeros))
    make_zip(tmp_path / "nested.zip", {"inner.fit.gz": gzip.compress(zeros)}, compression=zipfile.ZIP_STORED)
    ingest([tmp_path / "ratio.zip", tmp_path / "bomb.fit.gz", tmp_path / "nested.zip"],
           warehouse_path, workers=1, run_post_steps=False)
    # the total limit is 8 GB; lower it for this archive rather than writing gigabytes
    monkeypatch.setattr(sources, "MAX_ARCHIVE_TOTAL_BYTES", 3 << 20)
    make_zip(tmp_path / "total.zip", {f"part{i}.fit": os.urandom(1 << 20) for i in range(4)})
    ingest([tmp_path / "total.zip"], warehouse_path, workers=1, run_post_steps=False)
    got = rows(warehouse_path)
    assert got["bomb.fit"][:2] == ("quarantined", "zip_bomb") and "compression ratio" in got["bomb.fit"][2]
    assert got["bomb.fit.gz"][:2] == ("quarantined", "zip_bomb")
    assert got["inner.fit.gz"][:2] == ("quarantined", "zip_bomb")
    assert all(got[f"part{i}.fit"][1] == "zip_bomb" and "in total" in got[f"part{i}.fit"][2] for i in range(4))
    assert got["ok.fit"][0] == "ingested"


def test_symlinks_out_of_the_inbox_are_refused_with_a_reason(tmp_path, warehouse_path, secret):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    outside = secret.parent / "private.fit"
    outside.write_bytes(fit_bytes(n=50))
    (inbox / "link_out.fit").symlink_to(outside)
    (inbox / "passwd.gpx").symlink_to("/etc/passwd")
    (inbox / "dir_out").symlink_to(secret.parent, target_is_directory=True)
    (inbox / "real.fit").write_bytes(fit_bytes(n=60))
    (inbox / "link_in.fit").symlink_to(inbox / "real.fit")
    ingest([inbox], warehouse_path, workers=1, run_post_steps=False)
    got = rows(warehouse_path)
    assert got["link_out.fit"][:2] == ("quarantined", "unsafe_symlink")
    assert got["passwd.gpx"][:2] == ("quarantined", "unsafe_symlink") and "/etc/passwd" in got["passwd.gpx"][2]
    assert "private.fit" not in got  # the folder link is not walked
    assert {got["real.fit"][0], got["link_in.fit"][0]} == {"ingested", "duplicate"}  # a link inside is followed
    assert "root:" not in dump(warehouse_path)


@pytest.mark.timeout(120)  # without the regular-file check, reading the FIFO blocks forever
def test_files_far_larger_than_any_activity_and_fifos_are_refused(tmp_path, warehouse_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with open(inbox / "huge.fit", "wb") as fh:  # sparse: 300 MB on paper, nothing on disk
        fh.truncate(300 << 20)
    os.mkfifo(inbox / "pipe.gpx")  # reading would block forever
    (inbox / "ok.fit").write_bytes(fit_bytes(n=60))
    res = ingest([inbox], warehouse_path, workers=1, run_post_steps=False)
    got = rows(warehouse_path)
    assert got["huge.fit"][:2] == ("quarantined", "too_large") and "larger than any real activity" in got["huge.fit"][2]
    assert got["pipe.gpx"][:2] == ("quarantined", "not_regular_file")
    assert got["ok.fit"][0] == "ingested" and res.counts["quarantined"] == 2
    assert doctor.check(warehouse_path).ok
