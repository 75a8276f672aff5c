"""The offline HTML dashboard (``retroingest report``): one self-contained file, no network."""

from retroingest.report.build import build_report, write_report

__all__ = ["build_report", "write_report"]
