"""Pass, fail or not-evidenced per theme and per control, each with the reasons an assessor needs.

A theme fails on evidence against it (a gap, a short history, a tampered segment, an apiserver setting);
it is not evidenced when the period holds nothing to judge by. A control takes the worst of its themes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from kubetrail.check import Status as CheckStatus
from kubetrail.report.controls import CHECKS_BY_THEME, Control, Framework, Theme
from kubetrail.report.evidence import Evidence


class Status(enum.StrEnum):
    """A theme's or control's outcome."""

    PASS = "pass"
    FAIL = "fail"
    NOT_EVIDENCED = "not-evidenced"


_RANK = {Status.PASS: 0, Status.NOT_EVIDENCED: 1, Status.FAIL: 2}


@dataclass(frozen=True)
class Result:
    """An outcome and why."""

    status: Status
    reasons: list[str]


@dataclass(frozen=True)
class ControlResult:
    """One control's outcome, from its themes."""

    control: Control
    status: Status
    reasons: list[str]


@dataclass
class Assessment:
    """Every theme's and control's outcome for one framework."""

    framework: Framework
    required_days: int
    themes: dict[Theme, Result] = field(default_factory=dict)
    controls: list[ControlResult] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {status.value: sum(1 for item in self.controls if item.status is status) for status in Status}


def _worst(results: list[Result]) -> Status:
    return max((result.status for result in results), key=_RANK.__getitem__, default=Status.NOT_EVIDENCED)


def _apiserver(evidence: Evidence, theme: Theme, only: str | None = None) -> list[str]:
    """Reasons against `theme` from the apiserver check (failed findings of the controls that bear on it)."""
    wanted = (only,) if only else CHECKS_BY_THEME.get(theme, ())
    return [
        f"{finding.control}: {finding.detail}"
        for finding in evidence.apiserver or []
        if finding.control in wanted and finding.status is CheckStatus.FAIL
    ]


def _with_config(evidence: Evidence, theme: Theme, result: Result, only: str | None = None) -> Result:
    failures = _apiserver(evidence, theme, only)
    if failures:
        return Result(Status.FAIL, [*failures, *(result.reasons if result.status is Status.FAIL else [])])
    if evidence.apiserver is not None and theme in CHECKS_BY_THEME and result.status is Status.PASS:
        return Result(Status.PASS, [*result.reasons, "the apiserver's audit settings for it pass"])
    return result


def _access_logging(evidence: Evidence) -> Result:
    if not evidence.requests:
        return Result(Status.NOT_EVIDENCED, ["no events were recorded in the period"])
    gaps = evidence.period_gap_days
    if gaps:
        shown = ", ".join(day.isoformat() for day in gaps[:10]) + (" …" if len(gaps) > 10 else "")
        return Result(Status.FAIL, [f"{len(gaps)} day(s) in the period have no events at all: {shown}"])
    reasons = [f"{evidence.requests:,} requests recorded on every day of the period that the store covers"]
    if evidence.apiserver is None:
        reasons.append("apiserver settings not checked (pass --apiserver MANIFEST)")
    return Result(Status.PASS, reasons)


def _activity(evidence: Evidence, count: int, what: str, *, zero_is_evidence: bool) -> Result:
    if not evidence.requests:
        return Result(Status.NOT_EVIDENCED, ["no events were recorded in the period"])
    if not count and not zero_is_evidence:
        return Result(
            Status.NOT_EVIDENCED,
            [f"no {what} recorded in the period although other requests were: check the policy records them"],
        )
    return Result(Status.PASS, [f"{count:,} {what} recorded in the period, listed for review"])


def _secret_access(evidence: Evidence) -> Result:
    result = _activity(evidence, evidence.secret_reads, "secret reads", zero_is_evidence=False)
    if evidence.secret_bodies_recorded:
        return Result(
            Status.FAIL,
            [
                f"{evidence.secret_bodies_recorded:,} secret request(s) recorded at Request or RequestResponse "
                "level: secret values are in the audit log (record secrets at Metadata)",
                *result.reasons,
            ],
        )
    return result


def _retention(evidence: Evidence, required: int) -> Result:
    if not evidence.retention:
        return Result(Status.NOT_EVIDENCED, ["the store holds no events"])
    reasons: list[str] = []
    status = Status.PASS
    for item in evidence.retention:
        span = f"{item.oldest.date().isoformat()} to {item.newest.date().isoformat()}"
        if item.days_covered < required:
            status = Status.FAIL
            reasons.append(
                f"cluster {item.cluster}: the store holds {item.days_covered} day(s) ({span}) "
                f"of the {required} required"
            )
        else:
            reasons.append(f"cluster {item.cluster}: {item.days_covered} days held ({span}), {required} required")
        if item.gap_days:
            status = Status.FAIL
            reasons.append(f"cluster {item.cluster}: {len(item.gap_days)} day(s) without events inside that history")
    return Result(status, reasons)


def _integrity(evidence: Evidence) -> Result:
    check = evidence.integrity
    if check is None:
        return Result(Status.NOT_EVIDENCED, ["the store was not verified"])
    if not check.ok:
        return Result(Status.FAIL, [f"verify found {len(check.findings)} problem(s)", *check.findings])
    return Result(
        Status.PASS,
        [f"verify OK: {check.files} sealed segments, {check.events:,} events match the hash chain (head {check.head})"],
    )


def assess(framework: Framework, evidence: Evidence, *, required_days: int | None = None) -> Assessment:
    """Judge every theme once, then every control of `framework` from its themes."""
    required = framework.retention_days if required_days is None else required_days
    plain = {
        Theme.ACCESS_LOGGING: _access_logging(evidence),
        Theme.SECRET_ACCESS: _secret_access(evidence),
        Theme.RBAC_CHANGES: _activity(evidence, evidence.rbac_change_count, "RBAC changes", zero_is_evidence=True),
        Theme.POD_EXEC: _activity(
            evidence, evidence.exec_count, "exec/attach/port-forward sessions", zero_is_evidence=True
        ),
        Theme.RETENTION: _retention(evidence, required),
        Theme.INTEGRITY: _integrity(evidence),
    }
    assessment = Assessment(framework=framework, required_days=required)
    assessment.themes = {theme: _with_config(evidence, theme, result) for theme, result in plain.items()}
    checked = {control for controls in CHECKS_BY_THEME.values() for control in controls}
    for control in framework.controls:
        if control.id in checked:  # a CIS control `check apiserver` tests: its own finding, not its neighbours'
            results = [_with_config(evidence, theme, plain[theme], control.id) for theme in control.themes]
        else:
            results = [assessment.themes[theme] for theme in control.themes]
        status = _worst(results)
        reasons = [
            f"{theme.value}: {reason}"
            for theme, result in zip(control.themes, results, strict=True)
            if result.status is status or status is Status.PASS
            for reason in result.reasons
        ]
        assessment.controls.append(ControlResult(control, status, reasons))
    return assessment
