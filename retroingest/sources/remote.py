"""fsspec sources: activity files behind any fsspec URL (``file://``, ``memory://``, ``s3://``, ...).

Items are labelled with the full URL, so ``source_files.path`` says where a file came from and
the incremental check (same URL, size and mtime) works as for local files. Network and
filesystem errors become retryable :class:`SourceError` s; a file that is gone is ``vanished``.
Zip archives behind a URL are not expanded: copy them to the inbox folder instead.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Iterator

from retroingest.errors import SourceError, UnsafeInputError
from retroingest.sources import MAX_FILE_BYTES, SourceItem, _gunzip, is_candidate

_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*(::[A-Za-z][A-Za-z0-9+.\-]*)*://")


def is_url(text: str) -> bool:
    """True for 'scheme://...' strings (including file:// and chained 'simplecache::s3://')."""
    return bool(_URL_RE.match(str(text)))


def _mtime(info: dict[str, Any]) -> float | None:
    """Modification time in epoch seconds from an fsspec info dict (keys differ by backend)."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "created", "modified"):
        v = info.get(key)
        if v is None:
            continue
        if isinstance(v, dt.datetime):
            return (v if v.tzinfo else v.replace(tzinfo=dt.timezone.utc)).timestamp()
        if isinstance(v, (int, float)):
            return float(v)
        try:
            return dt.datetime.fromisoformat(str(v).replace("Z", "+00:00")).timestamp()
        except ValueError:
            continue
    return None


def _fs(url: str):
    import fsspec  # optional dependency (extra 'pipelines')

    return fsspec.core.url_to_fs(url)


def _read(fs, path: str, label: str) -> bytes:
    try:
        size = fs.size(path)
        if size is not None and size > MAX_FILE_BYTES:
            raise UnsafeInputError(label, f"file is {size} bytes, larger than any real activity", reason_code="too_large")
        data = fs.cat_file(path)
    except FileNotFoundError as exc:
        raise SourceError(label, "file vanished before it could be read", reason_code="vanished") from exc
    except PermissionError as exc:
        raise SourceError(label, f"permission denied: {exc}", reason_code="unreadable") from exc
    except (OSError, TimeoutError, ConnectionError) as exc:
        raise SourceError(label, f"remote read failed: {exc}", reason_code="remote_error") from exc
    return _gunzip(data, label) if label.lower().endswith(".gz") else data


def url_item(url: str) -> SourceItem:
    """The item for one file URL (used to reopen an item from its label)."""
    fs, path = _fs(url)
    try:
        info = fs.info(path)
    except FileNotFoundError as exc:
        raise SourceError(url, "file vanished before it could be read", reason_code="vanished") from exc
    except (OSError, TimeoutError, ConnectionError) as exc:
        raise SourceError(url, f"remote stat failed: {exc}", reason_code="remote_error") from exc
    label = fs.unstrip_protocol(path)
    return SourceItem(label, int(info.get("size") or 0), _mtime(info), lambda: _read(fs, path, label), origin="url")


def url_items(url: str) -> Iterator[SourceItem]:
    """Items for a file URL or every candidate file under a folder URL, sorted by URL."""
    fs, root = _fs(url)
    try:
        if fs.isdir(root):
            found = fs.find(root, detail=True)
        else:
            found = {root: fs.info(root)}
    except (OSError, TimeoutError, ConnectionError) as exc:
        raise SourceError(url, f"cannot list: {exc}", reason_code="remote_error") from exc
    for path in sorted(found):
        info = found[path]
        name = path.rsplit("/", 1)[-1]
        if info.get("type") == "directory" or name.startswith(".") or not is_candidate(name):
            continue
        if name.lower().endswith(".zip"):
            continue  # not expanded remotely (see module docstring)
        label = fs.unstrip_protocol(path)
        yield SourceItem(label, int(info.get("size") or 0), _mtime(info),
                         lambda p=path, lbl=label: _read(fs, p, lbl), origin="url")
