"""Walking parsed JSON the way Falco's extractors do (fastjson `Get`, JSON pointers, value text)."""

from __future__ import annotations

from typing import Any

import msgspec

from kubetrail.detect.context import MISSING

_encode = msgspec.json.encode


def child(value: Any, key: str) -> Any:
    """One step: an object member, or an array element when the key is a decimal index; else MISSING."""
    if isinstance(value, dict):
        return value.get(key, MISSING)
    if isinstance(value, list) and key.isdigit():
        index = int(key)
        return value[index] if index < len(value) else MISSING
    return MISSING


def walk(value: Any, keys: tuple[str, ...]) -> Any:
    """Follow `keys` from `value`; MISSING as soon as a step is absent."""
    for key in keys:
        value = child(value, key)
        if value is MISSING:
            return MISSING
    return value


def pointer_keys(pointer: str) -> tuple[str, ...]:
    """The keys of a JSON pointer (RFC 6901): `/a~1b/0` is (`a/b`, `0`)."""
    if pointer.startswith("/"):
        pointer = pointer[1:]
    return tuple(part.replace("~1", "/").replace("~0", "~") for part in pointer.split("/"))


def as_text(value: Any) -> str:
    """A JSON value as Falco prints it: strings as they are, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return _encode(value).decode()


def values_recursive(value: Any, index: int | None, keys: tuple[str, ...]) -> list[Any] | Any:
    """Follow `keys`, fanning out over every array met on the way (or only its `index`-th element).

    Returns the values found (MISSING for an array element lacking the path), or MISSING when the
    path is absent before any array is reached. This is the k8saudit plugin's recursive lookup.
    """
    for position, key in enumerate(keys):
        if isinstance(value, list):
            if index is None:
                found: list[Any] = []
                rest = keys[position:]
                for element in value:
                    sub = values_recursive(element, None, rest)
                    if sub is MISSING:
                        found.append(MISSING)
                    else:
                        found.extend(sub)
                return found
            if index >= len(value):
                return MISSING
            value = value[index]
        value = child(value, key) if key else value
        if value is MISSING:
            return MISSING
    return [value]


def texts_skip_missing(values: list[Any]) -> list[str]:
    """The text of each value found, skipping elements that lacked the path."""
    return [as_text(value) for value in values if value is not MISSING]


def texts_strict(values: list[Any]) -> list[str] | None:
    """The text of each value, or None when any element lacked the path (the plugin then fails)."""
    out: list[str] = []
    for value in values:
        if value is MISSING:
            return None
        out.append(as_text(value))
    return out
