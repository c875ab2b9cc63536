"""One planned API request (`Call`) and a builder that gets its URI, objectRef, status and bodies right.

The builder follows the apiserver's request-info rules: GET on an object is `get`, on a collection
`list`, with `watch=true` `watch`; POST is `create` (also for `pods/exec`), PUT `update`, PATCH
`patch`, DELETE `delete`; a list or watch with a `metadata.name` field selector names that object.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from urllib.parse import quote

from kubetrail.emit.generator import bodies
from kubetrail.emit.generator.identities import Identity
from kubetrail.emit.generator.ids import new_uuid
from kubetrail.emit.generator.resources import Kind, object_ref, resource_path
from kubetrail.emit.generator.workloads import Obj
from kubetrail.emit.generator.world import World
from kubetrail.model.event import ObjectReference, UserInfo

LONG_RUNNING_VERBS = frozenset({"watch", "proxy"})
LONG_RUNNING_SUBRESOURCES = frozenset({"attach", "exec", "proxy", "log", "portforward"})
_REASONS = {400: "BadRequest", 403: "Forbidden", 404: "NotFound", 409: "Conflict", 422: "Invalid"}


@dataclass(slots=True)
class Call:
    """A request as planned: who, what, the outcome, its bodies and how long it takes.

    `ref` is what request info knows when the request arrives; `final_ref` is the objectRef after
    the body was decoded (a create learns the object's name from it).
    """

    actor: Identity
    verb: str
    uri: str
    ref: ObjectReference | None = None
    final_ref: ObjectReference | None = None
    code: int = 200
    request_body: bytes = b""
    response_body: bytes = b""
    latency_us: int = 3_000
    session_us: int = 0
    gap_us: int = 0
    decision: str = "allow"
    reason: str | None = None
    status_reason: str = ""
    message: str = ""
    details: bytes = b""
    annotations: dict[str, str] = field(default_factory=dict)
    impersonated: UserInfo | None = None

    @property
    def long_running(self) -> bool:
        """Watch, proxy and streaming subresources (exec, attach, log, portforward) get a ResponseStarted event."""
        if self.verb in LONG_RUNNING_VERBS:
            return True
        ref = self.ref
        return ref is not None and ref.subresource in LONG_RUNNING_SUBRESOURCES


def go_duration(seconds: int) -> str:
    """A Go time.Duration string, as client-go writes the `timeout` query parameter (`7m42s`)."""
    minutes, rest = divmod(seconds, 60)
    return f"{minutes}m{rest}s" if minutes else f"{rest}s"


class Api:
    """Builds Calls against the world's objects; owns a random source and the current simulated time."""

    def __init__(self, world: World, rng: random.Random) -> None:
        self.world = world
        self.rng = rng
        self.clock = world.clock
        self.now = 0

    def new_id(self) -> str:
        """A fresh UUID (auditIDs, new objects)."""
        return new_uuid(self.rng)

    def latency(self, low_ms: float, high_ms: float) -> int:
        """A request's processing time, in microseconds."""
        return int((low_ms + (high_ms - low_ms) * self.rng.random()) * 1000)

    # -- resource requests --------------------------------------------------------------------

    def get(self, actor: Identity, obj: Obj, *, subresource: str = "", query: str = "") -> Call:
        """GET one object (`get`); the response is the object."""
        path, ref = _target(obj, subresource)
        final = object_ref(obj.kind, obj.namespace, obj.name, subresource, obj.uid, obj.rv)
        body = b"" if subresource else bodies.object_body(obj, self.clock)
        uri = f"{path}?{query}" if query else path
        return Call(actor, "get", uri, ref, final, response_body=body, latency_us=self.latency(1, 6))

    def list(self, actor: Identity, kind: Kind, namespace: str = "", *, query: str = "limit=500") -> Call:
        """GET a collection (`list`), in one namespace or across all; the response is the list."""
        world = self.world
        if namespace:
            items = world.inventory.objects(namespace, kind.resource)
        else:
            items = world.inventory.all_of(kind.resource)
        encoded = [bodies.object_body(obj, self.clock) for obj in items[:12]]
        body = bodies.object_list(kind.kind + "List", kind.api_version, world.inventory.next_version(), encoded)
        path = resource_path(kind, namespace)
        ref = object_ref(kind, namespace)
        uri = f"{path}?{query}" if query else path
        return Call(actor, "list", uri, ref, ref, response_body=body, latency_us=self.latency(4, 30))

    def watch(self, actor: Identity, kind: Kind, namespace: str = "", *, name: str = "", seconds: int = 0) -> Call:
        """GET a collection with `watch=true` (`watch`); client-go reconnects every 5 to 10 minutes."""
        timeout = seconds or 300 + self.rng.randrange(300)
        params = ["allowWatchBookmarks=true"]
        if name:
            params.append(f"fieldSelector=metadata.name%3D{name}")
        params.append(f"resourceVersion={self.world.inventory.next_version()}")
        params.append(f"timeout={go_duration(timeout)}&timeoutSeconds={timeout}&watch=true")
        uri = resource_path(kind, namespace) + "?" + "&".join(params)
        ref = object_ref(kind, namespace, name)
        session = timeout * 1_000_000 - self.rng.randrange(2_000_000)
        return Call(actor, "watch", uri, ref, ref, latency_us=self.latency(0.3, 2), session_us=session)

    def create(
        self, actor: Identity, obj: Obj, body: bytes, *, query: str = "", response: bytes | None = None, code: int = 201
    ) -> Call:
        """POST to the collection (`create`); request info has no name yet, the decoded object supplies it."""
        path = resource_path(obj.kind, obj.namespace)
        ref = object_ref(obj.kind, obj.namespace)
        final = object_ref(obj.kind, obj.namespace, obj.name)
        uri = f"{path}?{query}" if query else path
        reply = bodies.object_body(obj, self.clock) if response is None else response
        return Call(actor, "create", uri, ref, final, code, body, reply, latency_us=self.latency(5, 25))

    def update(self, actor: Identity, obj: Obj, body: bytes, *, subresource: str = "", response: bytes = b"") -> Call:
        """PUT the whole object (`update`)."""
        path, ref = _target(obj, subresource)
        final = object_ref(obj.kind, obj.namespace, obj.name, subresource, obj.uid, obj.rv)
        return Call(actor, "update", path, ref, final, 200, body, response or body, latency_us=self.latency(3, 15))

    def patch(
        self, actor: Identity, obj: Obj, patch: bytes, *, subresource: str = "", query: str = "", response: bytes = b""
    ) -> Call:
        """PATCH the object (`patch`); the response is the patched object."""
        path, ref = _target(obj, subresource)
        final = object_ref(obj.kind, obj.namespace, obj.name, subresource, obj.uid)
        uri = f"{path}?{query}" if query else path
        reply = response or bodies.object_body(self.world.inventory.touch(obj), self.clock)
        return Call(actor, "patch", uri, ref, final, 200, patch, reply, latency_us=self.latency(4, 20))

    def delete(self, actor: Identity, obj: Obj) -> Call:
        """DELETE one object (`delete`); the response is a Success Status."""
        path = resource_path(obj.kind, obj.namespace, obj.name)
        ref = object_ref(obj.kind, obj.namespace, obj.name)
        body = bodies.encode({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"})
        return Call(actor, "delete", path, ref, ref, 200, body, bodies.status(200), latency_us=self.latency(4, 20))

    def connect(
        self, actor: Identity, pod: Obj, subresource: str, query: str, request: bytes, session_s: float
    ) -> Call:
        """POST to a streaming subresource (`pods/exec`, `pods/attach`, `pods/portforward`): 101, then a session."""
        path = resource_path(pod.kind, pod.namespace, pod.name, subresource)
        ref = object_ref(pod.kind, pod.namespace, pod.name, subresource)
        return Call(
            actor,
            "create",
            f"{path}?{query}",
            ref,
            ref,
            101,
            request,
            latency_us=self.latency(15, 60),
            session_us=int(session_s * 1_000_000),
        )

    def logs(self, actor: Identity, pod: Obj, *, follow: bool) -> Call:
        """GET `pods/log` (`get`): a streaming subresource, so it also has a ResponseStarted stage."""
        query = f"container={pod.app or 'app'}" + ("&follow=true" if follow else "") + "&tailLines=100"
        call = self.get(actor, pod, subresource="log", query=query)
        call.session_us = int((20 + self.rng.random() * 100) * 1_000_000) if follow else self.latency(5, 40)
        return call

    # -- non-resource requests ----------------------------------------------------------------

    def path(self, actor: Identity, path: str, *, verb: str = "get", code: int = 200) -> Call:
        """A non-resource request (`/healthz`, `/metrics`, `/api`): no objectRef and never a body."""
        return Call(actor, verb, path, latency_us=self.latency(0.2, 3), code=code)

    # -- outcomes -----------------------------------------------------------------------------

    def forbid(self, call: Call) -> Call:
        """The authorizer said no: 403 with RBAC's message and an empty reason."""
        user = call.actor.name
        ref = call.ref
        if ref is None:
            message = f'forbidden: User "{user}" cannot {call.verb} path "{call.uri.split("?")[0]}"'
            details = None
        else:
            resource = f"{ref.resource}/{ref.subresource}" if ref.subresource else ref.resource
            named = f'{ref.resource} "{ref.name}"' if ref.name else ref.resource
            scope = f'in the namespace "{ref.namespace}"' if ref.namespace else "at the cluster scope"
            message = (
                f'{named} is forbidden: User "{user}" cannot {call.verb} resource "{resource}" '
                f'in API group "{ref.apiGroup}" {scope}'
            )
            details = _details(ref)
        return self.fail(call, 403, message, details, decision="forbid")

    def not_found(self, call: Call) -> Call:
        """The object does not exist: 404 NotFound."""
        ref = call.ref
        assert ref is not None
        message = f'{_qualified(ref)} "{ref.name}" not found'
        call.final_ref = ref
        return self.fail(call, 404, message, _details(ref))

    def conflict(self, call: Call, *, exists: bool = False) -> Call:
        """A stale update (409 Conflict) or a create of an existing name (409 AlreadyExists)."""
        ref = call.final_ref or call.ref
        assert ref is not None
        if exists:
            message = f'{_qualified(ref)} "{ref.name}" already exists'
            failed = self.fail(call, 409, message, _details(ref))
            failed.status_reason = "AlreadyExists"
            failed.response_body = bodies.status(409, "AlreadyExists", message, _details(ref))
            return failed
        message = (
            f'Operation cannot be fulfilled on {_qualified(ref)} "{ref.name}": the object has been modified; '
            "please apply your changes to the latest version and try again"
        )
        return self.fail(call, 409, message, _details(ref))

    def unauthenticated(self, call: Call, *, methods: str = "bearer") -> Call:
        """Bad credentials: 401, logged once at ResponseStarted with an empty user."""
        call.code = 401
        call.decision = ""
        call.message = f"Authentication failed, attempted: {methods}"
        call.request_body = call.response_body = b""
        return call

    def fail(
        self, call: Call, code: int, message: str, details: dict[str, str] | None, *, decision: str = "allow"
    ) -> Call:
        """Turn `call` into a failure with a Status body (`decision` is what the authorizer said)."""
        call.code = code
        call.decision = decision
        if decision == "forbid":
            call.reason = ""
            call.final_ref = call.ref
            call.request_body = b""
        call.status_reason = _REASONS[code]
        call.message = message
        call.details = bodies.encode(details) if details is not None else b""
        call.session_us = min(call.session_us, 1_000)
        call.response_body = bodies.status(code, call.status_reason, message, details) if call.ref else b""
        return call


def _target(obj: Obj, subresource: str) -> tuple[str, ObjectReference]:
    """The request path and request-info objectRef of an object's (sub)resource, built once per object."""
    cached = obj.targets.get(subresource)
    if cached is None:
        path = resource_path(obj.kind, obj.namespace, obj.name, subresource)
        cached = obj.targets[subresource] = (path, object_ref(obj.kind, obj.namespace, obj.name, subresource))
    return cached


def _qualified(ref: ObjectReference) -> str:
    return f"{ref.resource}.{ref.apiGroup}" if ref.apiGroup else ref.resource


def _details(ref: ObjectReference) -> dict[str, str]:
    details: dict[str, str] = {}
    if ref.name:
        details["name"] = ref.name
    if ref.apiGroup:
        details["group"] = ref.apiGroup
    details["kind"] = ref.resource
    return details


def command_query(command: list[str], container: str, *, tty: bool) -> str:
    """The query string kubectl sends for `exec`: one `command=` per argument, keys sorted as Go encodes them."""
    parts = [f"command={quote(arg, safe='')}" for arg in command]
    parts.append(f"container={container}")
    if not tty:
        parts.append("stderr=true")
    parts.append("stdin=true&stdout=true")
    if tty:
        parts.append("tty=true")
    return "&".join(parts)
