"""Staging: decode one file into a small folder of Parquet files plus a JSON note.

This is the hand-over between the parallel decode step and the single warehouse writer: workers
(processes, Prefect tasks, Dask workers) only ever write their own staging folder, and the loader
reads finished folders. A folder is complete once ``file.json`` exists (written last, atomically).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import signal
import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from retroingest.decode import decode_bytes, sniff_format
from retroingest.errors import NotActivityError, RetroIngestError

STAGE_VERSION = 1
# Per-file decode time limit (s). Real files decode in well under a minute even through the
# fitparse fallback; a file that takes longer is quarantined as 'decode timed out' so one
# pathological input cannot hang a batch. 0 disables the limit.
DECODE_TIMEOUT_S = 300.0
ENV_DECODE_TIMEOUT = "RETROINGEST_DECODE_TIMEOUT_S"


class DecodeTimeout(BaseException):
    """Raised by the alarm inside a decoder; a BaseException so decoders' broad handlers let it through."""


@contextmanager
def time_limit(seconds: float):
    """SIGALRM-based limit for the block; a no-op off the main thread or when seconds <= 0."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def on_alarm(signum, frame):
        raise DecodeTimeout()

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def decode_timeout_s() -> float:
    """$RETROINGEST_DECODE_TIMEOUT_S, else :data:`DECODE_TIMEOUT_S`."""
    try:
        return float(os.environ.get(ENV_DECODE_TIMEOUT) or DECODE_TIMEOUT_S)
    except ValueError:
        return DECODE_TIMEOUT_S


@dataclass
class StagedFile:
    """What the loader needs to know about one staged file (``file.json``)."""

    label: str
    sha256: str
    size_bytes: int
    mtime: float | None
    status: str                      # ok | salvaged | skipped | quarantined | duplicate
    format: str | None = None
    decoder: str | None = None
    reason: str | None = None
    reason_code: str | None = None
    fit_file_type: str | None = None
    n_activities: int = 0
    n_records: int = 0
    duplicate_of_label: str | None = None
    stage_dir: str | None = None
    version: int = STAGE_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, stage_dir: str | Path) -> "StagedFile":
        data = json.loads((Path(stage_dir) / "file.json").read_text())
        data["stage_dir"] = str(stage_dir)
        return cls(**data)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stage_key(sha256: str, label: str) -> str:
    """Folder name for one (content, path) pair."""
    return f"{sha256[:16]}-{hashlib.sha256(label.encode()).hexdigest()[:8]}"


def _write_json_atomic(path: Path, obj: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, default=str, indent=1))
    os.replace(tmp, path)


def _write_parquet(table: pa.Table, path: Path) -> None:
    """One Parquet file, built in memory and written with one call.

    Plain encoding, no dictionary, no statistics, no compression: for a few thousand rows per
    file these cost more CPU than they save (staging files are read once, from the page cache,
    and deleted), and one write call avoids pyarrow's many small writes to an open file.
    """
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="none", use_dictionary=False, write_statistics=False)
    path.write_bytes(sink.getvalue())


def _with_session(df: pl.DataFrame, i: int) -> pa.Table:
    """The frame as Arrow with a constant Int32 ``session_index`` column appended."""
    return df.to_arrow().append_column("session_index", pa.array(np.full(df.height, i, dtype=np.int32)))


def _activity_row(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: (float(v) if hasattr(v, "dtype") else v) for k, v in meta.items()}


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def _arrow_value(v: Any) -> pa.Array | None:
    """A one-row Arrow column typed as polars infers (and exports) that Python value; None if unsure."""
    if v is None:
        return pa.nulls(1)
    if isinstance(v, bool):
        return pa.array([v], pa.bool_())
    if isinstance(v, int):
        return pa.array([v], pa.int64()) if -2**63 <= v < 2**63 else None
    if isinstance(v, float):
        return pa.array([v], pa.float64())
    if isinstance(v, str):
        return pa.array([v], pa.large_string())
    if isinstance(v, dt.datetime) and v.tzinfo is not None and str(v.tzinfo) == "UTC":
        return pa.array([(v - _EPOCH) // dt.timedelta(microseconds=1)], pa.timestamp("us", tz="UTC"))
    return None


def _activities_table(metas: list[dict[str, Any]]) -> pa.Table:
    """One row per activity, dtypes as polars infers them over all rows (its own inference for
    several rows or an unusual value; one row of plain values is typed directly, much faster)."""
    if len(metas) == 1:
        cols = [_arrow_value(v) for v in metas[0].values()]
        if all(c is not None for c in cols):
            return pa.Table.from_arrays(cols, names=list(metas[0]))
    return pl.DataFrame(metas, infer_schema_length=None).to_arrow()


def write_stage(stage_root: Path, label: str, data: bytes, size_bytes: int, mtime: float | None,
                sha: str | None = None) -> StagedFile:
    """Decode ``data`` and write its staging folder; never raises for bad input (it is noted)."""
    sha = sha or sha256_hex(data)
    out = Path(stage_root) / stage_key(sha, label)
    if (out / "file.json").exists():
        return StagedFile.read(out)
    out.mkdir(parents=True, exist_ok=True)
    info = StagedFile(label=label, sha256=sha, size_bytes=size_bytes, mtime=mtime, status="ok",
                      format=sniff_format(data, label))
    limit = decode_timeout_s()
    try:
        with time_limit(limit):
            decoded = decode_bytes(data, label)
    except DecodeTimeout:
        info.status, info.reason, info.reason_code = (
            "quarantined", f"decode timed out after {limit:g} s (per-file limit, {ENV_DECODE_TIMEOUT})", "decode_timeout")
    except NotActivityError as exc:
        info.status, info.reason, info.reason_code = "skipped", exc.reason, exc.reason_code
        if info.format == "fit" and exc.reason_code == "not_activity":
            info.fit_file_type = exc.reason.split("'")[1] if "'" in exc.reason else None
    except RetroIngestError as exc:
        info.status, info.reason, info.reason_code = "quarantined", exc.reason, exc.reason_code
    except Exception as exc:  # a decoder bug must not stop the batch: quarantine with the evidence
        info.status, info.reason, info.reason_code = (
            "quarantined", f"internal decoder error {type(exc).__name__}: {exc}", "decoder_error")
    else:
        info.format, info.decoder, info.fit_file_type = decoded.format, decoded.decoder, decoded.fit_file_type
        if decoded.salvage_reason:
            info.status, info.reason, info.reason_code = "salvaged", decoded.salvage_reason, decoded.salvage_code
        rec_tables, lap_tables, metas = [], [], []
        for act in decoded.activities:
            i = act.meta["session_index"]
            rec_tables.append(_with_session(act.records, i))
            lap_tables.append(_with_session(act.laps, i))
            metas.append(_activity_row(act.meta))
        _write_parquet(pa.concat_tables(rec_tables), out / "records.parquet")
        _write_parquet(pa.concat_tables(lap_tables), out / "laps.parquet")
        _write_parquet(_activities_table(metas), out / "activities.parquet")
        info.n_activities = len(metas)
        info.n_records = sum(t.num_rows for t in rec_tables)
    info.stage_dir = str(out)
    _write_json_atomic(out / "file.json", asdict(info))
    return info


def write_note(stage_root: Path, info: StagedFile) -> StagedFile:
    """Stage a file that needs no decoding (an exact duplicate, a read error): only file.json."""
    out = Path(stage_root) / stage_key(info.sha256 or "0" * 16, info.label)
    out.mkdir(parents=True, exist_ok=True)
    info.stage_dir = str(out)
    _write_json_atomic(out / "file.json", asdict(info))
    return info


def clear(stage_dir: str | Path) -> None:
    shutil.rmtree(stage_dir, ignore_errors=True)



