"""The common shape of a running stateful rule: its spec, key store, alert building and checkpoint form."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from kubetrail.detect.alert import Alert
from kubetrail.detect.context import EventContext
from kubetrail.detect.facts import outcome_label as outcome_of
from kubetrail.detect.fields import Value
from kubetrail.detect.output import TimeFormat
from kubetrail.detect.stateful.spec import NS_PER_SECOND, KeyFunction, StatefulSpec, key_function, output_format
from kubetrail.detect.stateful.store import KeyStore

State = TypeVar("State")


def thaw_key(items: list[Any]) -> tuple[object, ...]:
    """A key read back from a checkpoint: JSON arrays inside it were tuples (list-valued fields)."""
    return tuple(tuple(item) if isinstance(item, list) else item for item in items)


class Runner(Generic[State]):
    """One stateful rule at work; subclasses decide what state a key holds and when it fires."""

    kind = ""

    def __init__(self, spec: StatefulSpec, key_fields: tuple[str, ...], max_keys: int, horizon_s: float) -> None:
        self.spec = spec
        self.name = spec.name
        self.match = spec.match
        self.admits = spec.admits
        self.key_of: KeyFunction = key_function(key_fields, spec.accessors) if key_fields else _no_key
        self.key_fields = key_fields
        self.output = output_format(spec.output)
        self.store: KeyStore[State] = KeyStore(spec.max_keys or max_keys)
        self.horizon_ns = int(horizon_s * NS_PER_SECOND)
        self.alerts = 0
        self.started_ns: int | None = None
        self.hostname = ""
        self.time_format = TimeFormat.ISO8601

    @property
    def signature(self) -> str:
        """What a checkpointed state must agree with to be restored into this rule."""
        return self.kind

    def process(self, ctx: EventContext, now_ns: int) -> Alert | None:
        """Feed one matching event (at event time `now_ns`); the alert it completes, if any."""
        raise NotImplementedError

    def encode(self, state: State) -> Any:
        """The state as JSON-able values for a checkpoint."""
        raise NotImplementedError

    def decode(self, data: Any) -> State:
        """A state back from `encode`'s form."""
        raise NotImplementedError

    def alert(self, ctx: EventContext, now_ns: int, key: tuple[object, ...], extra: dict[str, Value]) -> Alert:
        """The alert for the event that completed the rule: its rendered output plus the rule's evidence."""
        self.alerts += 1
        message, fields = self.output.render(ctx)
        fields = dict(fields)
        for name, value in zip(self.key_fields, key, strict=True):
            if name not in fields:
                fields[name] = _value(value)
        fields.update(extra)
        evidence = " ".join(f"{name.removeprefix('stateful.')}={value}" for name, value in extra.items())
        spec = self.spec
        return Alert(
            rule=spec.name,
            priority=spec.priority,
            source=spec.source,
            time_ns=now_ns,
            message=f"{message} ({evidence})" if message else evidence,
            output_fields=fields,
            tags=spec.tags,
            audit_id=ctx.event.auditID,
            cluster=ctx.cluster or None,
            mitre=spec.mitre,
            threat_matrix=spec.threat_matrix,
            hostname=self.hostname,
            time_format=self.time_format,
            outcome=outcome_of(ctx.event),
        )


def _value(part: object) -> Value:
    if isinstance(part, tuple):
        return [str(item) for item in part]
    return None if part is None else str(part)


def _no_key(ctx: EventContext) -> tuple[object, ...]:
    return ()
