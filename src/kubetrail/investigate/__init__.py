"""Ready-made investigations over a query source: each returns a Report (answer first, then the events).

secrets, forbidden, exec, rbac and anonymous group the events one filter selects; timeline splits one
identity's requests into sessions; object_history diffs one object's recorded bodies; new_identities finds
users first seen in a window; build_cascade follows one write to the controllers' requests it caused.
"""

from kubetrail.investigate.cascade import Cascade, CascadeNode, RequestSummary, build_cascade
from kubetrail.investigate.common import anonymous, exec_sessions, forbidden, rbac_changes, secrets
from kubetrail.investigate.diff import Change, diff
from kubetrail.investigate.history import History, ObjectRef, Revision, object_history
from kubetrail.investigate.identities import new_identities
from kubetrail.investigate.report import DETAIL_COLUMNS, Report
from kubetrail.investigate.timeline import Session, Timeline, timeline

__all__ = [
    "DETAIL_COLUMNS",
    "Cascade",
    "CascadeNode",
    "Change",
    "History",
    "ObjectRef",
    "Report",
    "RequestSummary",
    "Revision",
    "Session",
    "Timeline",
    "anonymous",
    "build_cascade",
    "diff",
    "exec_sessions",
    "forbidden",
    "new_identities",
    "object_history",
    "rbac_changes",
    "secrets",
    "timeline",
]
