"""Stateful detection: thresholds in a sliding window, distinct-value counts, sequences and first-seen keys.

detector = StatefulDetector([ThresholdSpec(name="enum", match=is_forbidden, group_by=("ka.user.name",),
                                           window_s=300, count=20)])
engine = Engine(ruleset, detectors=[detector])
detector.save("stateful.ckpt")  # and detector.load(...) after a restart
"""

from __future__ import annotations

from kubetrail.detect.stateful.checkpoint import CheckpointError
from kubetrail.detect.stateful.detector import RuleStats, StatefulDetector
from kubetrail.detect.stateful.spec import (
    DEFAULT_MAX_KEYS,
    FirstSeenSpec,
    SequenceSpec,
    SpecError,
    StatefulSpec,
    ThresholdSpec,
    ValueCountSpec,
    format_duration,
    parse_duration,
)

__all__ = [
    "DEFAULT_MAX_KEYS",
    "CheckpointError",
    "FirstSeenSpec",
    "RuleStats",
    "SequenceSpec",
    "SpecError",
    "StatefulDetector",
    "StatefulSpec",
    "ThresholdSpec",
    "ValueCountSpec",
    "format_duration",
    "parse_duration",
]
