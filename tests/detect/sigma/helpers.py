"""Compiling Sigma YAML text for tests and running one event through it."""

from __future__ import annotations

from typing import Any

from kubetrail.detect import Engine, RuleSource, load_ruleset
from kubetrail.detect.sigma import SigmaRules, load_sigma
from tests.detect.helpers import context


def sigma(*texts: str) -> SigmaRules:
    return load_sigma([RuleSource(f"rule-{index}.yml", text) for index, text in enumerate(texts)])


def engine(*texts: str) -> Engine:
    """An engine over rule files given as text (Falco or Sigma, told apart as `kubetrail detect` does)."""
    return Engine(load_ruleset([RuleSource(f"rule-{index}.yml", text) for index, text in enumerate(texts)]))


def rule_text(detection: str, *, title: str = "t", level: str = "medium", tags: str = "") -> str:
    """A Kubernetes audit Sigma rule around a `detection:` block (indented by four spaces)."""
    tag_block = f"tags:\n{tags}\n" if tags else ""
    return (
        f"title: {title}\nid: 11111111-2222-4333-8444-555555555555\nstatus: test\nlevel: {level}\n{tag_block}"
        f"logsource:\n    product: kubernetes\n    service: audit\ndetection:\n{detection}"
    )


def matches(detection: str, **event: Any) -> bool:
    """Whether the one rule with this detection matches the base test event changed by `event`."""
    return bool(engine(rule_text(detection)).detect(context(**event)))
