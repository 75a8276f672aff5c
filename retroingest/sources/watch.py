"""Watches connected over USB: find mounted Garmin volumes and copy new activity files out.

A Garmin watch shows up either as USB mass storage (udisks mounts it under ``/media/<user>/``,
``/run/media/<user>/`` or an admin's ``/mnt/``) or, on newer models, over MTP through gvfs
(``/run/user/<uid>/gvfs/mtp:host=.../<storage>/``) or a FUSE mount such as jmtpfs. Inside, the
layout is the same: ``GARMIN/Activity/*.fit`` (case varies). See docs/CONFIG.md.

The watch is never modified: files are only read, and copied into a local archive folder
(``<archive>/<volume id>/<name>``, mtime preserved) before anything decodes them, so an unplug
in the middle of a decode costs nothing and the archive is a backup. A small JSON state in the
archive remembers what was copied from which volume (size + mtime), so an unchanged file is
not read from the watch again even if its archive copy has been moved away.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from retroingest.errors import SourceError
from retroingest.sources import is_candidate

STATE_NAME = ".watch-state.json"
FUSE_MTP_TYPES = ("fuse.jmtpfs", "fuse.simple-mtpfs", "fuse.go-mtpfs", "fuse.mtpfs", "fuse.aft-mtp-mount")


def default_mount_patterns(uid: int | None = None) -> list[str]:
    """Glob patterns of folders that may be a mounted watch (or hold one, one level down)."""
    uid = os.getuid() if uid is None else uid
    return ["/media/*", "/media/*/*", "/run/media/*/*", "/mnt/*",
            f"/run/user/{uid}/gvfs/mtp:host=*", f"/run/user/{uid}/gvfs/mtp:host=*/*"]


def fuse_mtp_mounts(mounts_file: str = "/proc/mounts") -> list[str]:
    """Mount points of FUSE MTP filesystems (jmtpfs and friends), from /proc/mounts."""
    out = []
    try:
        with open(mounts_file) as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 3 and parts[2] in FUSE_MTP_TYPES:
                    mp = parts[1].replace("\\040", " ")
                    out += [mp, os.path.join(glob.escape(mp), "*")]
    except OSError:
        pass
    return out


def _child_ci(folder: Path, name: str) -> Path | None:
    """The sub-folder of ``folder`` called ``name`` in any letter case, or None."""
    try:
        with os.scandir(folder) as it:
            for entry in it:
                if entry.name.lower() == name and entry.is_dir():
                    return Path(entry.path)
    except OSError:
        return None
    return None


@dataclass(frozen=True)
class WatchVolume:
    """A mounted watch: its root and its ``GARMIN/Activity`` folder."""

    root: Path
    activity_dir: Path
    volume_id: str          # the device's unit id when GarminDevice.xml has one, else the mount name


def _volume_id(root: Path, garmin: Path) -> str:
    for entry in (os.scandir(garmin) if garmin.exists() else []):
        if entry.name.lower() == "garmindevice.xml":
            try:
                m = re.search(r"<Id>\s*(\d+)\s*</Id>", Path(entry.path).read_text(errors="replace"))
            except OSError:
                m = None
            if m:
                return f"garmin-{m.group(1)}"
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", root.name).strip("_")
    return name or "watch"


def volume_at(root: Path) -> WatchVolume | None:
    """The watch mounted at ``root`` (``root/GARMIN/Activity``, any case), or None."""
    garmin = _child_ci(root, "garmin")
    act = _child_ci(garmin, "activity") if garmin else None
    if act is None:
        return None
    return WatchVolume(root, act, _volume_id(root, garmin))


def find_watches(patterns: Iterable[str] | None = None) -> list[WatchVolume]:
    """Mounted volumes holding ``GARMIN/Activity/`` (any case), from mount-point glob patterns."""
    patterns = list(patterns) if patterns is not None else default_mount_patterns() + fuse_mtp_mounts()
    seen: dict[str, WatchVolume] = {}
    for pattern in patterns:
        for candidate in sorted(glob.glob(os.path.expanduser(pattern))):
            vol = volume_at(Path(candidate))
            if vol and str(vol.activity_dir) not in seen:
                seen[str(vol.activity_dir)] = vol
    return list(seen.values())


@dataclass
class CopyReport:
    """What one copy pass did. ``errors``: (watch path, reason) of files that could not be read."""

    volume_id: str
    copied: list[str] = field(default_factory=list)
    already: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)


def _load_state(archive: Path) -> dict:
    try:
        return json.loads((archive / STATE_NAME).read_text())
    except (OSError, ValueError):
        return {}


def _save_state(archive: Path, state: dict) -> None:
    tmp = archive / (STATE_NAME + ".tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
    os.replace(tmp, archive / STATE_NAME)


def copy_new(volume: WatchVolume, archive_dir: str | os.PathLike) -> CopyReport:
    """Copy activity files not copied before from the watch into ``archive_dir/<volume id>/``.

    Read-only on the watch. A file is copied to a temporary name and renamed when complete, so a
    watch unplugged mid-copy leaves no partial file; the failure is listed in ``errors`` and the
    file is tried again on the next pass. Raises nothing for per-file problems.
    """
    archive = Path(archive_dir)
    dest_dir = archive / volume.volume_id
    dest_dir.mkdir(parents=True, exist_ok=True)
    state = _load_state(archive)
    seen = state.setdefault(volume.volume_id, {})
    report = CopyReport(volume.volume_id)
    try:
        names = sorted(e.name for e in os.scandir(volume.activity_dir) if e.is_file() and is_candidate(e.name))
    except OSError as exc:
        raise SourceError(str(volume.activity_dir), f"cannot list the watch: {exc}", reason_code="unreadable") from exc
    for name in names:
        src = volume.activity_dir / name
        try:
            st = src.stat()
        except OSError as exc:
            report.errors.append((str(src), f"cannot stat: {exc}"))
            continue
        stamp = [st.st_size, st.st_mtime_ns]
        dest = dest_dir / name
        if seen.get(name) == stamp:
            report.already += 1
            continue
        if dest.exists() and dest.stat().st_size == st.st_size and dest.stat().st_mtime_ns == st.st_mtime_ns:
            seen[name] = stamp
            report.already += 1
            continue
        if dest.exists():  # same name, different content (a rewritten file): keep both
            dest = dest_dir / f"{Path(name).stem}.{st.st_mtime_ns}{Path(name).suffix}"
        tmp = dest.with_name("." + dest.name + ".part")
        try:
            shutil.copyfile(src, tmp)
            if tmp.stat().st_size != st.st_size:
                raise OSError(f"short copy: {tmp.stat().st_size} of {st.st_size} bytes")
            os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
            os.replace(tmp, dest)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            report.errors.append((str(src), f"copy failed: {exc}"))
            continue
        seen[name] = stamp
        report.copied.append(str(dest))
    _save_state(archive, state)
    return report
