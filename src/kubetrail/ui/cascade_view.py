"""The request page's view of a cascade (what a request caused): the inferred tree, flattened into plain
values the template shows, read defensively so that the page never fails on the tree's shape."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

MAX_NODES = 500
"""A cascade larger than this is cut (the page stays small); `CascadeView.cut` says so."""


@dataclass(frozen=True)
class CascadeItem:
    """One request of the tree: who did what, how it was linked to its parent, how long after the root."""

    audit_id: str
    time: datetime | None
    user: str | None
    verb: str | None
    resource: str | None
    subresource: str | None
    namespace: str | None
    name: str | None
    code: int | None
    reason: str
    delay: timedelta
    children: tuple[CascadeItem, ...]

    @property
    def delay_seconds(self) -> float:
        return self.delay.total_seconds()


@dataclass(frozen=True)
class CascadeView:
    """The tree's root, its size (requests below the root) and whether it was cut at MAX_NODES."""

    root: CascadeItem
    size: int
    cut: bool


def _first(item: Any, *names: str) -> Any:
    for name in names:
        value = getattr(item, name, None)
        if value is not None:
            return value
    return None


def view(cascade: Any) -> CascadeView | None:
    """The view of a `Cascade` (None for None or a tree without a root)."""
    root = getattr(cascade, "root", None)
    if root is None:
        return None
    budget = [MAX_NODES]

    def convert(node: Any) -> CascadeItem:
        request = getattr(node, "request", None)
        children: list[CascadeItem] = []
        for child in tuple(getattr(node, "children", ()) or ()):
            if budget[0] <= 0:
                break
            budget[0] -= 1
            children.append(convert(child))
        delay = getattr(node, "delay", None)
        return CascadeItem(
            audit_id=str(_first(request, "audit_id") or ""),
            time=_first(request, "first", "first_time", "time", "start"),
            user=_first(request, "user"),
            verb=_first(request, "verb"),
            resource=_first(request, "resource"),
            subresource=_first(request, "subresource"),
            namespace=_first(request, "namespace"),
            name=_first(request, "name"),
            code=_first(request, "code", "response_code"),
            reason=str(getattr(node, "reason", "") or ""),
            delay=delay if isinstance(delay, timedelta) else timedelta(),
            children=tuple(children),
        )

    converted = convert(root)
    return CascadeView(converted, MAX_NODES - budget[0], budget[0] <= 0)
