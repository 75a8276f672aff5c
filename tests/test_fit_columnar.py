"""The columnar FIT reader gives the reference reader's frames, or hands the file to it.

Reference results (fitparse, garmin-fit-sdk) are computed once per session in a 2-process pool,
biggest files first, because fitparse needs ~100 s of CPU for the whole corpus.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import os
import struct
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from retroingest.decode import fit_columnar as fc
from retroingest.decode.fit import (
    FIT_EPOCH, FITPARSE_DECODER, WANTED, ReadResult, messages_to_decoded, read_messages_fitparse,
)
from retroingest.errors import RetroIngestError
from conftest import corpus_dir

pytestmark = pytest.mark.corpus


def _corpus_fit_files() -> list[str]:
    d = corpus_dir()
    out = []
    for sub in ("fit", "bad"):
        if (d / sub).is_dir():
            out += [f"{sub}/{p.name}" for p in sorted((d / sub).iterdir()) if p.suffix.lower() == ".fit"]
    return out


FIT_FILES = _corpus_fit_files()


# ----------------------------------------------------------------------------- reference jobs

def _fresh_fitparse_state() -> None:
    """fitparse keeps developer-field definitions in a module global; start every file clean."""
    import fitparse.records

    fitparse.records.DEV_TYPES.clear()


def _decoded_or_error(res: ReadResult, path: str) -> Any:
    try:
        return messages_to_decoded(res, path)
    except RetroIngestError as exc:
        return (type(exc).__name__, exc.reason_code)


def _reference_job(path: str) -> tuple[ReadResult, Any]:
    """fitparse reader output and its canonical form (runs in a worker process)."""
    _fresh_fitparse_state()
    data = Path(path).read_bytes()
    res = read_messages_fitparse(data, path)
    return res, _decoded_or_error(res, path)


def _garmin_job(path: str) -> dict[str, Any] | None:
    """garmin-fit-sdk record columns, or None when the SDK reports errors (runs in a worker)."""
    from garmin_fit_sdk import Decoder, Stream

    data = Path(path).read_bytes()
    msgs, errors = Decoder(Stream.from_byte_array(bytearray(data))).read(
        merge_heart_rates=False,           # the SDK would copy hr messages into records
        convert_datetimes_to_dates=False,  # raw FIT seconds
        convert_types_to_strings=False,
        expand_sub_fields=False,
    )
    if errors:
        return None
    recs = msgs.get("record_mesgs", [])
    keys = ("timestamp", "distance", "heart_rate", "cadence", "speed", "enhanced_speed")
    return {k: [r.get(k) for r in recs] for k in keys}


@pytest.fixture(scope="session")
def references(corpus: Path) -> dict[tuple[str, str], Future]:
    """Futures of reference results per (job, corpus file), computed in 2 worker processes."""
    files = sorted(FIT_FILES, key=lambda f: -(corpus / f).stat().st_size)
    pool = ProcessPoolExecutor(max_workers=min(2, os.cpu_count() or 1), mp_context=mp.get_context("spawn"))
    futs: dict[tuple[str, str], Future] = {}
    for f in files:
        futs[("fitparse", f)] = pool.submit(_reference_job, str(corpus / f))
        if f.startswith("fit/"):
            futs[("garmin", f)] = pool.submit(_garmin_job, str(corpus / f))
    for f in FIT_FILES:   # the main process reads every file itself while the workers run
        _fast(corpus / f)
    yield futs
    pool.shutdown(wait=False, cancel_futures=True)


_FAST_CACHE: dict[str, ReadResult] = {}


def _fast(path: Path, cache: bool = True) -> ReadResult:
    """The fast reader's result; corpus files are read once per session (fallbacks are slow)."""
    key = str(path)
    if not cache or key not in _FAST_CACHE:
        _fresh_fitparse_state()   # a fallback must see the same fitparse state as the reference
        res = fc.read_messages_fast(path.read_bytes(), key)
        if not cache:
            return res
        _FAST_CACHE[key] = res
    return _FAST_CACHE[key]


def _assert_same_decoded(a: Any, b: Any) -> None:
    if isinstance(b, tuple) or isinstance(a, tuple):
        assert a == b, "both readers must fail with the same error class and reason_code"
        return
    assert (a.format, a.salvage_reason, a.salvage_code, a.fit_file_type) == \
        (b.format, b.salvage_reason, b.salvage_code, b.fit_file_type)
    assert len(a.activities) == len(b.activities)
    for x, y in zip(a.activities, b.activities):
        assert x.meta == y.meta
        assert_frame_equal(x.records, y.records)
        assert_frame_equal(x.laps, y.laps)


# ----------------------------------------------------------------------------- 1. equality with fitparse

@pytest.mark.parametrize("name", FIT_FILES)
def test_fast_reader_gives_fitparse_frames_and_canonical_output(corpus, references, name):
    fast = _fast(corpus / name)
    ref, ref_decoded = references[("fitparse", name)].result()
    assert (fast.error, fast.error_code) == (ref.error, ref.error_code)
    for msg in WANTED:
        assert_frame_equal(fast.messages[msg], ref.messages[msg])
    _assert_same_decoded(_decoded_or_error(fast, str(corpus / name)), ref_decoded)
    if ref.error:
        assert fast.decoder == FITPARSE_DECODER, "a damaged file must be read by the reference reader"


@pytest.mark.parametrize("name", [f for f in FIT_FILES if f.startswith("fit/")])
def test_fast_reader_reads_clean_files_itself(corpus, name):
    fast = _fast(corpus / name)
    assert fast.decoder == fc.DECODER, f"fell back: {fast.extra.get('fast_fallback')}"


# ----------------------------------------------------------------------------- 2. garmin-fit-sdk oracle

def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return False
    return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(a)))


@pytest.mark.parametrize("name", [f for f in FIT_FILES if f.startswith("fit/")])
def test_fast_reader_agrees_with_garmin_sdk_on_records(corpus, references, name):
    garmin = references[("garmin", name)].result()
    if garmin is None:
        pytest.skip("garmin-fit-sdk cannot read this file (e.g. compressed timestamps)")
    fast = _fast(corpus / name)
    rec = fast.messages["record"]
    assert rec.height == len(garmin["timestamp"])
    epoch = FIT_EPOCH
    ts = [None if t is None else int((t - epoch).total_seconds()) for t in rec["timestamp"].to_list()]
    assert ts == garmin["timestamp"]
    for col in ("distance", "heart_rate", "cadence", "speed", "enhanced_speed"):
        mine = rec[col].to_list()
        bad = [i for i, (a, b) in enumerate(zip(mine, garmin[col])) if not _same(a, b)]
        assert not bad, f"{col}: {len(bad)} rows differ, first at {bad[0]}: {mine[bad[0]]} vs {garmin[col][bad[0]]}"


# ----------------------------------------------------------------------------- 3. fallbacks on damage

SMALL_ACTIVITY = "fit/fitparse__Activity.fit"
SMALL_14_BYTE_HEADER = "fit/goldencheetah__moxy.fit"


def _segment_end(data: bytes) -> int:
    return data[0] + struct.unpack("<I", data[4:8])[0]


def test_truncated_file_is_read_by_fitparse_with_its_reason(corpus, tmp_path):
    data = (corpus / SMALL_ACTIVITY).read_bytes()
    p = tmp_path / "truncated.fit"
    p.write_bytes(data[: len(data) * 6 // 10])
    fast = _fast(p, cache=False)
    ref = read_messages_fitparse(p.read_bytes(), str(p))
    assert fast.decoder == FITPARSE_DECODER
    assert fast.error_code == ref.error_code == "truncated"
    assert fast.messages["record"].height == ref.messages["record"].height > 0


def test_crc_damaged_file_is_read_by_fitparse_with_its_reason(corpus, tmp_path):
    data = bytearray((corpus / SMALL_ACTIVITY).read_bytes())
    data[_segment_end(data) - 10] ^= 0x01   # one bit inside the last messages: only the CRC sees it
    p = tmp_path / "crc.fit"
    p.write_bytes(bytes(data))
    fast = _fast(p, cache=False)
    assert fast.decoder == FITPARSE_DECODER
    assert fast.error_code == "crc_mismatch"
    assert "CRC" in fast.extra["fast_fallback"]


def test_zero_header_crc_is_accepted_by_the_fast_reader(corpus, tmp_path):
    data = bytearray((corpus / SMALL_14_BYTE_HEADER).read_bytes())
    assert data[0] == 14 and data[12:14] != b"\x00\x00"
    # the header CRC is part of the file CRC: zero it and re-sign the file, as older Edge units do
    data[12:14] = b"\x00\x00"
    signed = _resign(data)
    fast = fc.read_messages_fast(signed)
    ref = read_messages_fitparse(signed)
    assert fast.decoder == fc.DECODER and ref.error is None
    assert_frame_equal(fast.messages["record"], ref.messages["record"])


def _resign(data: bytearray) -> bytes:
    end = _segment_end(data)
    data[end:end + 2] = struct.pack("<H", fc.crc16(np.frombuffer(bytes(data[:end]), dtype=np.uint8)))
    return bytes(data)


def test_structural_damage_behind_a_valid_crc_never_gives_different_frames(corpus):
    """Random byte damage, CRC re-signed: the fast reader either matches fitparse or hands over."""
    clean = (corpus / SMALL_14_BYTE_HEADER).read_bytes()
    rng = np.random.default_rng(20261123)
    n_fast = 0
    for _ in range(40):
        data = bytearray(clean)
        for i in rng.integers(data[0], _segment_end(data), size=int(rng.integers(1, 4))):
            data[i] = int(rng.choice([rng.integers(0, 256), 0, 0xFF, data[i] ^ (1 << int(rng.integers(0, 8)))]))
        damaged = _resign(data)
        _fresh_fitparse_state()
        fast = fc.read_messages_fast(damaged)
        _fresh_fitparse_state()
        ref = read_messages_fitparse(damaged)
        assert (fast.error, fast.error_code) == (ref.error, ref.error_code)
        for msg in WANTED:
            assert_frame_equal(fast.messages[msg], ref.messages[msg])
        n_fast += fast.decoder == fc.DECODER
    assert n_fast > 10, "most damage of this kind is still decodable; the fast path should take it"


def test_crc16_matches_the_fit_sdk_nibble_algorithm():
    from fitparse.records import Crc

    rng = np.random.default_rng(7)
    for n in (0, 1, 2, 3, 63, 64, 65, 255, 4096, 4099, 70_001, 131_075, 1_000_003):
        b = rng.integers(0, 256, n, dtype=np.uint8)
        assert fc.crc16(b) == Crc.calculate(b.tobytes())


def test_device_relative_date_time_is_anchored_at_the_fit_epoch(corpus):
    """date_time < 0x10000000 (seconds since power-on) follows the reference: FIT epoch + seconds."""
    fast = _fast(corpus / "fit/fitparse__compressed-speed-distance.fit")
    assert fast.decoder == fc.DECODER
    ts = fast.messages["record"]["timestamp"].drop_nulls()
    assert ts.len() > 0 and ts.max() < FIT_EPOCH + dt.timedelta(seconds=0x10000000)
    assert ts.dtype == pl.Datetime("us", "UTC")
