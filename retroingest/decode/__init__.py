"""Decode stage: bytes of one file → :class:`retroingest.canonical.DecodedFile`.

One public entry, :func:`decode_bytes`, sniffs the format from the content (falling back to the
name's extension) and calls the FIT, GPX or TCX decoder. It is a pure function of the bytes, so
files can be decoded in parallel processes.
"""

from __future__ import annotations

from retroingest.canonical import DecodedFile
from retroingest.errors import DecodeError

FORMATS = ("fit", "gpx", "tcx")


def sniff_format(data: bytes, name: str = "") -> str | None:
    """'fit', 'gpx', 'tcx' or None, from magic bytes / root element, else the file extension."""
    if len(data) >= 12 and data[8:12] == b".FIT":
        return "fit"
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<") or b"<?xml" in head[:200]:
        if b"<gpx" in head:
            return "gpx"
        if b"<trainingcenterdatabase" in head:
            return "tcx"
    lower = name.lower()
    for ext in FORMATS:
        if lower.endswith("." + ext):
            return ext
    return None


def decode_bytes(data: bytes, name: str = "") -> DecodedFile:
    """Decode one file's (already decompressed) bytes. Raises a RetroIngestError subclass."""
    if not data:
        raise DecodeError(name, "empty file (0 bytes)", reason_code="empty")
    fmt = sniff_format(data, name)
    if fmt == "fit":
        from retroingest.decode.fit import decode_fit
        return decode_fit(data, name)
    if fmt == "gpx":
        from retroingest.decode.gpx import decode_gpx
        return decode_gpx(data, name)
    if fmt == "tcx":
        from retroingest.decode.tcx import decode_tcx
        return decode_tcx(data, name)
    raise DecodeError(name, "unknown format: not FIT (no '.FIT' header), GPX or TCX", reason_code="unknown_format")
