"""Secret material in one decoded audit event: where it is (a path and a span) and what kind it is.

Structural findings come first: Secret `data`/`stringData` (objects of kind Secret, bodies of requests to
`secrets` and Secret lists), a Secret inside `kubectl.kubernetes.io/last-applied-configuration`, the
bearer tokens of TokenReviews and TokenRequests, credential-named ConfigMap keys and container env values.
Query parameters named like credentials are findings too; credential patterns in every other string are
looked for in the raw text by `kubetrail.secrets.scan`.
`managedFields` only names fields, never values, and is skipped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from kubetrail.secrets.jsontext import Path, string_spans
from kubetrail.secrets.patterns import is_placeholder

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_SENSITIVE_NAME = re.compile(r"(?i)passw|pwd|secret|token|api[_-]?key|private[_-]?key|credential|access[_-]?key")
_SENSITIVE_PARAM = re.compile(
    r"(?i)^(?:access_?token|token|id_token|password|passwd|pwd|secret|client_secret|api_?key)$"
)
_BODIES = ("requestObject", "responseObject")


@dataclass(frozen=True, slots=True)
class Hit:
    """A secret inside the string at `path` (relative to the event), at [start, end) of its decoded value."""

    path: Path
    start: int
    end: int
    kind: str
    value: str


def _whole(path: Path, value: object, kind: str) -> Iterator[Hit]:
    if isinstance(value, str) and not is_placeholder(value):
        yield Hit(path, 0, len(value), kind, value)


def _secret_values(obj: dict[str, Any], path: Path) -> Iterator[Hit]:
    for field, kind in (("data", "secret-data"), ("stringData", "secret-string-data")):
        values = obj.get(field)
        if isinstance(values, dict):
            for key, value in values.items():
                yield from _whole((*path, field, key), value, kind)


def _is_secret(obj: dict[str, Any], resource: str, top: bool) -> bool:
    kind = obj.get("kind")
    if kind == "Secret":
        return True
    return top and resource == "secrets" and kind in (None, "") and ("data" in obj or "stringData" in obj)


def _last_applied(obj: dict[str, Any], path: Path) -> Iterator[Hit]:
    metadata = obj.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    text = annotations.get(LAST_APPLIED) if isinstance(annotations, dict) else None
    if not isinstance(text, str) or '"Secret"' not in text:
        return
    try:
        inner = json.loads(text)
    except ValueError:
        return
    if not isinstance(inner, dict) or inner.get("kind") != "Secret":
        return
    where = (*path, "metadata", "annotations", LAST_APPLIED)
    wanted = {hit.path: hit for hit in _secret_values(inner, ())}
    for inner_path, start, end in string_spans(text):
        hit = wanted.get(inner_path)
        if hit is not None:
            yield Hit(where, start, end, "secret-in-last-applied", hit.value)


def _structured(obj: dict[str, Any], path: Path, resource: str, top: bool) -> Iterator[Hit]:
    """Findings that depend on what the object is, in this object and the objects of its lists."""
    if _is_secret(obj, resource, top):
        yield from _secret_values(obj, path)
    yield from _last_applied(obj, path)
    if obj.get("kind") == "ConfigMap" or (top and resource == "configmaps" and "data" in obj):
        data = obj.get("data")
        if isinstance(data, dict):
            for key, value in data.items():
                if _SENSITIVE_NAME.search(key):
                    yield from _whole((*path, "data", key), value, "credential-in-configmap")
    items = obj.get("items")
    if isinstance(items, list):
        list_of_secrets = resource == "secrets" or obj.get("kind") == "SecretList"
        for index, item in enumerate(items):
            if isinstance(item, dict):
                if list_of_secrets and "kind" not in item:
                    yield from _secret_values(item, (*path, "items", index))
                yield from _structured(item, (*path, "items", index), resource, False)


def _env_values(value: object, path: Path) -> Iterator[Hit]:
    """`{"name": "DB_PASSWORD", "value": "…"}` anywhere in a body (container env)."""
    if isinstance(value, dict):
        name = value.get("name")
        if isinstance(name, str) and "value" in value and _SENSITIVE_NAME.search(name) and len(value) <= 3:
            yield from _whole((*path, "value"), value.get("value"), "credential-in-env")
        for key, item in value.items():
            if key != "managedFields":
                yield from _env_values(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _env_values(item, (*path, index))


def _token_fields(event: dict[str, Any]) -> Iterator[Hit]:
    ref = event.get("objectRef") or {}
    resource, subresource = ref.get("resource"), ref.get("subresource")
    request, response = event.get("requestObject"), event.get("responseObject")
    if resource == "tokenreviews":
        for name, body in (("requestObject", request), ("responseObject", response)):
            spec = body.get("spec") if isinstance(body, dict) else None
            if isinstance(spec, dict):
                yield from _whole((name, "spec", "token"), spec.get("token"), "bearer-token")
    if resource == "serviceaccounts" and subresource == "token" and isinstance(response, dict):
        status = response.get("status")
        if isinstance(status, dict):
            yield from _whole(("responseObject", "status", "token"), status.get("token"), "service-account-token")


def _uri_hits(uri: str) -> Iterator[Hit]:
    """Query parameters named like credentials (`?access_token=…`); other patterns are found in the raw text."""
    cut = uri.find("?")
    if cut < 0:
        return
    position = cut + 1
    for part in uri[cut + 1 :].split("&"):
        name, equals, value = part.partition("=")
        start = position + len(name) + len(equals)
        if equals and _SENSITIVE_PARAM.match(unquote_plus(name)) and not is_placeholder(unquote_plus(value)):
            yield Hit(("requestURI",), start, start + len(value), "credential-in-uri", value)
        position += len(part) + 1


def event_hits(event: dict[str, Any], *, with_env: bool = True) -> list[Hit]:
    """The secrets found by structure in one event (credential patterns in other strings are the caller's)."""
    ref = event.get("objectRef")
    resource = ref.get("resource", "") if isinstance(ref, dict) else ""
    hits: list[Hit] = []
    for name in _BODIES:
        body = event.get(name)
        if isinstance(body, dict):
            hits.extend(_structured(body, (name,), resource, True))
            if with_env:
                hits.extend(_env_values(body, (name,)))
    hits.extend(_token_fields(event))
    uri = event.get("requestURI")
    if isinstance(uri, str):
        hits.extend(_uri_hits(uri))
    unique: dict[tuple[Path, int, int], Hit] = {}
    for hit in hits:
        unique.setdefault((hit.path, hit.start, hit.end), hit)
    return list(unique.values())
