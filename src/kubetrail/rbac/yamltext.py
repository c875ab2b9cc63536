"""Minimal, deterministic YAML text for RBAC objects, with comments where a reader needs them.

Written by hand rather than dumped so that comments can sit beside the rules they explain; every scalar
that YAML could read as something other than a plain string is double-quoted (JSON quoting is valid YAML).
"""

from __future__ import annotations

import json
import re

_PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
_RESERVED = frozenset({"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"})


def scalar(text: str) -> str:
    """`text` as a YAML scalar that always reads back as the same string."""
    if _PLAIN.match(text) and text.lower() not in _RESERVED and not _looks_numeric(text):
        return text
    return json.dumps(text, ensure_ascii=False)


def _looks_numeric(text: str) -> bool:
    try:
        float(text.replace("_", ""))
    except ValueError:
        return text.startswith(("0x", "0o", "0b")) or bool(re.match(r"^\d+(:\d+)+$", text))
    return True


def string_list(key: str, values: list[str] | tuple[str, ...], indent: str) -> list[str]:
    """`key:` followed by one `- item` line per value."""
    return [f"{indent}{key}:", *(f"{indent}- {scalar(value)}" for value in values)]
