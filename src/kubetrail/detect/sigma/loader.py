"""Load Sigma rule files with pySigma: keep the rules kubetrail can evaluate, compile them, say what is wrong where.

Kubernetes audit rules (`product: kubernetes, service: audit`) read the audit event; GCP audit rules
(`product: gcp, service: gcp.audit`) read the GKE LogEntry each event was converted from, rebuilt by
`gcp.gcp_field`, and apply only to such events. Rules of any other logsource are skipped with a notice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError, SigmaRuleLocation
from sigma.rule import SigmaRule

from kubetrail.detect.collector import Notice, Where
from kubetrail.detect.rulefile import RuleSource
from kubetrail.detect.sigma import gcp
from kubetrail.detect.sigma.conditions import ConditionCompiler, Predicate, required_verbs
from kubetrail.detect.sigma.errors import SigmaRuleError
from kubetrail.detect.sigma.fields import FieldResolver, Getter, audit_field
from kubetrail.detect.sigma.matchers import UnsupportedValue
from kubetrail.detect.sigma.rule import SigmaMatch, level_priority, mitre_ids

if TYPE_CHECKING:
    from kubetrail.detect.stateful import StatefulSpec

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _Loader = yaml.SafeLoader

PRODUCT = "kubernetes"
SERVICE = "audit"


@dataclass
class SigmaRules:
    """Sigma rules compiled from some files: detection rules, correlation rules and loading notices."""

    rules: list[SigmaMatch] = field(default_factory=list)
    correlations: list[StatefulSpec] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)


def _label(rule: SigmaRule | SigmaCorrelationRule) -> str:
    title = rule.title or "(untitled)"
    return f"{title} ({rule.id})" if rule.id else title


def _message(error: SigmaError) -> str:
    return str(error.args[0]) if error.args else type(error).__name__


def _unparsed_label(text: str, collection: SigmaCollection) -> str:
    """The title (and id) of the first document that did not become a rule: the one an error is about."""
    parsed = {rule.title for rule in collection.rules}
    try:
        documents = list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError:
        return ""
    for document in documents:
        if isinstance(document, dict) and "title" in document and document["title"] not in parsed:
            title = str(document["title"])
            return f"{title} ({document['id']})" if document.get("id") else title
    return ""


def _error(
    name: str, error: SigmaError, rule: SigmaRule | SigmaCorrelationRule | None = None, *, item: str = ""
) -> SigmaRuleError:
    return SigmaRuleError(
        _message(error),
        source=name,
        line=error.source.line if error.source is not None else None,
        item=_label(rule) if rule is not None else item,
        hint="see the Sigma specification (github.com/SigmaHQ/sigma-specification) for the rule format",
    )


def parse_file(source: RuleSource) -> SigmaCollection:
    """Parse one file's Sigma documents; a rule that pySigma refuses raises, naming the file and the rule."""
    location = SigmaRuleLocation(Path(source.name))
    try:
        collection = SigmaCollection.from_yaml(
            source.text, collect_errors=True, source=location, resolve_references=False
        )
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise SigmaRuleError(
            f"not valid YAML: {getattr(error, 'problem', None) or error}",
            source=source.name,
            line=mark.line + 1 if mark is not None else None,
            column=mark.column + 1 if mark is not None else None,
        ) from None
    except SigmaError as error:
        raise _error(source.name, error) from None
    for rule in collection.rules:
        if rule.errors:
            raise _error(source.name, rule.errors[0], rule)
    if collection.errors:
        raise _error(source.name, collection.errors[0], item=_unparsed_label(source.text, collection))
    return collection


LOGSOURCES: dict[tuple[str, str], FieldResolver] = {
    (PRODUCT, SERVICE): audit_field,
    (gcp.PRODUCT, gcp.SERVICE): gcp.gcp_field,
}
"""The (product, service) pairs kubetrail evaluates, and how each names the event's fields."""


def _field_names(rule: SigmaRule) -> FieldResolver | None:
    """How the rule's logsource names fields; None when kubetrail cannot evaluate that logsource."""
    logsource = rule.logsource
    return LOGSOURCES.get(((logsource.product or "").lower(), (logsource.service or "").lower()))


def compile_rule(rule: SigmaRule, name: str, compiler: ConditionCompiler) -> tuple[Predicate, frozenset[str] | None]:
    """One predicate for the rule (a list of conditions is OR-ed), and the verbs it requires, if it says.

    A GCP audit rule applies only to events converted from GKE entries, and indexes no verbs (it names none).
    """
    predicates: list[Predicate] = []
    verbs: set[str] | None = set() if compiler.resolve is audit_field else None
    try:
        for condition in rule.detection.parsed_condition:
            tree = condition.parsed
            predicates.append(compiler.compile(tree).predicate)
            required = required_verbs(tree) if verbs is not None else None
            verbs = None if required is None or verbs is None else verbs | required
    except SigmaError as error:
        raise _error(name, error, rule) from None
    except UnsupportedValue as error:
        raise SigmaRuleError(str(error), source=name, item=_label(rule)) from None
    required_set = frozenset(verbs) if verbs else None
    combined = predicates[0] if len(predicates) == 1 else _any(predicates)
    if compiler.resolve is gcp.gcp_field:
        combined = gcp.on_gke(combined)
    return combined, required_set


def _any(predicates: list[Predicate]) -> Predicate:
    return lambda ctx: any(predicate(ctx) for predicate in predicates)


def _field_getters(rule: SigmaRule, compiler: ConditionCompiler) -> tuple[tuple[str, Getter], ...]:
    """The getters of the rule's `fields:` list (its alert output fields), noting names that had to be mapped."""
    getters: list[tuple[str, Getter]] = []
    for name in rule.fields or ():
        resolved = compiler.resolve(name)
        if resolved.notice and f"in fields: {resolved.notice}" not in compiler.notices:
            compiler.notices.append(f"in fields: {resolved.notice}")
        getters.append((name, resolved.getter))
    return tuple(getters)


def load_sigma(sources: Sequence[RuleSource]) -> SigmaRules:
    """Compile the rules kubetrail can evaluate (and correlations over them) of some Sigma files, in file order."""
    result = SigmaRules()
    collections: list[SigmaCollection] = []
    origin: dict[int, str] = {}
    for source in sources:
        collection = parse_file(source)
        collections.append(collection)
        for rule in collection.rules:
            origin[id(rule)] = source.name
    merged = SigmaCollection.merge(collections, resolve_references=False)
    for rule in merged.rules:
        if isinstance(rule, SigmaCorrelationRule):
            try:
                rule.resolve_rule_references(merged)
            except SigmaError as error:
                raise _error(origin.get(id(rule), "sigma rules"), error, rule) from None
    compiled: dict[int, SigmaMatch] = {}
    skipped: set[int] = set()
    for rule in merged.rules:
        name = origin.get(id(rule), "sigma rules")
        if not isinstance(rule, SigmaRule):
            continue
        resolve = _field_names(rule)
        if resolve is None:
            skipped.add(id(rule))
            logsource = ", ".join(
                f"{key}: {value}"
                for key, value in (
                    ("category", rule.logsource.category),
                    ("product", rule.logsource.product),
                    ("service", rule.logsource.service),
                )
                if value
            )
            result.notices.append(
                Notice(
                    f"Sigma rule {_label(rule)} skipped: logsource is {{{logsource}}}; kubetrail evaluates "
                    f"product: {PRODUCT}, service: {SERVICE} rules, and product: {gcp.PRODUCT}, "
                    f"service: {gcp.SERVICE} rules on GKE events",
                    Where(name),
                )
            )
            continue
        compiler = ConditionCompiler(resolve=resolve)
        predicate, verbs = compile_rule(rule, name, compiler)
        tags = tuple(str(tag) for tag in rule.tags)
        match = SigmaMatch(
            title=rule.title,
            id=str(rule.id) if rule.id else "",
            name=rule.name or "",
            source=name,
            description=rule.description or "",
            priority=level_priority(rule.level.name if rule.level else None),
            tags=tags,
            mitre=mitre_ids(tags),
            predicate=predicate,
            verbs=verbs,
            fields=_field_getters(rule, compiler),
            alerts=bool(rule._output),
            resolve=resolve,
        )
        compiled[id(rule)] = match
        result.rules.append(match)
        for text in compiler.notices:
            result.notices.append(Notice(f"Sigma rule {_label(rule)}: {text}", Where(name)))
    for rule in merged.rules:
        if isinstance(rule, SigmaCorrelationRule):
            from kubetrail.detect.sigma.correlation import compile_correlation

            name = origin.get(id(rule), "sigma rules")
            spec, why, notes = compile_correlation(rule, name, compiled, skipped)
            if spec is None:
                result.notices.append(Notice(f"Sigma correlation {_label(rule)} skipped: {why}", Where(name)))
            else:
                result.correlations.append(spec)
            for text in notes:
                result.notices.append(Notice(f"Sigma correlation {_label(rule)}: {text}", Where(name)))
    return result
