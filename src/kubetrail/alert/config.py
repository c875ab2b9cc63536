"""The outputs file: which outputs get alerts, filtered how, limited how. Errors name the file and line.

outputs:
  - type: file                      # stdout | file | webhook | slack | syslog | nats
    path: /var/log/kubetrail/alerts.jsonl
  - type: webhook
    url: https://hooks.example.com/kubetrail
    headers: {Authorization: "Bearer ${HOOK_TOKEN}"}    # ${VAR} reads the environment
    min_priority: warning           # skip less severe alerts
    rate: 10/s                      # token bucket; `burst:` sets its size (default: the count)

See docs/outputs.md for every key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubetrail.alert.outputs import (
    JsonlFileOutput,
    Output,
    OutputError,
    Outputs,
    Route,
    SlackOutput,
    StdoutOutput,
    SyslogOutput,
    TokenBucket,
    WebhookOutput,
    parse_rate,
)
from kubetrail.alert.outputs.fanout import DEFAULT_QUEUE_BATCHES
from kubetrail.alert.outputs.syslog import FACILITIES
from kubetrail.detect.priority import PRIORITY_NAMES, Priority
from kubetrail.extras import require

_Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$")
COMMON_KEYS = ("type", "name", "min_priority", "rate", "burst", "queue")
TYPE_KEYS: dict[str, tuple[str, ...]] = {
    "stdout": ("format",),
    "file": ("path", "fsync", "format"),
    "webhook": ("url", "headers", "timeout", "retries", "backoff", "verify"),
    "slack": ("url", "timeout", "retries", "backoff"),
    "syslog": ("address", "protocol", "facility", "format", "hostname", "timeout"),
    "nats": ("servers", "subject", "timeout"),
}


class OutputConfigError(OutputError):
    """An outputs file that cannot be used: file, line, key, and what would be valid."""


@dataclass(frozen=True)
class _Item:
    """One output entry: its values, the line of each key, and where it is."""

    values: dict[str, Any]
    lines: dict[str, int]
    line: int
    file: str

    def fail(self, message: str, key: str = "", hint: str = "") -> OutputConfigError:
        line = self.lines.get(key, self.line)
        label = f"{self.values.get('type', 'output')}.{key}" if key else str(self.values.get("type", "output"))
        return OutputConfigError(message, output=label, file=self.file, line=line, hint=hint)

    def text(self, key: str, default: str | None = None) -> str:
        value = self.values.get(key, default)
        if value is None:
            raise self.fail(f"`{key}` is required", key)
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise self.fail(f"`{key}` must be a string", key)
        return self.expand(str(value), key)

    def expand(self, text: str, key: str) -> str:
        def lookup(match: re.Match[str]) -> str:
            value = os.environ.get(match[1])
            if value is None:
                raise self.fail(f"environment variable {match[1]} is not set", key, hint=f"export {match[1]}=…")
            return value

        return _ENV.sub(lookup, text)

    def seconds(self, key: str, default: float) -> float:
        value = self.values.get(key, default)
        match = _DURATION.match(str(value)) if not isinstance(value, bool) else None
        if match is None:
            raise self.fail(f"{value!r} is not a duration", key, hint="e.g. 5s, 500ms, 2m or a number of seconds")
        number = float(match[1]) * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[match[2]]
        if number <= 0:
            raise self.fail("must be more than zero", key)
        return number

    def count(self, key: str, default: int) -> int:
        value = self.values.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(f"{value!r} is not a whole number ≥ 0", key)
        return value

    def choice(self, key: str, default: str, allowed: tuple[str, ...]) -> str:
        value = str(self.values.get(key, default)).lower()
        if value not in allowed:
            raise self.fail(f"{value!r} is not one of {', '.join(allowed)}", key)
        return value


def _plain(node: yaml.Node) -> Any:
    return yaml.load(yaml.serialize(node), Loader=_Loader)


def _items(root: yaml.Node | None, file: str) -> list[_Item]:
    where = {"file": file}
    if root is None:
        return []
    if not isinstance(root, yaml.MappingNode):
        raise OutputConfigError(
            "the file must be a mapping with an `outputs:` list", line=root.start_mark.line + 1, **where
        )
    entries: yaml.Node | None = None
    for key, value in root.value:
        if key.value != "outputs":
            raise OutputConfigError(
                f"unknown key {key.value!r}", line=key.start_mark.line + 1, hint="the only key is `outputs:`", **where
            )
        entries = value
    if entries is None or (isinstance(entries, yaml.ScalarNode) and entries.tag.endswith(":null")):
        return []
    if not isinstance(entries, yaml.SequenceNode):
        raise OutputConfigError("`outputs` must be a list", line=entries.start_mark.line + 1, **where)
    items: list[_Item] = []
    for entry in entries.value:
        line = entry.start_mark.line + 1
        if not isinstance(entry, yaml.MappingNode):
            raise OutputConfigError("each output is a mapping with a `type:`", line=line, **where)
        values: dict[str, Any] = {}
        lines: dict[str, int] = {}
        for key, value in entry.value:
            name = str(key.value)
            values[name] = _plain(value)
            lines[name] = key.start_mark.line + 1
        items.append(_Item(values, lines, line, file))
    return items


def _output(item: _Item, name: str) -> Output:
    kind = item.values["type"]
    if kind == "stdout":
        return StdoutOutput(fmt=item.choice("format", "json", ("json", "text")), name=name)
    if kind == "file":
        fsync: str | float = str(item.values.get("fsync", "always"))
        if fsync not in ("always", "never"):
            fsync = item.seconds("fsync", 1.0)
        return JsonlFileOutput(
            Path(item.text("path")), fsync=fsync, fmt=item.choice("format", "json", ("json", "text")), name=name
        )
    if kind in ("webhook", "slack"):
        options: dict[str, Any] = {
            "timeout": item.seconds("timeout", 5.0),
            "retries": item.count("retries", 3),
            "backoff": item.seconds("backoff", 0.5),
        }
        if kind == "slack":
            return SlackOutput(item.text("url"), name=name, **options)
        headers = item.values.get("headers") or {}
        if not isinstance(headers, dict):
            raise item.fail("`headers` must be a mapping of name: value", "headers")
        verify = item.values.get("verify", True)
        if not isinstance(verify, bool | str):
            raise item.fail("`verify` is true, false or a CA bundle path", "verify")
        return WebhookOutput(
            item.text("url"),
            headers={str(k): item.expand(str(v), "headers") for k, v in headers.items()},
            verify=verify,
            name=name,
            **options,
        )
    if kind == "syslog":
        host, _, port = item.text("address").rpartition(":")
        if not host or not port.isdigit():
            raise item.fail("`address` must be HOST:PORT", "address", hint="e.g. 127.0.0.1:514")
        return SyslogOutput(
            host.strip("[]"),
            int(port),
            protocol=item.choice("protocol", "udp", ("udp", "tcp")),
            facility=item.choice("facility", "user", tuple(FACILITIES)),
            fmt=item.choice("format", "text", ("text", "json")),
            hostname=item.text("hostname", ""),
            timeout=item.seconds("timeout", 5.0),
            name=name,
        )
    servers = item.values.get("servers", "nats://127.0.0.1:4222")
    if isinstance(servers, str):
        servers = [servers]
    if not isinstance(servers, list) or not all(isinstance(s, str) for s in servers):
        raise item.fail("`servers` is a URL or a list of URLs", "servers")
    require("nats", f"the NATS output {name!r}")
    from kubetrail.alert.outputs.nats import NatsOutput

    return NatsOutput(
        [item.expand(s, "servers") for s in servers],
        item.text("subject", "kubetrail.alerts"),
        timeout=item.seconds("timeout", 5.0),
        name=name,
    )


def _route(item: _Item, names: set[str]) -> Callable[[], Route]:
    """Check one entry fully, then return what builds it (so no output opens before the whole file is valid)."""
    kind = item.values.get("type")
    if kind is None:
        raise item.fail("`type` is required", hint=f"one of {', '.join(TYPE_KEYS)}")
    if kind not in TYPE_KEYS:
        raise item.fail(f"unknown output type {kind!r}", "type", hint=f"one of {', '.join(TYPE_KEYS)}")
    allowed = COMMON_KEYS + TYPE_KEYS[kind]
    for key in item.values:
        if key not in allowed:
            raise item.fail(f"unknown key {key!r}", key, hint=f"{kind} takes {', '.join(allowed)}")
    name = item.text("name", str(kind))
    if name in names:
        name = f"{name}#{sum(1 for other in names if other.split('#')[0] == name) + 1}"
    names.add(name)
    try:
        min_priority = Priority.parse(item.text("min_priority", "debug"))
    except ValueError:
        raise item.fail("unknown priority", "min_priority", hint=", ".join(PRIORITY_NAMES)) from None
    bucket: Callable[[], TokenBucket | None] = lambda: None  # noqa: E731
    if "rate" in item.values:
        try:
            rate = parse_rate(item.text("rate"))
        except ValueError as error:
            raise item.fail(str(error), "rate", hint="e.g. 10/s, 100/m, 1000/h") from None
        burst = item.count("burst", 0) or None
        bucket = lambda: TokenBucket(rate, burst)  # noqa: E731
    elif "burst" in item.values:
        raise item.fail("`burst` needs a `rate`", "burst")
    queue = item.count("queue", DEFAULT_QUEUE_BATCHES) or DEFAULT_QUEUE_BATCHES

    def build() -> Route:
        try:
            output = _output(item, name)
        except OutputConfigError:
            raise
        except OutputError as error:
            raise item.fail(error.message, hint=error.hint) from None
        return Route(output, min_priority, bucket(), queue)

    return build


def parse_outputs(text: str, file: str = "<outputs>") -> list[Callable[[], Route]]:
    """Validate an outputs document; returns one builder per output, in file order."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise OutputConfigError(
            f"not valid YAML: {getattr(error, 'problem', error)}",
            file=file,
            line=mark.line + 1 if mark is not None else None,
        ) from None
    names: set[str] = set()
    return [_route(item, names) for item in _items(root, file)]


def load_outputs(path: str | Path, *, block: bool = False) -> Outputs:
    """Read an outputs file and open every output in it (closing those opened if a later one fails).

    `block`: wait when an output's queue is full instead of dropping (for batch runs).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise OutputConfigError(f"cannot read the outputs file: {error}", file=str(path)) from None
    routes: list[Route] = []
    try:
        for build in parse_outputs(text, str(path)):
            routes.append(build())
    except BaseException:
        for route in routes:
            route.output.close()
        raise
    return Outputs(routes, block=block)
