"""The requests a subject made, from audit events: one per request (auditID), with its authorization outcome.

The subject of a request is the impersonated user when there is one (that is who the authorizer checked),
else the authenticated user. A request counts as allowed when the apiserver's `authorization.k8s.io/decision`
annotation says so or, without it, when the response was not 401/403 (a 404 or 409 was still authorized).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from kubetrail.model import Event, Stage, UserInfo
from kubetrail.rbac.rules import Request

_DECISION = "authorization.k8s.io/decision"
_STAGE_RANK = {Stage.REQUEST_RECEIVED: 0, Stage.RESPONSE_STARTED: 1, Stage.PANIC: 2, Stage.RESPONSE_COMPLETE: 3}
# Verbs whose URL carries no object name, so the authorizer sees none (resourceNames can never grant them).
_UNNAMED_VERBS = frozenset({"list", "watch", "deletecollection"})
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"


def service_account_user(namespace: str, name: str) -> str:
    """The username a service account's token authenticates as."""
    return f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"


def acting_user(event: Event) -> UserInfo:
    """Who the authorizer checked: the impersonated user if any, else the authenticated one."""
    return event.impersonatedUser if event.impersonatedUser is not None else event.user


def implied_groups(user: UserInfo) -> frozenset[str]:
    """The user's groups, plus those every service account token carries when the log left them out."""
    groups = set(user.groups)
    if user.username.startswith(SERVICE_ACCOUNT_PREFIX):
        namespace = user.username[len(SERVICE_ACCOUNT_PREFIX) :].split(":", 1)[0]
        groups.update({"system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"})
    return frozenset(groups)


def request_of(event: Event) -> Request:
    """The authorization attributes of the event's request."""
    ref = event.objectRef
    if ref is None:
        return Request(verb=event.verb, path=event.path)
    name = ref.name
    if event.verb in _UNNAMED_VERBS or (event.verb == "create" and not ref.subresource):
        name = ""
    return Request(
        verb=event.verb,
        api_group=ref.apiGroup,
        resource=ref.resource,
        subresource=ref.subresource,
        namespace=ref.namespace,
        name=name,
    )


def decision_of(event: Event) -> str | None:
    """`allow`, `forbid`, or None when the request never reached authorization (401)."""
    decision = event.annotations.get(_DECISION)
    if decision in ("allow", "forbid"):
        return decision
    code = event.responseStatus.code if event.responseStatus is not None else 0
    if code == 401:
        return None
    return "forbid" if code == 403 else "allow"


@dataclass
class Observed:
    """How often one distinct request was made in the window, and when."""

    request: Request
    allowed: int = 0
    denied: int = 0
    first: str = ""
    last: str = ""
    users: set[str] = field(default_factory=set)

    def add(self, allowed: bool, when: str, username: str) -> None:
        if allowed:
            self.allowed += 1
        else:
            self.denied += 1
        if when and (not self.first or when < self.first):
            self.first = when
        if when and when > self.last:
            self.last = when
        self.users.add(username)

    @property
    def count(self) -> int:
        return self.allowed + self.denied


@dataclass
class _Latest:
    rank: int
    event: Event


def one_per_request(events: Iterable[Event]) -> list[Event]:
    """The most complete event of each request (ResponseComplete over earlier stages), in first-seen order."""
    latest: dict[str, _Latest] = {}
    for event in events:
        rank = _STAGE_RANK.get(event.stage, 0)
        seen = latest.get(event.auditID)
        if seen is None or rank > seen.rank:
            latest[event.auditID] = _Latest(rank, event)
    return [item.event for item in latest.values()]


def impersonation_requests(event: Event) -> list[Request]:
    """The `impersonate` checks the apiserver made for the authenticated user before acting as another.

    Impersonating a user needs `impersonate` on `users` (or, for a service account, `serviceaccounts` in its
    namespace), each requested group on `groups`, each extra on `userextras/<key>` and a UID on `uids`
    (group `authentication.k8s.io`). Groups the apiserver adds by itself (system:authenticated and the
    service-account groups) are not checked. An event records `impersonatedUser` only when they passed.
    """
    target = event.impersonatedUser
    if target is None:
        return []
    checks: list[Request] = []
    automatic = {"system:authenticated"}
    if target.username.startswith(SERVICE_ACCOUNT_PREFIX):
        namespace, _, name = target.username[len(SERVICE_ACCOUNT_PREFIX) :].partition(":")
        checks.append(Request("impersonate", "", "serviceaccounts", namespace=namespace, name=name))
        automatic |= {"system:serviceaccounts", f"system:serviceaccounts:{namespace}"}
    elif target.username:
        checks.append(Request("impersonate", "", "users", name=target.username))
    checks.extend(Request("impersonate", "", "groups", name=group) for group in target.groups if group not in automatic)
    for key, values in sorted(target.extra.items()):
        checks.extend(
            Request("impersonate", "authentication.k8s.io", "userextras", key, name=value) for value in values
        )
    if target.uid:
        checks.append(Request("impersonate", "authentication.k8s.io", "uids", name=target.uid))
    return checks


def observe(events: Iterable[Event], usernames: frozenset[str] | None = None) -> dict[Request, Observed]:
    """Distinct requests (of the given users, or everyone) with their counts; 401s are left out.

    Besides each request as its acting user made it, the impersonation checks of the authenticated user
    count as that user's (allowed) requests.
    """
    observed: dict[Request, Observed] = {}

    def add(request: Request, allowed: bool, when: str, username: str) -> None:
        entry = observed.get(request)
        if entry is None:
            entry = observed[request] = Observed(request)
        entry.add(allowed, when, username)

    for event in one_per_request(events):
        when = event.requestReceivedTimestamp or event.stageTimestamp
        if event.impersonatedUser is not None and (usernames is None or event.user.username in usernames):
            for check in impersonation_requests(event):
                add(check, True, when, event.user.username)
        user = acting_user(event)
        if usernames is not None and user.username not in usernames:
            continue
        decision = decision_of(event)
        if decision is None:
            continue
        add(request_of(event), decision == "allow", when, user.username)
    return observed
