"""Rule outputs: `%field` templates rendered per alert, Falco's text line and Falco's JSON alert.

A missing value prints as `<NA>`; a list prints as `(a,b)`. The JSON alert has Falco's keys
(`hostname output output_fields priority rule source tags time`) plus `auditID` and `cluster`, `outcome`
once the event has a response code, and `mitre` / `threat_matrix` when the rule names any, all sorted as
Falco's JSON library writes them.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from kubetrail.detect.context import EventContext
from kubetrail.detect.fields import FIELDS, Accessor, Arg, Value
from kubetrail.detect.timestamps import clock_time, iso_offset_time

MISSING_TEXT = "<NA>"
_FIELD_NAMES = sorted(FIELDS, key=len, reverse=True)
_json_encoder = msgspec.json.Encoder(order="sorted")


class OutputFormatError(ValueError):
    """An output template that cannot be compiled; `offset` is where in the template."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


@dataclass(frozen=True, slots=True)
class _Field:
    key: str
    get: Accessor


def render_value(value: Value) -> str:
    """A field value as text: `<NA>` when missing, `(a,b)` for a list."""
    if value is None:
        return MISSING_TEXT
    if isinstance(value, list):
        return "(" + ",".join(value) + ")"
    return str(value)


Renderer = Callable[[EventContext], tuple[str, dict[str, Value]]]


@dataclass(frozen=True, slots=True)
class OutputFormat:
    """A compiled output template: literal text and fields, in order, and a generated renderer."""

    template: str
    parts: tuple[str | _Field, ...]
    renderer: Renderer | None = None

    @property
    def field_keys(self) -> tuple[str, ...]:
        """The fields the template prints, as written (`ka.uri.param[command]`)."""
        return tuple(dict.fromkeys(part.key for part in self.parts if isinstance(part, _Field)))

    def render(self, ctx: EventContext) -> tuple[str, dict[str, Value]]:
        """The message and the value of each field it prints."""
        if self.renderer is not None:
            return self.renderer(ctx)
        return self.render_slowly(ctx)

    def render_slowly(self, ctx: EventContext) -> tuple[str, dict[str, Value]]:
        """`render` without the generated function (the reference it is tested against)."""
        out: list[str] = []
        values: dict[str, Value] = {}
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = values[part.key] if part.key in values else part.get(ctx)
            values[part.key] = value
            out.append(render_value(value))
        return "".join(out), values


def compile_output(template: str, accessor: Callable[[str, str | None], Accessor]) -> OutputFormat:
    """Compile `template`; each `%field` must name a known field (the longest one that matches)."""
    parts: list[str | _Field] = []
    literal: list[str] = []
    index = 0
    length = len(template)
    while index < length:
        char = template[index]
        if char != "%":
            literal.append(char)
            index += 1
            continue
        start = index
        index += 1
        name = next((candidate for candidate in _FIELD_NAMES if template.startswith(candidate, index)), None)
        if name is None:
            token = template[index : index + 30].split(" ", 1)[0]
            raise OutputFormatError(f"invalid formatting token %{token}: no such field", start)
        index += len(name)
        arg: str | None = None
        if index < length and template[index] == "[" and FIELDS[name].arg is not Arg.NONE:
            close = template.find("]", index)
            if close < 0:
                raise OutputFormatError(f"missing ']' after %{name}[", index)
            arg = template[index + 1 : close]
            index = close + 1
        try:
            get = accessor(name, arg)
        except ValueError as error:
            raise OutputFormatError(str(error), start) from None
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(_Field(name if arg is None else f"{name}[{arg}]", get))
    if literal:
        parts.append("".join(literal))
    return OutputFormat(template, tuple(parts), _generate_renderer(tuple(parts)))


def _generate_renderer(parts: tuple[str | _Field, ...]) -> Renderer | None:
    """One function that reads each field once and joins the message (names only in its source)."""
    scope: dict[str, Any] = {"_text": render_value}
    lines = ["def _render(ctx):"]
    variables: dict[str, str] = {}
    pieces: list[str] = []
    for part in parts:
        if isinstance(part, str):
            name = f"_l{len(scope)}"
            scope[name] = part
            pieces.append(name)
            continue
        variable = variables.get(part.key)
        if variable is None:
            variable = variables[part.key] = f"v{len(variables)}"
            getter = f"_g{len(scope)}"
            scope[getter] = part.get
            lines.append(f"    {variable} = {getter}(ctx)")
        pieces.append(f"_text({variable})")
    keys: list[str] = []
    for key, variable in variables.items():
        name = f"_k{len(scope)}"
        scope[name] = key
        keys.append(f"{name}: {variable}")
    message = " + ".join(pieces) if pieces else "''"
    lines.append(f"    return {message}, {{{', '.join(keys)}}}")
    try:
        exec(compile("\n".join(lines) + "\n", "<kubetrail output>", "exec"), scope)
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        return None
    renderer: Renderer = scope["_render"]
    return renderer


class TimeFormat(enum.StrEnum):
    """How the alert line starts: Falco's `time_format_iso_8601: true` (its container image) or false."""

    ISO8601 = "iso8601"
    TIME = "time"

    @property
    def field(self) -> str:
        """The output field the prefix prints (reported in `output_fields`)."""
        return "evt.time.iso8601" if self is TimeFormat.ISO8601 else "evt.time"


def text_line(time_ns: int, priority_label: str, message: str, time_format: TimeFormat = TimeFormat.ISO8601) -> str:
    """Falco's text alert: `2018-10-25T14:09:12.581541000+0000: Warning Pod started ...` (UTC)."""
    stamp = iso_offset_time(time_ns) if time_format is TimeFormat.ISO8601 else clock_time(time_ns)
    return f"{stamp}: {priority_label} {message}"


def falco_json(
    *,
    output: str,
    output_fields: dict[str, Value],
    time_ns: int,
    time_iso: str,
    priority_label: str,
    rule: str,
    source: str,
    tags: tuple[str, ...],
    hostname: str,
    audit_id: str,
    cluster: str | None,
    time_format: TimeFormat = TimeFormat.ISO8601,
    mitre: tuple[str, ...] = (),
    threat_matrix: tuple[str, ...] = (),
    outcome: str | None = None,
) -> bytes:
    """One alert in Falco's JSON format, with kubetrail's `auditID` and `cluster` keys (and ATT&CK ids if any)."""
    fields: dict[str, Any] = dict(output_fields)
    fields[time_format.field] = time_ns
    document = {
        "auditID": audit_id,
        "cluster": cluster,
        "hostname": hostname,
        "output": output,
        "output_fields": fields,
        "priority": priority_label,
        "rule": rule,
        "source": source,
        "tags": list(tags),
        "time": time_iso,
    }
    if outcome:
        document["outcome"] = outcome
    if mitre:
        document["mitre"] = list(mitre)
    if threat_matrix:
        document["threat_matrix"] = list(threat_matrix)
    return _json_encoder.encode(document)
