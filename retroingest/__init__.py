"""retroingest: wearable files (FIT, GPX, TCX) into a DuckDB warehouse, with backward-running detection."""

__version__ = "0.1.0"
