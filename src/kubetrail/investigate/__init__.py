"""Ready-made investigations over a query source: each returns a Report (answer first, then the events).

secrets, forbidden, exec, rbac and anonymous group the events one filter selects; timeline splits one
identity's requests into sessions; object_history diffs one object's recorded bodies; new_identities finds
users first seen in a window.
"""

from kubetrail.investigate.common import anonymous, exec_sessions, forbidden, rbac_changes, secrets
from kubetrail.investigate.diff import Change, diff
from kubetrail.investigate.history import History, ObjectRef, Revision, object_history
from kubetrail.investigate.identities import new_identities
from kubetrail.investigate.report import DETAIL_COLUMNS, Report
from kubetrail.investigate.timeline import Session, Timeline, timeline

__all__ = [
    "DETAIL_COLUMNS",
    "Change",
    "History",
    "ObjectRef",
    "Report",
    "Revision",
    "Session",
    "Timeline",
    "anonymous",
    "diff",
    "exec_sessions",
    "forbidden",
    "new_identities",
    "object_history",
    "rbac_changes",
    "secrets",
    "timeline",
]
