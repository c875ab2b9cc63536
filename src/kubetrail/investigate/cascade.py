"""`investigate cascade AUDIT_ID`: what one write set off — the controllers' requests that followed it, as a tree.

Kubernetes links a controller's objects to their owner with `metadata.ownerReferences` (a Deployment owns its
ReplicaSets, a ReplicaSet or a Job its Pods, always in the owner's namespace), and deleting an owner lets the
garbage collector delete the dependents. So the requests a write caused are found, within a horizon, by the
owner references in their recorded bodies (by the owner's uid, else its kind and name), by later writes of
controllers to the same object (the scheduler's `pods/binding`, a kubelet's `pods/status`), and, when the audit
policy kept no bodies (Metadata level), by the names controllers give what they create (`<deployment>-<hash>`
for ReplicaSets, `<owner>-<suffix>` for Pods): those weaker links say `inferred` in their reason.

An update or patch changes an object the controllers were already tending, so its tree is held tighter: it ends
where the object's next change (by anyone but the control plane, or through `scale`) takes over; a status
write is left out when the same one (same identity, verb, object) was already being made in the horizon before,
and counts only under a write to its own object (an owner's change is no link to an owned object's status).

`link` is the pure core (a root request and candidate requests in, a tree out); `build_cascade` queries a Source.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kubetrail.query.source import Source, Window

WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
CHANGE_VERBS = ("update", "patch")
DEFAULT_HORIZON = timedelta(minutes=10)
# Requests reach the log through one or several apiservers whose clocks may differ a little: a request linked
# by its owner's uid counts even when stamped up to this much before the write that caused it.
SKEW = timedelta(seconds=2)
MAX_NODES = 5_000
MAX_CANDIDATES = 200_000
ROOT_REACH = timedelta(minutes=1)
COLUMNS = (
    "audit_id",
    "time",
    "stage_time",
    "stage",
    "user",
    "verb",
    "resource",
    "subresource",
    "namespace",
    "name",
    "response_code",
    "request_uri",
    "level",
    "cluster",
    "event",
)
STAGE_ORDER = {"RequestReceived": 0, "ResponseStarted": 1, "ResponseComplete": 2, "Panic": 3}

# The kind each workload resource's objects have, as owner references name them.
KINDS = {
    "deployments": "Deployment",
    "replicasets": "ReplicaSet",
    "replicationcontrollers": "ReplicationController",
    "statefulsets": "StatefulSet",
    "daemonsets": "DaemonSet",
    "jobs": "Job",
    "cronjobs": "CronJob",
    "pods": "Pod",
    "services": "Service",
    "endpointslices": "EndpointSlice",
    "persistentvolumeclaims": "PersistentVolumeClaim",
    "controllerrevisions": "ControllerRevision",
    "namespaces": "Namespace",
    "nodes": "Node",
}

# Reasons: how a request was linked to its parent. Weak ones (names and timing only) start with "inferred".
OWNER_UID = "ownerReference"
OWNER_NAME = "ownerReference (kind and name)"
SAME_OBJECT = "same object"
SCHEDULED = "scheduled (pods/binding)"
KUBELET_STATUS = "status from the kubelet"
GARBAGE = "garbage collection (ownerReference)"
INFERRED = "inferred"

# What a controller names the objects it creates for an owner: (owner resource, dependent resource) → pattern of
# the suffix after `<owner name>-`, and the reason to show.
_NAMED = {
    ("deployments", "replicasets"): (r"[a-z0-9]{1,10}", "inferred: ReplicaSet named <deployment>-<hash>"),
    ("replicasets", "pods"): (r"[a-z0-9]{5}", "inferred: pods of the ReplicaSet, named <replicaset>-<suffix>"),
    ("replicationcontrollers", "pods"): (r"[a-z0-9]{5}", "inferred: pods of the controller, named <rc>-<suffix>"),
    ("jobs", "pods"): (r"[a-z0-9]{5}", "inferred: pods of the Job, named <job>-<suffix>"),
    ("daemonsets", "pods"): (r"[a-z0-9]{5}", "inferred: pods of the DaemonSet, named <daemonset>-<suffix>"),
    ("statefulsets", "pods"): (r"[0-9]+", "inferred: pods of the StatefulSet, named <statefulset>-<ordinal>"),
    ("cronjobs", "jobs"): (r"[0-9]+", "inferred: Job of the CronJob, named <cronjob>-<schedule time>"),
}
_UNNAMED_POD = "inferred: pod created by the {controller} in the namespace (no name or body recorded)"
_POD_CREATORS = {
    "replicasets": "replicaset-controller",
    "jobs": "job-controller",
    "daemonsets": "daemon-set-controller",
    "statefulsets": "statefulset-controller",
    "replicationcontrollers": "replication-controller",
}
_GC_PREFIX = "inferred: deleted by the garbage collector, named <owner>-…"


@dataclass(frozen=True)
class RequestSummary:
    """One request, its stages merged: who did what to which object, the outcome, when it started and ended."""

    audit_id: str
    user: str
    verb: str
    resource: str | None
    subresource: str | None
    namespace: str | None
    name: str | None
    code: int | None
    first: datetime
    last: datetime
    stages: tuple[str, ...]
    uri: str


@dataclass(frozen=True)
class CascadeNode:
    """A request, how it was linked to its parent (`reason`), how long after the root it started, what it caused."""

    request: RequestSummary
    reason: str
    delay: timedelta
    children: tuple[CascadeNode, ...] = ()

    def walk(self, depth: int = 0) -> Iterator[tuple[int, CascadeNode]]:
        """This node and its descendants, depth first, with their depth below this node."""
        yield depth, self
        for child in self.children:
            yield from child.walk(depth + 1)


@dataclass(frozen=True)
class Cascade:
    """The root request and everything found to follow from it within `horizon`."""

    root: CascadeNode
    horizon: timedelta = DEFAULT_HORIZON

    def count(self) -> int:
        """Nodes in the tree, the root included."""
        return sum(1 for _ in self.root.walk())

    def __len__(self) -> int:
        return self.count()

    def inferred(self) -> int:
        """Nodes linked only by names and timing (no recorded owner reference)."""
        return sum(1 for _, node in self.root.walk() if node.reason.startswith(INFERRED))


@dataclass(frozen=True)
class Owner:
    """One entry of `metadata.ownerReferences`."""

    kind: str
    name: str
    uid: str


@dataclass(frozen=True)
class Request:
    """A merged request plus what its recorded bodies tell: the object's kind and uid, and its owners."""

    summary: RequestSummary
    kind: str | None = None
    uid: str | None = None
    owners: tuple[Owner, ...] = ()
    bodies: bool = False

    @property
    def key(self) -> tuple[str | None, str | None, str | None]:
        """The object this request is about: (resource, namespace, name)."""
        return self.summary.resource, self.summary.namespace, self.summary.name

    @property
    def ok(self) -> bool:
        code = self.summary.code
        return code is None or code < 400


# -- merging stages -----------------------------------------------------------------------------------------------


def _dict(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _owners(meta: Mapping[str, Any]) -> tuple[Owner, ...]:
    found: list[Owner] = []
    for item in meta.get("ownerReferences") or ():
        if isinstance(item, dict) and isinstance(item.get("kind"), str) and isinstance(item.get("name"), str):
            found.append(Owner(item["kind"], item["name"], str(item.get("uid") or "")))
    return tuple(found)


def _facts(document: Mapping[str, Any]) -> tuple[str | None, str | None, str | None, tuple[Owner, ...], bool]:
    """(kind, uid, name, owners, bodies recorded) from an event's requestObject / responseObject."""
    kind = uid = name = None
    owners: tuple[Owner, ...] = ()
    bodies = False
    for key in ("responseObject", "requestObject"):
        body = _dict(document.get(key))
        if body is None:
            continue
        bodies = True
        if body.get("kind") == "Status":
            details = _dict(body.get("details")) or {}
            uid = uid or (details.get("uid") if isinstance(details.get("uid"), str) else None)
            continue
        meta = _dict(body.get("metadata")) or {}
        if body.get("kind") not in (None, "DeleteOptions", "Binding", "Scale"):
            kind = kind or (body["kind"] if isinstance(body["kind"], str) else None)
            uid = uid or (meta.get("uid") if isinstance(meta.get("uid"), str) else None)
            name = name or (meta.get("name") if isinstance(meta.get("name"), str) else None)
        elif body.get("kind") == "Binding":
            uid = uid or (meta.get("uid") if isinstance(meta.get("uid"), str) else None)
        owners = owners or _owners(meta)
    return kind, uid, name, owners, bodies


def merge_stages(rows: Iterable[Mapping[str, Any]]) -> list[Request]:
    """One Request per auditID from event rows (COLUMNS), stages merged, oldest first.

    The name comes from any stage (a create learns it after RequestReceived) or, for a generated name that the
    objectRef lacks, from the response body; the code from the last stage that has one.
    """
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        audit_id = row.get("audit_id")
        if audit_id:
            grouped.setdefault(str(audit_id), []).append(row)
    merged: list[Request] = []
    for audit_id, stages in grouped.items():
        stages.sort(key=lambda row: (STAGE_ORDER.get(row.get("stage") or "", 9), row.get("stage_time") or row["time"]))
        kind = uid = body_name = None
        owners: tuple[Owner, ...] = ()
        bodies = False
        for row in stages:
            text = row.get("event")
            if not text:
                continue
            try:
                document = json.loads(text) if isinstance(text, str) else None
            except ValueError:
                continue
            if not isinstance(document, dict):
                continue
            k, u, n, o, b = _facts(document)
            kind, uid, body_name = k or kind, u or uid, n or body_name
            owners = o or owners
            bodies = bodies or b
        last = stages[-1]
        names = [row.get("name") for row in stages if row.get("name")]
        codes: list[int] = [int(row["response_code"]) for row in stages if row.get("response_code") is not None]
        times = [row.get("stage_time") or row["time"] for row in stages]
        summary = RequestSummary(
            audit_id=audit_id,
            user=str(last.get("user") or ""),
            verb=str(last.get("verb") or ""),
            resource=last.get("resource"),
            subresource=last.get("subresource"),
            namespace=last.get("namespace"),
            name=str(names[-1]) if names else body_name,
            code=codes[-1] if codes else None,
            first=min(row["time"] for row in stages),
            last=max(times),
            stages=tuple(str(row.get("stage") or "") for row in stages),
            uri=str(last.get("request_uri") or ""),
        )
        if summary.subresource:
            kind = KINDS.get(summary.resource or "")
        elif kind is None and summary.resource:
            kind = KINDS.get(summary.resource)
        merged.append(Request(summary, kind, uid, owners, bodies))
    merged.sort(key=lambda item: (item.summary.first, item.summary.audit_id))
    return merged


# -- linking ------------------------------------------------------------------------------------------------------


def is_controller(user: str) -> bool:
    """The control plane acting on its own: kube-system's controller accounts, the controller manager, the
    scheduler and kubelets (`system:node:NAME`)."""
    return (
        user.startswith("system:serviceaccount:kube-system:")
        or user.startswith("system:node:")
        or user in ("system:kube-controller-manager", "system:kube-scheduler")
    )


def _garbage_collector(user: str) -> bool:
    return user in (
        "system:serviceaccount:kube-system:generic-garbage-collector",
        "system:kube-controller-manager",
    )


@dataclass
class _Subject:
    """The object a node's request is about, with everything known of its identity."""

    resource: str | None
    namespace: str | None
    name: str | None
    kind: str | None
    uid: str | None
    deleted: bool


def _same_object_reason(request: Request) -> str:
    summary = request.summary
    if summary.subresource == "binding" and summary.user == "system:kube-scheduler":
        return SCHEDULED
    if summary.subresource == "status" and summary.user.startswith("system:node:"):
        return KUBELET_STATUS
    return SAME_OBJECT


def _owned_by(request: Request, subject: _Subject) -> str | None:
    for owner in request.owners:
        if subject.uid and owner.uid:
            if owner.uid == subject.uid:
                return OWNER_UID
            continue
        if subject.kind and owner.kind == subject.kind and owner.name == subject.name:
            return OWNER_NAME
    return None


def _takes_over(request: Request) -> bool:
    """Whether a write sets a new desired state of its object, so that what follows is its doing: a change by
    anyone but the control plane (a person, CI, another client), or any write to the `scale` subresource
    (`kubectl scale`, the HorizontalPodAutoscaler)."""
    summary = request.summary
    if summary.verb not in WRITE_VERBS or not summary.name:
        return False
    if summary.subresource == "scale":
        return True
    return summary.subresource is None and not is_controller(summary.user)


_Signature = tuple[str, str, str | None, str | None, str | None, str | None]


def _signature(summary: RequestSummary) -> _Signature:
    """A write's kind, for telling background churn: who, which verb, which object and subresource."""
    return summary.user, summary.verb, summary.resource, summary.subresource, summary.namespace, summary.name


def _named_child(request: Request, subject: _Subject) -> str | None:
    """A weak link by the names controllers give what they create (only for requests without bodies)."""
    summary = request.summary
    if request.bodies or not is_controller(summary.user) or summary.namespace != subject.namespace:
        return None
    rule = _NAMED.get((subject.resource or "", summary.resource or ""))
    if rule is None or not subject.name:
        return None
    if summary.name:
        if re.fullmatch(re.escape(subject.name) + "-" + rule[0], summary.name):
            return rule[1]
        return None
    creator = _POD_CREATORS.get(subject.resource or "")
    if summary.verb == "create" and summary.resource == "pods" and creator and summary.user.endswith(":" + creator):
        return _UNNAMED_POD.format(controller=creator)
    return None


class _Linker:
    """Grows the tree from the root, claiming each candidate request at most once (closest owner first)."""

    def __init__(self, root: Request, candidates: Sequence[Request], horizon: timedelta, known: Sequence[Request]):
        self.root = root
        self.start = root.summary.first
        end = self.start + horizon
        self.pool = [
            item
            for item in candidates
            if item.summary.audit_id != root.summary.audit_id
            and item.summary.verb in WRITE_VERBS
            and self.start - SKEW <= item.summary.first <= end
        ]
        self.used: set[str] = {root.summary.audit_id}
        self.nodes = 1
        self.end = end
        # After an update or patch: each object's later changes (which take over), and the status writes already
        # being made in the horizon before the root (background churn, not its doing).
        self.change = root.summary.verb in CHANGE_VERBS
        self.takeovers: dict[tuple[str | None, str | None, str | None], list[datetime]] = {}
        self.background: set[_Signature] = set()
        if self.change:
            for item in self.pool:
                if _takes_over(item):
                    self.takeovers.setdefault(item.key, []).append(item.summary.first)
            since, until = self.start - horizon, self.start - SKEW
            for item in [*known, *candidates]:
                summary = item.summary
                if summary.subresource == "status" and since <= summary.first < until:
                    self.background.add(_signature(summary))
        # What earlier recorded bodies say about objects: key → (uid, owners); teaches a delete who its dependents were.
        self.history: dict[tuple[str | None, str | None, str | None], tuple[str | None, tuple[Owner, ...]]] = {}
        for item in [*known, *candidates]:
            if item.summary.verb in ("create", "update", "patch") and not item.summary.subresource and item.ok:
                uid, owners = self.history.get(item.key, (None, ()))
                self.history[item.key] = (item.uid or uid, item.owners or owners)

    def subject(self, request: Request) -> _Subject:
        summary = request.summary
        uid = request.uid or self.history.get(request.key, (None, ()))[0]
        deleted = summary.verb in ("delete", "deletecollection") and request.ok
        return _Subject(summary.resource, summary.namespace, summary.name, request.kind, uid, deleted)

    def taken_over(self, request: Request, until: datetime) -> datetime:
        """The end of what `request` can be credited with: the next change of its object, if before `until`."""
        later = (moment for moment in self.takeovers.get(request.key, ()) if moment > request.summary.first)
        return min(until, min(later, default=until))

    def credited(self, request: Request, until: datetime) -> bool:
        """Whether a change can have caused `request`: it started before `until` and is not a status write the
        control plane was already making before the change. After a create or a delete: always."""
        if not self.change:
            return True
        summary = request.summary
        return summary.first < until and (summary.subresource != "status" or _signature(summary) not in self.background)

    def after(self, request: Request, *, tolerant: bool) -> bool:
        earliest = self.start - SKEW if tolerant else self.start
        return request.summary.first >= earliest and request.summary.audit_id not in self.used

    def claim(self, request: Request) -> bool:
        if self.nodes >= MAX_NODES or request.summary.audit_id in self.used:
            return False
        self.used.add(request.summary.audit_id)
        self.nodes += 1
        return True

    def grow(self, request: Request, reason: str, depth: int, until: datetime | None = None) -> CascadeNode:
        """The node of `request` with its children (`request` already claimed); after a change, those started
        before `until` (the root's object or this one changed again), except that an object this cascade created
        keeps its own binding and status reports until it is itself changed."""
        node = CascadeNode(request.summary, reason, request.summary.first - self.start)
        if depth >= 8 or request.summary.subresource or not request.ok:
            return node
        end = self.end + timedelta(microseconds=1)
        until = self.taken_over(request, until or end)
        own = self.taken_over(request, end) if request.summary.verb == "create" else until
        subject = self.subject(request)
        found: list[tuple[Request, str, bool]] = []  # (request, reason, grows further)
        # later writes of controllers to the same object (status, binding, scaling, final deletion)
        for item in self.pool:
            if not self.credited(item, own):
                continue
            same = item.key == request.key and item.key[2] and is_controller(item.summary.user)
            # a controller deleting the object follows from something else (its owner's deletion, a scale-down)
            same = same and (item.summary.verb not in ("delete", "deletecollection") or subject.deleted)
            if same and self.after(item, tolerant=False) and item.summary.first >= request.summary.first:
                found.append((item, _same_object_reason(item), False))
        claimed = {id(item) for item, _, _ in found}
        # dependents: the first request on each object whose recorded owner reference points here
        if not subject.deleted:
            seen: set[tuple[str | None, str | None, str | None]] = set()
            for item in self.pool:
                if id(item) in claimed or item.key in seen or item.key == request.key:
                    continue
                # after a change, an owned object's status report is no sign of it (only under the object's own write)
                if not self.credited(item, until) or (self.change and item.summary.subresource):
                    continue
                local = item.summary.namespace == subject.namespace or not subject.namespace
                link = _owned_by(item, subject) if local else None
                if link is None:
                    link = _named_child(item, subject)
                    tolerant = False
                else:
                    tolerant = True
                if link is not None and self.after(item, tolerant=tolerant):
                    found.append((item, link, True))
                    seen.add(item.key)
        else:
            for item in self.pool:
                summary = item.summary
                if id(item) in claimed or summary.verb != "delete" or not is_controller(summary.user):
                    continue
                if not self.credited(item, until):
                    continue
                if summary.namespace != subject.namespace and subject.namespace:
                    continue
                if not self.after(item, tolerant=False):
                    continue
                uid, owners = self.history.get(item.key, (None, ()))
                dependent = Request(item.summary, item.kind, uid, owners, bool(owners))
                link = GARBAGE if _owned_by(dependent, subject) else None
                if (
                    link is None
                    and not owners
                    and _garbage_collector(summary.user)
                    and subject.name
                    and (summary.name or "").startswith(subject.name + "-")
                ):
                    link = _GC_PREFIX
                if link is not None:
                    found.append((item, link, True))
        found.sort(key=lambda entry: (entry[0].summary.first, entry[0].summary.audit_id))
        children: list[CascadeNode] = []
        for item, link, grows in found:
            if self.claim(item):
                children.append(self.grow(item, link, depth + 1, until) if grows else self.leaf(item, link))
        return CascadeNode(node.request, node.reason, node.delay, tuple(children))

    def leaf(self, request: Request, reason: str) -> CascadeNode:
        return CascadeNode(request.summary, reason, request.summary.first - self.start)


def link(
    root: Request,
    candidates: Sequence[Request],
    *,
    horizon: timedelta = DEFAULT_HORIZON,
    known: Sequence[Request] = (),
) -> Cascade:
    """The tree of what `root` caused among `candidates` (requests within the horizon).

    `known` are earlier requests: their recorded bodies tell which objects the root's dependents were (needed to
    follow a delete to the garbage collector's deletions), and for an update or patch they show the status writes
    the control plane was already making before it (as do `candidates` older than the root). They never appear in
    the tree themselves.
    """
    linker = _Linker(root, candidates, horizon, known)
    return Cascade(linker.grow(root, "root", 0), horizon)


# -- the query at the edge ----------------------------------------------------------------------------------------


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _rows(source: Source, text: str, window: Window | None, limit: int = 0) -> list[dict[str, Any]]:
    table = source.select(text, window, columns=list(COLUMNS), limit=limit)
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def _owner_history(source: Source, text: str, window: Window, name: str | None) -> list[dict[str, Any]]:
    """Earlier writes whose bodies record owner references (or that name the object itself), newest kept."""
    clause, params = source.where(text, window)
    columns = ", ".join(f'"{column}"' for column in COLUMNS)
    table = source.sql(
        f"SELECT {columns} FROM (SELECT {columns} FROM {source.relation} WHERE {clause} "
        "AND (contains(event, 'ownerReferences') OR name = ?) ORDER BY time DESC LIMIT ?) ORDER BY time",
        [*params, name or "", MAX_CANDIDATES],
    )
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def _root_rows(source: Source, audit_id: str, near: datetime | None) -> list[dict[str, Any]]:
    """The stages of `audit_id`. Every stage of a request carries its requestReceivedTimestamp (`time`), so the
    wide columns (the JSON) are read within a minute of it only: of `near` when given and right, else of the time
    found first by reading the narrow columns alone."""
    text = f"id={_quoted(audit_id)}"
    if near is not None:
        rows = _rows(source, text, Window(since=_stamp(near - ROOT_REACH), until=_stamp(near + ROOT_REACH)))
        if rows:
            return rows
    located = source.select(text, None, columns=["time"], limit=1).to_pylist()
    if not located or located[0]["time"] is None:
        return []
    moment: datetime = located[0]["time"]
    return _rows(source, text, Window(since=_stamp(moment - ROOT_REACH), until=_stamp(moment + ROOT_REACH)))


def build_cascade(
    source: Source, audit_id: str, *, horizon: timedelta = DEFAULT_HORIZON, near: datetime | None = None
) -> Cascade | None:
    """What the request `audit_id` caused within `horizon`; None when the source has no such request. `near`, the
    request's time when the caller knows it, saves a search of the whole source for the request."""
    root_rows = _root_rows(source, audit_id, near)
    found = merge_stages(root_rows)
    if not found:
        return None
    root = found[0]
    summary = root.summary
    cluster = next((row.get("cluster") for row in root_rows if row.get("cluster")), None)
    verbs = "verb in (" + ",".join(WRITE_VERBS) + ")"
    scope = f" ns={_quoted(summary.namespace)}" if summary.namespace else ""
    window = Window(
        since=_stamp(summary.first - SKEW),
        until=_stamp(summary.first + horizon + timedelta(microseconds=1)),
        cluster=cluster or None,
    )
    candidates = merge_stages(_rows(source, verbs + scope, window, limit=MAX_CANDIDATES))
    known: list[Request] = []
    if summary.verb in CHANGE_VERBS:
        # what the control plane was already writing in the horizon before the change (no bodies needed)
        since, until = _stamp(summary.first - horizon), _stamp(summary.first - SKEW)
        before = Window(since=since, until=until, cluster=cluster or None)
        narrow = [column for column in COLUMNS if column != "event"]
        text = "subresource=status verb in (update,patch)" + scope
        table = source.select(text, before, columns=narrow, limit=MAX_CANDIDATES, order="desc")
        known = merge_stages(table.to_pylist())
    elif summary.verb in ("delete", "deletecollection"):
        # who the deleted object's dependents were: earlier writes recording owner references (newest first)
        before = Window(until=_stamp(summary.first - SKEW), cluster=cluster or None)
        known = merge_stages(_owner_history(source, "verb in (create,update,patch)" + scope, before, summary.name))
    return link(root, candidates, horizon=horizon, known=known)
