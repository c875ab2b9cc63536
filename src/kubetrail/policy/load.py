"""Load an audit policy file exactly as the current kube-apiserver does.

Only `audit.k8s.io/v1` is accepted (older versions were dropped in Kubernetes 1.24).
Unknown and duplicate fields are accepted with a warning, as the apiserver's lenient
decoding fallback does; wrong types, a wrong kind or version, validation errors and a
policy without rules are refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from kubetrail.model.policy import POLICY_API_VERSION, GroupResources, Policy, PolicyRule
from kubetrail.policy.issues import PolicyError, PolicyIssue, Severity
from kubetrail.policy.source import (
    FieldPath,
    SourceDocument,
    SourceSyntaxError,
    format_field_path,
    parse_source,
)
from kubetrail.policy.validate import validate_policy

_RETIRED_VERSIONS = {"audit.k8s.io/v1beta1", "audit.k8s.io/v1alpha1"}
_FIELDS_BY_STRUCT: dict[str, frozenset[str]] = {
    "Policy": frozenset(Policy.__struct_fields__),
    "PolicyRule": frozenset(PolicyRule.__struct_fields__),
    "GroupResources": frozenset(GroupResources.__struct_fields__),
}
_CONVERT_HINT = "change apiVersion to audit.k8s.io/v1: the rules are the same, and v1 drops nothing a policy uses"


@dataclass
class LoadedPolicy:
    """A policy the apiserver would accept, with where each field came from and any warnings."""

    policy: Policy
    source: str
    document: SourceDocument
    warnings: list[PolicyIssue] = field(default_factory=list)

    def line_of(self, path: FieldPath) -> int | None:
        """The source line of a field path such as `("rules", 2, "verbs")`."""
        return self.document.line_of(path)

    def rule_line(self, index: int) -> int | None:
        """The source line where rule `index` starts."""
        return self.document.line_of(("rules", index))


def _fail(source: str, message: str, *, line: int | None = None, path: str = "", hint: str = "") -> PolicyError:
    issue = PolicyIssue(
        severity=Severity.ERROR,
        field=path,
        message=message,
        source=source,
        line=line,
        hint=hint,
        code="load",
    )
    return PolicyError(issues=[issue])


def _decode_text(data: bytes, source: str) -> str:
    if b"\x00" in data[:8192]:
        raise _fail(source, "not a YAML or JSON policy file (binary data)", hint="point at the policy file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise _fail(source, f"not a YAML or JSON policy file (invalid UTF-8 at byte {error.start})") from None


def _unknown_field_warnings(value: Any, document: SourceDocument, source: str) -> list[PolicyIssue]:
    warnings: list[PolicyIssue] = []

    def walk(node: Any, path: FieldPath, struct: str) -> None:
        if not isinstance(node, dict):
            return
        known = _FIELDS_BY_STRUCT[struct]
        for key, child in node.items():
            child_path = (*path, key)
            if struct == "Policy" and key in ("apiVersion", "kind", "metadata"):
                continue
            if key not in known:
                warnings.append(
                    PolicyIssue(
                        severity=Severity.WARNING,
                        field=format_field_path(child_path),
                        message=f'unknown field "{format_field_path(child_path)}" (ignored)',
                        source=source,
                        line=document.line_of(child_path),
                        hint="the apiserver ignores it; check its spelling and indentation",
                        rule=path[1] if len(path) >= 2 and isinstance(path[1], int) else None,
                        code="unknown-field",
                    )
                )
                continue
            if struct == "Policy" and key == "rules" and isinstance(child, list):
                for index, rule in enumerate(child):
                    walk(rule, (*child_path, index), "PolicyRule")
            elif struct == "PolicyRule" and key == "resources" and isinstance(child, list):
                for index, resources in enumerate(child):
                    walk(resources, (*child_path, index), "GroupResources")

    walk(value, (), "Policy")
    return warnings


def _duplicate_warnings(document: SourceDocument, source: str) -> list[PolicyIssue]:
    return [
        PolicyIssue(
            severity=Severity.WARNING,
            field=format_field_path(duplicate.path),
            message=f'duplicate field "{format_field_path(duplicate.path)}" (the last value is used)',
            source=source,
            line=duplicate.line,
            hint="remove one of the two entries",
            code="duplicate-field",
        )
        for duplicate in document.duplicates
    ]


def _msgspec_path(message: str) -> FieldPath:
    marker = message.rfind("at `$")
    if marker < 0:
        return ()
    text = message[marker + 5 : message.rfind("`")]
    path: list[str | int] = []
    for part in text.replace("]", "").replace("[", ".").split("."):
        if part:
            path.append(int(part) if part.isdigit() else part)
    return tuple(path)


def _check_header(value: dict[str, Any], document: SourceDocument, source: str) -> None:
    api_version = value.get("apiVersion")
    kind = value.get("kind")
    for name, item in (("apiVersion", api_version), ("kind", kind)):
        if item is not None and not isinstance(item, str):
            raise _fail(
                source,
                f"couldn't get version/kind: {name} must be a string, not {_json_type(item)}",
                line=document.line_of((name,)),
                path=name,
                hint=f"write 'apiVersion: {POLICY_API_VERSION}' and 'kind: Policy'",
            )
    if not api_version:
        raise _fail(
            source,
            "unknown group version field audit.k8s.io/__internal, Kind=Policy in policy: 'apiVersion' is missing",
            line=document.line_of(()),
            hint=f"add 'apiVersion: {POLICY_API_VERSION}'",
        )
    if api_version in _RETIRED_VERSIONS:
        raise _fail(
            source,
            f"apiVersion {api_version} is no longer accepted: kube-apiserver reads only "
            f"{POLICY_API_VERSION} audit policies since Kubernetes 1.24",
            line=document.line_of(("apiVersion",)),
            path="apiVersion",
            hint=_CONVERT_HINT,
        )
    shown_kind = kind or "Policy"
    if api_version != POLICY_API_VERSION:
        raise _fail(
            source,
            f'no kind "{shown_kind}" is registered for version "{api_version}"',
            line=document.line_of(("apiVersion",)),
            path="apiVersion",
            hint=f"an audit policy has 'apiVersion: {POLICY_API_VERSION}' and 'kind: Policy'",
        )
    if kind and kind != "Policy":
        raise _fail(
            source,
            f'kind "{kind}" of version "{api_version}" is not an audit policy',
            line=document.line_of(("kind",)),
            path="kind",
            hint="an audit policy has 'kind: Policy'",
        )


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "a string"


_STRUCT_LISTS = {"rules": "PolicyRule", "resources": "GroupResources"}
_METADATA_STRINGS = ("name", "namespace", "generateName", "uid", "resourceVersion", "selfLink")
_METADATA_MAPS = ("labels", "annotations")


def _drop_nulls(node: Any, struct: str) -> Any:
    """Read `null` as Go's JSON decoder does: an absent field, a zero list element."""
    if not isinstance(node, dict):
        return node
    result: dict[str, Any] = {}
    for key, child in node.items():
        if child is None:
            continue
        element = _STRUCT_LISTS.get(key) if key in _FIELDS_BY_STRUCT[struct] else None
        if isinstance(child, list) and element is not None:
            child = [{} if item is None else _drop_nulls(item, element) for item in child]
        elif isinstance(child, list) and key in _FIELDS_BY_STRUCT[struct] and key != "metadata":
            child = ["" if item is None else item for item in child]
        result[key] = child
    return result


def _check_metadata(metadata: Any, document: SourceDocument, source: str) -> None:
    if metadata is None:
        return
    path: FieldPath = ("metadata",)
    problem = ""
    if not isinstance(metadata, dict):
        problem = f"metadata must be an object, not {_json_type(metadata)}"
    else:
        for key in _METADATA_STRINGS:
            if metadata.get(key) is not None and not isinstance(metadata[key], str):
                path, problem = ("metadata", key), f"metadata.{key} must be a string"
                break
        for key in _METADATA_MAPS:
            entries = metadata.get(key)
            if entries is None:
                continue
            if not isinstance(entries, dict) or not all(
                isinstance(item, str) or item is None for item in entries.values()
            ):
                path, problem = ("metadata", key), f"metadata.{key} must map strings to strings"
                break
    if problem:
        raise _fail(
            source,
            f"cannot decode: {problem}",
            line=document.line_of(path),
            path=format_field_path(path),
            hint="metadata is optional in a policy file; remove it or fix its type",
        )


def load_policy_bytes(data: bytes, *, source: str = "<policy>") -> LoadedPolicy:
    """Load a policy from YAML or JSON bytes; raise PolicyError with every problem found."""
    text = _decode_text(data, source)
    try:
        document = parse_source(text)
    except SourceSyntaxError as error:
        where = f" (column {error.column})" if error.column is not None else ""
        hint = (
            "a file starting with '{' is read as strict JSON: quote every key and string, no comments"
            if text.lstrip().startswith("{")
            else "fix the YAML syntax"
        )
        raise _fail(source, f"{error}{where}", line=error.line, hint=hint) from None
    value = document.value
    if not isinstance(value, dict):
        shown = "empty" if value is None else f"a {type(value).__name__}"
        raise _fail(
            source,
            f"an audit policy must be a YAML mapping (kind: Policy), but the document is {shown}",
            line=document.line_of(()),
            hint=f"start the file with 'apiVersion: {POLICY_API_VERSION}' and 'kind: Policy'",
        )
    _check_header(value, document, source)
    _check_metadata(value.get("metadata"), document, source)
    body = _drop_nulls({key: item for key, item in value.items() if key not in ("apiVersion", "kind")}, "Policy")
    try:
        policy = msgspec.convert(body, Policy, strict=True)
    except msgspec.ValidationError as error:
        message = str(error)
        path = _msgspec_path(message)
        detail = message[: message.rfind(" - at `")] if " - at `" in message else message
        raise _fail(
            source,
            f"cannot decode: {detail}",
            line=document.line_of(path),
            path=format_field_path(path),
            hint="check the field's type: lists are YAML sequences, levels and stages are strings",
        ) from None
    policy.apiVersion = POLICY_API_VERSION
    errors = validate_policy(policy, source=source, line_of=document.line_of)
    if errors:
        raise PolicyError(issues=_dedupe(errors))
    if not policy.rules:
        raise _fail(
            source,
            "loaded illegal policy with 0 rules",
            line=document.line_of(("rules",)),
            path="rules",
            hint="add at least one rule, e.g. '- level: Metadata'",
        )
    warnings = _unknown_field_warnings(value, document, source) + _duplicate_warnings(document, source)
    if document.extra_documents:
        warnings.append(
            PolicyIssue(
                severity=Severity.WARNING,
                field="",
                message=f"{document.extra_documents} further YAML document(s) after the first are ignored",
                source=source,
                line=None,
                hint="keep one policy per file",
                code="extra-documents",
            )
        )
    return LoadedPolicy(policy=policy, source=source, document=document, warnings=warnings)


def _dedupe(issues: list[PolicyIssue]) -> list[PolicyIssue]:
    seen: set[str] = set()
    unique: list[PolicyIssue] = []
    for issue in issues:
        key = f"{issue.field}: {issue.message}"
        if key not in seen:
            seen.add(key)
            unique.append(issue)
    return unique


def load_policy(path: str | Path) -> LoadedPolicy:
    """Load a policy file; raise PolicyError (never a traceback) for anything the apiserver refuses."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise _fail(name, f"cannot read policy file: {error.strerror or error}") from None
    return load_policy_bytes(data, source=name)
