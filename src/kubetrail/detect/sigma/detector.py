"""Run compiled Sigma rules on events: the `Detector` the engine calls beside Falco's rule set."""

from __future__ import annotations

from collections.abc import Sequence

from kubetrail.detect.alert import Alert
from kubetrail.detect.context import EventContext
from kubetrail.detect.engine import Detector
from kubetrail.detect.output import TimeFormat
from kubetrail.detect.sigma.alerts import describe, event_fields, make_alert
from kubetrail.detect.sigma.rule import SigmaMatch


class SigmaDetector:
    """Matches every event against the Sigma rules in file order; correlations are fed the matches they refer to."""

    def __init__(
        self,
        rules: Sequence[SigmaMatch],
        correlations: Sequence[Detector] = (),
        *,
        hostname: str = "",
        time_format: TimeFormat = TimeFormat.ISO8601,
    ) -> None:
        self.rules = tuple(rules)
        self.correlations = tuple(correlations)
        self.hostname = hostname
        self.time_format = time_format
        self._alerting = tuple((rule, rule.predicate) for rule in self.rules if rule.alerts)

    def matches(self, ctx: EventContext) -> list[SigmaMatch]:
        """The rules the event matches, in load order."""
        return [rule for rule in self.rules if rule.predicate(ctx)]

    def alert(self, rule: SigmaMatch, ctx: EventContext) -> Alert:
        """The alert a matching rule raises."""
        fields = event_fields(ctx)
        fields["sigma.id"] = rule.id or None
        if rule.fields:
            fields.update(rule.field_values(ctx))
        return make_alert(
            rule=rule.title,
            priority=rule.priority,
            ctx=ctx,
            message=f"{rule.title} ({describe(fields)})",
            output_fields=fields,
            tags=rule.tags,
            mitre=rule.mitre,
            hostname=self.hostname,
            time_format=self.time_format,
        )

    def detect(self, ctx: EventContext) -> list[Alert]:
        """Alerts of the matching rules (those a correlation keeps quiet excepted), then the correlations'."""
        alerts: list[Alert] = []
        for rule, predicate in self._alerting:
            if predicate(ctx):
                alerts.append(self.alert(rule, ctx))
        for correlation in self.correlations:
            alerts.extend(correlation.detect(ctx))
        return alerts
