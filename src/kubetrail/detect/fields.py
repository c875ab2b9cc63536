"""The fields rules can use: every `ka.*` field of Falco's k8saudit plugin and the json plugin's `jevt.*`/`json.*`.

Each field has an accessor `ctx -> value` where a value is a string, a non-empty list of strings
(list fields), or None when the field is not available in the event: Falco's "missing" that makes
every comparison false. Values derived from the request or response object are computed at most
once per event (cached on the context).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubetrail.detect import facts
from kubetrail.detect.context import MISSING, EventContext
from kubetrail.detect.jsonpath import (
    as_text,
    child,
    pointer_keys,
    texts_skip_missing,
    texts_strict,
    values_recursive,
    walk,
)
from kubetrail.detect.timestamps import iso_time, rfc3339_to_ns

Value = str | list[str] | None
Accessor = Callable[[EventContext], Value]


class Arg(enum.Enum):
    """What may follow a field name in brackets."""

    NONE = "none"
    INDEX = "index"  # optional array index: `ka.req.pod.containers.image[0]`
    KEY = "key"  # required key: `ka.uri.param[command]`
    POINTER = "pointer"  # required JSON pointer: `jevt.value[/stage]`


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A field: its name, whether it yields a list, what argument it takes, and where its value comes from."""

    name: str
    is_list: bool
    arg: Arg
    path: str
    description: str
    make: Callable[[str | None], Accessor]
    always: bool = False  # available in every event, so `exists` is always true


FIELDS: dict[str, FieldSpec] = {}


def _register(name: str, is_list: bool, arg: Arg, path: str, description: str) -> Callable[..., Any]:
    def decorate(make: Callable[[str | None], Accessor]) -> Callable[[str | None], Accessor]:
        FIELDS[name] = FieldSpec(name, is_list, arg, path, description, make)
        return make

    return decorate


def _simple(
    name: str, path: str, description: str, accessor: Accessor, *, is_list: bool = False, always: bool = False
) -> None:
    FIELDS[name] = FieldSpec(name, is_list, Arg.NONE, path, description, lambda _arg: accessor, always)


def _cached(compute: Accessor) -> Accessor:
    """Memoise a field on the event's context: request-derived values are computed once per event."""
    key = object()

    def accessor(ctx: EventContext) -> Value:
        cache = ctx.cache
        if key in cache:
            return cache[key]  # type: ignore[no-any-return]
        value = cache[key] = compute(ctx)
        return value

    return accessor


def _nonempty(values: list[str] | None) -> list[str] | None:
    return values if values else None


def _index(arg: str | None) -> int | None:
    if arg is None:
        return None
    if not arg.isdigit():
        raise ValueError(f"expected a numeric index, got {arg!r}")
    return int(arg)


# --- top-level event fields ------------------------------------------------------------------------


def _annotation(key: str) -> Accessor:
    def accessor(ctx: EventContext) -> Value:
        return ctx.event.annotations.get(key)

    return accessor


def _target(attribute: str) -> Accessor:
    def accessor(ctx: EventContext) -> Value:
        ref = ctx.event.objectRef
        if ref is None:
            return None
        return getattr(ref, attribute) or None

    return accessor


def _user_name(ctx: EventContext) -> Value:
    return ctx.event.user.username or None


def _user_groups(ctx: EventContext) -> Value:
    return list(ctx.event.user.groups) or None


def _impersonated_name(ctx: EventContext) -> Value:
    user = ctx.event.impersonatedUser
    return (user.username or None) if user is not None else None


def _response_code(ctx: EventContext) -> Value:
    status = ctx.event.responseStatus
    return str(status.code) if status is not None and status.code else None


def _response_reason(ctx: EventContext) -> Value:
    status = ctx.event.responseStatus
    return (status.reason or None) if status is not None else None


def _pod_name(ctx: EventContext) -> Value:
    ref = ctx.event.objectRef
    if ref is None or ref.resource != "pods":
        return None
    return ref.name or None


_simple("ka.auditid", "auditID", "The unique id of the audit event.", lambda ctx: ctx.event.auditID or None)
_simple("ka.stage", "stage", "Stage of the request (RequestReceived, ...).", lambda c: c.event.stage, always=True)
_simple(
    "ka.auth.decision",
    'annotations["authorization.k8s.io/decision"]',
    "The authorization decision (allow, forbid).",
    _annotation("authorization.k8s.io/decision"),
)
_simple(
    "ka.auth.reason",
    'annotations["authorization.k8s.io/reason"]',
    "The authorization reason.",
    _annotation("authorization.k8s.io/reason"),
)
_simple(
    "ka.auth.openshift.decision",
    'annotations["authentication.openshift.io/decision"]',
    "The authentication decision of the OpenShift apiserver extension (OpenShift clusters only).",
    _annotation("authentication.openshift.io/decision"),
)
_simple(
    "ka.auth.openshift.username",
    'annotations["authentication.openshift.io/username"]',
    "The user name of the OpenShift authentication operation (OpenShift clusters only).",
    _annotation("authentication.openshift.io/username"),
)
_simple(
    "ka.validations.admission.policy.failure",
    'annotations["validation.policy.admission.k8s.io/validation_failure"]',
    "The validation failure reported by a ValidatingAdmissionPolicy.",
    _annotation("validation.policy.admission.k8s.io/validation_failure"),
)
_simple(
    "ka.security.pod.violations",
    'annotations["pod-security.kubernetes.io/audit-violations"]',
    "The Pod Security admission violations of the request.",
    _annotation("pod-security.kubernetes.io/audit-violations"),
)
_simple("ka.user.name", "user.username", "The user name performing the request.", _user_name)
_simple("ka.user.groups", "user.groups", "The groups of the user.", _user_groups, is_list=True)
_simple("ka.impuser.name", "impersonatedUser.username", "The impersonated user name.", _impersonated_name)
_simple("ka.verb", "verb", "The action being performed (get, create, ...).", lambda ctx: ctx.event.verb or None)
_simple(
    "ka.uri", "requestURI", "The request URI as sent from client to server.", lambda c: c.event.requestURI, always=True
)
_simple("ka.target.name", "objectRef.name", "The target object name.", _target("name"))
_simple("ka.target.namespace", "objectRef.namespace", "The target object namespace.", _target("namespace"))
_simple("ka.target.resource", "objectRef.resource", "The target object resource.", _target("resource"))
_simple("ka.target.subresource", "objectRef.subresource", "The target object subresource.", _target("subresource"))
_simple(
    "ka.target.pod.name",
    'objectRef.name (when objectRef.resource is "pods")',
    "The target pod name.",
    _pod_name,
)
_simple("ka.resp.name", "responseObject.metadata.name", "The response object name.", lambda c: _response_name(c))
_simple("ka.response.code", "responseStatus.code", "The response code, as text (`201`).", _response_code)
_simple(
    "ka.response.reason", "responseStatus.reason", "The response reason (usually only for failures).", _response_reason
)
_simple("ka.useragent", "userAgent", "The user agent of the client.", lambda ctx: ctx.event.userAgent or None)
_simple(
    "ka.cluster.name", "(receiver's cluster label)", "The cluster the event came from.", lambda c: c.cluster or None
)


@_register("ka.uri.param", False, Arg.KEY, "requestURI query", "The value of a query parameter of the URI.")
def _uri_param(arg: str | None) -> Accessor:
    key = arg or ""

    def accessor(ctx: EventContext) -> Value:
        return ctx.query.get(key)

    return accessor


@_register("ka.sourceips", True, Arg.INDEX, "sourceIPs", "The IP addresses of the client.")
def _source_ips(arg: str | None) -> Accessor:
    index = _index(arg)

    def accessor(ctx: EventContext) -> Value:
        ips = ctx.event.sourceIPs
        if index is None:
            return list(ips) or None
        return [ips[index]] if index < len(ips) else None

    return accessor


# --- request/response object fields ----------------------------------------------------------------


def _response_name(ctx: EventContext) -> Value:
    value = walk(ctx.response, ("metadata", "name"))
    return None if value is MISSING else as_text(value)


def _request_scalar(*keys: str) -> Accessor:
    def compute(ctx: EventContext) -> Value:
        value = walk(ctx.request, keys)
        return None if value is MISSING else as_text(value)

    return _cached(compute)


def _request_array(*keys: str) -> Accessor:
    """A list field read from one array of the request object: each element as text."""

    def compute(ctx: EventContext) -> Value:
        value = walk(ctx.request, keys)
        if not isinstance(value, list):
            return None
        return _nonempty([as_text(element) for element in value])

    return _cached(compute)


def _request_recursive(keys: tuple[str, ...], index: int | None, *, strict: bool = False) -> Accessor:
    def compute(ctx: EventContext) -> Value:
        found = values_recursive(ctx.request, index, keys)
        if found is MISSING:
            return None
        return _nonempty(texts_strict(found) if strict else texts_skip_missing(found))

    return _cached(compute)


def _request_flattened(keys: tuple[str, ...], index: int | None) -> Accessor:
    """The strings of every array found at `keys` (one per fanned-out element), concatenated."""

    def compute(ctx: EventContext) -> Value:
        found = values_recursive(ctx.request, index, keys)
        if found is MISSING:
            return None
        out: list[str] = []
        for value in found:
            if isinstance(value, list):
                out.extend(as_text(item) for item in value)
        return _nonempty(out)

    return _cached(compute)


def _repository(image: str) -> str:
    """The repository part of an image reference, as the plugin cuts it: before the first `:` and `@`."""
    return image.split(":", 1)[0].split("@", 1)[0]


CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


def _container_fields(kind: str) -> None:
    prefix = f"ka.req.pod.{kind}"
    base = ("spec", kind)
    where = f"requestObject.spec.{kind}[*]"
    which = {
        "containers": "containers",
        "initContainers": "init containers",
        "ephemeralContainers": "ephemeral containers",
    }[kind]

    def recursive(suffix: str, *keys: str, strict: bool = False) -> None:
        def make(arg: str | None) -> Accessor:
            return _request_recursive((*base, *keys), _index(arg), strict=strict)

        path = f"{where}.{'.'.join(keys)}"
        FIELDS[f"{prefix}.{suffix}"] = FieldSpec(
            f"{prefix}.{suffix}", True, Arg.INDEX, path, f"The {' '.join(keys[-1:])} of all {which}.", make
        )

    def flattened(suffix: str, *keys: str, description: str) -> None:
        def make(arg: str | None) -> Accessor:
            return _request_flattened((*base, *keys), _index(arg))

        path = f"{where}.{'.'.join(keys)}[*]"
        FIELDS[f"{prefix}.{suffix}"] = FieldSpec(f"{prefix}.{suffix}", True, Arg.INDEX, path, description, make)

    recursive("name", "name")
    recursive("image", "image", strict=True)
    flattened("command", "command", description=f"The command arguments of all {which}, concatenated.")
    flattened("args", "args", description=f"The args of all {which}, concatenated.")
    for suffix, key in (
        ("privileged", "privileged"),
        ("allow_privilege_escalation", "allowPrivilegeEscalation"),
        ("read_only_fs", "readOnlyRootFilesystem"),
        ("run_as_user", "runAsUser"),
        ("run_as_group", "runAsGroup"),
        ("run_as_non_root", "runAsNonRoot"),
        ("proc_mount", "procMount"),
    ):
        recursive(suffix, "securityContext", key)
    flattened(
        "add_capabilities", "securityContext", "capabilities", "add", description=f"Capabilities added to {which}."
    )

    def make_repository(arg: str | None) -> Accessor:
        images = _request_recursive((*base, "image"), _index(arg), strict=True)

        def compute(ctx: EventContext) -> Value:
            found = images(ctx)
            return [_repository(image) for image in found] if isinstance(found, list) else None

        return _cached(compute)

    FIELDS[f"{prefix}.image.repository"] = FieldSpec(
        f"{prefix}.image.repository",
        True,
        Arg.INDEX,
        f"{where}.image (before the first ':' and '@')",
        f"The repository part of the images of all {which} (`falcosecurity/falco`).",
        make_repository,
    )

    def make_host_port(arg: str | None) -> Accessor:
        index = _index(arg)

        def compute(ctx: EventContext) -> Value:
            found = values_recursive(ctx.request, index, (*base, "ports"))
            if found is MISSING:
                return None
            out: list[str] = []
            for ports in found:
                if not isinstance(ports, list):
                    continue
                for port in ports:
                    if isinstance(port, dict):
                        value = port.get("hostPort", port.get("containerPort", MISSING))
                        if value is not MISSING:
                            out.append(as_text(value))
            return _nonempty(out)

        return _cached(compute)

    FIELDS[f"{prefix}.host_port"] = FieldSpec(
        f"{prefix}.host_port",
        True,
        Arg.INDEX,
        f"{where}.ports[*].hostPort (else .containerPort)",
        f"The host ports of all {which} (the container port when no hostPort is set).",
        make_host_port,
    )

    for suffix, key in (("eff_run_as_user", "runAsUser"), ("eff_run_as_group", "runAsGroup")):
        FIELDS[f"{prefix}.{suffix}"] = FieldSpec(
            f"{prefix}.{suffix}",
            True,
            Arg.INDEX,
            f"{where}.securityContext.{key}, else requestObject.spec.securityContext.{key}, else 0",
            f"The effective {key} of all {which}: the container's, else the pod's, else 0.",
            _effective_maker(base, key),
        )


def _effective_maker(base: tuple[str, ...], key: str) -> Callable[[str | None], Accessor]:
    def make(arg: str | None) -> Accessor:
        index = _index(arg)

        def compute(ctx: EventContext) -> Value:
            pod_value = walk(ctx.request, ("spec", "securityContext", key))
            default = "0" if pod_value is MISSING or pod_value is None else as_text(pod_value)
            found = values_recursive(ctx.request, index, (*base, "securityContext", key))
            if found is MISSING:
                return None
            return _nonempty([default if value is MISSING or value is None else as_text(value) for value in found])

        return _cached(compute)

    return make


for _kind in CONTAINER_LISTS:
    _container_fields(_kind)


def _first_container(compute: Callable[[list[str]], Value], *, repository: bool = False) -> Accessor:
    images = _request_recursive(("spec", "containers", "image"), 0, strict=True)

    def accessor(ctx: EventContext) -> Value:
        found = images(ctx)
        if not isinstance(found, list):
            return None
        return compute([_repository(image) for image in found] if repository else found)

    return accessor


_simple(
    "ka.req.container.image",
    "requestObject.spec.containers[0].image",
    "Deprecated: the image of the first container.",
    _first_container(lambda images: images[0]),
)
_simple(
    "ka.req.container.image.repository",
    "requestObject.spec.containers[0].image (repository part)",
    "Deprecated: the repository of the first container's image.",
    _first_container(lambda images: images[0], repository=True),
)


def _any_privileged(ctx: EventContext) -> Value:
    found = values_recursive(ctx.request, None, ("spec", "containers", "securityContext", "privileged"))
    if found is MISSING:
        return None
    return "true" if any(value is True for value in found) else "false"


_simple(
    "ka.req.container.privileged",
    "requestObject.spec.containers[*].securityContext.privileged",
    "Deprecated: `true` when any container is privileged, else `false`.",
    _cached(_any_privileged),
)
_simple(
    "ka.req.pod.host_ipc", "requestObject.spec.hostIPC", "The pod's hostIPC flag.", _request_scalar("spec", "hostIPC")
)
_simple(
    "ka.req.pod.host_network",
    "requestObject.spec.hostNetwork",
    "The pod's hostNetwork flag.",
    _request_scalar("spec", "hostNetwork"),
)
_simple(
    "ka.req.container.host_network",
    "requestObject.spec.hostNetwork",
    "Deprecated alias of ka.req.pod.host_network.",
    _request_scalar("spec", "hostNetwork"),
)
_simple(
    "ka.req.pod.host_pid", "requestObject.spec.hostPID", "The pod's hostPID flag.", _request_scalar("spec", "hostPID")
)
for _suffix, _key in (
    ("run_as_user", "runAsUser"),
    ("run_as_group", "runAsGroup"),
    ("run_as_non_root", "runAsNonRoot"),
    ("fs_group", "fsGroup"),
):
    _simple(
        f"ka.req.pod.{_suffix}",
        f"requestObject.spec.securityContext.{_key}",
        f"The pod-level {_key} of the security context.",
        _request_scalar("spec", "securityContext", _key),
    )
_simple(
    "ka.req.pod.supplemental_groups",
    "requestObject.spec.securityContext.supplementalGroups",
    "The pod's supplemental group ids.",
    _request_array("spec", "securityContext", "supplementalGroups"),
    is_list=True,
)


@_register(
    "ka.req.pod.volumes.hostpath", True, Arg.INDEX, "requestObject.spec.volumes[*].hostPath.path", "All hostPath paths."
)
def _volume_hostpaths(arg: str | None) -> Accessor:
    return _request_recursive(("spec", "volumes", "hostPath", "path"), _index(arg))


@_register(
    "ka.req.pod.volumes.flexvolume_driver",
    True,
    Arg.INDEX,
    "requestObject.spec.volumes[*].flexVolume.driver",
    "All flexVolume drivers.",
)
def _flex_drivers(arg: str | None) -> Accessor:
    return _request_recursive(("spec", "volumes", "flexVolume", "driver"), _index(arg))


@_register(
    "ka.req.pod.volumes.volume_type",
    True,
    Arg.INDEX,
    "keys of requestObject.spec.volumes[*] other than name",
    "The type of every volume (`hostPath`, `secret`, ...).",
)
def _volume_types(arg: str | None) -> Accessor:
    index = _index(arg)

    def compute(ctx: EventContext) -> Value:
        found = values_recursive(ctx.request, index, ("spec", "volumes", ""))
        if found is MISSING:
            return None
        return _nonempty([key for volume in found if isinstance(volume, dict) for key in volume if key != "name"])

    return _cached(compute)


@_register(
    "ka.req.volume.hostpath",
    False,
    Arg.KEY,
    "requestObject.spec.volumes[*].hostPath.path",
    "Deprecated: `true` when a hostPath volume uses the path given (a trailing `*` matches a prefix), else `false`.",
)
def _volume_hostpath(arg: str | None) -> Accessor:
    wanted = arg or ""
    prefix = wanted[:-1] if wanted.endswith("*") else None

    def compute(ctx: EventContext) -> Value:
        found = values_recursive(ctx.request, None, ("spec", "volumes", "hostPath", "path"))
        if found is MISSING:
            return None
        for path in texts_skip_missing(found):
            if path == wanted or (prefix is not None and path.startswith(prefix)):
                return "true"
        return "false"

    return _cached(compute)


_simple(
    "ka.req.binding.subjects",
    "requestObject.subjects",
    "The subjects of a (cluster) role binding, each as JSON.",
    _request_array("subjects"),
    is_list=True,
)


def _subjects_of(kind: str, render: Callable[[dict[str, Any]], str]) -> Accessor:
    def compute(ctx: EventContext) -> Value:
        subjects = walk(ctx.request, ("subjects",))
        if not isinstance(subjects, list):
            return None
        return _nonempty(
            [render(subject) for subject in subjects if isinstance(subject, dict) and subject.get("kind") == kind]
        )

    return _cached(compute)


def _subject_name(subject: dict[str, Any]) -> str:
    return as_text(subject.get("name", ""))


for _suffix, _kind, _render in (
    ("user_names", "User", _subject_name),
    ("serviceaccount_names", "ServiceAccount", _subject_name),
    (
        "serviceaccount_ns_names",
        "ServiceAccount",
        lambda subject: f"{as_text(subject.get('namespace', ''))}:{as_text(subject.get('name', ''))}",
    ),
    ("group_names", "Group", _subject_name),
):
    _simple(
        f"ka.req.binding.subjects.{_suffix}",
        f'requestObject.subjects[kind="{_kind}"]' + (".namespace:name" if "ns_" in _suffix else ".name"),
        f"The {_kind} subjects of a binding" + (" as namespace:name." if "ns_" in _suffix else " (names)."),
        _subjects_of(_kind, _render),
        is_list=True,
    )
_simple(
    "ka.req.binding.role",
    "requestObject.roleRef.name",
    "The role a binding refers to.",
    _request_scalar("roleRef", "name"),
)


@_register(
    "ka.req.binding.subject.has_name",
    False,
    Arg.KEY,
    "(constant)",
    "Deprecated: always `true`, as in the plugin (kept for old rules).",
)
def _has_name(arg: str | None) -> Accessor:
    return lambda ctx: "true"


_simple("ka.req.configmap.name", "objectRef.name", "The name of the configmap.", _target("name"))
_simple(
    "ka.req.configmap.obj",
    "requestObject.data",
    "The configmap's data, as JSON.",
    _request_scalar("data"),
)
_simple(
    "ka.req.role.rules",
    "requestObject.rules",
    "The rules of a (cluster) role, each as JSON.",
    _request_array("rules"),
    is_list=True,
)
for _suffix in ("apiGroups", "nonResourceURLs", "verbs", "resources"):

    def _rules_maker(arg: str | None, key: str = _suffix) -> Accessor:
        return _request_flattened(("rules", key), _index(arg))

    FIELDS[f"ka.req.role.rules.{_suffix}"] = FieldSpec(
        f"ka.req.role.rules.{_suffix}",
        True,
        Arg.INDEX,
        f"requestObject.rules[*].{_suffix}[*]",
        f"The {_suffix} of all rules of a (cluster) role.",
        _rules_maker,
    )
_simple("ka.req.service.type", "requestObject.spec.type", "The type of a service.", _request_scalar("spec", "type"))


@_register(
    "ka.req.service.ports",
    True,
    Arg.INDEX,
    "requestObject.spec.ports",
    "The ports of a service: one value, the JSON of the ports array (as the plugin reports it).",
)
def _service_ports(arg: str | None) -> Accessor:
    return _request_recursive(("spec", "ports"), _index(arg))


# --- kubetrail's own fields (what a request did, read one way for every rule) ---------------------


def _exec_argv(ctx: EventContext) -> list[str] | None:
    event = ctx.event
    reference = event.objectRef
    if reference is None or reference.subresource != facts.EXEC_SUBRESOURCE:
        return None
    return facts.exec_argv(event, ctx.request if event.requestObject else None)


def _exec_command(ctx: EventContext) -> Value:
    argv = _exec_argv(ctx)
    return " ".join(argv) if argv else None


def _exec_program(ctx: EventContext) -> Value:
    argv = _exec_argv(ctx)
    return argv[0] if argv else None


def _source_scope(ctx: EventContext) -> Value:
    ips = ctx.event.sourceIPs
    return facts.source_scope(ips[0]) if ips else None


_simple(
    "ka.outcome",
    "responseStatus.code, stage",
    "How the request ended: succeeded (< 400), denied (401, 403) or failed (other 4xx, 5xx, Panic).",
    lambda ctx: facts.outcome_label(ctx.event),
)
_simple(
    "ka.action",
    "verb, responseStatus.code",
    "What the request did: created (create, or update/patch answered 201), changed, deleted, read.",
    lambda ctx: facts.action(ctx.event),
)
_simple(
    "ka.exec.command",
    "requestURI command=..., else requestObject.command",
    "An exec request's command line, its arguments joined by spaces, from the URI or the request body.",
    _cached(_exec_command),
)
_simple(
    "ka.exec.program",
    "requestURI command=..., else requestObject.command[0]",
    "The program an exec request runs (the first argument of its command).",
    _cached(_exec_program),
)
_simple(
    "ka.source.scope",
    "sourceIPs[0]",
    "Where the first client address lives: public, private, loopback, link-local, or invalid (not an address).",
    _source_scope,
)
_simple(
    "ka.useragent.product",
    "userAgent",
    "The product token of the user agent (`kubectl` of `kubectl/v1.30.1 (linux/amd64) ...`).",
    lambda ctx: facts.agent_product(ctx.event.userAgent),
)


# --- json plugin (jevt.* and json.*) ----------------------------------------------------------------


def _rawtime(ctx: EventContext) -> Value:
    event = ctx.event
    stamp = event.stageTimestamp or event.requestReceivedTimestamp
    if not stamp:
        return "0"
    try:
        return str(rfc3339_to_ns(stamp))
    except ValueError:
        return "0"


def rawtime_equals(text: str) -> Callable[[EventContext], bool]:
    """`jevt.rawtime = text` without formatting every event's time (Falco's rules use `= 0` as "never").

    A MicroTime stamp (`...T14:09:12.581541Z`) names one instant, so it is compared as text with
    the wanted instant written the same way; other forms are parsed.
    """
    if not text.isdigit():
        return lambda ctx: _rawtime(ctx) == text
    wanted = int(text)
    canonical = iso_time(wanted)[:26] + "Z" if wanted % 1000 == 0 else None

    def equals(ctx: EventContext) -> bool:
        event = ctx.event
        stamp = event.stageTimestamp or event.requestReceivedTimestamp
        if not stamp:
            return wanted == 0
        if canonical is not None and len(stamp) == 27 and stamp[19] == "." and stamp[26] == "Z":
            return stamp == canonical
        return _rawtime(ctx) == str(wanted)

    return equals


def _document_text(ctx: EventContext) -> Value:
    return json.dumps(ctx.document, indent=2, ensure_ascii=False)


def _pointer_maker(arg: str | None) -> Accessor:
    keys = pointer_keys(arg or "")
    if keys == ("stage",):
        return lambda ctx: ctx.event.stage
    if len(keys) == 2 and keys[0] == "sourceIPs":
        index = keys[1]  # the decoded list is the JSON array: no need to parse the whole event

        def compute_address(ctx: EventContext) -> Value:
            value = child(ctx.event.sourceIPs, index)
            return None if value is MISSING else as_text(value)

        return compute_address
    if keys[0] in ("requestObject", "responseObject"):
        rest = keys[1:]
        side = keys[0]

        def compute_body(ctx: EventContext) -> Value:
            body = ctx.request if side == "requestObject" else ctx.response
            value = walk(body, rest) if body is not MISSING else MISSING
            return None if value is MISSING else as_text(value)

        return _cached(compute_body)

    def compute(ctx: EventContext) -> Value:
        value = walk(ctx.document, keys)
        return None if value is MISSING else as_text(value)

    if len(keys) >= 2 and keys[0] in ("user", "impersonatedUser") and keys[1] in ("username", "uid", "groups"):
        return _cached(_user_pointer(keys, compute))
    return _cached(compute)


def _user_pointer(keys: tuple[str, ...], from_document: Accessor) -> Accessor:
    """`/user/groups/0` and the like from the typed event, without parsing the whole event (whose bodies can
    be large); an empty value, which the typed event cannot tell from an absent one, is read from the document."""
    side, name, rest = keys[0], keys[1], keys[2:]

    def compute_user(ctx: EventContext) -> Value:
        info = getattr(ctx.event, side)
        if info is None:
            return None
        value = getattr(info, name)
        if not value:
            return from_document(ctx)
        found = walk(value, rest)
        return None if found is MISSING else as_text(found)

    return compute_user


for _prefix in ("json", "jevt"):
    FIELDS[f"{_prefix}.value"] = FieldSpec(
        f"{_prefix}.value",
        False,
        Arg.POINTER,
        "any, by JSON pointer (RFC 6901)",
        "A value of the event by JSON pointer: `jevt.value[/objectRef/resource]`.",
        _pointer_maker,
    )
    _simple(f"{_prefix}.obj", "(the whole event)", "The whole event as indented JSON.", _document_text, always=True)
    _simple(
        f"{_prefix}.rawtime",
        "stageTimestamp (nanoseconds since the epoch)",
        "The event time in nanoseconds, as text.",
        _rawtime,
        always=True,
    )


def field_spec(name: str) -> FieldSpec | None:
    """The field of that exact name, if it exists."""
    return FIELDS.get(name)


def accessor_for(name: str, arg: str | None) -> Accessor:
    """The accessor of a field with its argument; raises ValueError when the field or argument is invalid."""
    spec = FIELDS.get(name)
    if spec is None:
        raise ValueError(f"nonexistent field {name}")
    if arg is None and spec.arg in (Arg.KEY, Arg.POINTER):
        raise ValueError(f"field {name} requires an argument: {name}[...]")
    if arg is not None and spec.arg is Arg.NONE:
        raise ValueError(f"field {name} does not accept an argument")
    return spec.make(arg)
