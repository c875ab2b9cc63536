"""The control catalogue: for each framework, the controls audit logs can evidence and the themes that evidence them.

Six evidence themes cover what an audit log can show an assessor: that access logging is on and continuous,
who read secrets, who changed RBAC, who exec'd into pods, how long history is retained, and that the stored
history is untampered. Each control lists the themes it rests on and the `kubetrail check apiserver` findings
(by control ID) that bear on it. Titles paraphrase the frameworks; they are not the frameworks' text.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Theme(enum.StrEnum):
    """What one piece of evidence is about."""

    ACCESS_LOGGING = "access-logging"
    SECRET_ACCESS = "secret-access"
    RBAC_CHANGES = "rbac-changes"
    POD_EXEC = "pod-exec"
    RETENTION = "retention"
    INTEGRITY = "integrity"


# `kubetrail check apiserver` findings that bear on each theme (others are shown but do not change a status).
CHECKS_BY_THEME: dict[Theme, tuple[str, ...]] = {
    Theme.ACCESS_LOGGING: ("CIS 1.2.16", "CIS 3.2.1", "KT-LOG-MOUNT", "KT-POLICY-MOUNT"),
    Theme.RETENTION: ("CIS 1.2.17", "CIS 1.2.18", "CIS 1.2.19"),
    Theme.SECRET_ACCESS: ("CIS 3.2.2",),
    Theme.RBAC_CHANGES: ("CIS 3.2.2",),
    Theme.POD_EXEC: ("CIS 3.2.2",),
}


@dataclass(frozen=True)
class Control:
    """One framework control: its ID, a short paraphrase, and the themes that evidence it."""

    id: str
    title: str
    themes: tuple[Theme, ...]


@dataclass(frozen=True)
class Framework:
    """A framework's controls and how many days of audit history it expects a store to hold."""

    key: str
    title: str
    retention_days: int
    retention_basis: str
    controls: tuple[Control, ...]


_T = Theme

FRAMEWORKS: dict[str, Framework] = {
    "cis": Framework(
        key="cis",
        title="CIS Kubernetes Benchmark (v1.8+ numbering)",
        retention_days=30,
        retention_basis="CIS 1.2.17 asks for --audit-log-maxage of at least 30 days",
        controls=(
            Control("CIS 1.2.16", "The API server writes an audit log (--audit-log-path)", (_T.ACCESS_LOGGING,)),
            Control("CIS 1.2.17", "Audit log files are kept at least 30 days (--audit-log-maxage)", (_T.RETENTION,)),
            Control("CIS 1.2.18", "At least 10 rotated audit logs are kept (--audit-log-maxbackup)", (_T.RETENTION,)),
            Control("CIS 1.2.19", "Audit logs rotate at 100 MB or more (--audit-log-maxsize)", (_T.RETENTION,)),
            Control("CIS 3.2.1", "A minimal audit policy is in place (--audit-policy-file)", (_T.ACCESS_LOGGING,)),
            Control(
                "CIS 3.2.2",
                "The audit policy covers key security concerns (secrets, RBAC, exec)",
                (_T.SECRET_ACCESS, _T.RBAC_CHANGES, _T.POD_EXEC),
            ),
        ),
    ),
    "soc2": Framework(
        key="soc2",
        title="SOC 2 Trust Services Criteria (2017, revised 2022)",
        retention_days=365,
        retention_basis="SOC 2 sets no period; one year covers a type 2 examination period (use --retention-days)",
        controls=(
            Control(
                "CC6.1",
                "Logical access to protected information assets is restricted and recorded",
                (_T.ACCESS_LOGGING, _T.SECRET_ACCESS),
            ),
            Control("CC6.2", "Access is granted, changed and removed through authorised changes", (_T.RBAC_CHANGES,)),
            Control("CC6.3", "Role-based access is authorised, modified and removed with evidence", (_T.RBAC_CHANGES,)),
            Control(
                "CC7.2",
                "System components are monitored for anomalous and malicious activity",
                (_T.ACCESS_LOGGING, _T.POD_EXEC, _T.SECRET_ACCESS, _T.RETENTION, _T.INTEGRITY),
            ),
        ),
    ),
    "pci-dss": Framework(
        key="pci-dss",
        title="PCI DSS v4.0",
        retention_days=365,
        retention_basis="PCI DSS 10.5.1: at least 12 months of history, the latest three months at hand",
        controls=(
            Control("10.2.1", "Audit logs are enabled and active for all system components", (_T.ACCESS_LOGGING,)),
            Control("10.2.1.1", "Individual user access to cardholder data (secrets) is captured", (_T.SECRET_ACCESS,)),
            Control(
                "10.2.1.2",
                "Actions by individuals with administrative access (interactive use such as exec) are captured",
                (_T.POD_EXEC,),
            ),
            Control(
                "10.2.1.5",
                "Changes to identification and authentication credentials and privileges are captured",
                (_T.RBAC_CHANGES,),
            ),
            Control(
                "10.2.2",
                "Audit records hold user, event type, time, outcome, origin and the affected resource",
                (_T.ACCESS_LOGGING,),
            ),
            Control("10.3.2", "Audit log files are protected from modification", (_T.INTEGRITY,)),
            Control("10.3.4", "Change detection runs on audit logs", (_T.INTEGRITY,)),
            Control("10.5.1", "Audit log history is retained for at least 12 months", (_T.RETENTION,)),
        ),
    ),
    "hipaa": Framework(
        key="hipaa",
        title="HIPAA Security Rule (45 CFR Part 164, Subpart C)",
        retention_days=365,
        retention_basis="the Security Rule sets no audit-log period; one year unless --retention-days says otherwise",
        controls=(
            Control(
                "§164.312(b)",
                "Audit controls record and examine activity in systems holding ePHI",
                (_T.ACCESS_LOGGING, _T.SECRET_ACCESS, _T.POD_EXEC, _T.RETENTION),
            ),
            Control(
                "§164.308(a)(1)(ii)(D)",
                "Information system activity (access, privilege changes) is reviewed regularly",
                (_T.SECRET_ACCESS, _T.RBAC_CHANGES, _T.POD_EXEC),
            ),
            Control("§164.312(a)(1)", "Access control: access rights are granted deliberately", (_T.RBAC_CHANGES,)),
            Control("§164.312(c)(1)", "Integrity: records are protected from improper alteration", (_T.INTEGRITY,)),
        ),
    ),
}

FRAMEWORK_KEYS = tuple(FRAMEWORKS)
