"""The web UI of `kubetrail serve`: server-rendered pages over the store (overview, search, alerts, identities,
object histories), read-only, with token or basic authentication when configured."""

from kubetrail.ui.app import WithUI, build_ui, is_ui_path
from kubetrail.ui.auth import UIAuth, UIAuthError
from kubetrail.ui.data import UIData
from kubetrail.ui.search import SearchError

__all__ = ["SearchError", "UIAuth", "UIAuthError", "UIData", "WithUI", "build_ui", "is_ui_path"]
