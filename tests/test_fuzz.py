"""Fuzzing: corpus mutants through the real ingest end as a status with a reason, never a crash or hang."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from retroingest import fuzz, stage


def test_mutants_are_deterministic_and_cover_every_mutation_class(corpus):
    a = fuzz.make_mutants(corpus, 400, seed=3, max_source_bytes=40_000)
    b = fuzz.make_mutants(corpus, 400, seed=3, max_source_bytes=40_000)
    assert [(m.name, m.data) for m in a] == [(m.name, m.data) for m in b]
    used = {name for m in a for name in m.mutations}
    assert used == set(fuzz.COMMON) | set(fuzz.FIT) | set(fuzz.XML)
    assert {m.name.rsplit(".", 1)[1] for m in a} == {"fit", "gpx", "tcx"}
    assert sum(m.data != (corpus / m.source).read_bytes() for m in a) >= 390


def test_fit_definition_walker_finds_definitions(corpus):
    data = (corpus / "fit" / "fitparse__garmin-fenix-5-run.fit").read_bytes()
    defs = fuzz.fit_definitions(data)
    assert len(defs) >= 5 and all(data[p] & 0x40 for p in defs)


def test_150_seeded_mutants_end_with_a_status_and_reason_and_a_sound_warehouse(corpus, tmp_path):
    rep = fuzz.run(corpus, 150, seed=2026, workdir=tmp_path, max_source_bytes=40_000, decode_timeout_s=30)
    assert rep.ok, rep.summary()
    assert sum(rep.statuses.values()) == 150
    # the harness must see real damage, not only files that still decode cleanly
    assert rep.statuses.get("quarantined", 0) >= 20 and rep.statuses.get("salvaged", 0) >= 10


def test_a_decode_over_the_time_limit_is_quarantined_not_hung(corpus, monkeypatch):
    """A damaged large FIT goes through the slow fitparse fallback; a tiny limit must stop it."""
    data = bytearray((corpus / "fit" / "fitparse__activity-small-fenix2-run.fit").read_bytes())
    data[-1] ^= 0xFF  # CRC mismatch: the fast reader hands the file to fitparse
    monkeypatch.setenv(stage.ENV_DECODE_TIMEOUT, "0.05")
    info = stage.write_stage(Path(tempfile.mkdtemp()), "slow.fit", bytes(data), len(data), None)
    assert (info.status, info.reason_code) == ("quarantined", "decode_timeout")
    assert info.reason.startswith("decode timed out after 0.05 s")


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_5000_mutants(corpus, tmp_path):
    rep = fuzz.run(corpus, 5000, seed=1, workdir=tmp_path)
    assert rep.ok, rep.summary()
