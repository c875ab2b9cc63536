"""What rule files define, collected in load order with Falco's define/append/replace semantics.

Each definition gets an index (its first position, kept when redefined: the rule keeps its place)
and a visibility (the position of its latest definition or change). A list or macro may only
refer to lists or macros whose index is below its own visibility: definition before use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kubetrail.detect.errors import RuleLoadError
from kubetrail.detect.nodes import ALL_OPERATORS
from kubetrail.detect.priority import Priority

if TYPE_CHECKING:
    from kubetrail.detect.stateful.ruletext import StatefulText

K8S_AUDIT_SOURCE = "k8s_audit"
SYSCALL_SOURCE = "syscall"
ENGINE_VERSION = (0, 45, 0)
# Plugins whose fields kubetrail provides, with the version whose fields it matches.
PROVIDED_PLUGINS = {"k8saudit": (0, 18, 0), "json": (0, 7, 3)}
K8SAUDIT_FAMILY = ("k8saudit", "k8saudit-aks", "k8saudit-eks", "k8saudit-gke", "k8saudit-ovh", "json")

LIST_NAME = re.compile(r"[^()\"'\s=,]+")
MACRO_NAME = re.compile(r"[a-zA-Z]+[a-zA-Z0-9_]*")


@dataclass(frozen=True, slots=True)
class Where:
    """A place in a rules file (1-based line and column)."""

    source: str
    line: int | None = None
    column: int | None = None

    def error(self, message: str, *, item: str = "", hint: str = "") -> RuleLoadError:
        return RuleLoadError(message, source=self.source, line=self.line, column=self.column, item=item, hint=hint)


@dataclass(frozen=True, slots=True)
class Snippet:
    """A condition or output as written, with what is needed to map an offset back to the file."""

    text: str
    where: Where
    file_text: str = ""
    start: int = 0
    end: int = 0
    style: str | None = None

    def locate(self, offset: int) -> Where:
        """The file position of character `offset` of `text` (matched by counting non-blank characters)."""
        if not self.file_text:
            return self.where
        raw = self.file_text[self.start : self.end]
        begin = raw.find("\n") + 1 if self.style in ("|", ">") else (1 if self.style in ("'", '"') else 0)
        wanted = sum(1 for char in self.text[:offset] if not char.isspace())
        seen = 0
        index = begin
        after_last = begin
        while index < len(raw):
            if not raw[index].isspace():
                if seen == wanted:
                    break
                seen += 1
                after_last = index + 1
            index += 1
        else:
            index = after_last
        absolute = self.start + index
        line = self.file_text.count("\n", 0, absolute) + 1
        column = absolute - (self.file_text.rfind("\n", 0, absolute) + 1) + 1
        return Where(self.where.source, line, column)


@dataclass
class ConditionText:
    """A condition, possibly grown by appends; remembers which snippet each part came from."""

    text: str
    parts: list[tuple[int, Snippet]] = field(default_factory=list)

    @classmethod
    def of(cls, snippet: Snippet) -> ConditionText:
        return cls(snippet.text, [(0, snippet)])

    def append(self, snippet: Snippet) -> None:
        self.parts.append((len(self.text) + 1, snippet))
        self.text = f"{self.text} {snippet.text}"

    def locate(self, offset: int, fallback: Where) -> Where:
        """The file position of a character of the (combined) condition."""
        for start, snippet in reversed(self.parts):
            if offset >= start:
                if offset - start <= len(snippet.text):
                    return snippet.locate(offset - start)
                break
        return fallback


@dataclass
class Entry:
    """An exception's `fields`, `comps` or value: a scalar or a (nested) list."""

    item: str = ""
    items: list[Entry] | None = None

    @property
    def is_list(self) -> bool:
        return self.items is not None


@dataclass
class ExceptionInfo:
    name: str
    where: Where
    fields: Entry | None = None
    comps: Entry | None = None
    values: list[Entry] = field(default_factory=list)


@dataclass
class ListInfo:
    name: str
    items: list[str]
    where: Where
    index: int = 0
    visibility: int = 0


@dataclass
class MacroInfo:
    name: str
    condition: ConditionText
    where: Where
    index: int = 0
    visibility: int = 0


@dataclass
class RuleInfo:
    name: str
    where: Where
    condition: ConditionText
    output: str
    output_snippet: Snippet | None
    desc: str
    priority: Priority
    source: str = SYSCALL_SOURCE
    enabled: bool = True
    tags: set[str] = field(default_factory=set)
    exceptions: list[ExceptionInfo] = field(default_factory=list)
    index: int = 0
    visibility: int = 0
    unknown_source: bool = False
    mitre: list[str] = field(default_factory=list)
    threat_matrix: list[str] = field(default_factory=list)
    stateful: StatefulText | None = None


@dataclass
class RuleUpdate:
    """The fields an `append: true` or an `override:` brings to an existing rule."""

    name: str
    where: Where
    condition: Snippet | None = None
    output: Snippet | None = None
    desc: str | None = None
    tags: set[str] | None = None
    exceptions: list[ExceptionInfo] | None = None
    priority: Priority | None = None
    enabled: bool | None = None
    stateful: tuple[str, dict[str, object]] | None = None  # (threshold|sequence|first_seen, parameters to change)

    def has_any_value(self) -> bool:
        return any(
            value is not None
            for value in (self.condition, self.output, self.desc, self.tags, self.exceptions, self.priority)
        ) or (self.enabled is not None or self.stateful is not None)


@dataclass(frozen=True, slots=True)
class Notice:
    """A warning about the rules: accepted, but worth knowing (skipped rules, deprecated syntax)."""

    message: str
    where: Where

    def __str__(self) -> str:
        location = self.where.source
        if self.where.line is not None:
            location += f":{self.where.line}"
        return f"{location}: {self.message}"


_SEMVER = re.compile(r"(\d+)\.(\d+)\.(\d+)(?:[-+][0-9A-Za-z.+-]*)?")


def parse_version(text: str, where: Where, what: str) -> tuple[int, int, int]:
    """A `major.minor.patch` version (a pre-release or build suffix is accepted and ignored)."""
    found = _SEMVER.fullmatch(text.strip())
    if found is None:
        raise where.error(f"Invalid {what} '{text}': expected \"x.y.z\" semver format")
    return int(found.group(1)), int(found.group(2)), int(found.group(3))


def compatible(provided: tuple[int, int, int], required: tuple[int, int, int]) -> bool:
    """Semver compatibility as Falco checks it: same major, provided not older than required."""
    return provided[0] == required[0] and provided[1:] >= required[1:]


def _version_text(version: tuple[int, int, int]) -> str:
    return ".".join(str(part) for part in version)


class Collector:
    """Accumulates the items of one or more rule files, in order."""

    def __init__(self) -> None:
        self.lists: dict[str, ListInfo] = {}
        self.macros: dict[str, MacroInfo] = {}
        self.rules: dict[str, RuleInfo] = {}
        self.notices: list[Notice] = []
        self.required_engine: tuple[int, int, int] = (0, 0, 0)
        self._next = 0

    def _tick(self) -> int:
        self._next += 1
        return self._next - 1

    def notice(self, message: str, where: Where) -> None:
        self.notices.append(Notice(message, where))

    def require_engine(self, version: tuple[int, int, int], where: Where) -> None:
        if not compatible(ENGINE_VERSION, version):
            raise where.error(
                f"Rules require engine version {_version_text(version)}, "
                f"but engine version is {_version_text(ENGINE_VERSION)}",
                hint="this rules file needs a newer Falco rule engine than kubetrail implements",
            )
        self.required_engine = max(self.required_engine, version)

    def require_plugins(self, alternatives: list[tuple[str, str]], where: Where) -> None:
        """One requirement: any of the (name, version) alternatives must be provided."""
        names: set[str] = set()
        parsed: list[tuple[str, tuple[int, int, int]]] = []
        for name, version in alternatives:
            if name in names:
                raise where.error(f"Defined multiple alternative version requirements for plugin '{name}'")
            names.add(name)
            parsed.append((name, parse_version(version, where, f"required version for plugin '{name}'")))
        known = [(name, version) for name, version in parsed if name in K8SAUDIT_FAMILY]
        if not known:
            listed = ", ".join(name for name, _ in parsed)
            self.notice(f"plugin {listed} is not provided by kubetrail; rules needing it are skipped", where)
            return
        for name, required in known:
            provided = PROVIDED_PLUGINS.get(name)
            if provided is not None and compatible(provided, required):
                return
        name, required = known[0]
        provided_name = name if name in PROVIDED_PLUGINS else "k8saudit"
        raise where.error(
            f"Plugin '{name}' version {_version_text(required)} is required, but kubetrail provides the fields of "
            f"{provided_name} {_version_text(PROVIDED_PLUGINS[provided_name])}",
            hint="use a rules file written for this plugin version, or lower required_plugin_versions",
        )

    # --- lists and macros ---------------------------------------------------------------------------

    def define_list(self, info: ListInfo) -> None:
        if not LIST_NAME.fullmatch(info.name):
            raise info.where.error(
                f"List name '{info.name}' is invalid: it must be a bare string ({LIST_NAME.pattern})"
            )
        tick = self._tick()
        previous = self.lists.get(info.name)
        info.index = previous.index if previous is not None else tick
        info.visibility = tick
        self.lists[info.name] = info

    def append_list(self, info: ListInfo) -> None:
        previous = self.lists.get(info.name)
        if previous is None:
            raise info.where.error(
                f"List '{info.name}' has 'append' key or an append override but no list by that name already exists",
                hint="define the list first (in an earlier file or earlier in this one)",
            )
        previous.items.extend(info.items)
        previous.visibility = self._tick()

    def define_macro(self, info: MacroInfo) -> None:
        if not MACRO_NAME.fullmatch(info.name):
            raise info.where.error(
                f"Macro name '{info.name}' is invalid: it must be an identifier ({MACRO_NAME.pattern})"
            )
        tick = self._tick()
        previous = self.macros.get(info.name)
        info.index = previous.index if previous is not None else tick
        info.visibility = tick
        self.macros[info.name] = info

    def append_macro(self, name: str, condition: Snippet, where: Where) -> None:
        previous = self.macros.get(name)
        if previous is None:
            raise where.error(
                f"Macro '{name}' has 'append' key or an append override but no macro by that name already exists",
                hint="define the macro first (in an earlier file or earlier in this one)",
            )
        previous.condition.append(condition)
        previous.visibility = self._tick()

    # --- rules --------------------------------------------------------------------------------------

    def define_rule(self, info: RuleInfo) -> None:
        previous = self.rules.get(info.name)
        if previous is not None and previous.source != info.source:
            raise info.where.error("Rule has been re-defined with a different source", item=f"rule '{info.name}'")
        if info.source != K8S_AUDIT_SOURCE:
            info.unknown_source = True
            self.notice(
                f"rule '{info.name}' has source '{info.source}', skipping (only k8s_audit is loaded)", info.where
            )
        else:
            for exception in info.exceptions:
                if exception.fields is None:
                    raise exception.where.error(
                        "Rule exception item must have fields property with a list of fields",
                        item=f"exception '{exception.name}'",
                    )
                validate_exception(exception)
        tick = self._tick()
        info.index = previous.index if previous is not None else tick
        info.visibility = tick
        self.rules[info.name] = info

    def _previous_rule(self, update: RuleUpdate, what: str) -> RuleInfo:
        previous = self.rules.get(update.name)
        if previous is None:
            raise update.where.error(
                f"Rule has '{what}' but no rule by that name already exists",
                item=f"rule '{update.name}'",
                hint="define the rule first (in an earlier file or earlier in this one)",
            )
        return previous

    def append_rule(self, update: RuleUpdate, what: str = "append") -> None:
        previous = self._previous_rule(update, what)
        if not update.has_any_value():
            raise update.where.error("Appended rule must have exceptions or condition property")
        if update.condition is not None and update.condition.text:
            previous.condition.append(update.condition)
        if update.output is not None and update.output.text:
            previous.output = f"{previous.output} {update.output.text}"
        if update.desc:
            previous.desc = f"{previous.desc} {update.desc}"
        if update.tags is not None:
            previous.tags |= update.tags
        for exception in update.exceptions or []:
            existing = next((ex for ex in previous.exceptions if ex.name == exception.name), None)
            label = f"exception '{exception.name}'"
            if existing is None:
                if exception.fields is None:
                    raise exception.where.error(
                        "Rule exception must have fields property with a list of fields", item=label
                    )
                if not exception.values:
                    raise exception.where.error(
                        "Rule exception must have values property with a list of values", item=label
                    )
                if not previous.unknown_source:
                    validate_exception(exception)
                previous.exceptions.append(exception)
            else:
                if exception.fields is not None:
                    raise exception.where.error(
                        "Can not append exception fields to existing exception, only values", item=label
                    )
                if exception.comps is not None:
                    raise exception.where.error(
                        "Can not append exception comps to existing exception, only values", item=label
                    )
                existing.values.extend(exception.values)
        previous.visibility = self._tick()

    def replace_rule(self, update: RuleUpdate) -> None:
        previous = self._previous_rule(update, "override: replace")
        if not update.has_any_value():
            raise update.where.error("The rule must have at least one field that can be replaced")
        if update.condition is not None:
            previous.condition = ConditionText.of(update.condition)
        if update.output is not None:
            previous.output = update.output.text.strip()
            previous.output_snippet = update.output
        if update.desc is not None:
            previous.desc = update.desc
        if update.tags is not None:
            previous.tags = set(update.tags)
        if update.exceptions is not None:
            for exception in update.exceptions:
                if not previous.unknown_source and exception.fields is not None:
                    validate_exception(exception)
            previous.exceptions = list(update.exceptions)
        if update.priority is not None:
            previous.priority = update.priority
        if update.enabled is not None:
            previous.enabled = update.enabled
        if update.stateful is not None:
            kind, changes = update.stateful
            if previous.stateful is None or previous.stateful.kind != kind:
                has = previous.stateful.kind if previous.stateful is not None else "no stateful spec"
                raise update.where.error(f"Cannot override '{kind}': the rule has {has}", item=f"rule '{update.name}'")
            for attribute, value in changes.items():
                setattr(previous.stateful, attribute, value)
        previous.visibility = self._tick()

    def enable_rule(self, name: str, enabled: bool, where: Where) -> None:
        previous = self.rules.get(name)
        if previous is None:
            raise where.error("Rule has 'enabled' key but no rule by that name already exists", item=f"rule '{name}'")
        previous.enabled = enabled


def validate_exception(exception: ExceptionInfo) -> None:
    """Default the comparison operators and check fields and operators, as Falco does on definition."""
    from kubetrail.detect.fields import field_spec

    label = f"exception '{exception.name}'"
    fields = exception.fields
    assert fields is not None
    if fields.is_list:
        assert fields.items is not None
        if exception.comps is None:
            exception.comps = Entry(items=[Entry("=") for _ in fields.items])
        comps = exception.comps
        if not comps.is_list or len(comps.items or []) != len(fields.items):
            raise exception.where.error("Fields and comps lists must have equal length", item=label)
        for comp in comps.items or []:
            if comp.item not in ALL_OPERATORS:
                raise exception.where.error(f"'{comp.item}' is not a supported comparison operator", item=label)
        for entry in fields.items:
            if field_spec(_field_name(entry.item)) is None:
                raise exception.where.error(f"'{entry.item}' is not a supported filter field", item=label)
    else:
        if exception.comps is None:
            exception.comps = Entry("in")
        if exception.comps.is_list:
            raise exception.where.error("Fields and comps must both be strings", item=label)
        if exception.comps.item not in ("in", "pmatch", "intersects"):
            raise exception.where.error(
                "When fields is a single value, comps must be one of (in, pmatch, intersects)", item=label
            )
        if field_spec(_field_name(fields.item)) is None:
            raise exception.where.error(f"'{fields.item}' is not a supported filter field", item=label)


def _field_name(text: str) -> str:
    """A field reference without its `[argument]`."""
    cut = text.find("[")
    return text if cut < 0 else text[:cut]
