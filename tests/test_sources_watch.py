"""Mounted-watch detection (USB mass storage, gvfs MTP, jmtpfs) and the read-only copy to the archive."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from retroingest.sources import watch

FIT = ["fitparse__garmin-fenix-5-run.fit", "activitylog2__310xt-run.fit"]


def _volume(root: Path, corpus: Path, garmin="GARMIN", activity="Activity", names=FIT) -> Path:
    act = root / garmin / activity
    act.mkdir(parents=True)
    for n in names:
        (act / n).write_bytes((corpus / "fit" / n).read_bytes())
    (act / "notes.txt").write_text("not an activity")
    return act


def _state(folder: Path) -> dict:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_finds_mass_storage_mtp_and_jmtpfs_volumes_in_any_case(tmp_path, corpus):
    usb = tmp_path / "media" / "ana" / "GARMIN"
    _volume(usb, corpus, "GARMIN", "ACTIVITY")
    mtp = tmp_path / "run/user/1000/gvfs" / "mtp:host=091e_4cda_0000c8d2e1f3" / "Internal Storage"
    _volume(mtp, corpus, "Garmin", "activity")
    (mtp / "Garmin" / "GarminDevice.xml").write_text("<Device><Model/><Id>3991234567</Id></Device>")
    jmtp = tmp_path / "mnt" / "watch" / "Primary"
    _volume(jmtp, corpus)
    (tmp_path / "media" / "ana" / "USBSTICK" / "photos").mkdir(parents=True)  # not a watch
    mounts = tmp_path / "mounts"
    mounts.write_text(f"jmtpfs {tmp_path}/mnt/watch fuse.jmtpfs rw,nosuid 0 0\n/dev/sda1 / ext4 rw 0 0\n")
    patterns = [f"{tmp_path}/media/*/*", f"{tmp_path}/run/user/1000/gvfs/mtp:host=*/*",
                *watch.fuse_mtp_mounts(str(mounts))]
    found = {v.root: v for v in watch.find_watches(patterns)}
    assert set(found) == {usb, mtp, jmtp}
    assert found[mtp].volume_id == "garmin-3991234567"
    assert found[usb].activity_dir == usb / "GARMIN" / "ACTIVITY"


def test_default_patterns_cover_udisks_and_gvfs_mounts():
    pats = watch.default_mount_patterns(uid=1000)
    assert "/media/*/*" in pats and "/run/media/*/*" in pats and "/mnt/*" in pats
    assert "/run/user/1000/gvfs/mtp:host=*/*" in pats


def test_copy_new_copies_once_and_never_modifies_the_watch(tmp_path, corpus):
    act = _volume(tmp_path / "vol", corpus)
    before = _state(tmp_path / "vol")
    vol = watch.volume_at(tmp_path / "vol")
    archive = tmp_path / "archive"
    first = watch.copy_new(vol, archive)
    assert sorted(Path(p).name for p in first.copied) == sorted(FIT) and not first.errors
    for n in FIT:  # same bytes, same mtime: the warehouse's path+size+mtime check then skips them
        copy = archive / vol.volume_id / n
        assert copy.read_bytes() == (act / n).read_bytes()
        assert copy.stat().st_mtime_ns == (act / n).stat().st_mtime_ns
    second = watch.copy_new(vol, archive)
    assert second.copied == [] and second.already == 2
    assert _state(tmp_path / "vol") == before
    # the archive copy was moved away by the user: the state still says it was copied
    (archive / vol.volume_id / FIT[0]).unlink()
    assert watch.copy_new(vol, archive).copied == []


def test_a_rewritten_file_with_the_same_name_is_kept_beside_the_first_copy(tmp_path, corpus):
    act = _volume(tmp_path / "vol", corpus, names=FIT[:1])
    vol = watch.volume_at(tmp_path / "vol")
    watch.copy_new(vol, tmp_path / "archive")
    (act / FIT[0]).write_bytes((corpus / "fit" / FIT[1]).read_bytes())
    os.utime(act / FIT[0], (1_800_000_000, 1_800_000_000))
    rep = watch.copy_new(vol, tmp_path / "archive")
    assert len(rep.copied) == 1 and Path(rep.copied[0]).name != FIT[0]
    assert len(list((tmp_path / "archive" / vol.volume_id).glob("*.fit"))) == 2


def test_unplugged_watch_is_a_retryable_source_error(tmp_path, corpus):
    import shutil

    import pytest
    from retroingest.errors import SourceError

    _volume(tmp_path / "vol", corpus)
    vol = watch.volume_at(tmp_path / "vol")
    shutil.rmtree(tmp_path / "vol")
    with pytest.raises(SourceError) as exc:
        watch.copy_new(vol, tmp_path / "archive")
    assert exc.value.retryable
