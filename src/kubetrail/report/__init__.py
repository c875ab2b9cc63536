"""Compliance evidence reports: which framework controls audit logs evidence, and what the store shows for each.

`controls` is the catalogue, `evidence` queries the store, `status` judges, `render_*` write md, json and html.
"""

from kubetrail.report.controls import FRAMEWORK_KEYS, FRAMEWORKS, Control, Framework, Theme
from kubetrail.report.errors import ReportError
from kubetrail.report.evidence import Evidence, Period, collect_evidence
from kubetrail.report.render_html import render_html
from kubetrail.report.render_json import SCHEMA, document, render_json
from kubetrail.report.render_md import render_md
from kubetrail.report.status import Assessment, Status, assess

__all__ = [
    "FRAMEWORKS",
    "FRAMEWORK_KEYS",
    "SCHEMA",
    "Assessment",
    "Control",
    "Evidence",
    "Framework",
    "Period",
    "ReportError",
    "Status",
    "Theme",
    "assess",
    "collect_evidence",
    "document",
    "render_html",
    "render_json",
    "render_md",
]
