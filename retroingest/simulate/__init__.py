"""Gait simulator (issue 4): realistic FIT/GPX activity files with ground-truth gait intervals.

``simulate(out_dir, n, seed)`` writes the files, a ``<stem>.truth.csv`` per file and a
``manifest.csv``. Seeds below ``DEV_SEED_LIMIT`` are development seeds; the accuracy harness
(retroingest.evaluate) uses held-out seeds at or above it.
"""

from retroingest.simulate.simulate import (
    DEV_SEED_LIMIT,
    MANIFEST,
    TRUTH_SUFFIX,
    SimulatedFile,
    read_manifest,
    read_truth,
    simulate,
)

__all__ = ["DEV_SEED_LIMIT", "MANIFEST", "TRUTH_SUFFIX", "SimulatedFile", "read_manifest", "read_truth",
           "simulate"]
