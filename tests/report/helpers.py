"""Stores for the report tests, filled the way users fill them: `kubetrail generate`, then `kubetrail ingest`."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from kubetrail.cli.main import cli

SECRET_READS = {"get", "list", "watch"}
WRITES = {"create", "update", "patch", "delete", "deletecollection"}
EXEC = {"exec", "attach", "portforward"}


def kubetrail(*arguments: str) -> None:
    """Run a kubetrail command in-process, as the command line would, and require success."""
    result = CliRunner().invoke(cli, list(arguments), catch_exceptions=False)
    assert result.exit_code == 0, result.stderr


def generate(path: Path, *, start: str, seconds: int, rate: float, scenarios: bool = True) -> Path:
    extra = ["--scenario", "all"] if scenarios else []
    kubetrail("generate", "--start", start, "--duration", str(seconds), "--rate", str(rate), *extra, "-o", str(path))
    return path


def ingest(store: Path, *logs: Path, cluster: str = "prod", detect: bool = False) -> Path:
    """Ingest the logs; without detection unless asked, so that a test controls which alerts the store holds."""
    flag = "--detect" if detect else "--no-detect"
    kubetrail("ingest", "--store", str(store), "--cluster", cluster, flag, *map(str, logs))
    return store


@dataclass
class Expected:
    """What the report must find, counted from the log itself (not through kubetrail's store or queries)."""

    requests: set[str] = field(default_factory=set)
    per_day: Counter[date] = field(default_factory=Counter)
    secret_reads: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    rbac_changes: set[str] = field(default_factory=set)
    exec_sessions: set[str] = field(default_factory=set)
    days: set[date] = field(default_factory=set)


def expected_from(*logs: Path) -> Expected:
    expected = Expected()
    seen_per_day: set[tuple[date, str]] = set()
    for log in logs:
        for line in log.read_text().splitlines():
            event: dict[str, Any] = json.loads(line)
            audit_id = event["auditID"]
            day = date.fromisoformat(event["requestReceivedTimestamp"][:10])
            expected.requests.add(audit_id)
            expected.days.add(day)
            if (day, audit_id) not in seen_per_day:
                seen_per_day.add((day, audit_id))
                expected.per_day[day] += 1
            ref = event.get("objectRef") or {}
            verb = event.get("verb", "")
            if ref.get("resource") == "secrets" and verb in SECRET_READS:
                key = (event["user"].get("username", ""), ref.get("namespace", ""))
                expected.secret_reads.setdefault(key, set()).add(audit_id)
            if ref.get("apiGroup") == "rbac.authorization.k8s.io" and verb in WRITES:
                expected.rbac_changes.add(audit_id)
            if ref.get("resource") == "pods" and ref.get("subresource") in EXEC:
                expected.exec_sessions.add(audit_id)
    return expected
