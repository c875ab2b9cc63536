"""Report audit events a backend could not deliver, as the apiserver's `audit.HandlePluginError` does.

Nothing buffered is lost silently: every backend that gives up on events logs them here (audit IDs
and stages only — bodies may hold secrets) and counts them in its own statistics.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from kubetrail.model.event import Event

LOGGED_IDS = 20

log = logging.getLogger("kubetrail.emit")


def handle_plugin_error(plugin: str, error: BaseException, events: Sequence[Event]) -> None:
    """Log one line naming the plugin, the error and the impacted events (the first 20 IDs)."""
    if not events:
        return
    ids = ", ".join(f"{event.auditID}/{event.stage}" for event in events[:LOGGED_IDS])
    more = f" and {len(events) - LOGGED_IDS} more" if len(events) > LOGGED_IDS else ""
    log.error(
        "Error in audit plugin '%s' affecting %d audit events: %s; impacted: %s%s",
        plugin,
        len(events),
        error,
        ids,
        more,
    )
