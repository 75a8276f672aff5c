"""Columnar FIT reader: the same message frames as the fitparse reader, decoded in bulk with NumPy.

How it works (FIT protocol, "FIT File Structure" in the Garmin FIT SDK docs):

1. **Walk.** A pure-Python loop over message headers. Definition messages are parsed once per
   distinct byte layout; data messages only note their payload offset and definition id. A run
   of identical headers at the message stride is taken in one NumPy step.
2. **Gather.** Per distinct definition, the payloads are copied into one ``(k, size)`` byte array
   and each field is viewed as a NumPy column (per-definition endianness).
3. **Profile rules** from ``fitparse.profile`` (MIT; SDK 20.8 tables, the same ones the reference
   reader uses): invalid sentinels per base type become NULL (0 for the z types), scale/offset,
   enum names, subfields (``garmin_product``, ``avg_running_cadence``), component expansion
   (``speed`` → ``enhanced_speed``, ``compressed_speed_distance`` → speed + accumulated distance),
   compressed-timestamp headers, integer arrays as tuples, and "first valid value wins" when one
   name appears twice in a message (the reference reader's row rule).
4. **CRC** of every chained segment, vectorised over lanes (CRC-16/ARC is linear, init 0); a
   header CRC of 0x0000 is accepted, as the FIT spec allows.

Anything this reader does not reproduce exactly — bad CRC, truncation, misaligned field sizes,
developer fields without a description, values fitparse's processors would reject, any
unexpected exception — falls back: the file is read by :func:`read_messages_fitparse`, so damaged
files keep the reference salvage behaviour and error reasons. ``ReadResult.decoder`` says which
reader produced the frames; ``extra['fast_fallback']`` says why the fast one gave up.
Dtypes follow what the reference infers from Python values (Int64, Float64, String, Null for an
all-NULL column, Datetime('us', 'UTC') for the date_time names).
"""

from __future__ import annotations

import array
import functools
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
from fitparse.profile import MESSAGE_TYPES
from fitparse.records import BASE_TYPES

from retroingest.canonical import frame_from_arrow
from retroingest.decode.fit import (
    _DATETIME_FIELDS, FIT_EPOCH, WANTED, FitMessages, ReadResult, read_messages_fitparse,
)

DECODER = "retroingest-fit 1"

_FIT_EPOCH_US = int(FIT_EPOCH.timestamp()) * 1_000_000
_DEV_DATA_ID = 207
_FIELD_DESCRIPTION = 206
_TIMESTAMP_NUM = 253


class Unsupported(Exception):
    """Raised inside the fast reader for anything it does not reproduce exactly; triggers the fallback."""


# ----------------------------------------------------------------------------- base types

@dataclass(frozen=True)
class _Base:
    """A FIT base type as fitparse reads it: element size, numpy code, invalid sentinel."""

    ident: int
    size: int
    np_code: str | None      # numpy scalar code for integer types, None otherwise
    invalid: int | None      # sentinel that means NULL (0 for the z types)
    kind: str                # 'int' | 'float' | 'string' | 'byte'


def _base_table() -> dict[int, _Base]:
    codes = {"enum": "u1", "sint8": "i1", "uint8": "u1", "sint16": "i2", "uint16": "u2",
             "sint32": "i4", "uint32": "u4", "uint8z": "u1", "uint16z": "u2", "uint32z": "u4",
             "sint64": "i8", "uint64": "u8", "uint64z": "u8"}
    out = {}
    for ident, bt in BASE_TYPES.items():
        size = struct.calcsize(bt.fmt)
        if bt.name in codes:
            code = codes[bt.name]
            if bt.name.endswith("z"):
                inv = 0
            elif code[0] == "u":
                inv = (1 << (8 * size)) - 1
            else:
                inv = (1 << (8 * size - 1)) - 1
            out[ident] = _Base(ident, size, code, inv, "int")
        elif bt.name.startswith("float"):
            out[ident] = _Base(ident, size, None, None, "float")
        elif bt.name == "string":
            out[ident] = _Base(ident, size, None, None, "string")
        else:
            out[ident] = _Base(ident, size, None, None, "byte")
    return out


_BASES = _base_table()
_BYTE = _BASES[0x0D]


def _base(ident: int) -> _Base:
    # fitparse: BASE_TYPES.get(base_type_num, BASE_TYPE_BYTE) -- unknown ids read as bytes
    return _BASES.get(ident, _BYTE)


# ----------------------------------------------------------------------------- CRC-16/ARC

def _crc_table() -> np.ndarray:
    t = np.zeros(256, dtype=np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xA001 if c & 1 else c >> 1
        t[i] = c
    return t


_CRC_T = _crc_table()
# feeding two bytes w (little-endian word) into state s gives F(s ^ w), F linear: two byte tables
_crc_basis = np.concatenate([np.arange(256, dtype=np.uint32), np.arange(256, dtype=np.uint32) << 8])


def _zero_feed(states: np.ndarray, nbytes: int) -> np.ndarray:
    s = states.copy()
    for _ in range(nbytes):
        s = (s >> 8) ^ _CRC_T[s & 0xFF]
    return s


_F2 = _zero_feed(_crc_basis, 2)
_F2_LO, _F2_HI = _F2[:256], _F2[256:]
_all16 = np.arange(65536, dtype=np.uint32)
_F16 = _F2_LO[_all16 & 0xFF] ^ _F2_HI[_all16 >> 8]  # two bytes at once
del _all16


@functools.lru_cache(maxsize=256)
def _shift_tables(nbytes: int) -> tuple[np.ndarray, np.ndarray]:
    """Tables of the linear map 'feed nbytes zero bytes', split by low and high state byte."""
    result = _crc_basis.copy()                     # identity map, as images of the 512 basis states
    cur = _zero_feed(_crc_basis, 1)                # one zero byte
    n = nbytes
    while n:
        if n & 1:
            result = cur[:256][result & 0xFF] ^ cur[256:][result >> 8]
        n >>= 1
        if n:
            cur = cur[:256][cur & 0xFF] ^ cur[256:][cur >> 8]
    return result[:256], result[256:]


_CRC_LANE_DWORDS = 16   # dwords per lane aimed at: few Python-level steps, lanes as wide as needed
_CRC_MAX_LANES = 8192


def _lane_dwords(n: int, lanes: int) -> int:
    """Dwords per lane, rounded up to m * 2**j with 8 <= m < 16 (or below 16), so the segment
    sizes merged in the reduction come from a small set and their shift tables stay cached."""
    d = -(-n // (4 * lanes))
    if d < 16:
        return d
    j = d.bit_length() - 4
    return -(-d >> j) << j


def crc16(buf: np.ndarray) -> int:
    """CRC-16/ARC (the FIT CRC) of a uint8 array, vectorised over lanes; 0 for empty input."""
    n = int(buf.size)
    if n == 0:
        return 0
    lanes = 1
    while lanes * 4 * _CRC_LANE_DWORDS < n and lanes < _CRC_MAX_LANES:
        lanes *= 2
    dwords_per_lane = _lane_dwords(n, lanes)
    total = dwords_per_lane * 4 * lanes
    padded = np.zeros(total, dtype=np.uint8)
    padded[total - n:] = buf  # zero bytes in front do not change a CRC with init 0
    w = np.ascontiguousarray(padded.view("<u4").reshape(lanes, dwords_per_lane).T)
    lo, hi = w & 0xFFFF, w >> 16
    s = np.zeros(lanes, dtype=np.uint32)
    f16 = _F16
    for j in range(dwords_per_lane):
        s = f16[s ^ lo[j]]
        s = f16[s ^ hi[j]]
    seg = 4 * dwords_per_lane
    while s.size > 1:
        a_lo, a_hi = _shift_tables(seg)
        left, right = s[0::2], s[1::2]
        s = a_lo[left & 0xFF] ^ a_hi[left >> 8] ^ right
        seg *= 2
    return int(s[0])


# ----------------------------------------------------------------------------- profile plans

_MESG_BY_NUM = MESSAGE_TYPES
_WANTED_SETS = {name: set(fields) for name, fields in WANTED.items()}


def _type_name(x: Any) -> str:
    return getattr(x.type, "name", "")


def _enum_values(x: Any) -> dict | None:
    return getattr(x.type, "values", None) or None


def _choices(f: Any) -> list[tuple[int, Any]]:
    return [(-1, f)] + list(enumerate(f.subfields or []))


def _acc_keys() -> set[tuple[int, int]]:
    """(message, component def_num) accumulators that feed a wanted column."""
    keys = set()
    for num, m in _MESG_BY_NUM.items():
        wanted = _WANTED_SETS.get(m.name)
        if not wanted:
            continue
        for f in m.fields.values():
            for _, x in _choices(f):
                for c in x.components or []:
                    if not c.accumulate:
                        continue
                    t = m.fields[c.def_num]
                    if any(y.name in wanted for _, y in _choices(t)):
                        keys.add((num, c.def_num))
    return keys


_ACC_KEYS = _acc_keys()


@dataclass
class _Contrib:
    """One FieldData fitparse would produce for a wanted name, in field order."""

    name: str
    fidx: int                      # source field index in the definition
    choice: int                    # subfield choice of the source field (-1 = main field)
    target_choice: int | None      # for components: subfield choice of the target field
    target_fidx_num: int | None    # for components: target field def_num (for subfield refs)
    kind: str                      # 'int' | 'float' | 'enum' | 'dt'
    scale: float | None
    offset: float | None
    enum: dict | None
    comp: Any = None               # fitparse ComponentField or None
    acc_src: int | None = None     # index into _Plan.acc_sources when the component accumulates
    elem_kind: str | None = None   # for kind 'list' (an array field): 'int' or 'float' elements


@dataclass
class _Plan:
    """Everything about one definition layout that does not depend on the data."""

    endian: str
    gnum: int
    name: str | None
    fields: list[tuple[int, int, _Base]]      # (def_num, size, base) per native field
    offsets: list[int]
    size: int                                  # native payload bytes
    bad: str | None = None                     # fitparse would fail on this definition
    resets: set = field(default_factory=set)   # accumulator keys reset when defined
    ts_fields: list[int] = field(default_factory=list)  # indices of fields numbered 253
    contribs: list[_Contrib] = field(default_factory=list)
    acc_sources: list[tuple[int, int, Any, tuple[int, int]]] = field(default_factory=list)
    # (field index, subfield choice, component, accumulator key): every accumulating component
    # whose key feeds a wanted column, in field order (fitparse accumulates even unwanted names)
    sub_refs: dict = field(default_factory=dict)  # fidx/target num -> [(choice, [(ref fidxs, raw)])]
    checks: list[tuple[int, str]] = field(default_factory=list)  # (fidx, check) value hazards
    needed: set = field(default_factory=set)   # field indices whose values we read

    @property
    def wanted(self) -> bool:
        return bool(self.contribs) or bool(self.acc_sources)


_DATE_TYPES = {"date_time", "local_date_time"}


def _scalar_int(base: _Base, size: int) -> bool:
    return base.kind == "int" and size == base.size and base.size <= 4


def _value_kind(x: Any, scale: Any, offset: Any) -> tuple[str, dict | None]:
    """How fitparse renders a value of field/subfield x after scale/offset (for wanted columns)."""
    tname = _type_name(x)
    enum = _enum_values(x)
    if tname in ("bool", "localtime_into_day"):
        raise Unsupported(f"wanted field {x.name} has type {tname}")
    if enum:
        if scale or offset:
            raise Unsupported(f"enum field {x.name} with scale/offset")
        return "enum", enum
    if tname in ("date_time", "local_date_time"):
        if scale or offset:
            raise Unsupported(f"date_time field {x.name} with scale/offset")
        return "dt", None
    return ("float" if scale else "int"), None


def _build_plan(endian: str, gnum: int, raw_fields: bytes) -> _Plan:
    fields = []
    offsets = []
    pos = 0
    bad = None
    for i in range(0, len(raw_fields), 3):
        num, size, ident = raw_fields[i], raw_fields[i + 1], raw_fields[i + 2]
        base = _base(ident)
        if size == 0 or size % base.size:
            bad = bad or f"field {num} size {size} is not a multiple of its base type size"
        fields.append((num, size, base))
        offsets.append(pos)
        pos += size
    mesg = _MESG_BY_NUM.get(gnum)
    plan = _Plan(endian, gnum, mesg.name if mesg else None, fields, offsets, pos, bad)
    plan.ts_fields = [i for i, (num, _, _) in enumerate(fields) if num == _TIMESTAMP_NUM]
    if mesg is None or bad:
        return plan
    wanted = _WANTED_SETS.get(mesg.name, set())
    by_num: dict[int, list[int]] = {}
    for i, (num, _, _) in enumerate(fields):
        by_num.setdefault(num, []).append(i)

    def sub_refs(f: Any) -> list[tuple[int, list[tuple[list[int], int]]]]:
        out = []
        for j, s in enumerate(f.subfields or []):
            refs = []
            for r in s.ref_fields:
                idxs = by_num.get(r.def_num, [])
                for k in idxs:
                    if not _scalar_int(fields[k][2], fields[k][1]):
                        raise Unsupported(f"subfield reference {r.name} is not a scalar integer")
                refs.append((idxs, r.raw_value))
            out.append((j, refs))
        return out

    for i, (num, size, base) in enumerate(fields):
        f = mesg.fields.get(num)
        if f is None:
            continue
        # fitparse resets an accumulator when it reads a definition holding the (main) field
        for c in f.components or []:
            if c.accumulate:
                plan.resets.add((gnum, c.def_num))
        for sub in f.subfields or []:
            if any(c.accumulate for c in sub.components or []):
                raise Unsupported(f"{mesg.name}.{sub.name}: accumulating subfield component")
        # value hazards: fitparse's processors raise on these in any message, wanted or not
        direct = {_type_name(x) for _, x in _choices(f)}
        via_comp = {_type_name(y) for _, x in _choices(f) for c in x.components or []
                    for _, y in _choices(mesg.fields[c.def_num])}
        if "localtime_into_day" in direct | via_comp:
            if f.subfields or f.components or f.scale or f.offset or not _scalar_int(base, size):
                raise Unsupported(f"{mesg.name}.{f.name}: localtime_into_day layout")
            plan.checks.append((i, "localtime_into_day"))
            plan.needed.add(i)
        if direct & _DATE_TYPES and not _scalar_int(base, size):
            raise Unsupported(f"{mesg.name}.{f.name}: date_time field is not a scalar integer")
        if via_comp & _DATE_TYPES and not (_scalar_int(base, size) or base.kind == "byte"):
            raise Unsupported(f"{mesg.name}.{f.name}: date_time component source layout")
        # contributions for wanted names, in fitparse's order: components first, then the field
        relevant = False
        for j, x in _choices(f):
            for c in x.components or []:
                t = mesg.fields[c.def_num]
                for tj, y in _choices(t):
                    key = (gnum, c.def_num) if c.accumulate else None
                    if y.name in wanted or (key in _ACC_KEYS):
                        relevant = True
            if x.name in wanted:
                relevant = True
        if not relevant:
            continue
        if f.subfields:
            plan.sub_refs[("f", i)] = sub_refs(f)
        for j, x in _choices(f):
            for c in x.components or []:
                if not (_scalar_int(base, size) or (base.kind == "byte" and size <= 7)):
                    raise Unsupported(f"{mesg.name}.{f.name}: component source layout")
                if base.kind == "byte" and c.bit_offset and c.bit_offset >= size * 8:
                    continue  # fitparse skips a component beyond the bytes (ValueError)
                t = mesg.fields[c.def_num]
                key = (gnum, c.def_num) if c.accumulate else None
                src = None
                if key in _ACC_KEYS:
                    src = len(plan.acc_sources)
                    plan.acc_sources.append((i, j, c, key))
                    plan.needed.add(i)
                if t.subfields:
                    plan.sub_refs[("t", c.def_num)] = sub_refs(t)
                for tj, y in _choices(t):
                    if y.name not in wanted:
                        continue
                    kind, enum = _value_kind(y, c.scale, c.offset)
                    plan.contribs.append(_Contrib(y.name, i, j, tj, c.def_num, kind, c.scale, c.offset,
                                                  enum, c, src))
                    plan.needed.add(i)
            if x.name in wanted:
                kind, enum = _value_kind(x, x.scale, x.offset)
                elem_kind = None
                if not _scalar_int(base, size):
                    # an array of integers: fitparse gives a tuple, element-wise invalid -> None
                    if not (base.kind == "int" and base.size <= 4 and size > base.size
                            and kind in ("int", "float") and not f.subfields and not x.components):
                        raise Unsupported(f"wanted field {mesg.name}.{x.name}: {size} bytes "
                                          f"of base type 0x{base.ident:02x}")
                    kind, elem_kind = "list", kind
                plan.contribs.append(_Contrib(x.name, i, j, None, None, kind, x.scale, x.offset, enum,
                                              elem_kind=elem_kind))
                plan.needed.add(i)
    for key in list(plan.sub_refs):
        for _, refs in plan.sub_refs[key]:
            for idxs, _ in refs:
                plan.needed.update(idxs)
    return plan


_PLAN_CACHE: dict[tuple[str, int, bytes], _Plan] = {}


def _plan(endian: str, gnum: int, raw_fields: bytes) -> _Plan:
    key = (endian, gnum, raw_fields)
    p = _PLAN_CACHE.get(key)
    if p is None:
        try:
            p = _build_plan(endian, gnum, raw_fields)
        except Unsupported as exc:
            p = _Plan(endian, gnum, None, [], [], 0, bad=str(exc))
        if len(_PLAN_CACHE) < 4096:
            _PLAN_CACHE[key] = p
    return p


# ----------------------------------------------------------------------------- walk

@dataclass
class _Def:
    """One definition message's layout in one file: the plan plus developer-field bytes."""

    id: int
    plan: _Plan
    size: int                   # full payload size, developer fields included
    dev_ts: bool = False        # a developer field numbered 253 (feeds compressed timestamps)


@dataclass
class _Walk:
    """What the header walk found: data-message payload offsets and definition ids, in file order."""

    offs: array.array = field(default_factory=lambda: array.array("q"))   # single messages
    ids: array.array = field(default_factory=lambda: array.array("i"))
    runs: list[tuple[int, int, int, int]] = field(default_factory=list)   # (first offset, count, stride, def id)
    n_run: int = 0                                                        # messages inside runs
    defs: list[_Def] = field(default_factory=list)
    def_events: list[tuple[int, int]] = field(default_factory=list)  # (message count, def id)
    compressed: list[tuple[int, int]] = field(default_factory=list)  # (message index, time offset)
    segments: list[int] = field(default_factory=list)                 # message index at segment start
    registry: dict = field(default_factory=dict)                      # dev index -> {num: (base, name)}


def _parse_string(b: bytes) -> str | None:
    i = b.find(b"\x00")
    s = b if i < 0 else b[:i]
    return s.decode("utf-8", errors="replace") or None


def _raw_values(buf: bytes, off: int, d: _Def) -> list[tuple[int, Any]]:
    """Parsed raw values of one data message's native fields (slow path for rare messages)."""
    out = []
    p = d.plan
    for (num, size, base), o in zip(p.fields, p.offsets):
        chunk = buf[off + o: off + o + size]
        if base.kind == "int" and size == base.size:
            v = int.from_bytes(chunk, "big" if p.endian == ">" else "little",
                               signed=base.np_code[0] == "i")
            out.append((num, None if v == base.invalid else v))
        elif base.kind == "string":
            out.append((num, _parse_string(chunk)))
        elif base.kind == "byte":
            out.append((num, None if all(b == 0xFF for b in chunk) else tuple(chunk)))
        else:
            out.append((num, ("array", chunk)))
    return out


def _first_raw(vals: list[tuple[int, Any]], num: int) -> Any:
    for n, v in vals:
        if n == num:
            return v
    return None


def _register_dev(buf: bytes, off: int, d: _Def, registry: dict) -> None:
    """Mirror fitparse's developer_data_id / field_description bookkeeping (per file)."""
    vals = _raw_values(buf, off, d)
    if d.plan.gnum == _DEV_DATA_ID:
        idx = _first_raw(vals, 3)
        if not isinstance(idx, int):
            raise Unsupported("developer_data_id without an index")
        registry[idx] = {}
        return
    idx, num, bt, name = (_first_raw(vals, 0), _first_raw(vals, 1), _first_raw(vals, 2), _first_raw(vals, 3))
    if not isinstance(idx, int) or idx not in registry or not isinstance(num, int):
        raise Unsupported("field_description for an unknown developer")
    if bt not in BASE_TYPES or not (name is None or isinstance(name, str)):
        raise Unsupported("field_description with an unknown base type")
    registry[idx][num] = (_base(bt), name or f"unnamed_dev_field_{num}")


def _walk(buf: bytes) -> _Walk:
    w = _Walk()
    n = len(buf)
    pos = 0
    bufnp = np.frombuffer(buf, dtype=np.uint8)
    def_cache: dict[bytes, _Def] = {}
    while pos < n:
        if n - pos < 12:
            raise Unsupported("trailing bytes after the last FIT segment")
        hs = buf[pos]
        if hs not in (12, 14) or buf[pos + 8: pos + 12] != b".FIT":
            raise Unsupported("not a FIT header")
        data_size = int.from_bytes(buf[pos + 4: pos + 8], "little")
        if hs == 14:
            hcrc = int.from_bytes(buf[pos + 12: pos + 14], "little")
            if hcrc and crc16(bufnp[pos: pos + 12]) != hcrc:
                raise Unsupported("header CRC mismatch")
        start, end = pos + hs, pos + hs + data_size
        if end + 2 > n:
            raise Unsupported("truncated segment")
        if crc16(bufnp[pos: end + 2]) != 0:
            raise Unsupported("file CRC mismatch")
        w.segments.append(len(w.offs) + w.n_run)
        _walk_segment(buf, bufnp, start, end, w, def_cache)
        pos = end + 2
    return w


_RUN_AFTER = 8        # same header this many times in a row: look for a run with NumPy
_RUN_WINDOW = 8192    # messages checked per vectorised look-ahead


def _walk_segment(buf: bytes, bufnp: np.ndarray, p: int, end: int, w: _Walk,
                  def_cache: dict[bytes, _Def]) -> None:
    local: list[Any] = [None] * 16   # (payload size + 1, def id, needs slow handling)
    offs, ids = w.offs, w.ids
    offs_append, ids_append = offs.append, ids.append
    defs = w.defs
    last_h = -1
    streak = 0
    while p < end:
        h = buf[p]
        if h < 0x40:                                   # normal data message
            e = local[h & 0x0F]
            if e is None:
                raise Unsupported("data message for an undefined local type")
            if h == last_h:
                streak += 1
                if streak >= _RUN_AFTER and not e[2]:
                    # a run of identical headers at a fixed stride is a run of messages of this
                    # local type (each header is where the previous message ends)
                    s1 = e[0]
                    k = min((end - p) // s1, _RUN_WINDOW)
                    if k > 1:
                        hdr = bufnp[p: p + k * s1: s1]
                        diff = np.flatnonzero(hdr != h)
                        m = int(diff[0]) if diff.size else k
                        w.runs.append((p + 1, m, s1, e[1]))
                        w.n_run += m
                        p += m * s1
                        continue
            else:
                last_h = h
                streak = 0
            offs_append(p + 1)
            ids_append(e[1])
            if e[2]:
                _register_dev(buf, p + 1, defs[e[1]], w.registry)
            p += e[0]
        elif h & 0x80:                                 # compressed-timestamp data message
            e = local[(h >> 5) & 0x03]
            if e is None:
                raise Unsupported("data message for an undefined local type")
            w.compressed.append((len(offs) + w.n_run, h & 0x1F))
            offs_append(p + 1)
            ids_append(e[1])
            if e[2]:
                _register_dev(buf, p + 1, defs[e[1]], w.registry)
            p += e[0]
        else:                                          # definition message
            if p + 6 > end:
                raise Unsupported("definition runs past the data")
            endian = ">" if buf[p + 2] else "<"
            gnum = int.from_bytes(buf[p + 3: p + 5], "big" if endian == ">" else "little")
            nf = buf[p + 5]
            q = p + 6 + 3 * nf
            raw_fields = buf[p + 6: q]
            dev = b""
            if h & 0x20:
                if q >= end:
                    raise Unsupported("definition runs past the data")
                nd = buf[q]
                dev = buf[q + 1: q + 1 + 3 * nd]
                q += 1 + 3 * nd
            if q > end:
                raise Unsupported("definition runs past the data")
            key = bytes([buf[p + 2] != 0]) + buf[p + 3: p + 5] + raw_fields + b"|" + dev
            d = def_cache.get(key) if not dev else None
            if d is None:
                plan = _plan(endian, gnum, raw_fields)
                if plan.bad:
                    raise Unsupported(plan.bad)
                size = plan.size
                dev_ts = False
                for i in range(0, len(dev), 3):
                    num, fsize, didx = dev[i], dev[i + 1], dev[i + 2]
                    ent = w.registry.get(didx, {}).get(num)
                    if ent is None:
                        raise Unsupported("developer field without a field_description")
                    base, dname = ent
                    if fsize == 0 or fsize % base.size:
                        raise Unsupported("developer field size is not a multiple of its base type")
                    if plan.name and dname in _WANTED_SETS.get(plan.name, ()):
                        raise Unsupported(f"developer field named like a wanted field: {dname}")
                    dev_ts |= num == _TIMESTAMP_NUM
                    size += fsize
                d = _Def(len(defs), plan, size, dev_ts)
                defs.append(d)
                if not dev:
                    def_cache[key] = d
            w.def_events.append((len(offs) + w.n_run, d.id))
            last_h = -1
            special = d.plan.gnum in (_DEV_DATA_ID, _FIELD_DESCRIPTION)
            local[h & 0x0F] = (d.size + 1, d.id, special)
            p = q
    if p != end:
        raise Unsupported("last message runs past the data size")


# ----------------------------------------------------------------------------- gather / decode

def _gather(bufnp: np.ndarray, offs: np.ndarray, plan: _Plan, idxs: set[int]) -> dict[int, np.ndarray]:
    """Raw integer columns (int64) for the given field indices of one definition."""
    if not idxs:
        return {}
    lo = min(plan.offsets[i] for i in idxs)
    hi = max(plan.offsets[i] + plan.fields[i][1] for i in idxs)
    width = hi - lo
    k = offs.size
    if k > 1 and np.all(np.diff(offs) == offs[1] - offs[0]) and offs[1] - offs[0] >= width:
        step = int(offs[1] - offs[0])
        view = np.lib.stride_tricks.as_strided(bufnp[offs[0] + lo:], shape=(k, width), strides=(step, 1))
        rows = np.ascontiguousarray(view)
    else:
        rows = bufnp[(offs + lo)[:, None] + np.arange(width)]
    out = {}
    for i in idxs:
        num, size, base = plan.fields[i]
        o = plan.offsets[i] - lo
        if base.kind == "int" and size == base.size:
            col = rows[:, o:o + size].copy().view(plan.endian + base.np_code)[:, 0]
            out[i] = col.astype(np.int64)
        elif base.kind == "int" and size % base.size == 0:     # array: (k, n) elements
            out[i] = rows[:, o:o + size].copy().view(plan.endian + base.np_code).astype(np.int64)
        elif base.kind == "byte":
            b = rows[:, o:o + size].astype(np.int64)
            val = np.zeros(k, dtype=np.int64)
            for j in range(size - 1, -1, -1):   # little-endian, as fitparse unpacks byte arrays
                val = (val << 8) | b[:, j]
            out[i] = val
            out[("allff", i)] = np.all(b == 0xFF, axis=1)
        else:
            raise Unsupported("field layout not gatherable")
    return out


def _valid(plan: _Plan, cols: dict, i: int) -> np.ndarray:
    base = plan.fields[i][2]
    if base.kind == "byte":
        return ~cols[("allff", i)]
    return cols[i] != base.invalid


def _selection(plan: _Plan, cols: dict, key: Any, k: int) -> np.ndarray:
    """Per row: which subfield fitparse resolves to (-1 = the main field)."""
    sel = np.full(k, -1, dtype=np.int8)
    undecided = np.ones(k, dtype=bool)
    for j, refs in plan.sub_refs.get(key, []):
        m = np.zeros(k, dtype=bool)
        for idxs, raw in refs:
            for r in idxs:
                m |= _valid(plan, cols, r) & (cols[r] == raw)
        m &= undecided
        sel[m] = j
        undecided &= ~m
    return sel


@dataclass
class _Col:
    kind: str
    values: np.ndarray              # (k,) or, for kind 'list', (k, n)
    valid: np.ndarray               # row has a value (for lists: the tuple exists)
    enum: dict | None = None
    elem_valid: np.ndarray | None = None   # kind 'list': element is not the invalid sentinel
    elem_kind: str | None = None


def _component_raw(plan: _Plan, cols: dict, fidx: int, comp: Any) -> tuple[np.ndarray, np.ndarray]:
    """A component's raw bits from its source field (NULL where the source is invalid)."""
    valid = _valid(plan, cols, fidx)
    v = (cols[fidx] >> comp.bit_offset) & ((1 << comp.bits) - 1)
    return v, valid


def _scaled(kind: str, v: np.ndarray, scale: Any, offset: Any) -> np.ndarray:
    if kind == "float":
        out = v.astype(np.float64)
        if scale:
            out = out / float(scale)
        if offset:
            out = out - offset
        return out
    if offset:
        return v - int(offset)
    return v


def _decode_def(plan: _Plan, cols: dict, k: int, acc_vals: dict) -> dict[str, _Col]:
    """First-valid-wins combination of one definition's contributions, per wanted column."""
    sels: dict = {}

    def sel(key: Any) -> np.ndarray | None:
        if key not in plan.sub_refs:
            return None
        if key not in sels:
            sels[key] = _selection(plan, cols, key, k)
        return sels[key]

    out: dict[str, _Col] = {}
    for ci, c in enumerate(plan.contribs):
        s = sel(("f", c.fidx))
        rowmask = None if s is None else (s == c.choice)
        if c.comp is not None:
            if c.acc_src is not None:
                raw, valid = acc_vals[(id(plan), c.acc_src)]
            else:
                raw, valid = _component_raw(plan, cols, c.fidx, c.comp)
            ts = sel(("t", c.target_fidx_num))
            if ts is not None:
                m = ts == c.target_choice
                rowmask = m if rowmask is None else rowmask & m
        elif c.kind == "list":   # a tuple is never None, so an array field always has a value
            raw, valid = cols[c.fidx], np.ones(k, dtype=bool)
        else:
            raw, valid = cols[c.fidx], _valid(plan, cols, c.fidx)
        if rowmask is not None:
            valid = valid & rowmask
        vals = _scaled(c.elem_kind or c.kind, raw, c.scale, c.offset)
        new = _Col(c.kind, vals, valid, c.enum,
                   _valid(plan, cols, c.fidx) if c.kind == "list" else None, c.elem_kind)
        cur = out.get(c.name)
        if cur is None or not cur.valid.any():
            out[c.name] = new
            continue
        fill = valid & ~cur.valid
        if not fill.any():
            continue
        if cur.kind != c.kind or cur.enum is not c.enum or c.kind == "list":
            raise Unsupported(f"column {c.name} mixes value kinds")
        cur.values = np.where(fill, vals, cur.values)
        cur.valid = cur.valid | fill
    return out


def _python_rows(col: _Col | None, k: int) -> list[Any]:
    """Rows as the reference reader holds them: tuples for array fields, None where absent."""
    if col is None or not col.valid.any():
        return [None] * k
    if col.kind != "list":
        raise Unsupported("column mixes array and scalar values")
    conv = float if col.elem_kind == "float" else int
    return [tuple(conv(v) if ok else None for v, ok in zip(vals, oks)) if row_ok else None
            for vals, oks, row_ok in zip(col.values, col.elem_valid, col.valid)]


def _accumulate(w: _Walk, groups: dict[int, np.ndarray], cols_by_def: dict[int, dict]) -> dict:
    """Accumulated components (distance from compressed_speed_distance), in file order.

    fitparse keeps one accumulator per (message, component field), resets it to 0 whenever a
    definition holding such a component is read (and at each chained segment), and skips
    invalid values. Files that use this are rare and small, so this is a plain loop.
    """
    sources = []   # (def id, source index, rows, raw, valid)
    for did, rows in groups.items():
        plan = w.defs[did].plan
        for si, (i, j, comp, key) in enumerate(plan.acc_sources):
            raw, valid = _component_raw(plan, cols_by_def[did], i, comp)
            if plan.sub_refs.get(("f", i)):
                valid = valid & (_selection(plan, cols_by_def[did], ("f", i), rows.size) == j)
            sources.append((did, si, rows, raw, valid))
    result: dict = {}
    keys = {w.defs[did].plan.acc_sources[si][3] for did, si, *_ in sources}
    for key in keys:
        seq = []
        for n_src, (did, si, rows, raw, valid) in enumerate(sources):
            if w.defs[did].plan.acc_sources[si][3] != key:
                continue
            for r in np.flatnonzero(valid):
                seq.append((int(rows[r]), 1, si, n_src, int(r)))
        for cnt, did in w.def_events:
            if key in w.defs[did].plan.resets:
                seq.append((cnt, 0, 0, -1, -1))
        for cnt in w.segments:
            seq.append((cnt, 0, 0, -1, -1))
        seq.sort()
        out = {n_src: np.zeros(src[2].size, dtype=np.int64) for n_src, src in enumerate(sources)}
        accum = 0
        for _, kind, si, n_src, r in seq:
            if kind == 0:
                accum = 0
                continue
            did = sources[n_src][0]
            bits = w.defs[did].plan.acc_sources[si][2].bits
            mask = (1 << bits) - 1
            v = int(sources[n_src][3][r])
            base = v + (accum & ~mask)
            if v < (accum & mask):
                base += 1 << bits
            accum = base
            out[n_src][r] = base
        for n_src, (did, si, rows, raw, valid) in enumerate(sources):
            if w.defs[did].plan.acc_sources[si][3] == key:
                result[(id(w.defs[did].plan), si)] = (out[n_src], valid)
    return result


def _compressed_ts(w: _Walk, groups: dict[int, np.ndarray], cols_by_def: dict[int, dict],
                   n_msgs: int) -> tuple[np.ndarray, np.ndarray]:
    """Absolute timestamps of compressed-header messages (fitparse's rollover rule, 5 bits)."""
    ts_val = np.zeros(n_msgs, dtype=np.int64)
    ts_set = np.zeros(n_msgs, dtype=bool)
    for did, rows in groups.items():
        d = w.defs[did]
        if d.dev_ts:
            raise Unsupported("developer field 253 in a compressed-timestamp file")
        for i in d.plan.ts_fields:
            num, size, base = d.plan.fields[i]
            if not _scalar_int(base, size):
                raise Unsupported("timestamp field is not a scalar integer")
            col = cols_by_def[did][i]
            ok = col != base.invalid
            ts_val[rows[ok]] = col[ok]
            ts_set[rows[ok]] = True
    out_val = np.zeros(n_msgs, dtype=np.int64)
    out_ok = np.zeros(n_msgs, dtype=bool)
    comp = dict(w.compressed)
    seg_starts = set(w.segments)
    accum = 0
    for m in range(n_msgs):
        if m in seg_starts:
            accum = 0
        if ts_set[m]:
            accum = int(ts_val[m])
        t = comp.get(m)
        if t is not None:
            base = t + (accum & ~0x1F)
            if t < (accum & 0x1F):
                base += 0x20
            accum = base
            out_val[m] = base
            out_ok[m] = True
    return out_val, out_ok


_TS_TYPE = pa.timestamp("us", tz="UTC")


def _arrow(name: str, col: _Col | None, n: int) -> pa.Array:
    """One column as Arrow, typed as the reference reader's list-of-Python-values would infer it."""
    if name in _DATETIME_FIELDS:
        if col is None:
            return pa.nulls(n, type=_TS_TYPE)
        us = _FIT_EPOCH_US + col.values.astype(np.int64, copy=False) * 1_000_000
        return pa.array(us, type=_TS_TYPE, mask=_mask(col.valid))
    if col is None or not col.valid.any():
        return pa.nulls(n)   # an all-NULL column is dtype Null, as the reference infers it
    if col.kind == "dt":
        raise Unsupported(f"date_time column {name} outside the reference's datetime names")
    mask = _mask(col.valid)
    if col.kind == "enum":
        vals = col.values
        uniq = np.unique(vals[col.valid])
        if not any(int(u) in col.enum for u in uniq):
            return pa.array(vals, mask=mask)
        lut = {int(u): col.enum.get(int(u), str(int(u))) for u in uniq}
        return pa.array([lut[int(v)] if ok else None for v, ok in zip(vals.tolist(), col.valid.tolist())],
                        type=pa.string())
    if col.kind == "float":
        return pa.array(col.values.astype(np.float64, copy=False), mask=mask)
    return pa.array(col.values.astype(np.int64, copy=False), mask=mask)


def _mask(valid: np.ndarray) -> np.ndarray | None:
    return None if valid.all() else ~valid


def _frame(names: tuple[str, ...], cols: dict[str, _Col | list], n: int) -> pl.DataFrame:
    """One message's frame, built as one Arrow table (array fields, rare, as Python lists)."""
    if any(isinstance(cols.get(f), list) for f in names):
        return pl.DataFrame([pl.Series(f, cols[f], strict=False) if isinstance(cols.get(f), list)
                             else pl.Series(f, _arrow(f, cols.get(f), n)) for f in names])
    return frame_from_arrow(pa.Table.from_arrays([_arrow(f, cols.get(f), n) for f in names], names=list(names)))


def _decode(data: bytes) -> FitMessages:
    if len(data) < 12:
        raise Unsupported("shorter than a FIT header")
    w = _walk(data)
    bufnp = np.frombuffer(data, dtype=np.uint8)
    offs = np.frombuffer(w.offs, dtype=np.int64) if len(w.offs) else np.zeros(0, dtype=np.int64)
    ids = np.frombuffer(w.ids, dtype=np.int32) if len(w.ids) else np.zeros(0, dtype=np.int32)
    if w.runs:
        starts, counts_, strides, dids = (np.asarray(c, dtype=np.int64) for c in zip(*w.runs))
        first = np.repeat(np.cumsum(counts_) - counts_, counts_)
        r_offs = np.repeat(starts, counts_) + (np.arange(int(counts_.sum())) - first) * np.repeat(strides, counts_)
        offs = np.concatenate([offs, r_offs])
        ids = np.concatenate([ids, np.repeat(dids, counts_).astype(np.int32)])
        by_pos = np.argsort(offs, kind="stable")    # file order is offset order
        offs, ids = offs[by_pos], ids[by_pos]
    n_msgs = int(offs.size)
    order = np.argsort(ids, kind="stable")
    counts = np.bincount(ids, minlength=len(w.defs))
    bounds = np.concatenate([[0], np.cumsum(counts)])
    groups: dict[int, np.ndarray] = {}
    cols_by_def: dict[int, dict] = {}
    need_ts = bool(w.compressed)
    for d in w.defs:
        if counts[d.id] == 0:
            continue
        plan = d.plan
        idxs = set(plan.needed)
        if need_ts:
            idxs |= set(plan.ts_fields)
        if not idxs and plan.name not in WANTED:
            continue
        rows = order[bounds[d.id]:bounds[d.id + 1]]
        groups[d.id] = rows
        cols = _gather(bufnp, offs[rows], plan, idxs)
        cols_by_def[d.id] = cols
        for i, check in plan.checks:
            v = cols[i][_valid(plan, cols, i)]
            if check == "localtime_into_day" and v.size and (v.min() < 0 or v.max() >= 86400):
                raise Unsupported("localtime_into_day value fitparse cannot render")
    acc_vals = _accumulate(w, groups, cols_by_def)
    cts = _compressed_ts(w, groups, cols_by_def, n_msgs) if need_ts else None

    out: FitMessages = {}
    for name, wanted in WANTED.items():
        parts = [(did, rows) for did, rows in groups.items() if w.defs[did].plan.name == name]
        merged: dict[str, _Col] = {}
        all_rows = [rows for _, rows in parts]
        n = int(sum(r.size for r in all_rows))
        if parts:
            idx = np.concatenate(all_rows)
            perm = None if len(all_rows) == 1 else np.argsort(idx, kind="stable")  # rows are sorted per def
            per_def = [_decode_def(w.defs[did].plan, cols_by_def[did], rows.size, acc_vals)
                       for did, rows in parts]
            if len(parts) == 1 and cts is None:  # one layout: its columns are the message's columns
                for fname in wanted:
                    c = per_def[0].get(fname)
                    if c is not None:
                        merged[fname] = _python_rows(c, n) if c.kind == "list" else c
                out[name] = _frame(wanted, merged, n)
                continue
            for fname in wanted:
                present = [(cd.get(fname), rows.size) for cd, (_, rows) in zip(per_def, parts)]
                kinds = {(c.kind, id(c.enum)) for c, _ in present if c is not None and c.valid.any()}
                if len(kinds) > 1:
                    raise Unsupported(f"column {fname} mixes value kinds across definitions")
                proto = next((c for c, _ in present if c is not None and c.valid.any()), None)
                if proto is None:
                    proto = next((c for c, _ in present if c is not None), None)
                if proto is None and not (fname == "timestamp" and cts is not None):
                    continue
                if proto is not None and proto.kind == "list":   # rare: build it as the reference does
                    py = [v for c, k in present for v in _python_rows(c, k)]
                    if perm is not None:
                        py = [py[i] for i in perm]
                    merged[fname] = py
                    continue
                dtype = np.float64 if proto is not None and proto.kind == "float" else np.int64
                if len(present) == 1 and present[0][0] is not None:
                    vals, valid = present[0][0].values, present[0][0].valid
                else:
                    vals = np.concatenate([
                        (c.values.astype(dtype, copy=False) if c is not None else np.zeros(k, dtype=dtype))
                        for c, k in present])
                    valid = np.concatenate([
                        (c.valid if c is not None else np.zeros(k, dtype=bool)) for c, k in present])
                if perm is not None:
                    vals, valid = vals[perm], valid[perm]
                col = _Col(proto.kind if proto else "dt", vals, valid, proto.enum if proto else None)
                if fname == "timestamp" and cts is not None:
                    gi = idx if perm is None else idx[perm]
                    fill = ~col.valid & cts[1][gi]
                    col.values = np.where(fill, cts[0][gi], col.values)
                    col.valid = col.valid | fill
                merged[fname] = col
        out[name] = _frame(wanted, merged, n)
    return out


def read_messages_fast(data: bytes, path: str | None = None) -> ReadResult:
    """Columnar reader (NumPy); falls back to :func:`read_messages_fitparse` for what it cannot reproduce."""
    try:
        msgs = _decode(data)
    except Unsupported as exc:
        reason = str(exc)
    except Exception as exc:  # noqa: BLE001 -- a bug here must cost speed, never data
        reason = f"internal error {type(exc).__name__}: {exc}"
    else:
        return ReadResult(msgs, decoder=DECODER)
    res = read_messages_fitparse(data, path)
    res.extra["fast_fallback"] = reason
    return res
