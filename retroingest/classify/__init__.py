"""The retro-running classifier: per-record gait and direction, contiguous segments, baselines.

Public entries: :func:`classify` (pure, frames in and out) and :func:`classify_activities`
(warehouse: reads records, writes ``segments`` and athlete baselines atomically).
"""

from retroingest.classify.baseline import Baseline
from retroingest.classify.core import CLASSIFIER_VERSION, SEGMENT_SCHEMA, Result, classify
from retroingest.classify.store import classify_activities, pending_activities

__all__ = ["Baseline", "CLASSIFIER_VERSION", "SEGMENT_SCHEMA", "Result", "classify", "classify_activities", "pending_activities"]
