"""Equivalence metrics: what backward running and walking was worth, claims next to evidence."""

from retroingest.metrics.equivalence import compute_equivalence, refresh

__all__ = ["compute_equivalence", "refresh"]
