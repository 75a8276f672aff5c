"""Typed errors. Each carries the file and the reason, so a bad file becomes one clear quarantine row.

The tree is shallow on purpose: callers catch ``RetroIngestError`` at a batch boundary and the
subclass tells which stage failed. ``reason_code`` is the machine-readable vocabulary stored in
``source_files.reason_code``.
"""

from __future__ import annotations


class RetroIngestError(Exception):
    """Base error: ``path`` names the file, ``reason`` says what is wrong in words."""

    retryable = False

    def __init__(self, path: str | None, reason: str, *, reason_code: str = "error",
                 offset: int | None = None):
        self.path = str(path) if path is not None else None
        self.reason = reason
        self.reason_code = reason_code
        self.offset = offset
        where = f" at byte {offset}" if offset is not None else ""
        super().__init__(f"{self.path or '<input>'}{where}: {reason}")


class SourceError(RetroIngestError):
    """A file could not be read from its source (unplugged watch, vanished file). Retryable."""

    retryable = True


class UnsafeInputError(RetroIngestError):
    """Input refused for safety: path traversal in a zip, a zip bomb, XML entities, oversize files."""


class DecodeError(RetroIngestError):
    """The bytes are not a readable activity file (bad header, CRC, truncated, malformed XML, ...)."""


class NotActivityError(RetroIngestError):
    """A valid file that holds no activity (FIT monitoring/settings/workout, GPX route without times)."""


class ContractError(RetroIngestError):
    """A decoder produced columns that do not match the canonical schema. A bug, never bad input."""


class LoadError(RetroIngestError):
    """Writing to the warehouse failed."""


class WarehouseBusyError(LoadError):
    """Another process holds the warehouse write lock."""

    retryable = True
