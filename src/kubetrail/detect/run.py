"""Running a rule set over events from Python, as `kubetrail detect` runs it over files.

Every matching rule alerts (Falco's default), stateful rules included, and each rule at most once per request
(`OncePerRequest`), so the alerts are the ones `detect`, `ingest` and `serve` raise for the same events.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator
from pathlib import Path

from kubetrail.detect import BUILTIN, Alert, Engine, EventContext, Matching, Priority, RuleSet, load_ruleset
from kubetrail.detect.requests import OncePerRequest
from kubetrail.detect.sources import rule_sources
from kubetrail.model import Event


def detect_events(
    events: Iterable[Event],
    rules: RuleSet | Iterable[str | Path] = (BUILTIN,),
    *,
    cluster: str = "",
    min_priority: Priority = Priority.DEBUG,
    hostname: str | None = None,
) -> Iterator[Alert]:
    """The alerts `events` raise, in order, under `rules`: a RuleSet, or rule files, directories and `builtin`.

    State (thresholds, sequences, first-seen, one alert per request) lives for one call: pass every event of a
    period in one iterable, or keep an `Engine` wrapped in `OncePerRequest` to feed events over time.
    """
    ruleset = rules if isinstance(rules, RuleSet) else load_ruleset(rule_sources(rules))
    host = socket.gethostname() if hostname is None else hostname
    engine = Engine(ruleset, matching=Matching.ALL, hostname=host, min_priority=min_priority)
    per_request = OncePerRequest(engine)
    for event in events:
        yield from per_request.detect(EventContext(event, cluster, None))
