"""Sources: find activity files and hand out small :class:`SourceItem` records. They never decode.

``discover(paths)`` walks files and folders (recursively), opens ``.gz`` files and the members of
``.zip`` archives (Strava and Garmin bulk exports nest ``.fit.gz``/``.gpx.gz`` inside zips). Every
item carries an ``opener`` that returns the decompressed bytes, with limits that refuse zip
bombs and files far larger than any real activity.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Iterator

from retroingest.errors import SourceError, UnsafeInputError

ACTIVITY_EXTS = (".fit", ".gpx", ".tcx")
# The largest real activity files seen are a few MB (a 28 h FIT is 2.4 MB, a long GPX ~20 MB).
MAX_FILE_BYTES = 256 * 1024 * 1024
MAX_ARCHIVE_TOTAL_BYTES = 8 * 1024**3
MAX_COMPRESSION_RATIO = 200  # FIT/GPX compress 5-30x; hundreds-fold means a bomb


@dataclass(frozen=True)
class SourceItem:
    """One candidate file. ``label`` is what source_files.path stores (zip members as 'a.zip!/x.fit')."""

    label: str
    size_bytes: int                 # size on the source (compressed size for .gz / zip members)
    mtime: float | None
    opener: Callable[[], bytes]     # decompressed bytes; raises SourceError / UnsafeInputError
    origin: str = "path"            # path | zip | watch | inbox | url

    def read(self) -> bytes:
        return self.opener()


def is_candidate(name: str) -> bool:
    """True for names that may hold an activity: .fit/.gpx/.tcx, optionally .gz, and .zip archives."""
    n = name.lower()
    if n.endswith(".gz"):
        n = n[:-3]
    return n.endswith(ACTIVITY_EXTS) or n.endswith(".zip")


def _gunzip(raw: bytes, label: str) -> bytes:
    # the same ratio limit as zip entries (a gzip bomb), read no further than it allows
    cap = min(MAX_FILE_BYTES, max(1 << 20, len(raw) * MAX_COMPRESSION_RATIO))
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as gz:
            out = gz.read(cap + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise UnsafeInputError(label, f"bad gzip data: {exc}", reason_code="bad_gzip") from exc
    if len(out) > cap and cap == MAX_FILE_BYTES:
        raise UnsafeInputError(label, f"decompresses to more than {MAX_FILE_BYTES} bytes (refused)",
                               reason_code="too_large")
    if len(out) > cap:
        raise UnsafeInputError(label, f"gzip expands more than {MAX_COMPRESSION_RATIO}:1 ({len(raw)} bytes to over "
                               f"{cap}): looks like a bomb, refused", reason_code="zip_bomb")
    return out


def _read_file(path: Path) -> bytes:
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):  # a FIFO or device would block or never end
            raise UnsafeInputError(str(path), "not a regular file (FIFO, device or socket): refused",
                                   reason_code="not_regular_file")
        size = st.st_size
        if size > MAX_FILE_BYTES:
            raise UnsafeInputError(str(path), f"file is {size} bytes, larger than any real activity (limit {MAX_FILE_BYTES})",
                                   reason_code="too_large")
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise SourceError(str(path), "file vanished before it could be read", reason_code="vanished") from exc
    except PermissionError as exc:
        raise SourceError(str(path), f"permission denied: {exc}", reason_code="unreadable") from exc
    except IsADirectoryError as exc:
        raise SourceError(str(path), "is a directory", reason_code="unreadable") from exc
    if path.name.lower().endswith(".gz"):
        return _gunzip(data, str(path))
    return data


def _safe_member_name(name: str) -> bool:
    p = PurePosixPath(name.replace("\\", "/"))
    return not (p.is_absolute() or ".." in p.parts or (len(name) > 1 and name[1] == ":"))


def _zip_items(path: Path) -> Iterator[SourceItem]:
    """Members of a zip archive, with limits against bombs and unsafe names."""
    label = str(path)
    try:
        zf = zipfile.ZipFile(path)
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        yield _failing_item(label, path, UnsafeInputError(label, f"bad zip archive: {exc}", reason_code="bad_zip"))
        return
    total = sum(i.file_size for i in infos)
    mtime = path.stat().st_mtime
    for info in sorted(infos, key=lambda i: i.filename):
        if info.is_dir() or not is_candidate(info.filename):
            continue
        member_label = f"{label}!/{info.filename}"
        if not _safe_member_name(info.filename):
            yield _failing_item(member_label, path, UnsafeInputError(
                member_label, "zip entry name escapes the archive ('..' or absolute path): refused",
                reason_code="unsafe_path"))
            continue
        problem = None
        if info.file_size > MAX_FILE_BYTES:
            problem = f"zip entry expands to {info.file_size} bytes (limit {MAX_FILE_BYTES})"
        elif info.compress_size and info.file_size / info.compress_size > MAX_COMPRESSION_RATIO:
            problem = f"compression ratio {info.file_size / info.compress_size:.0f}:1 looks like a zip bomb"
        elif total > MAX_ARCHIVE_TOTAL_BYTES:
            problem = f"archive expands to {total} bytes in total (limit {MAX_ARCHIVE_TOTAL_BYTES})"
        if problem:
            yield _failing_item(member_label, path, UnsafeInputError(member_label, problem + ": refused",
                                                                     reason_code="zip_bomb"))
            continue
        if info.filename.lower().endswith(".zip"):
            continue  # nested archives are not followed

        def opener(p=path, name=info.filename, lbl=member_label) -> bytes:
            with zipfile.ZipFile(p) as z, z.open(name) as fh:
                data = fh.read(MAX_FILE_BYTES + 1)
            if len(data) > MAX_FILE_BYTES:
                raise UnsafeInputError(lbl, "zip entry larger than declared: refused", reason_code="zip_bomb")
            return _gunzip(data, lbl) if name.lower().endswith(".gz") else data

        yield SourceItem(member_label, info.compress_size, mtime, opener, origin="zip")


def _failing_item(label: str, path: Path, exc: Exception) -> SourceItem:
    def opener() -> bytes:
        raise exc
    try:
        st = path.stat()
        size, mtime = st.st_size, st.st_mtime
    except OSError:
        size, mtime = 0, None
    return SourceItem(label, size, mtime, opener)


def file_items(path: Path, origin: str = "path") -> Iterator[SourceItem]:
    """Items for one file: itself, or the members of a zip archive."""
    path = path.absolute()
    if path.name.lower().endswith(".zip"):
        yield from _zip_items(path)
        return
    try:
        st = path.stat()
    except OSError as exc:
        yield _failing_item(str(path), path, SourceError(str(path), f"cannot stat: {exc}", reason_code="unreadable"))
        return
    yield SourceItem(str(path), st.st_size, st.st_mtime, lambda p=path: _read_file(p), origin=origin)


def walk(root: Path, refused: list[Path] | None = None) -> Iterator[Path]:
    """Candidate files under a folder, sorted, hidden folders skipped, symlinks not followed.

    Links to files outside the folder are not followed; they are appended to ``refused``.
    """
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or not is_candidate(name):
                continue
            p = Path(dirpath) / name
            if p.is_symlink():
                target = p.resolve()
                if not target.is_relative_to(root.resolve()):
                    if refused is not None:
                        refused.append(p)
                    continue  # a link out of the folder is not followed
            yield p


def _symlink_out_item(link: Path) -> SourceItem:
    label = str(link.absolute())
    return _failing_item(label, link, UnsafeInputError(
        label, f"symbolic link leads out of the folder (to {os.readlink(link)}): not followed",
        reason_code="unsafe_symlink"))


def discover(paths: Iterable[str | os.PathLike]) -> Iterator[SourceItem]:
    """Source items for files, folders (recursive), .gz files, .zip archives and fsspec URLs, in a stable order."""
    for raw in paths:
        if "://" in str(raw):  # fsspec URL (file://, memory://, s3://, ...): retroingest.sources.remote
            from retroingest.sources.remote import is_url, url_items
            if is_url(str(raw)):
                yield from url_items(str(raw))
                continue
        p = Path(raw)
        if p.is_dir():
            refused: list[Path] = []
            for f in walk(p, refused):
                while refused:
                    yield _symlink_out_item(refused.pop(0))
                yield from file_items(f)
            for link in refused:
                yield _symlink_out_item(link)
        else:
            yield from file_items(p)
