"""Detection coverage: what detection rules stop seeing when events are recorded by a given audit policy."""

from kubetrail.coverage.analyze import Cause, CoverageAnalyzer, CoverageReport, RuleCoverage, analyze, loss_reason

__all__ = ["Cause", "CoverageAnalyzer", "CoverageReport", "RuleCoverage", "analyze", "loss_reason"]
