"""Fuzzing harness: mutate real corpus files and push the mutants through the real ingest pipeline.

Mutants are written to a temporary folder (the corpus is only read), ingested with
:func:`retroingest.ingest.ingest` into a real DuckDB file, and then checked:

- no crash: ``ingest`` never raises, no worker dies, no file is quarantined as an
  ``internal decoder error`` (a decoder bug caught by the stage's last-resort handler);
- no hang: every file is decoded within the staging worker's time limit
  (:data:`retroingest.stage.DECODE_TIMEOUT_S`); a file that hits it is quarantined with reason
  code ``decode_timeout`` and counted here as a hang;
- every mutant ends as ingested, salvaged, duplicate, skipped or quarantined, and every status
  other than ingested has a reason;
- the warehouse passes :func:`retroingest.doctor.check` afterwards.

Mutation classes: for every format bit flips, truncation, inserted, deleted and repeated bytes;
for FIT header edits (header size, protocol, data size, header CRC) and definition-message edits
(architecture, global message number, field count, field size, base type, developer flag),
trailing garbage and chained streams; for GPX/TCX broken tags, dropped closing tags, bad
numbers, huge values, bad timestamps, encoding errors, NUL bytes and deep nesting.

Example: ``python -m retroingest.fuzz --n 5000 --seed 1 --json fuzz.json``
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import struct
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

FINAL_STATUSES = ("ingested", "salvaged", "duplicate", "skipped", "quarantined")
DEFAULT_MAX_SOURCE_BYTES = 150_000  # keeps 5,000 mutants under ~30 min on 2 cores

Mutator = Callable[[bytes, random.Random], bytes]


# ----------------------------------------------------------------------------- generic bytes

def bit_flips(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 4, 16))):
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[:rng.randrange(len(data))]


def insert_bytes(data: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(data) + 1)
    junk = bytes(rng.randrange(256) for _ in range(rng.choice((1, 2, 7, 64))))
    return data[:i] + junk + data[i:]


def delete_bytes(data: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(data))
    return data[:i] + data[i + rng.choice((1, 2, 5, 100)):]


def repeat_chunk(data: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(data))
    chunk = data[i:i + rng.choice((4, 50, 500))]
    return data[:i] + chunk * rng.choice((2, 10)) + data[i:]


# ----------------------------------------------------------------------------- FIT

def _fit_header(data: bytes) -> int:
    return data[0] if len(data) > 0 and data[0] in (12, 14) else 12


def fit_header_size(data: bytes, rng: random.Random) -> bytes:
    return bytes([rng.choice((0, 1, 11, 13, 15, 64, 255))]) + data[1:]


def fit_protocol(data: bytes, rng: random.Random) -> bytes:
    return data[:1] + bytes([rng.choice((0, 0x10, 0x20, 0x30, 0xFF))]) + data[2:]


def fit_data_size(data: bytes, rng: random.Random) -> bytes:
    hs = _fit_header(data)
    true = max(0, len(data) - hs - 2)
    v = rng.choice((0, 1, true // 2, true + 1, true + 1000, 0x7FFFFFFF, 0xFFFFFFFF))
    return data[:4] + struct.pack("<I", v) + data[8:]


def fit_header_crc(data: bytes, rng: random.Random) -> bytes:
    if _fit_header(data) != 14 or len(data) < 14:
        return bit_flips(data, rng)
    return data[:12] + struct.pack("<H", rng.randrange(1, 65536)) + data[14:]


def fit_trailing(data: bytes, rng: random.Random) -> bytes:
    return data + bytes(rng.randrange(256) for _ in range(rng.choice((1, 2, 100, 1000))))


def fit_chain(data: bytes, rng: random.Random) -> bytes:
    """A second FIT stream appended (HRM-Swim/Tri style), whole or cut."""
    return data + data[:rng.choice((len(data), len(data) // 2, 14))]


def fit_definitions(data: bytes, limit: int = 4000) -> list[int]:
    """Offsets of definition-message headers found by walking the records (stops at damage)."""
    hs = _fit_header(data)
    if len(data) < hs + 2:
        return []
    end = min(len(data) - 2, hs + struct.unpack("<I", data[4:8])[0]) if len(data) >= 8 else len(data)
    sizes: dict[int, int] = {}
    out: list[int] = []
    p = hs
    while p < end and len(out) < limit:
        h = data[p]
        if h & 0x80:  # compressed timestamp header: a data message of local type (h >> 5) & 3
            size = sizes.get((h >> 5) & 3)
            if size is None:
                break
            p += 1 + size
        elif h & 0x40:
            if p + 6 > end:
                break
            nf = data[p + 5]
            size = sum(data[p + 6 + 3 * k + 1] for k in range(nf) if p + 6 + 3 * k + 1 < len(data))
            q = p + 6 + 3 * nf
            if h & 0x20 and q < len(data):
                nd = data[q]
                size += sum(data[q + 1 + 3 * k + 1] for k in range(nd) if q + 1 + 3 * k + 1 < len(data))
                q += 1 + 3 * nd
            out.append(p)
            sizes[h & 0x0F] = size
            p = q
        else:
            size = sizes.get(h & 0x0F)
            if size is None:
                break
            p += 1 + size
    return out


def _edit_definition(data: bytes, rng: random.Random, edit: Callable[[bytearray, int], None]) -> bytes:
    defs = fit_definitions(data)
    if not defs:
        return bit_flips(data, rng)
    b = bytearray(data)
    edit(b, rng.choice(defs))
    return bytes(b)


def fit_def_arch(data: bytes, rng: random.Random) -> bytes:
    def edit(b: bytearray, p: int) -> None:
        b[p + 2] = rng.choice((1 - (b[p + 2] & 1), 2, 255))
    return _edit_definition(data, rng, edit)


def fit_def_global(data: bytes, rng: random.Random) -> bytes:
    def edit(b: bytearray, p: int) -> None:
        struct.pack_into("<H", b, p + 3, rng.choice((0, 18, 19, 20, 34, 0xFFFF, rng.randrange(65536))))
    return _edit_definition(data, rng, edit)


def fit_def_num_fields(data: bytes, rng: random.Random) -> bytes:
    def edit(b: bytearray, p: int) -> None:
        b[p + 5] = rng.choice((0, max(0, b[p + 5] - 1), min(255, b[p + 5] + 1), 255))
    return _edit_definition(data, rng, edit)


def _field_byte(b: bytearray, p: int, rng: random.Random, which: int) -> int | None:
    nf = b[p + 5]
    if nf == 0:
        return None
    i = p + 6 + 3 * rng.randrange(nf) + which
    return i if i < len(b) else None


def fit_def_field_size(data: bytes, rng: random.Random) -> bytes:
    def edit(b: bytearray, p: int) -> None:
        i = _field_byte(b, p, rng, 1)
        if i is not None:
            b[i] = rng.choice((0, 1, 3, 7, 255, (b[i] * 2) & 0xFF))
    return _edit_definition(data, rng, edit)


def fit_def_base_type(data: bytes, rng: random.Random) -> bytes:
    def edit(b: bytearray, p: int) -> None:
        i = _field_byte(b, p, rng, 2)
        if i is not None:
            b[i] = rng.choice((0x00, 0x07, 0x0D, 0x84, 0x88, 0x89, 0x8F, 0xFF, rng.randrange(256)))
    return _edit_definition(data, rng, edit)


def fit_def_field_num(data: bytes, rng: random.Random) -> bytes:
    def edit(b: bytearray, p: int) -> None:
        i = _field_byte(b, p, rng, 0)
        if i is not None:
            b[i] = rng.choice((253, 0, 1, 2, 3, 5, 6, 7, 255, rng.randrange(256)))
    return _edit_definition(data, rng, edit)


def fit_def_dev_flag(data: bytes, rng: random.Random) -> bytes:
    def edit(b: bytearray, p: int) -> None:
        b[p] ^= 0x20
    return _edit_definition(data, rng, edit)


# ----------------------------------------------------------------------------- GPX / TCX

_NUM_RE = re.compile(rb"(?<=[>\"])-?\d+(?:\.\d+)?(?=[<\"])")
_TIME_RE = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)?")
_TAG_RE = re.compile(rb"</?[A-Za-z][\w:.-]*")
_CLOSE_RE = re.compile(rb"</[A-Za-z][\w:.-]*>")


def _replace_some(data: bytes, rng: random.Random, pattern: re.Pattern, values: list[bytes], k: int) -> bytes:
    spans = [m.span() for m in pattern.finditer(data)]
    if not spans:
        return insert_bytes(data, rng)
    chosen = sorted(rng.sample(spans, min(k, len(spans))), reverse=True)
    b = data
    for s, e in chosen:
        b = b[:s] + rng.choice(values) + b[e:]
    return b


def xml_bad_number(data: bytes, rng: random.Random) -> bytes:
    bad = [b"abc", b"", b"NaN", b"-inf", b"1e", b"--5", b"1,5", b"0x1F", b"\xe2\x88\x9e", b"1.2.3"]
    return _replace_some(data, rng, _NUM_RE, bad, rng.choice((1, 10, 1000)))


def xml_huge_value(data: bytes, rng: random.Random) -> bytes:
    huge = [b"1e308", b"-1e308", b"1e999", b"99999999999999999999", b"4294967295", b"-2147483648",
            b"9" * 5000, b"0.0000000000000000000001", b"361", b"-91"]
    return _replace_some(data, rng, _NUM_RE, huge, rng.choice((1, 10, 1000)))


def xml_bad_time(data: bytes, rng: random.Random) -> bytes:
    bad = [b"2024-13-45T25:61:61Z", b"0001-01-01T00:00:00Z", b"9999-12-31T23:59:59Z", b"yesterday",
           b"1970-01-01T00:00:00+25:00", b"2020-02-30T00:00:00Z", b"1989-12-31T00:00:00Z", b""]
    return _replace_some(data, rng, _TIME_RE, bad, rng.choice((1, 10, 1000)))


def xml_break_tag(data: bytes, rng: random.Random) -> bytes:
    broken = [b"<", b"</", b"<<trkpt", b"<1x", b"<a:b:c", b"</>", b"<trkpt lat=", b"<!--"]
    return _replace_some(data, rng, _TAG_RE, broken, rng.choice((1, 3)))


def xml_drop_close(data: bytes, rng: random.Random) -> bytes:
    return _replace_some(data, rng, _CLOSE_RE, [b""], rng.choice((1, 5, 100)))


def xml_encoding(data: bytes, rng: random.Random) -> bytes:
    choice = rng.randrange(5)
    if choice == 0:  # declare an encoding the bytes are not in
        decl = rng.choice((b"UTF-16", b"latin-1", b"EBCDIC", b"x-unknown", b"UTF-32"))
        if data.startswith(b"<?xml"):
            end = data.find(b"?>")
            return b'<?xml version="1.0" encoding="' + decl + b'"' + data[end:]
        return b'<?xml version="1.0" encoding="' + decl + b'"?>' + data
    if choice == 1:  # invalid UTF-8 sequences in text
        i = rng.randrange(len(data))
        return data[:i] + rng.choice((b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80")) + data[i:]
    if choice == 2:  # a BOM of another encoding
        return rng.choice((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")) + data
    if choice == 3:  # re-encoded as UTF-16 without saying so
        try:
            return data.decode("utf-8").encode("utf-16-le")
        except UnicodeDecodeError:
            return data[::-1]
    i = rng.randrange(len(data))
    return data[:i] + b"\x00" * rng.choice((1, 10)) + data[i:]


def xml_deep_nest(data: bytes, rng: random.Random) -> bytes:
    i = data.rfind(b"</")
    i = i if i > 0 else len(data)
    depth = rng.choice((1000, 50_000))
    return data[:i] + b"<extensions>" * depth + b"<hr>1</hr>" + b"</extensions>" * depth + data[i:]


COMMON: dict[str, Mutator] = {
    "bit_flips": bit_flips, "truncate": truncate, "insert_bytes": insert_bytes,
    "delete_bytes": delete_bytes, "repeat_chunk": repeat_chunk,
}
FIT: dict[str, Mutator] = {
    "fit_header_size": fit_header_size, "fit_protocol": fit_protocol, "fit_data_size": fit_data_size,
    "fit_header_crc": fit_header_crc, "fit_trailing": fit_trailing, "fit_chain": fit_chain,
    "fit_def_arch": fit_def_arch, "fit_def_global": fit_def_global, "fit_def_num_fields": fit_def_num_fields,
    "fit_def_field_size": fit_def_field_size, "fit_def_base_type": fit_def_base_type,
    "fit_def_field_num": fit_def_field_num, "fit_def_dev_flag": fit_def_dev_flag,
}
XML: dict[str, Mutator] = {
    "xml_bad_number": xml_bad_number, "xml_huge_value": xml_huge_value, "xml_bad_time": xml_bad_time,
    "xml_break_tag": xml_break_tag, "xml_drop_close": xml_drop_close, "xml_encoding": xml_encoding,
    "xml_deep_nest": xml_deep_nest,
}


def mutators_for(fmt: str) -> dict[str, Mutator]:
    """Mutation classes that apply to a format ('fit', 'gpx', 'tcx')."""
    return {**COMMON, **(FIT if fmt == "fit" else XML)}


# ----------------------------------------------------------------------------- mutants

@dataclass
class Mutant:
    name: str            # file name in the mutant folder
    source: str          # corpus file, relative to the corpus root
    mutations: list[str]  # mutation classes applied, in order
    data: bytes = field(repr=False, default=b"")


def corpus_files(corpus: Path, max_bytes: int = DEFAULT_MAX_SOURCE_BYTES) -> list[Path]:
    """Activity files of the corpus (fit/, gpx/, tcx/, bad/) up to ``max_bytes``, sorted."""
    out = []
    for sub in ("fit", "gpx", "tcx", "bad"):
        for p in sorted((corpus / sub).glob("*")):
            if p.is_file() and p.suffix.lower() in (".fit", ".gpx", ".tcx") and 0 < p.stat().st_size <= max_bytes:
                out.append(p)
    return out


def make_mutants(corpus: Path, n: int, seed: int, max_source_bytes: int = DEFAULT_MAX_SOURCE_BYTES) -> list[Mutant]:
    """``n`` mutants, a deterministic function of (corpus, n, seed): 1-3 stacked mutation classes each."""
    rng = random.Random(seed)
    files = corpus_files(corpus, max_source_bytes)
    if not files:
        raise FileNotFoundError(f"no corpus files under {corpus}")
    by_fmt: dict[str, list[Path]] = {}
    for f in files:
        by_fmt.setdefault(f.suffix.lower()[1:], []).append(f)
    fmts = sorted(by_fmt)
    cache: dict[Path, bytes] = {}
    out = []
    for k in range(n):
        src = rng.choice(by_fmt[rng.choice(fmts)])  # formats equally often, whatever the corpus holds
        data = cache.setdefault(src, src.read_bytes())
        fmt = src.suffix.lower()[1:]
        table = mutators_for(fmt)
        names = [rng.choice(sorted(table)) for _ in range(rng.choice((1, 1, 1, 2, 3)))]
        for name in names:
            if not data:
                break
            data = table[name](data, rng)
        out.append(Mutant(f"{k:05d}_{names[0]}_{src.stem[:40]}.{fmt}", str(src.relative_to(corpus)), names, data))
    return out


def write_mutants(mutants: list[Mutant], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for m in mutants:
        (folder / m.name).write_bytes(m.data)


# ----------------------------------------------------------------------------- run

@dataclass
class FuzzReport:
    n_mutants: int
    seed: int
    statuses: dict[str, int] = field(default_factory=dict)
    reason_codes: dict[str, int] = field(default_factory=dict)
    by_mutation: dict[str, dict[str, int]] = field(default_factory=dict)
    crashes: list[dict] = field(default_factory=list)      # ingest raised, or 'internal decoder error'
    hangs: list[dict] = field(default_factory=list)        # decode hit the per-file time limit
    unaccounted: list[dict] = field(default_factory=list)  # no row, unknown status or missing reason
    post_step_failures: list[str] = field(default_factory=list)
    integrity_problems: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    warehouse: str = ""

    @property
    def ok(self) -> bool:
        return not (self.crashes or self.hangs or self.unaccounted or self.post_step_failures or self.integrity_problems)

    def summary(self) -> str:
        lines = [f"fuzz: {self.n_mutants} mutants (seed {self.seed}) in {self.elapsed_s:.0f} s -> "
                 + ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items())),
                 f"  crashes {len(self.crashes)}, hangs {len(self.hangs)}, unaccounted {len(self.unaccounted)}, "
                 f"post-step failures {len(self.post_step_failures)}, integrity problems {len(self.integrity_problems)}"]
        for c in (self.crashes + self.hangs + self.unaccounted)[:20]:
            lines.append(f"  {c}")
        lines += [f"  post step: {p}" for p in self.post_step_failures[:10]]
        lines += [f"  integrity: {p}" for p in self.integrity_problems[:10]]
        lines.append("  result: " + ("OK" if self.ok else "PROBLEMS FOUND"))
        return "\n".join(lines)


def _ingest_chunk(paths: list[Path], wpath: Path, workers: int, post: bool, report: FuzzReport) -> None:
    from retroingest.ingest import ingest

    try:
        res = ingest([str(p) for p in paths], wpath, workers=workers, command="fuzz", run_post_steps=post)
    except Exception as exc:  # a crash: find the mutant(s) that cause it, one by one
        if len(paths) == 1:
            report.crashes.append({"file": paths[0].name, "error": f"{type(exc).__name__}: {exc}",
                                   "where": traceback.format_exc().strip().splitlines()[-3:]})
            return
        for p in paths:
            _ingest_chunk([p], wpath, 1, post, report)
        return
    for step, state in res.post_steps.items():
        if state != "ok":
            report.post_step_failures.append(f"{step}: {state} (chunk starting {paths[0].name})")


def run(corpus: Path, n: int, seed: int, workdir: Path | None = None, *, workers: int = 2, chunk: int = 500,
        post_steps: bool = True, max_source_bytes: int = DEFAULT_MAX_SOURCE_BYTES, keep: bool = False,
        decode_timeout_s: float = 60.0) -> FuzzReport:
    """Make ``n`` mutants, ingest them in chunks into a fresh warehouse, and check every outcome.

    ``decode_timeout_s`` is the per-file limit given to the staging workers for this run.
    """
    import os

    from retroingest import doctor, stage, warehouse

    os.environ[stage.ENV_DECODE_TIMEOUT] = str(decode_timeout_s)  # inherited by the spawned workers

    t0 = time.monotonic()
    own = workdir is None
    work = Path(tempfile.mkdtemp(prefix="retroingest-fuzz-")) if own else Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    mdir, wpath = work / "mutants", work / "fuzz.duckdb"
    report = FuzzReport(n_mutants=n, seed=seed, warehouse=str(wpath))
    try:
        mutants = make_mutants(corpus, n, seed, max_source_bytes)
        write_mutants(mutants, mdir)
        paths = [mdir / m.name for m in mutants]
        for i in range(0, len(paths), chunk):
            _ingest_chunk(paths[i:i + chunk], wpath, workers, post_steps, report)
        con = warehouse.connect(wpath, read_only=True)
        try:
            rows = {Path(p).name: (s, r, rc) for p, s, r, rc in con.execute(
                "SELECT path, status, reason, reason_code FROM source_files").fetchall()}
        finally:
            con.close()
        crashed = {c["file"] for c in report.crashes}
        for m in mutants:
            got = rows.get(m.name)
            if got is None:
                if m.name not in crashed:
                    report.unaccounted.append({"file": m.name, "problem": "no source_files row"})
                continue
            status, reason, code = got
            report.statuses[status] = report.statuses.get(status, 0) + 1
            report.reason_codes[code or "-"] = report.reason_codes.get(code or "-", 0) + 1
            for mut in set(m.mutations):
                d = report.by_mutation.setdefault(mut, {})
                d[status] = d.get(status, 0) + 1
            if status not in FINAL_STATUSES or (status != "ingested" and not reason):
                report.unaccounted.append({"file": m.name, "problem": f"status {status!r} reason {reason!r}"})
            if code == "decoder_error":
                report.crashes.append({"file": m.name, "mutations": m.mutations, "error": reason})
            elif code == "decode_timeout":
                report.hangs.append({"file": m.name, "mutations": m.mutations, "error": reason})
        report.integrity_problems = [f"{p.check}: {p.detail}" for p in doctor.check(wpath).problems]
    finally:
        report.elapsed_s = time.monotonic() - t0
        if own and not keep and report.ok:
            shutil.rmtree(work, ignore_errors=True)
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m retroingest.fuzz", description=__doc__.split("\n\n")[0],
                                 epilog="Example: python -m retroingest.fuzz --n 5000 --seed 1")
    ap.add_argument("--n", type=int, default=5000, help="number of mutants [5000]")
    ap.add_argument("--seed", type=int, default=1, help="random seed [1]")
    ap.add_argument("--corpus", type=Path, default=None, help="corpus folder [../shared/corpus or $RETROINGEST_CORPUS]")
    ap.add_argument("--workdir", type=Path, default=None, help="keep mutants and warehouse here [a temp dir]")
    ap.add_argument("--workers", type=int, default=2, help="decode processes [2]")
    ap.add_argument("--max-source-bytes", type=int, default=DEFAULT_MAX_SOURCE_BYTES,
                    help=f"mutate corpus files up to this size [{DEFAULT_MAX_SOURCE_BYTES}]")
    ap.add_argument("--no-post-steps", action="store_true", help="skip classify/metrics after loading")
    ap.add_argument("--json", type=Path, default=None, help="also write the report as JSON")
    args = ap.parse_args(argv)
    import os
    corpus = args.corpus or Path(os.environ.get("RETROINGEST_CORPUS") or Path(__file__).resolve().parents[2] / "shared" / "corpus")
    rep = run(corpus, args.n, args.seed, args.workdir, workers=args.workers, post_steps=not args.no_post_steps,
              max_source_bytes=args.max_source_bytes)
    print(rep.summary())
    if args.json:
        args.json.write_text(json.dumps({**asdict(rep), "ok": rep.ok}, indent=1, default=str))
    return 0 if rep.ok else 1


if __name__ == "__main__":
    sys.exit(main())
