"""Reopen a source item from its label alone, so parallel workers receive strings, not open handles.

Labels are what ``source_files.path`` stores: a file path (``.gz`` included), a zip member
``/x/export.zip!/activities/1.fit.gz``, or an fsspec URL. A worker (thread, process or Dask
worker) calls :func:`item_for_label` and reads the bytes itself; nothing large crosses over.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from retroingest.errors import SourceError
from retroingest.sources import SourceItem, _zip_items, file_items
from retroingest.sources.remote import is_url, url_item

ZIP_MARK = "!/"


@functools.lru_cache(maxsize=8)
def _zip_index(path: str, mtime_ns: int, size: int) -> dict[str, SourceItem]:
    """Members of one archive by label, listed once per process (keyed on mtime and size)."""
    return {item.label: item for item in _zip_items(Path(path))}


def item_for_label(label: str) -> SourceItem:
    """The :class:`SourceItem` a label names; raises a retryable SourceError when it is gone."""
    if is_url(label):
        return url_item(label)
    if ZIP_MARK in label:
        archive = label.split(ZIP_MARK, 1)[0]
        try:
            st = os.stat(archive)
        except OSError as exc:
            raise SourceError(label, f"archive vanished: {exc}", reason_code="vanished") from exc
        item = _zip_index(archive, st.st_mtime_ns, st.st_size).get(label)
        if item is None:
            raise SourceError(label, "no such member in the archive", reason_code="vanished")
        return item
    items = list(file_items(Path(label)))
    if len(items) != 1:
        raise SourceError(label, "label does not name a single file", reason_code="unreadable")
    return items[0]
