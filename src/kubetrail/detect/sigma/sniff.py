"""Tell Sigma rule files from Falco rule files without importing pySigma (it takes a while to import).

A file is a Sigma file when a YAML document in it has `detection` and `logsource` (a rule),
`filter` and `logsource` (a filter that narrows other rules) or `correlation` (a correlation rule);
Falco rule files are YAML lists and never look like that.
"""

from __future__ import annotations

from collections.abc import Iterable

import yaml

from kubetrail.detect.rulefile import RuleSource

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _Loader = yaml.SafeLoader


def is_sigma(text: str) -> bool:
    """True when the YAML text holds Sigma rules, filters or correlations."""
    if "logsource" not in text and "correlation" not in text:
        return False
    try:
        documents = list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError:
        return False
    return any(
        isinstance(document, dict)
        and (
            "correlation" in document or ("logsource" in document and ("detection" in document or "filter" in document))
        )
        for document in documents
    )


def split_sources(sources: Iterable[RuleSource]) -> tuple[list[RuleSource], list[RuleSource]]:
    """Falco rule files and Sigma rule files, each in the order given."""
    falco: list[RuleSource] = []
    sigma: list[RuleSource] = []
    for source in sources:
        (sigma if is_sigma(source.text) else falco).append(source)
    return falco, sigma
