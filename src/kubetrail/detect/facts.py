"""What a request did, read one way for every rule: its outcome, its action, the command an exec ran, its source.

Pure functions of an event. Rules reach them as kubetrail's own fields (`ka.outcome`, `ka.action`,
`ka.exec.command`, `ka.exec.program`, `ka.source.scope`, `ka.useragent.product`); alerts carry the outcome.

- outcome: `succeeded` (the apiserver answered below 400, 101 included), `denied` (401: no valid credential;
  403: refused by authorization or admission, e.g. Pod Security) or `failed` (any other 4xx or 5xx, or the Panic
  stage). Unknown (None) until a response code is recorded, as at RequestReceived.
- action: `created` for a create, and for an update or patch answered 201 (server-side apply and PUT both
  create an object that did not exist); `changed` for other updates and patches; `deleted`; `read` for get,
  list and watch; other verbs as written. GKE records no HTTP status: its intake infers the 201 from the
  response object's creation time (kubetrail.intake.gke).
- exec command: `kubectl exec` sends its argv as repeated `command` query parameters; the apiserver parses them
  into a PodExecOptions, which is what GKE records as the request body. Either source gives the argv.
- source scope: the first `sourceIPs` entry as `public`, `private` (RFC 1918, carrier-grade NAT RFC 6598, IPv6
  unique-local), `loopback`, `link-local`, or `invalid` when it is not an IP address at all.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from kubetrail.model import Event, Stage

EXEC_SUBRESOURCE = "exec"
_READ_VERBS = frozenset({"get", "list", "watch"})
_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(text)
    for text in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)


class Outcome(enum.StrEnum):
    """How the apiserver answered a request."""

    SUCCEEDED = "succeeded"
    DENIED = "denied"
    FAILED = "failed"


def outcome(event: Event) -> Outcome | None:
    """The request's outcome, or None while no response code is recorded."""
    if event.stage is Stage.PANIC:
        return Outcome.FAILED
    status = event.responseStatus
    code = status.code if status is not None else 0
    if not code:
        return None
    if code in (401, 403):
        return Outcome.DENIED
    return Outcome.FAILED if code >= 400 else Outcome.SUCCEEDED


def outcome_label(event: Event) -> str | None:
    """The outcome as text (`succeeded`, `denied`, `failed`), or None while unknown."""
    found = outcome(event)
    return None if found is None else found.value


def action(event: Event) -> str | None:
    """What the request did to its object: created, changed, deleted, read (else the verb)."""
    verb = event.verb
    if not verb:
        return None
    if verb == "create":
        return "created"
    if verb in ("update", "patch"):
        status = event.responseStatus
        return "created" if status is not None and status.code == 201 else "changed"
    if verb in ("delete", "deletecollection"):
        return "deleted"
    if verb in _READ_VERBS:
        return "read"
    return verb


def exec_argv(event: Event, request: Any) -> list[str] | None:
    """The argv of an exec request: the URI's `command` parameters, else the PodExecOptions body's `command`."""
    reference = event.objectRef
    if reference is None or reference.subresource != EXEC_SUBRESOURCE:
        return None
    query = urlsplit(event.requestURI).query
    if query:
        argv = [value for key, value in parse_qsl(query, keep_blank_values=True) if key == "command"]
        if argv:
            return argv
    if isinstance(request, dict):
        command = request.get("command")
        if isinstance(command, list):
            found = [str(part) for part in command if isinstance(part, str | int | float)]
            return found or None
        if isinstance(command, str) and command:
            return [command]
    return None


@functools.lru_cache(maxsize=65536)
def source_scope(text: str) -> str:
    """Where an address lives: public, private, loopback, link-local, or invalid when it is not an address."""
    try:
        address = ipaddress.ip_address(text.strip().removeprefix("[").removesuffix("]"))
    except ValueError:
        return "invalid"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_unspecified or address.is_multicast:
        return "invalid"
    if any(address in network for network in _PRIVATE_NETWORKS):
        return "private"
    return "public"


@functools.lru_cache(maxsize=65536)
def agent_product(user_agent: str) -> str | None:
    """The product token of a User-Agent (`kubectl/v1.30.1 (linux/amd64) kubernetes/abc` → `kubectl`)."""
    head = user_agent.strip().split(" ", 1)[0]
    product = head.split("/", 1)[0]
    return product or None
