"""Shared fixtures. The corpus lives outside the repo (../shared/corpus or $RETROINGEST_CORPUS):
tests that need it skip with a message in a user's clone, and fail under CI=true."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def corpus_dir() -> Path:
    return Path(os.environ.get("RETROINGEST_CORPUS", REPO.parent / "shared" / "corpus"))


@pytest.fixture(scope="session")
def corpus() -> Path:
    """Path to the real-file corpus; skip (or fail under CI) when it is absent."""
    d = corpus_dir()
    if not (d / "MANIFEST.csv").exists():
        msg = f"corpus not found at {d} (set RETROINGEST_CORPUS); corpus tests skipped"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {msg}")
        pytest.skip(msg)
    return d


@pytest.fixture
def warehouse_path(tmp_path) -> Path:
    """A fresh, real DuckDB warehouse file path in a temp dir."""
    return tmp_path / "retro.duckdb"
