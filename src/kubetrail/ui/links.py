"""Turn the entities named inside free text (an alert's message) into links, escaping everything else.

The message is attacker-influenced (it quotes user names and object names), so it is split around the known
entity strings and every piece, link text included, is escaped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from markupsafe import Markup, escape

MIN_LENGTH = 3
"""Shorter strings (`v1`, `ns`) would link inside unrelated words."""


def linkify(text: str, entities: Sequence[tuple[str, str, str]]) -> Markup:
    """`text` with each occurrence of an entity's string made a link: entities are (string, url, css class),
    longest first wins where two overlap."""
    usable = {value: (url, kind) for value, url, kind in sorted(entities, key=lambda item: -len(item[0]))}
    usable = {value: target for value, target in usable.items() if len(value) >= MIN_LENGTH}
    if not text or not usable:
        return Markup(escape(text))
    pattern = re.compile("|".join(re.escape(value) for value in sorted(usable, key=len, reverse=True)))
    parts: list[str] = []
    position = 0
    for match in pattern.finditer(text):
        url, kind = usable[match.group(0)]
        parts.append(str(escape(text[position : match.start()])))
        parts.append(f'<a class="{escape(kind)}" href="{escape(url)}">{escape(match.group(0))}</a>')
        position = match.end()
    parts.append(str(escape(text[position:])))
    return Markup("".join(parts))


def alert_entities(
    fields: Mapping[str, object], *, identity: str, object_url: str, search: str
) -> list[tuple[str, str, str]]:
    """The linkable entities of an alert's output fields: its user, impersonated user, target object and
    namespace. The URLs are built from the given path prefixes (`identity` and `search` take a query value)."""
    from urllib.parse import urlencode

    found: list[tuple[str, str, str]] = []
    for key in ("ka.user.name", "ka.impuser.name"):
        value = fields.get(key)
        if isinstance(value, str) and value:
            found.append((value, f"{identity}?{urlencode({'user': value})}", "user-link"))
    resource, namespace, name = (fields.get(f"ka.target.{part}") for part in ("resource", "namespace", "name"))
    if isinstance(resource, str) and isinstance(name, str) and resource and name:
        query = urlencode({"resource": resource, "ns": namespace if isinstance(namespace, str) else "", "name": name})
        found.append((name, f"{object_url}?{query}", "object"))
    if isinstance(namespace, str) and namespace:
        found.append((namespace, f"{search}?{urlencode({'q': f'ns={namespace}'})}", "namespace-link"))
    return found


def quoted(value: str) -> str:
    """A filter value, quoted when it holds characters the filter language treats specially."""
    if re.fullmatch(r"[\w.:@/-]+", value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
